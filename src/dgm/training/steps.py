"""Family steps: the few lines that differ between families. The engine calls ``step(batch)``.

A step builds its optimizers through the engine (``engine.optimizer``), wraps the modules it runs
forward through ``engine.wrap`` (DDP when distributed, compiled with --compile) and updates with ``engine.update(loss, name)``
(AMP scaling, gradient clipping, NaN check, scheduler). New families (GANs, VAEs) add a subclass.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, Optional

import torch
import torch.nn as nn

from ..registry import Registry

STEPS: Registry = Registry("family")


class TrainStep:
    """Base class: one optimisation step for one model family."""

    best_key: Optional[str] = None  # validation metric (lower is better) that selects checkpoints/best.pt

    def __init__(self, model: nn.Module):
        self.model = model
        self.engine = None

    def setup(self, engine) -> None:  # build optimizers, wrap modules
        self.engine = engine

    def __call__(self, batch) -> Dict[str, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, batches: Iterable) -> Dict[str, float]:
        return {}

    @torch.no_grad()
    def samples(self, n: int, generator: torch.Generator) -> Optional[torch.Tensor]:
        """Images in [0, 1], (n, C, H, W), for the sample grid (None when the family has none): by default
        ``model.sample(n)`` through ``model.to_unit``."""
        return self.model.to_unit(self.model.sample(n, generator=generator))

    def state_dict(self) -> Dict:
        return {}

    def load_state_dict(self, state: Dict) -> None:
        pass


class ModelCall(nn.Module):
    """forward(*args) -> model.<method>(*args): routes a family's objective through forward so DDP syncs it.

    ``modules``: register only these parts of the model (the ones the method trains), so that DDP sees no unused
    parameters when another optimizer owns the rest (e.g. an adversarial autoencoder's discriminator)."""

    def __init__(self, model: nn.Module, method: str, modules: Optional[Iterable[nn.Module]] = None):
        super().__init__()
        self.method = method
        if modules is None:
            self.model = model
        else:
            self.parts = nn.ModuleList(modules)
            object.__setattr__(self, "model", model)  # called, not registered: its parameters come via parts

    def forward(self, *args):
        return getattr(self.model, self.method)(*args)


@STEPS.register("likelihood", help="exact-likelihood models: minimise the NLL per dimension")
class LikelihoodStep(TrainStep):
    """Maximum likelihood: loss = NLL in nats per dimension (so the learning rate ignores image size)."""

    best_key = "nll_nats"  # lower validation NLL -> checkpoints/best.pt

    def setup(self, engine) -> None:
        super().setup(engine)
        self.forward = engine.wrap(ModelCall(self.model, "training_log_prob"))
        engine.optimizer("model", self.model.parameters())

    def _labels(self, y):
        return y if self.model.conditional else None

    def __call__(self, batch):
        x, y = batch
        with self.engine.autocast():
            logp = self.forward(x, self._labels(y))
        nll = -logp.float().mean()
        loss = nll / self.model.dims
        self.engine.update(loss, "model")
        return {"loss": loss.detach(), "nll_nats": nll.detach(), "bits_per_dim": loss.detach() / math.log(2.0)}

    def evaluate(self, batches):
        from ..metrics.nll import nll_from_batches

        return nll_from_batches(self.model, batches, validation=True)


@STEPS.register("audio-likelihood", help="exact-likelihood audio models (wavenet): NLL per sample on random "
                "windows; no sample grid (dgm sample RUN --seconds S writes WAV files)")
class AudioLikelihoodStep(LikelihoodStep):
    """The likelihood step for waveforms: the loss is nats per sample of the window; samples are WAV files written
    by `dgm sample`, not an image grid."""

    def samples(self, n, generator):
        return None
