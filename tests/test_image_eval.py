"""`dgm eval` for sample quality: runs, --real/--fake files and folders, the feature cache, one-line errors."""
import json
import os

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


# -- issue 12: strict JSON, refusals, decoding by mode, the verified cache ---------------------------------------
def _strict(text):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def _fakes(tmp_path, n=12):
    x = (_digits_test_unit()[:n, 0] * 255).round().astype(np.uint8)
    np.savez(tmp_path / "f.npz", images=x)
    return tmp_path / "f.npz"


def test_non_finite_values_become_null_with_a_reason(tmp_path, capsys, monkeypatch):
    import dgm.metrics.features as features

    fake = _fakes(tmp_path)
    code, out, err = _eval(capsys, "--real", "digits", "--fake", str(fake), "--metric", "fid,kid")
    assert code == 0 and "notes" not in _strict(out)  # valid results: no notes key, as before
    monkeypatch.setattr(features, "fid_from_features", lambda r, f: float("nan"))
    code, out, err = _eval(capsys, "--real", "digits", "--fake", str(fake), "--metric", "fid,kid")
    res = _strict(out)
    assert code == 0 and res["fid"] is None and "nan" in res["notes"]["fid"] and res["kid"] is not None
    assert list(res["notes"]) == ["fid"]


@pytest.mark.parametrize("metric,n,minimum", [("fid", 1, 2), ("kid", 1, 2), ("is", 1, 2), ("pr", 3, 4),
                                              ("dc", 5, 6), ("msssim", 1, 2)])
def test_too_few_fakes_name_the_minimum_and_write_nothing(tmp_path, capsys, metric, n, minimum):
    fake = _fakes(tmp_path, n)
    code, out, err = _eval(capsys, "--real", "digits", "--fake", str(fake), "--metric", metric)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"{metric} needs at least {minimum} fake images, got {n}" in err
    assert not (tmp_path / "cache").exists()  # refused before the reals' features were extracted or cached
    fake = _fakes(tmp_path, minimum)
    code, out, err = _eval(capsys, "--real", "digits", "--fake", str(fake), "--metric", metric)
    assert code == 0, err


def test_options_no_selected_metric_uses_are_refused(tiny_run, tmp_path, capsys):
    fake = _fakes(tmp_path)
    for argv, words in ((["--real", "digits", "--fake", str(fake), "--metric", "swd", "--features", "digits"],
                         "--features is an option of the fid, kid, is, pr, dc, cas, copying metrics, not of swd"),
                        (["--real", "digits", "--fake", str(fake), "--metric", "msssim", "--weights", "w.pth"],
                         "--weights is an option of the fid, kid, is, pr, dc, cas, copying metrics, not of msssim"),
                        (["--real", "digits", "--fake", str(fake), "--metric", "fid", "-k", "5"], "drop -k"),
                        ([str(tiny_run), "-k", "5"], "is exact"),
                        ([str(tiny_run), "--seed", "-1", "--metric", "msssim"], "0..4294967295")):
        code, out, err = _eval(capsys, *argv)
        assert code == 2 and out == "" and err.count("\n") == 1 and words in err, (argv, err)


def test_image_files_are_decoded_by_their_mode(tmp_path, capsys):
    """Palette, RGB, grey+alpha and 16-bit copies of the same grey fakes score exactly like the grey originals."""
    from PIL import Image

    x = (_digits_test_unit()[:12, 0] * 255).round().astype(np.uint8)
    makers = {"grey": lambda a: Image.fromarray(a, "L"),
              "palette": lambda a: Image.fromarray(a, "L").convert("P"),
              "rgb": lambda a: Image.fromarray(a, "L").convert("RGB"),
              "grey-alpha": lambda a: Image.fromarray(np.stack([a, 255 - a], -1), "LA"),
              "16-bit": lambda a: Image.fromarray(a.astype(np.uint16) * 257)}
    results = {}
    for name, make in makers.items():
        d = tmp_path / name
        d.mkdir()
        for i, a in enumerate(x):
            make(a).save(d / f"{i:02d}.png")
        code, out, err = _eval(capsys, "--real", "digits", "--fake", str(d), "--metric", "fid,msssim")
        assert code == 0, (name, err)
        res = _strict(out)
        results[name] = (res["fid"], res["msssim"])
    assert len(set(results.values())) == 1, results


def test_read_images_refuses_non_finite_and_empty_sets(tmp_path):
    from dgm.errors import DgmError
    from dgm.metrics import read_images

    np.save(tmp_path / "nan.npy", np.full((3, 8, 8), np.nan, np.float32))
    np.save(tmp_path / "empty.npy", np.zeros((0, 8, 8), np.uint8))
    for name, words in (("nan.npy", "NaN or infinite"), ("empty.npy", "holds no images")):
        with pytest.raises(DgmError, match=words):
            read_images(tmp_path / name)


