"""parse_document: the one way a document from outside becomes data, or a DocumentError that says
what and where (never a bare ValueError, RecursionError or UnicodeError)."""

from __future__ import annotations

import json

import pytest

from packager.util.jsonio import DocumentError, indented_json, parse_document, pretty_json


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"a": 1, "a": 2}', "the name 'a' is given twice"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"a": 1e999}', "1e999 is too large to be a number"),
        (b'{"a": -1e999}', "-1e999 is too large to be a number"),
        (b'{"a": ' + b"9" * 5000 + b"}", "a number of 5000 digits (at most 64)"),
        (b'{"a": -' + b"9" * 100 + b"}", "a number of 101 digits"),
        (b'{"a": 0.' + b"1" * 100 + b"}", "a number of 102 characters"),
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels"),
        (b'{"a": ' * 65 + b"1" + b"}" * 65, "nested deeper than 64 levels at $.a.a.a"),
        (b'{"a": ["\\ud800"]}', "text that is not valid Unicode at $.a[0]"),
        (b'{"\\udfff": 1}', "a name that is not valid Unicode at $"),
        (b'[{"a": [1, {"b": "\\uDBFF"}]}]', "text that is not valid Unicode at $[0].a[1].b"),
        (b'{"a": [[' + b"[" * 63 + b"]" * 63 + b"]]}", "nested deeper than 64 levels"),
        ('{"a": "\ud800"}', "text that is not valid Unicode at $.a"),  # str given, not bytes
        (b'{"a": "\xff"}', "not UTF-8 text (byte 7)"),
        (b'{"a": 1', "not JSON: Expecting ',' delimiter at line 1 column 8"),
        ('{"a": 1}'.encode("utf-16"), "not UTF-8 text (byte 0)"),
        ('{"a": 1}'.encode("utf-32-le"), "not JSON"),
        (b'\xef\xbb\xbf{"a": 1}', "starts with a byte order mark"),
        (b"", "not JSON"),
    ],
)
def test_a_document_that_is_not_data_is_refused_with_what_and_where(raw: bytes, words: str) -> None:
    with pytest.raises(DocumentError) as info:
        parse_document(raw)
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("raw", "data"),
    [
        (
            b'{"size": 9223372036854775807, "f": 1.5, "e": 1e300}',
            {"size": 2**63 - 1, "f": 1.5, "e": 1e300},
        ),
        (b'{"a": ' * 63 + b"1" + b"}" * 63, None),
        ('{"name": "\u00e9\U0001f600"}'.encode(), {"name": "\u00e9\U0001f600"}),
        # an escaped backslash before "ud800" is text, not a surrogate escape
        (b'{"a": "\\\\ud800", "b": "\\u00e9"}', {"a": "\\ud800", "b": "\u00e9"}),
        (b'{"a": [' * 31 + b"[]" + b"]}" * 31, None),  # 63 levels, the innermost empty
        (b"[" + b"[" * 63 + b"]" * 63 + b"]", None),  # 64 levels of empty lists
    ],
)
def test_what_airgap_writes_reads_back(raw: bytes, data: object) -> None:
    doc = parse_document(raw)
    if data is not None:
        assert doc == data


class _Level(int):
    """An int subclass, as an IntEnum member is: json.dumps writes int.__repr__ of it."""

    def __repr__(self) -> str:
        return "Level()"


PRETTY_CASES = [
    {},
    [],
    "text",
    7,
    None,
    {"b": 1, "a": [1, 2, {"z": None, "y": True, "x": False}], "c": {}},
    {"empty": [], "nested": [[], {}, [[]]], "tuple": (1, "two", (3,))},
    {"text": 'quote " backslash \\ newline \n tab \t nul \x00 esc \x1b del \x7f'},
    {"unicode": "Modèle 模型 ☃ \u2028 \U0001f600", "ключ": "значение"},
    {"floats": [0.1, -0.0, 1e100, 2.5e-300, 3.0], "ints": [0, -1, 2**70, _Level(3), True]},
    {
        "blobs": [
            {"digest": f"sha256:{i:064x}", "size": i, "paths": [f"model/f{i}"]} for i in range(50)
        ]
    },
]


@pytest.mark.parametrize("obj", PRETTY_CASES, ids=range(len(PRETTY_CASES)))
def test_pretty_json_writes_exactly_what_json_dumps_with_an_indent_writes(obj: object) -> None:
    # the launcher re-renders a delta's signed bytes with json.dumps: not one byte may differ
    expected = json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    assert pretty_json(obj) == (expected + "\n").encode("utf-8")


@pytest.mark.parametrize(
    ("obj", "error"),
    [
        ({"x": float("nan")}, ValueError),
        ([float("inf")], ValueError),
        ({"x": {1, 2}}, TypeError),
        ({"x": object()}, TypeError),
        ({1: "a", "b": 2}, TypeError),  # names of two kinds cannot be sorted, as in json.dumps
    ],
)
def test_pretty_json_refuses_what_json_dumps_refuses(obj: object, error: type) -> None:
    with pytest.raises(error):
        json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    with pytest.raises(error):
        pretty_json(obj)


def test_pretty_json_leaves_names_that_are_not_text_to_json_dumps() -> None:
    obj = {"a": {2: "two", 1: "one"}, "b": {None: 0}}
    expected = json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    assert pretty_json(obj) == (expected + "\n").encode("utf-8")


@pytest.mark.parametrize(
    "obj", [*PRETTY_CASES, {"nan": [float("nan"), float("inf"), -float("inf")]}]
)
@pytest.mark.parametrize(
    "options",
    [
        {"sort_keys": False, "ensure_ascii": True, "allow_nan": True},  # a lock, --json output
        {"sort_keys": True, "ensure_ascii": True, "allow_nan": True},
        {"sort_keys": False, "ensure_ascii": False, "allow_nan": True},
    ],
)
@pytest.mark.parametrize("indent", [2, 1])  # 1: a receipt
def test_indented_json_writes_exactly_what_json_dumps_writes(
    obj: object, options: dict, indent: int
) -> None:
    assert indented_json(obj, indent=indent, **options) == json.dumps(obj, indent=indent, **options)
