"""Test images above their reconstructions (models with an encoder or a code map: VAEs, VQ-VAE)."""
from __future__ import annotations

import torch

from .registry import Figure, register, undo_on_failure


@torch.no_grad()
def _make(model, out, n, seed):
    from ..runs import load_data
    from ..viz import save_grid

    data = load_data(model.run_config["data"], "test").with_fixed_draw(torch.Generator().manual_seed(seed))
    x = data.tensors()[0][:n].to(model.device)
    pair = torch.stack([model.to_unit(x.float()).cpu(), model.to_unit(model.reconstruct(x)).cpu()])
    rows = min(len(x), 16)
    grid = torch.cat([pair[:, i:i + rows].flatten(0, 1) for i in range(0, len(x), rows)])
    with undo_on_failure(out):
        return [save_grid(grid, out, nrow=rows)]


register(Figure("reconstructions", ("images", "reconstruct"), _make, "n test images (rows of up to 16) above their "
                "reconstructions (VAEs: E[x|z=mu(x)]; VQ-VAE: the decoded nearest codes)", n=32,
                file=lambda model, seed, o: f"reconstructions-seed{seed}.png"))
