"""The one training engine: data order, devices, AMP, clipping, checkpoints, logging, DDP, signals.

Every family plugs in through a ``TrainStep``; nothing here knows what a PixelCNN or a GAN is.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler

from ..errors import DgmError, allocating
from ..models.base import size_flags
from ..data.batching import collate, dataset_batches
from ..viz import save_grid
from .. import checkpoint as ckpt
from .. import interrupt, threads
from .config import TrainConfig
from .distributed import DistInfo, barrier, wrap
from .optim import make_optimizer
from .steps import TrainStep

DEFAULT_STEPS = 1000


class TrainingStopped(DgmError):
    """Training ended early on purpose (signal) or by failure (non-finite loss)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code

    def __reduce__(self):  # picklable (a bench's worker process sends it back to the parent)
        return type(self), (str(self), self.exit_code)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def deterministic_cuda() -> None:
    """Repeatable CUDA kernels: cuDNN's deterministic algorithms without autotuning, cuBLAS with a fixed workspace.
    Needed for a resumed GPU run to equal an uninterrupted one bit for bit; ops with no deterministic CUDA kernel
    only warn."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


class Trainer:
    """Runs ``step`` over ``train_set`` and keeps the run directory up to date."""

    def __init__(self, step: TrainStep, train_set: Dataset, cfg: TrainConfig, run_dir: Path,
                 val_set: Optional[Dataset] = None, dist_info: Optional[DistInfo] = None,
                 resume: bool = False, resume_hint: str = "", identity: Optional[Dict[str, Any]] = None):
        cfg.validate()
        self.step_fn, self.train_set, self.val_set, self.cfg = step, train_set, val_set, cfg
        self.identity = dict(identity or {})  # saved in every checkpoint: what model it holds (dgm.runs.identity)
        self.run_dir = Path(run_dir)
        self.info = dist_info or DistInfo()
        self.device = self.info.device
        self.resume_hint = resume_hint
        if cfg.amp and self.device.type == "cpu":
            from ..devices import check_cpu_amp

            check_cpu_amp()
        elif cfg.amp and self.device.type != "cuda":
            raise DgmError(f"--amp needs a CUDA device or a CPU with native bf16, not {self.device.type}; drop --amp")
        if cfg.batch_size % self.info.world_size:
            raise DgmError(f"--batch-size {cfg.batch_size} does not split evenly over {self.info.world_size} processes; "
                           f"use a multiple of {self.info.world_size}")
        self.local_batch = cfg.batch_size // self.info.world_size
        n_local = len(train_set) // self.info.world_size
        if n_local < self.local_batch:
            raise DgmError(f"--batch-size {cfg.batch_size} is larger than the {len(train_set)} training examples; "
                           f"use --batch-size <= {len(train_set)}")
        self.batches_per_epoch = n_local // self.local_batch
        if cfg.steps is not None:
            self.total_steps = cfg.steps
        elif cfg.epochs is not None:
            self.total_steps = max(1, math.ceil(cfg.epochs * self.batches_per_epoch))
        else:
            self.total_steps = DEFAULT_STEPS
        self.amp_dtype = None
        if cfg.amp:  # CPU: bf16 (check_cpu_amp let it through)
            cuda = self.device.type == "cuda"
            self.amp_dtype = torch.float16 if cuda and not torch.cuda.is_bf16_supported() else torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.optimizers: Dict[str, torch.optim.Optimizer] = {}
        self.schedulers: Dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.params: Dict[str, List[torch.nn.Parameter]] = {}
        self.global_step, self.epoch, self.batch_in_epoch, self.elapsed = 0, 0, 0, 0.0
        self.best = math.inf  # best validation value of the step's ``best_key`` so far
        self._signal: Optional[int] = None
        self._writer = None
        self._resumed_at: Optional[int] = None  # metrics.jsonl is trimmed to this step at the first new row

        if cfg.deterministic and self.device.type == "cuda":
            deterministic_cuda()
        step.model.to(self.device)
        step.setup(self)
        if resume:
            self._restore()
        else:
            torch.manual_seed(cfg.seed + self.info.rank)  # per-process stream (dynamic binarisation, dropout)

    # -- API for family steps --------------------------------------------------------------------
    def wrap(self, module: torch.nn.Module, compile: bool = True) -> torch.nn.Module:
        """The module a step runs its forward through: DDP-wrapped when distributed, and with --compile compiled
        (``dgm.compiling``; ``compile=False``: a module the step knows cannot be, which stays eager)."""
        module = wrap(module.to(self.device), self.info)
        if self.cfg.compile and compile:
            from ..compiling import compiled

            module = compiled(module, f"{type(self.step_fn.model).__name__}'s training step")
        return module

    def optimizer(self, name: str, params, lr: Optional[float] = None, betas: Optional[Tuple[float, float]] = None,
                  kind: Optional[str] = None, decay: Optional[Callable[[int], float]] = None):
        """Create (and register for checkpoints) an optimizer and its schedule.

        ``lr``: the step's resolved rate (default: --lr, else 1e-3). ``betas`` and ``kind`` are the step's defaults,
        which the user's --beta1 / --beta2 / --optimizer override. ``decay``: a family's own factor of the step
        (e.g. CycleGAN's linear decay), multiplied into the --schedule one.
        """
        c = self.cfg
        params = [p for p in params if p.requires_grad]
        lr = lr if lr is not None else (c.lr if c.lr is not None else 1e-3)
        b = betas or (0.9, 0.999)
        betas = (c.beta1 if c.beta1 is not None else b[0], c.beta2 if c.beta2 is not None else b[1])
        kind = c.optimizer or kind or "adam"
        opt = make_optimizer(kind, params, lr, betas, c.weight_decay)
        total, warm = self.total_steps, c.warmup_steps

        def factor(s: int) -> float:
            f = min(1.0, (s + 1) / warm) if warm else 1.0
            if c.schedule == "cosine":
                f *= 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
            elif c.schedule == "exponential":
                f *= c.lr_decay ** s
            return f * decay(s) if decay is not None else f

        self.optimizers[name] = opt
        self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        self.params[name] = params
        return opt

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def update(self, loss: torch.Tensor, name: str) -> None:
        """Backward, clip, step and schedule optimizer ``name``; stop cleanly on a non-finite loss."""
        bad = (~torch.isfinite(loss.detach())).float()
        if self.info.distributed:
            dist.all_reduce(bad)
        if bad.item():
            self._diverged(loss)
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        with self._compiled_backward():
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(opt)
            else:
                loss.backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params[name], self.cfg.grad_clip)
        if self.scaler is not None:
            self.scaler.step(opt)
            self.scaler.update()
        else:
            opt.step()
        self.schedulers[name].step()

    @contextlib.contextmanager
    def _compiled_backward(self):
        """--compile: a backward that fails to compile (AOTAutograd compiles it at the first backward, after the
        forward ran) ends in one line; the checkpoints so far are whole, and an eager resume continues them."""
        try:
            yield
        except Exception as e:  # noqa: BLE001 -- dynamo's and inductor's errors have many types
            from ..compiling import compiler_failure

            if not self.cfg.compile or not compiler_failure(e):
                raise
            raise DgmError(f"--compile: the backward pass could not be compiled ({compiler_failure(e)}); run without "
                           "--compile (a run that has written a checkpoint: "
                           f"{self.resume_hint or 'dgm train ... --resume'})") from None

    # -- data ------------------------------------------------------------------------------------
    def _epoch_batches(self, epoch: int, start: int) -> Iterator:
        """This process's batches of one epoch: a permutation seeded by (seed, epoch), split by rank."""
        sampler = DistributedSampler(self.train_set, num_replicas=self.info.world_size, rank=self.info.rank,
                                     shuffle=True, seed=self.cfg.seed, drop_last=True)
        sampler.set_epoch(epoch)
        if hasattr(self.train_set, "set_epoch"):  # datasets that draw per epoch (random audio windows)
            self.train_set.set_epoch(self.cfg.seed, epoch)
        idx = list(sampler)
        b = self.local_batch
        take = getattr(self.train_set, "take", None)  # a dataset that indexes a whole batch at once (toy points)
        for k in range(start, self.batches_per_epoch):
            ids = idx[k * b:(k + 1) * b]
            x, y = take(ids) if take is not None else collate([self.train_set[i] for i in ids])
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    # -- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        return {
            "step": self.global_step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "elapsed": self.elapsed, "best": self.best,
            "model": self.step_fn.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "family_state": self.step_fn.state_dict(),
            "rng": ckpt.rng_state(),
            **self.identity,
        }

    def save(self) -> Optional[Path]:
        if not self.info.is_main:
            return None
        if self._resumed_at is not None:  # the log goes with the checkpoint: rows past the restored step were redone
            self._truncate_metrics(self._resumed_at)
            self._resumed_at = None
        path = ckpt.checkpoint_path(self.run_dir, self.global_step)
        ckpt.save_atomic(self.state_dict(), path)
        ckpt.prune(self.run_dir, self.cfg.keep_last)
        return path

    def _restore(self) -> None:
        path = ckpt.latest_checkpoint(self.run_dir)
        if path is None:
            raise DgmError(f"{self.run_dir} has no checkpoint to resume from; drop --resume to start a new run")
        # onto the host: load_state_dict copies weights and optimizer moments to the parameters' device, and keeps
        # Adam's step counters on the CPU as in a fresh run (loaded onto a GPU they would stay there)
        state = ckpt.load_checkpoint(path, map_location="cpu")
        if self.identity:
            from ..runs import identity_mismatch

            i = self.identity
            wrong = identity_mismatch(state, i["model_name"], i["model_config"], i["data"], i.get("run_id"))
            if wrong:
                raise DgmError(f"{path} does not belong to the run {self.run_dir}: {wrong}; move it out of "
                               "checkpoints/ to resume from the run's own newest checkpoint")
        ckpt.load_weights(self.step_fn.model, state["model"], path)
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step_fn.load_state_dict(state.get("family_state", {}))
        self.global_step, self.epoch = state["step"], state["epoch"]
        self.batch_in_epoch, self.elapsed = state["batch_in_epoch"], state["elapsed"]
        self.best = state.get("best", math.inf)
        ckpt.set_rng_state(state["rng"])
        if self.info.rank:  # other processes: a fresh stream of their own, fixed by (seed, rank, step)
            torch.manual_seed(self.cfg.seed + self.info.rank + 7919 * self.global_step)
        self._resumed_at = self.global_step

    # -- logging ---------------------------------------------------------------------------------
    def _truncate_metrics(self, step: int) -> None:
        """Drop metric rows written after the checkpoint we resumed from (they are being redone), and lines that
        are not JSON (a write torn by a kill or a full disk), with a warning.

        Called at the first new row, so a resume that fails before training leaves the log as it was; the file is
        replaced atomically, so a failure while trimming leaves it as it was too.
        """
        path = self.run_dir / "metrics.jsonl"
        if not path.is_file():
            return
        text = path.read_text(errors="replace")
        keep, torn = [], 0
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                torn += 1
                continue
            if not isinstance(row, dict):
                torn += 1
            elif not isinstance(row.get("step", 0), (int, float)) or row.get("step", 0) <= step:
                keep.append(line)
        if torn:
            print(f"dgm: warning: {path}: skipped {torn} unreadable line(s) (a write was interrupted)", file=sys.stderr)
        new = "".join(ln + "\n" for ln in keep)
        if new != text:
            with ckpt.atomic_file(path, "w") as f:
                f.write(new)

    def log(self, split: str, values: Dict[str, float]) -> None:
        if not self.info.is_main:
            return
        if self._resumed_at is not None:
            self._truncate_metrics(self._resumed_at)
            self._resumed_at = None
        row = {"step": self.global_step, "split": split, **{k: float(v) for k, v in values.items()}}
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        w = self._tensorboard()
        if w is not None:
            for k, v in values.items():
                w.add_scalar(f"{split}/{k}", float(v), self.global_step)

    def _tensorboard(self):
        if self._writer is None and self.info.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.run_dir / "tb"))
        return self._writer

    def sample_grid(self) -> Optional[Path]:
        if not self.info.is_main or self.cfg.n_samples == 0:
            return None
        gen = torch.Generator().manual_seed(self.cfg.seed)  # same noise at every snapshot; global RNG untouched
        try:
            with allocating(f"drawing the sample grid (--n-samples {self.cfg.n_samples})",
                            "lower --n-samples (0: no grid)"):
                images = self.step_fn.samples(self.cfg.n_samples, gen)
        except interrupt.Interrupted:  # a signal: the loop stops right after, with a checkpoint
            return None
        if images is None:
            return None
        path = save_grid(images, self.run_dir / "samples" / f"step-{self.global_step:08d}.png")
        w = self._tensorboard()
        if w is not None:
            from ..viz import make_grid

            arr = make_grid(images)
            w.add_image("samples", torch.from_numpy(arr if arr.ndim == 3 else arr[..., None]), self.global_step,
                        dataformats="HWC")
        return path

    def evaluate(self) -> Dict[str, float]:
        if self.val_set is None or not self.info.is_main:
            return {}
        with torch.random.fork_rng(devices=[]):  # evaluation never moves the training RNG
            torch.manual_seed(self.cfg.seed + 12345)
            try:
                with allocating("validating (in batches of 256 images)",
                                f"lower the model's size ({size_flags(self.step_fn.model.config)})"):
                    values = self.step_fn.evaluate(dataset_batches(self.val_set, 256, self.device))
            except interrupt.Interrupted:  # a signal: this validation is dropped, the loop stops with a checkpoint
                return {}
        key = self.step_fn.best_key
        if key is not None and key in values and values[key] < self.best:  # keep the best-on-validation model (early stopping)
            self.best = values[key]
            ckpt.save_atomic(self.state_dict(), ckpt.best_path(self.run_dir))
        self.log("val", values)
        return values

    def _within_eval_share(self, step: int) -> bool:
        """Whether a scheduled validation (--eval-every) runs: not once the validations of this process so far took
        more than --eval-share of its training time (the final validation always runs). The first note says so."""
        share = self.cfg.eval_share
        train_seconds = self.elapsed - self._elapsed_at_start - self._val_seconds
        if not share or self._val_seconds <= share * train_seconds:
            return True
        if not self._eval_skip_noted and self.info.is_main:
            self._eval_skip_noted = True
            print(f"dgm: note: validations took {self._val_seconds:.1f} s of {train_seconds:.1f} s of training, more "
                  f"than --eval-share {share:g}: --eval-every validations are skipped until training catches up "
                  f"(first at step {step}; --eval-share 0 keeps them all)", file=sys.stderr)
        return False

    # -- signals and failures --------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        self._signal = signum
        interrupt.request(signum)  # long loops (validation, sampling) check it and stop within seconds
        signal.signal(signum, signal.SIG_DFL)  # a second signal ends at once

    def _diverged(self, loss: torch.Tensor) -> None:
        last = ckpt.latest_checkpoint(self.run_dir)
        where = (f"last good checkpoint: {last}" if last else
                 "no checkpoint was written: the same --out can be started again")
        lrs = ", ".join(f"{o.param_groups[0]['lr']:.3g}" for o in self.optimizers.values())
        raise TrainingStopped(f"loss became {loss.item()} at step {self.global_step + 1} (lr {lrs}); training stopped "
                              f"and nothing was saved from it ({where}); lower --lr or set --grad-clip", 3)

    # -- the loop --------------------------------------------------------------------------------
    def fit(self) -> Dict[str, Any]:
        from tqdm.auto import tqdm

        cfg, info = self.cfg, self.info
        if info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        handlers = {}
        try:
            for s in (signal.SIGINT, signal.SIGTERM):
                handlers[s] = signal.signal(s, self._on_signal)
        except ValueError:  # not the main thread: no signal handling
            pass
        bar = tqdm(total=self.total_steps, initial=self.global_step, disable=not (cfg.progress and info.is_main),
                   dynamic_ncols=True, mininterval=1.0 if sys.stderr.isatty() else 30.0, desc="train")
        sums: Dict[str, float] = {}
        n_sum, images, t_start, reason = 0, 0, time.perf_counter(), "done"
        elapsed0, cpu0 = self.elapsed, time.process_time()
        self._elapsed_at_start, self._val_seconds, self._eval_skip_noted = elapsed0, 0.0, False
        t_threads = time.perf_counter()
        try:
            self.step_fn.model.train()
            while self.global_step < self.total_steps and reason == "done":
                size = size_flags(self.step_fn.model.config)
                step_memory = allocating(f"for a training step (--batch-size {cfg.batch_size})",
                                         f"lower --batch-size or the model's size ({size})")
                for x, y in self._epoch_batches(self.epoch, self.batch_in_epoch):
                    with step_memory:
                        values = self.step_fn((x, y))
                    self.global_step += 1
                    self.batch_in_epoch += 1
                    if self.batch_in_epoch >= self.batches_per_epoch:
                        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                    images += x.shape[0] * info.world_size
                    self.elapsed = elapsed0 + time.perf_counter() - t_start
                    for k, v in values.items():
                        sums[k] = sums.get(k, 0.0) + float(v)
                    n_sum += 1
                    bar.update(1)
                    s = self.global_step
                    if time.perf_counter() - t_threads >= 5.0:  # give cores back as other dgm processes start
                        threads.adapt()
                        t_threads = time.perf_counter()
                    if s % cfg.log_every == 0 or s == self.total_steps:
                        avg = {k: v / n_sum for k, v in sums.items()}
                        bar.set_postfix({k: f"{v:.4g}" for k, v in avg.items() if k in ("loss", "bits_per_dim")})
                        rate = images / max(self.elapsed - elapsed0, 1e-9)
                        lr = next(iter(self.optimizers.values())).param_groups[0]["lr"] if self.optimizers else 0.0
                        self.log("train", {**avg, "lr": lr, "images_per_sec": rate, "time": self.elapsed,
                                           "threads": torch.get_num_threads()})
                        sums, n_sum = {}, 0
                    if s % cfg.ckpt_every == 0 and s < self.total_steps:
                        self.save()
                    if cfg.sample_every and s % cfg.sample_every == 0 and s < self.total_steps:
                        self.sample_grid()
                        barrier(info)
                    if cfg.eval_every and s % cfg.eval_every == 0 and s < self.total_steps and \
                            self._within_eval_share(s):
                        t_val = time.perf_counter()
                        self.evaluate()
                        barrier(info)
                        self._val_seconds += time.perf_counter() - t_val
                    if self._signal is not None:
                        reason = "signal"
                    elif cfg.max_minutes is not None and self.elapsed - elapsed0 >= cfg.max_minutes * 60:
                        reason = "time budget"
                    elif cfg.max_cpu_minutes is not None and time.process_time() - cpu0 >= cfg.max_cpu_minutes * 60:
                        reason = "cpu budget"
                    if s >= self.total_steps or reason != "done":
                        break
            bar.close()
            ckpt_path = self.save()
            barrier(info)
            if reason == "signal":
                name = signal.Signals(self._signal).name
                raise TrainingStopped(f"interrupted by {name} at step {self.global_step}; checkpoint saved to {ckpt_path}; "
                                      f"continue with: {self.resume_hint or 'dgm train ... --resume'}",
                                      130 if self._signal == signal.SIGINT else 143)
            samples = self.sample_grid()
            metrics = self.evaluate()
            barrier(info)
            if self._signal is not None:  # during the final samples or validation: the run itself is complete
                name = signal.Signals(self._signal).name
                raise TrainingStopped(f"interrupted by {name} during the final samples and validation, after the last "
                                      f"step ({self.global_step}); checkpoint saved to {ckpt_path}; the run is "
                                      "complete: measure it with dgm eval",
                                      130 if self._signal == signal.SIGINT else 143)
            run_seconds = self.elapsed - elapsed0
            return {"steps": self.global_step, "stopped_by": reason, "seconds": run_seconds,
                    "images_per_sec": images / max(run_seconds, 1e-9), "val": metrics,
                    "samples": str(samples) if samples else None, "checkpoint": str(ckpt_path) if ckpt_path else None}
        finally:
            bar.close()
            interrupt.clear()
            for s, h in handlers.items():
                signal.signal(s, h)
            if self._writer is not None:
                self._writer.close()
                self._writer = None
