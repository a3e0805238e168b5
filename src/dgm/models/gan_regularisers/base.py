"""The registry of GAN regularisers: parts any architecture and objective may use (R1, packing, EMA, ...).

A regulariser is ONE dataclass in its own file of this package, registered with ``@register(name, help)``. Its
fields are its options (flags, with defaults and a trailing ``# help`` comment; the first is its switch, e.g.
``ema_decay``), ``active()`` says whether a run uses it, ``resolve`` / ``check`` fill and validate its values
against the composed config, and its hooks act where the GAN builds its networks and trains them; every hook is a
no-op here, so a regulariser writes only those it needs. ``GANConfig.regularisers`` holds the ones a run uses
(name -> options), in registration order (the file names' order), which is also the order their hooks run in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ...errors import DgmError
from ...part_options import Options, names
from ...registry import Registry

REGULARISERS: Registry = Registry("GAN regulariser", list_name="regularisers")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass
class Regulariser(Options):
    """Base of a regulariser: its fields are its options; the methods below are its declarations and hooks."""

    #: its name in REGULARISERS and in config.json's ``regularisers`` mapping (set by ``register``)
    part_name = ""
    #: > 0: ``d_batch_layer(features)`` appends this many features to D's representation (the head reads them)
    d_batch_features = 0
    #: True: the GAN step computes D's representations of the reals and fakes for ``g_loss_on_d``
    wants_representations = False
    #: True: D scores the real and fake batches in one joint pass (``--d-batches joint``)
    d_joint = False
    #: True: G stays eager under --compile (a value its forward reads changes every step and would recompile it)
    eager_g = False
    #: True: only ``dgm train gan``'s step implements it; the GAN models with a step of their own refuse it
    gan_step_only = False

    # -- declarations --------------------------------------------------------------------------------------------
    def active(self) -> bool:
        """Whether a run with these values uses the regulariser (default: its first option, the switch, is set)."""
        return bool(getattr(self, names(type(self))[0]))

    def resolve(self, config, given: Tuple[str, ...]) -> None:
        """Fill values from the composed ``config`` (an architecture's paper default) for the options not ``given``."""

    @classmethod
    def refuse(cls, given: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        """`dgm train`: options of this regulariser given explicitly (``given``, by name) while it is off (with the
        architecture's ``defaults`` for the rest) are refused in one line naming its switch."""
        own = {k: given[k] for k in names(cls) if k in given}
        switch = names(cls)[0]
        if not set(own) - {switch}:
            return
        if cls(**{**{k: v for k, v in defaults.items() if k in names(cls)}, **own}).active():
            return
        extra = [flag(k) for k in own if k != switch]
        one = len(extra) == 1
        raise DgmError(f"{' '.join(extra)}: {'an option' if one else 'options'} of regulariser {cls.part_name}, which "
                       f"is off; give {flag(switch)} too, or drop {'it' if one else 'them'}")

    # -- hooks: the networks -------------------------------------------------------------------------------------
    def build(self, model) -> None:
        """After the GAN's G and D exist (and spectral norm is on): add modules (EMA: the averaged copy of G)."""

    def d_batch_layer(self, features: int):
        """D's batch-level layer reading ``features`` columns (see ``d_batch_features``)."""
        raise NotImplementedError

    # -- hooks: the GAN step (``step``: the training step, handed in; models never import training) ---------------
    def setup(self, step) -> None:
        """Once the step has its engine (e.g. packing checks the batch size of each process)."""

    def penalties(self) -> List:
        """Gradient penalties of D this regulariser adds (``objectives.Penalty`` entries; R1)."""
        return []

    def d_fakes(self, step, fake, y) -> Tuple:
        """(the fake batch D is shown, its labels or None) from G's detached fakes and their labels (replay)."""
        return fake, y

    def d_inputs(self, step, xs: Tuple) -> Tuple:
        """D's inputs (real and fake batches) before D sees them (instance noise)."""
        return xs

    def flips(self, step, n_real: int, n_fake: int) -> Optional[Tuple[Any, Any]]:
        """(bool masks of D's real and fake outputs whose targets D's loss swaps) or None (label flipping)."""
        return None

    def state_dict(self, step) -> Dict[str, Any]:
        """What the regulariser keeps across steps, for the checkpoint ({}: nothing; the replay buffer)."""
        return {}

    def load_state_dict(self, step, state: Dict[str, Any]) -> None:
        """Restore ``state_dict``'s output on resume."""

    def g_loss_on_d(self, step, h_real, h_fake) -> Optional[Tuple[Any, Dict[str, float]]]:
        """(a term of G's loss from D's representations of the reals and fakes, values to log) or None (GDPP)."""
        return None

    def g_loss_on_weights(self, step) -> Optional[Tuple[Any, Dict[str, float]]]:
        """(a term of G's loss from G's weights, values to log) or None (orthogonal regularisation)."""
        return None

    def after_g(self, step) -> None:
        """After each G update (EMA: average G's weights)."""


def register(name: str, help: str):
    """Class decorator: add a ``Regulariser`` to REGULARISERS under ``name``."""
    def deco(cls):
        if not (isinstance(cls, type) and issubclass(cls, Regulariser)) or not names(cls):
            raise TypeError(f"regulariser {name!r}: a Regulariser dataclass with at least one option (its switch)")
        REGULARISERS.add(name, cls, help)
        cls.part_name = name
        return cls

    return deco


__all__ = ["REGULARISERS", "Regulariser", "register", "flag"]
