"""packager.util.schemas: every shipped schema is valid against its metaschema (validator() does
not check it at run time), and patterns match the whole string."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from packager.util.schemas import load_schema, validator

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
