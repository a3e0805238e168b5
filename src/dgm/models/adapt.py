"""Adversarial domain adaptation (Ganin & Lempitsky 2015, DANN; Tzeng et al. 2015; Tzeng et al. 2017): a feature
extractor F shared by a labelled source domain and an unlabelled target domain, a label classifier C on F's
features, and a domain discriminator D that tells the two domains apart from the features.

C learns the source labels; F is trained against D so that the features of the two domains look alike, and C
carries over to the target. ``--domain-loss`` picks how F plays against D (``dgm.objectives.adaptation``):
reverse (a gradient reversal layer), flip (D's loss with flipped labels), uniform (confusion: D's prediction to
[1/2, 1/2]) or none (the source-only baseline). ``--oracle`` trains C on the target's labels instead (the upper
bound). ``--adda-pretrain N`` is ADDA (Tzeng et al. 2017) in two stages: N steps on the source, then an untied
target encoder, initialised from F, trained against D with inverted labels while F and C stay frozen. F is a small
LeNet (two 5x5 convolutions with max pooling) on images and an MLP on 2-D points; the step is
``dgm.training.adapt_step``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import DgmError
from ..nn.blocks import evaluating, mlp
from ..objectives.adaptation import DOMAIN_LOSSES
from .base import MODELS, ImageModel, InputError, ModelConfig

SCHEDULES = ("dann", "constant")


@dataclass
class AdaptConfig(ModelConfig):
    data_kind: str = "domains"
    domain_loss: str = "reverse"      # reverse (DANN gradient reversal) | flip (flipped labels) | uniform (confusion) | none
    oracle: bool = False              # train the classifier on the target's labels (the upper bound; no domain loss)
    domain_weight: float = 1.0        # lambda's final value (the DANN schedule's scale)
    lambda_schedule: str = "dann"     # dann: lambda_p = w (2 / (1 + exp(-gamma p)) - 1), p = progress in [0, 1] | constant: w
    gamma: float = 10.0               # the lambda schedule's steepness
    lr_schedule: str = "dann"         # dann: lr_p = lr / (1 + 10 p)^0.75 | constant
    hidden: int = 0                   # units of C's and D's hidden layers and of F's MLP (0: 100 on images, 32 on points)
    filters: int = 32                 # F's first convolution's filters (images; the second has 1.5x)
    adda_pretrain: int = 0            # 0: one tied F | N > 0: ADDA, N steps on the source, then an untied target F (from the source F) against D with inverted labels, C and the source F frozen

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        """Small nets, and constant schedules: the contract resumes a 2-step run to 4 steps, and DANN's schedules
        follow --steps (p = step / --steps), so they differ between --steps 2 and 4 by design; a run resumed with its
        own --steps is bit for bit the uninterrupted one under them too (tests/test_adapt.py)."""
        return {"hidden": 8, "filters": 4, "lambda_schedule": "constant", "lr_schedule": "constant"}

    @classmethod
    def refuse_unused(cls, given: Dict[str, Any]) -> None:
        if given.get("oracle") and given.get("domain_loss") not in (None, "none"):
            raise DgmError(f"--oracle trains on the target's labels with no domain loss; drop --domain-loss "
                           f"{given['domain_loss']}")
        if given.get("domain_loss") == "none" or given.get("oracle"):
            unused = [k for k in ("domain_weight", "lambda_schedule", "gamma") if given.get(k) is not None]
            if unused:
                raise DgmError(f"{', '.join('--' + k.replace('_', '-') for k in unused)} weigh(s) a domain loss; "
                               "this run has none (--domain-loss none or --oracle): drop it")
        if given.get("adda_pretrain"):
            if given.get("oracle"):
                raise DgmError("--adda-pretrain trains a target encoder without target labels; drop --oracle")
            if given.get("domain_loss") not in (None, "flip"):
                raise DgmError(f"ADDA (--adda-pretrain) trains its target encoder with inverted labels (--domain-loss "
                               f"flip); drop --domain-loss {given['domain_loss']}")
            unused = [k for k in ("domain_weight", "lambda_schedule", "gamma") if given.get(k) is not None]
            if unused:
                raise DgmError(f"{', '.join('--' + k.replace('_', '-') for k in unused)}: ADDA's target encoder "
                               "minimises the inverted-label loss alone (no lambda); drop it")
        if given.get("lambda_schedule") == "constant" and given.get("gamma") is not None:
            raise DgmError("--gamma shapes the dann lambda schedule; --lambda-schedule constant has none: drop it")

    def __post_init__(self):
        for name, value, known in (("domain-loss", self.domain_loss, DOMAIN_LOSSES),
                                   ("lambda-schedule", self.lambda_schedule, SCHEDULES),
                                   ("lr-schedule", self.lr_schedule, SCHEDULES)):
            if value not in known:
                raise DgmError(f"--{name} must be one of {', '.join(known)}, got {value!r}")
        if self.hidden < 0 or self.filters < 1:
            raise DgmError(f"--hidden must be >= 0 and --filters >= 1, got {self.hidden} and {self.filters}")
        if self.domain_weight < 0 or self.gamma < 0:
            raise DgmError(f"--domain-weight and --gamma must be >= 0, got {self.domain_weight} and {self.gamma}")
        if self.data_kind != "domains":
            raise DgmError(f"adapt needs a domain pair (--data SOURCE:TARGET), got {self.data_kind} data")
        if self.adda_pretrain < 0:
            raise DgmError(f"--adda-pretrain must be >= 0 (0: joint training), got {self.adda_pretrain}")
        if self.oracle and self.adda_pretrain:
            raise DgmError("--adda-pretrain trains a target encoder without target labels; drop --oracle")
        if self.oracle:
            self.domain_loss = "none"
        if self.adda_pretrain:
            self.domain_loss = "flip"
        if self.hidden == 0:
            self.hidden = 32 if self.height == self.width == 1 else 100


class LeNet(nn.Module):
    """F on images: conv 5x5 (f filters) - ReLU - max-pool 2 - conv 5x5 (1.5 f) - ReLU - max-pool 2 - flatten
    (DANN's MNIST extractor, padded so that 8x8 digits fit)."""

    def __init__(self, channels: int, height: int, width: int, filters: int):
        super().__init__()
        f2 = filters * 3 // 2
        self.net = nn.Sequential(nn.Conv2d(channels, filters, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(filters, f2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.dim = f2 * (height // 4) * (width // 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@MODELS.register("adapt", help="domain adaptation (DANN, Ganin & Lempitsky 2015): features shared by a labelled source "
                 "and an unlabelled target, --domain-loss reverse|flip|uniform|none, ADDA with --adda-pretrain N; "
                 "--data SOURCE:TARGET; SGD (lr 0.01, momentum 0.9) with DANN's lambda and lr schedules by default")
class Adapt(ImageModel):
    """F (features), C (class logits) and D (domain logit); ``classify(x)`` gives C(F(x)) for either domain."""

    Config = AdaptConfig
    train_step = "adapt"
    data_kinds = ("domains",)
    input_scale = "pm1"  # images on [-1, 1]
    capabilities = ("adapt",)
    can_sample = False
    default_metrics = ("adaptation",)
    default_figure = "domains"
    summary_format = "val target accuracy {target_accuracy:.3f}, source accuracy {source_accuracy:.3f}"

    def __init__(self, config: AdaptConfig):
        super().__init__(config)
        c = config
        if not self.points and (c.height < 4 or c.width < 4):
            raise DgmError(f"adapt's LeNet needs images of at least 4x4, got {c.height}x{c.width}")
        self.feature_net = self._extractor()
        if c.adda_pretrain:  # ADDA's untied target encoder (its weights are the source F's at the end of pretraining)
            self.target_net = self._extractor()
        dim = self.feature_dim
        self.classifier = mlp([dim, c.hidden, max(c.num_classes, 1)], nn.ReLU)
        self.discriminator = mlp([dim, c.hidden, c.hidden, 1], nn.ReLU)

    def _extractor(self) -> nn.Module:
        c = self.config
        if self.points:
            net = mlp([c.channels, c.hidden, c.hidden], nn.ReLU)
            net.append(nn.ReLU())
            self.feature_dim = c.hidden
            return net
        net = LeNet(c.channels, c.height, c.width, c.filters)
        self.feature_dim = net.dim
        return net

    @property
    def adda(self) -> bool:
        """Two-stage ADDA: an untied target encoder (``target_net``)."""
        return bool(self.config.adda_pretrain)

    @property
    def points(self) -> bool:
        """2-D points (moons) rather than images: the data has no image shape."""
        return self.config.height == self.config.width == 1

    @property
    def abilities(self):
        return tuple(super().abilities) + (("points",) if self.points else ("images",))

    def check_x(self, x: Tensor) -> None:
        c = self.config
        want = (c.channels,) if self.points else (c.channels, c.height, c.width)
        if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != want or x.dim() != len(want) + 1:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"expected x of shape (B, {', '.join(map(str, want))}), got {got}")
        if x.is_complex() or not bool(torch.isfinite(x).all()):
            raise InputError("expected x to hold finite real numbers")

    def features(self, x: Tensor, domain: str = "source") -> Tensor:
        """F(x), (B, feature_dim) (unchecked; the step's path): ADDA's target encoder for ``domain`` "target"."""
        net = self.target_net if self.adda and domain == "target" else self.feature_net
        return net(x.to(next(self.parameters()).dtype))

    def domain_logit(self, f: Tensor) -> Tensor:
        """D's logit of "target" for features f, (B,)."""
        return self.discriminator(f).reshape(f.shape[0])

    @torch.no_grad()
    def encode(self, x: Tensor, domain: str = "source") -> Tensor:
        """F's features of inputs x of ``domain`` (checked; eval mode; one F for both but with ADDA)."""
        self.check_x(x)
        if domain not in ("source", "target"):
            raise InputError(f"domain must be 'source' or 'target', got {domain!r}")
        with evaluating(self):
            return self.features(x.to(self.device), domain)

    @torch.no_grad()
    def classify(self, x: Tensor, domain: str = "source") -> Tensor:
        """C(F(x)): (B, K) class logits of inputs x of ``domain`` (checked; eval mode)."""
        f = self.encode(x, domain)
        with evaluating(self):
            return self.classifier(f)

    def sample(self, n: int, y: Optional[Tensor] = None, generator: Optional[torch.Generator] = None, **kw):
        raise DgmError("an adapt run is a classifier and draws no samples; dgm sample RUN --figure domains shows its "
                       "predictions, dgm eval RUN --metric adaptation its accuracies")

    def to_unit(self, x: Tensor) -> Tensor:
        return ((x + 1) / 2).clamp(0, 1)


__all__ = ["Adapt", "AdaptConfig", "LeNet"]
