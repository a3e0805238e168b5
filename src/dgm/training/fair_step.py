"""The fair-representation step (``dgm.models.fair``): one update of the adversary on the detached codes, then one
of the encoder, classifier and decoder against the updated adversary (Adam, 1e-3 unless --lr).

Logged: loss (the encoder side's), loss_class (the classifier's cross-entropy), adv_objective (LAFTR's L_adv, or the
adversary's cross-entropy), adv_acc (the adversary's accuracy on a), class_acc, and rec (with a decoder)."""
from __future__ import annotations

import itertools
from typing import Dict

import torch
import torch.nn.functional as F

from ..errors import DgmError
from ..objectives.fairness import adversary_losses
from .steps import STEPS, ModelCall, TrainStep


@STEPS.register("fair", help="fair representations: an adversary on the code (LAFTR's l1 or cross-entropy), then "
                "the encoder and classifier against it")
class FairStep(TrainStep):
    best_key = None  # accuracy and fairness trade off: no single number selects a checkpoint

    def setup(self, engine) -> None:
        super().setup(engine)
        if not hasattr(engine.train_set, "sensitive"):
            name = getattr(engine.train_set, "name", "this dataset")
            raise DgmError(f"fair needs rows with a sensitive attribute (--data adult or fair-toy); {name} has none")
        m = self.model
        parts = [m.encoder, m.classifier] + ([m.decoder] if m.decoder is not None else [])
        self.forward = engine.wrap(ModelCall(m, "terms", modules=parts))
        self.adv = engine.wrap(ModelCall(m, "adversary_logit", modules=[m.adversary]))
        lr = engine.cfg.lr or 1e-3
        engine.optimizer("model", itertools.chain(*(p.parameters() for p in parts)), lr=lr)
        engine.optimizer("adv", m.adversary.parameters(), lr=lr)

    def __call__(self, batch) -> Dict[str, torch.Tensor]:
        x, ya = batch
        y, a = ya[:, 0], ya[:, 1]
        m, e, c = self.model, self.engine, self.model.config
        with e.autocast():
            t = self.forward(x, a)
        z = t["z"]
        for _ in range(c.adv_steps):
            with e.autocast():
                logit_a = self.adv(z.detach(), y).float()
            loss_adv, _ = adversary_losses(logit_a, a, y, c.fairness, c.adversary)
            e.update(loss_adv, "adv")
        loss_class = F.binary_cross_entropy_with_logits(t["logit"].float(), y.float())
        loss = loss_class
        logs = {}
        if c.fair_weight > 0:  # with gamma 0 the adversary never reaches the encoder
            with e.autocast():
                logit_a = self.adv(z, y).float()
            _, enc_term = adversary_losses(logit_a, a, y, c.fairness, c.adversary)
            loss = loss + c.fair_weight * enc_term
        if m.decoder is not None:
            rec = t["rec"].float().mean()
            loss = loss + c.recon_weight * rec
            logs["rec"] = rec.detach()
        e.update(loss, "model")
        with torch.no_grad():
            adv_acc = ((logit_a.detach() > 0).long() == a).double().mean()
            class_acc = ((t["logit"].detach() > 0).long() == y).double().mean()
        return {"loss": loss.detach(), "loss_class": loss_class.detach(), "adv_objective": -loss_adv.detach(),
                "adv_acc": adv_acc, "class_acc": class_acc, **logs}

    @torch.no_grad()
    def evaluate(self, batches) -> Dict[str, float]:
        from ..metrics.fairness import fairness_of

        xs, ys = zip(*[(x, ya) for x, ya in batches])
        x, ya = torch.cat(xs), torch.cat(ys)
        return fairness_of(self.model, x, ya[:, 0], ya[:, 1])

    def samples(self, n, generator):
        return None
