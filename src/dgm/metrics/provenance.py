"""What a number printed by `dgm eval` depends on. Two numbers are comparable only when their provenance matches
(docs/evaluation.md): the same checkpoint bytes, split, seed and sample counts, and the same feature network."""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch

from .._version import __version__
from .inception import file_sha256


def provenance(model, result: Dict[str, Any], *, split: str, seed: int, features=None) -> Dict[str, Optional[Any]]:
    """The ``provenance`` object of one evaluation.

    ``model``: the loaded model (``dgm.runs.load`` sets ``checkpoint_file`` and ``trained_steps``), None for
    --real/--fake; ``result``: the metrics' values, whose own counts give ``n_real`` / ``n_fake`` (image metrics
    report both, and ``n_train`` the training images a memorisation metric compared with; ``n`` is the examples of the split a run metric read, ``n_samples`` the points it drew);
    ``features``: the feature network used, if any. The checkpoint hash is the full sha256 of the file that
    was loaded (streamed); ``features_sha256`` is the feature weights' 16-digit prefix used everywhere else.
    """
    file = getattr(model, "checkpoint_file", None)
    out = {
        "dgm_version": __version__,
        "torch_version": torch.__version__,
        "checkpoint": None if file is None else str(file),
        "checkpoint_sha256": None if file is None else file_sha256(file, 64),
        "step": None if model is None else model.trained_steps,
        "split": split,
        "seed": seed,
        "n_fake": result.get("n_fake", result.get("n_samples")),
        "n_real": result.get("n_real", result.get("n")),
    }
    if "n_train" in result:  # a memorisation metric compared with the training split too
        out["n_train"] = result["n_train"]
    if features is not None:
        out.update(features=features.name, features_sha256=features.weights_sha256)
    return out


__all__ = ["provenance"]
