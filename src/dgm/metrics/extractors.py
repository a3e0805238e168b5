"""Feature networks by name (`dgm list features`): Inception-v3 from a user's file, and dgm's own classifiers.

Every network maps float images (N, C, H, W) in [0, 1] to (features (N, dim), logits (N, num_classes)) and carries
``name``, ``label`` (how metrics built on it are named in reports), ``dim``, ``num_classes`` and ``weights_sha256``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
from tqdm.auto import tqdm

from ..registry import Registry

FEATURES: Registry = Registry("feature network", "features")


def _inception(weights: Optional[str] = None, device="cpu"):
    from .inception import load_inception

    net = load_inception(weights, device=device)
    net.label = "Inception-v3 pool3"
    return net


def _classifier(name: str):
    def load(weights: Optional[str] = None, device="cpu"):
        from ..errors import DgmError
        from .classifiers import load_classifier

        if weights is not None:
            raise DgmError(f"--weights is for inception-v3; the {name} classifier ships inside dgm (drop --weights)")
        net = load_classifier(name, device=device)
        net.label = f"{name} classifier"
        return net

    return load


FEATURES.add("inception-v3", _inception, "FID Inception-v3 (pytorch-fid weights file via --weights or "
             "DGM_INCEPTION_WEIGHTS): 2048-d pool3 features, 1008 logits; any image size (resized to 299)")
FEATURES.add("digits", _classifier("digits"), "classifier trained by dgm on sklearn digits (ships with dgm); "
             "8x8 grey images")
FEATURES.add("fashion-mnist", _classifier("fashion-mnist"), "classifier trained by dgm on Fashion-MNIST (ships with "
             "dgm); 28x28 grey images (32x32 ones, --image-size 32 runs, with their 2-px border cropped off)")

# The shipped network used by default for a dataset; anything else defaults to Inception-v3.
DEFAULT_FOR_DATASET = {"digits": "digits", "fashion-mnist": "fashion-mnist"}


def default_features(dataset: Optional[str]) -> str:
    """The feature network used for ``dataset`` when none is named."""
    return DEFAULT_FOR_DATASET.get(dataset or "", "inception-v3")


def load_features(name: str, weights: Optional[str] = None, device="cpu") -> torch.nn.Module:
    """The feature network ``name`` in eval mode (one-line DgmError when it cannot be loaded)."""
    net = FEATURES.get(name)(weights, device=device)
    net.name = name
    return net.eval()


@torch.no_grad()
def extract(net, images: torch.Tensor, batch_size: int = 256, progress: bool = False, desc: str = "features"
            ) -> Tuple[np.ndarray, np.ndarray]:
    """(features float32 (N, dim), class probabilities float64 (N, K)) of unit-range images, in batches."""
    device = next(net.parameters()).device
    feats, probs = [], []
    for i in tqdm(range(0, len(images), batch_size), desc=desc, disable=not progress, leave=False):
        f, logits = net(images[i:i + batch_size].to(device, torch.float32))
        feats.append(f.float().cpu())
        probs.append(torch.softmax(logits.double(), 1).cpu())
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()


__all__ = ["FEATURES", "default_features", "load_features", "extract"]
