"""FactorVAE (Kim & Mnih 2018): the dimension-wise permutation, the TC estimate and which losses reach the encoder;
the disentanglement metrics (FactorVAE score, MIG) on fake encoders with known answers; the ``shapes`` dataset;
training, resume bit for bit and `dgm eval --metric disentanglement` from the command line."""
import contextlib
import json

import numpy as np
import pytest
import torch

from dgm import checkpoint as ckpt
from dgm.cli import main
from dgm.data import load_dataset
from dgm.data.shapes import FACTOR_SIZES, GRID_SIZE, SPLIT_SIZES, factor_index, factor_tuples, render, split_indices
from dgm.metrics.disentanglement import factor_vae_score, mig
from dgm.models import FactorVAE, FactorVAEConfig
from dgm.objectives.tc import permute_dims, tc_discriminator_loss, tc_estimate
from dgm.training import TrainConfig
from dgm.training.vae_step import FactorVAEStep

from test_contract import _same

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--hidden", "8", "--latent-dim", "4", "--d-hidden", "16", "--d-layers", "2"]
VOTES = dict(train_votes=400, eval_votes=300, vote_batch=32, scale_points=2000)


# -- the objective ---------------------------------------------------------------------------------------------------
def test_permutation_keeps_each_column_and_breaks_the_dependence():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, generator=g)
    z = torch.stack([a, 2 * a + 1, -a], dim=1)          # perfectly correlated columns
    p = permute_dims(z, generator=g)
    for j in range(3):                                    # each column: the same multiset of values
        assert torch.equal(p[:, j].sort().values, z[:, j].sort().values)
    c = torch.corrcoef(p.T)
    assert c[0, 1].abs() < 0.1 and c[0, 2].abs() < 0.1 and c[1, 2].abs() < 0.1, c
    assert not torch.equal(p[:, 0], z[:, 0])


def test_tc_estimate_and_discriminator_loss_by_hand():
    d = torch.nn.Linear(2, 2)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, 0.5]]))
        d.bias.copy_(torch.tensor([0.5, -0.5]))
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]])
    # logit_0 = z1 + 2 z2 + 0.5, logit_1 = -z1 + 0.5 z2 - 0.5: differences 3, 2.5, 3.5
    assert torch.isclose(tc_estimate(d(z)), torch.tensor(3.0))
    lq, lp = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    by_hand = 0.5 * (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(-1.0)))
    assert abs(tc_discriminator_loss(lq, lp).item() - by_hand) < 1e-6


class _Engine:
    """Enough of the training engine to run one FactorVAE step and keep each loss (no backward, no update)."""

    global_step, local_batch = 0, 8
    cfg = TrainConfig()

    def __init__(self):
        self.losses = {}

    def wrap(self, module, compile=True):
        return module

    def optimizer(self, name, params, **kw):
        pass

    def autocast(self):
        return contextlib.nullcontext()

    def update(self, loss, name):
        self.losses[name] = loss


def _step_losses(tc_weight):
    torch.manual_seed(0)
    model = FactorVAE(FactorVAEConfig(height=8, width=8, levels=2, hidden=8, latent_dim=3, d_hidden=8, d_layers=2,
                                      tc_weight=tc_weight))
    step = FactorVAEStep(model)
    engine = _Engine()
    step.setup(engine)
    x = torch.bernoulli(torch.full((8, 1, 8, 8), 0.3))
    logs = step((x, torch.zeros(8)))
    return model, engine.losses, logs


def test_discriminator_loss_never_reaches_the_encoder_and_the_tc_term_does():
    model, losses, logs = _step_losses(10.0)
    enc = list(model.encoder.parameters())
    grads = torch.autograd.grad(losses["d"], enc + list(model.discriminator.parameters()), allow_unused=True)
    assert all(g is None for g in grads[:len(enc)])                   # D's loss: detached codes only
    assert any(g is not None and g.abs().sum() > 0 for g in grads[len(enc):])
    g10 = torch.autograd.grad(losses["model"], enc)
    model0, losses0, _ = _step_losses(0.0)                            # same weights and draws, gamma = 0
    g0 = torch.autograd.grad(losses0["model"], list(model0.encoder.parameters()))
    assert any(not torch.allclose(a, b) for a, b in zip(g10, g0))     # the TC term reaches the encoder
    assert {"tc", "loss_d", "d_accuracy"} <= set(logs) and 0 <= logs["d_accuracy"] <= 1


