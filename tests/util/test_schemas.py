"""packager.util.schemas: every shipped schema is valid against its metaschema (validator() does
not check it at run time), and patterns match the whole string."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from packager.util.schemas import load_schema, schema_name, validator

SCHEMAS = sorted(
    p.name.removesuffix(".schema.json")
    for p in (Path(__file__).resolve().parents[2] / "schemas").glob("*.schema.json")
)


@pytest.mark.parametrize("name", SCHEMAS)
def test_each_shipped_schema_is_valid(name: str) -> None:
    schema = load_schema(name)
    jsonschema.validators.validator_for(schema).check_schema(schema)
    assert validator(name) is validator(name)  # built once


def test_the_schemas_are_all_there() -> None:
    assert {
        "bundle",
        "lock",
        "manifest",
        "trust",
        "diff",
        "receipt",
        "build-report",
        "install-report",
        "lock-report",
        "inspect-report",
        "list-report",
        "uninstall-report",
        "rollback-report",
        "gc-report",
        "audit-report",
        "digest-report",
        "sign-report",
        "images-report",
        "key-report",
        "trust-show",
        "deploy-report",
        "kernel-report",
        "init-report",
        "trust-edit",
        "error",
    } <= set(SCHEMAS)


@pytest.mark.parametrize(
    ("digest", "ok"),
    [
        ("sha256:" + "a" * 64, True),
        ("sha256:" + "a" * 64 + "\n", False),
        ("sha256:" + "A" * 64, False),
    ],
)
def test_a_pattern_dollar_is_the_end_of_the_text(digest: str, ok: bool) -> None:
    errors = [
        e
        for e in validator("diff").iter_errors({"old": {"digest": digest}})
        if "digest" in str(e.absolute_path)
    ]
    assert (not errors) is ok


def _walk(node: Any, at: str = "") -> Iterator[tuple[str, Any]]:
    """Every value of a schema document with its JSON pointer."""
    yield at, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{at}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{at}/{i}")


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_ref_names_a_definition_that_is_there(name: str) -> None:
    """A ``$ref`` is this document's ``#/...`` or another shipped schema's ``<$id>#/...``:
    never an address outside airgap (nothing is fetched), never a place that is not there."""
    for at, node in _walk(load_schema(name)):
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
            continue
        uri, _, pointer = node["$ref"].partition("#")
        owner = schema_name(uri) if uri else name
        assert owner is not None, f"{name} {at}: {uri} is no shipped schema's $id"
        target: Any = load_schema(owner)
        for part in filter(None, pointer.split("/")):
            assert isinstance(target, dict) and part in target, f"{name} {at}: {node['$ref']}"
            target = target[part]


def test_no_schema_copies_another() -> None:
    """A definition two schemas share is written once, where it belongs, and the other names it
    by ``$ref`` (schemas/verify-report's model_signature in audit-report, bundle's images in
    inspect-report, ...): a copy would drift from its source unnoticed."""
    seen: dict[str, tuple[str, str]] = {}
    copies = []
    for name in SCHEMAS:
        for at, node in _walk(load_schema(name)):
            text = json.dumps(node, sort_keys=True)
            if not isinstance(node, dict) or len(text) < 150:
                continue
            first = seen.setdefault(text, (name, at))
            if first[0] != name:
                copies.append(f"{name} {at} copies {first[0]} {first[1]}")
    assert not copies


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("https://airgap.dev/schemas/bundle/v1.json", "bundle"),
        ("https://airgap.dev/schemas/validate-report/v1.json", "validate-report"),
        ("https://airgap.dev/schemas/bundle/v1.json\n", None),  # the whole text, or nothing
        ("https://airgap.dev/schemas/bundle/v2.json", None),
        ("https://airgap.dev/schemas/no-such/v1.json", None),  # the form, but not shipped
        ("https://airgap.dev/schemas/../bundle/v1.json", None),
        ("http://airgap.dev/schemas/bundle/v1.json", None),
        ("https://example.com/schemas/bundle/v1.json", None),
        ("bundle", None),
    ],
)
def test_schema_name_knows_only_the_shipped_ids(uri: str, name: str | None) -> None:
    assert schema_name(uri) == name


def test_jsonschema_follows_a_ref_into_another_schema() -> None:
    """lock-report's refusal is validate-report's, whose ``validation`` is validate's whole
    report: an error three documents deep is named at its place."""
    finding = {"severity": "error", "code": "AG1", "message": "m", "file": "m.yaml", "line": 1,
               "column": 1, "path": "$.a", "hint": None}  # fmt: skip
    report = {"ok": False, "manifest": "m.yaml", "valid": False, "name": None, "version": None,
              "targets": [], "summary": {"errors": 1, "warnings": 0, "infos": 0},
              "findings": [finding]}  # fmt: skip
    errors = list(validator("lock-report").iter_errors({"ok": False, "validation": report}))
    assert any(
        list(e.absolute_path) == ["validation", "findings", 0, "code"]
        for err in errors
        for e in [err, *(err.context or [])]
    ), [e.message for e in errors]
