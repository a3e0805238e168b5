"""Variational autoencoders (Kingma & Welling 2014; seed 002) and beta-VAE (Higgins et al. 2017).

q(z|x) = N(mu(x), diag sigma^2(x)), p(z) = N(0, I), p(x|z) a discrete pixel likelihood (Bernoulli logits for binary
data, K-way categorical, or a discretized logistic / Gaussian for grey levels). Training maximises the SGVB estimate of

    ELBO(x) = E_q[log p(x|z)] - beta * KL(q(z|x) || p(z))

with one reparameterised sample and the KL in closed form. ``log_prob(x, k=...)`` is the importance-weighted
estimate of log p(x) (IWAE bound; k = 1 is the ELBO's one-sample estimate).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import DgmError
from ..nn.blocks import conv_plan, mlp
from ..nn.latent import TRUNCATIONS, gaussian_latent
from ..nn.pixels import LIKELIHOODS, PixelLikelihood
from ..objectives.elbo import gaussian_kl, iwae_log_prob, log_mean_exp_chunked, reparameterize
from .base import MODELS, ImageModel, ModelConfig

VAE_ARCHS = ("auto", "mlp", "conv")


@dataclass
class VAEConfig(ModelConfig):
    latent_dim: int = 16              # size of z (2 gives the manifold plots of seed 002)
    arch: str = "auto"                # auto: mlp up to 16x16 images, conv above | mlp | conv
    hidden: int = 0                   # 0: 512 units (mlp), 32 base channels (conv)
    layers: int = 2                   # hidden layers of each MLP
    likelihood: str = "auto"          # auto: bernoulli for binary data, categorical otherwise | logistic | gaussian
    beta: float = 1.0                 # weight of the KL term (beta-VAE)
    kl_warmup: int = 0                # steps over which the KL weight ramps linearly from 0 to beta (0: none)

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {**super().tiny(), "hidden": 16, "latent_dim": 2}

    def __post_init__(self):
        if self.arch not in VAE_ARCHS:
            raise DgmError(f"--arch must be one of {', '.join(VAE_ARCHS)}, got {self.arch!r}")
        if self.likelihood != "auto" and self.likelihood not in LIKELIHOODS:
            raise DgmError(f"--likelihood must be auto or one of {', '.join(LIKELIHOODS)}, got {self.likelihood!r}")
        if self.latent_dim < 1:
            raise DgmError(f"--latent-dim must be >= 1, got {self.latent_dim}")
        if self.layers < 1 or self.hidden < 0:
            raise DgmError("--layers must be >= 1 and --hidden >= 0")
        if not self.beta >= 0:
            raise DgmError(f"--beta must be >= 0, got {self.beta}")
        if self.kl_warmup < 0:
            raise DgmError(f"--kl-warmup must be >= 0 steps, got {self.kl_warmup}")
        if self.data_kind != "images":
            raise DgmError("a VAE needs image data; 2-D point datasets are for GANs")
        if self.likelihood == "auto":
            self.likelihood = "bernoulli" if self.levels == 2 else "categorical"
        if self.likelihood == "bernoulli" and self.levels != 2:
            raise DgmError(f"--likelihood bernoulli needs binary data (--binarize); this data has {self.levels} "
                           "levels: use categorical, logistic or gaussian")
        if self.arch == "auto":
            self.arch = "mlp" if max(self.height, self.width) <= 16 else "conv"
        if self.hidden == 0:
            self.hidden = 512 if self.arch == "mlp" else 32
        if self.height != self.width and self.arch == "conv":
            raise DgmError(f"--arch conv needs square images, got {self.height}x{self.width}; use --arch mlp")


class ConvEncoder(nn.Module):
    """Stride-2 4x4 convolutions with ReLU (channels doubling), then a linear map to ``out`` numbers."""

    def __init__(self, channels: int, size: int, base: int, out: int):
        super().__init__()
        s0, k = conv_plan(size)
        layers, c = [], channels
        for i in range(k):
            layers += [nn.Conv2d(c, base * 2 ** i, 4, 2, 1), nn.ReLU()]
            c = base * 2 ** i
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c * s0 * s0, out)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x).flatten(1))


class ConvDecoder(nn.Module):
    """A linear map from z to a small feature map, then stride-2 4x4 transposed convolutions with ReLU."""

    def __init__(self, latent: int, out_channels: int, size: int, base: int):
        super().__init__()
        s0, k = conv_plan(size)
        self.c0, self.s0 = base * 2 ** (k - 1), s0
        self.project = nn.Sequential(nn.Linear(latent, self.c0 * s0 * s0), nn.ReLU())
        layers, c = [], self.c0
        for i in range(k - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1), nn.ReLU()]
            c //= 2
        layers.append(nn.ConvTranspose2d(c, out_channels, 4, 2, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(self.project(z).view(z.shape[0], self.c0, self.s0, self.s0))


@MODELS.register("vae", help="VAE: Gaussian q(z|x), discrete p(x|z); SGVB with analytic KL; IWAE log_prob(x, k)")
class VAE(ImageModel):
    Config = VAEConfig
    train_step = "vae"
    capabilities = ("log_prob", "elbo", "latent")
    truncation_modes = TRUNCATIONS  # z ~ N(0, I): PSI z towards the prior's mode (default), or BigGAN's resampling
    summary_format = "val -ELBO {neg_elbo_nats:.3f} nats/example = {bits_per_dim:.4f} bits/dim (KL {kl_nats:.2f})"
    nll_estimator = "IWAE with k={k} importance samples (an upper bound on the NLL in expectation)"

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        c = config
        self.pixels = PixelLikelihood(c.likelihood, c.levels)  #: p(x|z)
        self.params_per_pixel = self.pixels.params_per_pixel
        out_ch = c.channels * self.params_per_pixel
        if c.arch == "mlp":
            d = c.channels * c.height * c.width
            self.encoder = nn.Sequential(nn.Flatten(), mlp([d] + [c.hidden] * c.layers + [2 * c.latent_dim]))
            self.decoder = nn.Sequential(mlp([c.latent_dim] + [c.hidden] * c.layers + [out_ch * c.height * c.width]),
                                         nn.Unflatten(1, (out_ch, c.height, c.width)))
        else:
            self.encoder = ConvEncoder(c.channels, c.height, c.hidden, 2 * c.latent_dim)
            self.decoder = ConvDecoder(c.latent_dim, out_ch, c.height, c.hidden)

    # -- the two networks ------------------------------------------------------------------------------------------
    def encode(self, x: Tensor):
        """q(z|x): (mu, logvar), each (B, latent_dim); x is checked (``check_input``)."""
        self.check_input(x)
        mu, logvar = self.encoder(self.scaled_input(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def decode(self, z: Tensor) -> Tensor:
        """Decoder output for z (..., latent_dim) -> (..., C * P, H, W) likelihood parameters."""
        lead = z.shape[:-1]
        out = self.decoder(z.reshape(-1, z.shape[-1]))
        return out.reshape(*lead, *out.shape[1:])

    def log_px_given_z(self, x: Tensor, z: Tensor) -> Tensor:
        """log p(x|z) per example; z may carry leading sample dimensions: (k, B, D) -> (k, B)."""
        return self.pixels.image_log_prob(x, self.decode(z))

    # -- objectives ------------------------------------------------------------------------------------------------
    def elbo_terms(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
        """One-sample SGVB terms per example: rec = log p(x|z), z ~ q(z|x); kl = KL(q(z|x) || N(0, I)); and z."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, generator=generator)
        return {"rec": self.log_px_given_z(x, z), "kl": gaussian_kl(mu, logvar), "z": z}

    def elbo(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        t = self.elbo_terms(x, generator)
        return t["rec"] - t["kl"]

    def log_prob(self, x: Tensor, y: Optional[Tensor] = None, k: int = 1, chunk: int = 0,
                 generator: Optional[torch.Generator] = None) -> Tensor:
        """Importance-weighted estimate of log p(x) in nats, (B,), with k samples of q(z|x) (k = 1: the ELBO's
        one-sample estimate with the KL term sampled too). ``chunk``: samples per pass (0: about 2^20 pixels)."""
        self.check_input(x, y)
        mu, logvar = self.encode(x)
        return iwae_log_prob(mu, logvar, lambda z: self.log_px_given_z(x, z), k, self._chunk(x, chunk), generator)

    def _chunk(self, x: Tensor, chunk: int) -> int:
        """Importance samples per pass: ``chunk``, or (0) as many as keep about 2^20 decoder outputs in memory."""
        return chunk if chunk > 0 else max(1, (1 << 20) // max(1, x.shape[0] * self.dims * self.params_per_pixel))

    # -- generation ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, y: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
               z: Optional[Tensor] = None, mean: bool = False, truncation: Optional[float] = None,
               truncation_mode: str = "interpolate") -> Tensor:
        """(n, C, H, W) levels 0..K-1 drawn from p(x|z), z ~ N(0, I) (or the given z); ``mean=True``: E[x|z].

        ``truncation``: PSI of the truncation trick on z (``dgm.nn.latent``: "interpolate" draws PSI z, towards the
        prior's mode 0); it shrinks z only, so p(x|z) still adds its pixel noise unless ``mean=True``."""
        self.check_labels(y, n)
        if z is None:
            z = gaussian_latent(n, self.config.latent_dim, generator, truncation, truncation_mode)
        elif truncation is not None:
            raise DgmError("give z or truncation, not both (truncate the codes yourself: dgm.nn.latent)")
        self.check_latent(z)
        out = self.decode(z.to(self.device, next(self.parameters()).dtype))
        return self.pixels.image_draw(out, mean, generator)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, mean: bool = True) -> Tensor:
        """Decode the posterior mean of each input: E[x|z=mu(x)] (mean=True) or a draw from p(x|mu(x))."""
        mu, _ = self.encode(x)
        return self.sample(len(x), z=mu, mean=mean)


