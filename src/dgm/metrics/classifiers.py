"""Small conv classifiers trained by the project: feature networks for FID/KID/P/R and class probabilities for IS."""
from __future__ import annotations

import difflib
import time
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.sources import PAD
from ..errors import DgmError
from ..nn.blocks import evaluating
from .inception import file_sha256

CLASSIFIERS = ("digits", "fashion-mnist")
WEIGHTS_DIR = Path(__file__).parent / "weights"
# per dataset: architecture (input shape, stage widths, convs per stage, feature dim) and augmentation shift (px)
_ARCH = {"digits": dict(channels=1, size=8, widths=(32, 64), dim=128, num_classes=10),
         "fashion-mnist": dict(channels=1, size=28, widths=(32, 64, 64), dim=128, num_classes=10, depth=2)}
_SHIFT = {"digits": 1, "fashion-mnist": 1}
# inputs also accepted zero-padded by this many px per side (--image-size 32 runs); the border is cropped back off
_PADDED = {"fashion-mnist": PAD}
# augmentation: per image, fixed-threshold binarization with P_FIXED, Bernoulli binarization with P_DYNAMIC
P_FIXED, P_DYNAMIC = 0.5, 0.1


class SmallClassifier(nn.Module):
    """forward(x) with x float (N, C, H, W) in [0, 1] -> (features (N, dim), logits (N, num_classes))."""

    def __init__(self, name: str, channels: int, size: int, widths: Sequence[int], dim: int, num_classes: int,
                 depth: int = 1, dropout: float = 0.2):
        super().__init__()
        self.name, self.channels, self.size = name, int(channels), int(size)
        self.widths, self.dim, self.num_classes = tuple(int(w) for w in widths), int(dim), int(num_classes)
        self.depth = int(depth)
        self.crop = _PADDED.get(self.name, 0)  # a (size + 2 crop)^2 input is cropped to size^2 (the exact inverse of
        #                                         the zero padding of --image-size 32)
        self.weights_sha256 = ""  # set when loaded from (or saved to) a weight file
        layers, c, s = [], self.channels, self.size
        for w in self.widths:  # depth x (conv 3x3 -> BN -> ReLU), then max-pool 2, per stage
            for _ in range(self.depth):
                layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
                c = w
            layers.append(nn.MaxPool2d(2))
            s //= 2
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Linear(c * s * s, self.dim)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.dim, self.num_classes)

    def config(self) -> dict:
        """The hyper-parameters that rebuild this architecture."""
        return dict(name=self.name, channels=self.channels, size=self.size, widths=list(self.widths), dim=self.dim,
                    num_classes=self.num_classes, depth=self.depth)

    def check_input(self, x: Tensor) -> None:
        """One-line DgmError unless x is (N, channels, size, size), or (N, channels, size + 2 crop, size + 2 crop)."""
        want = (self.channels, self.size, self.size)
        padded = (self.channels, self.size + 2 * self.crop, self.size + 2 * self.crop)
        if x.ndim != 4 or tuple(x.shape[1:]) not in (want, padded):
            also = f" or (N, {padded[0]}, {padded[1]}, {padded[2]}) (zero-padded)" if self.crop else ""
            raise DgmError(f"the {self.name} classifier expects images of shape (N, {want[0]}, {want[1]}, {want[2]})"
                           f"{also}, got {tuple(x.shape)}; use --features inception-v3 for other image sizes")

    def uncrop(self, x: Tensor) -> Tensor:
        """x with the padding border of a --image-size 32 run cropped off (x itself when it has the size)."""
        c = self.crop if x.shape[-1] != self.size else 0
        return x[..., c:x.shape[-2] - c, c:x.shape[-1] - c] if c else x

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        self.check_input(x)
        x = self.uncrop(x)
        h = F.relu(self.fc(self.conv(x.float()).flatten(1)))
        return h, self.head(self.drop(h))


