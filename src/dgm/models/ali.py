"""ALI / BiGAN (Dumoulin et al. 2017, "Adversarially Learned Inference"; Donahue et al. 2017, "Adversarial Feature
Learning"): a generator G: z -> x, an encoder E: x -> z and a discriminator D(x, z) of joint pairs.

D tells the encoder's pairs (x, E(x)), x ~ data, from the generator's pairs (G(z), z), z ~ p(z); G and E together
try to make the two joint distributions the same, so at the optimum E inverts G. The encoder is stochastic as in ALI
(E(x) = mu(x) + sigma(x) eps, reparameterised) or deterministic as in BiGAN; p(z) is N(0, I), or U(-1, 1)^d as in
BiGAN (--latent uniform). D has an x-branch, a z-branch and a joint head on their concatenated features (ALI's
D(x), D(z), D(x, z)). The losses come from ``dgm.objectives.OBJECTIVES``: the objective's d on D's outputs, its g on
the generator's pairs and its e (the encoder's mirror of g) on the encoder's pairs; the step is
``dgm.training.ali_step``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import DgmError
from ..nn.blocks import evaluating, leaky_relu, mlp
from ..nn.latent import TRUNCATIONS, gaussian_latent
from ..objectives import OBJECTIVES
from .base import MODELS, ImageModel, InputError, ModelConfig
from .vae import ConvDecoder, ConvEncoder

ENCODERS = ("stochastic", "deterministic")
LATENTS = ("gaussian", "uniform")
ARCHS = ("auto", "mlp", "conv")
NORMS = ("auto", "batch", "none")


def usable_objectives() -> Tuple[str, ...]:
    """The registered objectives a joint discriminator can play: a score per pair (no auto-encoder D), no gradient
    penalty or weight clipping (they assume D(x) alone), no options of their own, and an encoder's term (``e``)."""
    return tuple(n for n in OBJECTIVES.names() if _lacks(OBJECTIVES.get(n)) is None)


def _lacks(obj) -> Optional[str]:
    """What ALI cannot give objective ``obj`` (None: nothing, it is usable)."""
    beyond = obj.beyond_a_score()
    if beyond is None and obj.e is None:
        return "an encoder's term (the objective declares no e)"
    return beyond


