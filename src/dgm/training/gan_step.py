"""The GAN family step: alternating D / G updates through the shared engine.

One engine step = one discriminator (critic) update on one real batch; every ``n_critic``-th step also
updates the generator. The step knows n_critic, TTUR learning rates, the list of gradient penalties, clipping,
unrolling (Metz et al. 2017, with ``torch.func.functional_call``) and class labels. What is particular to an
objective (its losses, its state such as BEGAN's k_t, EBGAN's pulling-away term, the logged estimates) comes
through the hooks of ``dgm.objectives.Objective``, and what a regulariser adds (R1's penalty, instance noise, GDPP's
and the orthogonal term of G's loss, the EMA of G, packing's batch check, replayed fakes, label flips, D's joint
batches) through the hooks of ``models.gan_regularisers.Regulariser``; this file never tests an objective's or a
regulariser's name.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
from torch import Tensor
from torch.func import functional_call

from ..objectives import acgan_d_class_loss, acgan_g_class_loss, clip_weights, gradient_penalty
from .optim import differentiable_step
from .steps import STEPS, TrainStep


class _Critic(nn.Module):
    """Everything D computes in one update, in ONE forward call (so DDP sees one forward per backward).

    forward(real, fake, points, targets, y_real, y_fake, reps) -> (D(real) or None, D(fake), [gradient penalty at each
    points with its target], D's code of fake or None, ACGAN's class logits (of real or None, of fake) or None,
    ``reps``: the head's inputs (representation of real, of fake) for a regulariser's term of G's loss, else None)

    A class-conditional D gets the labels: the real batch's, the ones the fakes were drawn for, and for the penalty
    points the real labels (exact for R1 and DRAGAN, whose points are (near) real images; WGAN-GP's interpolate
    between a real image and a fake one of another class takes the real one's label).
    """

    def __init__(self, d: nn.Module, energy: bool, joint: bool = False):
        super().__init__()
        self.d, self.energy, self.joint = d, energy, joint

    def _out(self, x, y, rep: bool = False):
        if self.energy:
            energy, code = self.d.energy_and_code(x) if y is None else self.d.energy_and_code(x, y)
            return energy, code, None, None
        if rep:  # the representation and the score from one pass
            h = self.d.representation(x, y)
            score, logits = self.d.scores_of(h, y)
            return score, None, logits, h
        if y is None:
            return self.d(x), None, None, None
        score, logits = self.d.scores(x, y)
        return score, None, logits, None

    def _joint(self, real, fake, y_real, y_fake, reps):
        """``_out`` of the concatenated batch, split back into the reals' and the fakes' parts (D outputs one row per
        sample, or per pack of m: the reals' rows are the first n_real / (n_real + n_fake) of them)."""
        y = None if y_real is None else torch.cat([y_real, y_fake])
        outs = self._out(torch.cat([real, fake]), y, reps)
        score = outs[0]
        k = score.shape[0] * real.shape[0] // (real.shape[0] + fake.shape[0])
        (d_real, d_fake), (_, code), (l_real, l_fake), (h_real, h_fake) = [
            (None, None) if t is None else (t[:k], t[k:]) for t in outs]
        return d_real, d_fake, code, l_real, l_fake, h_real, h_fake

    def forward(self, real: Optional[Tensor], fake: Tensor, points: Sequence[Tensor] = (),
                targets: Tuple[float, ...] = (), y_real: Optional[Tensor] = None, y_fake: Optional[Tensor] = None,
                reps: bool = False):
        if self.joint and real is not None:  # --d-batches joint: one pass over [real; fake], split after
            d_real, d_fake, code, l_real, l_fake, h_real, h_fake = self._joint(real, fake, y_real, y_fake, reps)
        else:
            d_real, _, l_real, h_real = self._out(real, y_real, reps) if real is not None else (None,) * 4
            d_fake, code, l_fake, h_fake = self._out(fake, y_fake, reps)
        gps = [gradient_penalty(self.d, x, t, y_real) for x, t in zip(points, targets)]
        return d_real, d_fake, gps, code, (None if l_fake is None else (l_real, l_fake)), \
            ((h_real, h_fake) if reps else None)


@STEPS.register("gan", help="adversarial: alternating discriminator / generator updates (n_critic, TTUR, unrolling)")
class GANStep(TrainStep):
    best_key = None  # no likelihood to select a best checkpoint by
    classes = 0  # class-conditional runs: the number of classes (set in setup; subclasses may keep 0)

    def setup(self, engine) -> None:
        super().setup(engine)
        m, c = self.model, self.model.config
        obj = m.objective
        joint = any(r.d_joint for r in c.regularisers.values())  # --d-batches joint
        self._wire(engine, _Critic(m.discriminator, obj.kind == "energy", joint),
                   m.discriminator.parameters())
        self.penalties = c.penalties()  # the objective's, then the regularisers' (R1)
        self.pack = getattr(m.discriminator, "pack", 1)  # PacGAN: D scores packs of m of the batch's samples
        self.classes = c.num_classes if m.conditional else 0  # class-conditional: labels to D and G
        # GDPP: D's representations of the reals and fakes in G's pass, for the regularisers' terms of G's loss
        self.reps = any(r.wants_representations for r in self.regularisers)

        # growing architectures (ProGAN): the modules told the images shown before each update (``set_progress``)
        self.progressive = [mod for mod in m.modules() if hasattr(mod, "set_progress")]
        self.state = obj.init_state()  # the objective's state, e.g. BEGAN's k_t (checkpointed)
        self.d_steps = 0               # discriminator updates so far (checkpointed)
        self.last: Dict[str, float] = {}

    def _wire(self, engine, critic: nn.Module, d_params, lr_g: Optional[float] = None) -> None:
        """What every GAN-family step sets up first: G and the critic wrapped by the engine (DDP), and the "d" and "g"
        optimizers of the objective's kind over ``d_params`` and G's parameters. Learning rates: --lr-d / --lr-g,
        else --lr, else ``lr_g`` (a step's own default for G, e.g. InfoGAN's), else the architecture's (SAGAN's
        TTUR) or the objective's (``GAN.optimizer_defaults``)."""
        m, c, tc = self.model, self.model.config, engine.cfg
        self.obj, self.c = m.objective, c
        self.regularisers = list(c.regularisers.values())  # in registration order: the order of their hooks
        for r in self.regularisers:
            r.setup(self)
        # --compile leaves eager a critic with a gradient penalty (its backward is differentiated again: compiled graphs
        # have no double backward) and a growing architecture (its fade-in would recompile the graph at every step), and
        # G where a regulariser asks (an annealed --g-layer-noise: a new std each step would recompile it too)
        growing = any(hasattr(mod, "set_progress") for mod in m.modules())
        self.G = engine.wrap(m.generator, compile=not (growing or any(r.eager_g for r in self.regularisers)))
        self.critic = critic  # unwrapped: --update-order simultaneous calls it on D's parameters before the update
        self.D = engine.wrap(critic, compile=not (growing or c.penalties()))
        lr_d, lr_g_default, betas = m.optimizer_defaults
        self.lr_d = c.lr_d or tc.lr or lr_d
        self.lr_g = c.lr_g or tc.lr or lr_g or lr_g_default
        engine.optimizer("d", d_params, lr=self.lr_d, betas=betas, kind=self.obj.optimizer)
        engine.optimizer("g", m.generator.parameters(), lr=self.lr_g, betas=betas, kind=self.obj.optimizer)

    # -- pieces ----------------------------------------------------------------------------------
    def _progress(self, x: Tensor) -> Tensor:
        """Tell the growing modules the images shown so far (D updates x global batch); one with ``reals`` also
        makes the real batch what its growing G can make now (ProGAN: lower resolution, faded in)."""
        shown = self.d_steps * self.engine.cfg.batch_size
        for mod in self.progressive:
            mod.set_progress(shown)
            x = mod.reals(x) if hasattr(mod, "reals") else x
        return x

    def _latent(self, b: int) -> Tensor:
        """This process's slice of the global batch's z (see ``_inputs``)."""
        return self._inputs(b)[0]

    def _inputs(self, b: int) -> Tuple[Tensor, Optional[Tensor]]:
        """This process's slice of the global batch's z, and of the labels of the fakes (class-conditional runs:
        uniform over the classes; else None), drawn from a stream fixed by (seed, D update), z first.

        So a run on N processes sees exactly the latents of a 1-process run on the union batch, and a resumed
        run the latents of an uninterrupted one.
        """
        info = self.engine.info
        gen = torch.Generator().manual_seed(self.engine.cfg.seed * 1_000_003 + self.d_steps)
        z = torch.randn(b * info.world_size, self.c.latent_dim, generator=gen)
        mine = slice(info.rank * b, (info.rank + 1) * b)
        if not self.classes:
            return z[mine].to(self.model.device), None
        y = torch.randint(self.classes, (b * info.world_size,), generator=gen)
        return z[mine].to(self.model.device), y[mine].to(self.model.device)

    def _g_inputs(self, b: int) -> Dict:
        """The generator's other random inputs, if it declares ``draw_inputs`` (StyleGAN: noise images, the second z
        and crossover layer of style mixing): drawn like z, for the global batch from a stream fixed by (seed,
        D update), this process's rows; {} for other generators."""
        draw = getattr(self.model.generator, "draw_inputs", None)
        if draw is None:
            return {}
        info, dev = self.engine.info, self.model.device
        gen = torch.Generator().manual_seed(self.engine.cfg.seed * 1_000_003 + self.d_steps + (1 << 40))
        rows = slice(info.rank * b, (info.rank + 1) * b)

        def mine(v):
            return [t[rows].to(dev) for t in v] if isinstance(v, list) else v[rows].to(dev)

        return {k: mine(v) for k, v in draw(b * info.world_size, gen, mixing=True).items()}

    def _noise(self, *xs):
        """D's inputs as the regularisers make them (instance noise), each in turn."""
        for r in self.regularisers:
            xs = r.d_inputs(self, xs)
        return xs

    def _d_loss(self, d_real: Tensor, d_fake: Tensor, flips=None) -> Tensor:
        """D's loss; ``flips``: (masks of the real and fake outputs whose targets are swapped) or None (label
        flipping)."""
        if flips is not None:
            return self.obj.d_loss_flipped(d_real, d_fake, *flips, self.c)
        return self.obj.d_loss(d_real, d_fake, self.state, self.c)

    def _flips(self, n_real: int, n_fake: int):
        """The regularisers' label flips of D's outputs this update (the first one that flips), or None."""
        for r in self.regularisers:
            masks = r.flips(self, n_real, n_fake)
            if masks is not None:
                return masks
        return None

    def _d_fakes(self, fake: Tensor, y: Optional[Tensor]):
        """The fakes D is shown and their labels, as the regularisers make them (experience replay)."""
        for r in self.regularisers:
            fake, y = r.d_fakes(self, fake, y)
        return fake, y

    def _g_loss(self, d_fake: Tensor, code: Optional[Tensor]) -> Tensor:
        return self.obj.g_loss(d_fake, code, self.c)

    def _all_mean(self, t: Tensor) -> Tensor:
        """The mean of ``t`` over the processes (``t`` itself on one process)."""
        info = self.engine.info
        if not info.distributed:
            return t
        t = t.clone()
        dist.all_reduce(t)
        return t / info.world_size

    def _d_before(self) -> Optional[Dict[str, Tensor]]:
        """--update-order simultaneous: a copy of the critic's parameters and buffers before D's update, for G's
        loss (None for the alternating order, where G's loss is taken against the updated D)."""
        if self.c.update_order != "simultaneous":
            return None
        return {**{n: p.detach().clone() for n, p in self.critic.named_parameters()},
                **{n: b.clone() for n, b in self.critic.named_buffers()}}

    def _g_critic(self, before: Optional[Dict[str, Tensor]], fake: Tensor, y_fake: Optional[Tensor],
                  real: Optional[Tensor] = None, y_real: Optional[Tensor] = None):
        """The critic's outputs on G's fakes: the current D (alternating), or D before this step's update
        (simultaneous; a functional call on the copy, so the real D gets neither gradient nor buffer change).
        ``real`` (GDPP): also D's representations of the reals and of the fakes."""
        args = (real, fake, (), (), y_real, y_fake, real is not None)
        if before is None:
            return self.D(*args)
        return functional_call(self.critic, before, args)

    def unrolled_g_loss(self, real: Tensor, fake: Tensor, steps: int, y_real: Optional[Tensor] = None,
                        y_fake: Optional[Tensor] = None, before: Optional[Dict[str, Tensor]] = None) -> Tensor:
        """Metz et al. 2017: G's loss against D after ``steps`` differentiable copies of D's own update.

        The copies start from D's current parameters (detached: the real D gets no gradient and no update
        from them), take D's optimizer step (Adam / RMSprop / SGD with its current moments) on this batch, and
        keep the graph to G's parameters through ``fake``, so G sees the discriminator's reaction to it.
        ``y_real`` / ``y_fake``: the labels of a class-conditional (concat or projection) D. ``before``
        (--update-order simultaneous): the critic's parameters and buffers before this step's D update, where the
        copies start (the optimizer moments are the updated ones).
        """
        d = self.model.discriminator
        opt = self.engine.optimizers["d"]
        group = opt.param_groups[0]
        named = dict(d.named_parameters())
        start = named if before is None else {n: before["d." + n] for n in named}
        params = {n: p.detach().requires_grad_(True) for n, p in start.items()}
        buffers = {n: (b if before is None else before["d." + n]).clone() for n, b in d.named_buffers()}
        state = {n: dict(opt.state.get(p, {})) for n, p in named.items()}
        real_in = (real,) if y_real is None else (real, y_real)
        fake_in = (fake,) if y_fake is None else (fake, y_fake)
        joint = self.critic.joint
        for _ in range(steps):
            if joint:  # one pass over [real; fake], as D's own update with --d-batches joint
                both = tuple(torch.cat([a, b]) for a, b in zip(real_in, fake_in))
                out = functional_call(d, (params, buffers), both)
                k = out.shape[0] * real.shape[0] // both[0].shape[0]
                d_real, d_fake = out[:k], out[k:]
            else:
                d_real = functional_call(d, (params, buffers), real_in)
                d_fake = functional_call(d, (params, buffers), fake_in)
            loss = self._d_loss(d_real, d_fake)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
            params = {n: differentiable_step(opt, group, p, g, state[n]) for (n, p), g in zip(params.items(), grads)}
        d_fake = functional_call(d, (params, buffers), fake_in)
        return self._g_loss(d_fake, None)

    # -- the step --------------------------------------------------------------------------------
    def __call__(self, batch):
        x, y_real = batch
        c, e = self.c, self.engine
        if self.progressive:
            x = self._progress(x)
        g_turn = (self.d_steps + 1) % c.n_critic == 0
        z, y_fake = self._inputs(x.shape[0])
        y_real = y_real.to(x.device).long() if self.classes else None
        with torch.set_grad_enabled(g_turn):
            g_in = self._g_inputs(x.shape[0])
            fake = self.G(z, **g_in) if y_fake is None else self.G(z, y_fake, **g_in)
        fake_d, y_shown = self._d_fakes(fake.detach(), y_fake)  # replay: some of them from past steps
        real_n, fake_n = self._noise(x, fake_d)
        penalties = [p for p in self.penalties if p.applies(self.d_steps)]  # lazy ones on every k-th update
        points = [p.sample(real_n, fake_n, self.pack) for p in penalties]
        with e.autocast():
            d_real, d_fake, gps, _, logits, _ = self.D(real_n, fake_n, points, tuple(p.target for p in penalties),
                                                    y_real, y_shown)
        d_real, d_fake = d_real.float(), d_fake.float()
        loss_d = self._d_loss(d_real, d_fake, self._flips(d_real.shape[0], d_fake.shape[0]))
        out = {"d_real": d_real.mean().detach(), "d_fake": d_fake.mean().detach()}
        if logits is not None:  # ACGAN: the class loss on the real batch and on the fakes
            class_d = acgan_d_class_loss(logits[0], y_real, logits[1], y_shown, c.ac_weight)
            out["class_loss_d"] = class_d.detach()
            loss_d = loss_d + class_d
        before = self._d_before() if g_turn else None
        loss_d = self._update_d(loss_d, out, penalties, gps, d_real, d_fake)
        if g_turn:
            (fake_g,) = self._noise(fake)
            if c.unroll_steps > 0:
                loss_g = self.unrolled_g_loss(real_n, fake_g, c.unroll_steps, y_real, y_fake, before)
            else:
                with e.autocast():
                    _, d_gen, _, code, logits, reps = self._g_critic(before, fake_g, y_fake,
                                                                     *((real_n, y_real) if self.reps else ()))
                loss_g = self._g_loss(d_gen.float(), code)
                if reps is not None:
                    loss_g = self._add_terms(loss_g, [r.g_loss_on_d(self, *reps) for r in self.regularisers])
                if logits is not None:
                    loss_g = loss_g + acgan_g_class_loss(logits[1], y_fake, c.ac_weight)
            self._update_g(loss_g)
        return self._logged(out, loss_d)

    def _add_terms(self, loss: Tensor, terms) -> Tensor:
        """``loss`` plus the regularisers' terms (None: a regulariser without one), in their order; each term's
        values are logged (``last``)."""
        for term in terms:
            if term is not None:
                loss = loss + term[0]
                self.last.update(term[1])
        return loss

    # -- the updates every GAN-family step shares (InfoGAN, SSGAN) -----------------------------------
    def _update_d(self, loss_d: Tensor, out: Dict, penalties, gps, d_real: Tensor, d_fake: Tensor) -> Tensor:
        """D's update: its loss plus each penalty (logged in ``out``), the optimizer step, WGAN's clipping, the
        objective's after-update hook (e.g. BEGAN's k_t); returns the full loss."""
        for p, gp in zip(penalties, gps):
            out[p.name] = gp.detach()
            loss_d = loss_d + p.step_weight * gp
        self.engine.update(loss_d, "d")
        self.d_steps += 1
        if self.obj.clip:
            clip_weights(self.model.discriminator, self.c.clip_value)
        out.update(self.obj.after_d(d_real, d_fake, self.state, self.c, self._all_mean))
        return loss_d

    def _update_g(self, loss_g: Tensor) -> None:
        """G's update: its loss plus the regularisers' terms on G's weights (BigGAN's orthogonal regularisation), the
        optimizer step, then each regulariser's after-update hook (the EMA of G)."""
        loss_g = self._add_terms(loss_g, [r.g_loss_on_weights(self) for r in self.regularisers])
        self.engine.update(loss_g, "g")
        self.last["loss_g"] = float(loss_g.detach())
        for r in self.regularisers:
            r.after_g(self)

    def _logged(self, out: Dict, loss_d: Tensor) -> Dict:
        """The step's log: D's loss (also as ``loss``), and G's last loss and the regularisers' terms once there
        are some."""
        out["loss_d"] = loss_d.detach()
        out["loss"] = loss_d.detach()
        for k in sorted(self.last, key=lambda k: k != "loss_g"):
            out[k] = torch.tensor(self.last[k])
        return out

    # -- evaluation and samples ------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, batches):
        data = self.engine.train_set
        if not hasattr(data, "means"):
            return {}
        from ..metrics.modes import modes

        s = modes(self.model, data, seed=self.engine.cfg.seed + 1)
        # reverse KL is undefined (None) when no sample is high-quality: leave it out of the float log
        return {k: s[k] for k in ("modes", "high_quality", "reverse_kl") if s[k] is not None}

    @torch.no_grad()
    def samples(self, n, generator):
        x = self.model.sample(max(n, 1000) if self.model.points else n, generator=generator)
        if self.model.points:
            from ..viz.toy import points_image

            return points_image(x.cpu(), self.engine.train_set, self.model,
                                title=f"step {self.engine.global_step}")
        return self.model.to_unit(x)

    def state_dict(self):
        parts = {r.part_name: r.state_dict(self) for r in self.regularisers}
        parts = {k: v for k, v in parts.items() if v}  # (runs without such a regulariser: the old family state)
        return {**self.state, "d_steps": self.d_steps, "last": dict(self.last), **({"parts": parts} if parts else {})}

    def load_state_dict(self, state):
        self.state = {k: type(v)(state.get(k, v)) for k, v in self.obj.init_state().items()}
        self.d_steps = int(state.get("d_steps", 0))
        self.last = dict(state.get("last", {}))
        for r in self.regularisers:
            r.load_state_dict(self, state.get("parts", {}).get(r.part_name, {}))

