"""Generation orders (dgm.nn.orders): permutations, symmetries, maximum context, refusals."""
import pytest
import torch

from dgm.errors import DgmError
from dgm.nn.orders import (ORDER_FAMILIES, REGIONS, check_order, context_first, context_pairs, family_orders,
                           max_context_orders, model_orders, puts_first, region_mask)

SIZES = [(1, 1), (1, 5), (2, 2), (3, 5), (5, 3), (4, 4), (6, 9), (7, 7), (8, 8), (28, 28)]


def steps(order, w):
    r, c = order // w, order % w
    return r.diff().abs() + c.diff().abs()


@pytest.mark.parametrize("h,w", SIZES)
def test_every_order_of_every_family_is_a_permutation(h, w):
    for family in ORDER_FAMILIES:
        variants = family_orders(family, h, w)
        assert len(variants) == 8
        for o in variants:
            assert o.dtype == torch.long
            assert torch.equal(o.sort().values, torch.arange(h * w))
            check_order(o, h * w)
    for o in model_orders("random", 5, h, w):
        assert torch.equal(o.sort().values, torch.arange(h * w))


def test_raster_s_curve_and_symmetries():
    assert torch.equal(family_orders("raster", 3, 4)[0], torch.arange(12))
    assert family_orders("s-curve", 2, 3)[0].tolist() == [0, 1, 2, 5, 4, 3]
    v = family_orders("raster", 2, 3)
    assert v[1].tolist() == [3, 4, 5, 0, 1, 2]  # mirrored top-bottom
    assert v[2].tolist() == [2, 1, 0, 5, 4, 3]  # mirrored left-right
    assert v[4].tolist() == [0, 3, 1, 4, 2, 5]  # transposed: columns first
    assert v[5].tolist() == [3, 0, 4, 1, 5, 2]  # transposed, then mirrored top-bottom
    assert len({tuple(o.tolist()) for o in family_orders("hilbert", 8, 8)}) == 8


@pytest.mark.parametrize("n", [4, 5])
def test_variants_are_numbered_as_in_the_official_code(n):
    """The official LMConv code (ajayjain/lmconv, masking.py ``augment_orders``) lists, for a base curve of (row, col)
    cells on a square image: the curve, rows reflected, columns reflected, both, then the same four of the transposed
    curve. Restated here on cells, independently of ``family_orders``."""
    def flat(cells):
        return [r * n + c for r, c in cells]

    for family in ORDER_FAMILIES:
        base = [divmod(p, n) for p in family_orders(family, n, n)[0].tolist()]
        official = []
        for cells in (base, [(c, r) for r, c in base]):
            official += [cells, [(n - 1 - r, c) for r, c in cells], [(r, n - 1 - c) for r, c in cells],
                         [(n - 1 - r, n - 1 - c) for r, c in cells]]
        assert [o.tolist() for o in family_orders(family, n, n)] == [flat(c) for c in official], family
    assert family_orders("raster", n, n)[1][:n].tolist() == list(range(n * n - n, n * n))  # --orders 2: bottom row next


def test_the_orders_a_model_uses_are_pairwise_distinct():
    """Issue 31: on a non-square image the Hilbert variants 4-7 were variants 0-3 again (the curve followed the long
    side, so building it on the transposed grid gave the same curve). Now every family's 8 orders are distinct on every
    image of at least 2 x 2 pixels, square or not, and mixed's 24 from 3 x 3 on."""
    for h, w in [(h, w) for h in range(2, 10) for w in range(2, 10)] + [(28, 27), (24, 32)]:
        for family, n in [(f, 8) for f in ORDER_FAMILIES] + [("mixed", 24)] * (min(h, w) > 2):
            assert len({tuple(o.tolist()) for o in model_orders(family, n, h, w)}) == n, (family, h, w)


@pytest.mark.parametrize("family,n,h,w,most", [("s-curve", 2, 1, 5, 1), ("raster", 3, 5, 1, 2), ("hilbert", 8, 1, 1, 1),
                                              ("mixed", 14, 2, 6, 13)])
def test_orders_that_would_repeat_are_refused_in_one_line(family, n, h, w, most):
    """A 1-pixel-wide image has 2 orders per family (1 x W: variant 1, rows mirrored, is variant 0); on 2 rows the
    transposed Hilbert curve is an S-curve, so mixed has 13 distinct."""
    assert len(model_orders(family, most, h, w)) == most
    with pytest.raises(DgmError, match=f"on a {h} x {w} image .*; use --orders {most} or fewer$") as e:
        model_orders(family, n, h, w)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("h,w", [(4, 4), (8, 8), (7, 7), (28, 28), (3, 5), (5, 3), (6, 9), (9, 6), (5, 4), (4, 5),
                                 (2, 7), (12, 3), (24, 32)])
