"""The domain-adaptation step (``dgm.models.adapt``): each batch is a source half with labels and a target half
without (``dgm.data.domains``: B pairs give B source and B target examples).

One step: F's features of both halves; D minimises its domain loss on the detached features (optimizer "domain");
then F and C (optimizer "model") minimise the class loss on the source labels (the target's with --oracle) plus
the adversarial term of ``--domain-loss`` against the updated D:

* reverse: D's loss through the gradient reversal layer, so F receives exactly -lambda times D's gradient (DANN);
* flip: lambda times D's loss with the domain labels flipped; uniform: lambda times the cross-entropy of D's
  prediction to [1/2, 1/2]; none: nothing (D is still fitted, for the logged domain accuracy).

ADDA (--adda-pretrain N, Tzeng et al. 2017): the first N steps are the source-only step above; from step N on an
untied target encoder, initialised from F, is trained against D with inverted labels (optimizer "target") while F
and C stay frozen. Its optimizers are Adam with beta1 0.5 (as ADDA) at lr 1e-3; with SGD the target encoder
collapsed on the moons (every target point on one class).

DANN's schedules (Ganin & Lempitsky 2015, sec. 5.2) by default, with p = step / --steps the training progress:
lambda_p = w (2 / (1 + exp(-gamma p)) - 1) and lr_p = lr / (1 + 10 p)^0.75; SGD with momentum 0.9 and lr 0.01
(--lr, --optimizer, --beta1 override). Both schedules follow --steps, so a run resumed with a larger --steps
continues on the stretched schedule. Logged: loss (the class loss), loss_class, loss_domain (D's), domain_acc (D's
accuracy on the batch), class_acc, lambda (the step's), lr (the engine's: F's and C's rate after the step, i.e. of
the next one); validation: source_accuracy, target_accuracy, domain_acc.
"""
from __future__ import annotations

import itertools
from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..objectives.adaptation import (dann_lambda, dann_lr_factor, domain_accuracy, domain_loss, flipped_loss,
                                     inverted_label_loss, reverse_gradient, uniform_loss)
from .steps import STEPS, TrainStep

LR, MOMENTUM = 0.01, 0.9  # DANN's mu_0 and SGD momentum
ADDA_LR = 1e-3  # ADDA: Adam with beta1 0.5 as Tzeng et al. 2017 (their rate, 2e-4, is slower than needed on the moons)


class _FeaturesAndClasses(nn.Module):
    """(F(x), C(F(x))) in one forward (DDP: one forward per backward)."""

    def __init__(self, model):
        super().__init__()
        self.feature_net, self.classifier = model.feature_net, model.classifier

    def forward(self, x: Tensor):
        f = self.feature_net(x)
        return f, self.classifier(f)


