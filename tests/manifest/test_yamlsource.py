"""Positioned YAML loading: positions, and every way a file can fail to be a manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager.errors import ManifestReadError
from packager.manifest.yamlsource import (
    MAX_DOCUMENT_BYTES,
    Mark,
    json_path_str,
    load_yaml_file,
    load_yaml_text,
)
from tests.support.manifests import billion_laughs


def test_values_and_keys_keep_their_positions() -> None:
    doc = load_yaml_text("a: 1\nb:\n  - x\n  - {c: y}\n", "m.yaml")
    assert doc.data == {"a": 1, "b": ["x", {"c": "y"}]}
    assert doc.value_marks[("b", 1, "c")] == Mark(4, 9)
    assert doc.key_marks[("b",)] == Mark(2, 1)
    loc = doc.location(("b", 1, "c"))
    assert (loc.file, loc.line, loc.column) == ("m.yaml", 4, 9)


def test_location_of_a_missing_value_falls_back_to_its_parent() -> None:
    doc = load_yaml_text("a:\n  b: 1\n", "m.yaml")
    assert doc.location(("a", "nope", 3)).line == 2


def test_keys_stay_the_text_the_user_wrote() -> None:
    # YAML 1.1 would read `on` and `no` as booleans; keys must stay strings
    doc = load_yaml_text("on: 1\nno: 2\n3: x\n", "m.yaml")
    assert set(doc.data) == {"on", "no", "3"}


def test_dates_become_iso_strings() -> None:
    assert load_yaml_text("d: 2026-01-01\n", "m.yaml").data == {"d": "2026-01-01"}


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        pytest.param("a: 1\na: 2\n", "duplicate key 'a'", 2, id="duplicate-key"),
        pytest.param("a:\n  b: 1\n  b: 2\n", "duplicate key 'b' in $.a", 3, id="duplicate-nested"),
        pytest.param("- 1\n- 2\n", "this file is a list", 1, id="list"),
        pytest.param("just text\n", "this file is a single value", 1, id="scalar"),
        pytest.param("a: [1, 2\nb: 3\n", "YAML syntax error", 2, id="unclosed-flow"),
        pytest.param("a: 1\n b: 2\n", "YAML syntax error", 2, id="bad-indent"),
        pytest.param("a: 1\n---\nb: 2\n", "more than one YAML document", 2, id="two-documents"),
        pytest.param("a: !!python/object:os.system x\n", "unsupported YAML value", 1, id="py-tag"),
        pytest.param("a: !!binary aGVsbG8=\n", "binary values", 1, id="binary"),
        pytest.param("<<: {a: 1}\n", "merge keys", 1, id="merge-key"),
        pytest.param("? [a, b]\n: 1\n", "mapping keys must be plain strings", 1, id="complex-key"),
        pytest.param("a: &x {b: *x}\n", "contains itself", 1, id="recursive-alias"),
        pytest.param(billion_laughs(), "expands to more than", None, id="billion-laughs"),
        # found by tests/support/fuzz: each was a ReaderError, ValueError or UnicodeEncodeError
        pytest.param("a: 1\nb: x\x1b[2J\n", "U+001B", 2, id="escape-character"),
        pytest.param("\x07a: 1\n", "U+0007", 1, id="bell-first"),
        pytest.param("a: \x9b2J\n", "U+009B", 1, id="c1-control"),
        pytest.param(
            "a: 1\nkind: !!int Bundle\n", "'Bundle' cannot be read as a YAML !!int", 2, id="int-tag"
        ),
        pytest.param("a: !!float x\n", "'x' cannot be read as a YAML !!float", 1, id="float-tag"),
        pytest.param("a: !!bool maybe\n", "as a YAML !!bool", 1, id="bool-tag"),
        pytest.param("a: !!timestamp 2024-02-30\n", "as a YAML !!timestamp", 1, id="bad-date"),
        pytest.param("a: !!timestamp soon\n", "as a YAML !!timestamp", 1, id="timestamp-tag"),
        pytest.param("a: " + "9" * 5000 + "\n", "cannot be read as a YAML !!int", 1, id="huge-int"),
        pytest.param('a: "x\\ud800"\n', "lone surrogate (U+D800)", 1, id="surrogate-value"),
        pytest.param('"\\udfff": 1\n', "lone surrogate (U+DFFF)", 1, id="surrogate-key"),
    ],
)
def test_unreadable_documents_are_refused_with_a_place(
    text: str, message: str, line: int | None
) -> None:
    with pytest.raises(ManifestReadError) as info:
        load_yaml_text(text, "m.yaml")
    assert message in str(info.value)
    if line is not None:
        assert info.value.location is not None
        assert info.value.location.line == line


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"", "is empty", id="empty"),
        pytest.param(b"   \n\n", "is empty", id="blank"),
        pytest.param(b"# only a comment\n", "is empty", id="comment-only"),
        pytest.param(b"a: \xff\xfe\n", "not UTF-8", id="not-utf8"),
        pytest.param(b"[" * 5000 + b"]" * 5000, "nested", id="deep-nesting"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    f = tmp_path / "m.yaml"
    f.write_bytes(content)
    with pytest.raises(ManifestReadError, match=message):
        load_yaml_file(f)


def test_missing_file_folder_and_dangling_link(tmp_path: Path) -> None:
    with pytest.raises(ManifestReadError, match="no such file"):
        load_yaml_file(tmp_path / "nope.yaml")
    with pytest.raises(ManifestReadError, match="is a folder"):
        load_yaml_file(tmp_path)
    link = tmp_path / "link.yaml"
    link.symlink_to(tmp_path / "gone.yaml")
    with pytest.raises(ManifestReadError, match="dangling"):
        load_yaml_file(link)


def test_a_huge_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    f = tmp_path / "big.yaml"
    with f.open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)  # 50 MB, sparse
    with pytest.raises(ManifestReadError, match="larger than") as info:
        load_yaml_file(f)
    assert info.value.hint


def test_a_file_just_under_the_limit_is_read(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    body = "a: 1\n# " + "x" * (MAX_DOCUMENT_BYTES - 20) + "\n"
    f.write_text(body)
    assert load_yaml_file(f).data == {"a": 1}


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert load_yaml_file(f).data == {"a": 1}


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), "$"),
        (("target", "accelerator", "chips", 0), "$.target.accelerator.chips[0]"),
        (("targets", "my-id", "platform"), "$.targets['my-id'].platform"),
    ],
)
def test_json_paths_render_like_jq(path: tuple[str | int, ...], text: str) -> None:
    assert json_path_str(path) == text
