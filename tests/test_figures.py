"""The figures registry (`dgm sample --figure NAME`, `dgm list figures`; issue 31).

* Contract: every registered figure x every tiny run of conftest.RUNS. Where the run's model can make the figure,
  `dgm sample RUN --figure NAME` writes files that are valid PNG / WAV and prints their paths; where it cannot,
  one line names what is missing and lists the figures the model can make, and nothing is written.
* Every model's default figure is one it can make, and `dgm sample RUN` alone draws it (the contract test of
  tests/test_contract.py does so for every model; here the three models whose default is not the sample grid).
* A figure registered inside a test is listed, drawn and its option refused elsewhere, with no other file changed.
"""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dgm
from dgm.cli import main
from dgm.figures import FIGURES, Figure, can_make, register
from dgm.options import Option

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

# what a figure needs on the command line where its options have no default
REQUIRED = {"complete": ["--complete-from", "{img}"], "truncation": ["--truncation", "0.5"],
            "arithmetic": ["--arithmetic", "3,8"], "nearest": ["--nearest", "2"]}
SMALL_N = {"samples": "3", "interpolate": "2", "truncation": "3", "complete": "2", "audio": "1", "translate": "2",
           "reconstructions": "4", "plots": "3", "arithmetic": "2", "attention-maps": "2", "domains": "3",
           "fair-codes": "50"}


@pytest.fixture(scope="module")
def loaded(reference_runs, tmp_path_factory):
    img = tmp_path_factory.mktemp("img") / "digit.png"
    a = np.zeros((8, 8), np.uint8)
    a[2:6, 2:6] = 255
    Image.fromarray(a).save(img)
    return {name: dgm.load(run) for name, run in reference_runs.items()}, img


def _valid(path: Path) -> None:
    if path.suffix == ".png":
        with Image.open(path) as im:
            im.verify()
    elif path.suffix == ".json":  # a figure's numbers beside its PNG (nearest: the distances)
        import json

        json.loads(path.read_text())
    elif path.suffix == ".wav":
        with wave.open(str(path), "rb") as w:
            assert w.getnframes() > 0
    elif path.suffix == ".txt":  # the captions of the retrieval figure
        assert path.read_text().strip()
    else:
        raise AssertionError(f"unexpected file {path}")


CASES = [(f, r) for f in FIGURES.names() for r in ("gpcnn", "gpcnn-cond", "made", "vae", "vqvae", "gan", "ring",
                                                     "stylegan", "sagan", "infogan", "cyclegan", "wavenet", "adapt", "clip",
                                                     "fair")]


@pytest.mark.parametrize("figure,run", CASES, ids=[f"{f}-{r}" for f, r in CASES])
def test_every_figure_is_drawn_or_refused_in_one_line(reference_runs, loaded, tmp_path, capsys, figure, run):
    models, img = loaded
    fig = FIGURES.get(figure)
    argv = ["sample", str(reference_runs[run]), "--figure", figure, "--out", str(tmp_path / "f.png")]
    argv += [a.replace("{img}", str(img)) for a in REQUIRED.get(figure, [])]
    if fig.n is not None:
        argv += ["-n", SMALL_N.get(figure, "2")]
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    if figure in can_make(models[run]):
        assert code == 0, err
        printed = [Path(p) for p in out.split()]
        assert printed and set(printed) == set(tmp_path.iterdir()), (printed, list(tmp_path.iterdir()))
        for p in printed:
            _valid(p)
    else:
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
        assert f"figure {figure} needs " in err and f"can make: {', '.join(can_make(models[run]))}" in err, err
        assert not list(tmp_path.iterdir())


def test_the_test_runs_cover_every_figure(loaded):
    models, _ = loaded
    assert set(FIGURES.names()) == {f for m in models.values() for f in can_make(m)}


@pytest.mark.parametrize("run,default,files", [("vqvae", "reconstructions", ["reconstructions-seed0.png"]),
                                               ("cyclegan", "translate", ["translate-test-x_to_y.png",
                                                                          "translate-test-y_to_x.png"]),
                                               ("wavenet", "audio", ["sample-seed0-0.wav", "sample-seed0.png"]),
                                               ("adapt", "domains", ["domains.png"]),
                                               ("fair", "fair-codes", ["fair-codes-seed0.png"])])