# -- the metrics on fake encoders --------------------------------------------------------------------------------------
def _true_factors(perm=None, scale=None):
    def codes(f):
        z = f.astype(np.float64)
        z = z if perm is None else z[:, perm]
        return z if scale is None else z * scale

    return codes


def _random_codes(dims=8, perm=None, scale=None):
    rng = np.random.RandomState(7)  # a fresh stream per encoder: the same calls give the same draws

    def codes(f):
        z = rng.standard_normal((len(f), dims))
        z = z if perm is None else z[:, perm]
        return z if scale is None else z * scale

    return codes


def test_true_factors_score_one():
    assert factor_vae_score(_true_factors(), FACTOR_SIZES, **VOTES)["factor_vae_score"] == 1.0
    m = mig(_true_factors(), FACTOR_SIZES, points=4000)
    # shape and scale have <= 20 values: gap 1 (less the small plug-in bias of the second-best, independent dim);
    # 40 orientations / 32 positions in 20 bins: at most log 20 / log K
    assert np.allclose(m["mig_per_factor"][:2], 1.0, atol=0.02)
    assert 0.75 < m["mig_per_factor"][2] <= np.log(20) / np.log(40) + 0.01
    assert m["mig"] > 0.85
    small = mig(_true_factors(), (3, 6, 10, 8), points=4000)   # every factor fits in the 20 bins
    assert np.isclose(small["mig"], 1.0, atol=0.01), small


def test_random_codes_score_chance():
    s = factor_vae_score(_random_codes(), FACTOR_SIZES, **VOTES)["factor_vae_score"]
    assert 0.1 < s < 0.35, s  # chance is 1/5 factors
    assert mig(_random_codes(), FACTOR_SIZES, points=4000)["mig"] < 0.05


@pytest.mark.parametrize("encoder", [_true_factors, _random_codes])
def test_metrics_ignore_the_order_and_scale_of_code_dims(encoder):
    dims = 5 if encoder is _true_factors else 8
    perm = np.random.RandomState(1).permutation(dims)
    scale = np.linspace(0.6, 3.0, dims)
    a = factor_vae_score(encoder(), FACTOR_SIZES, **VOTES)
    b = factor_vae_score(encoder(perm=perm, scale=scale), FACTOR_SIZES, **VOTES)
    assert a["factor_vae_score"] == b["factor_vae_score"] and a["active_dims"] == b["active_dims"]
    ma, mb = mig(encoder(), FACTOR_SIZES, points=3000), mig(encoder(perm=perm, scale=scale), FACTOR_SIZES, points=3000)
    assert np.isclose(ma["mig"], mb["mig"], atol=1e-9)


def test_collapsed_codes_are_pruned():
    out = factor_vae_score(lambda f: np.zeros((len(f), 3)), FACTOR_SIZES, **VOTES)
    assert out["active_dims"] == 0 and out["factor_vae_score"] == 0.0


# -- the dataset -------------------------------------------------------------------------------------------------------
def test_shapes_images_are_a_function_of_their_factors():
    base = np.array([[1, 3, 5, 16, 16]])
    a = render(base, 32)
    assert a.shape == (1, 1, 32, 32) and a.dtype == np.uint8 and set(np.unique(a)) == {0, 1}
    assert np.array_equal(a, render(base, 32))
    for k in range(5):                                   # one step of any factor changes the picture
        other = base.copy()
        other[0, k] += 1
        assert not np.array_equal(a, render(other, 32)), k
    assert np.array_equal(factor_tuples(factor_index(base)), base)
    parts = [split_indices(s) for s in ("train", "val", "test")]
    assert [len(p) for p in parts] == [SPLIT_SIZES[s] for s in ("train", "val", "test")]
    assert len(np.unique(np.concatenate(parts))) == sum(SPLIT_SIZES.values()) and parts[0].max() < GRID_SIZE


