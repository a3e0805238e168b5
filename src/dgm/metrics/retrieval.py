"""Text-image retrieval of a CLIP run (issue 37): recall@1 and recall@5 both ways on a captioned split.

Several images share a caption (a one-item caption such as "a small three top left" recurs), so a hit is a
retrieved item whose caption *equals* the query's:

* text -> image: one query per distinct caption of the split; the candidates are all its images; a hit at k when
  any of the k images most similar to the caption has that caption;
* image -> text: one query per image; the candidates are the split's distinct captions (duplicates would embed
  identically and fill the top k with one text); a hit at k when the image's own caption is among the k most
  similar captions.

Similarity is the cosine of the unit-norm embeddings (the logit scale does not change a ranking). Ties are broken by
index order (``torch.topk`` on CPU).
"""
from __future__ import annotations

from typing import Dict, Sequence

import torch
from torch import Tensor

from ..data.batching import dataset_batches
from ..data.image import fixed_draw
from ..errors import DgmError
from ..nn.blocks import evaluating
from ..options import Option
from .registry import Metric, register

KS = (1, 5)


def recall_at_k(scores: Tensor, correct: Tensor, ks: Sequence[int] = KS) -> Dict[int, float]:
    """k -> the share of queries (rows of ``scores``, (Q, C)) with a correct candidate (``correct``, (Q, C) bool)
    among their k highest-scoring candidates (k capped at C)."""
    out = {}
    for k in ks:
        top = scores.topk(min(k, scores.shape[1]), dim=1).indices
        out[k] = float(correct.gather(1, top).any(1).double().mean()) if len(scores) else float("nan")
    return out


def retrieval_from_embeddings(images: Tensor, texts: Tensor, caption_ids: Tensor) -> Dict[str, float]:
    """Recall@1/@5 both ways from (N, d) unit-norm image embeddings, (U, d) embeddings of the distinct captions and
    (N,) the index in 0..U-1 of each image's caption (see the module docstring for the protocol)."""
    sim = texts.double() @ images.double().T  # (U, N)
    match = caption_ids[None, :] == torch.arange(len(texts))[:, None]  # (U, N): image n has caption u
    t2i = recall_at_k(sim, match)
    i2t = recall_at_k(sim.T, match.T)
    out = {}
    for k in KS:
        out[f"text_to_image_r{k}"] = t2i[k]
    for k in KS:
        out[f"image_to_text_r{k}"] = i2t[k]
    return out


@torch.no_grad()
def retrieval(model, dataset, batch_size: int = 256, progress: bool = False, seed: int = 0,
              captions: str = "all") -> Dict[str, float]:
    """Recall@1/@5 text -> image and image -> text of a model with the ``text_image`` capability (clip) on a
    captioned split; ``captions``: all its images, or only those whose items are all seen in training ("seen") or
    that hold an unseen combination ("unseen"; the test split's second half)."""
    if "text_image" not in model.capabilities:
        raise DgmError(f"the retrieval metric is for text-image models (clip); this is a {type(model).__name__}")
    if not hasattr(dataset, "captions"):
        raise DgmError(f"the retrieval metric needs a captioned dataset; {getattr(dataset, 'name', 'this')} has none")
    keep = torch.ones(len(dataset), dtype=torch.bool) if captions == "all" else \
        dataset.unseen.clone() if captions == "unseen" else ~dataset.unseen
    idx = keep.nonzero().flatten()
    if len(idx) == 0:
        raise DgmError(f"--captions {captions}: the {dataset.split} split has no such images (unseen combinations "
                       "are in the test split only); use --split test or --captions all")
    data = fixed_draw(dataset, torch.Generator().manual_seed(seed))
    x_all = data.tensors()[0][idx]
    texts = [dataset.captions[i] for i in idx.tolist()]
    distinct = list(dict.fromkeys(texts))
    number = {t: u for u, t in enumerate(distinct)}
    caption_ids = torch.tensor([number[t] for t in texts])
    with evaluating(model):
        img = torch.cat([model.embed_images(x).cpu() for x, _ in
                         dataset_batches(torch.utils.data.TensorDataset(x_all, caption_ids), batch_size, model.device,
                                         progress)])
        txt = torch.cat([model.embed_texts(distinct[s:s + batch_size]).cpu()
                         for s in range(0, len(distinct), batch_size)])
    out = retrieval_from_embeddings(img, txt, caption_ids)
    return {**out, "retrieval_images": len(idx), "retrieval_captions": len(distinct), "captions": captions}


CAPTIONS = Option("captions", str, "all", "retrieval: the images measured: all, those of seen item combinations only, "
                  "or those with an unseen combination (test split)", choices=("all", "seen", "unseen"))

register(Metric("retrieval", "run", retrieval, options=("seed", CAPTIONS),
                help="clip: recall@1 and @5 text->image and image->text (a hit: the retrieved item's caption equals "
                "the query's)"))
