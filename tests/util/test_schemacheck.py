"""packager.util.schemacheck: a fast yes only for documents jsonschema accepts too."""

from __future__ import annotations

import copy
import json
import random
import tarfile
from pathlib import Path
from typing import Any

import pytest

from packager.util import schemacheck
from packager.util.schemacheck import Unsupported, _Compiler, conforms
from packager.util.schemas import validator
from tests.support.cli import cli
from tests.support.golden import build_golden

DIGEST = "sha256:" + "a" * 64
FINDING = "https://airgap.dev/schemas/validate-report/v1.json#/$defs/finding"
REFUSAL = "https://airgap.dev/schemas/validate-report/v1.json#/$defs/refusal"
FOUND = {"severity": "error", "code": "AG201", "message": "m", "file": "m.yaml", "line": 3,
         "column": 1, "path": "$.a", "hint": None}  # fmt: skip


@pytest.mark.parametrize(
    ("schema", "instance", "ok"),
    [
        ({"type": "integer"}, 3, True),
        ({"type": "integer"}, True, False),  # a boolean is no number
        ({"type": "integer"}, 3.0, False),  # stricter than jsonschema: it asks jsonschema
        ({"type": ["string", "null"]}, None, True),
        ({"type": "number", "minimum": 0}, -0.5, False),
        ({"maximum": 3}, "not a number", True),  # bounds apply to numbers only
        ({"type": "string", "pattern": "^[a-f0-9]{64}$"}, "a" * 64, True),
        ({"type": "string", "pattern": "^[a-f0-9]{64}$"}, "a" * 64 + "\n", False),  # $ is the end
        ({"pattern": "b"}, "abc", True),  # search, as JSON Schema says
        ({"minLength": 1, "maxLength": 2}, "", False),
        ({"minItems": 1}, [], False),
        ({"enum": [1, "x"]}, True, False),
        ({"enum": [1, "x"]}, 1.0, True),
        ({"const": False}, 0, False),
        ({"const": {"a": [1]}}, {"a": [1]}, True),
        ({"properties": {"a": {"type": "string"}}, "additionalProperties": False}, {"b": 1}, False),
        ({"properties": {"a": {"type": "string"}}}, {"b": 1}, True),
        ({"additionalProperties": {"type": "string"}}, {"b": 1}, False),
        ({"required": ["a"]}, {}, False),
        ({"required": ["a"]}, [], True),  # applies to objects only
        ({"items": {"type": "integer"}}, [1, "2"], False),
        ({"oneOf": [{"type": "integer"}, {"minimum": 0}]}, 1, False),  # both: not one
        ({"anyOf": [{"type": "integer"}, {"minimum": 0}]}, 1, True),
        ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"A": 1}, False),
        ({"$ref": "#/$defs/d", "$defs": {"d": {"type": "string"}}}, "x", True),
        ({"$ref": "#/$defs/d", "$defs": {"d": {"type": "string"}}}, 1, False),
        # a definition another shipped schema owns, by its $id (compiled in that document)
        ({"$ref": FINDING}, FOUND, True),
        ({"$ref": FINDING}, {**FOUND, "line": "3"}, False),
        ({"$ref": FINDING}, {**FOUND, "path": "a"}, False),  # validate-report's pattern
        ({"$ref": REFUSAL}, {"ok": False, "validation": {}}, False),  # "#" there: its report
        ({"type": "string", "default": "x"}, "y", True),  # a default says nothing of validity
        ({"allOf": [{"type": "integer"}, {"minimum": 2}]}, 1, False),
        ({"allOf": [{"type": "integer"}, {"minimum": 2}]}, 2, True),
        ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, {"a": 1}, False),
        ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, {"c": 1}, True),
        ({"if": {"required": ["a"]}, "else": {"required": ["b"]}}, {"c": 1}, False),
        ({"then": {"required": ["b"]}}, {}, True),  # then without if: ignored
        ({"contains": {"const": 1}}, [2, 3], False),
        ({"contains": {"const": 1}}, [2, 1.0], True),
        ({"contains": {"const": 1}}, "not a list", True),
        ({"uniqueItems": True}, ["a", "b", "a"], False),
        ({"uniqueItems": True}, [1, 1.0], False),  # equal as JSON numbers
        ({"uniqueItems": True}, [1, True], True),  # a boolean is no number
        ({"uniqueItems": True}, [{"a": [1]}, {"a": [1]}], False),
        ({"uniqueItems": False}, [1, 1], True),
        ({"maxItems": 1}, [1, 2], False),
        ({"minProperties": 1}, {}, False),
        ({"minProperties": 1}, [], True),  # applies to objects only
        # the shapes compiled as one predicate each (_Compiler.fused)
        ({"type": "string", "pattern": "^a", "minLength": 2, "maxLength": 3}, "ab", True),
        ({"type": "string", "pattern": "^a", "minLength": 2, "maxLength": 3}, "abcd", False),
        ({"type": "string", "pattern": "^a", "minLength": 2, "maxLength": 3}, "a", False),
        ({"type": "string", "pattern": "^a", "minLength": 2, "maxLength": 3}, "ba", False),
        ({"type": "string", "minLength": 0}, 5, False),
        ({"type": "integer", "minimum": 1, "maximum": 2}, 2, True),
        ({"type": "integer", "minimum": 1, "maximum": 2}, 3, False),
        ({"type": "integer", "minimum": 1, "maximum": 2}, 0, False),
        ({"type": "integer", "minimum": 0}, True, False),
        ({"type": "integer", "minimum": 0}, 1.0, False),
        ({"type": "array", "items": {"type": "string"}}, [], True),
        ({"type": "array", "items": {"type": "string"}}, ["a", 1], False),
        ({"type": "array", "items": {"type": "string"}}, "a", False),
        ({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
          "additionalProperties": False}, {"a": 1}, True),
        ({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
          "additionalProperties": False}, {"a": 1, "b": 2}, False),
        ({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
          "additionalProperties": False}, {}, False),
        ({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
          "additionalProperties": False}, {"a": "1"}, False),
        ({"type": "object", "properties": {"a": {"type": "integer"}}}, {"b": "x"}, True),
        ({"type": "object", "properties": {"a": {"type": "integer"}}}, [], False),
        ({"type": "object", "additionalProperties": {"type": "integer"}}, {"x": "s"}, False),
        ({"type": "object", "additionalProperties": False}, {"x": 1}, False),
        ({"type": "object", "additionalProperties": False}, {}, True),
    ],
)  # fmt: skip
def test_keywords(schema: dict[str, Any], instance: Any, ok: bool) -> None:
    assert _Compiler(schema).compile(schema)(instance) is ok


