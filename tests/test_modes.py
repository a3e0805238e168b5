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


# ---------------------------------------------------------------------------------------------------
# Issue 15: the perfect-sampler ceiling, the protocol presets, and packing against mode collapse.


class _TrueSampler:
    """A 'generator' that samples the true mixture: the ceiling of the metric."""

    def __init__(self, ds):
        self.ds = ds

    def sample(self, n, generator=None):
        return self.ds.sample(n, generator)[0]


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_the_metric_on_2500_true_samples_is_the_perfect_sampler_ceiling(name):
    """reference-results.md: a perfect sampler scores all modes / 98.89 % (= P(chi2_2 <= 9)) / reverse KL ~ 0."""
    ds = load_dataset(name, "train")
    s = modes(_TrueSampler(ds), ds, n=N_EVAL_SAMPLES, seed=0)
    assert s["modes"] == ds.num_components and s["n_samples"] == 2500
    assert abs(s["high_quality"] - 0.9889) < 5 * math.sqrt(0.9889 * 0.0111 / 2500)  # binomial: 0.9889 +- 0.0105
    assert 0 <= s["reverse_kl"] < 0.02  # multinomial noise: ~ (M - 1) / (2 n) = 0.0014 (ring) / 0.005 (grid)


def _checkpoint(run):
    from pathlib import Path

    return torch.load(sorted(Path(run).rglob("*.pt"))[-1], weights_only=True)


@pytest.mark.parametrize("protocol,objective,pack", [("veegan", "wgan-gp", 1), ("pacgan", "non-saturating", 2)])
def test_each_presets_constants_reach_the_model_and_optimizers(tmp_path, protocol, objective, pack):
    """`dgm train gan --protocol P`: layer widths, z, lr_D / lr_G, Adam betas, batch size, GP weight and n_critic
    of the preset are those the run trains with (read back from the built model and the checkpoint)."""
    from dgm.bench.protocols import PROTOCOLS
    from dgm.cli import main
    from dgm.runs import load

    p = PROTOCOLS[protocol]
    run = tmp_path / "r"
    assert main(["train", "gan", "--data", "ring8", "--protocol", protocol, "--objective", objective, "--pack",
                 str(pack), "--steps", "1", "--no-progress", "--n-samples", "0", "--out", str(run)]) == 0
    model = load(run)
    c = model.config
    assert (c.arch, c.hidden, c.layers, c.latent_dim, c.protocol) == (
        p.model["arch"], p.model["hidden"], p.model["layers"], p.model["latent_dim"], protocol)
    linears = [m for m in model.generator.modules() if isinstance(m, torch.nn.Linear)]
    assert linears[0].in_features == p.model["latent_dim"] and linears[0].out_features == p.model["hidden"]
    assert len(linears) == (p.model["layers"] + 2 if protocol == "pacgan" else p.model["layers"] + 1)
    first_d = next(m for m in model.discriminator.modules() if isinstance(m, torch.nn.Linear))
    assert first_d.in_features == 2 * pack
    width = p.model["hidden"] // 2 if protocol == "pacgan" else p.model["hidden"]
    assert model.discriminator.head.in_features == width
    state = _checkpoint(run)
    for name, lr in (("d", p.model["lr_d"]), ("g", p.model["lr_g"])):
        group = state["optimizers"][name]["param_groups"][0]
        assert group["lr"] == lr and tuple(group["betas"]) == (p.train["beta1"], p.train["beta2"])
    train = json.loads((run / "config.json").read_text())["train"]
    assert train["batch_size"] == p.batch_size(pack) == p.train["batch_size"] * pack
    assert c.update_order == "simultaneous"  # both papers' code: G's and D's gradients from one evaluation
    for k, v in p.per_objective.get(objective, {}).items():
        assert getattr(c, k) == v  # e.g. veegan's WGAN-GP: gp_weight 0.1, n_critic 5


def test_a_preset_yields_to_explicit_flags_and_refuses_other_data():
    from dgm.bench.protocols import apply

    model, train = apply("pacgan", "grid25", {"objective": "hinge", "hidden": 64, "pack": 3}, {"epochs": 2.5})
    assert model["hidden"] == 64 and model["objective"] == "hinge" and model["lr_d"] == 1e-4
    assert train["batch_size"] == 300 and train["steps"] == 2500 and "epochs" not in train
    assert apply("veegan", "ring8", {}, {})[1]["steps"] == 25_000
    with pytest.raises(DgmError, match="toy mixtures"):
        apply("veegan", "digits", {}, {})
    with pytest.raises(DgmError, match="unknown --protocol"):
        apply("veegann", "ring8", {}, {})


def _grid_modes(pack, seed, steps=1500):
    from dgm.training import TrainConfig
    from dgm.training.run import train_run
    from dgm.runs import load
    import tempfile

    data = {"name": "grid25", "data_dir": None, "binarize": None, "levels": None, "scale": "levels", "options": {}}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny MLPs: more threads only spin on a busy machine
    with tempfile.TemporaryDirectory() as d:
        cfg = TrainConfig(steps=steps, batch_size=32 * pack, seed=seed, progress=False, n_samples=0,
                          ckpt_every=10 ** 9)
        try:
            train_run("gan", data, {"objective": "non-saturating", "hidden": 64, "layers": 2, "pack": pack,
                                    "lr_d": 1e-3, "lr_g": 1e-3}, cfg, out=d)
            return modes(load(d), load_dataset("grid25", "train"))
        finally:
            torch.set_num_threads(threads)


@pytest.mark.slow  # 23 s; the packing mechanics are proved in tests/test_packing.py
def test_packing_covers_more_grid_modes_fixed_seed():
    """Fast and deterministic (CPU runs are bit-for-bit repeatable): seed 0, 1,500 updates of 32 D inputs, dgm's
    MLP (width 64): PacGAN4 covers 21 grid modes, the unpacked GAN 13 (and a lower reverse KL)."""
    one, four = _grid_modes(1, 0), _grid_modes(4, 0)
    assert four["modes"] >= one["modes"] + 4, (one, four)
    assert four["reverse_kl"] < one["reverse_kl"]


@pytest.mark.slow
def test_packing_covers_more_grid_modes_over_seeds():
    """The same comparison over 5 seeds: PacGAN4's mean mode count is above the unpacked GAN's."""
    one = [_grid_modes(1, s)["modes"] for s in range(5)]
    four = [_grid_modes(4, s)["modes"] for s in range(5)]
    assert np.mean(four) > np.mean(one), (one, four)
