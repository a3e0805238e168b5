"""InfoGAN (Chen et al. 2016): G(z, c) with a categorical code c and continuous codes c', and a head Q(c | x) on
D's body that recovers them; training maximises the mutual-information lower bound L_I (``objectives.info``).

G's input is [z, one_hot(c), c'] (latent_dim + K + N numbers), c ~ Cat(1/K), c'_j ~ U[-1, 1]. Q shares D's body
(``Discriminator.representation``) and adds FC 128 - LeakyReLU(0.1) - FC to K categorical logits and N Gaussian
means (unit standard deviation, fixed). The train step is ``training.info_step``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import DgmError
from ..nn.blocks import evaluating
from ..objectives import OBJECTIVES
from .base import MODELS, InputError
from .gan import GAN, GANConfig

Q_HIDDEN = 128  # the paper's MNIST Q: FC 128 after D's shared layers


@dataclass(init=False)  # GANConfig.__init__ takes the parts' options flat too
class InfoGANConfig(GANConfig):
    # InfoGAN (Chen et al. 2016)
    cat_codes: int = 10               # K: values of the categorical code c (one-hot into G; 0: none)
    cont_codes: int = 2               # N: continuous codes c'_j ~ U[-1, 1] (0: none)
    info_weight: float = 1.0          # lambda of the mutual-information term L_I, for G and Q

    @classmethod
    def tiny(cls):
        return {**super().tiny(), "cat_codes": 3, "cont_codes": 1}

    def __post_init__(self):
        super().__post_init__()
        self.refuse_gan_step_options("infogan")
        if self.cat_codes < 0 or self.cont_codes < 0:
            raise DgmError(f"--cat-codes and --cont-codes must be >= 0, got {self.cat_codes} and {self.cont_codes}")
        if self.cat_codes == 0 and self.cont_codes == 0:
            raise DgmError("infogan needs a code to learn: give --cat-codes K >= 2 and/or --cont-codes N >= 1 "
                           "(without codes train a plain gan)")
        if self.cat_codes == 1:
            raise DgmError("--cat-codes 1 is a constant code (no information); use K >= 2 or 0 for none")
        if not self.info_weight >= 0:
            raise DgmError(f"--info-weight must be >= 0, got {self.info_weight}")
        _refuse_shared_d_options(self, "infogan", "Q reads D's features of each sample")


def _refuse_shared_d_options(c: GANConfig, name: str, why: str) -> None:
    """Options a head on D's per-sample representation cannot take (one line each)."""
    if OBJECTIVES.get(c.objective).kind == "energy":
        raise DgmError(f"{name} needs a scoring discriminator ({why}); {c.objective} has an auto-encoder D: choose "
                       "another --objective")
    if c.pack > 1:
        raise DgmError(f"--pack {c.pack}: {name} needs one D output per sample ({why}); drop --pack")
    if c.unroll_steps:
        raise DgmError(f"--unroll-steps is not supported by {name}; drop it")
    if getattr(c, "conditional", False):
        raise DgmError(f"--conditional is not supported by {name}; drop it")


class QHead(nn.Module):
    """Q(c | x) on D's representation h: (categorical logits (n, K), continuous means (n, N))."""

    def __init__(self, features: int, cat: int, cont: int):
        super().__init__()
        self.cat = cat
        self.net = nn.Sequential(nn.Linear(features, Q_HIDDEN), nn.LeakyReLU(0.1), nn.Linear(Q_HIDDEN, cat + cont))

    def forward(self, h: Tensor) -> Tuple[Tensor, Tensor]:
        out = self.net(h)
        return out[:, :self.cat], out[:, self.cat:]


@MODELS.register("infogan", help="InfoGAN (Chen et al. 2016): a GAN whose categorical / continuous codes are "
                 "recovered by a head Q on D (--cat-codes K --cont-codes N)")
