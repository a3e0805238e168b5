"""LMConv (Jain et al. 2020): the locally masked convolution equals the paper's unfold formulation, every order of
every family is autoregressive (autograd), likelihoods are sums of one-pixel conditionals, ensembles are
log-mean-exp, completion keeps what is observed, and training resumes bit for bit and runs under DDP."""
import json
import math
import os
import subprocess
import sys

import pytest
import torch

import dgm
from dgm import checkpoint as ckpt
from dgm.cli import main
from dgm.errors import DgmError
from dgm.models import build_model
from dgm.models.lmconv import LMConv
from dgm.nn import MaskedConv2d
from dgm.nn.lmconv import LocallyMaskedConv2d, tap_masks, unfold_reference
from dgm.nn.orders import family_orders, region_mask
from dgm.runs import CONFIG, write_json

from conftest import ROOT, torchrun

TINY_LM = ["--hidden", "8", "--layers", "2"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _model(h=5, w=4, levels=2, **kw):
    torch.manual_seed(0)
    return build_model("lmconv", dict(height=h, width=w, levels=levels, hidden=6, layers=3, **kw)).double()


def _rank(order):
    return torch.empty_like(order).scatter_(0, order, torch.arange(order.numel()))


# -- the layer ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k,d,centre", [(3, 1, False), (3, 1, True), (5, 2, True), (3, 2, False)])
def test_tap_sum_equals_unfold_reference_values_and_gradients(k, d, centre):
    torch.manual_seed(1)
    conv = LocallyMaskedConv2d(3, 4, k, d).double()
    x = torch.randn(5, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    per_example = torch.stack([torch.randperm(20) for _ in range(5)])
    for order in (per_example, per_example[0], torch.arange(20)):
        m = tap_masks(order, 5, 4, k, d, centre)
        a, b = conv(x, m), unfold_reference(conv, x, m)
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        r = torch.randn_like(a)
        ga = torch.autograd.grad((a * r).sum(), (x, conv.weight, conv.bias))
        gb = torch.autograd.grad((b * r).sum(), (x, conv.weight, conv.bias))
        for u, v in zip(ga, gb):
            torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-12)


def test_raster_order_gives_the_pixelcnn_masks_and_weights_are_never_edited():
    torch.manual_seed(2)
    lm, mc = LocallyMaskedConv2d(2, 3, 3), MaskedConv2d(2, 3, 3, "A")
    mc.weight.data.copy_(lm.weight.data)
    mc.bias.data.copy_(lm.bias.data)
    before = lm.weight.detach().clone()
    x = torch.randn(2, 2, 6, 5)
    torch.testing.assert_close(lm(x, tap_masks(torch.arange(30), 6, 5, 3, centre=False)), mc(x))
    assert torch.equal(lm.weight, before)
    m = tap_masks(torch.arange(30), 6, 5, 3, centre=False)
    assert m.skip == (False,) * 4 + (True,) * 5 and m.full == (True,) * 4 + (False,) * 5  # 4 taps, no multiply


def test_masks_are_built_once_per_order():
    model = _model()
    first = model.masks(model.order_table[1])
    assert model.masks(model.order_table[1].clone()) is first
    assert model.masks(model.order_table[2]) is not first


# -- the autoregressive property, every order of every family -------------------------------------------------------
@pytest.mark.parametrize("family", ["raster", "s-curve", "hilbert", "mixed"])
@pytest.mark.parametrize("h,w,levels", [(5, 4, 2), (4, 4, 3)])
def test_every_order_is_autoregressive(family, h, w, levels):
    """Example (o, p) of one batch runs under order o and backpropagates only the logits of pixel p, so one backward
    pass gives d logit_p / d x for every pixel p of every order (examples are independent)."""
    model = _model(h, w, levels, orders=8, order_family=family)
    n, hw = 8, h * w
    if family != "mixed":
        assert all(torch.equal(a, b) for a, b in zip(model.orders, family_orders(family, h, w)))
    index = torch.arange(n).repeat_interleave(hw)
    pos = torch.arange(hw).repeat(n)
    x = torch.randint(0, levels, (n * hw, 1, h, w)).double().requires_grad_()
    logits = model(x, order=index)
    if levels == 2:
        picked = logits.flatten(1)[torch.arange(n * hw), pos]
    else:
        picked = logits.flatten(2)[torch.arange(n * hw), :, pos] @ torch.randn(levels, dtype=torch.float64)
    picked.sum().backward()
    grad = x.grad.abs().view(n, hw, hw)                       # [order, output pixel, input pixel]
    for o, order in enumerate(model.orders):
        rank = _rank(order)
        later_or_same = rank[None, :] >= rank[:, None]         # [p, q]: q generated at or after p
        assert grad[o][later_or_same].max() == 0, (family, o)
        sees_earlier = (grad[o] * ~later_or_same).amax(1) > 0
        assert bool(sees_earlier[rank > 0].all()), (family, o)


# -- likelihoods ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("levels", [2, 4])
def test_log_prob_is_the_sum_of_one_pixel_at_a_time_conditionals(levels):
    """Under order i, log p(x_p | earlier pixels) is read from an input that holds x at the earlier pixels and at p
    and fresh noise everywhere else; these one-pixel conditionals sum to log_prob(x, order=i)."""
    model = _model(4, 3, levels, orders=3, order_family="hilbert")
    x = torch.randint(0, levels, (2, 1, 4, 3)).double()
    for i in (0, 2):
        order = model.orders[i]
        total = torch.zeros(2, dtype=torch.float64)
        for s, p in enumerate(order.tolist()):
            keep = torch.zeros(12, dtype=torch.bool)
            keep[order[:s + 1]] = True
            partial = torch.where(keep.view(1, 1, 4, 3), x, torch.randint(0, levels, x.shape).double())
            total += model.conditionals(partial, order=i).flatten(1)[:, p]
        torch.testing.assert_close(total, model.log_prob(x, order=i), rtol=0, atol=1e-9)


def test_ensemble_is_log_mean_exp_and_per_example_orders_match_single_orders():
    model = _model(4, 4, 2, orders=4, order_family="mixed")
    x = torch.randint(0, 2, (3, 1, 4, 4)).double()
    single = torch.stack([model.log_prob(x, order=i) for i in range(4)])
    torch.testing.assert_close(model.log_prob(x), torch.logsumexp(single, 0) - math.log(4))
    index = torch.tensor([3, 0, 2])
    torch.testing.assert_close(model(x, order=index), torch.cat([model(x[b:b + 1], order=int(i))
                                                                 for b, i in enumerate(index)]))


def test_two_by_two_probabilities_sum_to_one():
    model = _model(2, 2, 2, orders=2, order_family="s-curve")
    grid = torch.tensor([[(v >> b) & 1 for b in range(4)] for v in range(16)]).double().view(16, 1, 2, 2)
    for order in (0, 1, None):
        assert abs(float(model.log_prob(grid, order=order).detach().exp().sum()) - 1) < 1e-10


# -- completion -------------------------------------------------------------------------------------------------------
def test_completion_keeps_observed_pixels_and_its_nll_is_the_hidden_conditionals():
    model = _model(4, 4, 2, orders=8, order_family="s-curve").float()
    x = torch.randint(0, 2, (3, 1, 4, 4)).float()
    for region in ("top", "left", "bottom"):
        obs = region_mask(region, 4, 4)
        out = model.complete(x, obs, generator=torch.Generator().manual_seed(0))
        assert torch.equal(out[:, :, obs], x[:, :, obs])
        perm = model.completion_orders(obs)[0]
        rank = _rank(perm)
        assert rank[obs.flatten()].max() < rank[~obs.flatten()].min()      # observed first
        hidden = (model.conditionals(x, order=perm) * ~obs).flatten(1).sum(1)
        torch.testing.assert_close(model.completion_nll(x, obs), -hidden)


@pytest.mark.parametrize("opts,match", [(dict(channels=3), "greyscale"), (dict(order_sampling="minibatch"),
                                                                          "--order-sampling must be example or batch"),
                                        (dict(height=1, width=6), "1 x 6 image .* use --orders 1 or fewer")])
def test_unusable_configs_are_refused_in_one_line(opts, match):
    with pytest.raises(DgmError, match=match) as e:
        build_model("lmconv", {**dict(height=4, width=4, levels=2), **opts})
    assert "\n" not in str(e.value)


# -- runs saved before issue 31 ---------------------------------------------------------------------------------------
# An 8-order Hilbert LMConv on 4 x 3 images as the code before issue 31 built it (variant 1 mirrored the columns, 2 the
# rows; on a non-square image variants 4-7 repeated 0-3), and what that code computed with it (seed 0, every parameter
# times 5): log p(X) under orders 0-3, the ensemble, and the images drawn from NOISE under orders 1 and 2.
OLD_ORDERS = [[0, 3, 4, 1, 2, 5, 8, 11, 10, 7, 6, 9], [2, 5, 4, 1, 0, 3, 6, 9, 10, 7, 8, 11],
              [9, 6, 7, 10, 11, 8, 5, 2, 1, 4, 3, 0], [11, 8, 7, 10, 9, 6, 3, 0, 1, 4, 5, 2]] * 2
OLD_LOG_PROB = [[-33.715, -10.4817, -40.1465], [-26.9859, -29.483, -24.2051], [-19.23, -32.0212, -34.7535],
                [-48.5533, -37.4083, -33.8391]]
OLD_ENSEMBLE = [-20.6158, -11.868, -25.5913]
OLD_SAMPLES = {1: [[0, 1, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0],
                   [0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1]],
               2: [[1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0], [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0],
                   [1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0]]}


def test_a_run_saved_with_the_old_order_numbering_loads_and_computes_as_before(tmp_path):
    """A checkpoint carries its orders (the ``order_table`` buffer), so renumbering the variants changes new runs only;
    a config.json written before ``order_sampling`` existed trains with one order per example, as then."""
    torch.manual_seed(0)
    model = build_model("lmconv", dict(height=4, width=3, levels=2, hidden=6, layers=3, orders=8,
                                       order_family="hilbert"))
    assert model.order_table.tolist() != OLD_ORDERS       # this code numbers (and builds) them differently
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(5)
        model.order_table.copy_(torch.tensor(OLD_ORDERS))
    run = tmp_path / "old"
    (run / "checkpoints").mkdir(parents=True)
    config = {k: v for k, v in model.config.to_dict().items() if k != "order_sampling"}
    write_json(run / CONFIG, {"model": "lmconv", "model_config": config,
                              "data": {"name": "digits", "binarize": "dynamic"}})
    ckpt.save_atomic({"model": model.state_dict(), "step": 1}, ckpt.checkpoint_path(run, 1))
    loaded = dgm.load(run)
    assert loaded.config.order_sampling == "example"
    assert loaded.order_table.tolist() == OLD_ORDERS
    x = torch.randint(0, 2, (3, 1, 4, 3), generator=torch.Generator().manual_seed(1)).float()
    got = torch.stack([loaded.log_prob(x, order=i) for i in range(4)])
    torch.testing.assert_close(got, torch.tensor(OLD_LOG_PROB), rtol=1e-5, atol=2e-4)
    torch.testing.assert_close(loaded.log_prob(x), torch.tensor(OLD_ENSEMBLE), rtol=1e-5, atol=2e-4)
    noise = torch.rand(3, 1, 4, 3, generator=torch.Generator().manual_seed(2))
    for order, images in OLD_SAMPLES.items():
        for method in ("cached", "naive"):
            assert loaded.sample(3, noise=noise, order=order, method=method).view(3, -1).tolist() == images


# -- how training draws orders ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("sampling", ["example", "batch"])
def test_training_draws_one_order_per_example_or_one_per_batch(sampling):
    """Each example's training log-likelihood is its log p(x; pi) under exactly one of the 8 orders, which identifies
    the order it was drawn: with "batch" one for the whole batch, with "example" several per batch; the global RNG's
    seed fixes the draws, and other seeds draw other orders."""
    model = _model(4, 4, 2, orders=8, order_family="s-curve", order_sampling=sampling)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)                                         # orders' likelihoods far apart
    x = torch.randint(0, 2, (16, 1, 4, 4), generator=torch.Generator().manual_seed(0)).double()
    each = torch.stack([model.log_prob(x, order=i) for i in range(8)], 1)        # (B, 8)

    def drawn(seed):
        torch.manual_seed(seed)
        hit = (model.training_log_prob(x)[:, None] - each).abs() < 1e-9
        assert bool((hit.sum(1) == 1).all())
        return hit.long().argmax(1).tolist()

    draws = [drawn(seed) for seed in range(6)]
    assert drawn(3) == draws[3]
    per_batch = [len(set(d)) for d in draws]
    if sampling == "batch":
        assert per_batch == [1] * 6
    else:
        assert min(per_batch) > 1
    assert len({tuple(d) for d in draws}) > 1


