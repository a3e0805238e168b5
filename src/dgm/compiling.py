"""``--compile``: ``torch.compile`` of the networks where it pays, and eager where it cannot be had.

Training (``compiled``, called by the engine's ``Trainer.wrap``): the module a family step runs its forward through
is compiled beside the model, not in place, so the model's parameters keep their plain names (checkpoints of a
compiled run load into an eager model and back) and what else calls the model (sample grids, validation) stays
eager. AOTAutograd compiles the backward of that forward too; the optimizer step stays eager. A step leaves out a
module whose backward must be differentiated again (a GAN critic with a gradient penalty, ``create_graph``): compiled
graphs do not support double backward.

Sampling and evaluation (``compile_model``): the model's outermost networks (``ImageModel.compile_targets``) are
compiled in place (as ``nn.Module.compile`` does: ``module(x)`` runs the compiled forward, the names of the
parameters are unchanged). Cached autoregressive sampling steps pixel by pixel through small per-layer updates outside ``forward``
and stays eager; one-pass samplers (GANs, VAE decoders), naive sampling and likelihoods run compiled.

Where ``torch.compile`` is missing or fails (no C++ compiler for inductor, an operation dynamo cannot trace, a Python
version the installed torch cannot compile for), one line ``dgm: warning: --compile: ...; running eagerly`` is
printed and the eager module runs from then on: the results are the eager path's.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Optional

import torch
import torch.nn as nn

#: the torch.compile backend (tests use "aot_eager": the same graph capture and autograd, without inductor's slow C++
#: code generation)
BACKEND = "inductor"

_warned = False  # one warning line per process, whatever fails how often


def _reason(exc: BaseException) -> str:
    """The exception's type and first line, short."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0][:160]}" if lines else type(exc).__name__


def _warn(what: str, exc: BaseException) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    print(f"dgm: warning: --compile: {what} could not be compiled ({_reason(exc)}); running eagerly", file=sys.stderr)


def compiler_failure(exc: BaseException) -> str:
    """A short reason where ``exc`` comes from torch's compiler stack (dynamo, AOTAutograd, inductor), else ""."""
    where = type(exc).__module__ or ""
    text = str(exc)
    if where.startswith(("torch._dynamo", "torch._inductor", "torch._functorch")) or \
            ("double backward" in text and "compile" in text):
        return _reason(exc)
    return ""


def _passes_through(exc: BaseException) -> bool:
    """Exceptions that are no failure of the compiler: the model's own refusals (a wrong input), a stop asked for, no
    memory. They propagate as they would from the eager module."""
    from . import interrupt
    from .errors import DgmError

    oom = getattr(torch, "OutOfMemoryError", MemoryError)
    return isinstance(exc, (DgmError, interrupt.Interrupted, MemoryError, oom))


class _Fallback:
    """Call ``compiled``; on its first failure, warn and call ``eager`` from then on (this call included)."""

    def __init__(self, compiled: Optional[Callable], eager: Callable, what: str):
        self.compiled, self.eager, self.what = compiled, eager, what

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiled is not None:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 -- dynamo's and inductor's errors have many types
                if _passes_through(e):
                    raise
                _warn(self.what, e)
                self.compiled = None
        return self.eager(*args, **kwargs)


def _compile(fn: Callable, what: str) -> Optional[Callable]:
    """``torch.compile(fn)``, or None (after the warning) where this torch cannot compile at all."""
    # inductor draws random numbers its own way unless told to call PyTorch's generators: fallback_random keeps a
    # compiled VAE's reparameterisation noise (and a seeded run) equal to the eager run's
    options = {"options": {"fallback_random": True}} if BACKEND == "inductor" else {}
    try:
        return torch.compile(fn, backend=BACKEND, **options)
    except Exception as e:  # noqa: BLE001 -- e.g. RuntimeError on a Python version dynamo does not support
        if _passes_through(e):
            raise
        _warn(what, e)
        return None


class Compiled(nn.Module):
    """``module`` run through ``torch.compile`` (falling back to eager); its parameters are ``module``'s.

    Only the training step calls it; the state that checkpoints save is the model's own, never this wrapper's."""

    def __init__(self, module: nn.Module, what: str = ""):
        super().__init__()
        self.module = module
        what = what or type(getattr(module, "module", module)).__name__  # a DDP-wrapped module: the one inside
        self._run = _Fallback(_compile(module, what), module, what)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._run(*args, **kwargs)


def compiled(module: nn.Module, what: str = "") -> nn.Module:
    """``module`` compiled for a training step (see the module docstring)."""
    return Compiled(module, what)


def compile_in_place(module: nn.Module, what: str = "") -> nn.Module:
    """Compile ``module``'s forward in place (``module(x)`` runs compiled; ``state_dict`` is unchanged); returns it."""
    what = what or type(module).__name__

    def call(*args: Any, **kwargs: Any) -> Any:
        return module._call_impl(*args, **kwargs)

    # nn.Module.compile() stores torch.compile(self._call_impl) in _compiled_call_impl, which __call__ runs when set.
    # Dynamo does not trace a frame of torch's own code, so that compiles nothing for a torch module such as
    # nn.Sequential (a VAE's encoder); a function of ours that calls _call_impl is traced into it, hooks included
    fn = _compile(call, what)
    if fn is not None and hasattr(module, "_compiled_call_impl"):
        module._compiled_call_impl = _Fallback(fn, module._call_impl, what)
    return module


def compile_model(model: nn.Module) -> nn.Module:
    """Compile in place the networks of a model loaded for sampling or evaluation (``model.compile_targets()``,
    else the model itself); returns the model."""
    targets = model.compile_targets() if hasattr(model, "compile_targets") else (model,)
    for t in targets:
        compile_in_place(t)
    return model


__all__ = ["BACKEND", "Compiled", "compiled", "compile_in_place", "compile_model", "compiler_failure"]
