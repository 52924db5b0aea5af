"""A fast yes for documents that follow a schema; jsonschema for everything else.

jsonschema spends about 100 microseconds per array item of a descriptor (it builds a validator
object per keyword and level), so a bundle of 50,000 files spent seconds in validation. This
module compiles a schema into plain predicates over the subset of JSON Schema 2020-12 that the
schemas in ``schemas/`` use; :func:`conforms` answers True only when every keyword holds. The
contract is one-sided: True means valid; False means "ask jsonschema", which then names the
problem (packager.util.schemas.first_error) or finds none (this module is stricter in places:
1.0 is no integer here). A schema with any keyword outside the subset is not compiled at all,
and then :func:`conforms` is always False.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from packager.util.schemas import compile_pattern, load_schema, schema_name

Check = Callable[[Any], bool]

#: keywords that say nothing about validity
_NOTES = frozenset(
    {"description", "title", "$schema", "$id", "$defs", "$comment", "examples", "default",
     "deprecated"}
)  # fmt: skip


class Unsupported(Exception):
    """A keyword (or a form of one) this compiler does not know: use jsonschema."""


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_TYPES: dict[str, Check] = {
    "string": lambda x: isinstance(x, str),
    "integer": _is_int,
    "number": _is_number,
    "boolean": lambda x: isinstance(x, bool),
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "null": lambda x: x is None,
}


def _same(a: Any, b: Any) -> bool:
    """JSON equality: a boolean is never a number; lists and objects compared item by item."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return False
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


class _Compiler:
    """One schema document's compiler. ``shared``: the compilers of every document a ``$ref``
    reached, by name, so that a definition another schema owns is compiled once, in its own
    document (its ``#/...`` refs are that document's)."""

    def __init__(self, root: dict[str, Any], shared: dict[str, _Compiler] | None = None) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}
        self.shared = {} if shared is None else shared

    def ref(self, ref: str) -> Check:
        uri, hash_, pointer = ref.partition("#")
        if uri:  # another airgap schema's definition: ``<its $id>#/...``
            name = schema_name(uri)
            if name is None or not hash_:
                raise Unsupported(ref)
            if name not in self.shared:
                self.shared[name] = _Compiler(load_schema(name), self.shared)
            return self.shared[name].ref("#" + pointer)
        if pointer and not pointer.startswith("/"):
            raise Unsupported(ref)
        if ref not in self.refs:  # "#": the document itself; "#/a/b": a place in it
            target: Any = self.root
            for part in pointer[1:].split("/") if pointer else ():
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, dict) or part not in target:
                    raise Unsupported(ref)
                target = target[part]
            slot: list[Check] = []
            self.refs[ref] = lambda x: slot[0](x)  # recursion: bound once compiled
            slot.append(self.compile(target))
        return self.refs[ref]

    def compile(self, schema: Any) -> Check:
        if schema is True or schema == {}:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, dict):
            raise Unsupported(repr(schema))
        fused = self.fused(schema)
        if fused is not None:
            return fused
        checks = [
            self.keyword(key, value, schema)
            for key, value in schema.items()
            if key not in _NOTES and key not in ("additionalProperties", "then", "else")
        ]
        if "additionalProperties" in schema and "properties" not in schema:
            extra = schema["additionalProperties"]
            if extra is not True:
                checks.append(_values(self.compile(extra)))
        return _all(checks)

    def fused(self, schema: dict[str, Any]) -> Check | None:
        """The commonest shapes as one predicate each, not a chain of one per keyword: a string
        with a pattern and lengths, a bounded integer, an array of items, an object of
        properties. A descriptor of 50,000 blobs runs these a million times. None for any
        other schema (:meth:`compile` composes its keywords)."""
        keys = {k for k in schema if k not in _NOTES}
        kind = schema.get("type")
        if kind == "string" and keys <= {"type", "pattern", "minLength", "maxLength"}:
            rx = compile_pattern(schema["pattern"]) if "pattern" in schema else None
            return _string(rx, schema.get("minLength", 0), schema.get("maxLength"))
        if kind == "integer" and keys <= {"type", "minimum", "maximum"}:
            return _integer(schema.get("minimum"), schema.get("maximum"))
        if kind == "array" and keys <= {"type", "items"} and isinstance(schema.get("items"), dict):
            each = self.compile(schema["items"])
            return _list_of(each)
        if kind == "object" and keys <= {"type", "properties", "required", "additionalProperties"}:
            extra = schema.get("additionalProperties", True)
            return _object(
                {k: self.compile(v) for k, v in schema.get("properties", {}).items()},
                None if extra is True else self.compile(extra),
                tuple(schema.get("required", ())),
            )
        return None

    def keyword(self, key: str, value: Any, schema: dict[str, Any]) -> Check:
        if key == "type":
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list) or any(n not in _TYPES for n in names):
                raise Unsupported(f"type {value!r}")
            return _any([_TYPES[n] for n in names])
        if key == "properties":
            extra = schema.get("additionalProperties", True)
            return _properties(
                {k: self.compile(v) for k, v in value.items()},
                None if extra is True else self.compile(extra),
            )
        if key == "required":
            return _required(list(value))
        if key == "items" and isinstance(value, (dict, bool)):
            return _items(self.compile(value))
        if key == "pattern":
            return _pattern(compile_pattern(value))
        if key in _BOUNDS:
            return _bounded(_BOUNDS[key], value)
        if key == "enum":
            return _enum(list(value))
        if key == "const":
            return _enum([value])
        if key == "$ref":
            return self.ref(value)
        if key == "anyOf":
            return _any([self.compile(v) for v in value])
        if key == "oneOf":
            return _one([self.compile(v) for v in value])
        if key == "propertyNames":
            return _names(self.compile(value))
        if key == "allOf":
            return _all([self.compile(v) for v in value])
        if key == "if":
            return _if(
                self.compile(value),
                self.compile(schema.get("then", True)),
                self.compile(schema.get("else", True)),
            )
        if key == "contains":
            return _contains(self.compile(value))
        if key == "uniqueItems":
            return _unique if value is True else _always
        raise Unsupported(key)