@pytest.mark.parametrize("sampling", ["example", "batch"])
def test_dgm_train_uses_the_order_sampling_option(tmp_path, monkeypatch, sampling):
    """Through `dgm train`: each training step runs one pass of the whole batch under one order ("batch"), or one pass
    per distinct order drawn for its examples ("example"); config.json records the option."""
    calls = []
    logits = LMConv._logits

    def spy(self, x, y, order):
        if self.training:
            calls.append((x.shape[0], tuple(order.tolist())))
        return logits(self, x, y, order)

    monkeypatch.setattr(LMConv, "_logits", spy)
    assert _train(tmp_path / "run", "--steps", "2", "--orders", "8", "--order-sampling", sampling) == 0
    assert sum(n for n, _ in calls) == 2 * 32
    if sampling == "batch":
        assert [n for n, _ in calls] == [32, 32]
    else:
        assert len(calls) > 2 and len({o for _, o in calls}) > 2
    assert json.loads((tmp_path / "run" / CONFIG).read_text())["model_config"]["order_sampling"] == sampling


# -- training through the shared engine ------------------------------------------------------------------------------
def _train(out, *extra):
    return main(["train", "lmconv", "--data", "digits", "--binarize", "dynamic", "--batch-size", "32", "--out",
                 str(out), "--n-samples", "0", "--no-progress", "--ckpt-every", "1000", "--log-every", "1",
                 "--eval-every", "1000", "--deterministic", *TINY_LM, *extra])


@pytest.mark.parametrize("sampling", ["example", "batch"])
def test_resume_equals_uninterrupted_run_bit_for_bit(tmp_path, sampling):
    opts = ("--orders", "3", "--order-sampling", sampling)
    assert _train(tmp_path / "full", "--steps", "3", *opts) == 0
    assert _train(tmp_path / "half", "--steps", "1", *opts) == 0
    assert _train(tmp_path / "half", "--steps", "3", "--resume") == 0
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(r)) for r in (tmp_path / "full", tmp_path / "half"))
    assert a["step"] == b["step"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    common = ["train", "lmconv", "--data", "digits", "--binarize", "--batch-size", "32", "--steps", "2",
              "--orders", "1", "--n-samples", "0", "--no-progress", "--device", "cpu", *TINY_LM]
    torchrun(common, tmp_path / "ddp")
    one = subprocess.run([sys.executable, "-m", "dgm.cli", *common, "--out", str(tmp_path / "one")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(r)) for r in (tmp_path / "ddp", tmp_path / "one"))
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)
