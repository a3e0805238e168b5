"""Tests of dgm.metrics.modes: the VEEGAN / PacGAN mode-coverage protocol on toy mixtures."""
import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy

from dgm.data import load_dataset
from dgm.errors import DgmError
from dgm.metrics import METRICS
from dgm.metrics.modes import HQ_THRESHOLD, N_EVAL_SAMPLES, mode_stats, modes

P_HQ_2D = 1 - math.exp(-HQ_THRESHOLD ** 2 / 2)  # chi with 2 dof: P(|x - mu| < 3 std) = 1 - exp(-4.5) = 0.98889


def _brute_force(points, means, std, threshold=3.0):
    """Plain-Python reference: nearest mode per point, high quality if distance / std < threshold."""
    counts = [0] * len(means)
    for p in points:
        d = [math.sqrt(sum((a - b) ** 2 for a, b in zip(p, m))) for m in means]
        j = min(range(len(means)), key=lambda k: d[k])  # first minimum on ties
        if d[j] / std < threshold:
            counts[j] += 1
    total = sum(counts)
    q = [c / total for c in counts] if total else None
    rkl = float(entropy(q, [1 / len(means)] * len(means))) if total else float("inf")  # KL(q || uniform)
    return counts, total / len(points), rkl


def test_constants_follow_the_protocol():
    assert N_EVAL_SAMPLES == 2500 and HQ_THRESHOLD == 3.0
    assert abs(P_HQ_2D - 0.9889) < 1e-4


@pytest.mark.parametrize("name,chunk", [("ring8", 65_536), ("grid25", 7), ("gmm1d", 64)])
def test_mode_stats_matches_brute_force(name, chunk):
    ds = load_dataset(name, "val")
    rng = np.random.RandomState(0)
    means = ds.means.numpy()
    # a mix of points near modes (some inside, some outside 3 std) and points scattered everywhere
    near = means[rng.randint(len(means), size=300)] + ds.std * rng.uniform(-4, 4, size=(300, ds.dim))
    lo, hi = means.min(0) - 1, means.max(0) + 1
    anywhere = rng.uniform(lo, hi, size=(200, ds.dim))
    pts = np.concatenate([near, anywhere])
    pts = pts[:, 0] if ds.dim == 1 else pts  # (n,) is accepted for 1-D mixtures
    counts, hq, rkl = _brute_force(pts.reshape(len(pts), -1).tolist(), means.tolist(), ds.std)
    assert 0 < hq < 1 and sum(c > 0 for c in counts) > 1  # the test exercises both branches
    for inp in (pts, torch.from_numpy(pts).float(), torch.from_numpy(pts)):
        s = mode_stats(inp, ds.means if torch.is_tensor(inp) else means, ds.std, chunk_size=chunk)
        assert s["n"] == len(pts) and s["counts"] == counts
        assert s["modes"] == sum(c > 0 for c in counts)
        assert s["high_quality"] == pytest.approx(hq, abs=1e-12)
        assert s["reverse_kl"] == pytest.approx(rkl, rel=1e-9, abs=1e-12)
        assert isinstance(s["modes"], int) and isinstance(s["high_quality"], float)


@pytest.mark.parametrize("name,n", [("ring8", 20_000), ("grid25", 20_000), ("ring8", N_EVAL_SAMPLES)])
def test_true_mixture_covers_all_modes(name, n):
    ds = load_dataset(name, "val")
    x, _ = ds.sample(n, torch.Generator().manual_seed(3))
    s = mode_stats(x, ds.means, ds.std)
    m = ds.num_components
    assert s["modes"] == m and len(s["counts"]) == m and s["n"] == n
    sd = math.sqrt(P_HQ_2D * (1 - P_HQ_2D) / n)  # binomial standard error
    assert abs(s["high_quality"] - P_HQ_2D) < 5 * sd, (s["high_quality"], P_HQ_2D, sd)
    # multinomial noise only: E[KL(q || uniform)] ~ (M - 1) / (2 * n_hq)
    assert 0 <= s["reverse_kl"] < 10 * (m - 1) / (2 * n)


def test_collapse_to_one_mode_and_far_points():
    ds = load_dataset("grid25", "val")
    m = ds.num_components
    gen = torch.Generator().manual_seed(0)
    x = ds.means[7] + 0.5 * ds.std * torch.randn(1000, 2, generator=gen, dtype=torch.float64)
    s = mode_stats(x, ds.means, ds.std)
    assert s["modes"] == 1 and s["counts"][7] == 1000 and sum(s["counts"]) == 1000
    assert s["high_quality"] == 1.0 and s["reverse_kl"] == pytest.approx(math.log(m), rel=1e-12)

    far = np.full((50, 2), 100.0)
    s = mode_stats(far, ds.means.numpy(), ds.std)
    assert s["high_quality"] == 0.0 and s["modes"] == 0 and s["counts"] == [0] * m and s["n"] == 50
    assert s["reverse_kl"] == float("inf")
    bad = np.array([[np.nan, 0.0], [np.inf, 0.0], [2.0, 2.0]])
    s = mode_stats(bad, ds.means, ds.std)  # non-finite points are never high quality
    assert s["counts"][[tuple(r) for r in ds.means.tolist()].index((2.0, 2.0))] == 1 and s["high_quality"] == 1 / 3


class _StandIn:
    """A trained-GAN stand-in: sample(n, generator) -> (n, 2) float points, half of them on one mode."""

    def __init__(self, data):
        self.data, self.calls = data, []

    def sample(self, n, generator=None):
        self.calls.append(n)
        x, _ = self.data.sample(n, generator)
        x[: n // 2] = self.data.means[0].float()
        return x


def test_modes_entry_point():
    assert METRICS.get("modes").compute is modes and METRICS.get("modes").needs == "run" and METRICS.help("modes")
    data = load_dataset("ring8", "test")
    model = _StandIn(data)
    r = modes(model, data, batch_size=64, progress=False)
    assert model.calls == [N_EVAL_SAMPLES]
    assert set(r) == {"modes", "high_quality", "reverse_kl", "num_modes", "n_samples"}
    assert r["num_modes"] == 8 and r["n_samples"] == N_EVAL_SAMPLES and r["modes"] == 8
    assert type(r["modes"]) is int and type(r["high_quality"]) is float and type(r["reverse_kl"]) is float
    assert 0.98 < r["high_quality"] <= 1.0 and 0.1 < r["reverse_kl"] < math.log(8)
    json.dumps(r)
    assert modes(model, data) == r  # seeded: the same samples every time
    assert modes(model, data, n=400, seed=5)["n_samples"] == 400


def test_modes_needs_a_toy_run():
    digits = load_dataset("digits", "test")
    with pytest.raises(DgmError) as e:
        modes(_StandIn(load_dataset("ring8", "test")), digits)
    msg = str(e.value)
    assert "\n" not in msg and "toy mixture" in msg and "ring8" in msg and "grid25" in msg
