"""Options of one part of a model (a GAN objective, architecture or regulariser): a small dataclass.

A part declares its options as dataclass fields with defaults and a trailing ``# help`` comment, as model configs
do; ``dgm train`` turns each field into a flag (``gp_weight`` -> ``--gp-weight``) with that help, and the part
validates its own values in ``check``. A model config composes the parts a run uses and lists them for the
command line through the ``options`` metadata of its fields (``OptionGroup``s; see ``models/gan.py``).
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Tuple

from .errors import DgmError


@dataclass
class Options:
    """Base of a part's options; a part without options uses it as it is (no fields). ``non_negative`` and ``positive``
    (class attributes, not fields) name the options whose value must be >= 0 or > 0 (``check_ranges``)."""

    non_negative = ()  # not annotated: not fields, not flags
    positive = ()

    def check(self, config) -> None:
        """Raise a one-line DgmError for a value this part cannot take; ``config``: the model config composing it."""


def check_ranges(options: Options) -> None:
    """A one-line DgmError naming the flag of an option declared ``non_negative`` or ``positive`` whose value is not."""
    for names_, ok, what in ((options.non_negative, lambda v: v >= 0, ">= 0"), (options.positive, lambda v: v > 0,
                                                                                  "> 0")):
        for name in names_:
            value = getattr(options, name)
            if value is not None and not ok(value):
                raise DgmError(f"--{name.replace('_', '-')} must be {what}, got {value}")


class OptionGroup(NamedTuple):
    """The options of one part for the command line: ``title``, the ``Options`` class, whether the run being parsed
    uses the part (``shown`` in --help; the others' flags are accepted, then refused by the config if given) and the
    flag that selects the part (``how``, e.g. "--arch stylegan"; "" for a part any run may use)."""

    title: str
    options: type
    shown: bool
    how: str = ""


def names(cls: type) -> Tuple[str, ...]:
    """The option names (field names) of an ``Options`` class, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(cls))


def fits(value: Any, kind: Any) -> bool:
    """Whether a JSON value fits a config field's annotation (int, float, bool, str, Optional of one of them; other
    annotations -- lists, nested configs -- are left to the config's own checks)."""
    args = typing.get_args(kind)
    if type(None) in args:
        if value is None:
            return True
        rest = [a for a in args if a is not type(None)]
        kind = rest[0] if len(rest) == 1 else None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    return True


def check_types(cls: type, values: Mapping[str, Any], where: str) -> None:
    """One-line DgmError for a value of ``values`` (a config file's mapping) that does not fit its field of ``cls``
    (keys ``cls`` does not declare are left to the caller)."""
    hints = typing.get_type_hints(cls)
    for k, v in values.items():
        if k in hints and not fits(v, hints[k]):
            raise DgmError(f"{where} {k!r} has the wrong type ({v!r}); this is not the config `dgm train` writes")


def build(cls: type, values: Any, where: str) -> Options:
    """An instance of ``cls`` from a mapping (a config file's, checked: unknown keys and values of the wrong type are
    refused in one line) or a copy of an instance of ``cls``."""
    if isinstance(values, cls):
        return dataclasses.replace(values)
    if not isinstance(values, Mapping):
        raise DgmError(f"{where} must be a mapping of {cls.__name__} options, got {values!r}")
    unknown = sorted(set(values) - set(names(cls)))
    if unknown:
        raise DgmError(f"{where} has no option(s) {', '.join(unknown)}; known: {', '.join(names(cls)) or 'none'}")
    check_types(cls, values, where)
    return cls(**values)


__all__ = ["Options", "OptionGroup", "names", "check_types", "build"]
