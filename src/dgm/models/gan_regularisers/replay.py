"""Experience replay (Pfau & Vinyals 2016; Shrivastava et al. 2017, sec. 2.3): D is shown, besides the newest fakes,
fakes G made earlier, kept in a buffer of at most K samples (detached; with their labels in a class-conditional
run, so a replayed fake is scored with the label it was drawn for).

Each D update: once the buffer holds samples, the last round(P b) of the b fakes D sees are replaced by buffer
samples drawn uniformly (with replacement); then the update's b new fakes refresh the buffer: appended while it has
room, afterwards each one overwrites a uniformly drawn slot. The draws come from a stream fixed by (seed, D update,
process), like the step's latents, and the buffer is in the checkpoint: a resumed run replays what an uninterrupted
one does. Under DDP each process keeps its own buffer of its own fakes. G's update uses the new fakes only, and so do
the unrolled copies of D's update (--unroll-steps: G's reaction term needs fakes with a gradient path to G).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor

from ...errors import DgmError
from .base import Regulariser, register


class ReplayBuffer:
    """At most ``size`` samples (and their labels, if given), filled in order, then overwritten at random slots."""

    def __init__(self, size: int):
        self.size = size
        self.samples: Optional[Tensor] = None  # (count, ...) on the CPU
        self.labels: Optional[Tensor] = None

    def __len__(self) -> int:
        return 0 if self.samples is None else self.samples.shape[0]

    def draw(self, n: int, gen: torch.Generator) -> Tuple[Tensor, Optional[Tensor]]:
        """n samples (and labels) drawn uniformly with replacement."""
        idx = torch.randint(len(self), (n,), generator=gen)
        return self.samples[idx], (None if self.labels is None else self.labels[idx])

    def push(self, x: Tensor, y: Optional[Tensor], gen: torch.Generator) -> None:
        """Store the new samples x (labels y): into the free slots first, then each over a uniformly drawn slot."""
        x = x.detach().cpu()
        y = None if y is None else y.detach().cpu()
        room = self.size - len(self)
        if room > 0:
            head = x[:room]
            self.samples = head.clone() if self.samples is None else torch.cat([self.samples, head])
            if y is not None:
                self.labels = y[:room].clone() if self.labels is None else torch.cat([self.labels, y[:room]])
            x, y = x[room:], (None if y is None else y[room:])
        if x.shape[0]:
            slots = torch.randint(self.size, (x.shape[0],), generator=gen)
            self.samples[slots] = x  # a slot drawn twice keeps the later sample (index_put_ in order)
            if y is not None:
                self.labels[slots] = y

    def state_dict(self) -> Dict[str, Any]:
        out = {} if self.samples is None else {"samples": self.samples.clone()}
        if self.labels is not None:
            out["labels"] = self.labels.clone()
        return out

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.samples, self.labels = state.get("samples"), state.get("labels")


@register("replay", "experience replay (Pfau & Vinyals 2016): D also sees past fakes from a buffer of K")
@dataclass
class Replay(Regulariser):
    non_negative = ("replay",)
    replay: int = 0                   # experience replay: a buffer of at most K past fakes shown to D (0: off)
    replay_share: float = 0.5         # share P of each fake batch D sees drawn from the replay buffer (in [0, 1])

    gan_step_only = True

    def check(self, config) -> None:
        if not 0 <= self.replay_share <= 1:
            raise DgmError(f"--replay-share must be in [0, 1], got {self.replay_share}")

    def setup(self, step) -> None:
        step.replay_buffer = ReplayBuffer(self.replay)

    def _stream(self, step) -> torch.Generator:
        """The draws of this D update on this process: a stream fixed by (seed, D update, process), as the step's z."""
        e = step.engine
        offset = (2 << 40) + e.info.rank * (1 << 36)
        return torch.Generator().manual_seed(e.cfg.seed * 1_000_003 + step.d_steps + offset)

    def shared(self, b: int, stored: int) -> int:
        """How many of b fakes D sees come from a buffer of ``stored`` samples: round(P b), 0 while it is empty."""
        return int(round(self.replay_share * b)) if stored else 0

    def d_fakes(self, step, fake, y):
        buf, gen = step.replay_buffer, self._stream(step)
        k = self.shared(fake.shape[0], len(buf))
        shown, shown_y = fake, y
        if k:
            old, old_y = buf.draw(k, gen)
            shown = torch.cat([fake[:fake.shape[0] - k], old.to(fake.device, fake.dtype)])
            if y is not None:
                shown_y = torch.cat([y[:y.shape[0] - k], old_y.to(y.device)])
        buf.push(fake, y, gen)
        return shown, shown_y

    def state_dict(self, step):
        return step.replay_buffer.state_dict()

    def load_state_dict(self, step, state) -> None:
        step.replay_buffer.load_state_dict(state)
