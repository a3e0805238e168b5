"""The InfoGAN step (Chen et al. 2016): the GAN step with codes in G's input and lambda L_I in both losses.

D and Q (one optimizer, "d": Q shares D's body) minimise loss_D + lambda (CE(c) + NLL(c')) on the detached fakes;
G minimises loss_G + lambda (CE(c) + NLL(c')) through the fakes. z comes from GANStep's stream fixed by (seed, D
update); the codes from a second stream fixed the same way, so a resumed run and an N-process run (each process
takes its slice of the global batch's codes) draw exactly the codes of an uninterrupted 1-process run.
Logged: ``mi_cat`` = log K - CE, the categorical part of the bound (<= log K), and ``nll_cont``.
"""
from __future__ import annotations

import itertools
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from ..objectives import gradient_penalty
from ..objectives.info import info_loss
from .gan_step import GANStep
from .steps import STEPS, TrainStep

LR_G = 1e-3  # G's default learning rate (Chen et al. 2016, MNIST); D and Q keep the objective's (2e-4 for DCGAN)
_CODE_STREAM = 2 ** 40  # offset of the codes' stream from z's (seed * 1_000_003 + D update)


class _InfoCritic(nn.Module):
    """D and Q in one forward (one DDP forward per backward): (D(real) or None, D(fake), [penalties], Q(fake))."""

    def __init__(self, d: nn.Module, q: nn.Module):
        super().__init__()
        self.d, self.q = d, q

    def forward(self, real: Optional[Tensor], fake: Tensor, points: Sequence[Tensor] = (),
                targets: Tuple[float, ...] = ()):
        d_real = self.d(real) if real is not None else None
        h = self.d.representation(fake)
        d_fake = self.d.head(h).reshape(h.shape[0])
        gps = [gradient_penalty(self.d, x, t) for x, t in zip(points, targets)]
        return d_real, d_fake, gps, self.q(h)


@STEPS.register("infogan", help="InfoGAN: the GAN step plus lambda x the mutual-information term for G and Q")
class InfoGANStep(GANStep):

    def setup(self, engine) -> None:
        TrainStep.setup(self, engine)
        m, c = self.model, self.model.config
        obj = m.objective
        # Chen et al. 2016: G learns faster than D (1e-3 against 2e-4); Q trains with D
        self._wire(engine, _InfoCritic(m.discriminator, m.q_head),
                   itertools.chain(m.discriminator.parameters(), m.q_head.parameters()), lr_g=LR_G)
        self.penalties = c.penalties()  # the objective's, then the regularisers' (R1)
        self.pack = 1
        self.state = obj.init_state()
        self.d_steps = 0
        self.last = {}

    def _codes(self, b: int) -> Tuple[Tensor, Tensor]:
        """This process's slice of the global batch's codes (c, c'), from a stream fixed by (seed, D update)."""
        info = self.engine.info
        gen = torch.Generator().manual_seed(self.engine.cfg.seed * 1_000_003 + self.d_steps + _CODE_STREAM)
        cat, cont = self.model.sample_codes(b * info.world_size, gen)
        s = slice(info.rank * b, (info.rank + 1) * b)
        return cat[s].to(self.model.device), cont[s].to(self.model.device)

    def _info(self, q_out, cat, cont):
        return info_loss(q_out[0].float(), cat, q_out[1].float(), cont)

    def __call__(self, batch):
        x, _ = batch
        m, c, e = self.model, self.c, self.engine
        g_turn = (self.d_steps + 1) % c.n_critic == 0
        z = self._latent(x.shape[0])
        cat, cont = self._codes(x.shape[0])
        with torch.set_grad_enabled(g_turn):
            fake = self.G(m.generator_input(z, cat, cont))
        real_n, fake_n = self._noise(x, fake.detach())
        penalties = [p for p in self.penalties if p.applies(self.d_steps)]
        points = [p.sample(real_n, fake_n, 1) for p in penalties]
        with e.autocast():
            d_real, d_fake, gps, q_fake = self.D(real_n, fake_n, points, tuple(p.target for p in penalties))
        d_real, d_fake = d_real.float(), d_fake.float()
        info_d, parts = self._info(q_fake, cat, cont)
        loss_d = self._d_loss(d_real, d_fake) + c.info_weight * info_d
        out = {"d_real": d_real.mean().detach(), "d_fake": d_fake.mean().detach(), "info_loss": info_d.detach(),
               **parts}
        loss_d = self._update_d(loss_d, out, penalties, gps, d_real, d_fake)
        if g_turn:
            (fake_g,) = self._noise(fake)
            with e.autocast():
                _, d_gen, _, q_gen = self.D(None, fake_g)
            info_g, _ = self._info(q_gen, cat, cont)
            self._update_g(self._g_loss(d_gen.float(), None) + c.info_weight * info_g)
        return self._logged(out, loss_d)
