"""The VAE/GAN step (Larsen et al. 2016, Algorithm 1): one forward, then the encoder, the decoder and the
discriminator updated together, each with the gradient of its own loss at the same parameters.

    encoder:       L_prior + L_llike
    decoder:       gamma L_llike + L_GAN's non-saturating decoder term (``vae_gan_g_loss``)
    discriminator: -L_GAN (``vae_gan_d_loss``)

One Adam holds the three networks (Adam is per-parameter, so this is three Adams with one setting: lr 3e-4, the
paper's, or --lr; betas (0.5, 0.999)); its single loss is the sum of the three, built so that each network receives
exactly its own loss's gradient: the encoder's terms read the decoder and D through detached copies of their
parameters (``torch.func.functional_call``), the decoder's read D the same way and the codes detached, D's read
detached images. So L_llike never reaches D, L_GAN never the encoder, and the encoder's reconstruction term never
the decoder. z_p ~ N(0, I) and the encoder's noise come from streams fixed by (seed, step) for the global batch, so
a resumed run draws what an uninterrupted one draws and a process of an N-process run takes its rows.
Logged: neg_elbo_features (= kl_nats + llike_nats: the negative ELBO of D's layer-l features that the encoder and
decoder minimise), loss_d, loss_g (the decoder's GAN term), D's mean probabilities and accuracies.
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn as nn
from torch import Tensor
from torch.func import functional_call

from ..nn.blocks import evaluating
from ..objectives.elbo import gaussian_kl, reparameterize
from ..objectives.vae_gan import feature_nll, vae_gan_d_loss, vae_gan_g_loss
from .steps import STEPS, TrainStep

LR = 3e-4                      # Larsen et al. 2016: RMSProp at 3e-4 (dgm: Adam, as its other adversarial models)
BETAS = (0.5, 0.999)
_EPS_STREAM = 2 ** 40          # offset of the encoder noise's stream from z_p's (seed * 1_000_003 + step)


def frozen(module: nn.Module, *args):
    """``module(*args)`` with its parameters detached: gradients flow to the inputs, never to the module."""
    return functional_call(module, {k: v.detach() for k, v in module.named_parameters()}, args)


class VAEGANLosses(nn.Module):
    """Everything one update computes, in ONE forward (DDP: one forward per backward): the three losses, whose sum
    gives each network the gradient of its own (module docstring), and the terms to log."""

    def __init__(self, model):
        super().__init__()
        self.encoder, self.decoder, self.discriminator = model.encoder, model.decoder, model.discriminator
        object.__setattr__(self, "model", model)  # called for encoder_params, not registered twice
        self.gamma = model.config.gamma

    def forward(self, x: Tensor, z_p: Tensor, eps: Tensor) -> Dict[str, Tensor]:
        b = x.shape[0]
        mu, logvar = self.model.encoder_params(x)
        z = mu + torch.exp(0.5 * logvar) * eps
        x_rec, x_p = self.decoder(torch.cat([z.detach(), z_p])).split([b, z_p.shape[0]])  # the decoder's terms
        x_rec_enc = frozen(self.decoder, z)  # the same images; the gradient reaches the encoder only
        logits, _ = self.discriminator(torch.cat([x, x_rec.detach(), x_p.detach()]))  # D's own loss
        d_real, d_rec, d_prior = logits.float().split([b, b, z_p.shape[0]])
        f_logits, feats = frozen(self.discriminator, torch.cat([x, x_rec, x_p, x_rec_enc]))  # G's and E's terms
        g_rec, g_prior, _ = f_logits.float()[b:].split([b, z_p.shape[0], b])
        f_x, f_rec, _, f_rec_enc = feats.float().split([b, b, z_p.shape[0], b])
        kl = gaussian_kl(mu.float(), logvar.float()).mean()
        llike_enc = feature_nll(f_x, f_rec_enc).mean()
        llike_dec = feature_nll(f_x, f_rec).mean()
        return {"encoder": kl + llike_enc, "decoder": self.gamma * llike_dec + vae_gan_g_loss(g_rec, g_prior),
                "discriminator": vae_gan_d_loss(d_real, d_rec, d_prior), "kl": kl, "llike": llike_dec,
                "g_gan": vae_gan_g_loss(g_rec, g_prior), "d_real": d_real, "d_fake": torch.cat([d_rec, d_prior])}


@STEPS.register("vae-gan", help="VAE/GAN: encoder (KL + D-feature reconstruction), decoder (gamma x reconstruction "
                "+ GAN) and discriminator (GAN) updated together, each by its own loss")
class VAEGANStep(TrainStep):
    best_key = None  # the feature-space bound moves with D: no validation number selects a best checkpoint

    def setup(self, engine) -> None:
        super().setup(engine)
        m = self.model
        self.losses = engine.wrap(VAEGANLosses(m))
        engine.optimizer("model", m.parameters(), lr=engine.cfg.lr or LR, betas=BETAS)
        self.steps = 0  # updates so far (checkpointed): fixes the draws of each step

    def _draws(self, b: int):
        """This process's share of the global batch's z_p ~ N(0, I) (its block of rows) and encoder noise (rows rank,
        rank + N, ...: the engine deals example i of the global batch to process i mod N)."""
        info, seed, dev, d = self.engine.info, self.engine.cfg.seed, self.model.device, self.model.config.latent_dim
        gen = torch.Generator().manual_seed(seed * 1_000_003 + self.steps)
        z_p = torch.randn(b * info.world_size, d, generator=gen)[info.rank * b:(info.rank + 1) * b]
        gen = torch.Generator().manual_seed(seed * 1_000_003 + self.steps + _EPS_STREAM)
        eps = torch.randn(b * info.world_size, d, generator=gen)[info.rank::info.world_size]
        return z_p.to(dev), eps.to(dev)

    def __call__(self, batch) -> Dict[str, Tensor]:
        x, _ = batch
        z_p, eps = self._draws(x.shape[0])
        with self.engine.autocast():
            t = self.losses(x, z_p, eps)
        self.engine.update(t["encoder"] + t["decoder"] + t["discriminator"], "model")
        self.steps += 1
        d_real, d_fake = t["d_real"].detach(), t["d_fake"].detach()
        bound = (t["kl"] + t["llike"]).detach()
        return {"loss": bound, "neg_elbo_features": bound, "kl_nats": t["kl"].detach(),
                "llike_nats": t["llike"].detach(), "loss_d": t["discriminator"].detach(),
                "loss_g": t["g_gan"].detach(), "d_real": torch.sigmoid(d_real).mean(),
                "d_fake": torch.sigmoid(d_fake).mean(), "acc_real": (d_real > 0).float().mean(),
                "acc_fake": (d_fake < 0).float().mean()}

    @torch.no_grad()
    def evaluate(self, batches) -> Dict[str, float]:
        """The validation bound: KL and L_llike of D's layer-l features with one draw z ~ q(z|x) per image (the
        engine seeds it), in nats per example; and D's accuracy on the real images."""
        m = self.model
        kl = llike = real = 0.0
        n = 0
        with evaluating(m):
            for x, _ in batches:
                mu, logvar = m.encoder_params(x)
                logits, f_x = m.discriminator(x)
                f_rec = m.discriminator(m.decoder(reparameterize(mu, logvar)))[1]
                kl += gaussian_kl(mu, logvar).double().sum().item()
                llike += feature_nll(f_x, f_rec).double().sum().item()
                real += (logits > 0).double().sum().item()
                n += x.shape[0]
        n = max(n, 1)
        return {"neg_elbo_features": (kl + llike) / n, "kl_nats": kl / n, "llike_nats": llike / n,
                "acc_real": real / n}

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = int(state.get("steps", 0))
