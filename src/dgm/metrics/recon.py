"""Reconstruction quality of a code model (VQ-VAE, the discrete VAE) on a dataset split."""
from __future__ import annotations

from typing import Dict, Iterable

import torch

from ..data.batching import dataset_batches
from ..data.image import fixed_draw
from ..errors import DgmError
from ..nn.blocks import evaluating
from ..nn.pixels import bits_per_dim
from .registry import Metric, register


@torch.no_grad()
def recon_from_batches(model, batches: Iterable) -> Dict[str, float]:
    """-log p(x | z_q(x)) (nats per image and bits/dim), the pixel MSE of E[x | z_q(x)] with images in [0, 1], the
    perplexity of the code usage over all batches and ``codes_used`` (codes that some cell of the split takes, of
    ``codes``): a collapsed codebook shows as few codes used and a low perplexity."""
    rec = se = 0.0
    n = 0
    counts = torch.zeros(model.num_codes, dtype=torch.float64)
    k = model.config.levels - 1
    with evaluating(model):
        for x, _ in batches:
            rec += model.terms(x)["rec"].double().sum().item()
            se += ((model.reconstruct(x) - x.float()) / k).pow(2).double().sum().item()
            counts += torch.bincount(model.codes(x).flatten().cpu(), minlength=len(counts)).double()
            n += x.shape[0]
    p = counts / counts.sum().clamp(min=1)
    n = max(n, 1)
    return {"rec_nats": rec / n, "rec_bits_per_dim": bits_per_dim(rec / n, model.dims),
            "mse": se / (n * model.dims), "perplexity": float(torch.exp(-(p * torch.log(p + 1e-12)).sum())),
            "codes_used": int((counts > 0).sum()), "codes": len(counts), "n": n}


def recon(model, dataset, batch_size: int = 256, progress: bool = False, seed: int = 0) -> Dict[str, float]:
    """Reconstruction NLL, MSE and code perplexity of a VQ-VAE run on ``dataset`` (under dynamic binarization: of one
    fixed draw of it from a CPU generator seeded with ``seed``, as for the nll metric)."""
    if "codes" not in model.capabilities:
        raise DgmError(f"the recon metric is for code models (vq-vae, dvae); this is a {type(model).__name__}")
    data = fixed_draw(dataset, torch.Generator().manual_seed(seed))
    return recon_from_batches(model, dataset_batches(data, batch_size, model.device, progress))


register(Metric("recon", "run", recon, options=("seed",),
                help="VQ-VAE, dVAE: reconstruction NLL -log p(x|z(x)), pixel MSE, codes used and code perplexity"))
