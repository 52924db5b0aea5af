"""Stand-ins for what Python 3.10 and 3.11 added, so the package runs on the hosts sites have
(openEuler 22.03 and RHEL 9 ship Python 3.9)."""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterable, Iterator
from typing import Any


class StrEnum(str, enum.Enum):
    """``enum.StrEnum`` (3.11): members are strings, and ``str()`` of one is its value."""

    def __str__(self) -> str:
        return str(self.value)


def strict_zip(*iterables: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    """``zip(..., strict=True)`` (3.10): ValueError when the iterables differ in length."""
    if sys.version_info >= (3, 10):
        yield from zip(*iterables, strict=True)
        return
    iterators = [iter(i) for i in iterables]
    while True:
        items = []
        for n, it in enumerate(iterators):
            try:
                items.append(next(it))
            except StopIteration:
                if n == 0 and all(_exhausted(rest) for rest in iterators[1:]):
                    return
                raise ValueError("strict_zip: the iterables differ in length") from None
        yield tuple(items)


def _exhausted(it: Iterator[Any]) -> bool:
    for _ in it:
        return False
    return True