def _always(x: Any) -> bool:
    return True


def _never(x: Any) -> bool:
    return False


# The checks below are plain loops, not all()/any() over generators: a descriptor of 50,000
# files runs each of them hundreds of thousands of times.


def _all(checks: list[Check]) -> Check:
    checks = [f for f in checks if f is not _always]
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda x: first(x) and second(x)

    def check(x: Any) -> bool:
        for f in checks:  # noqa: SIM110 - a loop: no generator per call (see above)
            if not f(x):
                return False
        return True

    return check


def _any(checks: list[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]

    def check(x: Any) -> bool:
        for f in checks:  # noqa: SIM110 - a loop: no generator per call (see above)
            if f(x):
                return True
        return False

    return check


def _one(checks: list[Check]) -> Check:
    return lambda x: sum(1 for f in checks if f(x)) == 1


def _properties(props: dict[str, Check], rest: Check | None) -> Check:
    def check(x: Any) -> bool:
        if not isinstance(x, dict):
            return True
        for k, v in x.items():
            f = props.get(k, rest)
            if f is not None and not f(v):
                return False
        return True

    return check


def _values(each: Check) -> Check:
    def check(x: Any) -> bool:
        if isinstance(x, dict):
            for v in x.values():
                if not each(v):
                    return False
        return True

    return check


def _names(each: Check) -> Check:
    def check(x: Any) -> bool:
        if isinstance(x, dict):
            for k in x:
                if not each(k):
                    return False
        return True

    return check


def _required(names: list[str]) -> Check:
    def check(x: Any) -> bool:
        if isinstance(x, dict):
            for k in names:
                if k not in x:
                    return False
        return True

    return check


def _items(each: Check) -> Check:
    def check(x: Any) -> bool:
        if isinstance(x, list):
            for v in x:
                if not each(v):
                    return False
        return True

    return check


def _string(rx: re.Pattern[str] | None, shortest: int, longest: int | None) -> Check:
    """``type: string`` with ``pattern`` (searched, as JSON Schema says), ``minLength`` and
    ``maxLength``, each optional (:meth:`_Compiler.fused`)."""

    def check(x: Any) -> bool:
        if not isinstance(x, str) or len(x) < shortest:
            return False
        if longest is not None and len(x) > longest:
            return False
        return rx is None or rx.search(x) is not None

    return check


def _integer(least: Any, most: Any) -> Check:
    """``type: integer`` (no boolean) with ``minimum`` and ``maximum``, each optional."""

    def check(x: Any) -> bool:
        if not isinstance(x, int) or isinstance(x, bool):
            return False
        return (least is None or x >= least) and (most is None or x <= most)

    return check


def _list_of(each: Check) -> Check:
    """``type: array`` whose every item is ``each``."""
    items = _items(each)
    return lambda x: isinstance(x, list) and items(x)


def _object(props: dict[str, Check], rest: Check | None, names: tuple[str, ...]) -> Check:
    """``type: object`` with ``properties`` (``rest`` for the others; None: any), and the
    ``required`` ``names``: the keywords' own checks behind one type test."""
    fields, needed = _properties(props, rest), _required(list(names))
    return lambda x: isinstance(x, dict) and fields(x) and needed(x)


def _pattern(rx: re.Pattern[str]) -> Check:
    return lambda x: not isinstance(x, str) or rx.search(x) is not None


#: keyword -> (applies to, holds)
_BOUNDS: dict[str, tuple[Check, Callable[[Any, Any], bool]]] = {
    "minimum": (_is_number, lambda x, b: x >= b),
    "maximum": (_is_number, lambda x, b: x <= b),
    "minLength": (lambda x: isinstance(x, str), lambda x, n: len(x) >= n),
    "maxLength": (lambda x: isinstance(x, str), lambda x, n: len(x) <= n),
    "minItems": (lambda x: isinstance(x, list), lambda x, n: len(x) >= n),
    "maxItems": (lambda x: isinstance(x, list), lambda x, n: len(x) <= n),
    "minProperties": (lambda x: isinstance(x, dict), lambda x, n: len(x) >= n),
}


def _if(test: Check, then: Check, otherwise: Check) -> Check:
    return lambda x: then(x) if test(x) else otherwise(x)


def _contains(each: Check) -> Check:
    return lambda x: not isinstance(x, list) or any(each(v) for v in x)


def _unique(x: Any) -> bool:
    """No two items of a list are equal as JSON values (1 and 1.0 are; 1 and true are not)."""
    if not isinstance(x, list):
        return True
    if all(isinstance(v, str) for v in x):
        return len(set(x)) == len(x)
    return not any(_same(a, b) for i, a in enumerate(x) for b in x[i + 1 :])


def _bounded(rule: tuple[Check, Callable[[Any, Any], bool]], bound: Any) -> Check:
    applies, holds = rule
    return lambda x: not applies(x) or holds(x, bound)


def _enum(options: list[Any]) -> Check:
    texts = frozenset(v for v in options if type(v) is str)

    def check(x: Any) -> bool:
        if type(x) is str:  # text equals only text (what _same says, without the walk)
            return x in texts
        return any(_same(x, v) for v in options)

    return check


_COMPILED: dict[str, Check | None] = {}


def compiled(name: str) -> Check | None:
    """Schema ``name`` as one predicate, or None when it uses a keyword outside the subset."""
    if name not in _COMPILED:
        schema = load_schema(name)
        compiler = _Compiler(schema)
        compiler.shared[name] = compiler  # a ref back into this document by its $id
        try:
            _COMPILED[name] = compiler.compile(schema)
        except Unsupported:
            _COMPILED[name] = None
    return _COMPILED[name]


def conforms(name: str, doc: Any) -> bool:
    """True: ``doc`` follows schema ``name``. False: it may not (ask jsonschema)."""
    check = compiled(name)
    return check is not None and check(doc)
