"""WaveNet (van den Oord et al. 2016, "WaveNet: A Generative Model for Raw Audio") over 8-bit mu-law audio, with the
Fast WaveNet queues for generation (Paine et al. 2016).

p(x) = prod_t p(x_t | x_<t). The input levels are embedded and shifted one step right (h_t = e(x_{t-1}), h_0 = 0),
then every layer k with dilation d applies a kernel-2 causal convolution z_t = A h_{t-d} + B h_t and the gated unit
o = tanh(z_f + c_f(y)) * sigmoid(z_g + c_g(y)) (c: a learned embedding of the global label y when conditional);
h <- h + R o (residual 1x1), s <- s + S o (skip 1x1). Output: softmax(W2 relu(W1 relu(s))) over 256 levels.
Dilations 1, 2, ..., 2^(layers-1), repeated ``stacks`` times; zero padding on the left, so the first samples
condition on zero activations ("silence" before the file starts).

Receptive field: the output at t depends on x_{t-R} .. x_{t-1} with R = 1 + stacks * (2^layers - 1)
(2047 samples, 0.26 s at 8 kHz, for the defaults).

Tensors: ``forward(x)`` takes (B, 1, T) integer levels 0..255 and returns (B, 256, 1, T) logits (the image models'
layout with one spatial axis); ``log_prob(x)`` is nats per example (summed over the T samples).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import DgmError
from ..nn.blocks import evaluating
from ..nn.pixels import PixelLikelihood
from .base import MODELS, ImageModel, InputError, ModelConfig


@dataclass
class WaveNetConfig(ModelConfig):
    data_kind: str = "audio"
    height: int = 1
    width: int = 4000       # the training window (samples)
    levels: int = 256       # 8-bit mu-law
    layers: int = 10        # layers per stack: dilations 1, 2, ..., 2^(layers-1)
    stacks: int = 2         # repeats of the dilation cycle
    residual: int = 32      # residual (and gate) channels
    skip: int = 64          # skip channels (and the output layer's width)
    conditional: bool = False  # global conditioning on the dataset's class label (audio folders with subfolders)
    sample_rate: int = field(default=8000, metadata={"cli": False})  # Hz, from the dataset

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {**super().tiny(), "layers": 3, "stacks": 1, "residual": 8, "skip": 8}

    def __post_init__(self):
        for name in ("layers", "stacks", "residual", "skip"):
            if getattr(self, name) < 1:
                raise DgmError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.layers > 16:
            raise DgmError(f"--layers {self.layers}: dilations up to 2^{self.layers - 1}; use --layers <= 16")
        if self.conditional and self.num_classes < 1:
            raise DgmError("--conditional needs a labelled dataset (audio with class subfolders, or tones)")
        if not self.conditional:
            self.num_classes = 0

    @property
    def dilations(self) -> List[int]:
        return [2 ** i for i in range(self.layers)] * self.stacks

    @property
    def receptive_field(self) -> int:
        """R: the output at t sees x_{t-R} .. x_{t-1}."""
        return 1 + sum(self.dilations)


class _Layer(nn.Module):
    """One gated residual layer: kernel-2 dilated causal conv, tanh * sigmoid, residual and skip 1x1 (the last
    layer has no residual path: only its skip output is used)."""

    def __init__(self, r: int, s: int, d: int, n_cond: int, last: bool = False):
        super().__init__()
        self.d = d
        self.conv = nn.Conv1d(r, 2 * r, 2, dilation=d)
        self.res = None if last else nn.Conv1d(r, r, 1)
        self.skip = nn.Conv1d(r, s, 1)
        self.cond = nn.Embedding(n_cond, 2 * r) if n_cond else None

    def gate(self, z: torch.Tensor, c: Optional[torch.Tensor]) -> torch.Tensor:
        if c is not None:
            z = z + c
        f, g = z.chunk(2, dim=1)
        return torch.tanh(f) * torch.sigmoid(g)

    def forward(self, h: torch.Tensor, y: Optional[torch.Tensor]):
        z = self.conv(F.pad(h, (self.d, 0)))
        o = self.gate(z, self.cond(y)[:, :, None] if self.cond is not None else None)
        return (h if self.res is None else h + self.res(o)), self.skip(o)

    def packed(self, c: Optional[torch.Tensor]):
        """The layer's weights as matrices for one-step use: (A^T, B^T, conv bias + label term, R^T, R's bias)."""
        w = self.conv.weight  # (2r, r, 2): tap 0 multiplies h_{t-d}, tap 1 h_t
        bias = self.conv.bias if c is None else self.conv.bias + c
        res = (None, None) if self.res is None else (self.res.weight[:, :, 0].t().contiguous(), self.res.bias)
        return (w[:, :, 0].t().contiguous(), w[:, :, 1].t().contiguous(), bias) + res

    def step(self, past: torch.Tensor, now: torch.Tensor, packed, o: torch.Tensor) -> torch.Tensor:
        """The same layer at one time step from (B, r) inputs at t-d and t (Fast WaveNet): writes the gated output
        into ``o`` (the skip path is applied to all layers' outputs at once) and returns the new h."""
        a, b, bias, res_w, res_b = packed
        f, g = torch.addmm(bias, past, a).addmm_(now, b).chunk(2, dim=1)
        torch.mul(torch.tanh(f), torch.sigmoid(g), out=o)
        return now if res_w is None else torch.addmm(res_b, o, res_w).add_(now)


@MODELS.register("wavenet", help="WaveNet on 8-bit mu-law audio: dilated causal convs, gated units, residual and "
                 "skip paths; Fast WaveNet cached sampling (van den Oord et al. 2016; Paine et al. 2016)")
class WaveNet(ImageModel):
    Config = WaveNetConfig
    train_step = "audio-likelihood"
    data_kinds = ("audio",)
    default_figure = "audio"
    summary_format = "val NLL {bits_per_dim:.4f} bits/sample"

    def __init__(self, config: WaveNetConfig):
        super().__init__(config)
        c = config
        if c.levels != 256:
            raise DgmError(f"wavenet models 256 mu-law levels; this data has {c.levels}")
        self.embed = nn.Embedding(c.levels, c.residual)
        last = len(c.dilations) - 1
        self.layers = nn.ModuleList(_Layer(c.residual, c.skip, d, c.num_classes, k == last)
                                    for k, d in enumerate(c.dilations))
        self.out1 = nn.Conv1d(c.skip, c.skip, 1)
        self.out2 = nn.Conv1d(c.skip, c.levels, 1)
        self.pixels = PixelLikelihood("categorical", c.levels)

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    def start_note(self) -> str:
        r, rate = self.receptive_field, self.config.sample_rate
        return (f"wavenet: receptive field {r} samples ({1000 * r / rate:.1f} ms at {rate} Hz), "
                f"{len(self.layers)} layers, {sum(p.numel() for p in self.parameters())} parameters")

    # -- shapes and checks ---------------------------------------------------------------------------------
    def check_shape(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[1] != 1 or x.shape[2] < 1:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"expected x of shape (B, 1, T) mu-law levels, got {got}")

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        return x / (self.config.levels - 1)

    # -- likelihood ----------------------------------------------------------------------------------------
    def _head(self, s: torch.Tensor) -> torch.Tensor:
        return self.out2(F.relu(self.out1(F.relu(s))))

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, 1, T) levels -> (B, 256, 1, T) logits of p(x_t | x_<t)."""
        self.check_input(x, y)
        h = self.embed(x[:, 0].long()).transpose(1, 2)          # (B, r, T): e(x_t)
        h = F.pad(h, (1, 0))[:, :, :-1]                          # shift: h_t = e(x_{t-1}), h_0 = 0
        skip = 0
        for layer in self.layers:
            h, s = layer(h, y)
            skip = skip + s
        return self._head(skip)[:, :, None]

    def conditionals(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """log p(x_t | x_<t), shape (B, 1, T), nats."""
        logits = self(x, y).float()
        return self.pixels.log_prob(x, logits, dim=1)

    def log_prob(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Exact log-likelihood of each example, shape (B,), in nats (sum over time)."""
        return self.conditionals(x, y).flatten(1).sum(1)

    # -- sampling ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, length: Optional[int] = None, y: Optional[torch.Tensor] = None,
               generator: Optional[torch.Generator] = None, noise: Optional[torch.Tensor] = None,
               method: str = "cached") -> torch.Tensor:
        """n waveforms of ``length`` samples (default: the training window) as (n, 1, length) levels (float).

        ``noise``: (n, length) uniforms in [0, 1) for the inverse-CDF draws (default drawn from ``generator``); the
        same noise gives the same waveform with ``method="cached"`` (Fast WaveNet queues, O(layers) per sample)
        and ``"naive"`` (the network over the last R inputs for every sample).
        """
        if method not in ("cached", "naive"):
            raise InputError(f"method must be 'cached' or 'naive', got {method!r}")
        length = self.config.width if length is None else int(length)
        if length < 1:
            raise InputError(f"length must be >= 1 sample, got {length}")
        y = self._default_labels(n, y)
        if noise is None:
            noise = torch.rand(n, length, generator=generator)
        if tuple(noise.shape) != (n, length):
            raise InputError(f"expected noise of shape ({n}, {length}), got {tuple(noise.shape)}")
        noise = noise.to(self.device)
        with evaluating(self):
            return (self._sample_cached if method == "cached" else self._sample_naive)(n, length, y, noise)

    def _draw(self, logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.pixels.sample(logits.float(), u, dim=1)

    def _sample_naive(self, n, length, y, noise):
        x = torch.zeros(n, 1, length, device=self.device)
        r = self.receptive_field
        for t in range(length):
            lo = max(0, t - r)
            logits = self(x[:, :, lo:t + 1], y)[:, :, 0, -1]
            x[:, 0, t] = self._draw(logits, noise[:, t])
        return x

    def _sample_cached(self, n, length, y, noise):
        """Fast WaveNet: each layer keeps a queue of its last d inputs, so a sample costs one step per layer.

        The queues are Python lists used as ring buffers (slot t mod d holds h_{t-d} until h_t replaces it), and the
        gated outputs of all layers go into one (n, layers * r) buffer, so the skip sum is one matrix product."""
        x = torch.zeros(n, 1, length, device=self.device)
        r, dtype = self.config.residual, self.embed.weight.dtype
        zero = torch.zeros(n, r, device=self.device, dtype=dtype)  # h before the start, and h_0 (the shift)
        queues = [[zero] * layer.d for layer in self.layers]
        packs = [layer.packed(layer.cond(y) if layer.cond is not None else None) for layer in self.layers]
        gated = torch.zeros(n, len(self.layers) * r, device=self.device, dtype=dtype)
        outs = [gated[:, k * r:(k + 1) * r] for k in range(len(self.layers))]
        skip_w = torch.cat([layer.skip.weight[:, :, 0] for layer in self.layers], 1).t().contiguous()
        skip_b = sum(layer.skip.bias for layer in self.layers)
        h0 = zero
        for t in range(length):
            h = h0
            for layer, q, pack, o in zip(self.layers, queues, packs, outs):
                slot = t % layer.d
                past, q[slot] = q[slot], h
                h = layer.step(past, h, pack, o)
            skip = torch.addmm(skip_b, gated, skip_w)
            logits = self._head(skip[:, :, None])[:, :, 0]
            v = self._draw(logits, noise[:, t])
            x[:, 0, t] = v
            h0 = self.embed(v.long())
        return x
