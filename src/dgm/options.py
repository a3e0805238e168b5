"""Options that a registered part declares for itself (a figure of `dgm sample`, a metric of `dgm eval`): its type,
default, help and validation, from which the command line is built and by which an option no chosen part reads is
refused instead of ignored.

    Option("steps", int, 8, "images per row, ends included", check=at_least(2, "--steps"))

``type`` bool is a switch (``--plots``); other types take one value. ``flag`` is the command-line spelling (default
``--`` + the name with dashes). ``check(value)`` raises a one-line DgmError for a value the part cannot take.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .errors import DgmError


@dataclass(frozen=True)
class Option:
    """One option of a registered part: ``name`` is its keyword in Python and its ``dest`` on the command line."""
    name: str
    type: Callable = str
    default: Any = None  # the value the part uses when the option is not given (shown in --help)
    help: str = ""
    choices: Optional[Tuple] = None
    metavar: Optional[str] = None
    flag: str = ""
    check: Optional[Callable[[Any], None]] = None
    required: bool = False  # the part cannot run without it (e.g. the file a completion starts from)

    @property
    def cli(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def validate(self, value: Any) -> Any:
        """``value`` checked (None: the default)."""
        if value is None:
            if self.required:
                raise DgmError(f"{self.cli} is needed here ({self.help.split(';')[0]})")
            return self.default
        if self.choices is not None and value not in self.choices:
            raise DgmError(f"{self.cli} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        if self.type is float and isinstance(value, (int, float)) and not math.isfinite(value):
            raise DgmError(f"{self.cli} must be a finite number, got {value}")
        if self.check is not None:
            self.check(value)
        return value

    def add_to(self, parser, help_suffix: str = "") -> None:
        """Add this option to an argparse parser (or group); its default there is None: "not given"."""
        shown = self.default
        text = self.help
        if shown is not None and shown is not False and "default" not in text:
            text += f" (default: {shown})"
        text = (text + help_suffix).replace("%", "%%")
        if self.type is bool:
            parser.add_argument(self.cli, dest=self.name, action="store_true", default=None, help=text)
        else:
            parser.add_argument(self.cli, dest=self.name, type=self.type, default=None, choices=self.choices,
                                metavar=self.metavar, help=text)


def at_least(low, what: str = "") -> Callable[[Any], None]:
    """A check: the value is >= ``low``."""
    def check(value):
        if value < low:
            raise DgmError(f"{what or 'the value'} must be >= {low}, got {value}")
    return check


def union(owners: Iterable[Tuple[str, Sequence[Option]]]) -> Dict[str, Option]:
    """name -> Option over every part's options; two parts may share an option only with the same declaration."""
    out: Dict[str, Option] = {}
    for owner, options in owners:
        for o in options:
            if o.name in out and out[o.name] != o:
                raise ValueError(f"option {o.name!r} of {owner} is declared differently by another part")
            out[o.name] = o
    return out


def readers(owners: Iterable[Tuple[str, Sequence[Option]]]) -> Dict[str, List[str]]:
    """option name -> the parts (of ``owners``: (name, options) pairs) that read it."""
    out: Dict[str, List[str]] = {}
    for owner, options in owners:
        for o in options:
            out.setdefault(o.name, []).append(owner)
    return out


def refuse_unread(given: Mapping[str, Any], readers: Mapping[str, Sequence[str]], chosen: Sequence[str],
                  kind: str, how: Callable[[str], str], options: Mapping[str, Option],
                  chosen_text: Optional[str] = None, prefer: Sequence[str] = ()) -> None:
    """One-line DgmError for the first option in ``given`` (name -> value, None = not given) that no part in
    ``chosen`` reads. ``readers``: option name -> the parts that read it; ``how(part)``: how to choose a part
    (e.g. ``--figure NAME``); ``chosen_text``: how the message names ``chosen`` (default: their names); ``prefer``:
    the parts to suggest first, when they read the option."""
    for name, value in given.items():
        if value is None or name not in readers:
            continue
        parts = readers[name]
        if not set(parts) & set(chosen):
            flag = options[name].cli
            which = ", ".join(parts)
            raise DgmError(f"{flag} is an option of the {which} {kind}{'s' if len(parts) > 1 else ''}, not of "
                           f"{chosen_text or ', '.join(chosen)}: drop {flag} or give "
                           f"{how(next((p for p in prefer if p in parts), parts[0]))}")


__all__ = ["Option", "at_least", "union", "readers", "refuse_unread"]
