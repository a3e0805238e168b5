"""VQ-VAE (van den Oord et al. 2017; seed 002) and its autoregressive prior over code maps.

``vq-vae``: a convolutional encoder maps x to a (D, h, w) grid, each D-vector is replaced by its nearest codebook
row (straight-through gradient), and a decoder gives p(x | z_q) with the pixel likelihoods of the VAE. Training
minimises  -log p(x|z_q) / dims + ||sg(z_e) - e||^2 + beta ||z_e - sg(e)||^2  (or EMA codebook updates).

``vq-vae-prior``: a Gated PixelCNN over the (h, w) maps of code indices of a trained, frozen VQ-VAE
(`dgm train vq-vae-prior --from RUN`); its ``log_prob(x)`` is the prior's exact log-probability of the codes of x
(nats per image; bits/dim are per code), and ``sample(n)`` decodes codes drawn from the prior.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import DgmError
from ..nn import VectorQuantizer
from ..nn.pixels import PixelLikelihood
from .base import MODELS, ImageModel, ModelConfig
from .gated_pixelcnn import GatedPixelCNN, GatedPixelCNNConfig


@dataclass
class VQVAEConfig(ModelConfig):
    codebook_size: int = 64           # K codes
    code_dim: int = 16                # D, size of each codebook vector
    hidden: int = 64                  # channels of the encoder / decoder
    downsample: int = 0               # stride-2 layers: 0 = auto (1 up to 16x16 images, else 2): 8x8 -> 4x4 codes
    commitment: float = 0.25          # beta of the commitment loss
    ema: bool = False                 # EMA codebook updates instead of the codebook loss
    ema_decay: float = 0.99           # decay of the EMA codebook updates (with --ema)

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {**super().tiny(), "codebook_size": 8, "code_dim": 4, "hidden": 8}

    def __post_init__(self):
        if self.data_kind != "images":
            raise DgmError("a VQ-VAE needs image data; 2-D point datasets are for GANs")
        if self.codebook_size < 2 or self.code_dim < 1 or self.hidden < 1:
            raise DgmError("--codebook-size must be >= 2, --code-dim and --hidden >= 1")
        if self.downsample < 0 or not 0 < self.ema_decay < 1 or self.commitment < 0:
            raise DgmError("--downsample must be >= 0, --ema-decay in (0, 1), --commitment >= 0")
        resolve_downsample(self)


class _Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def conv_encoder(channels: int, hidden: int, downsample: int, out: int) -> nn.Sequential:
    """``downsample`` stride-2 4x4 convolutions, a 3x3 convolution, a residual block and a 1x1 projection to ``out``
    channels (the VQ-VAE's encoder; the discrete VAE's, with out = K logits)."""
    enc = [nn.Conv2d(channels, hidden, 4, 2, 1)]
    for _ in range(downsample - 1):
        enc += [nn.ReLU(), nn.Conv2d(hidden, hidden, 4, 2, 1)]
    enc += [nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1), _Residual(hidden), nn.ReLU(), nn.Conv2d(hidden, out, 1)]
    return nn.Sequential(*enc)


def conv_decoder(code_dim: int, hidden: int, upsample: int, out: int) -> nn.Sequential:
    """The mirror of ``conv_encoder``: a 3x3 convolution, a residual block and ``upsample`` stride-2 4x4 transposed
    convolutions to ``out`` channels (likelihood parameters per pixel)."""
    dec = [nn.Conv2d(code_dim, hidden, 3, padding=1), _Residual(hidden)]
    for _ in range(upsample - 1):
        dec += [nn.ReLU(), nn.ConvTranspose2d(hidden, hidden, 4, 2, 1)]
    dec += [nn.ReLU(), nn.ConvTranspose2d(hidden, out, 4, 2, 1)]
    return nn.Sequential(*dec)


def resolve_downsample(cfg) -> None:
    """A code model's config: --downsample 0 (auto) becomes 1 up to 16x16 images, else 2; the image size must
    divide by 2^downsample (one line naming the fix otherwise)."""
    if cfg.downsample == 0:
        cfg.downsample = 1 if max(cfg.height, cfg.width) <= 16 else 2
    f = 2 ** cfg.downsample
    if cfg.height % f or cfg.width % f:
        raise DgmError(f"{cfg.height}x{cfg.width} images do not divide by 2^{cfg.downsample}; "
                       f"use --downsample {cfg.downsample - 1 or 1}")


class CodeModel(ImageModel):
    """An image model through a map of discrete codes (VQ-VAE, the discrete VAE): pixel likelihood p(x | codes),
    ``codes(x)``, ``decode_codes(codes)``, ``reconstruct(x)``; ``num_codes`` and ``code_shape``."""
    default_metrics = ("recon",)
    default_figure = "reconstructions"  # it cannot sample alone: test images beside their reconstructions
    capabilities = ("codes",)
    can_sample = False

    def __init__(self, config):
        super().__init__(config)
        self.likelihood = "bernoulli" if config.levels == 2 else "categorical"
        self.pixels = PixelLikelihood(self.likelihood, config.levels)  #: p(x | codes)

    @property
    def code_shape(self):
        f = 2 ** self.config.downsample
        return self.config.height // f, self.config.width // f

    @torch.no_grad()
    def reconstruct(self, x: Tensor, mean: bool = True) -> Tensor:
        """E[x | codes(x)] in levels (mean=True) or a draw from p(x | codes(x))."""
        return self.pixels.image_draw(self.decode_codes(self.codes(x)), mean)


@MODELS.register("vq-vae", help="VQ-VAE: conv encoder, nearest-neighbour codebook (straight-through), commitment "
                 "loss or EMA codebook; prior: dgm train vq-vae-prior --from RUN")
class VQVAE(CodeModel):
    Config = VQVAEConfig
    train_step = "vq"  # samples come from a prior over its codes (vq-vae-prior)
    summary_format = ("val reconstruction NLL {rec_nats:.3f} nats/example, MSE {mse:.4f}, code perplexity "
                      "{perplexity:.1f}")

    def __init__(self, config: VQVAEConfig):
        super().__init__(config)
        c = config
        self.encoder = conv_encoder(c.channels, c.hidden, c.downsample, c.code_dim)
        self.quantizer = VectorQuantizer(c.codebook_size, c.code_dim, ema=c.ema, decay=c.ema_decay)
        self.decoder = conv_decoder(c.code_dim, c.hidden, c.downsample, c.channels * self.pixels.params_per_pixel)

    @property
    def num_codes(self) -> int:
        return self.config.codebook_size

    def encode(self, x: Tensor) -> Tensor:
        """z_e(x): (B, D, h, w); x is checked (``check_input``)."""
        self.check_input(x)
        return self.encoder(self.scaled_input(x))

    @torch.no_grad()
    def codes(self, x: Tensor) -> Tensor:
        """The code map of x: (B, h, w) indices in 0..K-1."""
        return self.quantizer(self.encode(x))[1]

    def decode_codes(self, codes: Tensor) -> Tensor:
        """Decoder output (likelihood parameters, (B, C * P, H, W)) for a code map (B, h, w)."""
        return self.decoder(self.quantizer.lookup(codes))

    def terms(self, x: Tensor) -> Dict[str, Tensor]:
        """rec = -log p(x | z_q) per example, and the quantiser's codebook / commitment losses and perplexity."""
        z_q, _, t = self.quantizer(self.encode(x))
        rec = -self.pixels.image_log_prob(x, self.decoder(z_q))
        return {"rec": rec, **t}

    def loss(self, t: Dict[str, Tensor]) -> Tensor:
        """-log p(x|z_q) per dimension + codebook loss + beta * commitment loss."""
        return t["rec"].float().mean() / self.dims + t["codebook"] + self.config.commitment * t["commitment"]

    def sample(self, n: int, y=None, generator=None) -> Tensor:
        raise DgmError("a VQ-VAE alone has no prior to sample from; fit one: dgm train vq-vae-prior --from RUN")