def test_models_draw_their_default_figure_with_no_flag(reference_runs, loaded, tmp_path, run, default, files):
    import shutil

    models, _ = loaded
    assert models[run].default_figure == default == can_make(models[run])[0]
    copy = tmp_path / run
    shutil.copytree(reference_runs[run], copy)
    assert main(["sample", str(copy), "-n", "1"]) == 0
    assert sorted(p.name for p in (copy / "samples").iterdir()) == files


def test_a_figure_registered_in_a_test_is_listed_drawn_and_its_option_refused_elsewhere(reference_runs, tmp_path,
                                                                                       capsys):
    def make(model, out, n, seed, toy_rows=2):
        import torch

        from dgm.viz import save_grid

        x = model.sample(n * toy_rows, generator=torch.Generator().manual_seed(seed))
        return [save_grid(model.to_unit(x), out, nrow=n)]

    register(Figure("toy-figure", ("images", "sample"), make, "a toy figure of a test",
                    options=(Option("toy_rows", int, 2, "rows of the toy figure"),), n=3,
                    file=lambda model, seed, o: f"toy-{o['toy_rows']}-seed{seed}.png"))
    try:
        assert main(["list", "figures"]) == 0
        assert "toy-figure" in capsys.readouterr().out
        out = tmp_path / "toy.png"
        assert main(["sample", str(reference_runs["gpcnn"]), "--figure", "toy-figure", "--toy-rows", "4", "-n", "2",
                     "--out", str(out)]) == 0
        assert np.asarray(Image.open(out)).shape[0] > np.asarray(Image.open(out)).shape[1]  # 4 rows of 2
        for argv, needle in ((["--toy-rows", "4"], "--toy-rows is an option of the toy-figure figure"),
                             (["--figure", "samples", "--toy-rows", "4"], "not of samples"),
                             (["--figure", "toy-figur"], "did you mean 'toy-figure'")):
            assert main(["sample", str(reference_runs["gpcnn"]), "--out", str(tmp_path / "x.png"), *argv]) == 2
            err = capsys.readouterr().err
            assert needle in err and err.count("\n") == 1, err
        assert main(["sample", str(reference_runs["ring"]), "--figure", "toy-figure"]) == 2
        assert "figure toy-figure needs an image run" in capsys.readouterr().err
    finally:
        FIGURES.remove("toy-figure")
    assert main(["sample", str(reference_runs["gpcnn"]), "--figure", "toy-figure"]) == 2


@pytest.mark.parametrize("run,argv,needle", [
    ("gan", ["--figure", "interpolate", "--truncation", "0.5"], "--truncation makes figure truncation, not interpolate"),
    ("stylegan", ["--style-mix", "-n", "3"], "figure style-mix draws a fixed layout and reads no -n"),
    ("sagan", ["--figure", "attention-maps", "-n", "9"], "-n must be in 1..8 for figure attention-maps"),
    ("gan", ["--figure", "truncation"], "--truncation is needed here"),
    ("gan", ["--truncation", "nan"], "--truncation must be a finite number"),
    ("gan", ["--interpolate", "lerp", "--steps", "1"], "--steps must be >= 2"),
    ("gan", ["--no-ema", "--style-mix"], "--style-mix needs a stylegan run"),
])
def test_figure_options_are_checked_in_one_line(reference_runs, tmp_path, capsys, run, argv, needle):
    assert main(["sample", str(reference_runs[run]), "--out", str(tmp_path / "x.png"), *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("where", ["checkpoints/ckpt-00000003.pt", "config.json", "metrics.jsonl",
                                   "checkpoints/new.png"])
def test_output_flags_never_write_over_a_runs_own_files(reference_runs, tmp_path, capsys, where):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference_runs["gpcnn"], run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    for flag in ("--out", "--save-tensor"):
        assert main(["sample", str(run), "-n", "2", flag, str(run / where)]) == 2
        err = capsys.readouterr().err
        assert "would write into the run folder" in err and err.count("\n") == 1, err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_an_output_flag_never_overwrites_the_checkpoint_it_reads(reference_runs, tmp_path, capsys):
    import shutil

    file = tmp_path / "alone.pt"
    shutil.copy(sorted((reference_runs["gpcnn"] / "checkpoints").glob("ckpt-*.pt"))[-1], file)
    data = file.read_bytes()
    assert main(["sample", str(file), "-n", "2", "--save-tensor", str(file)]) == 2
    assert "is the file this command reads" in capsys.readouterr().err and file.read_bytes() == data
    assert main(["eval", str(file), "--metric", "fid", "-n", "20", "--save-samples", str(file)]) == 2
    assert "is the file this command reads" in capsys.readouterr().err and file.read_bytes() == data
