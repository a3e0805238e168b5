"""Adversary losses for fair representations (seed 002, part II "Learning fair representations").

LAFTR (Madras et al. 2018, sec. 3-4): an adversary h(z) in [0, 1] guesses the sensitive attribute a from the code;
its group-normalised l1 objective is

    DP:  L_adv = 2 - sum_{i in {0,1}}      mean_{(x,a) in D_i}    |h(z) - a|
    EO:  L_adv = 4 - sum_{i,j in {0,1}}    mean_{(x,a,y) in D_i^j} |h(z, y) - a|

(D_i: the examples with a = i; D_i^j: with a = i and y = j; for EO the adversary also reads y). The adversary
maximises L_adv, the encoder and classifier minimise L_C + gamma L_adv (+ beta L_rec). The cross-entropy adversary
(Edwards & Storkey 2016) minimises CE(h, a) while the encoder maximises it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def groups(a: Tensor, y: Tensor, fairness: str) -> Tensor:
    """The group of each example: a (dp) or 2 a + y (eo)."""
    return a.long() if fairness == "dp" else 2 * a.long() + y.long()


def laftr_objective(h: Tensor, a: Tensor, y: Tensor, fairness: str) -> Tensor:
    """L_adv: (number of groups) - sum over the groups present of mean |h - a| (h in [0, 1]); a group absent from
    the batch adds neither its term nor its constant."""
    g = groups(a, y, fairness)
    err = (h - a.to(h.dtype)).abs()
    total = h.new_zeros(())
    for k in g.unique():
        total = total + 1 - err[g == k].mean()
    return total


def adversary_losses(logit: Tensor, a: Tensor, y: Tensor, fairness: str, kind: str):
    """(the adversary's loss to minimise, the encoder's adversarial term to minimise) on the adversary's logits:
    l1 (LAFTR): (-L_adv, L_adv) with h = sigmoid(logit); ce: (CE(logit, a), -CE(logit, a))."""
    if kind == "l1":
        objective = laftr_objective(torch.sigmoid(logit), a, y, fairness)
        return -objective, objective
    ce = F.binary_cross_entropy_with_logits(logit, a.to(logit.dtype))
    return ce, -ce


__all__ = ["groups", "laftr_objective", "adversary_losses"]
