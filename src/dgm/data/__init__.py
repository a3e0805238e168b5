"""Datasets (images, toy mixtures, translation pairs and audio), the IDX reader and model-input transforms."""
from . import (adult as _adult, audio as _audio, captions as _captions, domains as _domains,  # noqa: F401  (register
               folder as _folder, pairs as _pairs, shapes as _shapes, sources as _sources)  # the datasets)
from .catalog import DATASETS, SPLITS
from .idx import read_idx
from .image import ImageDataset, ImageSpec, fixed_draw
from .load import load_dataset
from .domains import DomainDataset
from .pairs import PairDataset
from .toy import ToyDataset
from .transforms import binarize_dynamic, binarize_fixed, dequantize, from_pm1, quantize, to_pm1

__all__ = ["DATASETS", "SPLITS", "load_dataset", "ImageSpec", "ImageDataset", "PairDataset", "DomainDataset", "ToyDataset", "fixed_draw", "read_idx",
           "binarize_fixed", "binarize_dynamic", "quantize", "to_pm1", "from_pm1", "dequantize"]
