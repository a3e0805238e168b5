"""Where a few query positions of a self-attention generator attend (SAGAN, Zhang et al. 2019, fig. 1)."""
from __future__ import annotations

import torch

from ..options import Option
from .registry import LABEL, Figure, labels, register, undo_on_failure


def _make(model, out, n, seed, attention_maps=True, label=None):
    from ..viz.attention import save_attention_maps

    x, beta = model.attention_maps(n, y=labels(model, label, n), generator=torch.Generator().manual_seed(seed))
    with undo_on_failure(out):
        return [save_attention_maps(model.to_unit(x), beta, out)]


register(Figure("attention-maps", ("attention",), _make, "GANs with self-attention (--arch sagan, biggan): where a "
                "few query positions of n samples attend (SAGAN, fig. 1)",
                options=(Option("attention_maps", bool, False, "the attention-maps figure"), LABEL), n=8, max_n=8,
                file=lambda model, seed, o: f"attention-seed{seed}.png", selected_by="attention_maps"))
