"""The semi-supervised GAN step (Salimans et al. 2016): D learns K classes + "fake", G fools it.

Per engine step: one D update on a labelled batch (drawn with replacement from the run's fixed labelled subset,
``model.labelled_index``), the engine's batch of the training split used without its labels, and G's fakes:
loss_D = CE(labelled) - log D(real) - log(1 - D(fake)); then (every n_critic-th step) one G update, non-saturating
or feature matching. z comes from GANStep's stream fixed by (seed, D update) and the labelled indices from a second
such stream (each process takes its slice of the global batch), so resume and DDP see what one uninterrupted
process sees. Validation (and `dgm eval --metric accuracy`) measures the classifier's accuracy.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

from ..data.batching import collate
from ..nn.blocks import evaluating
from ..objectives import semisupervised as ss
from .gan_step import GANStep
from .steps import STEPS, TrainStep

_LABEL_STREAM = 2 ** 41  # offset of the labelled indices' stream from z's (seed * 1_000_003 + D update)


class _ClassCritic(nn.Module):
    """D's class logits and last hidden features of up to three batches in one forward (one DDP forward per
    backward): [(logits, features) or None for each of labelled, unlabelled, fake]."""

    def __init__(self, model):
        super().__init__()
        self.d = model.discriminator
        object.__setattr__(self, "model", model)  # called, not registered: D's parameters come via d

    def forward(self, *xs: Optional[Tensor]):
        return [None if x is None else self.model.logits_and_features(x) for x in xs]


@STEPS.register("ssgan", help="semi-supervised GAN: (K+1)-class D on labelled, unlabelled and fake images")
class SSGANStep(GANStep):

    def setup(self, engine) -> None:
        TrainStep.setup(self, engine)
        m, c = self.model, self.model.config
        self._wire(engine, _ClassCritic(m), m.discriminator.parameters())
        self.penalties, self.pack = [], 1
        self.state, self.d_steps, self.last = {}, 0, {}
        from ..models.ssgan import labelled_subset

        # a new run draws its subset here; a resumed one gets the saved buffer back from the checkpoint afterwards
        subset = labelled_subset(engine.train_set.labels, c.labels_per_class, c.num_classes, c.label_seed)
        m.labelled_index.copy_(subset.to(m.labelled_index.device))

    def _labelled(self, b: int):
        """This process's slice of a global batch of labelled images, indices drawn with replacement from the
        labelled subset by a stream fixed by (seed, D update)."""
        info, e = self.engine.info, self.engine
        gen = torch.Generator().manual_seed(e.cfg.seed * 1_000_003 + self.d_steps + _LABEL_STREAM)
        pick = torch.randint(0, len(self.model.labelled_index), (b * info.world_size,), generator=gen)
        ids = self.model.labelled_index.cpu()[pick[info.rank * b:(info.rank + 1) * b]].tolist()
        x, y = collate([e.train_set[i] for i in ids])
        return x.to(self.model.device), y.to(self.model.device)

    def __call__(self, batch):
        x, _ = batch  # the unlabelled batch: the labels of the training split are not used here
        c, e = self.c, self.engine
        g_turn = (self.d_steps + 1) % c.n_critic == 0
        xl, yl = self._labelled(x.shape[0])
        z = self._latent(x.shape[0])
        with torch.set_grad_enabled(g_turn):
            fake = self.G(z)
        xl_n, x_n, fake_n = self._noise(xl, x, fake.detach())
        with e.autocast():
            (l_lab, _), (l_real, f_real), (l_fake, _) = self.D(xl_n, x_n, fake_n)
        l_lab, l_real, l_fake = l_lab.float(), l_real.float(), l_fake.float()
        sup = ss.supervised_loss(l_lab, yl)
        unsup = ss.unsupervised_loss(l_real, l_fake)
        loss_d = sup + unsup
        e.update(loss_d, "d")
        self.d_steps += 1
        out = {"loss_sup": sup.detach(), "loss_unsup": unsup.detach(),
               "train_label_accuracy": (l_lab.argmax(1) == yl).float().mean().detach(),
               "d_real": ss.real_probability(l_real).mean().detach(),
               "d_fake": ss.real_probability(l_fake).mean().detach()}
        if g_turn:
            (fake_g,) = self._noise(fake)
            with e.autocast():
                if c.feature_matching:  # D's features of this step's real batch (updated D), no gradient to D
                    _, (_, f_real), (_, f_gen) = self.D(None, x_n, fake_g)
                    loss_g = ss.feature_matching(f_real.detach().float(), f_gen.float())
                else:
                    _, _, (l_gen, _) = self.D(None, None, fake_g)
                    loss_g = ss.generator_loss(l_gen.float())
            self._update_g(loss_g)
        return self._logged(out, loss_d)

    @torch.no_grad()
    def evaluate(self, batches):
        """Validation accuracy of the classifier (argmax over the K real classes)."""
        m = self.model
        correct = total = 0
        with evaluating(m):
            for x, y in batches:
                correct += int((m.classify(x).argmax(1) == y.to(m.device)).sum())
                total += len(y)
        return {"accuracy": correct / max(total, 1)}

    def state_dict(self):
        return {"d_steps": self.d_steps, "last": dict(self.last)}

    def load_state_dict(self, state):
        self.d_steps = int(state.get("d_steps", 0))
        self.last = dict(state.get("last", {}))
