"""`dgm eval` for sample quality: runs, --real/--fake files and folders, the feature cache, one-line errors."""
import json

import numpy as np
import pytest
import torch

from dgm.cli import main


def _eval(capsys, *argv):
    code = main(["eval", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DGM_INCEPTION_WEIGHTS", raising=False)


def _digits_test_unit():
    from dgm.data import load_dataset

    ds = load_dataset("digits", "test")
    return ds.raw.numpy().astype(np.float32) / 16.0


def test_eval_run_prints_every_image_metric(tiny_run, capsys):
    code, out, err = _eval(capsys, str(tiny_run), "--metric", "fid,kid,is,pr,dc,swd,msssim", "-n", "48",
                           "--batch-size", "48")
    assert code == 0, err
    r = json.loads(out)
    for key in ("fid", "kid", "kid_std", "is", "is_std", "is_real", "precision", "recall", "density", "coverage",
                "swd", "swd_levels", "msssim", "msssim_real"):
        assert key in r, key
        assert r[key] is not None
    assert r["n_fake"] == 48 and r["n_real"] == 360 and r["features"] == "digits"
    assert r["labels"]["fid"] == "FID (digits classifier features)"
    assert r["fid"] > 0 and 0 <= r["precision"] <= 1 and 1 <= r["is"] <= 10


def test_eval_gan_image_run_and_conditional_pixelcnn(tmp_path, capsys):
    """GAN runs (whose config keeps the dataset's class count but take no labels) and class-conditional runs
    (whose samples cycle through the classes) both sample for the image metrics."""
    gan = tmp_path / "gan"
    assert main(["train", "gan", "--data", "digits", "--steps", "2", "--batch-size", "16", "--hidden", "8",
                 "--n-samples", "0", "--no-progress", "--out", str(gan)]) == 0
    cond = tmp_path / "cond"
    assert main(["train", "pixelcnn", "--data", "digits", "--conditional", "--steps", "2", "--batch-size", "16",
                 "--hidden", "8", "--layers", "1", "--n-samples", "0", "--no-progress", "--out", str(cond)]) == 0
    capsys.readouterr()
    for run in (gan, cond):
        code, out, err = _eval(capsys, str(run), "--metric", "fid,pr", "-n", "20")
        assert code == 0, err
        r = json.loads(out)
        assert r["n_fake"] == 20 and r["fid"] > 0
    code, out, err = _eval(capsys, str(gan), "-n", "20")                # an image GAN's default: sample quality
    assert code == 0, err
    assert {"fid", "kid", "is", "precision", "density"} <= set(json.loads(out)) and "nll_nats" not in out


def test_real_against_itself_gives_the_sanity_values(tmp_path, capsys):
    x = _digits_test_unit()
    np.savez(tmp_path / "same.npz", images=x)
    code, out, err = _eval(capsys, "--real", "digits", "--fake", str(tmp_path / "same.npz"),
                           "--metric", "fid,kid,pr,dc,swd")
    assert code == 0, err
    r = json.loads(out)
    # float64 round-off of the eigen-decomposition, against feature variances of order 1-100
    assert abs(r["fid"]) < 1e-4 and abs(r["swd"]) < 1e-9
    assert r["precision"] == r["recall"] == r["coverage"] == 1.0
    # the fashion-mnist classifier refuses 8x8 digits with a one-line hint
    code, _, err = _eval(capsys, "--real", "digits", "--fake", str(tmp_path / "same.npz"), "--metric", "fid",
                         "--features", "fashion-mnist")
    assert code == 2 and err.count("\n") == 1 and "inception-v3" in err


def test_fid_from_files_grows_with_noise_and_cache_is_reused(tmp_path, capsys):
    x = _digits_test_unit()
    rng = np.random.default_rng(0)
    fids = []
    for i, std in enumerate([0.05, 0.2, 0.5]):
        noisy = np.clip(x + rng.normal(0, std, x.shape).astype(np.float32), 0, 1)
        np.savez(tmp_path / f"noisy{i}.npz", images=(noisy * 255).round().astype(np.uint8).transpose(0, 2, 3, 1))
        code, out, err = _eval(capsys, "--real", "digits", "--fake", str(tmp_path / f"noisy{i}.npz"), "--metric", "fid")
        assert code == 0, err
        fids.append(json.loads(out)["fid"])
    assert fids[0] < fids[1] < fids[2]
    cached = list((tmp_path / "cache" / "features").glob("digits-360-*.npz"))
    assert len(cached) == 1  # one entry for the real digits test split, reused by all three calls
    cached[0].write_bytes(b"damaged")  # a damaged entry is recomputed, not fatal
    code, out, _ = _eval(capsys, "--real", "digits", "--fake", str(tmp_path / "noisy0.npz"), "--metric", "fid")
    assert code == 0 and json.loads(out)["fid"] == pytest.approx(fids[0], rel=1e-9)


def test_folder_of_pngs_equals_the_npz(tmp_path, capsys):
    from PIL import Image

    x = (_digits_test_unit()[:40, 0] * 255).round().astype(np.uint8)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, im in enumerate(x):
        Image.fromarray(im).save(folder / f"{i:03d}.png")
    np.savez(tmp_path / "same.npz", x)
    res = []
    for fake in (folder, tmp_path / "same.npz"):
        code, out, err = _eval(capsys, "--real", "digits", "--fake", str(fake), "--metric", "fid,msssim")
        assert code == 0, err
        res.append(json.loads(out))
    assert res[0]["fid"] == res[1]["fid"] and res[0]["n_fake"] == 40


def test_read_images_layouts_and_errors(tmp_path):
    from dgm.errors import DgmError
    from dgm.metrics import read_images

    a = np.random.default_rng(0).integers(0, 256, (5, 12, 10, 3), dtype=np.uint8)
    np.save(tmp_path / "nhwc.npy", a)
    np.savez(tmp_path / "nchw.npz", images=a.transpose(0, 3, 1, 2).astype(np.float32) / 255)
    x, y = read_images(tmp_path / "nhwc.npy"), read_images(tmp_path / "nchw.npz")
    assert x.shape == (5, 3, 12, 10) and torch.equal(x, y)
    np.savez(tmp_path / "pm1.npz", images=a.astype(np.float32) / 127.5 - 1)
    np.savez(tmp_path / "two.npz", a=a, b=a)
    np.save(tmp_path / "bad.npy", np.zeros((5, 7, 12, 10)))
    (tmp_path / "junk.npz").write_bytes(b"not numpy")
    for name, words in (("pm1.npz", "[0, 1]"), ("two.npz", "'images'"), ("bad.npy", "channels"),
                        ("junk.npz", "numpy"), ("missing.npz", "neither")):
        with pytest.raises(DgmError) as e:
            read_images(tmp_path / name)
        assert words in str(e.value) and "\n" not in str(e.value)


def test_eval_user_errors_are_one_line(tiny_run, tmp_path, capsys):
    np.savez(tmp_path / "f.npz", images=_digits_test_unit())
    cases = [
        (["--fake", str(tmp_path / "f.npz")], "--real"),
        ([], "run directory"),
        (["--real", "digits", "--fake", str(tmp_path / "f.npz"), "--metric", "nll"], "run directory"),
        ([str(tiny_run), "--metric", "fdi", "-n", "4"], "did you mean 'fid'"),
        ([str(tiny_run), "--metric", "fid", "--features", "inception", "-n", "4"], "inception-v3"),
        ([str(tiny_run), "--metric", "fid", "--features", "inception-v3", "-n", "4"], "DGM_INCEPTION_WEIGHTS"),
        ([str(tiny_run), "--metric", "fid", "-n", "1"], "-n"),
    ]
    for argv, words in cases:
        code, out, err = _eval(capsys, *argv)
        assert code == 2 and out == "" and err.count("\n") == 1 and words in err, (argv, err)


def test_toy_runs_point_to_modes(tmp_path, capsys):
    out = tmp_path / "toy"
    assert main(["train", "gan", "--data", "ring8", "--steps", "2", "--batch-size", "16", "--hidden", "8",
                 "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    code, _, err = _eval(capsys, str(out), "--metric", "fid", "-n", "8")
    assert code == 2 and "--metric modes" in err
