"""The image pool of CycleGAN's discriminator updates (Shrivastava et al. 2017; Zhu et al. 2017, sec. 4).

The discriminator is shown a history of generated images instead of only the newest batch, which damps oscillation.
Until the pool holds ``size`` images every new image is stored and returned as it is; once full, each new image is,
with probability 1/2, swapped for a stored one chosen uniformly (the stored image is returned, the new one takes its
place), else returned as it is. The coin flips and choices come from the pool's own generator, so a run that saves
and restores ``state_dict`` draws the same history as an uninterrupted one.
"""
from __future__ import annotations

from typing import Any, Dict, List

import torch
from torch import Tensor


class ImagePool:
    """A buffer of at most ``size`` generated images (``size`` 0: the pool is off and returns its input)."""

    def __init__(self, size: int = 50, seed: int = 0):
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = int(size)
        self.images: List[Tensor] = []
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, batch: Tensor) -> Tensor:
        """The images to show the discriminator for this ``batch`` (same shape; detached)."""
        batch = batch.detach()
        if self.size == 0:
            return batch
        out = []
        for image in batch:
            if len(self.images) < self.size:
                self.images.append(image.clone().cpu())
                out.append(image)
            elif float(torch.rand((), generator=self.generator)) < 0.5:
                k = int(torch.randint(len(self.images), (), generator=self.generator))
                stored = self.images[k]
                self.images[k] = image.clone().cpu()
                out.append(stored.to(batch.device, batch.dtype))
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> Dict[str, Any]:
        return {"images": torch.stack(self.images) if self.images else torch.zeros(0),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        images = state.get("images")
        self.images = [] if images is None or images.numel() == 0 else [im.clone() for im in images]
        if "generator" in state:
            self.generator.set_state(state["generator"])


__all__ = ["ImagePool"]
