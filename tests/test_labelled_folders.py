"""An image folder with one subfolder per class is a labelled dataset (issue 32: the docs promised it and
`--conditional` refused it): labels by sorted subfolder name, class-conditional training, intra-class FID; a class
too small for intra-class FID is one line before anything is sampled (it was a traceback)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dgm.cli import main
from dgm.data import load_dataset

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("labelled")
    rng = np.random.RandomState(0)
    for c, level in (("circle", 60), ("bar", 140), ("dot", 220)):
        (root / c).mkdir()
        for i in range(20):
            Image.fromarray((rng.rand(8, 8) * 40 + level).astype(np.uint8)).save(root / c / f"{i:02d}.png")
    return root


def test_subfolders_are_classes(folder, tmp_path):
    train = load_dataset("images", "train", data_dir=str(folder), channels=1)
    x, y = train.tensors()[:2]
    assert train.spec.num_classes == 3 and set(y.tolist()) == {0, 1, 2}
    means = {c: float(x[y == c].float().mean()) for c in range(3)}
    assert means[1] < means[0] < means[2]  # sorted names: bar (level 140) = 0, circle (60) = 1, dot (220) = 2
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(6):
        Image.fromarray(np.full((8, 8), 10 * i, np.uint8)).save(flat / f"{i}.png")
    plain = load_dataset("images", "train", data_dir=str(flat), channels=1)
    assert plain.spec.num_classes == 0
    (flat / "more").mkdir()  # files beside one subfolder: still unlabelled, as before
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(flat / "more" / "x.png")
    assert load_dataset("images", "train", data_dir=str(flat), channels=1).spec.num_classes == 0


def test_a_conditional_gan_trains_on_a_labelled_folder_and_is_measured_per_class(folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "gan", "--data", "images", "--data-dir", str(folder), "--image-size", "8",
                 "--image-channels", "1", "--conditional", "--steps", "2", "--hidden", "8", "--latent-dim", "4",
                 "--batch-size", "8", "--no-progress", "--n-samples", "0", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["model_config"]["num_classes"] == 3
    capsys.readouterr()
    assert main(["eval", str(out), "--metric", "fid", "--per-class", "--features", "digits", "-n", "30",
                 "--split", "train"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert sorted(r["fid_per_class"]) == ["0", "1", "2"] and r["intra_fid"] > 0
    for argv, needle in ((["--split", "test", "-n", "30"], "--per-class: class"),
                         (["--split", "train", "-n", "5"], "use -n 6 or more")):
        assert main(["eval", str(out), "--metric", "fid", "--per-class", "--features", "digits", *argv]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1 and "Traceback" not in err, err
