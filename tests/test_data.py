"""Tests of dgm.data: datasets, IDX reader, transforms and toy densities (no network)."""
import gzip
import math
import os

import numpy as np
import pytest
import torch

from dgm.data import (DATASETS, ImageDataset, ImageSpec, ToyDataset, binarize_dynamic, binarize_fixed, dequantize,
                      fixed_draw, from_pm1, load_dataset, quantize, read_idx, to_pm1)
from dgm.errors import DgmError

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def _one_line_error(fn, *needles):
    """Run fn, expect a DgmError with a single-line message containing every needle."""
    with pytest.raises(DgmError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg
    for n in needles:
        assert str(n) in msg, (n, msg)
    return msg


def _idx_bytes(arr, code=0x08):
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = bytes([0, 0, code, arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes()
    return head + np.ascontiguousarray(arr, dtype=dt).tobytes()


def _write(path, data, gz=False):
    with (gzip.open(path, "wb") if gz else open(path, "wb")) as f:
        f.write(data)
    return str(path)


# ---------------------------------------------------------------- digits and transforms

def test_digits_splits_cover_all_images_once():
    from sklearn.datasets import load_digits

    ds = {s: load_dataset("digits", s) for s in ("train", "val", "test")}
    assert [len(ds[s]) for s in ("train", "val", "test")] == [1257, 180, 360]
    for d in ds.values():
        assert d.raw.dtype == torch.uint8 and d.raw.shape[1:] == (1, 8, 8)
        assert d.raw_levels == 17 and d.spec == ImageSpec(1, 8, 8, 17, 10) and d.spec.dims == 64
        x, y = d[0]
        assert x.dtype == torch.float32 and x.shape == (1, 8, 8) and y.dtype == torch.int64 and y.ndim == 0
    rows = np.concatenate([np.concatenate([d.raw.reshape(len(d), -1).numpy(), d.labels.numpy()[:, None]], 1)
                           for d in ds.values()])
    ref = load_digits()
    full = np.concatenate([ref.images.reshape(-1, 64), ref.target[:, None]], 1).astype(np.int64)
    # the same multiset of (image, label) rows: disjoint splits that cover all 1797 examples
    got, ref_rows = np.unique(rows, axis=0, return_counts=True), np.unique(full, axis=0, return_counts=True)
    assert np.array_equal(got[0], ref_rows[0]) and np.array_equal(got[1], ref_rows[1])
    again = load_dataset("digits", "val")
    assert torch.equal(again.raw, ds["val"].raw)  # fixed split


def test_binarize_fixed_threshold():
    r = torch.arange(17, dtype=torch.uint8)
    assert binarize_fixed(r, 17).tolist() == [0.0] * 8 + [1.0] * 9  # level 7 -> 0, level 8 -> 1
    b = torch.arange(256, dtype=torch.uint8)
    assert binarize_fixed(b, 256).tolist() == [0.0] * 128 + [1.0] * 128
    d = load_dataset("digits", "test", binarize="fixed")
    assert d.spec.levels == 2
    x, _ = d.tensors()
    assert torch.equal(x, (d.raw >= 8).float())


def test_quantize_known_values():
    r = torch.tensor([0, 4, 5, 8, 9, 12, 13, 16], dtype=torch.uint8)
    assert quantize(r, 17, 4).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    b = torch.tensor([0, 63, 64, 127, 128, 191, 192, 255], dtype=torch.uint8)
    assert quantize(b, 256, 4).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert torch.equal(quantize(b, 256, 256), b.float())
    d = load_dataset("digits", "test", levels=4)
    assert d.spec.levels == 4 and torch.equal(d[3][0], quantize(d.raw[3], 17, 4))


def test_pm1_round_trip_and_scale():
    for k in (2, 4, 17, 256):
        x = torch.arange(k, dtype=torch.float32)
        y = to_pm1(x, k)
        assert y[0] == -1 and y[-1] == 1 and y.dtype == torch.float32
        assert torch.equal(from_pm1(y, k), x)
        assert torch.equal(from_pm1(y + 0.4 * (2 / (k - 1)) * (torch.rand(k) - 0.5), k), x)
    d = load_dataset("digits", "test", scale="pm1")
    assert d.spec.scale == "pm1" and torch.allclose(d[0][0], d.raw[0].float() / 16 * 2 - 1)


def test_dequantize_range():
    x = torch.randint(0, 256, (1000,)).float()
    y = dequantize(x, 256, generator=torch.Generator().manual_seed(0))
    assert (y >= 0).all() and (y < 1).all() and torch.equal(torch.floor(y * 256), x)
    top = dequantize(torch.full((1_000_000,), 255.0), 256, generator=torch.Generator().manual_seed(1))
    assert (top < 1).all()


def test_dynamic_binarization_mean_and_reproducibility():
    r = torch.arange(17, dtype=torch.uint8).repeat(4000, 1)
    m = binarize_dynamic(r, 17, generator=torch.Generator().manual_seed(0)).mean(0)
    assert torch.allclose(m, torch.arange(17) / 16, atol=0.035)
    d = load_dataset("digits", "train", binarize="dynamic")
    assert d.spec.levels == 2
    torch.manual_seed(5)
    a = torch.stack([d[i][0] for i in range(40)])
    torch.manual_seed(5)
    b = torch.stack([d[i][0] for i in range(40)])
    c = torch.stack([d[i][0] for i in range(40)])  # fresh draws, not a cached sample
    assert torch.equal(a, b) and not torch.equal(b, c)
    raw = d.raw[:40].float()
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert (a[raw == 0] == 0).all() and (a[raw == 16] == 1).all()
    # the deterministic path uses the fixed threshold
    assert torch.equal(d.to_model_levels(d.raw[:40]), (d.raw[:40] >= 8).float())


def test_fixed_draw_of_dynamic_binarization_for_evaluation():
    """Evaluation scores one draw fixed by a generator: the same seed gives the same draw whatever the global RNG,
    batch or reading order; another seed another draw; training's dataset keeps drawing afresh from the global RNG."""
    d = load_dataset("digits", "test", binarize="dynamic", scale="pm1")
    torch.manual_seed(1)
    a = d.with_fixed_draw(torch.Generator().manual_seed(3))
    torch.manual_seed(2)
    b = d.with_fixed_draw(torch.Generator().manual_seed(3))
    xa = torch.stack([a[i][0] for i in range(len(a))])
    assert torch.equal(xa, torch.stack([b[i][0] for i in reversed(range(len(b)))]).flip(0))
    assert torch.equal(xa, a.tensors()[0]) and torch.equal(a.tensors()[1], d.labels)
    p = (d.raw.float() / 16)  # one Bernoulli(raw / 16) draw of the whole split, scaled to [-1, 1]
    assert torch.equal(xa, torch.bernoulli(p, generator=torch.Generator().manual_seed(3)) * 2 - 1)
    assert not torch.equal(xa, d.with_fixed_draw(torch.Generator().manual_seed(4)).tensors()[0])
    torch.manual_seed(5)
    fresh = d[0][0]
    torch.manual_seed(5)  # the training dataset is untouched: a fresh draw from the global RNG on each access
    assert torch.equal(fresh, to_pm1(binarize_dynamic(d.raw[0], 17), 2))
    fixed = load_dataset("digits", "test", binarize="fixed")
    assert fixed.with_fixed_draw(torch.Generator().manual_seed(3)) is fixed  # nothing random to fix
    assert torch.equal(fixed_draw(d, torch.Generator().manual_seed(3)).tensors()[0], xa)
    other = torch.utils.data.TensorDataset(torch.zeros(2, 1, 8, 8), torch.zeros(2))
    assert fixed_draw(other, torch.Generator()) is other  # any other dataset is taken as it is


def test_to_model_levels_matches_getitem_and_checks_range():
    d = load_dataset("digits", "val", levels=8, scale="pm1")
    assert torch.equal(d.to_model_levels(d.raw[5]), d[5][0])
    _one_line_error(lambda: d.to_model_levels(torch.full((1, 8, 8), 200, dtype=torch.uint8)), "0..16")


# ---------------------------------------------------------------- IDX

@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, gz):
    rng = np.random.RandomState(0)
    a = rng.randint(0, 256, (7, 5, 3)).astype(np.uint8)
    p = _write(tmp_path / "a-idx3-ubyte", _idx_bytes(a), gz=gz)  # gzip found by magic, not by name
    out = read_idx(p)
    assert out.dtype == np.uint8 and np.array_equal(out, a)
    cases = [(0x09, rng.randint(-128, 128, 9).astype(np.int8)), (0x0B, rng.randint(-3000, 3000, (2, 3))),
             (0x0C, rng.randint(-2 ** 30, 2 ** 30, (2, 2, 2, 2))), (0x0D, rng.randn(4).astype(np.float32)),
             (0x0E, rng.randn(3, 2))]
    for code, arr in cases:
        p = _write(tmp_path / f"t{code}", _idx_bytes(arr, code), gz=gz)
        out = read_idx(p)
        assert out.dtype.isnative and np.array_equal(out, arr), code


def test_read_idx_errors(tmp_path):
    good = _idx_bytes(np.zeros((4, 3, 3), np.uint8))
    bad = {
        "truncated": (good[:-5], "truncated"),
        "trailing": (good + b"\x00\x00", "trailing"),
        "magic": (b"\x01\x00" + good[2:], "magic"),
        "ndim0": (good[:3] + b"\x00" + good[4:], "dimension"),
        "ndim5": (good[:3] + b"\x05" + good[4:], "dimension"),
        "type": (good[:2] + b"\x07" + good[3:], "type code"),
        "short": (b"\x00\x00", "header"),
        "header": (good[:10], "header"),
    }
    for name, (data, what) in bad.items():
        for gz in (False, True):
            p = _write(tmp_path / f"{name}{int(gz)}", data, gz=gz)
            _one_line_error(lambda: read_idx(p), p, what)
    _one_line_error(lambda: read_idx(str(tmp_path / "missing")), "missing")
    p = _write(tmp_path / "badgz", b"\x1f\x8b" + b"junk" * 10)
    _one_line_error(lambda: read_idx(p), p, "gzip")


def _mnist_dir(root, n_train=12, n_test=4, gz_images=False):
    rng = np.random.RandomState(1)
    os.makedirs(root, exist_ok=True)
    data = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.randint(0, 256, (n, 28, 28)).astype(np.uint8)
        y = rng.randint(0, 10, n).astype(np.uint8)
        name = f"{prefix}-images-idx3-ubyte" + (".gz" if gz_images else "")
        _write(os.path.join(root, name), _idx_bytes(x), gz=gz_images)
        _write(os.path.join(root, f"{prefix}-labels-idx1-ubyte"), _idx_bytes(y))
        data[prefix] = (x, y)
    return data


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_tiny_files(tmp_path, gz):
    data = _mnist_dir(tmp_path, gz_images=gz)
    tr, va, te = (load_dataset("mnist", s, data_dir=str(tmp_path)) for s in ("train", "val", "test"))
    # val = last min(5000, N // 10) training images: 12 -> 11 train + 1 val
    assert (len(tr), len(va), len(te)) == (11, 1, 4)
    x, y = data["train"]
    assert np.array_equal(tr.raw[:, 0].numpy(), x[:11]) and np.array_equal(va.raw[:, 0].numpy(), x[11:])
    assert np.array_equal(tr.labels.numpy(), y[:11]) and np.array_equal(te.raw[:, 0].numpy(), data["t10k"][0])
    assert tr.spec == ImageSpec(1, 28, 28, 256, 10) and tr.raw_levels == 256
    b = load_dataset("mnist", "test", data_dir=tmp_path, binarize="fixed")
    assert torch.equal(b[2][0], (b.raw[2] >= 128).float())


def test_mnist_errors(tmp_path):
    _one_line_error(lambda: load_dataset("mnist"), "mnist needs --data-dir", "train-images-idx3-ubyte")
    _one_line_error(lambda: load_dataset("mnist", data_dir=str(tmp_path / "nope")), "mnist", "nope")
    _one_line_error(lambda: load_dataset("mnist", data_dir=str(tmp_path)), "mnist", str(tmp_path),
                    "train-images-idx3-ubyte")
    _mnist_dir(tmp_path)
    lbl = str(tmp_path / "train-labels-idx1-ubyte")
    _write(lbl, _idx_bytes(np.zeros(5, np.uint8)))
    _one_line_error(lambda: load_dataset("mnist", data_dir=str(tmp_path)), "12 images", "5 labels")
    _write(lbl, _idx_bytes(np.full(12, 10, np.uint8)))
    _one_line_error(lambda: load_dataset("mnist", data_dir=str(tmp_path)), lbl, "label 10")


@pytest.mark.skipif(not os.path.isdir(FASHION_DIR),
                    reason=f"{FASHION_DIR} missing (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_installed():
    sizes = {}
    for s in ("train", "val", "test"):
        d = load_dataset("fashion-mnist", s)
        sizes[s] = len(d)
        assert d.raw.shape[1:] == (1, 28, 28) and d.spec.num_classes == 10
        assert d.labels.min() >= 0 and d.labels.max() <= 9 and len(d.labels.unique()) == 10
    assert sizes == {"train": 55000, "val": 5000, "test": 10000}


def test_fashion_mnist_missing_dir(tmp_path):
    _one_line_error(lambda: load_dataset("fashion-mnist", data_dir=str(tmp_path / "nope")),
                    "fashion-mnist", "nope", "apt-get install -y dataset-fashion-mnist", "--data-dir")
    _one_line_error(lambda: load_dataset("fashion-mnist", "test", data_dir=str(tmp_path)),
                    "fashion-mnist", str(tmp_path), "t10k-images-idx3-ubyte[.gz]", "apt-get")


# ---------------------------------------------------------------- binarized MNIST, CIFAR-10, image folders

def _amat_lines(x):
    return "".join(" ".join(str(v) for v in row) + "\n" for row in x)


def test_binarized_mnist(tmp_path):
    rng = np.random.RandomState(2)
    xs = {s: rng.randint(0, 2, (n, 784)) for s, n in (("train", 5), ("valid", 3), ("test", 2))}
    for s, x in xs.items():
        (tmp_path / f"binarized_mnist_{s}.amat").write_text(_amat_lines(x))
    tr = load_dataset("binarized-mnist", data_dir=str(tmp_path))
    va = load_dataset("binarized-mnist", "val", data_dir=str(tmp_path))
    assert len(tr) == 5 and len(va) == 3 and tr.raw_levels == 2 and tr.spec == ImageSpec(1, 28, 28, 2, 0)
    assert np.array_equal(tr.raw.reshape(5, -1).numpy(), xs["train"]) and (tr.labels == -1).all()
    # irregular whitespace goes through the slow path and gives the same values
    text = _amat_lines(xs["test"]).replace(" ", "  ").replace("\n", " \r\n") + "\n"
    (tmp_path / "binarized_mnist_test.amat").write_text(text)
    te = load_dataset("binarized-mnist", "test", data_dir=str(tmp_path))
    assert np.array_equal(te.raw.reshape(2, -1).numpy(), xs["test"])
    bad = tmp_path / "binarized_mnist_train.amat"
    bad.write_text(_amat_lines(xs["train"][:1]) + _amat_lines(xs["train"][:1, :783]))
    _one_line_error(lambda: load_dataset("binarized-mnist", data_dir=str(tmp_path)), bad, "line 2", "783")
    row = xs["train"][:1].copy()
    row[0, 7] = 2
    bad.write_text(_amat_lines(xs["train"][:2]) + _amat_lines(row))
    _one_line_error(lambda: load_dataset("binarized-mnist", data_dir=str(tmp_path)), bad, "line 3", "'2'")
    _one_line_error(lambda: load_dataset("binarized-mnist"), "binarized-mnist needs --data-dir")


def test_cifar10_tiny(tmp_path):
    sub = tmp_path / "cifar-10-batches-bin"
    sub.mkdir()
    rng = np.random.RandomState(3)
    recs = []
    for i in range(1, 7):
        n = 3
        img = rng.randint(0, 256, (n, 3, 32, 32)).astype(np.uint8)
        img[:, 0], img[:, 1], img[:, 2] = 10, 20, 30  # R, G, B planes
        img[:, 0, 0, 1] = 99  # row 0, column 1 of the R plane
        lab = rng.randint(0, 10, n).astype(np.uint8)
        name = "test_batch.bin" if i == 6 else f"data_batch_{i}.bin"
        _write(sub / name, np.concatenate([lab[:, None], img.reshape(n, -1)], 1).tobytes())
        recs.append(lab)
    tr, va, te = (load_dataset("cifar10", s, data_dir=str(tmp_path)) for s in ("train", "val", "test"))
    assert (len(tr), len(va), len(te)) == (14, 1, 3)  # 15 training images: val = 15 // 10
    assert tr.spec == ImageSpec(3, 32, 32, 256, 10)
    assert (tr.raw[:, 0, 0, 0] == 10).all() and (tr.raw[:, 1] == 20).all() and (tr.raw[:, 2] == 30).all()
    assert (te.raw[:, 0, 0, 1] == 99).all()
    assert np.array_equal(np.concatenate([tr.labels.numpy(), va.labels.numpy()]), np.concatenate(recs[:5]))
    assert np.array_equal(te.labels.numpy(), recs[5])
    _write(sub / "test_batch.bin", b"\x00" * 3074)
    _one_line_error(lambda: load_dataset("cifar10", "test", data_dir=str(tmp_path)), "test_batch.bin", "3073")
    os.remove(sub / "data_batch_4.bin")
    _one_line_error(lambda: load_dataset("cifar10", data_dir=str(tmp_path)), "data_batch_4.bin", "--data-dir")


def _png_dir(root, n, size=(6, 5), mode="RGB"):
    from PIL import Image

    os.makedirs(root / "sub", exist_ok=True)
    rng = np.random.RandomState(4)
    arrs = []
    for i in range(n):
        shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
        a = rng.randint(0, 256, shape).astype(np.uint8)
        folder = root / "sub" if i % 2 else root
        Image.fromarray(a, mode=mode).save(folder / f"img{i:02d}.png")
        arrs.append(a)
    return arrs


def test_images_folder(tmp_path):
    arrs = _png_dir(tmp_path, 10)
    ds = {s: load_dataset("images", s, data_dir=str(tmp_path)) for s in ("train", "val", "test")}
    assert [len(ds[s]) for s in ("train", "val", "test")] == [8, 1, 1]
    d = ds["train"]
    assert d.spec == ImageSpec(3, 5, 6, 256, 0) and d.raw_levels == 256 and (d.labels == -1).all()
    got = sorted(x.tobytes() for s in ds.values() for x in s.raw.permute(0, 2, 3, 1).numpy())
    assert got == sorted(a.tobytes() for a in arrs)  # lossless PNG, each image in exactly one split
    g = load_dataset("images", "test", data_dir=str(tmp_path), channels=1, image_size=4)
    assert g.raw.shape == (1, 1, 4, 4) and g.spec.channels == 1
    t = load_dataset("images", "val", data_dir=str(tmp_path), image_size="3")  # CLI-style string option
    assert t.raw.shape == (1, 3, 3, 3)


def test_images_folder_errors(tmp_path):
    from PIL import Image

    _one_line_error(lambda: load_dataset("images"), "images needs --data-dir")
    _one_line_error(lambda: load_dataset("images", data_dir=str(tmp_path)), "no PNG/JPEG", str(tmp_path))
    _png_dir(tmp_path, 4, mode="L")
    assert load_dataset("images", data_dir=str(tmp_path), channels=1).raw.shape[1:] == (1, 5, 6)
    odd = tmp_path / "sub" / "zz.png"
    Image.fromarray(np.zeros((7, 7), np.uint8)).save(odd)
    _one_line_error(lambda: load_dataset("images", data_dir=str(tmp_path)), "image_size")
    assert load_dataset("images", data_dir=str(tmp_path), image_size=5).raw.shape[1:] == (3, 5, 5)
    odd.write_bytes(b"not a png")
    _one_line_error(lambda: load_dataset("images", data_dir=str(tmp_path), image_size=5), odd)
    _one_line_error(lambda: load_dataset("images", data_dir=str(tmp_path), channels=2), "channels")
    _one_line_error(lambda: load_dataset("images", data_dir=str(tmp_path), size=5), "size", "image_size")


# ---------------------------------------------------------------- toy mixtures

def _scipy_mixture_logpdf(ds, x):
    from scipy.stats import multivariate_normal

    dens = sum(w * multivariate_normal(mean=m, cov=ds.std ** 2 * np.eye(ds.dim)).pdf(x)
               for w, m in zip(ds.weights.numpy(), ds.means.numpy()))
    return np.log(dens)


@pytest.mark.parametrize("name", ["ring8", "grid25", "gmm1d"])
def test_toy_log_prob_matches_scipy(name):
    ds = load_dataset(name, "val")
    rng = np.random.RandomState(0)
    x = ds.points[:200].numpy().astype(np.float64) + 0.5 * ds.std * rng.randn(200, ds.dim)
    mine = ds.log_prob(torch.from_numpy(x))
    assert mine.shape == (200,) and mine.dtype == torch.float64
    np.testing.assert_allclose(mine.numpy(), _scipy_mixture_logpdf(ds, x), rtol=1e-9, atol=1e-9)
    far = torch.tensor([[9.0] * ds.dim])  # logsumexp keeps far-away points finite
    assert torch.isfinite(ds.log_prob(far)).all()


def test_toy_density_integrates_to_one():
    ring = load_dataset("ring8", "test")
    h = 0.004
    g = torch.arange(-1.2, 1.2, h, dtype=torch.float64)  # ring of radius 1, std 0.01
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    total = sum(ring.log_prob(c).exp().sum() for c in pts.split(200_000)) * h * h
    assert abs(float(total) - 1) < 1e-3
    gm = load_dataset("gmm1d", "test")
    h = 1e-3
    x = torch.arange(-6, 6, h, dtype=torch.float64)[:, None]
    assert abs(float(gm.log_prob(x).exp().sum() * h) - 1) < 1e-6


def test_toy_protocols_and_samples():
    ring, grid, gm = (load_dataset(n, "train") for n in ("ring8", "grid25", "gmm1d"))
    assert len(ring) == 100_000 and len(load_dataset("ring8", "val")) == 10_000
    # VEEGAN / PacGAN protocol (PacGAN's 2DRing/2DGrid config.py): ring radius 1, std 0.01; grid std 0.05
    assert ring.std == 0.01 and grid.std == 0.05 and gm.std == 0.5 and gm.dim == 1 and ring.dim == 2
    assert torch.allclose(ring.means.norm(dim=1), torch.full((8,), 1.0, dtype=torch.float64))
    angles = torch.atan2(ring.means[:, 1], ring.means[:, 0]).remainder(2 * math.pi)
    assert torch.allclose(angles, torch.arange(8, dtype=torch.float64) * 2 * math.pi / 8, atol=1e-12)  # 8 distinct
    assert sorted(map(tuple, grid.means.tolist())) == [(a, b) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)]
    x, y = ring[0]
    assert x.shape == (2,) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(load_dataset("ring8", "train").points, ring.points)  # fixed data
    assert not torch.equal(load_dataset("ring8", "val").points, ring.points[:10_000])
    for ds in (ring, grid, gm):
        for pts, comp in ((ds.points, ds.labels), ds.sample(20_000, torch.Generator().manual_seed(0))):
            assert pts.dtype == torch.float32 and comp.dtype == torch.int64
            for c in range(ds.num_components):
                p = pts[comp == c].double()
                assert len(p) > 0.5 * len(pts) / ds.num_components
                assert torch.allclose(p.mean(0), ds.means[c], atol=5 * ds.std / len(p) ** 0.5)
                assert torch.allclose(p.std(0), torch.full((ds.dim,), ds.std, dtype=torch.float64), rtol=0.1)
    a = ring.sample(5, torch.Generator().manual_seed(1))[0]
    assert torch.equal(a, ring.sample(5, torch.Generator().manual_seed(1))[0])


# ---------------------------------------------------------------- registry and option errors

def test_registry_and_errors(tmp_path):
    for n in ("digits", "fashion-mnist", "mnist", "binarized-mnist", "cifar10", "images", "ring8", "grid25", "gmm1d"):
        assert n in DATASETS.names() and DATASETS.help(n)
    _one_line_error(lambda: load_dataset("digit"), "unknown dataset", "'digits'")
    _one_line_error(lambda: load_dataset("digits", "valid"), "split", "'valid'", "train, val, test")
    _one_line_error(lambda: load_dataset("digits", binarize="stochastic"), "stochastic", "fixed", "dynamic")
    _one_line_error(lambda: load_dataset("digits", binarize="fixed", levels=4), "binarize", "levels")
    _one_line_error(lambda: load_dataset("digits", levels=32), "levels", "2..17")
    _one_line_error(lambda: load_dataset("digits", levels=1), "levels")
    _one_line_error(lambda: load_dataset("digits", scale="01"), "scale", "pm1")
    _one_line_error(lambda: load_dataset("digits", image_size=4), "digits", "image_size")
    _one_line_error(lambda: load_dataset("ring8", binarize="fixed"), "ring8", "toy")
    _one_line_error(lambda: load_dataset("grid25", levels=4), "grid25")
    _one_line_error(lambda: load_dataset("cifar10"), "cifar10 needs --data-dir", "data_batch_1.bin")
    assert isinstance(load_dataset("gmm1d", "val"), ToyDataset)
    assert isinstance(load_dataset("digits", "val", binarize="none"), ImageDataset)
