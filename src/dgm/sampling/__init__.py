"""Samplers and completion (naive raster sampling lives on the models: ``model.sample``/``model.complete``)."""
from .completion import REGIONS, complete_from_file, image_to_levels, observed_mask

__all__ = ["REGIONS", "complete_from_file", "image_to_levels", "observed_mask"]
