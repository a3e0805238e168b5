"""Negative log-likelihood on a dataset split, nats per example and bits per dimension: exact for autoregressive
models, the importance-weighted estimate (with the ELBO beside it) for latent-variable models.

Every random part is drawn from one CPU generator seeded with ``seed`` (`dgm eval --seed`), so the same command gives
the same number: first the dynamic binarization of the split (one Bernoulli draw of every example, the whole split at
once: the NLL of a dynamically binarized run is the NLL of that one fixed draw), then the importance samples."""
from __future__ import annotations

from typing import Dict, Iterable, Optional

import torch

from ..data.batching import dataset_batches
from ..data.image import fixed_draw
from ..errors import DgmError
from ..nn.blocks import evaluating
from ..nn.pixels import bits_per_dim
from ..options import Option
from .registry import Metric, register


@torch.no_grad()
def nll_from_batches(model, batches: Iterable, validation: bool = False) -> Dict[str, float]:
    """Mean -log p(x) over (x, y) batches (float64 accumulation) for a model with ``log_prob``; ``validation``: the
    model's ``validation_log_prob`` (a cheaper estimate for costly models, e.g. one order of an ensemble)."""
    conditional = model.conditional
    log_prob = model.validation_log_prob if validation else model.log_prob
    total, count = 0.0, 0
    with evaluating(model):
        for x, y in batches:
            total += -log_prob(x, y if conditional else None).double().sum().item()
            count += x.shape[0]
    value = total / max(count, 1)
    return {"nll_nats": value, "bits_per_dim": bits_per_dim(value, model.dims), "n": count}


@torch.no_grad()
def latent_nll_from_batches(model, batches: Iterable, k: int, seed: int = 0,
                            generator: Optional[torch.Generator] = None) -> Dict[str, float]:
    """Latent-variable models: -ELBO (one sample, analytic KL) and -log p(x) estimated with k importance samples
    (IWAE), both averaged over the batches; the noise comes from ``generator``, else a CPU generator seeded with
    ``seed``."""
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    elbo = iw = 0.0
    count = 0
    with evaluating(model):
        for x, _ in batches:
            t = model.elbo_terms(x, generator=gen)
            elbo += (t["rec"] - t["kl"]).double().sum().item()
            iw += model.log_prob(x, k=k, generator=gen).double().sum().item()
            count += x.shape[0]
    n = max(count, 1)
    value = -iw / n
    return {"nll_nats": value, "bits_per_dim": bits_per_dim(value, model.dims), "k": k,
            "elbo_nats": elbo / n, "elbo_bits_per_dim": bits_per_dim(-elbo / n, model.dims), "n": count,
            "estimator": model.nll_estimator.format(k=k)}


def nll(model, dataset, batch_size: int = 256, progress: bool = False, k: Optional[int] = None,
        seed: int = 0) -> Dict[str, float]:
    """Mean -log p(x) over ``dataset``: nll_nats per example, bits_per_dim, n. Latent-variable models add elbo_nats
    and use k importance samples (default 5000). ``seed`` fixes the binarization draw and the samples (module doc)."""
    if "log_prob" not in model.capabilities:
        from ..errors import DgmError

        raise DgmError(f"the nll metric needs a likelihood model; this {type(model).__name__} has no log_prob "
                       f"(GANs on toy mixtures: --metric modes)")
    if getattr(dataset, "kind", None) == "audio":
        return audio_nll(model, dataset, progress)
    gen = torch.Generator().manual_seed(seed)
    batches = dataset_batches(fixed_draw(dataset, gen), batch_size, model.device, progress)
    if "elbo" in model.capabilities:  # latent-variable models (vae, beta-vae, aae, avb)
        return latent_nll_from_batches(model, batches, 5000 if k is None else k, generator=gen)
    return nll_from_batches(model, batches)


@torch.no_grad()
def audio_nll(model, dataset, progress: bool = False, chunk: int = 80000) -> Dict[str, float]:
    """Exact NLL of whole audio files (every sample of every file of the split, one file at a time; the first
    samples of a file condition on the model's zero padding before it starts): ``nll_nats`` per file,
    ``nats_per_sample`` and ``bits_per_sample`` over all samples (``bits_per_dim`` is the same number).

    A file longer than ``chunk`` samples is scored in pieces that each re-read the receptive field before them, so
    the value equals one pass over the whole file."""
    from tqdm.auto import tqdm

    total, samples, r = 0.0, 0, getattr(model, "receptive_field", 0)
    with evaluating(model):
        for f, s in enumerate(tqdm(dataset.signals, disable=not progress, desc="eval", mininterval=1.0)):
            x = torch.as_tensor(s.astype("int64"), device=model.device)[None, None]
            y = torch.as_tensor([int(dataset.labels[f])], device=model.device) if model.conditional else None
            for start in range(0, x.shape[-1], chunk):
                lo = max(0, start - r)
                logp = model.conditionals(x[..., lo:start + chunk], y)[..., start - lo:]
                total -= logp.double().sum().item()
            samples += x.shape[-1]
    n = len(dataset.signals)
    per_sample = total / max(samples, 1)
    bits = bits_per_dim(per_sample, 1)
    return {"nll_nats": total / max(n, 1), "nats_per_sample": per_sample, "bits_per_sample": bits,
            "bits_per_dim": bits, "n": n, "samples": samples, "seconds": samples / dataset.rate,
            "protocol": "whole files; the first samples of each condition on zero padding"}


def _check(ctx) -> None:
    """-k is the importance samples of a latent-variable model's estimate; an exact NLL uses none."""
    if ctx.was_given("k") and ctx.model is not None and "elbo" not in ctx.model.capabilities:
        raise DgmError(f"-k sets the importance samples of latent-variable models (vae, beta-vae, aae, avb); "
                       f"the nll of this {type(ctx.model).__name__} is exact and uses none: drop -k")


MAX_K = 1_000_000  # IWAE-5000 is the usual estimate; a million samples per image is already hours on a CPU


def _k_range(k: int) -> None:
    if not 1 <= k <= MAX_K:
        raise DgmError(f"-k must be in 1..{MAX_K:,} importance samples (5000 is the usual estimate), got {k}")


K = Option("k", int, None, "importance samples for the NLL of latent-variable models (default 5000; k=1 is the "
           "ELBO's one-sample estimate)", flag="-k", check=_k_range)
register(Metric("nll", "run", nll, options=(K, "seed"), check=_check,
                help="exact negative log-likelihood: nats per example and bits per dimension"))