@dataclass
class ALIConfig(ModelConfig):
    objective: str = "non-saturating"  # the adversarial loss (dgm list objectives; scoring ones without penalties)
    encoder: str = "stochastic"       # stochastic: E(x) = mu + sigma eps (ALI) | deterministic: E(x) (BiGAN)
    latent: str = "gaussian"          # p(z): gaussian N(0, I) (ALI) | uniform U(-1, 1)^d (BiGAN)
    arch: str = "auto"                # auto: mlp for 2-D points and images up to 16x16, conv above | mlp | conv
    latent_dim: int = 0               # size of z (0: 2 for points, 64 for images)
    hidden: int = 0                   # 0: 256 units (mlp), 32 base channels (conv)
    layers: int = 3                   # hidden layers of each MLP (G, E, and each branch of D)
    d_dropout: Optional[float] = None  # dropout in D's joint layers (none: 0.2 on images, ALI's; 0 on points)
    norm: str = "auto"                # batch | none: G's and E's hidden-layer norm, mlp (auto: batch on images)

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {"hidden": 8, "layers": 1, "latent_dim": 2}

    def __post_init__(self):
        OBJECTIVES.get(self.objective)  # an unknown name: one line with the nearest one
        lacks = _lacks(OBJECTIVES.get(self.objective))
        if lacks:
            raise DgmError(f"ali cannot use objective {self.objective!r}: it needs {lacks}, which a joint D(x, z) "
                           f"does not have; choose one of: {', '.join(usable_objectives())}")
        for name, value, known in (("encoder", self.encoder, ENCODERS), ("latent", self.latent, LATENTS),
                                   ("arch", self.arch, ARCHS)):
            if value not in known:
                raise DgmError(f"--{name} must be one of {', '.join(known)}, got {value!r}")
        if self.latent_dim < 0 or self.hidden < 0:
            raise DgmError(f"--latent-dim and --hidden must be >= 0, got {self.latent_dim} and {self.hidden}")
        if self.layers < 1:
            raise DgmError(f"--layers must be >= 1, got {self.layers}")
        if self.d_dropout is not None and not 0 <= self.d_dropout < 1:
            raise DgmError(f"--d-dropout must be in [0, 1), got {self.d_dropout}")
        if self.data_kind not in ALI.data_kinds:
            raise DgmError(f"ali needs images or 2-D points, got {self.data_kind} data")
        points = self.data_kind == "points"
        if self.arch == "auto":
            self.arch = "mlp" if points or max(self.height, self.width) <= 16 else "conv"
        if self.arch == "conv" and points:
            raise DgmError("--arch conv needs image data; use --arch mlp for 2-D points")
        if self.arch == "conv" and self.height != self.width:
            raise DgmError(f"--arch conv needs square images, got {self.height}x{self.width}; use --arch mlp")
        if self.latent_dim == 0:
            self.latent_dim = 2 if points else 64
        if self.d_dropout is None:
            self.d_dropout = 0.0 if points else 0.2
        if self.norm not in NORMS:
            raise DgmError(f"--norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.norm == "batch" and self.arch == "conv":
            raise DgmError("--norm batch is for --arch mlp (the conv nets have no norm layers); drop it")
        if self.norm == "auto":
            self.norm = "none" if points or self.arch == "conv" else "batch"
        if self.hidden == 0:
            self.hidden = 256 if self.arch == "mlp" else 32


class JointDiscriminator(nn.Module):
    """D(x, z) = joint([Dx(x), Dz(z)]): an x-branch and a z-branch to ``hidden`` features each (LeakyReLU 0.2), and a
    joint MLP on their concatenation to one score per pair; ``dropout`` on the branches' features and before each
    later layer of the joint MLP (ALI: 0.2 in every layer of D but its input)."""

    pointwise = False  # scores pairs, not points: the toy plots draw no D(x) surface

    def __init__(self, x_branch: nn.Module, latent_dim: int, hidden: int, layers: int, dropout: float = 0.0):
        super().__init__()
        self.x_branch = x_branch
        self.z_branch = nn.Sequential(mlp([latent_dim] + [hidden] * layers, leaky_relu), leaky_relu())
        self.drop = nn.Dropout(dropout)

        def act():
            return nn.Sequential(leaky_relu(), nn.Dropout(dropout))

        self.joint = mlp([2 * hidden] + [hidden] * layers + [1], act)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        h = self.drop(torch.cat([self.x_branch(x), self.z_branch(z)], 1))
        return self.joint(h).reshape(x.shape[0])


@MODELS.register("ali", help="ALI / BiGAN (Dumoulin et al. 2017; Donahue et al. 2017): G, an encoder E and a joint "
                 "D(x, z); --encoder stochastic|deterministic, --latent gaussian|uniform")
class ALI(ImageModel):
    """G(z), E(x) and D(x, z); ``sample(n)`` draws G(z), z ~ p(z); ``encode(x)`` gives E's code of x and
    ``reconstruct(x)`` G of it."""

    Config = ALIConfig
    train_step = "ali"
    data_kinds = ("images", "points")
    input_scale = "pm1"  # G ends in tanh on images: x in [-1, 1]
    capabilities = ("latent",)  # an encoder and a Gaussian latent (--latent uniform: no Gaussian, see __init__)
    truncation_modes = TRUNCATIONS
    summary_format = "{modes:.0f} modes, {hq_percent:.1f}% high-quality samples, reverse KL {rkl}"

    def __init__(self, config: ALIConfig):
        super().__init__(config)
        c = config
        self.data_shape = (c.channels,) if self.points else (c.channels, c.height, c.width)
        d, code = c.channels * c.height * c.width, c.latent_dim * (2 if c.encoder == "stochastic" else 1)
        if c.arch == "mlp":
            out = [] if self.points else [nn.Tanh(), nn.Unflatten(1, self.data_shape)]
            self.generator = nn.Sequential(mlp([c.latent_dim] + [c.hidden] * c.layers + [d], nn.ReLU, c.norm), *out)
            self.encoder = nn.Sequential(nn.Flatten(), mlp([d] + [c.hidden] * c.layers + [code], leaky_relu, c.norm))
            x_branch = nn.Sequential(nn.Flatten(), mlp([d] + [c.hidden] * c.layers, leaky_relu), leaky_relu())
        else:
            self.generator = nn.Sequential(ConvDecoder(c.latent_dim, c.channels, c.height, c.hidden), nn.Tanh())
            self.encoder = ConvEncoder(c.channels, c.height, c.hidden, code)
            x_branch = nn.Sequential(ConvEncoder(c.channels, c.height, c.hidden, c.hidden), leaky_relu())
        self.discriminator = JointDiscriminator(x_branch, c.latent_dim, c.hidden, c.layers, c.d_dropout)
        if c.latent == "uniform":  # no Gaussian latent: no truncation, interpolation or manifold figures
            self.capabilities, self.truncation_modes = (), ()

    @property
    def abilities(self) -> Tuple[str, ...]:
        """The base's, and "reconstruct" with either latent (the encoder is there whatever p(z) is)."""
        out = super().abilities
        return out if "reconstruct" in out else out + ("reconstruct",)

    @property
    def objective(self):
        return OBJECTIVES.get(self.config.objective)

    @property
    def default_metrics(self):
        """Mode coverage for 2-D points, sample quality for images (as the GAN's)."""
        return ("modes",) if self.points else ("fid", "kid", "is", "pr", "dc")

    def summarize(self, val):
        rkl = f"{val['reverse_kl']:.3f}" if "reverse_kl" in val else "undefined (no high-quality sample)"
        return super().summarize({**val, "hq_percent": 100 * val.get("high_quality", 0.0), "rkl": rkl})

    # -- the latent ----------------------------------------------------------------------------------------------
    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None, truncation: Optional[float] = None,
                      truncation_mode: Optional[str] = None) -> Tensor:
        """(n, latent_dim) draws of p(z) on the model's device: N(0, I) (truncated with PSI = ``truncation``, see
        ``dgm.nn.latent``) or U(-1, 1)^d, from ``generator`` on the CPU."""
        c = self.config
        if c.latent == "uniform":
            if truncation is not None:
                raise DgmError("--truncation needs a Gaussian latent; this run has --latent uniform")
            z = torch.rand(n, c.latent_dim, generator=generator) * 2 - 1
        else:
            z = gaussian_latent(n, c.latent_dim, generator, truncation, truncation_mode or TRUNCATIONS[0])
        return z.to(self.device)

    # -- the encoder ---------------------------------------------------------------------------------------------
    def check_x(self, x: Tensor) -> None:
        """InputError unless x is a batch of this model's data: finite points (B, D), or (B, C, H, W) images on the
        [-1, 1] scale."""
        if self.points:
            d = self.config.channels
            if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != d:
                got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                raise InputError(f"expected x of shape (B, {d}), points of {d} numbers, got {got}")
        else:
            self.check_shape(x)
        if x.is_complex() or not bool(torch.isfinite(x).all()):
            raise InputError("expected x to hold finite real numbers")
        if not self.points and x.numel() and not (-1 <= float(x.min()) and float(x.max()) <= 1):
            raise InputError("expected images on the [-1, 1] scale (the dataset's scale for this model), got values "
                             f"from {float(x.min()):g} to {float(x.max()):g}")

    def encoder_params(self, x: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """E's output for x (unchecked, model scale): (mu, logvar) of the stochastic encoder's Gaussian, logvar
        clamped to [-30, 20]; (E(x), None) for the deterministic one."""
        h = self.encoder(x.to(next(self.encoder.parameters()).dtype))
        if self.config.encoder == "deterministic":
            return h, None
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def encode(self, x: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """E's code of x (points, or images in [-1, 1]; checked) as for a VAE: (mu, logvar) each (B, latent_dim) for
        the stochastic encoder, (E(x), None) for the deterministic one (BiGAN). ``encode(x)[0]`` is the code. E runs
        in eval mode (batch norm on its running statistics), as G does in ``sample``."""
        self.check_x(x)
        with evaluating(self.encoder):
            return self.encoder_params(x.to(self.device))

    def encode_sample(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """A draw z ~ E(x): mu(x) + sigma(x) eps, eps ~ N(0, I) from ``generator`` (stochastic), else E(x)."""
        mu, logvar = self.encode(x)
        return mu if logvar is None else draw_code(mu, logvar, generator)

    # -- generation ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, y: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
               z: Optional[Tensor] = None, mean: bool = False, truncation: Optional[float] = None,
               truncation_mode: Optional[str] = None) -> Tensor:
        """n draws of G(z), z ~ p(z) (or the given z): points (n, D), or images (n, C, H, W) in [-1, 1]. G is
        deterministic, so ``mean`` changes nothing (it is there for the latent figures, as a VAE's)."""
        self.check_labels(y, n)
        if z is not None:
            self.check_latent(z)
            if truncation is not None:
                raise DgmError("give z or truncation, not both (truncate the codes yourself: dgm.nn.latent)")
        if truncation_mode is not None and truncation_mode not in self.truncation_modes:
            raise DgmError(f"truncation mode {truncation_mode!r}: this run has "
                           f"{', '.join(self.truncation_modes) or 'none (--latent uniform)'}")
        with evaluating(self.generator):
            z = self.sample_latent(n, generator, truncation, truncation_mode) if z is None else z.to(self.device)
            return self.generator(z.to(next(self.generator.parameters()).dtype))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, mean: bool = True) -> Tensor:
        """G(E(x)): G of the code's mean (``mean=True``) or of a draw from the stochastic encoder."""
        z = self.encode(x)[0] if mean else self.encode_sample(x)
        return self.sample(len(x), z=z)

    def to_unit(self, x: Tensor) -> Tensor:
        """Images in [0, 1] for grids (G's outputs and the data live in [-1, 1])."""
        return ((x + 1) / 2).clamp(0, 1)


def draw_code(mu: Tensor, logvar: Tensor, generator: Optional[torch.Generator] = None,
              eps: Optional[Tensor] = None) -> Tensor:
    """The stochastic encoder's reparameterised draw (Dumoulin et al. 2017, sec. 2.2): mu + exp(logvar / 2) eps,
    eps ~ N(0, I) (given, or drawn on the CPU from ``generator``)."""
    if eps is None:
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps.to(mu.device, mu.dtype)


__all__ = ["ALI", "ALIConfig", "JointDiscriminator", "usable_objectives", "draw_code"]
