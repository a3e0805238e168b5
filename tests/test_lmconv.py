"""LMConv (Jain et al. 2020): the locally masked convolution equals the paper's unfold formulation, every order of
every family is autoregressive (autograd), likelihoods are sums of one-pixel conditionals, ensembles are
log-mean-exp, completion keeps what is observed, and training resumes bit for bit and runs under DDP."""
import math
import os
import subprocess
import sys

import pytest
import torch

from dgm import checkpoint as ckpt
from dgm.cli import main
from dgm.errors import DgmError
from dgm.models import build_model
from dgm.nn import MaskedConv2d
from dgm.nn.lmconv import LocallyMaskedConv2d, tap_masks, unfold_reference
from dgm.nn.orders import family_orders, region_mask

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


def test_colour_images_are_refused_in_one_line():
    with pytest.raises(DgmError, match="greyscale"):
        build_model("lmconv", dict(channels=3, height=4, width=4, levels=2))


# -- training through the shared engine ------------------------------------------------------------------------------
def _train(out, *extra):
    return main(["train", "lmconv", "--data", "digits", "--binarize", "dynamic", "--batch-size", "32", "--out",
                 str(out), "--n-samples", "0", "--no-progress", "--ckpt-every", "1000", "--log-every", "1",
                 "--eval-every", "1000", "--deterministic", *TINY_LM, *extra])


def test_resume_equals_uninterrupted_run_bit_for_bit(tmp_path):
    assert _train(tmp_path / "full", "--steps", "3", "--orders", "3") == 0
    assert _train(tmp_path / "half", "--steps", "1", "--orders", "3") == 0
    assert _train(tmp_path / "half", "--steps", "3", "--orders", "3", "--resume") == 0
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
