"""Writing a mutated tree back as JSON or YAML text, in one of several styles.

Strings are written escaped by default; a lone surrogate written unescaped becomes bytes that are
not UTF-8 (``encode(..., "surrogatepass")``), which is one more corruption worth having.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from tests.support.fuzz.tree import Anchored, Key, Node, Obj, Raw


def encode(text: str) -> bytes:
    """UTF-8, lone surrogates included as the (invalid) bytes they would have."""
    return text.encode("utf-8", "surrogatepass")


# ----------------------------------------------------------------------------------------- JSON


@dataclass(frozen=True)
class JsonStyle:
    indent: int | None = 2
    ensure_ascii: bool = False


def _json_string(s: str, style: JsonStyle) -> str:
    return json.dumps(s, ensure_ascii=style.ensure_ascii)


def _json_key(k: Key, style: JsonStyle) -> str:
    return k.text if isinstance(k, Raw) else _json_string(k, style)


def to_json(node: Node, style: JsonStyle) -> str:
    return _json(node, style, 0) + ("\n" if style.indent is not None else "")


def _json(node: Node, style: JsonStyle, level: int) -> str:
    if isinstance(node, Anchored):
        return _json(node.value, style, level)
    if isinstance(node, Raw):
        return node.text
    if node is None or isinstance(node, bool):
        return json.dumps(node)
    if isinstance(node, (int, float)):
        return json.dumps(node)
    if isinstance(node, str):
        return _json_string(node, style)
    if isinstance(node, Obj):
        items = [f"{_json_key(k, style)}: {_json(v, style, level + 1)}" for k, v in node.pairs]
        return _wrap("{", "}", items, style, level)
    items = [_json(v, style, level + 1) for v in node]
    return _wrap("[", "]", items, style, level)


def _wrap(open_: str, close: str, items: list[str], style: JsonStyle, level: int) -> str:
    if not items:
        return open_ + close
    if style.indent is None:
        return open_ + ",".join(items) + close
    pad = " " * (style.indent * (level + 1))
    end = " " * (style.indent * level)
    return open_ + "\n" + ",\n".join(pad + i for i in items) + "\n" + end + close


# ----------------------------------------------------------------------------------------- YAML


@dataclass(frozen=True)
class YamlStyle:
    flow: bool = False  # the whole document in flow style ({a: [b]})
    quote_all: bool = False  # every string double-quoted, even where plain would do
    raw_controls: bool = False  # control characters written as themselves inside quotes


_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./+-]*(?: [A-Za-z0-9_./+-]+)*")
_SPECIAL = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def yaml_quote(s: str, *, raw_controls: bool = False) -> str:
    """``s`` as a YAML double-quoted scalar."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif (
            o < 0x20
            or o == 0x7F
            or 0x80 <= o <= 0x9F
            or 0xD800 <= o <= 0xDFFF
            or o in (0x2028, 0x2029, 0xFEFF)
        ):
            out.append(ch if raw_controls else (f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _yaml_string(s: str, style: YamlStyle) -> str:
    if not style.quote_all and _PLAIN.fullmatch(s) and s.lower() not in _SPECIAL:
        return s
    return yaml_quote(s, raw_controls=style.raw_controls)


def _yaml_key(k: Key, style: YamlStyle) -> str:
    return k.text if isinstance(k, Raw) else _yaml_string(k, style)


def _yaml_scalar(node: Node, style: YamlStyle) -> str | None:
    """The inline text of a scalar (or an empty container); None for a block container."""
    if isinstance(node, Raw):
        return node.text
    if node is None:
        return "null"
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, float):
        return json.dumps(node)
    if isinstance(node, int):
        return str(node)
    if isinstance(node, str):
        return _yaml_string(node, style)
    if isinstance(node, Obj) and not node.pairs:
        return "{}"
    if isinstance(node, list) and not node:
        return "[]"
    return None


def to_yaml(node: Node, style: YamlStyle) -> str:
    if style.flow:
        return _flow(node, style) + "\n"
    lines: list[str] = []
    anchor = ""
    if isinstance(node, Anchored):
        anchor, node = f"&{node.anchor}", node.value
    inline = _yaml_scalar(node, style)
    if inline is not None:
        return f"{anchor} {inline}".strip() + "\n"
    if anchor:
        lines.append(f"--- {anchor}")
    _block(node, 0, lines, style)
    return "\n".join(lines) + "\n"


def _flow(node: Node, style: YamlStyle) -> str:
    if isinstance(node, Anchored):
        return f"&{node.anchor} {_flow(node.value, style)}"
    if isinstance(node, Obj):
        return (
            "{"
            + ", ".join(f"{_yaml_key(k, style)}: {_flow(v, style)}" for k, v in node.pairs)
            + "}"
        )
    if isinstance(node, list):
        return "[" + ", ".join(_flow(v, style) for v in node) + "]"
    text = _yaml_scalar(node, style)
    assert text is not None
    return text


def _block(node: Node, indent: int, lines: list[str], style: YamlStyle) -> None:
    """A non-empty mapping or sequence as block lines at ``indent``."""
    pad = " " * indent
    if isinstance(node, Obj):
        entries = [(_yaml_key(k, style) + ":", v) for k, v in node.pairs]
    else:
        assert isinstance(node, list)
        entries = [("-", v) for v in node]
    for head, value in entries:
        anchor = ""
        if isinstance(value, Anchored):
            anchor, value = f" &{value.anchor}", value.value
        inline = _yaml_scalar(value, style)
        if inline is not None:
            lines.append(f"{pad}{head}{anchor} {inline}")
        else:
            lines.append(f"{pad}{head}{anchor}")
            _block(value, indent + 2, lines, style)
