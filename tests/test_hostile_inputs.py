"""Issue 32: small hostile files cannot make dgm allocate what they claim; memory errors say what was allocated; loaded
weights are checked (shapes before the build, finiteness and order tables after); outputs never replace a file dgm
did not write unless --force.

The hostile corpus runs in a subprocess under a 2 GB address-space limit (RLIMIT_AS): each file claims gigabytes in
a header or a config, and each command must end in one line naming the file, never in the allocator's error."""
from __future__ import annotations

import gzip
import json
import re
import shutil
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from conftest import ROOT, TINY
from dgm import load
from dgm.cli import main
from dgm.errors import DgmError, allocating, free_memory, human_bytes, is_memory_error, user_fault
from dgm.models import build_model
from dgm.outputs import made_by_dgm

pytestmark = pytest.mark.usefixtures("one_thread")


# -- the hostile corpus --------------------------------------------------------------------------------------------
def _wav_header(frames: int, rate: int = 8000, channels: int = 1, width: int = 2) -> bytes:
    data = frames * channels * width
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * width, channels * width, 8 * width)
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
            + struct.pack("<I", data))


def _gz_idx(path, dims, payload: int) -> None:
    """A gzipped IDX file whose header claims ``dims`` (uint8) and whose gzip stream holds ``payload`` zero bytes."""
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(bytes([0, 0, 8, len(dims)]) + np.array(dims, dtype=">u4").tobytes())
        chunk = b"\0" * (1 << 20)
        for _ in range(payload >> 20):
            f.write(chunk)


def _altered_checkpoint(tiny_run, dst, **config):
    """tiny_run's latest checkpoint with its model_config altered (its tensors as they were)."""
    src = sorted((tiny_run / "checkpoints").glob("ckpt-*.pt"))[-1]
    state = torch.load(src, weights_only=True)
    state["model_config"] = {**state["model_config"], **config}
    state.pop("run_id", None)
    torch.save(state, dst)
    return dst


def _corpus(tmp, tiny_run, made_run):
    """name -> (argv, the file the error must name)."""
    cases = {}
    d = tmp / "wav-frames"
    d.mkdir()
    for name in "abcd":  # 100 bytes each, claiming 4 GB of samples
        (d / f"{name}.wav").write_bytes(_wav_header(2_000_000_000) + b"\0" * 64)
    cases["wav-frames"] = (["train", "wavenet", "--data", "audio", "--data-dir", str(d), "--steps", "1"], d / "?.wav")
    d = tmp / "wav-rate"
    d.mkdir()
    for name in "abcd":
        (d / f"{name}.wav").write_bytes(_wav_header(4000, rate=1) + b"\1\0" * 4000)  # 1 Hz: resampled 8000x
    cases["wav-rate"] = (["train", "wavenet", "--data", "audio", "--data-dir", str(d), "--sample-rate", "8000",
                          "--steps", "1"], d / "?.wav")
    d = tmp / "idx"
    d.mkdir()
    _gz_idx(d / "train-images-idx3-ubyte.gz", [60000, 28, 28], 160 << 20)  # about 160 kB claiming 3 GB
    for name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(d / "train-images-idx3-ubyte.gz", d / name)
    cases["idx-gzip-bomb"] = (["train", "pixelcnn", "--data", "fashion-mnist", "--data-dir", str(d), "--steps", "1"],
                              d / "train-images-idx3-ubyte.gz")
    f = _altered_checkpoint(tiny_run, tmp / "wide.pt", hidden=1_000_000)
    cases["ckpt-config-wide"] = (["sample", str(f), "-n", "1", "--out", str(tmp / "x.png")], f)
    src = sorted((made_run / "checkpoints").glob("ckpt-*.pt"))[-1]
    state = torch.load(src, weights_only=True)
    state["model_config"] = {**state["model_config"], "hidden": 200_000_000}  # MADE: built by computing its masks
    f = tmp / "made-wide.pt"
    torch.save(state, f)
    cases["ckpt-config-made"] = (["sample", str(f), "-n", "1", "--out", str(tmp / "y.png")], f)
    run = tmp / "run-wide"
    shutil.copytree(tiny_run, run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["model_config"]["hidden"] = 1_000_000
    (run / "config.json").write_text(json.dumps(cfg))
    for p in (run / "checkpoints").glob("*.pt"):
        _altered_checkpoint(tiny_run, p, hidden=1_000_000)
    cases["run-config-wide"] = (["eval", str(run), "--metric", "nll"], run / "checkpoints")
    cases["resume-config-wide"] = (["train", "gated-pixelcnn", "--out", str(run), "--resume", "--steps", "9"],
                                   run / "config.json")
    npz = tmp / "fake.npz"
    import io

    from numpy.lib import format as npformat

    header = io.BytesIO()
    npformat.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (1000000, 64, 64)})
    with zipfile.ZipFile(npz, "w", zipfile.ZIP_DEFLATED) as z:  # a deflated member claiming 4 GB of uint8
        z.writestr("images.npy", header.getvalue() + b"\0" * 4096)
    cases["npz-header"] = (["eval", "--real", "digits", "--metric", "fid", "--fake", str(npz)], npz)
    return cases


