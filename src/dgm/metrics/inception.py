"""The FID variant of Inception-v3 (Szegedy et al. 2016; TF graph of Heusel et al. 2017), weights from a local file.

Layout and parameter names match torchvision's ``Inception3`` with 1008 classes and no auxiliary head, so the
standard ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid release asset) loads as is. FID-specific blocks:
the average pools of InceptionA/C and Mixed_7b exclude padding, Mixed_7c pools with a 3x3 max pool.
Nothing is ever downloaded: the file comes from ``--weights PATH`` or ``DGM_INCEPTION_WEIGHTS``.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DgmError

ENV_VAR = "DGM_INCEPTION_WEIGHTS"
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
_HOWTO = (f"download {WEIGHTS_FILE} (the pytorch-fid release asset, github.com/mseitzer/pytorch-fid/releases) "
          f"on a machine with internet, then pass --weights PATH or set {ENV_VAR}=PATH")


class BasicConv2d(nn.Module):
    """Conv (no bias) + BatchNorm (eps 1e-3) + ReLU, the Inception unit (Szegedy et al. 2016)."""

    def __init__(self, cin: int, cout: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool() -> nn.Module:
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)  # TF's average excludes padded zeros


class InceptionA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled branches (Szegedy et al. 2016, fig. 5)."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.pool = _avg_pool()
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(self.pool(x))], 1)


class InceptionB(nn.Module):
    """35x35 -> 17x17 grid reduction (Mixed_6a)."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 1x7 / 7x1 convolutions (Szegedy et al. 2016, fig. 6)."""

    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.pool = _avg_pool()
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(self.pool(x))], 1)


class InceptionD(nn.Module):
    """17x17 -> 8x8 grid reduction (Mixed_7a)."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 block with expanded 1x3 / 3x1 outputs (Szegedy et al. 2016, fig. 7); ``max_pool`` for FID's Mixed_7c."""

    def __init__(self, cin: int, max_pool: bool = False):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.pool = nn.MaxPool2d(3, stride=1, padding=1) if max_pool else _avg_pool()
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(self.pool(x))], 1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 as used for FID / IS (Heusel et al. 2017; Salimans et al. 2016): pool3 features and logits."""

    dim = 2048
    num_classes = 1008
    name = "inception-v3"

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)
        self.weights_sha256: Optional[str] = None

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """x: float (N, 1 or 3, H, W) in [0, 1] -> (pool3 features (N, 2048), logits (N, 1008))."""
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise DgmError(f"Inception expects images of shape (N, 1 or 3, H, W), got {tuple(x.shape)}; "
                           "convert the images to grey or RGB first")
        x = x.float()
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if tuple(x.shape[2:]) != (299, 299):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        feats = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return feats, self.fc(feats)


def resolve_weights(path: Optional[str] = None) -> Path:
    """The weight file: ``path``, else ``$DGM_INCEPTION_WEIGHTS``; DgmError when missing. Never downloads."""
    given = path or os.environ.get(ENV_VAR) or None
    if given is None:
        raise DgmError(f"FID Inception weights not given: {_HOWTO}")
    p = Path(given).expanduser()
    if not p.is_file():
        src = "--weights" if path else ENV_VAR
        raise DgmError(f"Inception weights file {str(p)!r} (from {src}) does not exist or is not a file: {_HOWTO}")
    return p


def file_sha256(path, digits: int = 16) -> str:
    """First ``digits`` hex characters of the sha256 of a file, read in 1 MiB chunks (weight files can be ~100 MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:digits]


def _few(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")


def _read_state_dict(path: Path) -> Dict[str, Tensor]:
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and EOF errors all mean "not a (safe) torch file"
        raise DgmError(f"{str(path)!r} is not a safely loadable torch file ({type(e).__name__}); "
                       f"it must be the FID Inception weights: {_HOWTO}") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in sd.items()):
        raise DgmError(f"{str(path)!r} does not hold a dict of tensors; it must be the FID Inception weights: {_HOWTO}")
    return sd


def load_inception(path: Optional[str] = None, device="cpu") -> FIDInceptionV3:
    """Build FIDInceptionV3, load the weight file safely (weights_only=True), check every key and shape; eval mode."""
    file = resolve_weights(path)
    sd = {k: v for k, v in _read_state_dict(file).items() if not k.endswith("num_batches_tracked")}
    model = FIDInceptionV3()
    want = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing, unexpected = set(want) - set(sd), set(sd) - set(want)
    if missing or unexpected:
        parts = [f"{what} {_few(ks)}" for what, ks in (("missing", missing), ("unexpected", unexpected)) if ks]
        raise DgmError(f"{str(file)!r} has the wrong keys ({'; '.join(parts)}); "
                       f"the file must be the FID Inception weights {WEIGHTS_FILE}")
    for k, v in want.items():
        if sd[k].shape != v.shape:
            raise DgmError(f"{str(file)!r}: {k} has shape {tuple(sd[k].shape)}, expected {tuple(v.shape)}; "
                           f"the file must be the FID Inception weights {WEIGHTS_FILE}")
    model.load_state_dict(sd, strict=False)  # only num_batches_tracked may be absent; checked above
    model.weights_sha256 = file_sha256(file)
    return model.to(device).eval()
