"""The CycleGAN family step (Zhu et al. 2017): one generator update of G and F, then one of D_X and D_Y.

Generators: L = L_GAN(G, D_Y) + L_GAN(F, D_X) + lambda (|F(G(x)) - x| + |G(F(y)) - y|) + w_idt (|G(y) - y| + |F(x) - x|)
(each cycle direction and the GAN terms switchable for the paper's ablation; with ``--paired`` data the supervised
pix2pix L1 |G(x) - y| + |F(y) - x| is added, weight ``l1_weight``). Discriminators: half the objective's D loss on
real images vs generated ones drawn through an ``ImagePool`` of the last ``pool_size`` per direction. Adam 2e-4,
betas (0.5, 0.999); the learning rate is constant, then decays linearly to 0 from ``decay_from``. The adversarial
loss is any registered objective the model accepts (least squares by default), through its d_loss / g_loss hooks.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import DgmError
from ..nn.pool import ImagePool
from ..objectives.cycle import cycle_loss, identity_loss, paired_l1
from .steps import STEPS, TrainStep

LR, BETAS = 2e-4, (0.5, 0.999)  # Zhu et al. 2017, sec. 4


class _Generators(nn.Module):
    """Every generator pass of one update in ONE forward (DDP: one forward per backward).

    forward(x, y) -> (G(x), F(y), F(G(x)) or None, G(F(y)) or None, G(y) or None, F(x) or None)."""

    def __init__(self, g: nn.Module, f: nn.Module, forward_cycle: bool, backward_cycle: bool, identity: bool):
        super().__init__()
        self.G, self.F = g, f
        self.cycles, self.identity = (forward_cycle, backward_cycle), identity

    def forward(self, x: Tensor, y: Tensor):
        fake_y, fake_x = self.G(x), self.F(y)
        rec_x = self.F(fake_y) if self.cycles[0] else None
        rec_y = self.G(fake_x) if self.cycles[1] else None
        idt_y, idt_x = (self.G(y), self.F(x)) if self.identity else (None, None)
        return fake_y, fake_x, rec_x, rec_y, idt_y, idt_x


class _Discriminators(nn.Module):
    """forward(real x, fake x, real y, fake y) -> (D_X(real x) or None, D_X(fake x), D_Y(real y) or None, D_Y(fake y))."""

    def __init__(self, d_x: nn.Module, d_y: nn.Module):
        super().__init__()
        self.D_X, self.D_Y = d_x, d_y

    def forward(self, real_x: Optional[Tensor], fake_x: Tensor, real_y: Optional[Tensor], fake_y: Tensor):
        return (None if real_x is None else self.D_X(real_x), self.D_X(fake_x),
                None if real_y is None else self.D_Y(real_y), self.D_Y(fake_y))


def linear_decay(start: float, total: int):
    """Zhu et al. 2017: factor 1 until step s0, then linear to 0 at ``total``; s0 = start x total when start < 1,
    else the step ``start``."""
    s0 = int(start * total) if start < 1 else int(start)

    def factor(s: int) -> float:
        if s < s0:
            return 1.0
        return max(0.0, 1.0 - (s - s0) / max(1, total - s0))

    return factor


@STEPS.register("cyclegan", help="unpaired translation: G and F (GAN + cycle + identity losses), then D_X and D_Y "
                "on image pools; lr constant then linear to 0")
class CycleGANStep(TrainStep):
    best_key = None  # no likelihood; the validation cycle error is logged

    def setup(self, engine) -> None:
        super().setup(engine)
        m = self.model
        c = self.c = m.config
        self.paired = bool(getattr(engine.train_set, "paired", False))
        if not (c.gan or c.cycle_forward or c.cycle_backward or c.identity or self.paired):
            raise DgmError("--no-gan without a cycle, identity or --paired term leaves nothing to train; "
                           "keep a cycle (drop --no-cycle-forward / --no-cycle-backward) or the GAN terms")
        self.gens = engine.wrap(_Generators(m.G, m.F, c.cycle_forward, c.cycle_backward, c.identity > 0))
        lr = engine.cfg.lr or LR
        decay = linear_decay(c.decay_from, engine.total_steps)
        engine.optimizer("g", list(m.G.parameters()) + list(m.F.parameters()), lr=lr, betas=BETAS, decay=decay)
        self.state: Dict[str, float] = m.objective.init_state()
        info = engine.info
        seed = engine.cfg.seed * 1_000_003 + 2 * info.rank
        self.pools = {"x": ImagePool(c.pool_size, seed), "y": ImagePool(c.pool_size, seed + 1)}
        if c.gan:
            self.D = engine.wrap(_Discriminators(m.D_X, m.D_Y))
            engine.optimizer("d", list(m.D_X.parameters()) + list(m.D_Y.parameters()), lr=lr, betas=BETAS,
                             decay=decay)

    def __call__(self, batch) -> Dict[str, Tensor]:
        x, y = batch
        e, c, obj = self.engine, self.c, self.model.objective
        with e.autocast():
            fake_y, fake_x, rec_x, rec_y, idt_y, idt_x = self.gens(x, y)
        terms: Dict[str, Tensor] = {}
        if c.gan:
            with e.autocast():
                _, d_fake_x, _, d_fake_y = self.D(None, fake_x, None, fake_y)
            terms["gan_g"] = (obj.g_loss(d_fake_y.float(), None, c) + obj.g_loss(d_fake_x.float(), None, c), 1.0)
        if rec_x is not None:
            terms["cycle_x"] = (cycle_loss(x, rec_x.float()), c.cycle_weight)
        if rec_y is not None:
            terms["cycle_y"] = (cycle_loss(y, rec_y.float()), c.cycle_weight)
        if idt_y is not None:
            terms["identity"] = (identity_loss(y, idt_y.float()) + identity_loss(x, idt_x.float()), c.identity)
        if self.paired:
            terms["paired_l1"] = (paired_l1(y, fake_y.float()) + paired_l1(x, fake_x.float()), c.l1_weight)
        loss_g = sum(w * t for t, w in terms.values())
        e.update(loss_g, "g")
        out = {k: t.detach() for k, (t, _) in terms.items()}
        out["loss_g"] = loss_g.detach()
        if c.gan:
            px, py = self.pools["x"].query(fake_x), self.pools["y"].query(fake_y)
            with e.autocast():
                d_real_x, d_fake_x, d_real_y, d_fake_y = self.D(x, px, y, py)
            loss_d = 0.5 * (obj.d_loss(d_real_x.float(), d_fake_x.float(), self.state, c)
                            + obj.d_loss(d_real_y.float(), d_fake_y.float(), self.state, c))
            e.update(loss_d, "d")
            out.update(loss_d=loss_d.detach(), d_real=0.5 * (d_real_x.mean() + d_real_y.mean()).detach(),
                       d_fake=0.5 * (d_fake_x.mean() + d_fake_y.mean()).detach())
        out["loss"] = loss_g.detach()
        return out

    @torch.no_grad()
    def evaluate(self, batches) -> Dict[str, float]:
        """Mean |F(G(x)) - x| and |G(F(y)) - y| on [0, 1] over the validation pairs."""
        m = self.model
        sx = sy = 0.0
        n = 0
        for x, y in batches:
            sx += (m.triplets(x, "x_to_y")[2] - x).abs().double().mean((1, 2, 3)).sum().item() / 2
            sy += (m.triplets(y, "y_to_x")[2] - y).abs().double().mean((1, 2, 3)).sum().item() / 2
            n += x.shape[0]
        return {"cycle_x": sx / max(n, 1), "cycle_y": sy / max(n, 1), "n": n}

    @torch.no_grad()
    def samples(self, n, generator):
        """Six validation pairs, one per row: x, G(x), F(G(x)), y, F(y), G(F(y)) (a 6-column grid of 36 cells)."""
        data = self.engine.val_set if self.engine.val_set is not None else self.engine.train_set
        k = min(6, len(data))
        x = torch.stack([data[i][0] for i in range(k)]).to(self.model.device)
        y = torch.stack([data[i][1] for i in range(k)]).to(self.model.device)
        rows = [torch.stack([*self.model.triplets(x, "x_to_y"), *self.model.triplets(y, "y_to_x")], 1)]
        grid = torch.cat(rows).flatten(0, 1)
        if k < 6:  # keep 6 columns: pad with blank rows
            grid = torch.cat([grid, torch.full((36 - len(grid),) + grid.shape[1:], -1.0, device=grid.device)])
        return self.model.to_unit(grid)

    def state_dict(self):
        return {f"pool_{k}": p.state_dict() for k, p in self.pools.items()}

    def load_state_dict(self, state):
        for k, p in self.pools.items():
            if f"pool_{k}" in state:
                p.load_state_dict(state[f"pool_{k}"])
        # the decay depends on the run's length: a resume with a new --steps continues on the new schedule from
        # the restored step (the optimizer restored the old schedule's rate for it)
        for name, sched in self.engine.schedulers.items():
            for group, factor in zip(self.engine.optimizers[name].param_groups, sched.lr_lambdas):
                group["lr"] = group["initial_lr"] * factor(sched.last_epoch)