@dataclass
class BetaVAEConfig(VAEConfig):
    beta: float = 4.0                 # weight of the KL term (Higgins et al. 2017)
    kl_warmup: int = 0                # steps over which the KL weight ramps linearly from 0 to beta (0: none)


@MODELS.register("beta-vae", help="beta-VAE: the VAE with a weight beta on the KL term (default 4) and optional "
                 "KL warm-up")
class BetaVAE(VAE):
    Config = BetaVAEConfig


@dataclass
class AAEConfig(VAEConfig):
    adv_weight: float = 1.0           # weight of the adversarial term (nats-like: per image, like the KL it replaces)
    d_hidden: int = 256               # width of the latent discriminator's two hidden layers
    beta: float = 0.0                 # optional analytic KL term as well (0: a pure AAE)
    kl_warmup: int = 0

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {**super().tiny(), "d_hidden": 16}

    def __post_init__(self):
        super().__post_init__()
        if self.d_hidden < 1 or not self.adv_weight >= 0:
            raise DgmError("--d-hidden must be >= 1 and --adv-weight >= 0")


@MODELS.register("aae", help="adversarial autoencoder: a discriminator on z matches the aggregate posterior to "
                 "N(0, I) (Makhzani et al. 2016); IWAE log_prob(x, k) with its Gaussian encoder")
