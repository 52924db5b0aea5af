"""The fast indented encoder writes json.dumps's bytes, whatever the document and options."""

from __future__ import annotations

import enum
import json
import math
from typing import Any

import pytest

from packager.util import jsonindent


class Color(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


DOCS: list[Any] = [
    {},
    [],
    "text",
    7,
    -0.0,
    1e300,
    None,
    True,
    [[[]]],
    {"a": {}, "b": [], "c": [{}], "d": [[], {}]},
    {"files": [{"path": f"d/f{i}.json", "sha256": "ab" * 32, "size": i} for i in range(5)]},
    {"z": 1, "a": [1, 2.5, None, True, False, "x"], "m": {"n": {"o": [1, {"p": "q"}]}}},
    # what the C part must keep inside strings: separators, brackets, NUL, quotes, non-ASCII
    {"s": 'a,\0b {[]} "q" \\ \n\t é 日本 \U0001f600', "k,\0": "v: w"},
    ["}", "{", "]", "[", ",", ": ", "\0", "\x01"],
    {"tuple": (1, 2, (3,)), "nested": [(), ({},)]},
    {"enum": Color.RED, "int_enum": Level.HIGH, "list": [Color.RED, Level.HIGH]},
    {1: "int key", "b": 2},  # json turns the key into a string
    {"t": True, "f": False, "n": None, "big": 10**30, "neg": -5, "float": 0.1},
    [{"a": 1}, {"a": [1]}, {"a": {"b": 1}}],
]

OPTIONS: list[dict[str, Any]] = [
    {},
    {"sort_keys": True},
    {"ensure_ascii": False},
    {"sort_keys": True, "ensure_ascii": False, "allow_nan": False},
    {"indent": 1, "sort_keys": True},
    {"indent": 4},
]


@pytest.mark.parametrize("doc", DOCS, ids=range(len(DOCS)))
@pytest.mark.parametrize("options", OPTIONS, ids=[str(o) for o in OPTIONS])
def test_the_bytes_are_json_dumps_bytes(doc: Any, options: dict[str, Any]) -> None:
    try:
        want = json.dumps(doc, **{"indent": 2, **options})
    except TypeError:  # json cannot sort int and str keys: neither can the fast encoder
        with pytest.raises(TypeError):
            jsonindent.dumps(doc, **options)
        return
    assert jsonindent.dumps(doc, **options) == want


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_follow_allow_nan(value: float) -> None:
    doc = {"x": [value], "y": {"z": value, "w": [1, {"v": value}]}}
    assert jsonindent.dumps(doc) == json.dumps(doc, indent=2)
    with pytest.raises(ValueError, match="not JSON compliant"):
        jsonindent.dumps(doc, allow_nan=False)


def test_what_json_cannot_encode_is_refused_as_json_refuses_it() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsonindent.dumps({"a": [{"b": object()}]})
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsonindent.dumps({"a": {1, 2}})


def test_a_large_document_of_flat_records_is_identical() -> None:
    doc = {
        "files": [
            {"path": f"d{i // 500:03d}/f{i:06d}.json", "sha256": f"{i:064x}", "size": 2048}
            for i in range(5000)
        ],
        "blobs": [{"digest": f"sha256:{i:064x}", "paths": [f"p/{i}"]} for i in range(500)],
    }
    for sort_keys in (False, True):
        want = json.dumps(doc, indent=2, sort_keys=sort_keys)
        assert jsonindent.dumps(doc, sort_keys=sort_keys) == want
