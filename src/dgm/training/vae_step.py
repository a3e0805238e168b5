"""Training step of the VAE family: maximise the SGVB estimate of the (beta-weighted) ELBO."""
from __future__ import annotations

import math
from typing import Dict

import torch

from .steps import STEPS, ModelCall, TrainStep


@STEPS.register("vae", help="latent-variable models: maximise the ELBO (SGVB, one sample, analytic KL)")
class VAEStep(TrainStep):
    """loss = -(E_q log p(x|z) - beta_t KL) per dimension, beta_t = beta * min(1, step / kl_warmup)."""

    best_key = "neg_elbo_nats"  # lower validation -ELBO -> checkpoints/best.pt

    def setup(self, engine) -> None:
        super().setup(engine)
        self.forward = engine.wrap(ModelCall(self.model, "elbo_terms"))
        engine.optimizer("model", self.model.parameters())

    def kl_weight(self, step: int) -> float:
        c = self.model.config
        return c.beta * (min(1.0, step / c.kl_warmup) if c.kl_warmup else 1.0)

    def __call__(self, batch) -> Dict[str, torch.Tensor]:
        x, _ = batch
        w = self.kl_weight(self.engine.global_step)
        with self.engine.autocast():
            t = self.forward(x)
        rec, kl = t["rec"].float().mean(), t["kl"].float().mean()
        loss = -(rec - w * kl) / self.model.dims
        self.engine.update(loss, "model")
        elbo = (rec - kl).detach()
        return {"loss": loss.detach(), "neg_elbo_nats": -elbo, "rec_nats": -rec.detach(), "kl_nats": kl.detach(),
                "kl_weight": torch.tensor(w)}

    @torch.no_grad()
    def evaluate(self, batches) -> Dict[str, float]:
        """Validation ELBO (one sample per image, the engine seeds it) and its two terms, averaged over the split."""
        was = self.model.training
        self.model.eval()
        rec = kl = 0.0
        n = 0
        for x, _ in batches:
            t = self.model.elbo_terms(x)
            rec += t["rec"].double().sum().item()
            kl += t["kl"].double().sum().item()
            n += x.shape[0]
        self.model.train(was)
        neg_elbo = (kl - rec) / max(n, 1)
        return {"neg_elbo_nats": neg_elbo, "rec_nats": -rec / max(n, 1), "kl_nats": kl / max(n, 1),
                "bits_per_dim": neg_elbo / (self.model.dims * math.log(2.0)), "n": n}

    @torch.no_grad()
    def samples(self, n, generator):
        """Grids show E[x|z] for z ~ N(0, I): the decoder's mean image, as is usual for VAEs."""
        x = self.model.sample(n, generator=generator, mean=True)
        return x / (self.model.config.levels - 1)
