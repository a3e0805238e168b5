"""Image completion: keep half of a picture and sample the rest n times (autoregressive models)."""
from __future__ import annotations

import torch

from ..options import Option
from ..sampling.completion import REGIONS
from .registry import LABEL, NAIVE, SAVE_TENSOR, Figure, labels, register, sample_method, write_images


def _make(model, out, n, seed, complete_from=None, observe="top", label=None, naive=False, save_tensor=None):
    from ..sampling import complete_from_file

    how = sample_method(model, naive)
    shown, x = complete_from_file(model, complete_from, n, observe, y=labels(model, label, n),
                                  generator=torch.Generator().manual_seed(seed), **how)
    return write_images(model, x, out, images=torch.cat([shown[None].to(x.device), x]), save_tensor=save_tensor)


register(Figure("complete", ("images", "complete"), _make, "keep half of an image file and sample the rest (n completions; "
                "the first cell shows the kept half)",
                options=(Option("complete_from", str, None, "the image to complete (PNG/JPEG)", metavar="IMAGE_FILE",
                                required=True),
                         Option("observe", str, "top", "which half of --complete-from is kept", choices=REGIONS),
                         LABEL, NAIVE, SAVE_TENSOR),
                file=lambda model, seed, o: f"completion-{o['observe']}-seed{seed}.png", selected_by="complete_from"))
