"""The any-order contract (dgm.models.anyorder) on a small test model, and the raster models' completion NLL.

``order_respected`` and ``check_contract`` are shared with the any-order model tests (MADE, NADE, LMConv)."""
import itertools
import math

import pytest
import torch
import torch.nn as nn

from dgm.errors import DgmError
from dgm.models import build_model
from dgm.models.anyorder import AnyOrderConfig, AnyOrderModel, one_hot_levels
from dgm.nn.orders import ORDER_FAMILIES, context_first, family_orders, puts_first, region_mask


class LinearAnyOrder(AnyOrderModel):
    """Logit of the pixel at rank r: a masked linear function of the one-hot pixels of rank < r (one channel)."""

    Config = AnyOrderConfig

    def __init__(self, config):
        super().__init__(config)
        d, k = config.height * config.width, config.levels
        self.w = nn.Parameter(torch.randn(d, self.out_per_channel, d, k))
        self.b = nn.Parameter(torch.randn(d, self.out_per_channel))

    def _logits(self, x, y, order):
        c = self.config
        d = c.height * c.width
        rank = torch.empty_like(order)
        rank[order] = torch.arange(d, device=order.device)
        mask = (rank[:, None] > rank[None, :]).to(self.w.dtype)  # output d reads input e iff e comes earlier
        oh = one_hot_levels(x.reshape(x.shape[0], d), c.levels, self.w.dtype)
        out = torch.einsum("djek,bek->bdj", self.w * mask[:, None, :, None], oh) + self.b
        if self.binary:
            return out.reshape(x.shape[0], 1, c.height, c.width)
        return out.transpose(1, 2).reshape(x.shape[0], c.levels, 1, c.height, c.width)


def toy(levels=2, h=3, w=3, orders=3, family="mixed"):
    torch.manual_seed(0)
    return LinearAnyOrder(AnyOrderConfig(height=h, width=w, levels=levels, orders=orders, order_family=family)).double()


def order_respected(model, x, order):
    """The logit of the i-th generated pixel has zero input gradient at that pixel and every later one and a
    non-zero one at some earlier pixel (every channel of the pixel; channels keep R -> G -> B)."""
    c = model.config
    perm = model.resolve_order(order)
    for i, pos in enumerate(perm.tolist()):
        r, col = divmod(pos, c.width)
        for ch in range(c.channels):
            xg = x.clone().requires_grad_(True)
            out = model(xg, order=order)
            at = out[:, ch, r, col] if model.binary else out[:, :, ch, r, col]
            (g,) = torch.autograd.grad(at.sum(), xg)
            g = g.abs().sum(0)  # (C, H, W)
            later = g.flatten(1)[:, perm[i + 1:]]
            assert later.max() == 0 if later.numel() else True, f"pixel {pos} (rank {i}) reads a later pixel"
            assert g[ch:, r, col].max() == 0, f"pixel {pos} channel {ch} reads itself or a later channel"
            if i or ch:  # and it reads something earlier, so the test can fail the other way too
                earlier = torch.cat([g.flatten(1)[:, perm[:i]].flatten(), g[:ch, r, col].flatten()])
                assert earlier.max() > 0, f"pixel {pos} (rank {i}) reads nothing"


def one_at_a_time(model, x, order):
    """log p(x; order) built element by element: the conditional of each pixel with the later pixels zeroed."""
    c = model.config
    perm = model.resolve_order(order)
    total = torch.zeros(x.shape[0], dtype=torch.float64)
    for i, pos in enumerate(perm.tolist()):
        r, col = divmod(pos, c.width)
        seen = torch.zeros(c.height * c.width, dtype=torch.bool)
        seen[perm[:i + 1]] = True
        masked = torch.where(seen.view(1, 1, c.height, c.width), x, torch.zeros_like(x))
        total += model.conditionals(masked, order=order)[:, :, r, col].sum(1).double()
    return total


def all_images(model):
    c = model.config
    vals = itertools.product(range(c.levels), repeat=c.channels * c.height * c.width)
    return torch.tensor(list(vals), dtype=torch.float64).view(-1, c.channels, c.height, c.width)


