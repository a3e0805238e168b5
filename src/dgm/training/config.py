"""Training options shared by every family (saved in each run's config.json)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Dict, Optional

from ..errors import DgmError
from ..models.base import MAX_SEED  # the largest --seed (numpy's seed range; every seed of a run is derived from it)
from .optim import OPTIMIZERS  # the names of --optimizer

# Keys that config.json "train" sections of older dgm versions hold but TrainConfig no longer has; they are accepted
# and dropped on load. Empty so far: every version wrote TrainConfig.to_dict(), and no field was ever removed (git
# log -p of this file). A field that is removed goes here, so that old run directories still load.
LEGACY_KEYS: frozenset = frozenset()


@dataclass
class TrainConfig:
    steps: Optional[int] = None       # optimisation steps (default 1000 when neither steps nor epochs)
    epochs: Optional[float] = None    # or passes over the training split
    batch_size: int = 64              # global batch: split evenly over DDP processes
    lr: Optional[float] = None        # None: the family's default (1e-3 for likelihood models; the paper's for GANs)
    optimizer: Optional[str] = None   # adam | adamw | sgd | rmsprop (None: adam, or the GAN objective's paper choice)
    beta1: Optional[float] = None     # None: 0.9 (or the GAN objective's paper value)
    beta2: Optional[float] = None     # None: 0.999
    weight_decay: float = 0.0         # L2 penalty (decoupled for adamw)
    schedule: str = "constant"        # constant | cosine | exponential
    lr_decay: float = 0.99995         # per-step factor of the exponential schedule
    warmup_steps: int = 0             # steps of linear learning-rate warm-up (0: none)
    grad_clip: Optional[float] = None  # max global gradient norm
    seed: int = 0                     # seeds every random draw of the run (0..2**32-1)
    device: str = "auto"              # auto | cpu | cuda | cuda:N
    amp: bool = False                 # mixed precision: on CUDA bf16 where supported, else fp16; on a CPU bf16 only where it has native bf16 (avx512_bf16 or AMX), refused elsewhere: without it bf16 trained at 0.07-0.30x the speed of float32 (benchmarks/amp_compile.py)
    compile: bool = False             # torch.compile each step's forward and its backward (the optimizer step, a GAN critic with a gradient penalty and growing GANs stay eager); the first steps compile (30-75 s on a CPU); measured 0.64-1.37x the eager speed on a 2-core CPU, no gain (benchmarks/amp_compile.py); eager with a one-line warning where compiling fails; --resume keeps it, --compile/--no-compile change it
    deterministic: bool = False       # CUDA: deterministic kernels, so resume is bit for bit (slower); CPU always is
    ckpt_every: int = 500             # save a checkpoint every this many steps (and at the end)
    keep_last: int = 3                # checkpoints kept (older ones deleted; best.pt is kept apart)
    log_every: int = 25               # steps between logged training losses (metrics.jsonl)
    eval_every: int = 0               # 0: evaluate on the val split at the end only
    eval_share: float = 0.1           # --eval-every skips a validation once validations took this share of training time (0: never skips)
    sample_every: int = 0             # 0: sample grid at the end only
    n_samples: int = 64               # images in each sample grid (0: none)
    max_minutes: Optional[float] = None  # stop (and save) after this much training (wall-clock) time
    max_cpu_minutes: Optional[float] = None  # or after this much CPU time of this process (fair budgets on a busy machine)
    progress: bool = True             # progress bar on stderr
    threads: Optional[int] = None     # CPU threads, stored for --resume (none: a fair share of the cores among the dgm processes, followed as they start and end)

    def validate(self) -> None:
        def bad(flag, why):
            raise DgmError(f"--{flag} {why}")

        for f in dataclasses.fields(self):  # nan and inf are never a meaningful option value
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                bad(f.name.replace("_", "-"), f"must be a finite number, got {v}")
        if self.steps is not None and self.steps < 1:
            bad("steps", f"must be >= 1, got {self.steps}")
        if self.epochs is not None and self.epochs <= 0:
            bad("epochs", f"must be > 0, got {self.epochs}")
        if self.steps is not None and self.epochs is not None:
            raise DgmError("give --steps or --epochs, not both")
        if self.batch_size < 1:
            bad("batch-size", f"must be >= 1, got {self.batch_size}")
        if self.lr is not None and not self.lr > 0:
            bad("lr", f"must be > 0, got {self.lr}")
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            bad("optimizer", f"must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            if v is not None and not 0 <= v < 1:
                bad(name, f"must be in [0, 1), got {v}")
        if not self.weight_decay >= 0:
            bad("weight-decay", f"must be >= 0, got {self.weight_decay}")
        if not 0 < self.lr_decay <= 1:
            bad("lr-decay", f"must be in (0, 1], got {self.lr_decay}")
        if not 0 <= self.seed <= MAX_SEED:
            bad("seed", f"must be in 0..{MAX_SEED}, got {self.seed}")
        if self.schedule not in ("constant", "cosine", "exponential"):
            bad("schedule", f"must be constant, cosine or exponential, got {self.schedule!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            bad("grad-clip", f"must be > 0, got {self.grad_clip}")
        for name in ("ckpt_every", "keep_last", "log_every"):
            if getattr(self, name) < 1:
                bad(name.replace("_", "-"), f"must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "sample_every", "warmup_steps", "n_samples"):
            if getattr(self, name) < 0:
                bad(name.replace("_", "-"), f"must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.eval_share <= 1:
            bad("eval-share", f"must be in [0, 1] (0: validate at every --eval-every), got {self.eval_share}")
        if self.threads is not None and not 1 <= self.threads <= 4096:
            bad("threads", f"must be in 1..4096, got {self.threads}")
        for name in ("max_minutes", "max_cpu_minutes"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                bad(name.replace("_", "-"), f"must be > 0, got {v}")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TrainConfig":
        """Like ``ModelConfig.from_dict``: an unknown key is an error (a typo must not be ignored silently);
        ``LEGACY_KEYS`` of older run directories are dropped."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names - LEGACY_KEYS)
        if unknown:
            raise DgmError(f"{cls.__name__} has no option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**{k: v for k, v in d.items() if k in names})
