"""SWD (Karras et al. 2018) and MS-SSIM (Wang et al. 2003) against independent references (scipy, numpy, skimage)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import wasserstein_distance

from dgm.errors import DgmError
from dgm.metrics.msssim import MSSSIM_WEIGHTS, ms_ssim, msssim_diversity, msssim_settings
from dgm.metrics.swd import (gaussian_pyramid, laplacian_pyramid, random_directions, reconstruct, sliced_wasserstein,
                             swd)


def _smooth_images(n, c, h, w, seed=0):
    """Random images in [0, 1] with spatial structure (blurred noise), so patches are not pure noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, h, w, generator=g)
    x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    return (x - x.amin()) / (x.amax() - x.amin())


# ---------------------------------------------------------------- pyramid

@pytest.mark.parametrize("size,levels", [(28, 3), (32, 4), (8, 3), (7, 3)])
def test_laplacian_pyramid_reconstructs_exactly(size, levels):
    x = torch.rand(3, 2, size, size, generator=torch.Generator().manual_seed(size))
    pyr = laplacian_pyramid(x, levels)
    assert [p.shape[-1] for p in pyr][:2] == [size, (size + 1) // 2]
    torch.testing.assert_close(reconstruct(pyr), x, atol=1e-5, rtol=0)


def test_pyramid_sizes_for_odd_levels():
    assert [tuple(p.shape[-2:]) for p in gaussian_pyramid(torch.zeros(1, 1, 28, 28), 4)] == \
        [(28, 28), (14, 14), (7, 7), (4, 4)]


def test_laplacian_of_constant_image_is_zero_except_coarsest():
    x = torch.full((2, 3, 28, 28), 0.7)
    pyr = laplacian_pyramid(x, 3)
    for lap in pyr[:-1]:
        assert lap.abs().max() < 1e-6
    torch.testing.assert_close(pyr[-1], torch.full((2, 3, 7, 7), 0.7))


# ---------------------------------------------------------------- sliced Wasserstein

def test_sliced_wasserstein_matches_scipy_on_same_directions():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(60, 5, generator=g, dtype=torch.float64)
    b = 0.5 * torch.randn(60, 5, generator=g, dtype=torch.float64) + 0.3
    projections, repeats, seed = 16, 3, 7
    got = sliced_wasserstein(a, b, projections=projections, repeats=repeats, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    dirs = torch.cat([random_directions(5, projections, gen) for _ in range(repeats)], dim=1)
    torch.testing.assert_close(dirs.norm(dim=0), torch.ones(projections * repeats, dtype=torch.float64))
    pa, pb = (a @ dirs).numpy(), (b @ dirs).numpy()
    ref = np.mean([wasserstein_distance(pa[:, k], pb[:, k]) for k in range(dirs.shape[1])])
    assert got == pytest.approx(ref, rel=1e-10)


def test_sliced_wasserstein_shape_error():
    with pytest.raises(DgmError):
        sliced_wasserstein(torch.zeros(10, 3), torch.zeros(9, 3))


# ---------------------------------------------------------------- SWD

def test_swd_of_identical_sets_is_zero():
    x = _smooth_images(8, 3, 32, 32)
    out = swd(x, x.clone(), patches_per_image=32, projections=64, repeats=2, min_resolution=8)
    assert out["swd"] == 0.0
    assert list(out["swd_levels"]) == ["32", "16", "8"]


def test_swd_levels_follow_resolution_rule():
    small = _smooth_images(4, 1, 8, 8)
    assert list(swd(small, small, projections=8, repeats=1)["swd_levels"]) == ["8"]  # one level, 7x7 patches
    mnist = _smooth_images(4, 1, 28, 28)
    assert list(swd(mnist, mnist, projections=8, repeats=1, min_resolution=7)["swd_levels"]) == ["28", "14", "7"]
    assert list(swd(mnist, mnist, projections=8, repeats=1)["swd_levels"]) == ["28"]  # 14 < min_resolution 16
    tiny = _smooth_images(2, 1, 5, 5)
    assert list(swd(tiny, tiny, projections=8, repeats=1)["swd_levels"]) == ["5"]  # patch clipped to 5x5


def test_swd_grows_with_noise():
    real = _smooth_images(8, 3, 32, 32, seed=1)
    base = _smooth_images(8, 3, 32, 32, seed=2)
    noise = torch.randn(base.shape, generator=torch.Generator().manual_seed(3))
    values = [swd(real, base + s * noise, patches_per_image=32, projections=64, repeats=1, min_resolution=8,
                  normalize="union")["swd"]
              for s in (0.0, 0.05, 0.2, 0.5)]
    assert all(v1 < v2 for v1, v2 in zip(values, values[1:])), values


def test_swd_uses_min_count_and_rejects_shape_mismatch():
    x = _smooth_images(10, 1, 16, 16)
    out = swd(x, x[:4], projections=8, repeats=1)
    assert out["swd"] >= 0 and set(out["swd_levels"]) == {"16"}
    with pytest.raises(DgmError, match="same"):
        swd(x, _smooth_images(10, 1, 8, 8))
    with pytest.raises(DgmError):
        swd(x[0], x[0])


# ---------------------------------------------------------------- MS-SSIM

def _np_ms_ssim(x, y, scales, kernel_size, sigma=1.5, data_range=1.0, weights=None):
    """Brute-force MS-SSIM in numpy: explicit window sums at every valid position, 2x2 mean pooling."""
    t = np.arange(kernel_size) - (kernel_size - 1) / 2
    g = np.exp(-t ** 2 / (2 * sigma ** 2))
    win = np.outer(g, g) / np.outer(g, g).sum()
    if weights is None:
        weights = np.array(MSSSIM_WEIGHTS[:scales]) / np.sum(MSSSIM_WEIGHTS[:scales])
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    out = []
    for a, b in zip(x.astype(np.float64), y.astype(np.float64)):  # a: (C, H, W)
        val = 1.0
        for j in range(scales):
            if j > 0:
                h, w = a.shape[1] // 2 * 2, a.shape[2] // 2 * 2
                a = a[:, :h, :w].reshape(a.shape[0], h // 2, 2, w // 2, 2).mean(axis=(2, 4))
                b = b[:, :h, :w].reshape(b.shape[0], h // 2, 2, w // 2, 2).mean(axis=(2, 4))
            vals = []
            for ch in range(a.shape[0]):
                for r in range(a.shape[1] - kernel_size + 1):
                    for s in range(a.shape[2] - kernel_size + 1):
                        pa = a[ch, r:r + kernel_size, s:s + kernel_size]
                        pb = b[ch, r:r + kernel_size, s:s + kernel_size]
                        mx, my = (win * pa).sum(), (win * pb).sum()
                        vx, vy = (win * (pa - mx) ** 2).sum(), (win * (pb - my) ** 2).sum()
                        cxy = (win * (pa - mx) * (pb - my)).sum()
                        cs = (2 * cxy + c2) / (vx + vy + c2)
                        lum = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
                        vals.append(cs if j < scales - 1 else lum * cs)
            val *= max(np.mean(vals), 0.0) ** weights[j]
        out.append(val)
    return np.array(out)


def test_msssim_settings_rule():
    assert msssim_settings(8) == (2, 3)
    assert msssim_settings(28) == (2, 11)
    assert msssim_settings(64) == (3, 11)
    assert msssim_settings(176) == (5, 11)
    assert msssim_settings(28, scales=3) == (3, 7)
    assert msssim_settings(28, kernel_size=3) == (4, 3)
    for bad in (dict(size=2), dict(size=8, scales=3), dict(size=20, kernel_size=11, scales=2)):
        with pytest.raises(DgmError, match="too small"):
            msssim_settings(**bad)


@pytest.mark.parametrize("size,scales,kernel_size", [(20, None, None), (8, None, None), (24, 3, None)])
def test_ms_ssim_matches_numpy_brute_force(size, scales, kernel_size):
    g = torch.Generator().manual_seed(size)
    x = torch.rand(3, 2, size, size, generator=g)
    y = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    got = ms_ssim(x, y, scales=scales, kernel_size=kernel_size)
    s, k = msssim_settings(size, scales, kernel_size)
    ref = _np_ms_ssim(x.numpy(), y.numpy(), s, k)
    assert got.shape == (3,)
    np.testing.assert_allclose(got.double().numpy(), ref, atol=1e-5, rtol=0)
    assert (ref > 0.05).all() and (ref < 0.99).all()  # a non-trivial comparison


def test_ms_ssim_five_scales_uses_standard_weights():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 48, 48, generator=g)
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert msssim_settings(48, kernel_size=3) == (5, 3)
    ref = _np_ms_ssim(x.numpy(), y.numpy(), 5, 3, weights=np.array(MSSSIM_WEIGHTS))  # small window: brute force fast
    np.testing.assert_allclose(ms_ssim(x, y, kernel_size=3).double().numpy(), ref, atol=1e-5, rtol=0)


def test_ms_ssim_identity_and_single_scale_is_ssim():
    from skimage.metrics import structural_similarity
    g = torch.Generator().manual_seed(5)
    x = torch.rand(2, 3, 32, 32, generator=g)
    torch.testing.assert_close(ms_ssim(x, x), torch.ones(2))
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    got = ms_ssim(x, y, scales=1, kernel_size=11)
    ref = [structural_similarity(a, b, channel_axis=0, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=1.0)
           for a, b in zip(x.double().numpy(), y.double().numpy())]
    np.testing.assert_allclose(got.double().numpy(), ref, atol=1e-5, rtol=0)


def test_ms_ssim_shape_error():
    with pytest.raises(DgmError):
        ms_ssim(torch.zeros(2, 1, 16, 16), torch.zeros(2, 1, 16, 15))
    with pytest.raises(DgmError, match="too small"):
        ms_ssim(torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 2))


def test_msssim_diversity():
    g = torch.Generator().manual_seed(0)
    same = torch.rand(1, 1, 16, 16, generator=g).expand(10, 1, 16, 16)
    assert msssim_diversity(same, pairs=50) == pytest.approx(1.0, abs=1e-6)
    noise = torch.rand(20, 1, 16, 16, generator=g)
    near_dupes = (noise[:1] + 0.05 * torch.randn(20, 1, 16, 16, generator=g)).clamp(0, 1)
    diverse, dupes = msssim_diversity(noise.numpy(), pairs=200), msssim_diversity(near_dupes, pairs=200)
    assert diverse < 0.2 < 0.8 < dupes
    with pytest.raises(DgmError):
        msssim_diversity(noise[:1])


def test_swd_normalisation_choice():
    """Union statistics see a per-channel contrast/brightness change of the fakes; ProGAN's per-set ones (default) do not."""
    x = _smooth_images(8, 3, 32, 32)
    kw = dict(patches_per_image=32, projections=32, repeats=1, min_resolution=8)
    assert swd(x, 0.5 * x + 0.2, normalize="union", **kw)["swd"] > 100
    assert swd(x, 0.5 * x + 0.2, **kw)["swd"] < 1e-2  # float32 rounding only (values are x 1e3)
    with pytest.raises(DgmError, match="normalize"):
        swd(x, x, normalize="own")
