"""GANs: a generator G(z) and a discriminator / critic D(x) -- MLPs for 2-D points, DCGAN for images.

The model holds the two networks and its config; the losses live in ``dgm.objectives`` and the
alternating updates (n_critic, unrolling, TTUR, penalties) in ``dgm.training.gan_step``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import DgmError
from ..nn import apply_spectral_norm
from ..nn.blocks import conv_plan, leaky_relu, mlp, norm2d
from ..objectives import F_DIVERGENCES, OBJECTIVES
from .base import MODELS, ImageModel, ModelConfig

ARCHS = ("auto", "mlp", "dcgan")
NORMS = ("auto", "batch", "layer", "none")


@dataclass
class GANConfig(ModelConfig):
    objective: str = "non-saturating"  # dgm list objectives
    arch: str = "auto"                # auto: mlp for 2-D points, dcgan for images
    latent_dim: int = 0               # 0: 2 for points (PacGAN), 64 for images
    hidden: int = 0                   # 0: 256 units (mlp), 32 base channels (dcgan)
    layers: int = 3                   # hidden layers of each MLP
    d_norm: str = "auto"              # auto | batch | layer | none (auto: batch in DCGAN, none with penalties/SN/MLP)
    spectral_norm: bool = False       # spectral normalisation of every D layer (Miyato et al. 2018)
    n_critic: int = 0                 # D updates per G update (0: the objective's paper default)
    lr_g: Optional[float] = None      # TTUR: separate learning rates (default: --lr, else the paper's)
    lr_d: Optional[float] = None
    gp_weight: float = 10.0           # lambda of WGAN-GP / DRAGAN
    dragan_c: float = 0.5             # DRAGAN perturbation scale c (x_p = x + c std(x) U[0,1])
    clip_value: float = 0.01          # WGAN weight clipping c
    smooth_alpha: float = 0.9         # label smoothing targets (Salimans et al. 2016)
    smooth_beta: float = 0.0
    margin: float = 1.0               # EBGAN margin m (energy = mean squared reconstruction error)
    pt_weight: float = 0.1            # EBGAN pulling-away term weight (0 disables)
    gamma: float = 0.5                # BEGAN diversity ratio
    lambda_k: float = 0.001           # BEGAN k_t learning rate
    divergence: str = "js"            # f-GAN: kl | reverse-kl | js | pearson | hellinger
    unroll_steps: int = 0             # unrolled GAN (Metz et al. 2017): K differentiable D updates
    instance_noise: float = 0.0       # std of Gaussian instance noise on D's inputs, annealed to 0
    noise_decay_steps: int = 0        # 0: anneal over the whole run

    def __post_init__(self):
        obj = OBJECTIVES.get(self.objective)  # unknown name -> one-line error with the nearest name
        if self.arch not in ARCHS:
            raise DgmError(f"--arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.d_norm not in NORMS:
            raise DgmError(f"--d-norm must be one of {', '.join(NORMS)}, got {self.d_norm!r}")
        if self.divergence not in F_DIVERGENCES:
            raise DgmError(f"--divergence must be one of {', '.join(F_DIVERGENCES)}, got {self.divergence!r}")
        for name in ("n_critic", "unroll_steps", "latent_dim", "hidden", "noise_decay_steps"):
            if getattr(self, name) < 0:
                raise DgmError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.layers < 1:
            raise DgmError(f"--layers must be >= 1, got {self.layers}")
        for name in ("lr_g", "lr_d"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise DgmError(f"--{name.replace('_', '-')} must be > 0, got {v}")
        if not 0 < self.gamma <= 1:
            raise DgmError(f"--gamma must be in (0, 1], got {self.gamma}")
        points = self.data_kind == "points"
        if self.arch == "auto":
            self.arch = "mlp" if points else "dcgan"
        if self.arch == "dcgan" and points:
            raise DgmError("--arch dcgan needs image data; use --arch mlp for 2-D point datasets")
        if self.latent_dim == 0:
            self.latent_dim = 2 if points else 64
        if self.hidden == 0:
            self.hidden = 256 if self.arch == "mlp" else 32
        if self.d_norm == "auto":
            plain = obj.penalty is None and not self.spectral_norm and obj.kind != "energy"
            self.d_norm = "batch" if (self.arch == "dcgan" and plain) else "none"
        if self.n_critic == 0:
            self.n_critic = obj.n_critic


class DCGANGenerator(nn.Module):
    """Radford et al. 2016: project z, then stride-2 transposed convolutions with BN + ReLU, tanh output."""

    def __init__(self, latent: int, channels: int, size: int, base: int):
        super().__init__()
        s0, k = conv_plan(size)
        c = base * 2 ** (k - 1)
        self.c0, self.s0 = c, s0
        self.project = nn.Sequential(nn.Linear(latent, c * s0 * s0), nn.BatchNorm1d(c * s0 * s0), nn.ReLU())
        ups = []
        for i in range(k - 1):
            ups += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.BatchNorm2d(c // 2), nn.ReLU()]
            c //= 2
        ups += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*ups)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(self.project(z).view(z.shape[0], self.c0, self.s0, self.s0))


class DCGANEncoder(nn.Module):
    """Radford et al. 2016: stride-2 convolutions with LeakyReLU(0.2), no norm on the first layer; a linear head."""

    def __init__(self, channels: int, size: int, base: int, out: int, norm: str):
        super().__init__()
        s0, k = conv_plan(size)
        layers, c = [nn.Conv2d(channels, base, 4, 2, 1), leaky_relu()], base
        for i in range(k - 1):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1), norm2d(norm, 2 * c), leaky_relu()]
            c *= 2
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c * s0 * s0, out)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x).flatten(1))


class Discriminator(nn.Module):
    """D(x) -> one score per example: a logit or a critic value, depending on the objective."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x).reshape(x.shape[0])


