"""The one pixel-likelihood module (dgm.nn.pixels): every likelihood is normalised over the K levels, the
inverse-CDF sampler is the inverse CDF of that distribution (and follows it in frequency), ``mean`` is sum_k k p(k),
and the autoregressive logits layout (parameters on axis 1) gives the same numbers as the decoder layout."""
import math

import pytest
import torch

from dgm.errors import DgmError
from dgm.models import bits_per_dim as models_bits_per_dim
from dgm.nn.pixels import LIKELIHOODS, PixelLikelihood, bits_per_dim

CASES = [("bernoulli", 2), ("categorical", 5), ("logistic", 2), ("logistic", 17), ("gaussian", 17),
         ("gaussian", 256)]


def _params(kind, levels, n=8, seed=0):
    """(n, 1, P, 1, 1): n one-pixel images with random parameters in the (B, C, P, H, W) layout."""
    g = torch.Generator().manual_seed(seed)
    lik = PixelLikelihood(kind, levels)
    out = torch.randn(n, 1, lik.params_per_pixel, 1, 1, generator=g, dtype=torch.float64)
    if lik.params_per_pixel == 2:
        out[:, :, 1] -= 1.5                                                   # log-scales around -1.5
    return lik, out


def _table(lik, out):
    """(K, n): log P(v) of each pixel for every level v."""
    n = out.shape[0]
    return torch.stack([lik.log_prob(torch.full((n, 1, 1, 1), float(v), dtype=out.dtype), out).flatten()
                        for v in range(lik.levels)])


@pytest.mark.parametrize("kind,levels", CASES)
def test_each_likelihood_sums_to_one_over_the_levels(kind, levels):
    lik, out = _params(kind, levels)
    lp = _table(lik, out)
    assert torch.isfinite(lp).all() and (lp <= 0).all()
    torch.testing.assert_close(lp.exp().sum(0), torch.ones(out.shape[0], dtype=torch.float64), rtol=0, atol=1e-9)


@pytest.mark.parametrize("kind,levels", CASES)
def test_sampler_is_the_inverse_cdf_of_the_likelihood(kind, levels):
    """On known uniforms: the draw is the first level whose CDF reaches u (Bernoulli: x = 1 iff u < P(1))."""
    lik, out = _params(kind, levels)
    p = _table(lik, out).exp()                                               # (K, n)
    g = torch.Generator().manual_seed(2)
    u = torch.rand(64, out.shape[0], generator=g, dtype=torch.float64) * 0.98 + 0.01   # (m, n)
    draws = torch.stack([lik.sample(out, ui.view(-1, 1, 1, 1)).flatten() for ui in u])  # (m, n)
    if kind == "bernoulli":
        manual = (u < p[1]).double()
        tie = (u - p[1]).abs() < 1e-6
    else:
        cdf = p.cumsum(0)                                                    # (K, n)
        manual = (cdf[None] < u[:, None]).sum(1).clamp(max=levels - 1).double()
        tie = ((cdf[None] - u[:, None]).abs() < 1e-5).any(1)                 # float32 sampling vs float64 CDF
    assert tie.float().mean() < 0.05
    assert torch.equal(draws[~tie].double(), manual[~tie])


@pytest.mark.parametrize("kind,levels", CASES)
def test_draws_follow_the_likelihood_in_frequency(kind, levels):
    lik, out = _params(kind, levels)
    flat = out[:1].flatten(1, 2).float().expand(40_000, -1, -1, -1)         # decoder layout (B, C * P, H, W)
    draws = lik.image_draw(flat, generator=torch.Generator().manual_seed(1)).flatten()
    freq = torch.bincount(draws.long(), minlength=levels).double() / len(draws)
    p = _table(lik, out)[:, 0].exp()
    assert (freq - p).abs().max() < 0.012, (freq, p)


@pytest.mark.parametrize("kind,levels", [("bernoulli", 2), ("categorical", 5), ("categorical", 2)])
def test_mean_is_the_expected_level(kind, levels):
    lik, out = _params(kind, levels)
    expected = (torch.arange(levels, dtype=torch.float64)[:, None] * _table(lik, out).exp()).sum(0)
    torch.testing.assert_close(lik.mean(out).flatten().double(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["logistic", "gaussian"])
def test_discretized_mean_is_the_location_and_near_the_expected_level_inside(kind):
    """The discretized densities' mean is the location as a level; away from the edges, with bins narrower than the
    scale, that is sum_k k p(k) to within a small fraction of a level."""
    lik = PixelLikelihood(kind, 256)
    out = torch.tensor([-0.5, 0.0, 0.3], dtype=torch.float64).view(3, 1, 1, 1, 1).repeat(1, 1, 2, 1, 1)
    out[:, :, 1] = -3.0                                                      # scale 0.05 = 6 bins
    mean = lik.mean(out).flatten().double()
    torch.testing.assert_close(mean, (out[:, 0, 0, 0, 0] + 1) * 255 / 2)
    expected = (torch.arange(256, dtype=torch.float64)[:, None] * _table(lik, out).exp()).sum(0)
    assert (mean - expected).abs().max() < 0.05, (mean, expected)


@pytest.mark.parametrize("kind,levels", [("bernoulli", 2), ("categorical", 4), ("logistic", 4)])
def test_parameter_axis_may_be_anywhere(kind, levels):
    """The autoregressive layout (B, P, C, H, W) with dim=1 equals the decoder layout (B, C, P, H, W)."""
    lik = PixelLikelihood(kind, levels)
    g = torch.Generator().manual_seed(3)
    out = torch.randn(4, 3, lik.params_per_pixel, 2, 2, generator=g)        # (B, C, P, H, W)
    x = torch.randint(0, levels, (4, 3, 2, 2), generator=g).float()
    u = torch.rand(4, 3, 2, 2, generator=g)
    moved = out.transpose(1, 2)
    torch.testing.assert_close(lik.log_prob(x, moved, dim=1), lik.log_prob(x, out), rtol=0, atol=1e-6)
    assert torch.equal(lik.sample(moved, u, dim=1), lik.sample(out, u))
    torch.testing.assert_close(lik.mean(moved, dim=1), lik.mean(out), rtol=0, atol=1e-6)
    # image_log_prob: the per-example sum, with leading sample dimensions broadcast against x
    k_out = torch.stack([out.flatten(1, 2), out.flatten(1, 2)])            # (2, B, C * P, H, W)
    per = lik.log_prob(x, out).flatten(1).sum(1)
    torch.testing.assert_close(lik.image_log_prob(x, k_out), torch.stack([per, per]))


def test_bad_likelihoods_and_bits_per_dim():
    with pytest.raises(DgmError, match="bernoulli"):
        PixelLikelihood("poisson", 4)
    with pytest.raises(DgmError, match="binary"):
        PixelLikelihood("bernoulli", 4)
    assert set(LIKELIHOODS) == {"bernoulli", "categorical", "logistic", "gaussian"}
    assert [PixelLikelihood(k, 7).params_per_pixel for k in ("categorical", "logistic", "gaussian")] == [7, 2, 2]
    assert bits_per_dim(64 * math.log(2.0), 64) == pytest.approx(1.0)
    assert models_bits_per_dim is bits_per_dim  # dgm.models.bits_per_dim stays importable
