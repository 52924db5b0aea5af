"""The JSON Schemas in ``schemas/`` (shipped inside the package as ``packager/schemas``).

One deviation from jsonschema's defaults, so a schema means what it says: a ``pattern`` is an
ECMA-262 regular expression, in which ``$`` matches only at the very end of the text. Python's
``re`` lets ``$`` match before a final newline too, so ``"<keyid>\\n"`` would pass ``^[0-9a-f]{64}$``;
here every ``$`` outside a character class is compiled as ``\\Z``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache, lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a document needs it: most conform (packager.util.schemacheck)
    import jsonschema
    from jsonschema.exceptions import ValidationError


#: every airgap schema's ``$id`` is ``SCHEMA_ID_PREFIX + NAME + "/v1.json"``; one schema names a
#: definition another owns by that ``$id`` (``"$ref": "<$id>#/$defs/finding"``), never by a copy
SCHEMA_ID_PREFIX = "https://airgap.dev/schemas/"
_SCHEMA_ID = re.compile(re.escape(SCHEMA_ID_PREFIX) + r"([a-z0-9]+(?:-[a-z0-9]+)*)/v1\.json")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema document ``schemas/<name>.schema.json``."""
    ref = resources.files("packager").joinpath("schemas", f"{name}.schema.json")
    data: dict[str, Any] = json.loads(ref.read_text(encoding="utf-8"))
    return data


def schema_name(uri: str) -> str | None:
    """The name of the shipped schema whose ``$id`` is ``uri``; None for any other address
    (nothing is ever fetched)."""
    m = _SCHEMA_ID.fullmatch(uri)
    if m is None:
        return None
    shipped = resources.files("packager").joinpath("schemas", f"{m.group(1)}.schema.json")
    return m.group(1) if shipped.is_file() else None


def _retrieve(uri: str) -> Any:
    """The registry's only source: the schemas shipped with airgap, by ``$id`` (no network)."""
    from referencing import Resource
    from referencing.exceptions import NoSuchResource

    name = schema_name(uri)
    if name is None:
        raise NoSuchResource(uri)
    return Resource.from_contents(load_schema(name))


def ecma_to_python(pattern: str) -> str:
    """An ECMA-262 pattern (no flags) as a Python one: ``$`` outside ``[...]`` becomes ``\\Z``."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return "".join(out)


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_to_python(pattern))


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not compile_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def validator(name: str) -> jsonschema.protocols.Validator:
    import jsonschema

    schema = load_schema(name)
    base = jsonschema.validators.validator_for(schema)
    # no base.check_schema(schema) here: the schemas ship with airgap and a test checks each
    # against its metaschema (tests/util/test_schemas.py); checking again on every run cost
    # verify more CPU than its other start-up work
    cls = jsonschema.validators.extend(base, {"pattern": _pattern})  # type: ignore[no-untyped-call]
    from referencing import Registry

    registry: Registry[Any] = Registry(retrieve=_retrieve)  # type: ignore[call-arg]
    v: jsonschema.protocols.Validator = cls(
        schema, format_checker=base.FORMAT_CHECKER, registry=registry
    )
    return v


def json_path(path: Any) -> str:
    """jsonschema's ``absolute_path`` as ``$.a.b[0]``."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def validate(name: str, doc: Any) -> None:
    """jsonschema's ``ValidationError`` when ``doc`` breaks schema ``name`` (a fast yes first)."""
    from packager.util.schemacheck import conforms

    if not conforms(name, doc):
        validator(name).validate(doc)


def first_error(name: str, doc: Any) -> str | None:
    """The first (by path) way ``doc`` breaks schema ``name``, as ``at $.path: message``."""
    from packager.util.schemacheck import conforms

    if conforms(name, doc):
        return None
    errors = sorted(
        validator(name).iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]
    )
    if not errors:
        return None
    e = errors[0]
    message = e.message if len(e.message) <= 200 else e.message[:197] + "..."
    return f"at {json_path(e.absolute_path)}: {message}"
