"""dgm: deep generative models of images -- train, sample and evaluate.

Public API: ``dgm.load(run_dir or checkpoint_file)``, ``model.log_prob(x)``, ``model.sample(n)``, and the registries
``dgm.MODELS`` and ``dgm.DATASETS``.
"""
from ._version import __version__

from .errors import DgmError  # noqa: E402
from .data import DATASETS, load_dataset  # noqa: E402
from .models import MODELS, build_model  # noqa: E402
from .runs import load  # noqa: E402

__all__ = ["__version__", "DgmError", "DATASETS", "MODELS", "load", "load_dataset", "build_model"]
