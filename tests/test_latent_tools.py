"""Latent tools (dgm.sampling.latent, dgm.nn.latent): lerp and slerp against their formulas, the truncation trick's
two ends and its shrinking spread for a GAN and a VAE, vector arithmetic, and `dgm sample --interpolate /
--truncation / --arithmetic`."""
import math

import pytest
import torch

from dgm.cli import main
from dgm.errors import DgmError
from dgm.models import build_model
from dgm.nn.latent import gaussian_latent
from dgm.sampling.latent import (apply_vector, attribute_vector, class_arithmetic, decode, interpolation_grid, lerp,
                                 slerp)

DIGITS = dict(channels=1, height=8, width=8, levels=17)


def _gan():
    torch.manual_seed(0)
    return build_model("gan", dict(DIGITS, hidden=8, latent_dim=4)).eval()


def _vae():
    torch.manual_seed(0)
    return build_model("vae", dict(DIGITS, hidden=16, latent_dim=3)).eval()


def test_lerp_is_its_formula():
    z0, z1 = torch.tensor([1.0, -2.0]), torch.tensor([3.0, 6.0])
    assert torch.equal(lerp(z0, z1, 0.25), torch.tensor([1.5, 0.0]))


def test_slerp_equals_the_sine_formula_on_hand_values():
    e0, e1 = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
    # theta = 90 degrees: slerp(t) = sin((1 - t) pi / 2) z0 + sin(t pi / 2) z1
    assert torch.allclose(slerp(e0, e1, 1 / 3), torch.tensor([math.sqrt(3) / 2, 0.5], dtype=torch.float64))
    assert torch.allclose(slerp(2 * e0, e1, 0.5), torch.tensor([2 * math.sqrt(0.5), math.sqrt(0.5)],
                                                             dtype=torch.float64))
    z0, z1 = torch.tensor([1.0, 1.0], dtype=torch.float64), torch.tensor([1.0, 0.0], dtype=torch.float64)  # 45 deg
    t = 0.3
    th = math.pi / 4
    expect = (math.sin((1 - t) * th) * z0 + math.sin(t * th) * z1) / math.sin(th)
    assert torch.allclose(slerp(z0, z1, t), expect)


def test_slerp_ends_and_equal_norm_paths_keep_the_norm():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(5, 64, generator=g, dtype=torch.float64), torch.randn(5, 64, generator=g, dtype=torch.float64)
    z1 = z1 / z1.norm(dim=-1, keepdim=True) * z0.norm(dim=-1, keepdim=True)  # equal norms, pair by pair
    t = torch.linspace(0, 1, 9, dtype=torch.float64)[:, None]
    path = slerp(z0[:, None], z1[:, None], t)  # (5, 9, 64)
    assert torch.allclose(path[:, 0], z0) and torch.allclose(path[:, -1], z1)
    assert torch.allclose(path.norm(dim=-1), z0.norm(dim=-1, keepdim=True).expand(5, 9))
    mid = lerp(z0, z1, 0.5).norm(dim=-1)
    assert (mid < 0.9 * z0.norm(dim=-1)).all()  # while the straight line cuts inside the sphere


def test_slerp_falls_back_to_lerp_for_parallel_antiparallel_and_zero_codes():
    z = torch.tensor([1.0, 2.0, -1.0])
    for other in (3 * z, -z, torch.zeros(3)):
        out = slerp(z, other, 0.25)
        assert torch.isfinite(out).all() and torch.allclose(out, lerp(z, other, 0.25))


@pytest.mark.parametrize("build,kw", [(_gan, {}), (_vae, {"mean": True})])
def test_truncation_ends_and_shrinking_spread(build, kw):
    m = build()

    def draw(**opts):
        return m.sample(200, generator=torch.Generator().manual_seed(3), **kw, **opts)

    ordinary = draw()
    assert torch.equal(draw(truncation=1.0), ordinary)  # PSI = 1: the ordinary sampler, bit for bit
    at0 = draw(truncation=0.0)  # PSI = 0: every draw is the mean (= mode) latent z = 0, so one image
    assert (at0 == at0[0]).all()
    assert torch.allclose(at0[0], decode(m, torch.zeros(1, m.config.latent_dim))[0], atol=1e-5)
    spread = [draw(truncation=p).std(0).mean().item() for p in (0.25, 0.5, 1.0)]
    assert 0 < spread[0] < spread[1] < spread[2], spread
    resampled = draw(truncation=0.5, truncation_mode="resample").std(0).mean().item()
    assert 0 < resampled < spread[2]


def test_truncation_modes_draw_their_definitions_and_refuse_bad_psi():
    z = gaussian_latent(500, 8, torch.Generator().manual_seed(1))
    assert torch.equal(gaussian_latent(500, 8, torch.Generator().manual_seed(1), 0.5), 0.5 * z)
    r = gaussian_latent(500, 8, torch.Generator().manual_seed(1), 0.5, "resample")
    assert r.abs().max() <= 0.5
    keep = z.abs() <= 0.5
    assert torch.equal(r[keep], z[keep])  # the components inside [-PSI, PSI] stay; only the others are redrawn
    for psi, mode in ((0.0, "resample"), (1.5, "interpolate"), (-0.1, "interpolate"), (0.5, "clip")):
        with pytest.raises(DgmError):
            gaussian_latent(4, 2, None, psi, mode)


