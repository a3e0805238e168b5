"""Test images above their reconstructions (models with an encoder or a code map: VAEs, VQ-VAE, ALI); for 2-D points
(ALI / BiGAN on a toy mixture) the test points joined to their reconstructions over the true density."""
from __future__ import annotations

import torch

from .registry import Figure, register, undo_on_failure


@torch.no_grad()
def _make(model, out, n, seed):
    from ..runs import load_data
    from ..viz import save_grid

    data = load_data(model.run_config["data"], "test")
    if model.points:  # the first n test points (a toy split is a fixed draw already)
        from ..viz.toy import save_reconstructions_plot

        x = data.points[:n].to(model.device)
        with undo_on_failure(out):
            return [save_reconstructions_plot(out, x.cpu(), model.reconstruct(x).cpu(), data,
                                              title=f"{len(x)} test points and their reconstructions")]
    data = data.with_fixed_draw(torch.Generator().manual_seed(seed))
    x = data.tensors()[0][:n].to(model.device)
    pair = torch.stack([model.to_unit(x.float()).cpu(), model.to_unit(model.reconstruct(x)).cpu()])
    rows = min(len(x), 16)
    grid = torch.cat([pair[:, i:i + rows].flatten(0, 1) for i in range(0, len(x), rows)])
    with undo_on_failure(out):
        return [save_grid(grid, out, nrow=rows)]


register(Figure("reconstructions", ("images|points", "reconstruct"), _make, "n test images (rows of up to 16) above "
                "their reconstructions (VAEs: E[x|z=mu(x)]; VQ-VAE: the decoded nearest codes; ALI: G(E(x))), or for "
                "2-D points n test points joined to theirs", n=32,
                file=lambda model, seed, o: f"reconstructions-seed{seed}.png"))