@pytest.mark.parametrize(
    "schema",
    [{"format": "date-time"}, {"dependentRequired": {}}, {"not": {}}, {"patternProperties": {}},
     {"items": [{}]}, {"$ref": "other.json"}, {"type": "float"},
     {"$ref": "https://example.com/schemas/bundle/v1.json#/$defs/images"},  # not an airgap $id
     {"$ref": "https://airgap.dev/schemas/nope/v1.json#/$defs/x"},  # no such shipped schema
     {"$ref": "https://airgap.dev/schemas/bundle/v1.json#/$defs/nope"},  # no such definition
     {"$ref": "https://airgap.dev/schemas/bundle/v1.json"}],  # no fragment: not our form
)  # fmt: skip
def test_a_keyword_outside_the_subset_is_not_compiled(schema: dict[str, Any]) -> None:
    with pytest.raises(Unsupported):
        _Compiler(schema).compile(schema)


def test_a_schema_it_cannot_compile_always_asks_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schemacheck, "_COMPILED", {"bundle": None})
    assert conforms("bundle", {}) is False


SCALARS: list[Any] = [None, True, False, 0, -1, 1.5, 2**70, "", "x", "../x", "a\n", DIGEST,
                      DIGEST + "\n", "sha256:" + "A" * 64, [], {}, [1], {"k": 1}]  # fmt: skip


def _paths(doc: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*at, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:3]):
            out += _paths(v, (*at, i))
    return out


def _mutate(doc: Any, rng: random.Random) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(_paths(doc)[1:])
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        last = path[-1]
        action = rng.random()
        if action < 0.6:
            parent[last] = rng.choice(SCALARS)
        elif action < 0.8 and isinstance(parent, dict):
            del parent[last]
        elif isinstance(parent, dict):
            parent["extra_" + str(last)] = rng.choice(SCALARS)
        else:
            parent.append(copy.deepcopy(parent[last]))
    return doc


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    (tar,) = build_golden(tmp_path_factory.mktemp("golden"))
    with tarfile.open(tar) as tf:
        member = tf.extractfile("airgap/bundle.json")
        assert member is not None
        bundle = json.load(member)
    import yaml

    demo = Path(__file__).resolve().parents[2] / "manifests" / "examples" / "demo.yaml"
    multi = demo.with_name("qwen2.5-7b-multi.yaml")
    # reports whose schemas take definitions from others by $ref: inspect's (bundle's images
    # and accelerator), and lock's refusal of an invalid manifest (validate-report's refusal,
    # which holds validate's whole report, findings and all)
    bad = tar.parent / "bad.yaml"
    bad.write_text(demo.read_text().replace("apiVersion", "apiVerzion", 1))
    refusal = json.loads(cli("lock", str(bad), "--json").stdout)
    assert refusal["ok"] is False and refusal["validation"]["findings"]
    return {
        "bundle": bundle,
        "lock": bundle["lock"],
        "manifest": yaml.safe_load(demo.read_text()),
        "manifest-multi": yaml.safe_load(multi.read_text()),
        "inspect-report": json.loads(cli("inspect", str(tar), "--json").stdout),
        "lock-report": refusal,
    }


#: the real documents, and the schema each follows
KINDS = {
    "bundle": "bundle",
    "lock": "lock",
    "manifest": "manifest",
    "manifest-multi": "manifest",
    "inspect-report": "inspect-report",
    "lock-report": "lock-report",
}


@pytest.mark.parametrize("kind", KINDS)
def test_real_documents_take_the_fast_path(documents: dict[str, Any], kind: str) -> None:
    assert conforms(KINDS[kind], documents[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_a_yes_is_never_a_document_jsonschema_refuses(documents: dict[str, Any], kind: str) -> None:
    name = KINDS[kind]
    rng = random.Random(f"schemacheck {kind}")
    refused = 0
    for _ in range(600):
        doc = _mutate(documents[kind], rng)
        errors = list(validator(name).iter_errors(doc))
        if conforms(name, doc):
            assert not errors, (json.dumps(doc)[:300], errors[0].message)
        refused += bool(errors)
    assert refused > 300  # the mutations do break documents


def test_the_schemas_ship_in_the_subset() -> None:
    root = Path(__file__).resolve().parents[2] / "schemas"
    names = sorted(p.name.removesuffix(".schema.json") for p in root.glob("*.schema.json"))
    assert {"bundle", "lock", "receipt", "trust", "diff", "manifest", "parts-index"} <= {
        n for n in names if schemacheck.compiled(n)
    }
