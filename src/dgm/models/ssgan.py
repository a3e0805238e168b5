"""Semi-supervised GAN (Salimans et al. 2016, sec. 5): D is a (K+1)-class classifier -- K real classes and "fake".

D's head gives K logits l_1..l_K; the fake class's logit is fixed at 0 (the paper's parametrisation), so D(x) =
Z(x) / (Z(x) + 1), Z = sum_k exp l_k, and the classifier is argmax_k l_k. It is trained on N labelled images per
class (a fixed subset of the training split, drawn with --label-seed and kept in the checkpoint as the buffer
``labelled_index``), on the whole training split without labels, and on G's samples; the losses are in
``objectives.semisupervised`` and the step in ``training.ssgan_step``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import DgmError
from .base import MODELS
from .gan import GAN, GANConfig
from .infogan import _refuse_shared_d_options


@dataclass(init=False)  # GANConfig.__init__ takes the parts' options flat too
class SSGANConfig(GANConfig):
    # semi-supervised GAN (Salimans et al. 2016)
    labels_per_class: int = 10        # N labelled training images per class (the rest is used without labels)
    label_seed: int = 0               # seed of the labelled subset (kept in the run: resume and eval use the same)
    feature_matching: bool = False    # G minimises ||E f(real) - E f(G(z))||^2 on D's last hidden layer

    @classmethod
    def tiny(cls):
        return {**super().tiny(), "labels_per_class": 2}

    def __post_init__(self):
        super().__post_init__()
        self.refuse_gan_step_options("ssgan")
        if self.num_classes < 2:
            raise DgmError("ssgan needs a labelled dataset (its classifier learns the dataset's classes); this data "
                           "has no labels: use digits, mnist, fashion-mnist or cifar10")
        if self.labels_per_class < 1:
            raise DgmError(f"--labels-per-class must be >= 1, got {self.labels_per_class}")
        if self.objective != "non-saturating":
            raise DgmError(f"ssgan trains D with the paper's (K+1)-class loss and G non-saturating or with "
                           f"--feature-matching; --objective {self.objective} does not apply: drop it")
        _refuse_shared_d_options(self, "ssgan", "the classifier reads D's features of each sample")


def labelled_subset(labels: Tensor, per_class: int, num_classes: int, seed: int) -> Tensor:
    """Indices (num_classes * per_class,) of ``per_class`` examples of each class, drawn without replacement by a
    generator seeded with ``seed`` (class 0 first); a one-line DgmError when a class has fewer examples."""
    labels = torch.as_tensor(labels)
    counts = torch.bincount(labels, minlength=num_classes)[:num_classes]
    if int(counts.min()) < per_class:
        k = int(counts.argmin())
        raise DgmError(f"--labels-per-class {per_class}: class {k} has only {int(counts[k])} training images; use "
                       f"--labels-per-class <= {int(counts.min())}")
    gen = torch.Generator().manual_seed(seed)
    out = []
    for k in range(num_classes):
        idx = torch.nonzero(labels == k).reshape(-1)
        out.append(idx[torch.randperm(len(idx), generator=gen)[:per_class]])
    return torch.cat(out)


@MODELS.register("ssgan", help="semi-supervised GAN (Salimans et al. 2016): a (K+1)-class D trained on N labelled "
                 "images per class (--labels-per-class N), the unlabelled rest and fakes; dgm eval --metric accuracy")
class SSGAN(GAN):
    """A GAN whose D has K class logits (fake logit fixed at 0); ``classify(x)`` gives them."""

    Config = SSGANConfig
    train_step = "ssgan"
    data_kinds = ("images",)
    capabilities = ("classify",)
    summary_format = "val accuracy {accuracy:.4f}"

    def __init__(self, config: SSGANConfig):
        super().__init__(config)
        d = self.discriminator
        if not d.split:
            raise DgmError(f"ssgan needs a discriminator with features/head (--arch {config.arch} has none)")
        head = nn.Linear(d.head.in_features, config.num_classes)  # K real-class logits in place of one score
        d.body.set_head(head) if hasattr(d.body, "set_head") else setattr(d.body, "head", head)
        self.register_buffer("labelled_index", torch.zeros(config.num_classes * config.labels_per_class,
                                                           dtype=torch.long))

    @property
    def default_metrics(self):
        return ("accuracy",)

    def logits_and_features(self, x: Tensor):
        """(K class logits (n, K), D's last hidden features (n, F)) of images x in [-1, 1]."""
        h = self.discriminator.representation(x)
        return self.discriminator.head(h), h

    def classify(self, x: Tensor) -> Tensor:
        """The K real-class logits l(x) (n, K) of images x in [-1, 1]; the class is their argmax."""
        self.check_shape(x)
        return self.logits_and_features(x.to(self.device))[0]


__all__ = ["SSGAN", "SSGANConfig", "labelled_subset"]
