"""Training step of the VQ-VAE: reconstruction NLL per dimension + codebook loss + beta * commitment loss."""
from __future__ import annotations

from typing import Dict

import torch

from .steps import STEPS, ModelCall, TrainStep


@STEPS.register("vq", help="VQ-VAE: reconstruction + codebook + commitment losses (straight-through estimator)")
class VQStep(TrainStep):
    best_key = "rec_nats"  # lower validation reconstruction NLL -> checkpoints/best.pt

    def setup(self, engine) -> None:
        super().setup(engine)
        self.forward = engine.wrap(ModelCall(self.model, "terms"))
        engine.optimizer("model", self.model.parameters())
        self._shown = None

    def __call__(self, batch) -> Dict[str, torch.Tensor]:
        x, _ = batch
        if self._shown is None:
            self._shown = x[:64].detach().clone()
        with self.engine.autocast():
            t = self.forward(x)
        loss = self.model.loss(t)
        self.engine.update(loss, "model")
        return {"loss": loss.detach(), "rec_nats": t["rec"].float().mean().detach(),
                "codebook": t["codebook"].detach(), "commitment": t["commitment"].detach(),
                "perplexity": t["perplexity"]}

    @torch.no_grad()
    def evaluate(self, batches) -> Dict[str, float]:
        from ..metrics.recon import recon_from_batches

        return recon_from_batches(self.model, batches)

    @torch.no_grad()
    def samples(self, n, generator):
        """The grid shows reconstructions E[x|z_q(x)] of the first training images (a VQ-VAE has no prior)."""
        if self._shown is None:
            return None
        x = self._shown[:n].to(self.model.device)
        return self.model.to_unit(self.model.reconstruct(x))
