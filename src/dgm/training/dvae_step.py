"""Training step of the discrete VAE: (-log p(x | z) + beta_t KL(q || U)) per dimension, z a Gumbel-softmax draw at
temperature tau_t; both schedules are functions of the global step (models/dvae.py), so a resumed run continues
them exactly."""
from __future__ import annotations

from typing import Dict

import torch

from .steps import STEPS
from .vq_step import VQStep


@STEPS.register("dvae", help="discrete VAE: Gumbel-softmax relaxation (annealed temperature), KL to the uniform "
                "prior (warmed-up weight)")
class DVAEStep(VQStep):
    """Setup (one Adam over the model), validation (the recon metric) and the sample grid (reconstructions) are the
    VQ-VAE step's."""

    def __call__(self, batch) -> Dict[str, torch.Tensor]:
        x, _ = batch
        m, e = self.model, self.engine
        if self._shown is None:
            self._shown = x[:64].detach().clone()
        tau, beta = m.temperature(e.global_step), m.kl_weight(e.global_step)
        with e.autocast():
            t = self.forward(x, tau)
        rec, kl = t["rec"].float().mean(), t["kl"].float().mean()
        loss = (rec + beta * kl) / m.dims
        e.update(loss, "model")
        with torch.no_grad():
            used = torch.bincount(t["logits"].argmax(1).flatten(), minlength=m.num_codes).double()
            p = used / used.sum()
            perplexity = torch.exp(-(p * torch.log(p + 1e-12)).sum())
        return {"loss": loss.detach(), "rec_nats": rec.detach(), "kl_nats": kl.detach(), "temperature": torch.tensor(tau),
                "kl_weight": torch.tensor(beta), "perplexity": perplexity, "codes_used": (used > 0).sum().double()}
