"""Latent vector arithmetic on a labelled dataset (Radford et al. 2016; White 2016): the mean test code of class A
minus that of class B, added at several scales to other test images' codes (``dgm.sampling.latent``)."""
from __future__ import annotations

import re

import torch

from ..errors import DgmError
from ..options import Option
from .registry import SAVE_TENSOR, Figure, register, write_images


def _classes(value: str):
    if not re.fullmatch(r"\d+,\d+", value):
        raise DgmError(f"--arithmetic takes two class labels A,B (e.g. 3,8), got {value!r}")
    return tuple(int(v) for v in value.split(","))


def _make(model, out, n, seed, arithmetic=None, save_tensor=None):
    from ..runs import load_data
    from ..sampling.latent import ARITHMETIC_SCALES, class_arithmetic

    a, b = _classes(arithmetic)
    data = load_data(model.run_config["data"], "test").with_fixed_draw(torch.Generator().manual_seed(seed))
    xt, yt = data.tensors()
    x = class_arithmetic(model, xt, yt, data.spec.num_classes, a, b, n)
    return write_images(model, x, out, nrow=1 + len(ARITHMETIC_SCALES), save_tensor=save_tensor)


register(Figure("arithmetic", ("gaussian-latent", "latent"), _make, "models with an encoder on a labelled dataset: mean test code of "
                "class A minus class B, added at scales 0..2 to n other test images",
                options=(Option("arithmetic", str, None, "the two classes A,B", metavar="A,B", check=_classes,
                                required=True), SAVE_TENSOR),
                file=lambda model, seed, o: "arithmetic-{}-minus-{}-seed{}.png".format(*_classes(o["arithmetic"]), seed),
                selected_by="arithmetic"))
