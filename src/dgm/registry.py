"""Registries by name: models, datasets, objectives, metrics, feature extractors."""
from __future__ import annotations

import difflib
from typing import Callable, Dict, Generic, Iterator, TypeVar

from .errors import DgmError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table whose lookups suggest the nearest name on a typo."""

    def __init__(self, kind: str, list_name: str = ""):
        self.kind = kind
        self.list_name = list_name or kind + "s"  # `dgm list NAME`
        self._items: Dict[str, T] = {}
        self._help: Dict[str, str] = {}

    def register(self, name: str, help: str = "") -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj, help)
            return obj

        return deco

    def add(self, name: str, obj: T, help: str = "") -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj
        self._help[name] = help or (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise DgmError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._items), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(sorted(self._items))
        return f"unknown {self.kind} {name!r}{hint} (known: {known}; see `dgm list {self.list_name}`)"

    def remove(self, name: str) -> None:
        """Unregister ``name`` (e.g. a metric a test added)."""
        self.get(name)
        del self._items[name], self._help[name]

    def help(self, name: str) -> str:
        return self._help[name]

    def names(self) -> list:
        return sorted(self._items)

    def values(self) -> list:
        """The registered objects in registration order."""
        return list(self._items.values())

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
