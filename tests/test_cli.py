"""The `dgm` command: happy paths and one-line errors for user mistakes."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import dgm
from dgm.cli import main

from conftest import ROOT, TINY


def _err(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def _write_idx(path, arr):
    arr = np.asarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(header + arr.tobytes())


@pytest.mark.parametrize("argv,needle", [
    (["train", "pixlcnn"], "did you mean 'pixelcnn'"),
    (["train", "pixelcnn", "--data", "fashon-mnist"], "did you mean 'fashion-mnist'"),
    (["train", "pixelcnn", "--data", "mnist"], "--data-dir"),
    (["train", "pixelcnn", "--data", "fashion-mnist", "--data-dir", "/nonexistent/dir"], "/nonexistent/dir"),
    (["train", "pixelcnn", "--lr", "-1"], "--lr"),
    (["train", "pixelcnn", "--batch-size", "0"], "--batch-size"),
    (["train", "pixelcnn", "--steps", "abc"], "--steps"),
    (["train", "pixelcnn", "--steps", "5", "--epochs", "1"], "not both"),
    (["train", "pixelcnn", "--binarize", "sometimes"], "--binarize"),
    (["train", "pixelcnn", "--layers", "0"], "--layers"),
    (["train", "pixelcnn", "--kernel", "4"], "--kernel"),
    (["train", "pixelcnn", "--device", "tpu"], "--device"),
    (["train", "pixelcnn", "--amp", "--device", "cpu"], "--amp"),
    (["train", "pixelcnn", "--no-such-flag"], "--no-such-flag"),
    (["train", "pixelcnn", "--data", "ring8"], "image data"),
    (["train", "pixelcnn", "--batch-size", "5000", "--binarize"], "--batch-size"),
    (["train", "pixelcnn", "--conditional", "--data", "digits", "--binarize", "--quantize", "4"], "binarize"),
    (["eval", "/nonexistent/run"], "not a dgm run directory"),
    (["sample", "/nonexistent/run"], "not a dgm run directory"),
    (["eval", "RUN", "--metric", "nlll"], "did you mean 'nll'"),
    (["sample", "RUN", "--complete-from", "/nonexistent.png"], "no such file"),
    (["sample", "RUN", "--label", "3"], "--label"),
    (["sample", "RUN", "-n", "0"], "-n"),
])
def test_user_mistakes_give_one_line_error(capsys, tiny_run, tmp_path, argv, needle):
    argv = [str(tiny_run) if a == "RUN" else a for a in argv]
    if "--out" not in argv and argv[0] == "train":
        argv += ["--out", str(tmp_path / "out"), "--no-progress"]
    code, err = _err(capsys, argv)
    assert code != 0
    assert "\n" not in err and err.startswith("dgm: error:"), err
    assert needle in err
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_truncated_idx_file_is_named_in_the_error(capsys, tmp_path):
    imgs = np.random.randint(0, 256, (20, 28, 28))
    for split in ("train", "t10k"):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte", imgs)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte", np.arange(20) % 10)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    code, err = _err(capsys, ["train", "pixelcnn", "--data", "mnist", "--data-dir", str(tmp_path), "--binarize",
                              "--out", str(tmp_path / "run")])
    assert code == 2 and "\n" not in err and str(path) in err and "truncated" in err


def test_console_script_error_has_no_traceback():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run([sys.executable, "-m", "dgm.cli", "train", "pixelcnn", "--data", "cifar10"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    r = subprocess.run([sys.executable, "-m", "dgm.cli", "--debug", "train", "pixelcnn", "--data", "cifar10"],
                       capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_list_commands(capsys):
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "pixelcnn" in out and "gated-pixelcnn" in out and "independent" in out
    assert main(["list", "datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("digits", "fashion-mnist", "mnist", "binarized-mnist", "cifar10", "images", "ring8", "grid25"):
        assert name in out


def test_eval_prints_json_matching_an_independent_computation(capsys, tiny_run):
    assert main(["eval", str(tiny_run), "--metric", "nll"]) == 0
    result = json.loads(capsys.readouterr().out)
    model = dgm.load(tiny_run)
    x = dgm.load_dataset("digits", "test", binarize="fixed").tensors()[0]
    with torch.no_grad():
        logits = model(x)
        ref = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3)).mean()
    assert result["split"] == "test" and result["n"] == 360
    assert result["nll_nats"] == pytest.approx(ref.item(), rel=1e-5)
    assert result["bits_per_dim"] == pytest.approx(ref.item() / (64 * math.log(2)), rel=1e-5)


def test_sample_and_complete_write_grids(capsys, tiny_run, tmp_path):
    out = tmp_path / "s.png"
    assert main(["sample", str(tiny_run), "-n", "6", "--out", str(out), "--save-tensor", str(tmp_path / "s.pt")]) == 0
    assert out.is_file() and Image.open(out).size[0] > 8
    x = torch.load(tmp_path / "s.pt", weights_only=True)
    assert x.shape == (6, 1, 8, 8) and set(x.unique().tolist()) <= {0.0, 1.0}
    img = tmp_path / "digit.png"
    raw = dgm.load_dataset("digits", "test").raw[0, 0].numpy() * 15
    Image.fromarray(raw.astype(np.uint8)).save(img)
    assert main(["sample", str(tiny_run), "-n", "3", "--complete-from", str(img), "--save-tensor",
                 str(tmp_path / "c.pt"), "--out", str(tmp_path / "c.png")]) == 0
    done = torch.load(tmp_path / "c.pt", weights_only=True)
    observed_top = torch.from_numpy((raw[:4] >= 128).astype(np.float32))
    assert torch.equal(done[:, 0, :4], observed_top.expand(3, -1, -1))


def test_conditional_training_and_class_sampling(capsys, tmp_path):
    out = tmp_path / "cond"
    assert main(["train", "gated-pixelcnn", "--data", "digits", "--binarize", "--conditional", "--steps", "2",
                 "--batch-size", "16", "--out", str(out), "--n-samples", "0", "--no-progress", *TINY]) == 0
    model = dgm.load(out)
    assert model.config.num_classes == 10
    assert main(["sample", str(out), "-n", "2", "--label", "3", "--out", str(tmp_path / "c3.png")]) == 0


def test_rgb_image_folder_trains_and_samples(capsys, tmp_path):
    rng = np.random.RandomState(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(rng.randint(0, 256, (6, 6, 3)).astype(np.uint8), "RGB").save(folder / f"{i:02d}.png")
    out = tmp_path / "rgb"
    assert main(["train", "pixelcnn", "--data", "images", "--data-dir", str(folder), "--quantize", "4",
                 "--steps", "2", "--batch-size", "4", "--out", str(out), "--n-samples", "2", "--no-progress", *TINY]) == 0
    model = dgm.load(out)
    assert (model.config.channels, model.config.levels) == (3, 4)
    x = torch.randint(0, 4, (2, 3, 6, 6))
    assert model(x).shape == (2, 4, 3, 6, 6)
    assert main(["sample", str(out), "-n", "2", "--save-tensor", str(tmp_path / "x.pt"), "--out", str(tmp_path / "x.png")]) == 0
    s = torch.load(tmp_path / "x.pt", weights_only=True)
    assert s.shape == (2, 3, 6, 6) and s.max() <= 3