def test_curves_step_to_neighbours(h, w):
    """s-curve: always a 4-neighbour; hilbert: at most one diagonal step (odd-by-even parts), never a jump."""
    for o in family_orders("s-curve", h, w):
        assert int(steps(o, w).max()) == 1
    for o in family_orders("hilbert", h, w):
        s = steps(o, w)
        assert int(s.max()) <= 2 and int((s > 1).sum()) <= 1
        if h % 2 == w % 2 or (h, w) == (28, 28):
            assert int(s.max()) == 1


def test_hilbert_on_a_power_of_two_square_is_the_hilbert_curve():
    assert family_orders("hilbert", 4, 4)[0].tolist() == [0, 1, 5, 4, 8, 12, 13, 9, 10, 14, 15, 11, 7, 6, 2, 3]


def test_model_orders():
    assert torch.equal(model_orders("random", 3, 4, 4)[0], torch.arange(16))
    assert torch.equal(torch.stack(model_orders("random", 3, 4, 4, seed=1)),
                       torch.stack(model_orders("random", 3, 4, 4, seed=1)))
    assert not torch.equal(torch.stack(model_orders("random", 3, 4, 4, seed=1)),
                           torch.stack(model_orders("random", 3, 4, 4, seed=2)))
    mixed = model_orders("mixed", 6, 4, 4)
    assert torch.equal(mixed[1], family_orders("s-curve", 4, 4)[0])
    assert torch.equal(mixed[5], family_orders("hilbert", 4, 4)[1])
    with pytest.raises(DgmError, match="did you mean 'hilbert'"):
        model_orders("hilbrt", 1, 4, 4)
    with pytest.raises(DgmError, match="1..8"):
        model_orders("s-curve", 9, 4, 4)
    with pytest.raises(DgmError, match="1..24"):
        model_orders("mixed", 25, 4, 4)
    with pytest.raises(DgmError, match="at least 1"):
        model_orders("random", 0, 4, 4)


def test_region_masks_round_the_observed_half_down():
    assert region_mask("top", 5, 3).sum(1).tolist() == [3, 3, 0, 0, 0]
    assert region_mask("bottom", 5, 3).sum(1).tolist() == [0, 0, 0, 3, 3]
    assert region_mask("left", 2, 5).sum(0).tolist() == [2, 2, 0, 0, 0]
    assert region_mask("right", 2, 5).sum(0).tolist() == [0, 0, 0, 2, 2]
    with pytest.raises(DgmError, match="top, bottom"):
        region_mask("middle", 4, 4)


def test_context_first_is_a_stable_partition():
    obs = region_mask("bottom", 4, 4)
    o = family_orders("s-curve", 4, 4)[0]
    cf = context_first(o, obs)
    assert puts_first(cf, obs) and not puts_first(o, obs)
    assert cf[:8].tolist() == [p for p in o.tolist() if obs.view(-1)[p]]
    assert cf[8:].tolist() == [p for p in o.tolist() if not obs.view(-1)[p]]
    assert context_pairs(cf, obs) == 8 * 8


@pytest.mark.parametrize("h,w", [(4, 4), (5, 6), (8, 8)])
@pytest.mark.parametrize("region", REGIONS)
def test_max_context_orders_put_observed_first(h, w, region):
    obs = region_mask(region, h, w)
    flat = obs.view(-1)
    for family in ORDER_FAMILIES:
        orders = family_orders(family, h, w)
        best = max_context_orders(orders, obs, 2)
        assert len(set(best)) == 2
        n_obs = int(flat.sum())
        for i in best:
            o = context_first(orders[i], obs)  # what completion uses
            assert bool(flat[o[:n_obs]].all()) and not bool(flat[o[n_obs:]].any())
            if family != "hilbert" or (h % 2, w % 2) == (0, 0):  # some variant starts in the observed half
                assert puts_first(orders[i], obs)
        ranked = sorted(range(8), key=lambda i: (-context_pairs(orders[i], obs), i))
        assert best == ranked[:2]


def test_max_context_prefers_orders_that_put_observed_first():
    obs = region_mask("left", 4, 4)
    raster = family_orders("raster", 4, 4)
    assert max_context_orders(raster[:1], obs, 1) == [0]  # the only one, though it interleaves
    assert max_context_orders(raster, obs, 1) == [4]  # the transposed raster reads the left columns first
    with pytest.raises(DgmError, match="1..8"):
        max_context_orders(raster, obs, 9)


@pytest.mark.parametrize("bad,match", [(torch.tensor([0, 1, 1, 3]), "missing"), (torch.arange(3), "of 4 positions"),
                                       (torch.tensor([0, 1, 2, 4]), "0..3"), (torch.arange(4.0), "integer"),
                                       ([0, 1, 2, 3], "integer"), (torch.zeros(2, 2).long(), "1-D")])
def test_check_order_refuses_non_permutations(bad, match):
    with pytest.raises(ValueError, match=match):
        check_order(bad, 4)
