"""`load_dataset`: look a dataset up by name, check options, apply the model-input transform."""
from __future__ import annotations

import dataclasses
import inspect
import os
from typing import Optional, Union

from ..errors import DgmError
from .catalog import DATASETS, SPLITS, RawImages
from .image import ImageDataset, check_transform
from .toy import ToyDataset

_COMMON = ("split", "data_dir")
_TRANSFORM = ("binarize", "levels", "scale")  # passed to loaders that apply them themselves (``takes_transform``)


def load_dataset(name: str, split: str = "train", *, data_dir: Optional[str] = None,
                 binarize: Optional[str] = None, levels: Optional[int] = None, scale: str = "levels",
                 **options) -> Union[ImageDataset, ToyDataset]:
    """The `split` of dataset `name`; binarize/levels/scale shape image inputs, options go to the loader."""
    loader = DATASETS.get(name)
    if split not in SPLITS:
        raise DgmError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    if binarize == "none":
        binarize = None
    if getattr(loader, "is_pairs", False):  # two image domains for a translation model (data/pairs.py)
        if binarize is not None or levels is not None:
            raise DgmError(f"{name} is a translation dataset with levels of its own; drop --binarize / --quantize")
    elif getattr(loader, "is_domains", False):  # a source and a target domain (data/domains.py)
        if binarize is not None or levels is not None:
            raise DgmError(f"{name} is a domain-adaptation pair with inputs of its own; drop --binarize / --quantize")
    elif getattr(loader, "is_audio", False):
        if binarize is not None or levels is not None or scale != "levels":
            raise DgmError(f"{name} is an audio dataset (8-bit mu-law levels); drop --binarize/--quantize")
    elif getattr(loader, "is_toy", False):
        if binarize is not None or levels is not None or scale != "levels":
            raise DgmError(f"{name} is a toy dataset of real-valued points; drop the binarize/levels/scale options")
    else:
        check_transform(binarize, levels, scale)  # the levels range is checked once raw_levels is known
    own = getattr(loader, "takes_transform", False)
    accepted = [p for p in inspect.signature(loader).parameters if p not in _COMMON + _TRANSFORM * own]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        takes = f"it takes: {', '.join(accepted)}" if accepted else "it takes none"
        raise DgmError(f"dataset {name!r} has no option {', '.join(unknown)}; {takes}")
    if data_dir is not None:
        if getattr(loader, "builtin", False):
            raise DgmError(f"{name} is built into dgm and reads no files; drop --data-dir")
        data_dir = os.fspath(data_dir)
    if own:
        options = {**options, "binarize": binarize, "levels": levels, "scale": scale}
    out = loader(split, data_dir=data_dir, **options)
    if getattr(loader, "is_pairs", False):
        out.spec = dataclasses.replace(out.spec, scale=scale)
        out.spec_b = dataclasses.replace(out.spec_b, scale=scale)
    if isinstance(out, RawImages):
        return ImageDataset(name, split, out.raw, out.labels, out.raw_levels, out.num_classes,
                            binarize=binarize, levels=levels, scale=scale)
    return out
