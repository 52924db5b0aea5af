"""bundle.json's ``serve``: written and read back as typed data; absent in older bundles; a check
name given twice, or a mount path that is not one, refused before anything uses it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from packager.bundle.descriptor import (
    JsonExpectationSpec,
    ReadinessSpec,
    ServeCheckSpec,
    ServeSpec,
    descriptor_bytes,
    parse_descriptor,
)
from packager.bundle.errors import DescriptorError
from tests.support.descriptors import make_descriptor

CHECK = ServeCheckSpec(
    "embed", "POST", "/v1/embeddings", {"input": ["a", "b"]}, True, 200, 1500,
    (JsonExpectationSpec("$.data", "length", 2), JsonExpectationSpec("$.x", "range", [0, 1])),
)  # fmt: skip
SERVE = ServeSpec(
    "serving", (), ("--port", "$(AIRGAP_SERVE_PORT)"), {"A": "1"}, 8000, "/weights",
    ReadinessSpec("/health", 200, 120), (CHECK,), None,
)  # fmt: skip


def raw(serve: Any = SERVE) -> dict[str, Any]:
    doc = make_descriptor()
    doc = dataclasses.replace(doc, serve=serve)
    out: dict[str, Any] = json.loads(descriptor_bytes(doc))
    return out


def test_serve_round_trips() -> None:
    d = parse_descriptor(json.dumps(raw()).encode())
    assert d.serve == SERVE
    assert parse_descriptor(descriptor_bytes(d)).serve == SERVE


def test_a_bundle_without_serve_reads_as_none() -> None:
    doc = raw(None)
    assert "serve" not in doc  # written only when there is one: older readers know no serve
    assert parse_descriptor(json.dumps(doc).encode()).serve is None
    doc["serve"] = None
    assert parse_descriptor(json.dumps(doc).encode()).serve is None


def test_a_check_name_twice_is_refused() -> None:
    doc = raw(dataclasses.replace(SERVE, checks=(CHECK, CHECK)))
    with pytest.raises(DescriptorError) as exc:
        parse_descriptor(json.dumps(doc).encode())
    assert "serve.checks[].name lists 'embed' twice" in exc.value.message


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("weights",), "../etc"),
        (("weights",), "/a/../b"),
        (("port",), 0),
        (("readiness", "path"), "health"),
        (("checks", 0, "json", 0, "kind"), "regex"),
        (("checks", 0, "method"), "DELETE"),
        (("env",), {"A B": "x"}),
    ],
)
def test_bad_serve_values_are_refused(where: tuple[Any, ...], value: Any) -> None:
    doc = raw()
    node = doc["serve"]
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(DescriptorError) as exc:
        parse_descriptor(json.dumps(doc).encode())
    assert "$.serve" in exc.value.message
