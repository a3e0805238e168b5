"""Generation orders over the H*W pixel positions of an image: weightless objects for any-order models.

A position is ``row * W + col``; an *order* is a LongTensor permutation of ``range(H * W)`` whose i-th entry
is the position generated i-th (the channels of one pixel keep R -> G -> B). Any-order autoregressive models
(LMConv: Jain et al. 2020, "Locally Masked Convolution for Autoregressive Models"; MADE: Germain et al. 2015;
EoNADE: Uria et al. 2014) share their parameters across such orders.

Families (``ORDER_FAMILIES``), each a base curve on an R x C grid:

* ``raster``: rows top to bottom, each left to right.
* ``s-curve``: boustrophedon: rows top to bottom, even rows left to right, odd rows right to left.
* ``hilbert``: a generalized Hilbert curve ("gilbert", after J. Cervený's construction) that fills any
  R x C rectangle directly, not a 2^k square with the outside dropped: from the top-left corner to the far
  end of the top row (its major axis runs along the columns, like a raster's rows, whichever side is
  longer), the rectangle is cut recursively in two (when a part is much longer than wide) or into the three
  parts of a Hilbert "U" (otherwise), preferring even splits so that every step of the curve is to a
  4-neighbour; only when the parity of a part makes that impossible (some odd x even sizes) does the curve
  take a diagonal step, once per image at most (``tests/test_orders.py`` measures it).

Each family has 8 variants, the base curve under the 8 symmetries of the grid (``family_orders``), numbered
as the official LMConv code numbers them (``augment_orders`` in its masking.py): variants 0-3 are the curve on
the H x W grid as is, mirrored top-bottom (rows reversed), mirrored left-right (columns reversed) and both (a
180 degree turn); variants 4-7 build the curve on the transposed W x H grid and map it back (transpose), then
apply the same three mirrors (for a square image these are the two diagonal mirrors and the two quarter turns).
Variant 0 of ``raster`` is the plain raster order. Because every base curve runs along the columns first,
variants 4-7 (along the rows first) differ from 0-3 on any image of at least 2 x 2 pixels, square or not;
``model_orders`` refuses a count that would use one order twice (a 1-pixel-wide image has only 2).
"""
from __future__ import annotations

from typing import Callable, Iterator, List, Sequence, Tuple

import torch

from ..errors import DgmError
from ..registry import Registry

#: family name -> base curve: (rows, cols) -> list of (row, col) visiting every cell once
ORDER_FAMILIES: Registry = Registry("order family", "orders")
#: families ``model_orders`` takes beyond the registered curves
MODEL_FAMILIES = ("mixed", "random")
#: the families "mixed" interleaves
MIXED = ("raster", "s-curve", "hilbert")
REGIONS = ("top", "bottom", "left", "right")

Cells = List[Tuple[int, int]]


class OrderError(DgmError, ValueError):
    """An order, observed region or order count that cannot be used (a ValueError to library code, one line at
    the CLI)."""


@ORDER_FAMILIES.register("raster", help="rows top to bottom, each left to right")
def raster_curve(rows: int, cols: int) -> Cells:
    return [(r, c) for r in range(rows) for c in range(cols)]


@ORDER_FAMILIES.register("s-curve", help="boustrophedon: rows top to bottom, alternating direction")
def s_curve(rows: int, cols: int) -> Cells:
    return [(r, c if r % 2 == 0 else cols - 1 - c) for r in range(rows) for c in range(cols)]


def _sign(v: int) -> int:
    return (v > 0) - (v < 0)


