"""Any-order autoregressive models: one network, many generation orders (LMConv, MADE, NADE).

p(x; pi) = prod_i p(x_{pi_i} | x_{pi_<i}) for each order pi of the H*W pixel positions (``dgm.nn.orders``;
the channels of a pixel keep R -> G -> B). The parameters are shared across the model's N orders and trained on
E_pi log p(x; pi), one order drawn uniformly per training example (Uria et al. 2014, EoNADE; Germain et al. 2015,
MADE; Jain et al. 2020, LMConv). At test time ``log_prob(x)`` is the ensemble log((1/N) sum_i p(x; pi_i)), a
proper mixture of the N models, and ``log_prob(x, order=i)`` the exact likelihood under one order.

The orders are stored in the ``order_table`` buffer (N, H*W), so a checkpoint carries the orders it was
trained with and a run always uses those (a subclass derives every order-dependent part, e.g. masks, from that
buffer, never from the config alone).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import torch

from ..errors import DgmError
from ..nn.blocks import evaluating
from .. import interrupt
from ..nn.orders import check_order, context_first, max_context_orders, model_orders, puts_first
from .autoregressive import AutoregressiveModel
from .base import check_numbers, InputError, ModelConfig

OrderArg = Union[int, torch.Tensor, None]


def one_hot_levels(x: torch.Tensor, levels: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """x (any shape) of integer levels -> x.shape + (levels,) one-hot, with a straight-through gradient: the
    values are exactly the one-hot (an exact 0.0 is added), and d/dx of every entry is 1, so autograd can
    trace which pixels a logit reads (the order tests), which a plain one-hot would hide."""
    oh = torch.nn.functional.one_hot(x.detach().long(), levels).to(dtype)
    if not x.requires_grad:
        return oh
    return oh + (x - x.detach()).to(dtype).unsqueeze(-1)


def greyscale_only(name: str, channels: int) -> None:
    """The any-order models (made, nade, lmconv) order the H*W pixels of one channel; colour is refused in one line."""
    if channels != 1:
        raise DgmError(f"{name} models greyscale images (1 channel); this data has {channels} channels: use a "
                       "greyscale dataset (an image folder: --image-channels 1) or a raster model (pixelcnn, "
                       "gated-pixelcnn) for colour")


@dataclass
class AnyOrderConfig(ModelConfig):
    """The fields every any-order model adds: how many orders, from which family, and the seed of ``random``."""

    orders: int = 1  # generation orders N shared by the weights, one drawn per training example (1: fixed order)
    order_family: str = "random"  # orders from: raster, s-curve, hilbert (8 each), mixed (24), random (raster + N-1 random)
    order_seed: int = 0  # seed of the random orders (and of any order-dependent parts, e.g. MADE's hidden degrees)

    def __post_init__(self):
        from ..nn.orders import model_orders

        check_numbers(self)  # first: an absurd --orders would be generated (and validated) for ever
        model_orders(self.order_family, self.orders, max(self.height, 1), max(self.width, 1), self.order_seed)


class AnyOrderModel(AutoregressiveModel):
    """The order-aware contract. Subclasses implement ``_logits(x, y, order)`` for one permutation."""

    def __init__(self, config: AnyOrderConfig):
        super().__init__(config)
        table = torch.stack(model_orders(config.order_family, config.orders, config.height, config.width,
                                         config.order_seed))
        self.register_buffer("order_table", table)

    # -- orders --------------------------------------------------------------------------------
    @property
    def orders(self) -> List[torch.Tensor]:
        """The model's N orders: LongTensor permutations of the H*W positions (entry i: generated i-th)."""
        return list(self.order_table.unbind(0))

    @property
    def n_positions(self) -> int:
        return self.config.height * self.config.width

    def loaded_fault(self) -> Optional[str]:
        """Also: every row of the order table is a permutation of the H*W positions (a row that repeats a position
        would make log_prob sum over some pixels twice and others never: an unnormalised likelihood)."""
        t, n = self.order_table, self.n_positions
        if t.dim() != 2 or t.shape[1] != n or t.is_floating_point():
            return f"its order_table is not a table of orders of the {n} positions (shape {tuple(t.shape)})"
        want = torch.arange(n, device=t.device)
        for i, row in enumerate(t):
            if not torch.equal(row.sort().values, want):
                return f"row {i} of its order_table is not a permutation of the {n} positions (a pixel repeats)"
        return super().loaded_fault()

    def resolve_order(self, order: Union[int, torch.Tensor]) -> torch.Tensor:
        """An int index into ``orders`` or a permutation of the H*W positions -> the permutation (checked)."""
        if isinstance(order, torch.Tensor) and order.dim() == 0:
            order = int(order)
        if isinstance(order, int) and not isinstance(order, bool):
            n = self.order_table.shape[0]
            if not -n <= order < n:
                raise InputError(f"order index {order} is out of range: this model has {n} order(s), 0..{n - 1}")
            return self.order_table[order]
        check_order(order, self.n_positions)
        return order.to(self.order_table.device).long()

    def order(self, order: Union[int, torch.Tensor] = 0) -> List[Tuple[int, int, int]]:
        """The generation order ``order`` (default the model's first) as (channel, row, column) triples."""
        c = self.config
        return [(ch, p // c.width, p % c.width) for p in self.resolve_order(order).tolist() for ch in range(c.channels)]

    def _logits(self, x: torch.Tensor, y: Optional[torch.Tensor], order: torch.Tensor) -> torch.Tensor:
        """Logits in the public layout for one permutation ``order`` (x and y already checked)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None, order=0) -> torch.Tensor:
        """Logits of every element under ``order``: an int index into ``orders``, a permutation of the H*W
        positions (a 1-D tensor of length H*W), or (B,) order indices, one per example (any other length;
        for B == H*W call ``forward_per_example``)."""
        self.check_input(x, y)
        if isinstance(order, torch.Tensor) and order.dim() == 1 and order.numel() != self.n_positions:
            return self._per_example(x, y, order)
        return self._logits(x, y, self.resolve_order(order))

    def forward_per_example(self, x: torch.Tensor, y: Optional[torch.Tensor], index: torch.Tensor) -> torch.Tensor:
        """Logits with example b under order ``index[b]`` (an index into ``orders``)."""
        self.check_input(x, y)
        return self._per_example(x, y, index)

    def _per_example(self, x, y, index: torch.Tensor) -> torch.Tensor:
        n = self.order_table.shape[0]
        if index.dtype.is_floating_point or index.dtype == torch.bool or tuple(index.shape) != (x.shape[0],):
            raise InputError(f"expected per-example orders as ({x.shape[0]},) integer indices, got a {index.dtype} "
                             f"tensor of shape {tuple(index.shape)}")
        index = index.to(x.device)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n):
            raise InputError(f"order indices must be in 0..{n - 1} (this model's {n} orders), got values from "
                             f"{int(index.min())} to {int(index.max())}")
        out = None
        for i in torch.unique(index).tolist():  # one pass per distinct order; scatter back into place
            rows = (index == i).nonzero().squeeze(1)
            part = self._logits(x[rows], None if y is None else y[rows], self.order_table[i])
            if out is None:
                out = part.new_zeros((x.shape[0],) + part.shape[1:])
            out[rows] = part
        return out

    # -- likelihood ----------------------------------------------------------------------------
    def conditionals(self, x: torch.Tensor, y: Optional[torch.Tensor] = None, order=0) -> torch.Tensor:
        """log p(x_i | elements before i in ``order``), shape (B, C, H, W), nats."""
        return self.log_prob_from_logits(self(x, y, order=order), x)

    def log_prob(self, x: torch.Tensor, y: Optional[torch.Tensor] = None, order: OrderArg = None) -> torch.Tensor:
        """log p(x; pi) for one order (an int index or a permutation), or with ``order=None`` the ensemble
        log((1/N) sum_i p(x; pi_i)) over the model's N orders; shape (B,), nats."""
        if order is not None:
            return self.conditionals(x, y, order).flatten(1).sum(1)
        n = self.order_table.shape[0]
        per = []
        for i in range(n):  # one full pass per order: a requested stop (dgm.interrupt) ends it between orders
            interrupt.check()
            per.append(self.conditionals(x, y, i).flatten(1).sum(1))
        per = torch.stack(per)
        return torch.logsumexp(per, 0) - math.log(n)

    def validation_log_prob(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """log p(x; pi_0): validation during training uses the first order only, 1/N of the ensemble's cost (an
        upper bound on the ensemble's NLL by Jensen, so a fair criterion for the best checkpoint); `dgm eval` keeps
        the N-order ensemble."""
        return self.log_prob(x, y, order=0 if self.order_table.shape[0] > 1 else None)

    @property
    def validation_note(self) -> str:
        n = self.order_table.shape[0]
        return f"order 0 of {n}; dgm eval: the {n}-order ensemble" if n > 1 else ""

    def summarize(self, val) -> str:
        text = super().summarize(val)
        return f"{text} ({self.validation_note})" if text and self.validation_note else text

    def training_log_prob(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """log p(x_b; pi_b) with pi_b drawn uniformly from the model's orders for each example, from the global
        RNG (the engine seeds, saves and restores it, so a resumed run draws the same orders)."""
        index = torch.randint(self.order_table.shape[0], (x.shape[0],))
        return self.log_prob_from_logits(self.forward_per_example(x, y, index), x).flatten(1).sum(1)

    # -- completion ----------------------------------------------------------------------------
    def _pixel_mask(self, observed) -> torch.Tensor:
        """An observed mask broadcastable to (C, H, W) -> the (H, W) pixel mask (refused if channels differ)."""
        c = self.config
        try:
            obs = torch.broadcast_to(torch.as_tensor(observed).bool(), (c.channels, c.height, c.width))
        except RuntimeError:
            raise InputError(f"expected observed as a mask broadcastable to ({c.channels}, {c.height}, {c.width}), "
                             f"got {tuple(torch.as_tensor(observed).shape)}") from None
        if not bool((obs == obs[:1]).all()):
            raise InputError("expected an observed mask that is the same for every channel of a pixel")
        return obs[0].cpu()

    def completion_orders(self, observed, orders: Optional[Sequence] = None, k: int = 1) -> List[torch.Tensor]:
        """The permutations a completion uses: ``orders`` (int indices or permutations), or the k
        maximum-context orders among the model's; each made context-first (observed pixels first)."""
        pix = self._pixel_mask(observed)
        chosen = list(orders) if orders is not None else max_context_orders(
            [o.cpu() for o in self.orders], pix, k)
        out = []
        for o in chosen:
            perm = self.resolve_order(o).cpu()
            out.append(perm if puts_first(perm, pix) else context_first(perm, pix))
        return out

    def completion_choice(self, observed, k: int = 1):
        """(the k maximum-context order indices, a description for `dgm eval`) for the observed pixel mask."""
        chosen = max_context_orders([o.cpu() for o in self.orders], self._pixel_mask(observed), k)
        return chosen, {"orders": chosen, "order_family": self.config.order_family,
                         "conditioning": "context-first: each hidden pixel sees the whole observed half"}

    def completion_nll(self, x: torch.Tensor, observed, y: Optional[torch.Tensor] = None,
                       orders: Optional[Sequence] = None) -> torch.Tensor:
        """-log p(x_hidden | x_observed), shape (B,), nats: for each chosen order (default: the one
        maximum-context order), made context-first, the sum of the hidden pixels' conditionals; then the
        log-mean-exp over the chosen orders (a mixture of their predictive distributions).

        ``observed``: a pixel mask broadcastable to (C, H, W), True where the pixel is given."""
        pix = self._pixel_mask(observed)
        hidden = (~pix).to(x.device)
        per = []
        for perm in self.completion_orders(pix, orders):
            cond = self.conditionals(x, y, perm)
            per.append((cond * hidden).flatten(1).sum(1))
        per = torch.stack(per)
        return -(torch.logsumexp(per, 0) - math.log(per.shape[0]))

    # -- sampling ------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, y: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
               noise: Optional[torch.Tensor] = None, order: OrderArg = 0, method: Optional[str] = None,
               **kw) -> torch.Tensor:
        """Draw n images under ``order`` (an index into ``orders`` or a permutation), one network pass per
        element; ``noise``: (n, C, H, W) uniforms that fix every draw (inverse CDF), default from ``generator``."""
        c = self.config
        x = torch.zeros(n, c.channels, c.height, c.width, device=self.device)
        observed = torch.zeros(c.channels, c.height, c.width, dtype=torch.bool)
        return self.complete(x, observed, y=y, generator=generator, noise=noise,
                             order=0 if order is None else order, method=method, **kw)

    # -- cached sampling (models with "cached" in sample_methods implement _cached_steps) ------------
    def _layout(self, out: torch.Tensor) -> torch.Tensor:
        """Logits (B, D, Kout) or (B, D * Kout) in position order -> the autoregressive models' layout."""
        c = self.config
        if self.binary:
            return out.reshape(out.shape[0], 1, c.height, c.width)
        return out.reshape(out.shape[0], c.height, c.width, c.levels).permute(0, 3, 1, 2).unsqueeze(2)

    def _cached_steps(self, x: torch.Tensor, order: torch.Tensor, draw=None) -> torch.Tensor:
        """Walk ``order`` (a CPU permutation) once, carrying what the pixels placed so far contribute, so that each
        pixel's logits cost a small update instead of a full pass. ``draw(pos, logits)`` (logits (B, Kout)) gives
        the value to place at position pos (None: keep x's); x (B, 1, H, W) is filled in place. Returns every
        pixel's logits (B, D, Kout) in position order."""
        raise NotImplementedError

    def _pixel_inputs(self, values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Pixel values (any shape) -> the network's inputs (shape + (Kin,)): the value (binary) or its one-hot."""
        return values.to(dtype).unsqueeze(-1) if self.binary else one_hot_levels(values, self.config.levels, dtype)

    @staticmethod
    def _emit(out: torch.Tensor, flat: torch.Tensor, pos: int, logits: torch.Tensor, draw) -> None:
        """One step of a walk: record pixel pos's logits and place ``draw``'s value there (None: keep x's)."""
        out[:, pos] = logits
        if draw is not None:
            value = draw(pos, logits)
            if value is not None:
                flat[:, pos] = value

    def _incremental_logits(self, x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """Every pixel's logits from the cached walk over x (nothing drawn; for tests), in ``_logits``'s layout."""
        return self._layout(self._cached_steps(x.clone().float(), order.cpu()))

    def _complete_cached(self, x: torch.Tensor, y: Optional[torch.Tensor], pix: torch.Tensor, perm: torch.Tensor,
                         noise: torch.Tensor) -> torch.Tensor:
        """``complete``'s draws through ``_cached_steps`` (x, noise: on the model's device; pix: the observed
        pixel mask (H, W)); the same uniform per pixel as the naive loop."""
        hidden = ~pix.flatten().cpu()
        u = noise.reshape(noise.shape[0], -1)

        def draw(pos, logits):
            if not bool(hidden[pos]):
                return None
            return self._draw(logits[:, 0] if self.binary else logits, u[:, pos])

        self._cached_steps(x, perm.cpu(), draw)
        return x

    @torch.no_grad()
    def complete(self, x: torch.Tensor, observed: torch.Tensor, y: Optional[torch.Tensor] = None,
                 generator: Optional[torch.Generator] = None, noise: Optional[torch.Tensor] = None,
                 order: OrderArg = None, method: Optional[str] = None, **kw) -> torch.Tensor:
        """Sample the pixels where ``observed`` (a pixel mask broadcastable to (C, H, W)) is False, keep the
        others. ``order``: default the maximum-context order among the model's, made context-first when it does
        not already put the observed pixels first; an int index or a permutation is used as given (observed
        pixels are kept wherever they come)."""
        method = self.sample_method(method)
        if kw:
            raise TypeError(f"complete() got unexpected keyword argument(s) {', '.join(sorted(kw))}")
        self.check_shape(x)
        self.check_levels(x)
        pix = self._pixel_mask(observed)
        perm = self.completion_orders(pix)[0] if order is None else self.resolve_order(order).cpu()
        c = self.config
        with evaluating(self):
            x, y, noise = self._draw_inputs(x, y, generator, noise)
            if method == "cached":
                return self._complete_cached(x, y, pix, perm, noise)
            dev_perm = perm.to(self.device)
            for pos in perm.tolist():
                i, j = divmod(pos, c.width)
                if bool(pix[i, j]):
                    continue
                for ch in range(c.channels):
                    logits = self._logits(x, y, dev_perm)
                    at = logits[:, ch, i, j] if self.binary else logits[:, :, ch, i, j]
                    x[:, ch, i, j] = self._draw(at, noise[:, ch, i, j])
            return x