@dataclass
class VQPriorConfig(ModelConfig):
    # the VQ-VAE run the prior was fitted to and its config (set by --from; its weights live in this model)
    vq_run: str = field(default="", metadata={"cli": False})
    vq_config: Dict[str, Any] = field(default_factory=dict, metadata={"cli": False})
    hidden: int = 64                  # Gated PixelCNN channels
    layers: int = 8                   # gated layers
    first_kernel: int = 5             # the masked input convolution
    kernel: int = 3                   # the kxk convolution of each gated layer

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {**super().tiny(), "hidden": 8, "layers": 2, "first_kernel": 3}

    def __post_init__(self):
        if not self.vq_config:
            raise DgmError("vq-vae-prior is fitted to a trained VQ-VAE: dgm train vq-vae-prior --from RUN")


@MODELS.register("vq-vae-prior", help="Gated PixelCNN prior over a trained VQ-VAE's code maps (--from RUN); "
                 "samples decode prior draws")
class VQPrior(ImageModel):
    """p(x) modelled as p(codes(x)): a Gated PixelCNN over the frozen VQ-VAE's code maps; ``dims`` counts codes."""

    Config = VQPriorConfig
    source_run = "vq-vae"
    sample_methods = GatedPixelCNN.sample_methods  # the prior's: cached by default

    @classmethod
    def source_options(cls, run: str, source: Dict[str, Any]) -> Dict[str, Any]:
        return {"vq_run": str(run), "vq_config": source["model_config"]}

    def __init__(self, config: VQPriorConfig):
        super().__init__(config)
        c = config
        self.vq = VQVAE(VQVAEConfig(**c.vq_config))
        self.vq.requires_grad_(False)
        h, w = self.vq.code_shape
        self.prior = GatedPixelCNN(GatedPixelCNNConfig(channels=1, height=h, width=w,
                                                       levels=self.vq.config.codebook_size, hidden=c.hidden,
                                                       layers=c.layers, first_kernel=c.first_kernel, kernel=c.kernel))

    def init_from_sources(self, load) -> None:
        """At the start of a new run: copy the trained VQ-VAE's weights; ``load`` is ``dgm.runs.load``."""
        self.vq.load_state_dict(load(self.config.vq_run).state_dict())

    def train(self, mode: bool = True):
        super().train(mode)
        self.vq.eval()  # frozen: never EMA-updated, never in training mode
        return self

    @property
    def dims(self) -> int:
        h, w = self.vq.code_shape
        return h * w

    def log_prob(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """log p_prior(codes(x)) in nats per image (the codes are a deterministic function of x)."""
        self.vq.check_input(x)
        self.check_labels(y, x.shape[0])
        return self.prior.log_prob(self.vq.codes(x)[:, None].float())

    @torch.no_grad()
    def sample_codes(self, n: int, generator: Optional[torch.Generator] = None, *, method: Optional[str] = None,
                     noise: Optional[Tensor] = None) -> Tensor:
        """(n, h, w) code maps drawn from the prior (``method``, ``noise``: as for ``GatedPixelCNN.sample``)."""
        return self.prior.sample(n, generator=generator, noise=noise, method=method)[:, 0].long()

    @torch.no_grad()
    def sample(self, n: int, y: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
               mean: bool = False, *, method: Optional[str] = None) -> Tensor:
        """(n, C, H, W) levels: codes from the prior, then x from p(x | z_q) (mean=True: E[x | z_q]).
        ``method``: how the prior draws the codes, "cached" (default) or "naive"."""
        self.check_labels(y, n)
        out = self.vq.decode_codes(self.sample_codes(n, generator, method=method))
        return self.vq.pixels.image_draw(out, mean, generator)


__all__ = ["VQVAE", "VQVAEConfig", "VQPrior", "VQPriorConfig"]
