"""Training steps of the VAE family: maximise the SGVB estimate of the (beta-weighted) ELBO (and the AAE, AVB and
FactorVAE variants)."""
from __future__ import annotations

from typing import Dict

import torch

from ..errors import DgmError
from ..nn.blocks import evaluating
from ..nn.pixels import bits_per_dim
from ..objectives.elbo import reparameterize
from ..objectives.gan import minimax_d, non_saturating_g
from ..objectives.tc import permute_dims, tc_accuracy, tc_discriminator_loss, tc_estimate
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
        rec = kl = 0.0
        n = 0
        with evaluating(self.model):
            for x, _ in batches:
                t = self.model.elbo_terms(x)
                rec += t["rec"].double().sum().item()
                kl += t["kl"].double().sum().item()
                n += x.shape[0]
        neg_elbo = (kl - rec) / max(n, 1)
        return {"neg_elbo_nats": neg_elbo, "rec_nats": -rec / max(n, 1), "kl_nats": kl / max(n, 1),
                "bits_per_dim": bits_per_dim(neg_elbo, self.model.dims), "n": n}

    @torch.no_grad()
    def samples(self, n, generator):
        """Grids show E[x|z] for z ~ N(0, I): the decoder's mean image, as is usual for VAEs."""
        return self.model.to_unit(self.model.sample(n, generator=generator, mean=True))


@STEPS.register("aae", help="adversarial autoencoders: reconstruction + a latent discriminator instead of the KL")
class AAEStep(VAEStep):
    """Per batch: z ~ q(z|x); D learns prior draws (label 1) vs z (label 0) with the cross-entropy; then the
    autoencoder minimises (-log p(x|z) + beta_t KL + adv_weight * BCE(D(z), 1)) / dims (non-saturating)."""

    def setup(self, engine) -> None:
        TrainStep.setup(self, engine)
        m = self.model
        self.forward = engine.wrap(ModelCall(m, "elbo_terms", modules=[m.encoder, m.decoder]))
        self.D = engine.wrap(ModelCall(m, "critic", modules=[m.discriminator]))
        engine.optimizer("model", list(m.encoder.parameters()) + list(m.decoder.parameters()))
        engine.optimizer("d", m.discriminator.parameters(), betas=(0.5, 0.999))

    def __call__(self, batch) -> Dict[str, torch.Tensor]:
        x, _ = batch
        e, c = self.engine, self.model.config
        w = self.kl_weight(e.global_step)
        with e.autocast():
            t = self.forward(x)
        z = t["z"]
        prior = torch.randn(z.shape, device=z.device, dtype=z.dtype)
        with e.autocast():
            d_prior, d_post = self.D(torch.cat([prior, z.detach()])).float().chunk(2)
        loss_d = minimax_d(d_prior, d_post)              # prior draws are D's "real" side
        e.update(loss_d, "d")
        with e.autocast():
            d_gen = self.D(z).float()
        adv = non_saturating_g(d_gen)
        rec, kl = t["rec"].float().mean(), t["kl"].float().mean()
        loss = (-(rec - w * kl) + c.adv_weight * adv) / self.model.dims
        e.update(loss, "model")
        return {"loss": loss.detach(), "neg_elbo_nats": -(rec - kl).detach(), "rec_nats": -rec.detach(),
                "kl_nats": kl.detach(), "loss_d": loss_d.detach(), "adv": adv.detach(),
                "d_prior": torch.sigmoid(d_prior).mean().detach(), "d_post": torch.sigmoid(d_post).mean().detach()}