class AAE(VAE):
    """The VAE's networks with the KL term replaced by an adversarial one: D(z) tells prior draws from codes of
    data, and the encoder learns to fool it, so that the aggregate posterior q(z) = E_x q(z|x) matches p(z).
    The encoder stays Gaussian, so ``log_prob(x, k)`` (importance sampling with q(z|x) as the proposal) is still an
    estimate of log p(x) that is a lower bound in expectation."""

    Config = AAEConfig
    train_step = "aae"

    def __init__(self, config: AAEConfig):
        super().__init__(config)
        h = config.d_hidden
        self.discriminator = nn.Sequential(nn.Linear(config.latent_dim, h), nn.LeakyReLU(0.2), nn.Linear(h, h),
                                           nn.LeakyReLU(0.2), nn.Linear(h, 1))

    def critic(self, z: Tensor) -> Tensor:
        """D(z): a logit per code, high for draws from the prior N(0, I)."""
        return self.discriminator(z).squeeze(-1)


@dataclass
class AVBConfig(VAEConfig):
    noise_dim: int = 0                # size of the encoder's noise input epsilon (0: latent_dim)
    t_hidden: int = 256               # width of the density-ratio network T(x, z)

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {**super().tiny(), "t_hidden": 16}

    def __post_init__(self):
        super().__post_init__()
        if self.noise_dim < 0 or self.t_hidden < 1:
            raise DgmError("--noise-dim must be >= 0 and --t-hidden >= 1")