@pytest.fixture(scope="module")
def made_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "made"
    assert main(["train", "made", "--data", "digits", "--binarize", "--hidden", "16", "--steps", "1", "--batch-size",
                 "16", "--n-samples", "0", "--no-progress", "--out", str(out)]) == 0
    return out


RUNNER = """
import contextlib, io, json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
import torch
torch.set_num_threads(1)
from dgm.cli import main
results = {}
for name, argv in json.loads(sys.argv[1]).items():
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv + ["--no-progress"] if argv[0] == "train" else argv)
        except BaseException as e:
            code, err = "exception", io.StringIO(f"{type(e).__name__}: {e}")
    results[name] = [code, err.getvalue()]
print(json.dumps(results))
"""


def test_hostile_files_end_in_one_line_naming_the_file_under_a_2gb_limit(tmp_path, tiny_run, made_run):
    cases = _corpus(tmp_path, tiny_run, made_run)
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "DGM_CACHE_DIR": str(tmp_path / "cache"),
           "HOME": str(tmp_path)}
    p = subprocess.run([sys.executable, "-c", RUNNER, json.dumps({k: v[0] for k, v in cases.items()})],
                       capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    results = json.loads(p.stdout.strip().splitlines()[-1])
    for name, (argv, named) in cases.items():
        code, err = results[name]
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("dgm: error: "), (name, code, err[-1500:])
        assert re.search(re.escape(str(named)).replace(r"\?", "[a-d]"), lines[0]), (name, lines[0])  # the file
        assert "allocate" not in lines[0] or "allocation" in lines[0], (name, lines[0])  # not the allocator's text
    assert "its header claims" in results["npz-header"][1]  # refused by the size check, not by numpy


def test_a_wav_header_that_promises_more_than_the_file_is_refused_before_reading(tmp_path, monkeypatch):
    from dgm.data.audio import read_wav

    f = tmp_path / "a.wav"
    f.write_bytes(_wav_header(2_000_000_000) + b"\0" * 64)
    monkeypatch.setattr("wave.Wave_read.readframes", lambda *a: pytest.fail("read before the size check"))
    with pytest.raises(DgmError, match=r"a\.wav: truncated \(its header promises 2000000000 samples"):
        read_wav(f)


def test_a_gzipped_file_may_not_expand_past_its_header_nor_64x(tmp_path):
    from dgm.data.idx import read_bytes, read_idx

    f = tmp_path / "x.gz"
    _gz_idx(f, [10, 2, 2], 0)  # a header and no payload: truncated, the ordinary error
    with pytest.raises(DgmError, match="truncated IDX file"):
        read_idx(f)
    g = tmp_path / "y.gz"
    g.write_bytes(gzip.compress(b"\0" * (8 << 20)))  # 8 MB of zeros in about 8 kB: beyond 64x + 1 MB
    with pytest.raises(DgmError, match="expands to more than"):
        read_bytes(str(g))
    assert len(read_bytes(str(g), limit=8 << 20)) == 8 << 20  # a stated limit is honoured exactly


# -- memory errors name what was allocated ------------------------------------------------------------------------
def test_memory_errors_say_what_how_large_and_the_flag():
    err = RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried to "
                       "allocate 4000000000 bytes. Error code 12 (Cannot allocate memory)")
    assert is_memory_error(err) and is_memory_error(MemoryError()) and not is_memory_error(RuntimeError("shape"))
    with pytest.raises(DgmError) as e:
        with allocating("drawing 64 samples", "lower -n"):
            raise err
    assert str(e.value) == "not enough memory drawing 64 samples (an allocation of 4.0 GB failed); lower -n"
    with pytest.raises(ValueError):  # anything else passes through
        with allocating("x", "y"):
            raise ValueError("not memory")
    assert "4.0 GB" in str(user_fault(err)) and human_bytes(1536) == "1.5 kB"
    assert free_memory() is None or free_memory() > 0