def _build(name: str) -> SmallClassifier:
    if name not in _ARCH:
        close = difflib.get_close_matches(name, CLASSIFIERS, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DgmError(f"no shipped classifier for {name!r}{hint} (known: {', '.join(CLASSIFIERS)}); "
                       "use --features inception-v3 for other datasets")
    return SmallClassifier(name, **_ARCH[name])


def save_classifier(model: SmallClassifier, path) -> str:
    """Save {"config", "state_dict"} (float32, CPU) to path; returns and records the file's short sha256."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": model.config(), "state_dict": state}, path)
    model.weights_sha256 = file_sha256(path)
    return model.weights_sha256


def load_classifier(name: str, device="cpu", path=None) -> SmallClassifier:
    """The shipped classifier for dataset `name` (or the file at `path`), in eval mode; never downloads."""
    _build(name)  # unknown names fail before any file access
    path = Path(path) if path is not None else WEIGHTS_DIR / f"{name}.pt"
    if not path.is_file():
        raise DgmError(f"classifier weights {path} are missing; reinstall dgm or run "
                       f"`python benchmarks/train_feature_nets.py --data {name}`")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    cfg = dict(blob["config"])
    model = SmallClassifier(cfg.pop("name"), **cfg)
    model.load_state_dict(blob["state_dict"])
    model.weights_sha256 = file_sha256(path)
    return model.to(device).eval()


def _augment(raw: Tensor, raw_levels: int, shift: int, g: torch.Generator) -> Tensor:
    """Raw uint8 levels -> [0, 1] floats, some images binarized (fixed or Bernoulli), all shifted by <= shift px."""
    x = raw.float() / (raw_levels - 1)
    u = torch.rand(x.shape[0], 1, 1, 1, generator=g)
    fixed = (raw.float() >= (raw_levels - 1) / 2).float()
    dynamic = torch.bernoulli(x, generator=g)
    x = torch.where(u < P_FIXED, fixed, torch.where(u < P_FIXED + P_DYNAMIC, dynamic, x))
    if shift:
        n, _, h, w = x.shape
        pad = F.pad(x, (shift,) * 4)
        dy, dx = torch.randint(0, 2 * shift + 1, (2, n), generator=g).tolist()
        x = torch.stack([pad[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    return x


def _inputs(dataset: str, split: str, binarize: Optional[str] = None, limit: Optional[int] = None):
    from ..data import load_dataset

    ds = load_dataset(dataset, split, binarize=binarize)
    x, y = ds.tensors()
    x = x / (ds.spec.levels - 1)
    return (x[:limit], y[:limit]) if limit is not None else (x, y)


@torch.no_grad()
def accuracy(model: SmallClassifier, dataset: str, split: str = "test", limit: Optional[int] = None,
             binarize: Optional[str] = None, batch_size: int = 1000) -> float:
    """Top-1 accuracy on the first `limit` images of a split (binarize="fixed" for the binarized split)."""
    x, y = _inputs(dataset, split, binarize, limit)
    device = next(model.parameters()).device
    with evaluating(model):
        correct = sum(int((model(xb.to(device))[1].argmax(1).cpu() == yb).sum())
                      for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    return correct / len(y)


def train_classifier(dataset: str, *, steps: int, batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
                     progress: bool = True) -> Tuple[SmallClassifier, dict]:
    """Adam with cosine decay on the train split, binarization/shift augmentation; bit-for-bit repeatable per seed."""
    from tqdm.auto import tqdm

    from ..data import load_dataset

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = _build(dataset)
    ds = load_dataset(dataset, "train")
    raw, labels, shift = ds.raw, ds.labels, _SHIFT[dataset]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    order, pos, t0 = torch.randperm(len(labels), generator=g), 0, time.perf_counter()
    model.train()
    bar = tqdm(range(steps), desc=f"classifier {dataset}", disable=not progress)
    for _ in bar:
        if pos + batch_size > len(order):
            order, pos = torch.randperm(len(labels), generator=g), 0
        idx, pos = order[pos:pos + batch_size], pos + batch_size
        loss = F.cross_entropy(model(_augment(raw[idx], ds.raw_levels, shift, g))[1], labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    seconds = time.perf_counter() - t0
    model.eval()
    info = dict(dataset=dataset, steps=steps, batch_size=batch_size, lr=lr, seed=seed, seconds=seconds,
                final_loss=loss.item(), val_acc=accuracy(model, dataset, "val"),
                params=sum(p.numel() for p in model.parameters()))
    if progress:
        print(f"{dataset}: {steps} steps in {seconds:.1f} s, val accuracy {info['val_acc']:.4f}")
    return model, info