def test_shapes_split_knows_its_factors():
    d = load_dataset("shapes", "val", image_size=32)
    assert d.spec.shape == (1, 32, 32) and d.spec.levels == 2 and d.spec.num_classes == 0
    assert d.factors.shape == (len(d), 5) and tuple(d.factor_sizes) == FACTOR_SIZES
    x, _ = d[3]
    assert torch.equal(x, d.images(d.factors[3:4].numpy())[0])
    from dgm.errors import DgmError

    with pytest.raises(DgmError, match="64 .* or 32"):
        load_dataset("shapes", "val", image_size=48)


# -- the command line --------------------------------------------------------------------------------------------------
def _train(out, steps, *extra):
    args = ["train", "factor-vae", "--data", "shapes", "--image-size", "32", "--steps", str(steps), "--batch-size",
            "16", "--out", str(out), "--n-samples", "0", "--no-progress", "--log-every", "1", *TINY, *extra]
    assert main(args) == 0, args


def test_train_resume_equals_uninterrupted_and_eval(tmp_path, capsys):
    full, half = tmp_path / "full", tmp_path / "half"
    _train(full, 3)
    _train(half, 2)
    _train(half, 3, "--resume")
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(r)) for r in (full, half))
    assert set(a["optimizers"]) == {"model", "d"}
    for key in ("step", "model", "optimizers", "rng", "family_state"):
        _same(a.get(key), b.get(key), key)
    rows = [json.loads(line) for line in (full / "metrics.jsonl").read_text().splitlines()]
    assert all({"tc", "d_accuracy"} <= set(r) for r in rows if r["split"] == "train")
    capsys.readouterr()
    assert main(["eval", str(full), "--metric", "disentanglement", "--train-votes", "20", "--eval-votes", "10",
                 "--vote-batch", "8", "--code-points", "200"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 <= out["factor_vae_score"] <= 1 and 0 <= out["mig"] <= 1 and out["provenance"]["step"] == 3


def test_disentanglement_refused_without_factors(tmp_path, capsys):
    run = tmp_path / "vae"
    assert main(["train", "vae", "--steps", "1", "--out", str(run), "--n-samples", "0", "--no-progress", "--hidden",
                 "8", "--latent-dim", "2"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--metric", "disentanglement"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dgm: error:") and "factors" in err[0]


def test_odd_batch_refused_in_one_line(tmp_path, capsys):
    assert main(["train", "factor-vae", "--data", "digits", "--binarize", "--batch-size", "15", "--steps", "1",
                 "--out", str(tmp_path / "odd"), "--no-progress", *TINY]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "even" in err[0], err


@pytest.mark.slow  # multi-process (about 15 s)
def test_ddp_two_processes_train_both_optimisers_in_step(tmp_path):
    """Under DDP each process splits its own batch into the halves (codes, permuted codes), so the TC estimate is
    over per-process half-batches; what must hold: 2 processes train through the shared engine, rank 0's checkpoint
    has the requested step, and the encoder's, decoder's and discriminator's weights all moved between steps 1 and 3."""
    from conftest import torchrun

    common = ["train", "factor-vae", "--data", "shapes", "--image-size", "32", "--batch-size", "16", "--n-samples",
              "0", "--no-progress", "--device", "cpu", "--seed", "3", *TINY]
    torchrun([*common, "--steps", "3", "--ckpt-every", "1", "--keep-last", "5"], tmp_path / "ddp")
    files = sorted((tmp_path / "ddp" / "checkpoints").glob("ckpt-*.pt"))
    a, b = (ckpt.load_checkpoint(f) for f in (files[-1], files[0]))
    assert a["step"] == 3 and b["step"] == 1
    for prefix in ("encoder.", "decoder.", "discriminator."):
        keys = [k for k in a["model"] if k.startswith(prefix) and a["model"][k].is_floating_point()]
        assert keys and all(torch.isfinite(a["model"][k]).all() for k in keys)
        assert any(not torch.equal(a["model"][k], b["model"][k]) for k in keys), prefix
