"""`dgm sample RUN --translate test|FOLDER`: input / translation / reconstruction triplets of a translation run.

``test``: the first n images of each domain of the run's test split. A FOLDER: its first n PNG/JPEG files (sorted),
resized to the model's size and fed to both directions (as domain X to G, and as domain Y to F, rounded to Y's
levels). One grid per direction, one triplet per row: x, G(x), F(G(x)) and y, F(y), G(F(y)).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Tuple

import torch

from ..errors import DgmError
from .completion import image_to_levels


def _levels_to_pm1(x: torch.Tensor, levels: int) -> torch.Tensor:
    return x * (2.0 / (levels - 1)) - 1.0


def translation_inputs(model, source: str, n: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(x, y): up to n images of domain X and of domain Y on the [-1, 1] scale."""
    c = model.config
    if source == "test":
        from ..runs import load_data

        data = load_data(model.run_config["data"], "test")
        return data.domain("a")[:n], data.domain("b")[:n]
    folder = Path(source)
    if not folder.is_dir():
        raise DgmError(f"--translate takes `test` (the run's test split) or a folder of PNG/JPEG images; {source} is "
                       "neither")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:n]
    if not files:
        raise DgmError(f"--translate {source}: no PNG/JPEG files in that folder")
    xs = [_levels_to_pm1(image_to_levels(f, c.channels, c.height, c.width, c.levels), c.levels) for f in files]
    ys = [_levels_to_pm1(image_to_levels(f, c.channels, c.height, c.width, c.levels_b), c.levels_b) for f in files]
    return torch.stack(xs), torch.stack(ys)


@torch.no_grad()
def save_translation_grids(model, source: str, n: int, out: Path) -> List[Path]:
    """Write OUT-x_to_y.png and OUT-y_to_x.png (``out`` without its .png suffix); returns the two paths."""
    from ..viz import save_grid

    x, y = translation_inputs(model, source, n)
    paths = []
    base = str(out)[:-4] if str(out).lower().endswith(".png") else str(out)
    for direction, inputs in (("x_to_y", x), ("y_to_x", y)):
        rows = torch.stack(model.triplets(inputs.to(model.device), direction), 1).flatten(0, 1)
        paths.append(save_grid(model.to_unit(rows.clamp(-1, 1)), f"{base}-{direction}.png", nrow=3))
    return paths


__all__ = ["translation_inputs", "save_translation_grids"]