def _gilbert(x: int, y: int, ax: int, ay: int, bx: int, by: int) -> Iterator[Tuple[int, int]]:
    """Cells (x, y) of the rectangle spanned from corner (x, y) by the major axis (ax, ay) and the minor axis
    (bx, by) (each along x or along y), entering at the corner and leaving at the far end of the major axis."""
    length, breadth = abs(ax + ay), abs(bx + by)
    dax, day, dbx, dby = _sign(ax), _sign(ay), _sign(bx), _sign(by)
    if breadth == 1 or length == 1:  # a single line: walk it
        dx, dy, n = (dax, day, length) if breadth == 1 else (dbx, dby, breadth)
        for i in range(n):
            yield x + i * dx, y + i * dy
        return
    hax, hay, hbx, hby = ax // 2, ay // 2, bx // 2, by // 2
    if 2 * length > 3 * breadth:  # long and thin: two halves along the major axis
        if abs(hax + hay) % 2 and length > 2:  # an even first half keeps the joint a unit step
            hax, hay = hax + dax, hay + day
        yield from _gilbert(x, y, hax, hay, bx, by)
        yield from _gilbert(x + hax, y + hay, ax - hax, ay - hay, bx, by)
        return
    if abs(hbx + hby) % 2 and breadth > 2:  # even legs of the U
        hbx, hby = hbx + dbx, hby + dby
    # the U: up the first leg, across the whole major axis, down the second leg
    yield from _gilbert(x, y, hbx, hby, hax, hay)
    yield from _gilbert(x + hbx, y + hby, ax, ay, bx - hbx, by - hby)
    yield from _gilbert(x + (ax - dax) + (hbx - dbx), y + (ay - day) + (hby - dby),
                        -hbx, -hby, -(ax - hax), -(ay - hay))


@ORDER_FAMILIES.register("hilbert", help="generalized Hilbert curve, any rectangle (gilbert construction)")
def hilbert_curve(rows: int, cols: int) -> Cells:
    # x runs along the columns, y along the rows; the major axis is always x (not the longer side, which would make
    # the curve built on the transposed grid, variants 4-7, the same curve as variants 0-3 on a non-square image)
    return [(y, x) for x, y in _gilbert(0, 0, cols, 0, 0, rows)]


def family_orders(family: str, height: int, width: int) -> List[torch.Tensor]:
    """The 8 variants of ``family`` on an H x W image (module doc), as LongTensor permutations of H*W."""
    curve: Callable[[int, int], Cells] = ORDER_FAMILIES.get(family)
    _check_size(height, width)
    out = []
    for transposed in (False, True):
        cells = curve(height, width) if not transposed else [(c, r) for r, c in curve(width, height)]
        for flip_rows, flip_cols in ((False, False), (True, False), (False, True), (True, True)):
            out.append(torch.tensor([(height - 1 - r if flip_rows else r) * width + (width - 1 - c if flip_cols else c)
                                     for r, c in cells], dtype=torch.long))
    return out


