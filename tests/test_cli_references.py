"""Every `dgm sample` and `dgm eval` flag of users' scripts keeps giving the files and the JSON it gave before the
figures registry and the metric-owned options (issue 31), recorded in tests/data/cli-references.json on the code
of main at 8f51103.

Each tiny run (``reference_runs`` in conftest.py) is trained here (a CPU run with a seed is bit-for-bit repeatable), each old command is run on it, and
what it wrote is compared with the record: image grids pixel for pixel (decoded PNG), WAV files and saved tensors
byte for byte, figures drawn by matplotlib by their size only (their pixels follow the installed matplotlib), the
printed JSON key for key (floats to 1e-9 relative; the checkpoint's path and hash and the library versions left
out). ``DGM_RECORD_REFERENCES=1`` rewrites the record instead of checking it.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dgm.cli import main
from dgm.outputs import _WAV_MARK

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

RECORD = Path(__file__).parent / "data" / "cli-references.json"
RECORDING = os.environ.get("DGM_RECORD_REFERENCES") == "1"
IMAGE = "{tmp}/digit.png"  # written by the fixture: a test image for --complete-from
# (name, run, arguments after RUN); {tmp} is a folder of this test session
SAMPLE = [
    ("grid", "gpcnn", ["-n", "4"]),
    ("grid-naive", "gpcnn", ["-n", "4", "--naive", "--seed", "1"]),
    ("tensor", "gpcnn", ["-n", "3", "--out", "{tmp}/t/grid.png", "--save-tensor", "{tmp}/x.pt"]),
    ("complete", "gpcnn", ["--complete-from", IMAGE, "--observe", "left", "-n", "3"]),
    ("complete-top", "gpcnn", ["--complete-from", IMAGE, "-n", "2", "--naive"]),
    ("label", "gpcnn-cond", ["--label", "3", "-n", "4"]),
    ("made", "made", ["-n", "4"]),
    ("vae-plots", "vae", ["--plots", "-n", "4"]),
    ("vae-slerp", "vae", ["--interpolate", "slerp", "--steps", "3", "-n", "2"]),
    ("vae-lerp", "vae", ["--interpolate", "lerp", "-n", "2"]),
    ("vae-trunc", "vae", ["--truncation", "0.5", "-n", "4"]),
    ("vae-arith", "vae", ["--arithmetic", "3,8", "-n", "2"]),
    ("gan", "gan", ["-n", "4"]),
    ("gan-no-ema", "gan", ["-n", "4", "--no-ema", "--seed", "1"]),
    ("gan-resample", "gan", ["--truncation", "0.7", "--truncation-mode", "resample", "-n", "4"]),
    ("gan-cond-lerp", "gan-cond", ["--interpolate", "lerp", "--label", "2", "-n", "2", "--steps", "3"]),
    ("gan-cond-label", "gan-cond", ["--label", "5", "-n", "3"]),
    ("ring", "ring", ["-n", "50"]),
    ("ring-trunc", "ring", ["--truncation", "0.5", "-n", "50"]),
    ("style-mix", "stylegan", ["--style-mix"]),
    ("noise-sweep", "stylegan", ["--noise-sweep", "--seed", "2"]),
    ("style-trunc", "stylegan", ["--truncation", "0.5", "-n", "4"]),
    ("attention", "sagan", ["--attention-maps", "-n", "2"]),
    ("vary-code", "infogan", ["--vary-code", "0"]),
    ("translate", "cyclegan", ["--translate", "test", "-n", "2"]),
    ("audio", "wavenet", ["--seconds", "0.05", "-n", "2"]),
    ("audio-naive", "wavenet", ["--seconds", "0.02", "-n", "1", "--naive", "--out", "{tmp}/a/w.png"]),
]
EVAL = [
    ("nll", "gpcnn", ["--metric", "nll"]),
    ("nll-val", "gpcnn", ["--metric", "nll", "--split", "val", "--batch-size", "50"]),
    ("default", "gpcnn", []),
    ("completion", "gpcnn", ["--metric", "completion", "--observe", "left"]),
    ("completion-orders", "made", ["--metric", "completion", "--observe", "top", "--orders-used", "2"]),
    ("vae-k", "vae", ["--metric", "nll", "-k", "5"]),
    ("recon", "vqvae", []),
    ("modes", "ring", []),
    ("modes-seed", "ring", ["--metric", "modes", "--seed", "1"]),
    ("images", "gan", ["-n", "64", "--batch-size", "32"]),
    ("fid-swd-msssim", "gan", ["--metric", "fid,swd,msssim", "-n", "40", "--no-ema"]),
    ("fid-trunc", "gan", ["--metric", "fid,is", "-n", "40", "--truncation", "0.5", "--truncation-mode", "resample"]),
    ("save", "gan", ["--metric", "kid", "-n", "40", "--save-samples", "{tmp}/s.npz", "--features", "digits"]),
    ("fake", None, ["--real", "digits", "--fake", "{tmp}/s.npz", "--metric", "fid,pr", "--split", "val"]),
    ("per-class", "gan-cond", ["--metric", "cas,fid", "--per-class", "-n", "100"]),
    ("audio-nll", "wavenet", ["--metric", "nll"]),
]
MATPLOTLIB = ("ring", "ring-trunc", "vae-plots:latent-test.png", "audio", "audio-naive")  # drawn by matplotlib


@pytest.fixture(scope="module")
def setting(reference_runs, tmp_path_factory):
    root = tmp_path_factory.mktemp("refs")
    runs = {name: root / "runs" / name for name in reference_runs}
    for name, run in reference_runs.items():  # a copy: the commands write into the run folders
        shutil.copytree(run, runs[name])
    img = np.zeros((8, 8), np.uint8)
    img[1:7, 2] = img[1, 2:6] = img[6, 2:6] = 255
    Image.fromarray(img).save(root / "digit.png")
    record = {"sample": {}, "eval": {}}
    if not RECORDING:
        record = json.loads(RECORD.read_text())
    yield root, runs, record
    if RECORDING:
        RECORD.parent.mkdir(exist_ok=True)
        RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


def _argv(args, root):
    return [a.replace("{tmp}", str(root)) for a in args]


def _files(folder):
    return {p for p in Path(folder).rglob("*") if p.is_file()}


def _describe(path: Path, structural: bool):
    """What of a written file must stay the same (see the module's docstring)."""
    if path.suffix == ".png":
        a = np.asarray(Image.open(path))
        if structural:
            return {"shape": list(a.shape)}
        return {"shape": list(a.shape), "sha256": hashlib.sha256(a.tobytes()).hexdigest()}
    if path.suffix == ".pt":
        t = torch.load(path, weights_only=True)
        return {"shape": list(t.shape), "sha256": hashlib.sha256(t.numpy().tobytes()).hexdigest()}
    data = path.read_bytes()
    if path.suffix == ".wav" and data.endswith(_WAV_MARK):  # the file as written before dgm marked its WAVs
        data = data[:4] + (len(data) - len(_WAV_MARK) - 8).to_bytes(4, "little") + data[8:-len(_WAV_MARK)]
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _run(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    assert code == 0, argv
    return out.getvalue()


@pytest.mark.parametrize("name,run,args", SAMPLE, ids=[s[0] for s in SAMPLE])
def test_old_sample_flags_write_the_recorded_files(setting, name, run, args):
    root, runs, record = setting
    folders = [runs[run], root]
    before = set().union(*(_files(f) for f in folders))
    printed = _run(["sample", str(runs[run]), *_argv(args, root)]).split()
    new = sorted(set().union(*(_files(f) for f in folders)) - before)
    assert new, "the command wrote nothing"

    def rel(p):
        p = Path(p)
        return str(p.relative_to(runs[run])) if runs[run] in p.parents else "{tmp}/" + str(p.relative_to(root))

    got = {"printed": [rel(p) for p in printed],
           "files": {rel(p): _describe(p, name in MATPLOTLIB or f"{name}:{p.name}" in MATPLOTLIB) for p in new}}
    if RECORDING:
        record["sample"][name] = got
    else:
        assert got == record["sample"][name]


_VOLATILE = {"run", "checkpoint", "fake", "samples_file", "checkpoint_sha256", "dgm_version", "torch_version"}


def _normal(obj):
    if isinstance(obj, dict):
        return {k: _normal(v) for k, v in obj.items() if k not in _VOLATILE}
    if isinstance(obj, list):
        return [_normal(v) for v in obj]
    return obj


def _same(a, b, where=""):
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {a} != {b}"
    elif isinstance(a, dict):  # a: printed now, b: recorded. Keys may be added (the JSON contract), never lost
        assert isinstance(b, dict) and set(b) <= set(a), f"{where}: keys {sorted(set(b) - set(a))} are gone"
        for k in b:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("name,run,args", EVAL, ids=[e[0] for e in EVAL])
def test_old_eval_flags_print_the_recorded_json(setting, name, run, args):
    root, runs, record = setting
    if name == "fake" and not (root / "s.npz").exists():  # made by the "save" case; alone, make it here
        _run(["eval", str(runs["gan"]), *_argv(EVAL[[e[0] for e in EVAL].index("save")][2], root)])
    argv = ["eval", *([str(runs[run])] if run else []), *_argv(args, root)]
    got = _normal(json.loads(_run(argv)))
    if RECORDING:
        record["eval"][name] = got
    else:
        _same(got, record["eval"][name], name)