class InfoGAN(GAN):
    """A GAN whose generator also reads codes (c, c'); ``q_head`` on D's body predicts them back."""

    Config = InfoGANConfig
    train_step = "infogan"
    data_kinds = ("images",)
    capabilities = ("info_codes",)

    def __init__(self, config: InfoGANConfig):
        super().__init__(dataclasses.replace(config, latent_dim=config.latent_dim + config.cat_codes
                                             + config.cont_codes))  # G reads [z, one_hot(c), c']
        self.config = config  # the user's config: latent_dim is z's size
        d = self.discriminator
        if not d.split:
            raise DgmError(f"infogan needs a discriminator with features/head (--arch {config.arch} has none)")
        self.q_head = QHead(d.head.in_features, config.cat_codes, config.cont_codes)

    @property
    def code_dim(self) -> int:
        return self.config.cat_codes + self.config.cont_codes

    def sample_codes(self, n: int, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
        """c ~ Cat(1/K) (n,) and c' ~ U[-1, 1] (n, N), on the CPU from ``generator`` (categorical first)."""
        c = self.config
        cat = torch.randint(0, max(c.cat_codes, 1), (n,), generator=generator)
        cont = torch.rand(n, c.cont_codes, generator=generator) * 2 - 1
        return cat, cont

    def generator_input(self, z: Tensor, cat: Tensor, cont: Tensor) -> Tensor:
        """[z, one_hot(c), c'] (n, latent_dim + K + N)."""
        onehot = F.one_hot(cat.long(), self.config.cat_codes).to(z) if self.config.cat_codes else z[:, :0]
        return torch.cat([z, onehot, cont.to(z)], 1)

    def q(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Q's prediction for images x in [-1, 1]: (categorical logits (n, K), continuous means (n, N))."""
        return self.q_head(self.discriminator.representation(x))

    def _check_codes(self, n: int, cat: Optional[Tensor], cont: Optional[Tensor]) -> None:
        c = self.config
        if cat is not None:
            cat = torch.as_tensor(cat)
            if c.cat_codes == 0 or cat.shape != (n,) or cat.is_floating_point() or (
                    n and (int(cat.min()) < 0 or int(cat.max()) >= c.cat_codes)):
                raise InputError(f"expected cat as ({n},) integer codes in 0..{c.cat_codes - 1}, got "
                                 f"{tuple(cat.shape)} {cat.dtype}" if c.cat_codes else "this run has no categorical "
                                 "code (--cat-codes 0): pass no cat")
        if cont is not None:
            cont = torch.as_tensor(cont)
            if cont.shape != (n, c.cont_codes) or not bool(torch.isfinite(cont).all()):
                raise InputError(f"expected cont as finite ({n}, {c.cont_codes}) continuous codes, got "
                                 f"{tuple(cont.shape)}")

    @torch.no_grad()
    def sample(self, n: int, y: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
               z: Optional[Tensor] = None, ema: Optional[bool] = None, truncation: Optional[float] = None,
               truncation_mode: str = "interpolate", cat: Optional[Tensor] = None,
               cont: Optional[Tensor] = None) -> Tensor:
        """n images G(z, c, c') in [-1, 1]. ``cat`` (n,) and ``cont`` (n, N) fix the codes (drawn when None, after
        z, from ``generator``); ``z``, ``ema`` and ``truncation`` as in ``GAN.sample`` (truncation acts on z only)."""
        self.check_labels(y, n)
        if z is not None:
            self.check_latent(z)
            if truncation is not None:
                raise DgmError("give z or truncation, not both (truncate the codes yourself: dgm.nn.latent)")
        self._check_codes(n, cat, cont)
        g = self.sampling_generator(ema)
        with evaluating(g):
            z = self.sample_latent(n, generator, truncation, truncation_mode) if z is None else z.to(self.device)
            drawn_cat, drawn_cont = self.sample_codes(n, generator)
            cat = drawn_cat if cat is None else torch.as_tensor(cat)
            cont = drawn_cont if cont is None else torch.as_tensor(cont)
            return g(self.generator_input(z, cat.to(self.device), cont.to(self.device)))


__all__ = ["InfoGAN", "InfoGANConfig", "QHead"]