@MODELS.register("avb", help="adversarial variational Bayes: an implicit encoder z = g(x, eps) and a network T(x, z) "
                 "that learns log q(z|x) - log p(z) by the density-ratio trick (Mescheder et al. 2017)")
class AVB(VAE):
    """The encoder is implicit, z = g(x, eps), eps ~ N(0, I), so log q(z|x) has no formula. A discriminator
    sigma(T(x, z)) tells (x, z ~ q(z|x)) from (x, z ~ p(z)); at its optimum T(x, z) = log q(z|x) - log p(z)
    (the density-ratio trick, seed 004), and the ELBO becomes E_q[log p(x|z) - T(x, z)]. ``elbo_terms`` reports
    T in place of the KL, and ``log_prob(x, k)`` importance-weights with exp(-T) as the ratio p(z)/q(z|x): both are
    estimates that are only as good as T."""

    Config = AVBConfig
    train_step = "avb"
    nll_estimator = ("IWAE with k={k} samples and the learned log-ratio T(x, z) in place of log q(z|x) - log p(z) "
                     "(AVB; as good as T)")

    def __init__(self, config: AVBConfig):
        super().__init__(config)
        c = config
        self.noise_dim = c.noise_dim or c.latent_dim
        h = max(64, 4 * c.latent_dim)
        self.noise_net = mlp([2 * c.latent_dim + self.noise_dim, h, h, c.latent_dim])
        d = c.channels * c.height * c.width
        self.t_x = nn.Sequential(nn.Flatten(), mlp([d, c.t_hidden, c.t_hidden])) if c.arch == "mlp" else \
            ConvEncoder(c.channels, c.height, 32, c.t_hidden)
        self.t_head = mlp([c.t_hidden + c.latent_dim, c.t_hidden, 1])

    def sample_q(self, x: Tensor, k: Optional[int] = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """z = g(x, eps): (B, D), or (k, B, D) draws when k is given; x is checked (``check_input``)."""
        self.check_input(x)
        h = self.encoder(self.scaled_input(x))
        shape = (x.shape[0], self.noise_dim) if k is None else (k, x.shape[0], self.noise_dim)
        eps = torch.randn(shape, generator=generator, dtype=h.dtype).to(h.device) if generator is not None else \
            torch.randn(shape, device=h.device, dtype=h.dtype)
        return self.noise_net(torch.cat([h.expand(*shape[:-1], h.shape[-1]), eps], -1))

    def log_ratio(self, x: Tensor, z: Tensor) -> Tensor:
        """T(x, z), the estimate of log q(z|x) - log p(z); z (B, D) or (k, B, D) -> (B,) or (k, B)."""
        f = self.t_x(self.scaled_input(x))
        # the network estimates log q(z|x) + const; the known -log p(z) = |z|^2 / 2 + const is added exactly, so T
        # grows quadratically far from the prior instead of extrapolating linearly (which an encoder exploits)
        net = self.t_head(torch.cat([f.expand(*z.shape[:-1], f.shape[-1]), z], -1)).squeeze(-1)
        return net + 0.5 * (z ** 2).sum(-1)

    def encode(self, x: Tensor):
        """Moments of the implicit q(z|x) from 64 draws: (mean, log variance), for plots and reconstructions."""
        z = self.sample_q(x, 64)
        return z.mean(0), z.var(0).clamp(min=1e-8).log()

    def elbo_terms(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
        """rec = log p(x|z), z ~ q(z|x); kl = T(x, z), the estimate of log q(z|x) - log p(z) at that z; and z."""
        z = self.sample_q(x, generator=generator)
        return {"rec": self.log_px_given_z(x, z), "kl": self.log_ratio(x, z), "z": z}

    def log_prob(self, x: Tensor, y: Optional[Tensor] = None, k: int = 1, chunk: int = 0,
                 generator: Optional[torch.Generator] = None) -> Tensor:
        """log (1/k) sum_i p(x|z_i) exp(-T(x, z_i)), z_i ~ q(z|x): the IWAE estimate with T as the log-ratio."""
        self.check_input(x, y)

        def log_w(m: int) -> Tensor:
            z = self.sample_q(x, m, generator)
            return self.log_px_given_z(x, z) - self.log_ratio(x, z)

        return log_mean_exp_chunked(log_w, k, self._chunk(x, chunk)).to(next(self.parameters()).dtype)


@dataclass
class FactorVAEConfig(VAEConfig):
    latent_dim: int = 10              # Kim & Mnih 2018 use 10 on dSprites
    tc_weight: float = 35.0           # gamma, the weight of the total-correlation term (35: the dSprites value)
    d_hidden: int = 256               # width of the TC discriminator's hidden layers (paper: 1000)
    d_layers: int = 3                 # its hidden layers (paper: 6); smaller by default for CPU budgets

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {**super().tiny(), "d_hidden": 16, "d_layers": 2}

    def __post_init__(self):
        super().__post_init__()
        if self.d_hidden < 1 or self.d_layers < 1:
            raise DgmError(f"--d-hidden and --d-layers must be >= 1, got {self.d_hidden} and {self.d_layers}")
        if not self.tc_weight >= 0:
            raise DgmError(f"--tc-weight must be >= 0, got {self.tc_weight}")


@MODELS.register("factor-vae", help="FactorVAE: the VAE plus gamma * total correlation of q(z), estimated by a "
                 "discriminator on codes vs dimension-wise permuted codes (Kim & Mnih 2018)")
class FactorVAE(VAE):
    """The VAE's networks and ELBO, plus a discriminator D(z) -> 2 logits that tells codes z ~ q(z) (class 0) from
    codes whose dimensions were permuted independently across a second batch (class 1, draws of prod_j q(z_j)).
    The VAE minimises -ELBO + gamma * E_q[logit_0 - logit_1], the density-ratio estimate of TC(z)
    (``dgm.objectives.tc``). ``encode``, ``log_prob`` and sampling are the VAE's."""

    Config = FactorVAEConfig
    train_step = "factor-vae"

    def __init__(self, config: FactorVAEConfig):
        super().__init__(config)
        c = config
        layers, width = [], c.latent_dim
        for _ in range(c.d_layers):
            layers += [nn.Linear(width, c.d_hidden), nn.LeakyReLU(0.2)]
            width = c.d_hidden
        self.discriminator = nn.Sequential(*layers, nn.Linear(width, 2))

    def tc_logits(self, z: Tensor) -> Tensor:
        """D(z): (B, 2) logits, class 0 = a code of q(z), class 1 = a dimension-wise permuted code."""
        return self.discriminator(z)


__all__ = ["VAE", "VAEConfig", "BetaVAE", "BetaVAEConfig", "AAE", "AAEConfig", "AVB", "AVBConfig", "FactorVAE",
           "FactorVAEConfig"]
