"""The `images` dataset: a folder of PNG/JPEG files, read with Pillow."""
from __future__ import annotations

import os
from typing import List, Optional

import numpy as np

from ..errors import DgmError
from .catalog import DATASETS, RawImages, require_dir
from .decode import open_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_MODES = {1: "L", 3: "RGB"}


def _image_paths(root: str) -> List[str]:
    """PNG/JPEG files under `root`, recursively, in sorted order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        found += [os.path.join(dirpath, f) for f in filenames if f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(found)


def _split_indices(n: int, split: str, name: str, root: str) -> np.ndarray:
    """RandomState(0) permutation of n images: 10% test, 5% val (at least 1 each from 3 images), rest train."""
    n_test, n_val = (max(1, n // 10), max(1, n // 20)) if n >= 3 else (0, 0)
    if split != "train" and n < 3:
        raise DgmError(f"{name}: {root} holds only {n} image(s), too few for a {split!r} split "
                       "(need at least 3); add images or use --split train")
    perm = np.random.RandomState(0).permutation(n)
    return {"test": perm[:n_test], "val": perm[n_test:n_test + n_val], "train": perm[n_test + n_val:]}[split]


def _read_image(path: str, mode: str, size: Optional[int]) -> np.ndarray:
    """(C, H, W) uint8 from one image file, converted to `mode` by its own mode and resized to size x size."""
    from PIL import Image

    im = open_image(path, mode)
    if size is not None and im.size != (size, size):
        im = im.resize((size, size), getattr(Image, "Resampling", Image).LANCZOS)
    a = np.asarray(im, dtype=np.uint8)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def _int_option(key: str, value) -> int:
    """An integer option, also accepted as a decimal string (as given on the command line)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DgmError(f"images: option {key} must be an integer, not {value!r}")
    return int(value)


@DATASETS.register("images", help="a folder of PNG/JPEG images (--data-dir; options image_size, channels), "
                   "split 85/5/10 at random; files all in two or more subfolders are labelled by their subfolder")
def _images(split: str, data_dir: Optional[str] = None, image_size: Optional[int] = None,
            channels: int = 3) -> RawImages:
    """Images from a folder, all of one size or resized to image_size x image_size. When every file sits in one of
    two or more subfolders, each subfolder is a class (sorted names: 0, 1, ...), for --conditional and --per-class;
    else the images are unlabelled."""
    root = require_dir("images", data_dir, "PNG/JPEG files")
    channels = _int_option("channels", channels)
    if channels not in _MODES:
        raise DgmError(f"images: channels must be 1 (grey) or 3 (RGB), not {channels!r}")
    if image_size is not None:
        image_size = _int_option("image_size", image_size)
        if image_size < 1:
            raise DgmError(f"images: image_size must be a positive integer, not {image_size!r}")
    paths = _image_paths(root)
    if not paths:
        raise DgmError(f"images: no PNG/JPEG files under {root}; pass --data-dir DIR holding some")
    mode = _MODES[channels]
    first = _read_image(paths[0], mode, image_size)
    idx = _split_indices(len(paths), split, "images", root)
    folder = [os.path.relpath(os.path.dirname(p), root) for p in paths]
    classes = sorted(set(folder))
    classes = classes if len(classes) >= 2 and "." not in classes else []  # files beside the subfolders: unlabelled
    out = np.empty((len(idx),) + first.shape, dtype=np.uint8)
    labels = np.full(len(idx), -1, dtype=np.int64)
    for j, i in enumerate(idx):
        a = first if i == 0 else _read_image(paths[i], mode, image_size)
        if a.shape != first.shape:
            raise DgmError(f"{paths[i]}: image is {a.shape[2]}x{a.shape[1]} but {paths[0]} is "
                           f"{first.shape[2]}x{first.shape[1]}; pass the option image_size=N to resize all")
        out[j] = a
        if classes:
            labels[j] = classes.index(folder[i])
    return RawImages(out, labels, 256, len(classes))
