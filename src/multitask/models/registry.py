"""A small name → constructor registry, used for trunks, sharing architectures and weightings.

>>> colours = Registry("colour")
>>> @colours.register("red")
... def make_red() -> str:
...     return "red!"
>>> colours.build("red")
'red!'
>>> colours.build("rde")
Traceback (most recent call last):
...
multitask.errors.UnknownNameError: unknown colour 'rde'. Did you mean 'red'? Known: red
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from multitask.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to constructors; `register` is a decorator so users can add their own."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}

    def register(self, name: str, *, overwrite: bool = False) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries and not overwrite:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = factory
            return factory

        return decorator

    def add(self, name: str, factory: Callable[..., T], *, overwrite: bool = False) -> None:
        self.register(name, overwrite=overwrite)(factory)

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._entries:
            close = difflib.get_close_matches(name, list(self._entries), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(sorted(self._entries))}")
        return self._entries[name]

    def build(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