class AutoencoderDiscriminator(nn.Module):
    """EBGAN / BEGAN: D is an auto-encoder; its output is a per-example reconstruction energy.

    ``loss="mse"`` (EBGAN: mean squared error) or ``"l1"`` (BEGAN: mean absolute error, eta = 1).
    ``features(x)`` gives the encoder's code, which EBGAN's pulling-away term spreads apart.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, loss: str):
        super().__init__()
        self.encoder, self.decoder, self.loss = encoder, decoder, loss

    def energy_and_code(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        h = self.encoder(x)
        r = self.decoder(h).reshape(x.shape)
        err = (r - x) ** 2 if self.loss == "mse" else (r - x).abs()
        return err.flatten(1).mean(1), h

    def forward(self, x: Tensor) -> Tensor:
        return self.energy_and_code(x)[0]


@MODELS.register("gan", help="GAN: MLP (2-D points) or DCGAN (images) with any objective (dgm list objectives)")
class GAN(ImageModel):
    """A generator and a discriminator; ``sample(n)`` draws G(z), z ~ N(0, I)."""

    Config = GANConfig
    train_step = "gan"
    data_kinds = ("images", "points")
    input_scale = "pm1"  # generators end in tanh: images in [-1, 1]
    capabilities = ()  # no likelihood: sample quality (images) or mode coverage (points) only
    summary_format = "{modes:.0f} modes, {hq_percent:.1f}% high-quality samples, reverse KL {rkl}"

    def __init__(self, config: GANConfig):
        super().__init__(config)
        c = config
        obj = OBJECTIVES.get(c.objective)
        shape = (c.channels,) if self.points else (c.channels, c.height, c.width)
        self.data_shape = shape
        dim = c.channels * c.height * c.width
        if c.arch == "mlp":
            head = [] if self.points else [nn.Tanh(), nn.Unflatten(1, shape)]
            self.generator = nn.Sequential(mlp([c.latent_dim] + [c.hidden] * c.layers + [dim], nn.ReLU, "none"), *head)
            if obj.kind == "energy":
                code = max(2, c.hidden // 8)
                enc = nn.Sequential(nn.Flatten(), mlp([dim] + [c.hidden] * c.layers + [code], leaky_relu, c.d_norm))
                dec = mlp([code] + [c.hidden] * c.layers + [dim], leaky_relu, c.d_norm)
                self.discriminator = AutoencoderDiscriminator(enc, dec, "mse" if c.objective == "ebgan" else "l1")
            else:
                self.discriminator = Discriminator(
                    nn.Sequential(nn.Flatten(), mlp([dim] + [c.hidden] * c.layers + [1], leaky_relu, c.d_norm)))
        else:
            self.generator = DCGANGenerator(c.latent_dim, c.channels, c.height, c.hidden)
            if c.height != c.width:
                raise DgmError(f"DCGAN needs square images, got {c.height}x{c.width}")
            if obj.kind == "energy":
                code = 4 * c.hidden
                enc = DCGANEncoder(c.channels, c.height, c.hidden, code, c.d_norm)
                dec = nn.Sequential(DCGANGenerator(code, c.channels, c.height, c.hidden))
                self.discriminator = AutoencoderDiscriminator(enc, dec, "mse" if c.objective == "ebgan" else "l1")
            else:
                self.discriminator = Discriminator(DCGANEncoder(c.channels, c.height, c.hidden, 1, c.d_norm))
            self.apply(_dcgan_init)
        if c.spectral_norm:
            apply_spectral_norm(self.discriminator)

    def summarize(self, val):
        rkl = f"{val['reverse_kl']:.3f}" if "reverse_kl" in val else "undefined (no high-quality sample)"
        return super().summarize({**val, "hq_percent": 100 * val.get("high_quality", 0.0), "rkl": rkl})

    @property
    def default_metrics(self):
        """Mode coverage for 2-D points, sample quality for images."""
        return ("modes",) if self.points else ("fid", "kid", "is", "pr", "dc")

    @property
    def objective(self):
        return OBJECTIVES.get(self.config.objective)

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        return torch.randn(n, self.config.latent_dim, generator=generator).to(self.device)

    @torch.no_grad()
    def sample(self, n: int, y: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
               z: Optional[Tensor] = None) -> Tensor:
        """n draws of G(z): points (n, D), or images (n, C, H, W) in [-1, 1]. G runs in eval mode (BN running stats)."""
        if y is not None:
            raise DgmError("this GAN is not class-conditional; drop --label")
        was = self.generator.training
        self.generator.eval()
        try:
            z = self.sample_latent(n, generator) if z is None else z.to(self.device)
            return self.generator(z)
        finally:
            self.generator.train(was)

    def to_unit(self, x: Tensor) -> Tensor:
        """Images in [0, 1] for grids (generator outputs live in [-1, 1])."""
        return ((x + 1) / 2).clamp(0, 1)


def _dcgan_init(m: nn.Module) -> None:
    """Radford et al. 2016: weights ~ N(0, 0.02); batch-norm scales ~ N(1, 0.02)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
