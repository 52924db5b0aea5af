"""Safe YAML loading that remembers where every value came from.

PyYAML's composer gives a node graph with marks; we construct plain JSON-compatible data from it
ourselves so that we can
  * record the line and column of every value and every mapping key (for error messages),
  * refuse duplicate keys, recursive aliases and alias bombs ("billion laughs") with bounded work,
  * keep mapping keys as the text the user wrote (``on:`` stays ``"on"``, not ``True``).
Only the YAML safe subset is accepted: no Python tags, no merge keys.
"""

from __future__ import annotations

import datetime as _dt
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from packager.errors import ManifestReadError, SourceLocation
from packager.util.text import quoted

#: a manifest is a small hand-written file; anything larger is refused before parsing
MAX_DOCUMENT_BYTES = 1024 * 1024
#: values built after expanding aliases; generous for real manifests, fatal for alias bombs
MAX_EXPANDED_NODES = 100_000
MAX_DEPTH = 64

JsonPath = tuple[Union[str, int], ...]


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based


def json_path_str(path: JsonPath) -> str:
    """Render a path the way jq and JSON Schema tools do: ``$.target.accelerator.chips[0]``."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{part!r}]"
    return out


@dataclass
class PositionedDocument:
    """Plain data plus the source position of each value and mapping key."""

    file: str
    data: dict[str, Any]
    value_marks: dict[JsonPath, Mark] = field(default_factory=dict)
    key_marks: dict[JsonPath, Mark] = field(default_factory=dict)

    def location(self, path: JsonPath, *, key: bool = False) -> SourceLocation:
        """Where the value (or, with ``key``, the key) at ``path`` was written.

        Falls back to the nearest ancestor that has a position, so a finding about a value that
        is missing points at the mapping that should have held it.
        """
        probe = tuple(path)
        while True:
            mark = (self.key_marks.get(probe) if key else None) or self.value_marks.get(probe)
            if mark is not None:
                return SourceLocation(self.file, mark.line, mark.column)
            if not probe:
                return SourceLocation(self.file)
            probe = probe[:-1]

    def get(self, path: JsonPath) -> Any:
        node: Any = self.data
        for part in path:
            node = node[part]
        return node


def _mark(node: Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.budget = MAX_EXPANDED_NODES
        self.value_marks: dict[JsonPath, Mark] = {}
        self.key_marks: dict[JsonPath, Mark] = {}
        self._active: set[int] = set()

    def fail(self, node: Node, message: str, hint: str | None = None) -> ManifestReadError:
        m = _mark(node)
        return ManifestReadError(
            message, hint=hint, location=SourceLocation(self.file, m.line, m.column)
        )

    def build(self, node: Node, path: JsonPath) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise self.fail(
                node,
                f"the document expands to more than {MAX_EXPANDED_NODES} values",
                "anchors and aliases (&a / *a) expand exponentially here; "
                "write the values out instead",
            )
        if len(path) > MAX_DEPTH:
            raise self.fail(node, f"nesting deeper than {MAX_DEPTH} levels")
        if id(node) in self._active:
            raise self.fail(node, "an alias refers to a value that contains itself")
        self.value_marks.setdefault(path, _mark(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
        finally:
            self._active.discard(id(node))
        raise self.fail(node, f"unsupported YAML node {type(node).__name__}")

    def _scalar(self, node: ScalarNode) -> Any:
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise self.fail(
                node,
                f"unsupported YAML value: {exc.problem}",
                "manifests use plain YAML: strings, numbers, booleans, lists and mappings",
            ) from None
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            # PyYAML's constructors raise these for a tag its text does not fit (!!int abc,
            # !!bool maybe, !!timestamp 2024-02-30) and for an int past Python's digit limit
            raise self.fail(
                node,
                f"{quoted(node.value, 60)} cannot be read as a YAML {_tag_name(node.tag)}",
                "drop the tag, or quote the value to make it a string",
            ) from None
        if isinstance(value, (_dt.datetime, _dt.date)):
            return value.isoformat()
        if isinstance(value, bytes):
            raise self.fail(node, "binary values (!!binary) are not allowed in a manifest")
        if isinstance(value, str):
            self._check_text(node, value)
        return value

    def _check_text(self, node: Node, text: str) -> None:
        """Text must be Unicode: a lone surrogate (``"\\ud800"``) cannot be written out again."""
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise self.fail(
                node,
                f"{quoted(text, 60)} holds a lone surrogate "
                f"(U+{ord(text[exc.start]):04X}), which is not a character",
                "write the character itself, or a surrogate pair for one above U+FFFF",
            ) from None

    def _mapping(self, node: MappingNode, path: JsonPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_seen: dict[str, Mark] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise self.fail(key_node, "mapping keys must be plain strings")
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self.fail(
                    key_node,
                    "merge keys (<<) are not supported in manifests",
                    "write the merged keys out",
                )
            key = str(key_node.value)
            self._check_text(key_node, key)
            if key in first_seen:
                first = first_seen[key]
                raise self.fail(
                    key_node,
                    f"duplicate key {key!r} in {json_path_str(path)} "
                    f"(first defined at line {first.line})",
                    "remove one of them; YAML keeps only the last, which hides mistakes",
                )
            first_seen[key] = _mark(key_node)
            self.key_marks[(*path, key)] = _mark(key_node)
            out[key] = self.build(value_node, (*path, key))
        return out


def _read_bounded(path: Path) -> bytes:
    if not path.exists():
        if path.is_symlink():
            raise ManifestReadError(
                f"{path}: the manifest is a dangling symbolic link",
                hint="point it at an existing file",
            )
        raise ManifestReadError(
            f"{path}: no such file",
            hint="check the path; `airgap init NAME` writes a starter manifest",
        )
    if path.is_dir():
        raise ManifestReadError(
            f"{path}: is a folder, not a manifest file",
            hint="give the YAML file itself, e.g. manifests/examples/demo.yaml",
        )
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise ManifestReadError(
            f"{path}: cannot read the manifest: {exc.strerror}",
            hint="check the file's permissions",
        ) from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ManifestReadError(
            f"{path}: the manifest is larger than {MAX_DOCUMENT_BYTES // 1024} KiB",
            hint="a manifest names its inputs; it does not contain them. Is this the right file?",
        )
    return raw


def _tag_name(tag: str) -> str:
    """``tag:yaml.org,2002:int`` -> ``!!int``."""
    prefix = "tag:yaml.org,2002:"
    return "!!" + tag[len(prefix) :] if tag.startswith(prefix) else tag


def _reader_error(exc: yaml.reader.ReaderError, text: str, name: str) -> ManifestReadError:
    """PyYAML refuses control characters (and other non-printable ones) before parsing."""
    char = exc.character if isinstance(exc.character, str) else chr(exc.character)
    at = max(0, min(exc.position, len(text)))
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    return ManifestReadError(
        f"the character U+{ord(char):04X} ({unicodedata.name(char, 'a control character')}) "
        "is not allowed in YAML",
        hint="remove it; inside double quotes an escape (\\x1b, \\u200b) writes it",
        location=SourceLocation(name, line, column),
    )


def load_yaml_file(path: Path) -> PositionedDocument:
    """Read one YAML mapping from ``path`` with source positions; raise ManifestReadError."""
    raw = _read_bounded(path)
    name = str(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestReadError(
            f"{name}: not UTF-8 text (invalid byte at offset {exc.start})",
            hint="save the manifest as UTF-8",
        ) from None
    return load_yaml_text(text, name)


def load_yaml_text(text: str, name: str) -> PositionedDocument:
    if not text.strip() or all(
        not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()
    ):
        raise ManifestReadError(
            f"{name}: the manifest is empty",
            hint="`airgap init NAME` writes a starter manifest",
        )
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, name) from None
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = SourceLocation(name, mark.line + 1, mark.column + 1) if mark else None
            problem = exc.problem or exc.context or "invalid YAML"
            if isinstance(exc, yaml.composer.ComposerError) and "single document" in str(
                exc.context
            ):
                problem = "the file holds more than one YAML document"
            raise ManifestReadError(
                f"YAML syntax error: {problem}",
                hint="check indentation and quoting near this line",
                location=where,
            ) from None
        except yaml.reader.ReaderError as exc:
            raise _reader_error(exc, text, name) from None
        except yaml.YAMLError as exc:
            raise ManifestReadError(f"{name}: YAML error: {quoted(str(exc), 200)}") from None
        except RecursionError:
            raise ManifestReadError(
                f"{name}: the document is nested too deeply to be a manifest"
            ) from None
        if root is None:
            raise ManifestReadError(f"{name}: the manifest is empty")
        builder = _Builder(loader, name)
        if not isinstance(root, MappingNode):
            kind = "a list" if isinstance(root, SequenceNode) else "a single value"
            raise builder.fail(
                root,
                f"a manifest is a mapping of keys (apiVersion, kind, ...), but this file is {kind}",
                "start from `airgap init NAME`",
            )
        try:
            data = builder.build(root, ())
        except RecursionError:
            raise ManifestReadError(
                f"{name}: the document is nested too deeply to be a manifest"
            ) from None
    finally:
        loader.dispose()
    return PositionedDocument(name, data, builder.value_marks, builder.key_marks)


def iter_paths(data: Any, prefix: JsonPath = ()) -> Iterator[JsonPath]:
    """Every path in a plain data tree, parents before children."""
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from iter_paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from iter_paths(v, (*prefix, i))