def _entry(tmp_path):
    (entry,) = (tmp_path / "cache" / "features").glob("*.npz")
    return entry


def _fid(tmp_path, capsys, fake):
    code, out, err = _eval(capsys, "--real", "digits", "--fake", str(fake), "--metric", "fid,is")
    assert code == 0, err
    return _strict(out), err


def test_cache_entries_are_verified_before_use(tmp_path, capsys):
    """Each way an entry can be wrong is caught, warned about in one line, recomputed and replaced."""
    import dgm.metrics.cache as cache

    fake = _fakes(tmp_path)
    clean, err = _fid(tmp_path, capsys, fake)
    assert err == ""
    entry = _entry(tmp_path)
    with np.load(entry) as z:
        good = {k: z[k] for k in z.files}
    meta = json.loads(str(good["meta"]))

    def rewrite(**arrays):  # a consistent entry (its digests recomputed) holding other arrays
        arrays = {**{k: v for k, v in good.items() if k != "meta"}, **arrays}
        m = {**meta, "arrays": {k: cache._describe(v) for k, v in arrays.items()}}
        np.savez(entry, meta=np.array(json.dumps(m)), **arrays)

    feats = good["features"]
    nan = feats.copy()
    nan[0, 0] = np.nan
    damage = {
        "altered values": lambda: np.savez(entry, meta=good["meta"], features=feats * 2, probs=good["probs"]),
        "no digest": lambda: np.savez(entry, features=feats, probs=good["probs"]),
        "wrong rows": lambda: rewrite(features=feats[:-1]),
        "wrong dimension": lambda: rewrite(features=feats[:, :-1]),
        "NaN": lambda: rewrite(features=nan),
        "other key": lambda: np.savez(entry, meta=np.array(json.dumps({**meta, "key": "0" * 64})),
                                      **{k: v for k, v in good.items() if k != "meta"}),
        "truncated": lambda: entry.write_bytes(entry.read_bytes()[:1000]),
        "empty": lambda: entry.write_bytes(b""),
    }
    for name, spoil in damage.items():
        spoil()
        again, err = _fid(tmp_path, capsys, fake)
        assert again == clean, name
        assert err.count("\n") == 1 and err.startswith("dgm: warning: ignoring the feature cache entry"), (name, err)
        with np.load(_entry(tmp_path)) as z:  # replaced by a good entry
            assert z["meta"] == good["meta"] and np.array_equal(z["features"], feats), name
        assert _fid(tmp_path, capsys, fake)[1] == ""  # and that one is used silently
    assert not list(entry.parent.glob("*.tmp"))


def test_a_shared_cache_cannot_change_another_users_fid(tmp_path, capsys):
    """An entry other users can write to (or own) is not read; a folder they can write to is not written to."""
    fake = _fakes(tmp_path)
    clean, _ = _fid(tmp_path, capsys, fake)
    entry = _entry(tmp_path)
    assert entry.stat().st_mode & 0o777 == 0o600
    with np.load(entry) as z:
        good = {k: z[k] for k in z.files}
    np.savez(entry, **{**good, "probs": np.full_like(good["probs"], 0.1)})  # planted: a valid-looking entry ...
    entry.chmod(0o666)  # ... that anyone could have written
    again, err = _fid(tmp_path, capsys, fake)
    assert again == clean and "other users can write" in err and err.count("\n") == 1
    assert entry.stat().st_mode & 0o777 == 0o600  # replaced by our own private entry
    if os.getuid() == 0:  # root can hand the entry to another user, as a planted file would be
        os.chown(entry, 4242, -1)
        again, err = _fid(tmp_path, capsys, fake)
        assert again == clean and "belongs to another user (uid 4242)" in err and entry.stat().st_uid == 0
    entry.unlink()
    entry.parent.chmod(0o777)  # a world-writable cache folder: used for nothing
    try:
        again, err = _fid(tmp_path, capsys, fake)
    finally:
        entry.parent.chmod(0o700)
    assert again == clean and "not writing to the feature cache" in err and not list(entry.parent.iterdir())


def test_a_failed_cache_write_leaves_no_temporary_file(tmp_path, capsys, monkeypatch):
    import errno
    import dgm.metrics.cache as cache

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    fake = _fakes(tmp_path)
    clean, _ = _fid(tmp_path, capsys, fake)
    _entry(tmp_path).unlink()
    monkeypatch.setattr(cache.np, "savez", full)
    again, err = _fid(tmp_path, capsys, fake)
    assert again == clean and "No space left" in err and err.count("\n") == 1
    assert not list((tmp_path / "cache" / "features").iterdir())
