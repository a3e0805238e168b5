"""StyleGAN's two figures of a trained run (Karras et al. 2019): style mixing and stochastic variation.

* ``style_mixing_grid`` (the paper's Figure 3): a header row of source-B images, then rows of source-A images
  whose styles at the coarse, middle or fine layers (``gan_nets.stylegan.style_ranges``) are copied from each B:
  per-layer latents w_l = w_B on the range, w_A elsewhere. One noise draw is shared by every cell, so the cells
  differ by their styles only.
* ``noise_sweep`` (the paper's Figure 4, stochastic variation): per row one w, several noise draws, and the
  per-pixel standard deviation over ``std_draws`` noise draws (mean over colour channels), scaled to [0, 1] per row.

Both return images in the generator's range [-1, 1] and the number of columns of the grid.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from ..errors import DgmError
from ..nn.blocks import evaluating

#: the rows of A sources per style range in the mixing grid (the paper's Figure 3: 3 coarse, 2 middle, 1 fine)
MIX_ROWS = {"coarse": 3, "middle": 2, "fine": 1}


def style_generator(model, flag: str):
    """The generator ``sample`` uses (the EMA by default), or a one-line error naming what ``flag`` needs."""
    g = model.sampling_generator() if hasattr(model, "sampling_generator") else None
    if g is None or not hasattr(g, "synthesis"):
        arch = getattr(model.config, "arch", None)
        what = model.run_config.get("model", "this model") if hasattr(model, "run_config") else "this model"
        raise DgmError(f"{flag} needs a stylegan run (dgm train gan --arch stylegan); this run is {what}"
                       + (f" --arch {arch}" if arch else ""))
    return g


def _shared_noise(g, n: int, generator, device):
    drawn = g.draw_inputs(1, generator, device=device)
    return [t.expand(n, -1, -1, -1) for t in drawn["noise"]] if "noise" in drawn else None


@torch.no_grad()
def style_mixing_grid(model, n_b: int = 5, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, int]:
    """(1 + 6 rows) x (1 + n_b) images: blank, B_1..B_n; then per range and A source: A, A with B_j's styles."""
    from ..models.gan_nets.stylegan import style_ranges

    g = style_generator(model, "--style-mix")
    dev, d = model.device, model.config.latent_dim
    n_a = sum(MIX_ROWS.values())
    with evaluating(g):
        # a conditional run: the classes cycle 0, 1, 2, ... over the A sources and over the B sources
        w_a = g.map(torch.randn(n_a, d, generator=generator).to(dev), model._default_labels(n_a, None))
        w_b = g.map(torch.randn(n_b, d, generator=generator).to(dev), model._default_labels(n_b, None))
        noise = _shared_noise(g, 1, generator, dev)
        ranges = style_ranges(g.n_layers)
        rows, i = [], 0
        for name, count in MIX_ROWS.items():
            lo, hi = ranges[name]
            layer = torch.arange(g.n_layers, device=dev)
            on = ((layer >= lo) & (layer < hi))[None, :, None]
            for _ in range(count):
                wa = g.broadcast(w_a[i:i + 1].expand(n_b + 1, -1))
                wb = g.broadcast(torch.cat([w_a[i:i + 1], w_b]))  # cell 0: A itself
                rows.append(torch.where(on, wb, wa))
                i += 1
        ws = torch.cat([g.broadcast(torch.cat([w_a[:1], w_b])), *rows])
        images = torch.cat([g.synthesis(chunk, None if noise is None else [t.expand(len(chunk), -1, -1, -1)
                                                                           for t in noise])
                            for chunk in ws.split(n_b + 1)])
    images[0] = 1.0  # the blank corner (white)
    return images, n_b + 1


@torch.no_grad()
def noise_sweep(model, rows: int = 4, draws: int = 6, std_draws: int = 64,
                generator: Optional[torch.Generator] = None) -> Tuple[Tensor, int]:
    """``rows`` x (``draws`` + 1) images: one w per row under ``draws`` noise draws, then the per-pixel std map."""
    g = style_generator(model, "--noise-sweep")
    if not g.has_noise:
        raise DgmError("--noise-sweep: this run was trained with --no-noise; its images do not depend on noise")
    dev, d = model.device, model.config.latent_dim
    out = []
    with evaluating(g):
        w = g.map(torch.randn(rows, d, generator=generator).to(dev), model._default_labels(rows, None))
        for r in range(rows):
            ws = g.broadcast(w[r:r + 1].expand(std_draws, -1))
            x = g.synthesis(ws, g.draw_inputs(std_draws, generator, device=dev)["noise"])
            std = x.std(dim=0).mean(dim=0, keepdim=True)                       # (1, H, W)
            std = std / std.max().clamp_min(1e-12)
            out += [x[:draws], (2 * std - 1).expand(x.shape[1], -1, -1)[None]]
    return torch.cat(out), draws + 1
