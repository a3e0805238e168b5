"""The ALI / BiGAN step (Dumoulin et al. 2017; Donahue et al. 2017): one update of D, then one of G and E together.

D minimises the objective's d on (D(x, E(x)), D(G(z), z)) with both pairs detached from G and E; then G and E (one
optimizer, "g") minimise the objective's g on D(G(z), z) plus its e on D(x, E(x)), against the updated D (dgm's
alternating order). Adam with the objective's defaults (2e-4, betas (0.5, 0.999) for the logit objectives), --lr
for both. z and the encoder's noise eps come from streams fixed by (seed, step), so a resumed run draws exactly what
an uninterrupted one draws, and a process of an N-process run takes its slice of the global batch's draws.
Logged: loss_d, loss_g (G's and E's), D's mean outputs and its accuracy on each side (acc_real: encoder pairs called
real; acc_fake: generator pairs called fake; the objective's ``boundary`` between the two).
"""
from __future__ import annotations

import itertools
from typing import Dict

import torch
import torch.nn as nn
from torch import Tensor

from .gan_step import GANStep
from .steps import STEPS, TrainStep

_EPS_STREAM = 2 ** 40  # offset of the encoder noise's stream from z's (seed * 1_000_003 + step)


class _GeneratorEncoder(nn.Module):
    """G and E in one forward (DDP: one forward per backward): (G(z), E(x) drawn with noise ``eps``)."""

    def __init__(self, model):
        super().__init__()
        self.generator, self.encoder = model.generator, model.encoder
        object.__setattr__(self, "model", model)  # called for encoder_params, not registered twice

    def forward(self, z: Tensor, x: Tensor, eps: Tensor):
        from ..models.ali import draw_code

        mu, logvar = self.model.encoder_params(x)
        return self.generator(z), (mu if logvar is None else draw_code(mu, logvar, eps=eps))


class _PairCritic(nn.Module):
    """D on both kinds of pairs in one forward: (D(x, E(x)), D(G(z), z))."""

    def __init__(self, d: nn.Module):
        super().__init__()
        self.d = d

    def forward(self, x: Tensor, z_hat: Tensor, fake: Tensor, z: Tensor):
        return self.d(x, z_hat), self.d(fake, z)


@STEPS.register("ali", help="ALI / BiGAN: a joint discriminator D(x, z) against the generator and encoder updated "
                "together")
class ALIStep(TrainStep):
    best_key = None  # no likelihood to select a best checkpoint by

    def setup(self, engine) -> None:
        super().setup(engine)
        m, tc = self.model, engine.cfg
        self.obj, self.c = m.objective, m.config
        self.GE = engine.wrap(_GeneratorEncoder(m))
        self.D = engine.wrap(_PairCritic(m.discriminator))
        lr = tc.lr
        engine.optimizer("d", m.discriminator.parameters(), lr=lr or self.obj.lr_d, betas=self.obj.betas,
                         kind=self.obj.optimizer)
        engine.optimizer("g", itertools.chain(m.generator.parameters(), m.encoder.parameters()),
                         lr=lr or self.obj.lr_g, betas=self.obj.betas, kind=self.obj.optimizer)
        self.state = self.obj.init_state()
        self.steps = 0  # updates so far (checkpointed): fixes the draws of each step

    def _draws(self, b: int):
        """This process's share of the global batch's z ~ p(z) and encoder noise eps ~ N(0, I). z: its block of rows.
        eps goes with the examples: the engine's sampler deals example i of the global batch to process i mod N, so
        the process takes rows rank, rank + N, ... and each x meets the eps of a 1-process run on the union batch."""
        info, seed, dev = self.engine.info, self.engine.cfg.seed, self.model.device
        rows = slice(info.rank * b, (info.rank + 1) * b)
        z = self.model.sample_latent(b * info.world_size, torch.Generator().manual_seed(seed * 1_000_003 + self.steps))
        gen = torch.Generator().manual_seed(seed * 1_000_003 + self.steps + _EPS_STREAM)
        eps = torch.randn(b * info.world_size, self.c.latent_dim, generator=gen)
        return z[rows].to(dev), eps[info.rank::info.world_size].to(dev)

    def d_loss(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        """D's loss: the objective's d, encoder pairs as real, generator pairs as fake."""
        return self.obj.d_loss(d_real, d_fake, self.state, self.c)

    def ge_loss(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        """G's and E's loss: the objective's g on the generator pairs plus its e on the encoder pairs."""
        return self.obj.g_loss(d_fake, None, self.c) + self.obj.e(d_real)

    def __call__(self, batch) -> Dict[str, Tensor]:
        x, _ = batch
        e = self.engine
        z, eps = self._draws(x.shape[0])
        with e.autocast():
            fake, z_hat = self.GE(z, x, eps)
            d_real, d_fake = self.D(x, z_hat.detach(), fake.detach(), z)
        d_real, d_fake = d_real.float(), d_fake.float()
        loss_d = self.d_loss(d_real, d_fake)
        b = self.obj.boundary
        out = {"d_real": d_real.mean().detach(), "d_fake": d_fake.mean().detach(),
               "acc_real": (d_real > b).float().mean(), "acc_fake": (d_fake < b).float().mean()}
        e.update(loss_d, "d")
        with e.autocast():
            g_real, g_fake = self.D(x, z_hat, fake, z)
        loss_g = self.ge_loss(g_real.float(), g_fake.float())
        e.update(loss_g, "g")
        self.steps += 1
        return {"loss": loss_d.detach(), "loss_d": loss_d.detach(), "loss_g": loss_g.detach(), **out}

    # evaluation (mode coverage on toy mixtures) and the sample grid or toy scatter: as the GAN's
    evaluate = GANStep.evaluate
    samples = GANStep.samples

    def state_dict(self):
        return {**self.state, "steps": self.steps}

    def load_state_dict(self, state):
        self.state = {k: type(v)(state.get(k, v)) for k, v in self.obj.init_state().items()}
        self.steps = int(state.get("steps", 0))
