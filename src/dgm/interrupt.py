"""Prompt stops: a SIGINT or SIGTERM that the training engine has noted is checked inside the long loops below it
(validation batches, an order ensemble, element-by-element sampling), so that a run stops within seconds wherever it
is instead of finishing a validation of minutes first.

The engine calls ``request(signum)`` from its signal handler and ``clear()`` when it returns; a loop calls
``check()``, which raises ``Interrupted`` once a stop is requested. Outside a training run nothing is requested and
``check()`` costs one comparison.
"""
from __future__ import annotations

from typing import Optional

_requested: Optional[int] = None


class Interrupted(Exception):
    """A stop was requested (``signum``: the signal) while a long loop ran; the engine catches it."""

    def __init__(self, signum: int):
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


def request(signum: int) -> None:
    global _requested
    _requested = signum


def clear() -> None:
    global _requested
    _requested = None


def requested() -> Optional[int]:
    return _requested


def check() -> None:
    """Raise ``Interrupted`` if a stop was requested."""
    if _requested is not None:
        raise Interrupted(_requested)


__all__ = ["Interrupted", "request", "clear", "requested", "check"]