def model_orders(family: str, n: int, height: int, width: int, seed: int = 0) -> List[torch.Tensor]:
    """The n orders a model uses: the first n variants of a registered family (n <= 8); ``mixed``: raster,
    s-curve and hilbert interleaved (variant 0 of each, then variant 1 of each, ...; n <= 24); ``random``: raster
    followed by n - 1 uniformly random permutations drawn from a CPU generator seeded with ``seed``
    (order-agnostic training as in MADE and EoNADE). A family's or ``mixed``'s n orders that would repeat one (on
    images 1, or for ``mixed`` 2, pixels wide or high) are refused."""
    known = list(ORDER_FAMILIES) + list(MODEL_FAMILIES)
    if family not in known:
        import difflib

        close = difflib.get_close_matches(family, known, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise OrderError(f"unknown order family {family!r}{hint} (known: {', '.join(known)})")
    _check_size(height, width)
    limit = {"mixed": 8 * len(MIXED), "random": None}.get(family, 8)
    if n < 1 or (limit is not None and n > limit):
        most = f"1..{limit}" if limit is not None else "at least 1"
        raise OrderError(f"--orders must be {most} for order family {family!r}, got {n}")
    if family == "random":
        gen = torch.Generator().manual_seed(seed)
        return [torch.arange(height * width)] + [torch.randperm(height * width, generator=gen) for _ in range(n - 1)]
    if family == "mixed":
        per = [family_orders(f, height, width) for f in MIXED]
        return _distinct([per[i % len(MIXED)][i // len(MIXED)] for i in range(n)], family, height, width)
    return _distinct(family_orders(family, height, width)[:n], family, height, width)


def _distinct(orders: List[torch.Tensor], family: str, height: int, width: int) -> List[torch.Tensor]:
    """``orders``, refused in one line if two are the same (thin images have fewer distinct variants)."""
    seen = {}
    for i, o in enumerate(orders):
        j = seen.setdefault(tuple(o.tolist()), i)
        if j != i:
            raise OrderError(f"--orders {len(orders)}: on a {height} x {width} image order {i} of family {family!r} "
                             f"is order {j} again (thin images have fewer distinct orders); use --orders {i} or fewer")
    return orders


def _check_size(height: int, width: int) -> None:
    if height < 1 or width < 1:
        raise OrderError(f"orders need an image of at least 1 x 1 pixels, got {height} x {width}")


def region_mask(region: str, height: int, width: int) -> torch.Tensor:
    """(H, W) bool mask of the observed half: ``top``/``bottom`` keep H // 2 rows, ``left``/``right`` keep
    W // 2 columns (for an odd size the middle row or column is hidden)."""
    if region not in REGIONS:
        raise OrderError(f"unknown region {region!r}; choose one of {', '.join(REGIONS)}")
    m = torch.zeros(height, width, dtype=torch.bool)
    h, w = height // 2, width // 2
    if region == "top":
        m[:h] = True
    elif region == "bottom":
        m[height - h:] = True
    elif region == "left":
        m[:, :w] = True
    else:
        m[:, width - w:] = True
    return m


def check_order(order: torch.Tensor, n_positions: int) -> None:
    """OrderError (a ValueError) unless ``order`` is a 1-D integer tensor holding each of 0..n_positions-1 once."""
    if not isinstance(order, torch.Tensor) or order.dim() != 1 or order.dtype.is_floating_point \
            or order.dtype == torch.bool or order.is_complex():
        got = f"a {order.dtype} tensor of shape {tuple(order.shape)}" if isinstance(order, torch.Tensor) \
            else type(order).__name__
        raise OrderError(f"expected an order as a 1-D integer tensor (a permutation of the {n_positions} pixel "
                         f"positions), got {got}")
    if order.numel() != n_positions:
        raise OrderError(f"expected an order of {n_positions} positions (H * W), got {order.numel()}")
    seen = torch.zeros(n_positions, dtype=torch.bool)
    o = order.detach().cpu().long()
    if n_positions and (int(o.min()) < 0 or int(o.max()) >= n_positions):
        raise OrderError(f"expected order positions in 0..{n_positions - 1}, got values from {int(o.min())} "
                         f"to {int(o.max())}")
    seen[o] = True
    if not bool(seen.all()):
        raise OrderError(f"expected an order that is a permutation of 0..{n_positions - 1}; position "
                         f"{int((~seen).nonzero()[0])} is missing (another one is repeated)")


def _flat(observed: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    obs = torch.as_tensor(observed).bool().reshape(-1).to(order.device)
    if obs.numel() != order.numel():
        raise OrderError(f"expected an observed mask of {order.numel()} pixels (H x W), got {obs.numel()}")
    return obs


def context_first(order: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """The order with the observed positions moved first: a stable partition (observed positions, then hidden
    ones, each in ``order``'s relative order). ``observed``: (H, W) or flat (H*W,) bool mask."""
    along = _flat(observed, order)[order]
    return torch.cat([order[along], order[~along]])


def context_pairs(order: torch.Tensor, observed: torch.Tensor) -> int:
    """How many (observed, hidden) position pairs have the observed one earlier in ``order``: the context the
    order gives the hidden pixels, at most n_observed * n_hidden (reached exactly when it puts observed first)."""
    along = _flat(observed, order)[order].long()
    return int((torch.cumsum(along, 0) * (1 - along)).sum())


def puts_first(order: torch.Tensor, observed: torch.Tensor) -> bool:
    """True when every observed position comes before every hidden one in ``order``."""
    along = _flat(observed, order)[order]
    hidden = (~along).nonzero()
    return not hidden.numel() or not bool(along[int(hidden[0]):].any())


def max_context_orders(orders: Sequence[torch.Tensor], observed: torch.Tensor, k: int = 1) -> List[int]:
    """Indices of the k orders that give the hidden pixels the most context: orders that put every observed
    position first rank highest, then more (observed before hidden) pairs (``context_pairs``), then the lower
    index."""
    if not 1 <= k <= len(orders):
        raise OrderError(f"can pick 1..{len(orders)} maximum-context orders among this model's {len(orders)}, "
                         f"got {k}")
    score = [(not puts_first(o, observed), -context_pairs(o, observed), i) for i, o in enumerate(orders)]
    return [i for *_, i in sorted(score)[:k]]


