"""Training step of CLIP: the symmetric contrastive loss over the batch's image-caption pairs (batches are
(image, token ids): the captioned dataset's ``with_text`` copy, data/captions.py)."""
from __future__ import annotations

from typing import Dict

import torch

from ..nn.blocks import evaluating
from ..objectives.contrastive import clip_logits, clip_loss
from .distributed import gather_batch
from .steps import STEPS, ModelCall, TrainStep


def _batch_r1(logits: torch.Tensor) -> torch.Tensor:
    """Share of the batch's images whose own text has the highest logit (and texts whose own image does), averaged."""
    target = torch.arange(len(logits), device=logits.device)
    return ((logits.argmax(1) == target).double().mean() + (logits.argmax(0) == target).double().mean()) / 2


@STEPS.register("clip", help="CLIP: symmetric contrastive (InfoNCE) loss over a batch of image-caption pairs, "
                "learned temperature")
class ClipStep(TrainStep):
    best_key = "clip_loss"  # lower validation contrastive loss -> checkpoints/best.pt

    def setup(self, engine) -> None:
        super().setup(engine)
        self.forward = engine.wrap(ModelCall(self.model, "forward"))
        engine.optimizer("model", self.model.parameters())

    def __call__(self, batch) -> Dict[str, torch.Tensor]:
        x, ids = batch
        with self.engine.autocast():
            img, txt, scale = self.forward(x, ids)
        # under DDP every process scores the union batch (each pair against every process's other pairs), as CLIP
        img, txt = gather_batch(img, self.engine.info), gather_batch(txt, self.engine.info)
        loss = clip_loss(img, txt, scale)
        self.engine.update(loss, "model")
        with torch.no_grad():
            r1 = _batch_r1(clip_logits(img, txt, scale))
        return {"loss": loss.detach(), "clip_loss": loss.detach(), "logit_scale": scale.detach().float(),
                "batch_r1": r1}

    @torch.no_grad()
    def evaluate(self, batches) -> Dict[str, float]:
        """The contrastive loss and in-batch recall@1 on the validation split, averaged over its batches (of 256: a
        fixed batching, so values compare across runs)."""
        m, total, r1, n = self.model, 0.0, 0.0, 0
        with evaluating(m):
            for x, ids in batches:
                img, txt, scale = m(x, ids)
                total += float(clip_loss(img, txt, scale)) * len(x)
                r1 += float(_batch_r1(clip_logits(img, txt, scale))) * len(x)
                n += len(x)
        return {"clip_loss": total / max(n, 1), "batch_r1": r1 / max(n, 1)}

    def samples(self, n, generator):
        """No sample grid: CLIP draws no images (dgm sample RUN shows retrievals)."""
        return None