class _Domain(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.discriminator = model.discriminator

    def forward(self, f: Tensor) -> Tensor:
        return self.discriminator(f).reshape(f.shape[0])


def adversarial_loss(kind: str, d_source: Tensor, d_target: Tensor) -> Tensor:
    """F's term of ``--domain-loss kind`` on D's logits (before lambda; reverse: D's own loss, which reaches F
    reversed and scaled by the layer in front of D)."""
    if kind == "reverse":
        return domain_loss(d_source, d_target)
    if kind == "flip":
        return flipped_loss(d_source, d_target)
    if kind == "uniform":
        return uniform_loss(d_source, d_target)
    raise ValueError(f"no adversarial term for domain loss {kind!r}")


def feature_loss(kind: str, discriminator, f: Tensor, b: int, lam: float) -> Tensor:
    """The adversarial term F minimises for features f (source rows :b, target rows b:): reverse passes f through
    the gradient reversal layer (lam applied there), flip and uniform weigh their loss by lam."""
    if kind == "reverse":
        d = discriminator(reverse_gradient(f, lam)).float()
        return adversarial_loss(kind, d[:b], d[b:])
    d = discriminator(f).float()
    return lam * adversarial_loss(kind, d[:b], d[b:])


@STEPS.register("adapt", help="domain adaptation: class loss on the source, a domain discriminator on the features "
                "of both domains, --domain-loss reverse|flip|uniform|none; DANN's lambda and lr schedules")
class AdaptStep(TrainStep):
    best_key = None

    def setup(self, engine) -> None:
        super().setup(engine)
        m, tc = self.model, engine.cfg
        self.c = m.config
        self.FC = engine.wrap(_FeaturesAndClasses(m))
        self.D = engine.wrap(_Domain(m))
        self.T = engine.wrap(m.target_net) if m.adda else None
        decay = (lambda s: dann_lr_factor(self.progress(s))) if self.c.lr_schedule == "dann" else None
        parts = [("model", itertools.chain(m.feature_net.parameters(), m.classifier.parameters())),
                 ("domain", m.discriminator.parameters())]
        if m.adda:  # the target encoder's own (its schedule counts its own updates, from the start of stage two)
            parts.append(("target", m.target_net.parameters()))
        kind, lr, betas = ("adam", ADDA_LR, (0.5, 0.999)) if m.adda else ("sgd", LR, (MOMENTUM, 0.999))
        for name, params in parts:
            engine.optimizer(name, params, lr=tc.lr if tc.lr is not None else lr, betas=betas, kind=kind, decay=decay)
        self.steps = 0

    def progress(self, step: int) -> float:
        """p = step / --steps, in [0, 1]."""
        return min(step / max(self.engine.total_steps, 1), 1.0)

    def lam(self, step: int) -> float:
        """lambda at ``step``: w (2 / (1 + exp(-gamma p)) - 1) (dann) or w (constant)."""
        c = self.c
        return c.domain_weight * (dann_lambda(self.progress(step), c.gamma) if c.lambda_schedule == "dann" else 1.0)

    def __call__(self, batch) -> Dict[str, Tensor]:
        if self.model.adda and self.steps >= self.c.adda_pretrain:
            return self._adda(batch)
        return self._joint(batch, "none" if self.model.adda else self.c.domain_loss)

    def _adda(self, batch) -> Dict[str, Tensor]:
        """ADDA's second stage (Tzeng et al. 2017): the target encoder, a copy of the source F at the first step of
        the stage, is trained against D with inverted labels (its features called source: BCE(l_t, 0)); D learns
        source F's features of the source against the target encoder's of the target; F and C stay frozen."""
        x, y = batch
        e, m = self.engine, self.model
        b = x.shape[0]
        if self.steps == self.c.adda_pretrain:
            with torch.no_grad():
                m.target_net.load_state_dict(m.feature_net.state_dict())
        with torch.no_grad(), e.autocast():
            fs, logits = self.FC(x[:, 0])
        with e.autocast():
            ft = self.T(x[:, 1])
            d = self.D(torch.cat([fs, ft.detach()]))
        d = d.float()
        loss_d = domain_loss(d[:b], d[b:])
        acc = domain_accuracy(d[:b], d[b:])
        e.update(loss_d, "domain")
        with e.autocast():
            g = self.D(ft)
        loss_t = inverted_label_loss(g.float())
        e.update(loss_t, "target")
        self.steps += 1
        loss_class = F.cross_entropy(logits.float(), y[:, 0])
        return {"loss": loss_class.detach(), "loss_class": loss_class.detach(), "loss_domain": loss_d.detach(),
                "domain_acc": acc, "lambda": torch.tensor(1.0), "class_acc": (logits.argmax(1) == y[:, 0]).float().mean()}

    def _joint(self, batch, kind: str) -> Dict[str, Tensor]:
        x, y = batch
        e, c = self.engine, self.c
        b = x.shape[0]
        lam = self.lam(self.steps)
        with e.autocast():
            f, logits = self.FC(torch.cat([x[:, 0], x[:, 1]]))
        f, logits = f.float(), logits.float()
        labels, rows = (y[:, 1], logits[b:]) if c.oracle else (y[:, 0], logits[:b])  # the target's: --oracle only
        loss_class = F.cross_entropy(rows, labels)
        with e.autocast():
            d = self.D(f.detach())
        d = d.float()
        loss_d = domain_loss(d[:b], d[b:])
        acc = domain_accuracy(d[:b], d[b:])
        e.update(loss_d, "domain")
        loss = loss_class
        if kind != "none":
            with e.autocast():
                loss = loss_class + feature_loss(kind, self.D, f, b, lam)
        e.update(loss, "model")
        self.steps += 1
        return {"loss": loss_class.detach(), "loss_class": loss_class.detach(), "loss_domain": loss_d.detach(),
                "domain_acc": acc, "lambda": torch.tensor(lam),
                "class_acc": (rows.argmax(1) == labels).float().mean()}

    @torch.no_grad()
    def evaluate(self, batches) -> Dict[str, float]:
        """Accuracy of C on the validation split's source and target inputs, and D's domain accuracy."""
        m = self.model
        hits = {"source": 0, "target": 0, "domain": 0.0}
        n = 0
        was = m.training
        m.eval()
        try:
            for x, y in batches:
                b = x.shape[0]
                f = torch.cat([m.features(x[:, 0], "source"), m.features(x[:, 1], "target")])
                pred = m.classifier(f).argmax(1)
                hits["source"] += int((pred[:b] == y[:, 0]).sum())
                hits["target"] += int((pred[b:] == y[:, 1]).sum())
                d = m.domain_logit(f).float()
                hits["domain"] += float(domain_accuracy(d[:b], d[b:])) * b
                n += b
        finally:
            m.train(was)
        n = max(n, 1)
        return {"source_accuracy": hits["source"] / n, "target_accuracy": hits["target"] / n,
                "domain_acc": hits["domain"] / n}

    def samples(self, n, generator):
        return None  # a classifier: no sample grid (dgm sample RUN --figure domains)

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = int(state.get("steps", 0))


__all__ = ["AdaptStep", "adversarial_loss", "feature_loss"]
