"""2-D pictures for toy mixtures: samples over the true density, the discriminator's surface, snapshots."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..errors import DgmError
from ..outputs import savefig
from ..nn.blocks import evaluating


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plots are an extra: pip install "dgm[plot]"
        return None
    return plt


def _extent(data, margin: float = 0.5):
    m = data.means.numpy()
    lo, hi = m.min(0) - margin - 4 * data.std, m.max(0) + margin + 4 * data.std
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


@torch.no_grad()
def discriminator_surface(model, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """D's output on a grid (len(ys), len(xs)): sigmoid(logit) for logit objectives, raw value otherwise."""
    gx, gy = np.meshgrid(xs, ys)
    pts = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32, device=model.device)
    with evaluating(model.discriminator) as d:
        out = d(pts).float()
    if model.objective.kind == "logit":
        out = torch.sigmoid(out)
    return out.cpu().numpy().reshape(gy.shape)


def draw_points(ax, points, data, model=None, surface: bool = True, title: Optional[str] = None, grid: int = 120):
    """One panel: D's surface (background), true density contours, and the samples."""
    x0, x1, y0, y1 = _extent(data)
    xs, ys = np.linspace(x0, x1, grid), np.linspace(y0, y1, grid)
    if surface and model is not None and getattr(model.discriminator, "pointwise", True):  # packed / batch D: none
        s = discriminator_surface(model, xs, ys)
        im = ax.imshow(s, origin="lower", extent=(x0, x1, y0, y1), cmap="coolwarm", alpha=0.55, aspect="auto")
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04,
                           label="D(x)" if model.objective.kind == "logit" else "critic / energy")
    gx, gy = np.meshgrid(xs, ys)
    logp = data.log_prob(torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1))).numpy().reshape(gx.shape)
    ax.contour(gx, gy, np.exp(logp), levels=4, colors="k", linewidths=0.6)
    p = np.asarray(points)
    ax.scatter(p[:, 0], p[:, 1], s=2, c="tab:green", alpha=0.5, linewidths=0)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=9)


def _to_array(fig) -> np.ndarray:
    fig.canvas.draw()
    arr = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    return arr


def points_image(points, data, model=None, title: Optional[str] = None) -> Optional[torch.Tensor]:
    """Samples over the true density (and D's surface) rendered to a (1, 3, H, W) image in [0, 1]; None without matplotlib."""
    plt = _plt()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(4.6, 4), dpi=80)
    draw_points(ax, points, data, model, title=title)
    fig.tight_layout()
    arr = _to_array(fig)
    plt.close(fig)
    return torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255.0


def _require_plt():
    plt = _plt()
    if plt is None:
        raise DgmError('plots need matplotlib: pip install "dgm[plot]" (or pip install matplotlib)')
    return plt


def _save(plt, fig, path) -> Path:
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    savefig(fig, path)
    plt.close(fig)
    return path


def save_points_plot(path, points, data, model=None, title: Optional[str] = None, surface: bool = True) -> Path:
    plt = _require_plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.8), dpi=110)
    draw_points(ax, points, data, model, surface=surface, title=title)
    return _save(plt, fig, path)


def save_reconstructions_plot(path, points, reconstructions, data, title: Optional[str] = None) -> Path:
    """Points and their reconstructions over the true density, each pair joined by a segment (models with an
    encoder on 2-D points: ALI / BiGAN's x and G(E(x)))."""
    plt = _require_plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.8), dpi=110)
    x, r = np.asarray(points), np.asarray(reconstructions)
    draw_points(ax, r, data, surface=False, title=title)
    from matplotlib.collections import LineCollection

    ax.add_collection(LineCollection(np.stack([x, r], 1), colors="0.5", linewidths=0.4, alpha=0.6))
    ax.scatter(x[:, 0], x[:, 1], s=3, c="tab:blue", alpha=0.7, linewidths=0, label="x")
    ax.scatter(r[:, 0], r[:, 1], s=3, c="tab:green", alpha=0.7, linewidths=0, label="reconstruction")
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    return _save(plt, fig, path)


def save_snapshots(path, snapshots: Sequence, data, titles: Sequence[str], rows: Sequence[str] = ("",)) -> Path:
    """A grid of panels: ``snapshots[r][c]`` is an (n, 2) array of samples (seed 000's unrolled-GAN figure)."""
    plt = _require_plt()
    nr, nc = len(snapshots), len(snapshots[0])
    fig, axes = plt.subplots(nr, nc, figsize=(2.2 * nc, 2.3 * nr), dpi=110, squeeze=False)
    for r in range(nr):
        for c in range(nc):
            ax = axes[r][c]
            draw_points(ax, snapshots[r][c], data, None, surface=False, title=titles[c] if r == 0 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0 and rows[r]:
                ax.set_ylabel(rows[r])
    return _save(plt, fig, path)
