"""VAE/GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric"): an encoder
q(z|x) = N(mu(x), diag sigma^2(x)), a decoder that is also the generator, x~ = Dec(z), and a discriminator Dis whose
l-th hidden layer Dis_l measures how alike x and its reconstruction are.

    L_prior = KL(q(z|x) || N(0, I))
    L_llike = -E_q log N(Dis_l(x) | Dis_l(Dec(z)), I)              (a Gaussian on D's features: squared error)
    L_GAN   = log Dis(x) + log(1 - Dis(Dec(z))) + log(1 - Dis(Dec(z_p))),  z ~ q(z|x), z_p ~ N(0, I)

and the paper's update split (Algorithm 1): the encoder minimises L_prior + L_llike, the decoder gamma L_llike -
L_GAN (non-saturating), the discriminator -L_GAN; L_llike never updates Dis and L_GAN never the encoder. The bound
the encoder and decoder optimise is the ELBO of D's features, E_q log N(Dis_l(x) | Dis_l(Dec(z)), I) - KL <= log
p(Dis_l(x)), reported as ``neg_elbo_features`` (nats per example; it moves with D, so it is not a likelihood of x).
The losses are ``dgm.objectives.vae_gan``; the step is ``dgm.training.vae_gan_step``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import DgmError
from ..nn.blocks import conv_plan, evaluating, leaky_relu, mlp
from ..nn.latent import TRUNCATIONS, gaussian_latent
from .base import MODELS, ImageModel, InputError, ModelConfig
from .vae import ConvDecoder, ConvEncoder

ARCHS = ("auto", "mlp", "conv")


@dataclass
class VAEGANConfig(ModelConfig):
    latent_dim: int = 32              # size of z
    arch: str = "auto"                # auto: mlp up to 16x16 images, conv above | mlp | conv
    hidden: int = 0                   # 0: 256 units (mlp), 32 base channels (conv)
    layers: int = 2                   # hidden layers of each MLP (encoder, decoder, discriminator)
    gamma: float = 1.0                # weight of L_llike against the GAN loss in the decoder's update
    feature_layer: int = 0            # l: D's hidden layer whose features measure reconstructions (0: its last)

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {"hidden": 8, "layers": 1, "latent_dim": 2}

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise DgmError(f"--arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.latent_dim < 1 or self.hidden < 0 or self.layers < 1:
            raise DgmError(f"--latent-dim and --layers must be >= 1 and --hidden >= 0, got {self.latent_dim}, "
                           f"{self.layers} and {self.hidden}")
        if not self.gamma >= 0:
            raise DgmError(f"--gamma must be >= 0, got {self.gamma}")
        if self.data_kind != "images":
            raise DgmError(f"vae-gan needs image data, got {self.data_kind} data")
        if self.arch == "auto":
            self.arch = "mlp" if max(self.height, self.width) <= 16 else "conv"
        if self.arch == "conv" and self.height != self.width:
            raise DgmError(f"--arch conv needs square images, got {self.height}x{self.width}; use --arch mlp")
        if self.hidden == 0:
            self.hidden = 256 if self.arch == "mlp" else 32
        depth = self.layers if self.arch == "mlp" else conv_plan(self.height)[1]
        if self.feature_layer < 0 or self.feature_layer > depth:
            raise DgmError(f"--feature-layer must be in 1..{depth} (D's hidden layers; 0: the last), got "
                           f"{self.feature_layer}")
        if self.feature_layer == 0:
            self.feature_layer = depth


class FeatureDiscriminator(nn.Module):
    """Dis: hidden blocks (Linear or stride-2 4x4 conv, then LeakyReLU 0.2) and a linear head to one logit;
    ``forward(x)`` returns (logits (B,), the output of hidden block ``feature_layer`` (1-based): Dis_l(x))."""

    def __init__(self, blocks, head: nn.Module, feature_layer: int):
        super().__init__()
        self.blocks, self.head, self.feature_layer = nn.ModuleList(blocks), head, feature_layer

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        h, features = x, None
        for i, block in enumerate(self.blocks, 1):
            h = block(h)
            if i == self.feature_layer:
                features = h
        return self.head(h).reshape(x.shape[0]), features


def _discriminator(c: VAEGANConfig) -> FeatureDiscriminator:
    if c.arch == "mlp":
        sizes = [c.channels * c.height * c.width] + [c.hidden] * c.layers
        blocks = [nn.Sequential(*([nn.Flatten()] if i == 0 else []), nn.Linear(a, b), leaky_relu())
                  for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
        return FeatureDiscriminator(blocks, nn.Linear(c.hidden, 1), c.feature_layer)
    s0, k = conv_plan(c.height)
    chans = [c.channels] + [c.hidden * 2 ** i for i in range(k)]
    blocks = [nn.Sequential(nn.Conv2d(a, b, 4, 2, 1), leaky_relu()) for a, b in zip(chans[:-1], chans[1:])]
    return FeatureDiscriminator(blocks, nn.Sequential(nn.Flatten(), nn.Linear(chans[-1] * s0 * s0, 1)),
                                c.feature_layer)


@MODELS.register("vae-gan", help="VAE/GAN (Larsen et al. 2016): a VAE whose reconstruction is measured in a "
                 "discriminator's features, the decoder also a GAN generator; --gamma, --feature-layer")
class VAEGAN(ImageModel):
    """Enc, Dec (= the generator) and Dis; ``sample(n)`` draws Dec(z), z ~ N(0, I); ``encode(x)`` gives q(z|x)'s
    (mu, logvar) and ``reconstruct(x)`` Dec(mu(x))."""

    Config = VAEGANConfig
    train_step = "vae-gan"
    input_scale = "pm1"  # Dec ends in tanh: x in [-1, 1]
    capabilities = ("latent",)
    truncation_modes = TRUNCATIONS
    default_metrics = ("fid", "kid", "is", "pr", "dc")
    summary_format = "val -ELBO of D's layer-{feature_layer} features {neg_elbo_features:.3f} nats/example " \
                     "(KL {kl_nats:.2f})"

    def __init__(self, config: VAEGANConfig):
        super().__init__(config)
        c = config
        self.data_shape = (c.channels, c.height, c.width)
        d = c.channels * c.height * c.width
        if c.arch == "mlp":
            self.encoder = nn.Sequential(nn.Flatten(), mlp([d] + [c.hidden] * c.layers + [2 * c.latent_dim],
                                                           leaky_relu))
            self.decoder = nn.Sequential(mlp([c.latent_dim] + [c.hidden] * c.layers + [d]), nn.Tanh(),
                                         nn.Unflatten(1, self.data_shape))
        else:
            self.encoder = ConvEncoder(c.channels, c.height, c.hidden, 2 * c.latent_dim)
            self.decoder = nn.Sequential(ConvDecoder(c.latent_dim, c.channels, c.height, c.hidden), nn.Tanh())
        self.discriminator = _discriminator(c)

    def summarize(self, val):
        return super().summarize({**val, "feature_layer": self.config.feature_layer})

    # -- the encoder -----------------------------------------------------------------------------------------------
    def check_x(self, x: Tensor) -> None:
        """InputError unless x is a (B, C, H, W) batch of finite images on the [-1, 1] scale."""
        self.check_shape(x)
        if x.is_complex() or not bool(torch.isfinite(x).all()):
            raise InputError("expected x to hold finite real numbers")
        if x.numel() and not (-1 <= float(x.min()) and float(x.max()) <= 1):
            raise InputError("expected images on the [-1, 1] scale (the dataset's scale for this model), got values "
                             f"from {float(x.min()):g} to {float(x.max()):g}")

    def encoder_params(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """q(z|x) of x (unchecked, model scale): (mu, logvar), logvar clamped to [-30, 20]."""
        mu, logvar = self.encoder(x.to(next(self.encoder.parameters()).dtype)).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def encode(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """q(z|x) as for a VAE: (mu, logvar), each (B, latent_dim); x checked (images in [-1, 1])."""
        self.check_x(x)
        with evaluating(self.encoder):
            return self.encoder_params(x.to(self.device))

    # -- generation ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, y: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
               z: Optional[Tensor] = None, mean: bool = False, truncation: Optional[float] = None,
               truncation_mode: Optional[str] = None) -> Tensor:
        """(n, C, H, W) images Dec(z) in [-1, 1], z ~ N(0, I) (or the given z; ``truncation``: PSI of the truncation
        trick, ``dgm.nn.latent``). Dec is deterministic, so ``mean`` changes nothing (there for the latent
        figures)."""
        self.check_labels(y, n)
        if z is None:
            z = gaussian_latent(n, self.config.latent_dim, generator, truncation, truncation_mode or TRUNCATIONS[0])
        elif truncation is not None:
            raise DgmError("give z or truncation, not both (truncate the codes yourself: dgm.nn.latent)")
        self.check_latent(z)
        with evaluating(self.decoder):
            return self.decoder(z.to(self.device, next(self.decoder.parameters()).dtype))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, mean: bool = True) -> Tensor:
        """Dec(mu(x)) (``mean=True``) or Dec of a draw z ~ q(z|x)."""
        mu, logvar = self.encode(x)
        z = mu if mean else mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.sample(len(x), z=z)

    def to_unit(self, x: Tensor) -> Tensor:
        """Images in [0, 1] for grids (Dec's outputs and the data live in [-1, 1])."""
        return ((x + 1) / 2).clamp(0, 1)


__all__ = ["VAEGAN", "VAEGANConfig", "FeatureDiscriminator"]