@STEPS.register("avb", help="adversarial variational Bayes: ELBO with a learned log-density ratio T(x, z)")
class AVBStep(VAEStep):
    """Per batch: z ~ q(z|x) = g(x, eps); T learns q-draws vs prior draws for the same x (the GAN discriminator's
    logistic loss ``minimax_d``, whose optimum is T = log q - log p: the density-ratio trick); then
    encoder and decoder minimise (-log p(x|z) + beta_t T(x, z)) / dims, T held fixed."""

    def setup(self, engine) -> None:
        TrainStep.setup(self, engine)
        m = self.model
        parts = [m.encoder, m.noise_net, m.decoder]
        self.forward = engine.wrap(ModelCall(m, "elbo_terms", modules=parts))
        self.T = engine.wrap(ModelCall(m, "log_ratio", modules=[m.t_x, m.t_head]))
        engine.optimizer("model", [p for part in parts for p in part.parameters()])
        engine.optimizer("t", list(m.t_x.parameters()) + list(m.t_head.parameters()))

    def __call__(self, batch) -> Dict[str, torch.Tensor]:
        x, _ = batch
        e = self.engine
        w = self.kl_weight(e.global_step)
        with e.autocast():
            z = self.forward(x)["z"]
        prior = torch.randn(z.shape, device=z.device, dtype=z.dtype)
        with e.autocast():
            t_q, t_p = self.T(torch.cat([x, x]), torch.cat([z.detach(), prior])).float().chunk(2)
        loss_t = minimax_d(t_q, t_p)  # logistic loss, q-draws labelled 1: minimised by T = log q - log p
        e.update(loss_t, "t")
        with e.autocast():
            rec = self.model.log_px_given_z(x, z).float().mean()
            t_gen = self.T(x, z).float().mean()
        loss = (-rec + w * t_gen) / self.model.dims
        e.update(loss, "model")
        return {"loss": loss.detach(), "neg_elbo_nats": (t_gen - rec).detach(), "rec_nats": -rec.detach(),
                "kl_nats": t_gen.detach(), "loss_t": loss_t.detach()}


FACTOR_LR = 1e-4                      # Kim & Mnih 2018: both Adams at 1e-4 (--lr sets both)
FACTOR_VAE_BETAS = (0.9, 0.999)       # the VAE's Adam
FACTOR_D_BETAS = (0.5, 0.9)           # the discriminator's Adam


@STEPS.register("factor-vae", help="FactorVAE: ELBO minus gamma * total correlation, estimated by a discriminator on "
                "codes vs dimension-wise permuted codes of a second batch")
class FactorVAEStep(VAEStep):
    """Kim & Mnih 2018, Algorithm 2. Each batch is split into two halves, x1 and x2 (independent minibatches):

    1. z1 ~ q(z|x1); the VAE minimises (-ELBO(x1) + gamma * E[logit_0 - logit_1](z1)) / dims, D held fixed;
    2. z2 ~ q(z|x2) (drawn with the same encoder, before 1's update), permuted dimension-wise; D minimises the
       cross-entropy of detached z1 (class 0) vs permuted z2 (class 1), so its loss never reaches the encoder.
    """

    def setup(self, engine) -> None:
        TrainStep.setup(self, engine)
        m = self.model
        if engine.local_batch < 2 or engine.local_batch % 2:
            raise DgmError(f"factor-vae splits each batch into two halves (codes, and the codes it permutes); "
                           f"--batch-size {engine.cfg.batch_size} gives {engine.local_batch} per process: use an even "
                           "number >= 2 per process")
        self.forward = engine.wrap(ModelCall(m, "elbo_terms", modules=[m.encoder, m.decoder]))
        self.D = engine.wrap(ModelCall(m, "tc_logits", modules=[m.discriminator]))
        lr = engine.cfg.lr or FACTOR_LR
        engine.optimizer("model", list(m.encoder.parameters()) + list(m.decoder.parameters()), lr=lr,
                         betas=FACTOR_VAE_BETAS)
        engine.optimizer("d", m.discriminator.parameters(), lr=lr, betas=FACTOR_D_BETAS)

    def __call__(self, batch) -> Dict[str, torch.Tensor]:
        x, _ = batch
        e, m = self.engine, self.model
        x1, x2 = x.chunk(2)
        w = self.kl_weight(e.global_step)
        with e.autocast():
            t = self.forward(x1)
        with torch.no_grad(), e.autocast():  # the second batch's codes: D's permuted side only
            mu2, logvar2 = m.encode(x2)
            z_perm = permute_dims(reparameterize(mu2, logvar2))
        z = t["z"]
        with e.autocast():
            logits = self.D(z).float()
        tc = tc_estimate(logits)
        rec, kl = t["rec"].float().mean(), t["kl"].float().mean()
        loss = (-(rec - w * kl) + m.config.tc_weight * tc) / m.dims
        e.update(loss, "model")
        with e.autocast():
            logits_q, logits_perm = self.D(torch.cat([z.detach(), z_perm])).float().chunk(2)
        loss_d = tc_discriminator_loss(logits_q, logits_perm)
        e.update(loss_d, "d")
        return {"loss": loss.detach(), "neg_elbo_nats": -(rec - kl).detach(), "rec_nats": -rec.detach(),
                "kl_nats": kl.detach(), "tc": tc.detach(), "loss_d": loss_d.detach(),
                "d_accuracy": tc_accuracy(logits_q.detach(), logits_perm.detach())}