def test_an_absurd_width_is_refused_before_a_byte_is_allocated(monkeypatch):
    import dgm.models.base as base

    real_init = base.ImageModel.__init__
    builds = []

    def init(self, *a, **k):
        builds.append(str(torch.get_default_device()))
        real_init(self, *a, **k)

    monkeypatch.setattr(base.ImageModel, "__init__", init)
    with pytest.raises(DgmError) as e:
        build_model("pixelcnn", {"hidden": 1_000_000})
    msg = str(e.value)
    assert msg.startswith("not enough memory building the pixelcnn model (") and "--hidden" in msg
    assert "weights" in msg and "is free" in msg
    assert builds == ["meta"]  # the shapes were read on the meta device; no real build was tried


@pytest.mark.parametrize("where", ["step", "grid", "validation"])
def test_a_memory_error_in_training_names_its_phase(where, tmp_path, monkeypatch, capsys):
    def boom(*a, **k):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 12345678901 bytes.")

    target = {"step": "__call__", "grid": "samples", "validation": "evaluate"}[where]
    from dgm.models import MODELS
    from dgm.training.steps import STEPS

    monkeypatch.setattr(STEPS.get(MODELS.get("pixelcnn").train_step), target, boom)
    code = main(["train", "pixelcnn", "--data", "digits", "--binarize", "--steps", "1", "--batch-size", "8",
                 "--no-progress", "--n-samples", "4", *TINY, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    want = {"step": "for a training step (--batch-size 8) (an allocation of 12.3 GB failed); lower --batch-size",
            "grid": "drawing the sample grid (--n-samples 4) (an allocation of 12.3 GB failed); lower --n-samples",
            "validation": "validating (in batches of 256 images) (an allocation of 12.3 GB failed)"}[where]
    assert want in err, err


def test_a_memory_error_in_sampling_and_evaluation_names_the_flag(tiny_run, tmp_path, monkeypatch, capsys):
    from dgm.figures.registry import FIGURES

    def boom(*a, **k):
        raise MemoryError()

    import dataclasses

    monkeypatch.setitem(FIGURES._items, "samples", dataclasses.replace(FIGURES.get("samples"), make=boom))
    assert main(["sample", str(tiny_run), "-n", "4", "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "dgm: error: not enough memory drawing the samples figure (-n 4); lower -n"
    from dgm.metrics import METRICS

    m = METRICS.get("nll")
    if dataclasses.is_dataclass(m):
        monkeypatch.setitem(METRICS._items, "nll", dataclasses.replace(m, compute=boom))
    else:
        monkeypatch.setattr(m, "compute", boom)
    assert main(["eval", str(tiny_run), "--metric", "nll", "--batch-size", "7"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dgm: error: not enough memory measuring nll (--batch-size 7); lower --batch-size, -k"), err


# -- loaded weights are checked -----------------------------------------------------------------------------------
def _copy_run(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    return run, sorted((run / "checkpoints").glob("ckpt-*.pt"))[-1]


def test_nan_weights_are_refused_at_load(tiny_run, tmp_path, capsys):
    run, f = _copy_run(tiny_run, tmp_path)
    state = torch.load(f, weights_only=True)
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name] = state["model"][name].clone().fill_(float("nan"))
    torch.save(state, f)
    with pytest.raises(DgmError, match=rf"refused: \d+ of its \d+ values of {name} are NaN or infinite"):
        load(run)
    assert main(["sample", str(run), "-n", "2"]) == 2
    assert "NaN or infinite" in capsys.readouterr().err and not (run / "samples" / "samples-seed0.png").exists()


def test_a_tampered_order_table_is_refused_at_load(tmp_path):
    run = tmp_path / "made"
    assert main(["train", "made", "--data", "digits", "--binarize", "--hidden", "16", "--orders", "2", "--steps", "1",
                 "--batch-size", "16", "--n-samples", "0", "--no-progress", "--out", str(run)]) == 0
    load(run)  # as written: fine
    f = sorted((run / "checkpoints").glob("ckpt-*.pt"))[-1]
    state = torch.load(f, weights_only=True)
    table = state["model"]["order_table"].clone()
    table[1, 5] = table[1, 6]  # one pixel twice, another never: the NLL would not be normalised
    state["model"]["order_table"] = table
    torch.save(state, f)
    with pytest.raises(DgmError, match="row 1 of its order_table is not a permutation of the 64 positions"):
        load(run)


def test_weights_of_the_wrong_type_or_shape_are_refused_before_the_build(tiny_run, tmp_path, monkeypatch):
    run, f = _copy_run(tiny_run, tmp_path)
    state = torch.load(f, weights_only=True)
    torch.save({**state, "model": {"a": [1, 2, 3]}}, f)
    with pytest.raises(DgmError, match="'model' entry is not a mapping of names to tensors"):
        load(run)
    g = _altered_checkpoint(tiny_run, tmp_path / "wide.pt", hidden=4096)  # the config says 4096, the tensors 8
    import dgm.runs

    monkeypatch.setattr(dgm.runs, "build_model", lambda *a, **k: pytest.fail("built before the shapes were checked"))
    with pytest.raises(DgmError, match=r"wide\.pt: this checkpoint's weights do not fit the model its config "
                                       r"describes \(\S+ is \[16, .*\] in the file, \[8192, .*\] in the model"):
        load(g)


# -- outputs: a file dgm did not write is replaced only with --force ----------------------------------------------
def test_sample_replaces_its_own_files_and_refuses_others_without_force(tiny_run, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["sample", str(tiny_run), "-n", "2", "--out", str(out)]) == 0
    assert made_by_dgm(out)
    assert main(["sample", str(tiny_run), "-n", "2", "--out", str(out), "--seed", "1"]) == 0  # its own: replaced
    t = tmp_path / "x.pt"
    for seed in ("0", "1"):  # a tensor file it wrote is replaced too, and reads as a plain tensor
        assert main(["sample", str(tiny_run), "-n", "2", "--out", str(out), "--save-tensor", str(t),
                     "--seed", seed]) == 0
    assert made_by_dgm(t) and torch.load(t, weights_only=True).shape[0] == 2
    capsys.readouterr()
    mine = tmp_path / "holiday.png"
    from PIL import Image

    Image.new("L", (4, 4)).save(mine)
    before = mine.read_bytes()
    for flag in ("--out", "--save-tensor"):
        target = mine if flag == "--out" else tmp_path / "notes.pt"
        if flag == "--save-tensor":
            target.write_bytes(b"my notes")
        assert main(["sample", str(tiny_run), "-n", "2", flag, str(target)]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"dgm: error: {flag} {target} exists and is not a file dgm wrote; choose another path, or pass " \
                      "--force to replace it"
    assert mine.read_bytes() == before
    assert main(["sample", str(tiny_run), "-n", "2", "--out", str(mine), "--force"]) == 0
    assert mine.read_bytes() != before and made_by_dgm(mine)
    assert main(["sample", str(tiny_run), "-n", "2", "--force"]) == 2  # nothing to force
    assert "--force replaces an existing --out" in capsys.readouterr().err


def test_eval_save_samples_and_audio_outputs_are_marked(tiny_run, tmp_path, capsys):
    npz = tmp_path / "s.npz"
    assert main(["eval", str(tiny_run), "--metric", "fid", "-n", "4", "--save-samples", str(npz)]) == 0
    assert made_by_dgm(npz) and np.load(npz)["images"].shape[0] == 4
    other = tmp_path / "o.npz"
    np.savez(other, images=np.zeros((2, 8, 8), np.uint8))
    assert not made_by_dgm(other)
    capsys.readouterr()
    assert main(["eval", str(tiny_run), "--metric", "fid", "-n", "4", "--save-samples", str(other)]) == 2
    assert "pass --force" in capsys.readouterr().err
    from dgm.data.audio import read_wav, write_wav

    wav = tmp_path / "a.wav"
    write_wav(wav, np.arange(100, dtype=np.int16), 8000)
    samples, rate = read_wav(wav)  # the mark does not change what readers see
    assert made_by_dgm(wav) and rate == 8000 and np.array_equal(samples, np.arange(100))
    import wave

    with wave.open(str(wav)) as w:
        assert w.getnframes() == 100
