"""A document as a tree that can hold what parsed data cannot: a name given twice, raw text.

JSON and YAML documents are parsed into this tree, mutated (:mod:`.mutate`) and written back
(:mod:`.emit`). An object keeps its (name, value) pairs in order, so a name can appear twice and
be written twice; :class:`Raw` is text written as is where a value (or a name) goes: ``NaN``,
``1e999``, a 5,000-digit number, ``[[[...]]]`` 100,000 deep, a YAML tag or alias.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass
class Raw:
    """Text written verbatim where a value or a name goes."""

    text: str


@dataclass
class Anchored:
    """A YAML value with an anchor (``&name value``); JSON writes the value alone."""

    anchor: str
    value: Node


@dataclass
class Obj:
    """An object (a mapping) as its pairs, in order; a name may be given twice."""

    pairs: list[tuple[Key, Node]] = field(default_factory=list)


Key = Union[str, Raw]
Node = Union[None, bool, int, float, str, Raw, Anchored, Obj, list[Any]]
Container = Union[Obj, list[Any]]


def from_data(data: Any) -> Node:
    """Parsed JSON/YAML data (dicts, lists, scalars) as a tree."""
    if isinstance(data, dict):
        return Obj([(str(k), from_data(v)) for k, v in data.items()])
    if isinstance(data, list):
        return [from_data(v) for v in data]
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    return str(data)  # YAML dates and the like: their text


def copy(node: Node) -> Node:
    """A deep copy (iterative over the containers the tree has, which are shallow in practice)."""
    if isinstance(node, Obj):
        return Obj([(k, copy(v)) for k, v in node.pairs])
    if isinstance(node, list):
        return [copy(v) for v in node]
    if isinstance(node, Anchored):
        return Anchored(node.anchor, copy(node.value))
    if isinstance(node, Raw):
        return Raw(node.text)
    return node


@dataclass(frozen=True)
class Place:
    """Where a value sits: item ``index`` of a list, or pair ``index`` of an object."""

    parent: Container
    index: int
    path: str  # $.a[0].b, for case descriptions

    def get(self) -> Node:
        if isinstance(self.parent, Obj):
            return self.parent.pairs[self.index][1]
        value: Node = self.parent[self.index]
        return value

    def set(self, value: Node) -> None:
        if isinstance(self.parent, Obj):
            key = self.parent.pairs[self.index][0]
            self.parent.pairs[self.index] = (key, value)
        else:
            self.parent[self.index] = value

    @property
    def key(self) -> Key | None:
        return self.parent.pairs[self.index][0] if isinstance(self.parent, Obj) else None


def _step(path: str, key: Key | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    text = key.text if isinstance(key, Raw) else key
    return f"{path}.{text}" if text.isidentifier() else f"{path}[{text!r}]"


def places(box: list[Any]) -> Iterator[Place]:
    """Every value's place in ``box`` (a one-item list holding the root), root first."""
    stack: list[tuple[Container, int, str]] = [(box, 0, "$")]
    while stack:
        parent, index, path = stack.pop()
        place = Place(parent, index, path)
        yield place
        value = place.get()
        if isinstance(value, Anchored):
            value = value.value
        if isinstance(value, Obj):
            for i in reversed(range(len(value.pairs))):
                stack.append((value, i, _step(path, value.pairs[i][0])))
        elif isinstance(value, list):
            for i in reversed(range(len(value))):
                stack.append((value, i, _step(path, i)))


def strings(node: Node) -> Iterator[str]:
    """Every string value and name in the tree."""
    stack: list[Node] = [node]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, Anchored):
            stack.append(value.value)
        elif isinstance(value, Obj):
            for k, v in value.pairs:
                if isinstance(k, str):
                    yield k
                stack.append(v)
        elif isinstance(value, list):
            stack.extend(value)
