"""Access to the JSON Schemas in ``schemas/`` (shipped inside the package as ``packager/schemas``)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema document ``schemas/<name>.schema.json``."""
    ref = resources.files("packager").joinpath("schemas", f"{name}.schema.json")
    data: dict[str, Any] = json.loads(ref.read_text(encoding="utf-8"))
    return data


@cache
def validator(name: str) -> jsonschema.protocols.Validator:
    schema = load_schema(name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    v: jsonschema.protocols.Validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return v