@pytest.mark.parametrize("levels", [2, 3])
def test_toy_model_respects_every_order_of_every_family(levels):
    model = toy(levels, orders=1)
    x = torch.randint(0, levels, (2, 1, 3, 3)).double()
    for family in ORDER_FAMILIES:
        for o in family_orders(family, 3, 3)[::3]:
            order_respected(model, x, o)


def test_forward_accepts_index_permutation_and_per_example_indices():
    model = toy(3)
    x = torch.randint(0, 3, (5, 1, 3, 3)).double()
    per_order = [model(x, order=i) for i in range(3)]
    assert torch.equal(model(x), per_order[0])
    assert torch.equal(model(x, order=model.orders[2]), per_order[2])
    assert torch.equal(model(x, order=torch.tensor(1)), per_order[1])
    idx = torch.tensor([2, 0, 1, 2, 0])
    mixed = model(x, order=idx)
    for b, i in enumerate(idx.tolist()):
        assert torch.allclose(mixed[b], per_order[i][b])
    assert torch.allclose(model.forward_per_example(x, None, idx), mixed)


def test_order_lists_the_elements_in_generation_order():
    model = toy(2, orders=3)
    assert model.order() == [(0, p // 3, p % 3) for p in range(9)]  # mixed: order 0 is the raster order
    assert model.order(1) == [(0, p // 3, p % 3) for p in model.orders[1].tolist()]


def test_orders_are_a_buffer_in_the_state_dict():
    model = toy(2, orders=4, family="random")
    assert model.order_table.shape == (4, 9) and "order_table" in model.state_dict()
    assert [o.tolist() for o in model.orders] == [o.tolist() for o in model.order_table]
    other = toy(2, orders=4, family="random")
    other.order_table.copy_(torch.stack([torch.randperm(9) for _ in range(4)]))
    model.load_state_dict(other.state_dict())  # a checkpoint's orders win: they are the ones it was trained with
    assert torch.equal(model.order_table, other.order_table)


@pytest.mark.parametrize("levels", [2, 3])
def test_log_prob_is_the_sum_of_one_at_a_time_conditionals_and_the_ensemble_log_mean_exp(levels):
    model = toy(levels)
    x = torch.randint(0, levels, (4, 1, 3, 3)).double()
    singles = []
    for i in range(3):
        lp = model.log_prob(x, order=i)
        assert torch.allclose(lp, one_at_a_time(model, x, i))
        singles.append(lp)
    assert torch.allclose(model.log_prob(x), torch.logsumexp(torch.stack(singles), 0) - math.log(3))
    assert not torch.allclose(singles[0], singles[1])  # the orders really differ


def test_probabilities_sum_to_one_per_order_and_for_the_ensemble():
    model = toy(2, h=2, w=2, orders=4, family="random")
    xs = all_images(model)
    assert xs.shape[0] == 16
    for order in (0, 1, 3, None):
        assert torch.allclose(model.log_prob(xs, order=order).exp().sum(), torch.tensor(1.0, dtype=torch.float64))


def test_training_draws_one_order_per_example_from_the_global_rng():
    model = toy(2, orders=3)
    x = torch.randint(0, 2, (6, 1, 3, 3)).double()
    torch.manual_seed(5)
    got = model.training_log_prob(x)
    torch.manual_seed(5)
    idx = torch.randint(3, (6,))
    want = torch.stack([model.log_prob(x[b:b + 1], order=int(i))[0] for b, i in enumerate(idx)])
    assert torch.allclose(got, want)


def test_completion_keeps_observed_pixels_and_uses_a_context_first_order():
    model = toy(3, h=4, w=4, orders=8, family="s-curve")
    x = torch.randint(0, 3, (3, 1, 4, 4)).double()
    for region in ("top", "bottom", "left", "right"):
        obs = region_mask(region, 4, 4)
        perms = model.completion_orders(obs)
        assert len(perms) == 1 and puts_first(perms[0], obs)
        done = model.complete(x, obs, generator=torch.Generator().manual_seed(0))
        assert torch.equal(done[:, :, obs], x[:, :, obs])
        assert done.shape == x.shape and bool(((done >= 0) & (done <= 2)).all())
        # completion NLL = the hidden pixels' conditionals under the chosen (context-first) order
        cond = model.conditionals(x, order=perms[0])
        assert torch.allclose(model.completion_nll(x, obs), -(cond[:, 0][:, ~obs]).sum(1))
    # two orders: log-mean-exp of the two
    obs = region_mask("left", 4, 4)
    two = model.completion_orders(obs, k=2)
    each = torch.stack([-model.completion_nll(x, obs, orders=[p]) for p in two])
    assert torch.allclose(model.completion_nll(x, obs, orders=two), -(torch.logsumexp(each, 0) - math.log(2)))
    # an order that does not put the observed pixels first is made context-first
    raster = model.completion_orders(obs, orders=[torch.arange(16)])[0]
    assert torch.equal(raster, context_first(torch.arange(16), obs))


def test_completion_distribution_is_normalised_over_the_hidden_pixels():
    model = toy(2, h=2, w=2, orders=3, family="random")
    obs = region_mask("right", 2, 2)
    xs = all_images(model)
    xs = xs[(xs[:, 0, :, 1] == torch.tensor([1.0, 0.0])).all(1)]  # every hidden half, one observed half
    assert xs.shape[0] == 4
    for orders in (None, [0, 2]):
        assert torch.allclose((-model.completion_nll(xs, obs, orders=orders)).exp().sum(),
                              torch.tensor(1.0, dtype=torch.float64))


def test_sampling_is_reproducible_and_follows_the_noise():
    model = toy(3, orders=2)
    a = model.sample(4, generator=torch.Generator().manual_seed(1), order=1)
    b = model.sample(4, generator=torch.Generator().manual_seed(1), order=1)
    assert torch.equal(a, b)
    noise = torch.rand(4, 1, 3, 3, dtype=torch.float64)
    assert torch.equal(model.sample(4, noise=noise, method="naive"), model.sample(4, noise=noise, order=0))
    with pytest.raises(DgmError, match="no cached sampler"):
        model.sample(2, method="cached")
    with pytest.raises(DgmError, match="unknown sampling method"):
        model.complete(a, region_mask("top", 3, 3), method="fast")


def test_bad_orders_are_one_line_errors():
    model = toy(2, orders=3)
    x = torch.zeros(2, 1, 3, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="out of range"):
        model(x, order=3)
    with pytest.raises(ValueError, match="missing"):
        model(x, order=torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"0\.\.2"):
        model(x, order=torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="same for every channel|broadcastable"):
        model.completion_nll(x, torch.ones(2, 3, 3, dtype=torch.bool))


@pytest.mark.parametrize("region", ["top", "bottom", "left"])
def test_raster_completion_nll_is_the_hidden_pixels_raster_conditionals(region):
    torch.manual_seed(0)
    model = build_model("pixelcnn", dict(height=4, width=4, levels=2, hidden=8, layers=2, first_kernel=3)).double()
    x = torch.randint(0, 2, (3, 1, 4, 4)).double()
    obs = region_mask(region, 4, 4)
    got = model.completion_nll(x, obs)
    assert torch.allclose(got, -model.conditionals(x)[:, 0][:, ~obs].sum(1))
    if region == "bottom":  # nothing observed comes earlier: the marginal of the top half
        assert torch.allclose(got, -model.conditionals(x)[:, 0, :2].flatten(1).sum(1))
    with pytest.raises(ValueError, match="raster order only"):
        model.completion_nll(x, obs, orders=[0])


@pytest.mark.parametrize("region", ["left", "bottom"])
def test_raster_completion_is_normalised_over_the_hidden_pixels(region):
    """For every observed half, exp(-completion_nll) sums to 1 over the hidden halves (left: the hidden pixels
    come before and after observed ones in raster order)."""
    torch.manual_seed(0)
    model = build_model("pixelcnn", dict(height=2, width=2, levels=2, hidden=8, layers=2, first_kernel=3)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))  # not near uniform
    xs = all_images(model)
    obs = region_mask(region, 2, 2)
    for seen in torch.unique(xs[:, 0][:, obs], dim=0):
        rows = xs[(xs[:, 0][:, obs] == seen).all(1)]
        assert rows.shape[0] == 4
        assert torch.allclose((-model.completion_nll(rows, obs)).exp().sum(), torch.tensor(1.0, dtype=torch.float64))