def test_interpolation_grid_rows_run_from_z0_to_z1():
    m = _vae()
    z0, z1 = torch.randn(2, 3), torch.randn(2, 3)
    for method in ("lerp", "slerp"):
        grid = interpolation_grid(m, 2, 5, method, z0=z0, z1=z1).reshape(2, 5, 1, 8, 8)
        assert torch.allclose(grid[:, 0], decode(m, z0), atol=1e-5)
        assert torch.allclose(grid[:, -1], decode(m, z1), atol=1e-5)


def test_attribute_vector_and_its_application():
    a, b = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 1.0]])
    v = attribute_vector(a, b)
    assert torch.equal(v, torch.tensor([2.0, 2.0]))
    z = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    assert torch.equal(apply_vector(z, v, [0, 1, 2]), torch.tensor([[0, 0], [2, 2], [4, 4], [1, -1], [3, 1], [5, 3.]]))
    m = _vae()
    x = torch.randint(0, 17, (6, 1, 8, 8)).float()
    mu = m.encode(x)[0]
    assert torch.allclose(attribute_vector(x[:4], x[4:], m), mu[:4].mean(0) - mu[4:].mean(0))
    with pytest.raises(DgmError, match="no encoder"):
        attribute_vector(x[:4], x[4:], _gan())
    y = torch.tensor([0, 0, 1, 2, 2, 1])
    grid = class_arithmetic(m, x, y, 3, 0, 1, n=2, scales=(0.0, 1.0)).reshape(2, 3, 1, 8, 8)
    assert torch.equal(grid[:, 0], x[y == 2])  # each row: the input, then decode(mu + s v)
    assert torch.allclose(grid[:, 1], decode(m, mu[y == 2]), atol=1e-5)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("latent") / "vae"
    assert main(["train", "vae", "--data", "digits", "--steps", "2", "--hidden", "16", "--latent-dim", "2",
                 "--n-samples", "0", "--no-progress", "--out", str(out)]) == 0
    return out


def test_sample_latent_flags_write_their_figures(vae_run, tmp_path):
    def run(*flags):
        t = tmp_path / "x.pt"
        assert main(["sample", str(vae_run), "--save-tensor", str(t), *flags]) == 0
        return torch.load(t)

    assert run("--interpolate", "slerp", "--steps", "5", "-n", "3").shape == (15, 1, 8, 8)
    assert (vae_run / "samples" / "interpolate-slerp-seed0.png").is_file()
    assert torch.equal(run("--truncation", "1", "-n", "4"), run("-n", "4"))
    assert run("--truncation", "0.5", "--truncation-mode", "resample", "-n", "4").shape == (4, 1, 8, 8)
    assert run("--arithmetic", "3,8", "-n", "2", "--out", str(tmp_path / "a.png")).shape == (12, 1, 8, 8)
    assert (tmp_path / "a.png").is_file()


@pytest.mark.parametrize("flags,msg", [
    (["--steps", "4"], "--steps is an option of the interpolate figure"),
    (["--truncation-mode", "resample"], "--truncation-mode is an option of the truncation figure"),
    (["--interpolate", "lerp", "--truncation", "0.5"], "give one of them"),
    (["--interpolate", "lerp", "--truncation", "0"], "give one of them"),
    (["--arithmetic", "3"], "two class labels"),
    (["--arithmetic", "3,3"], "two different"),
    (["--truncation", "0", "--truncation-mode", "resample"], "threshold > 0"),
    (["--no-ema"], "--no-ema"),
])
def test_latent_flags_are_refused_where_they_do_not_apply(vae_run, tmp_path, capsys, flags, msg):
    assert main(["sample", str(vae_run), "--out", str(tmp_path / "x.png"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dgm: error:") and msg in err and "\n" not in err
    assert not (tmp_path / "x.png").exists()


def test_models_without_a_latent_refuse_the_latent_flags(tiny_run, tmp_path, capsys):
    for flags in (["--truncation", "0.5"], ["--interpolate", "lerp"], ["--arithmetic", "1,2"]):
        assert main(["sample", str(tiny_run), "--out", str(tmp_path / "x.png"), *flags]) == 2
        assert "needs a model with a Gaussian latent" in capsys.readouterr().err


def test_resampling_truncation_ends_for_any_threshold_and_keeps_the_truncated_normal():
    """BigGAN's resampling redraws |z_i| > PSI; for a tiny PSI almost no draw is accepted and the loop never ended
    (issue 32). After REJECTION_ROUNDS rounds the rest comes from the inverse CDF: the same distribution."""
    from scipy import stats

    from dgm.nn.latent import gaussian_latent

    z = gaussian_latent(500, 64, torch.Generator().manual_seed(0), 1e-8, "resample")
    assert z.abs().max() <= 1e-8 and z.std() > 0
    for rounds in (0, 100):  # the inverse CDF alone, and the usual rejection rounds
        z = gaussian_latent(20000, 1, torch.Generator().manual_seed(1), 0.3, "resample", rounds=rounds)
        assert stats.kstest(z.numpy().ravel(), stats.truncnorm(-0.3, 0.3).cdf).pvalue > 0.01
