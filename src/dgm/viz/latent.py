"""Latent-space pictures of latent-variable models (seed 002): the decoded manifold of a 2-D latent, the encoded
test set coloured by label, and reconstructions beside their inputs."""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import torch

from ..errors import DgmError
from .grid import save_grid
from .toy import _require_plt, _save


@torch.no_grad()
def manifold_images(model, n: int = 20) -> torch.Tensor:
    """E[x|z] on an n x n grid of z through the inverse Gaussian CDF of evenly spaced probabilities (Kingma &
    Welling 2014, fig. 4): (n*n, C, H, W) in [0, 1], rows going down in z2, columns right in z1."""
    if model.config.latent_dim != 2:
        raise DgmError(f"the manifold plot needs a 2-D latent; this run has --latent-dim {model.config.latent_dim}")
    p = torch.linspace(0.5 / n, 1 - 0.5 / n, n, dtype=torch.float64)
    g = torch.distributions.Normal(0.0, 1.0).icdf(p).float()
    z2, z1 = torch.meshgrid(g.flip(0), g, indexing="ij")
    z = torch.stack([z1.flatten(), z2.flatten()], 1)
    return model.to_unit(model.sample(len(z), z=z, mean=True)).cpu()


@torch.no_grad()
def save_latent_plots(model, x: torch.Tensor, y: torch.Tensor, folder, n_recon: int = 32) -> Dict[str, Path]:
    """Write reconstructions.png (inputs above their reconstructions E[x|z=mu(x)]) and, for a 2-D latent,
    manifold.png and latent-test.png (posterior means of ``x`` coloured by ``y``) into ``folder``."""
    folder = Path(folder)
    out = {}
    m = min(n_recon, len(x))
    xs = x[:m].to(model.device)
    pair = torch.stack([model.to_unit(xs.float()).cpu(), model.to_unit(model.reconstruct(xs)).cpu()])
    rows = min(m, 16)
    grid = torch.cat([pair[:, i:i + rows].flatten(0, 1) for i in range(0, m, rows)])
    out["reconstructions"] = save_grid(grid, folder / "reconstructions.png", nrow=rows)
    if model.config.latent_dim == 2:
        n = 20
        out["manifold"] = save_grid(manifold_images(model, n), folder / "manifold.png", nrow=n)
        mu = torch.cat([model.encode(x[i:i + 512].to(model.device))[0].cpu() for i in range(0, len(x), 512)])
        plt = _require_plt()
        fig, ax = plt.subplots(figsize=(5.5, 4.8), dpi=110)
        sc = ax.scatter(mu[:, 0], mu[:, 1], c=y.numpy(), cmap="tab10", s=6, alpha=0.8)
        fig.colorbar(sc, ax=ax, label="label")
        ax.set_xlabel("z1 (posterior mean)")
        ax.set_ylabel("z2")
        ax.set_title(f"{len(x)} test images encoded")
        out["latent"] = _save(plt, fig, folder / "latent-test.png")
    return out


__all__ = ["manifold_images", "save_latent_plots"]
