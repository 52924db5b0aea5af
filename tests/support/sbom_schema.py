"""The official CycloneDX 1.6 JSON schema, loaded offline from cyclonedx-python-lib (test only).

cyclonedx-python-lib ships the schemas of the CycloneDX specification repository in
``cyclonedx/schema/_res`` (``bom-1.6.SNAPSHOT.schema.json`` with ``spdx`` and ``jsf-0.82``
beside it). They are registered with a ``referencing`` registry under their ``$id`` and under
both the official and the ``.SNAPSHOT`` file names, so the ``$ref``s between them resolve with
no network; anything else a ``$ref`` names fails (a ``referencing`` registry never fetches).

Every format the schema uses is checked: ``date-time`` (jsonschema with rfc3339-validator),
``uri`` (with rfc3986-validator), ``idn-email``, and ``iri-reference``. For that last one jsonschema
wants rfc3987 (GPL) or rfc3987-syntax, whose import builds a parser for 2 s and slows every
``import jsonschema`` (every airgap start) in the environment it is installed in; when neither is
there, ``iri-reference`` is checked here as RFC 3987 defines it: an IRI reference is valid when the
URI reference it maps to (non-ASCII characters UTF-8 percent-encoded) is valid RFC 3986.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any
from urllib.parse import quote

import jsonschema
from referencing import Registry, Resource

BASE = "http://cyclonedx.org/schema/"
#: formats the 1.6 schema uses that must really be checked, not silently passed
REQUIRED_FORMATS = ("date-time", "iri-reference", "idn-email", "uri")


def _schema_dir() -> Any:
    return resources.files("cyclonedx.schema") / "_res"


def _load(*names: str) -> tuple[str, dict[str, Any]]:
    folder = _schema_dir()
    for name in names:
        f = folder / name
        if f.is_file():
            return name, json.loads(f.read_text(encoding="utf-8"))
    raise FileNotFoundError(f"none of {names} in {folder}")


def _is_iri_reference(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    from rfc3986_validator import validate_rfc3986  # type: ignore[import-untyped]

    mapped = "".join(c if ord(c) < 0x80 else quote(c, safe="") for c in instance)
    return bool(validate_rfc3986(mapped, rule="URI_reference"))


def format_checker() -> jsonschema.FormatChecker:
    """jsonschema's draft-07 format checker, plus ``iri-reference`` when jsonschema has none."""
    checker = jsonschema.FormatChecker(formats=())
    checker.checkers = dict(jsonschema.Draft7Validator.FORMAT_CHECKER.checkers)
    if "iri-reference" not in checker.checkers and "uri" in checker.checkers:
        checker.checks("iri-reference")(_is_iri_reference)
    missing = [f for f in REQUIRED_FORMATS if f not in checker.checkers]
    if missing:
        raise RuntimeError(
            f"jsonschema cannot check the formats {missing}: "
            "install rfc3339-validator and rfc3986-validator"
        )
    return checker


@functools.cache
def cyclonedx_16_validator() -> jsonschema.Draft7Validator:
    """A draft-07 validator of the official CycloneDX 1.6 JSON schema, with format checking."""
    _, bom = _load("bom-1.6.schema.json", "bom-1.6.SNAPSHOT.schema.json")
    resources_: list[tuple[str, Resource[Any]]] = []
    for stem in ("spdx", "jsf-0.82"):
        _, doc = _load(f"{stem}.schema.json", f"{stem}.SNAPSHOT.schema.json")
        res = Resource.from_contents(doc)
        for uri in {doc["$id"], f"{BASE}{stem}.schema.json", f"{BASE}{stem}.SNAPSHOT.schema.json"}:
            resources_.append((uri, res))
    registry: Registry[Any] = Registry().with_resources(resources_)
    jsonschema.Draft7Validator.check_schema(bom)
    return jsonschema.Draft7Validator(bom, registry=registry, format_checker=format_checker())


def schema_errors(doc: Any) -> list[str]:
    """Every way ``doc`` fails the 1.6 schema, as ``path: message`` lines; empty when valid."""
    errors = sorted(cyclonedx_16_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]


def assert_valid_cyclonedx_16(doc: Any) -> None:
    errors = schema_errors(doc)
    assert not errors, "not valid CycloneDX 1.6:\n" + "\n".join(errors)
