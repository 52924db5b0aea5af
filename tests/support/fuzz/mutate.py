"""Structure-aware mutations of JSON and YAML documents, driven by one seeded ``random.Random``.

A mutant is made in three layers, each optional but at least one applied:

* tree operations on the parsed document (:mod:`.tree`): change a value's type, put hostile
  strings, numbers, digests and paths in its place, delete, duplicate (as a raw name given twice
  in the text) or rename a name, swap, repeat or drop list items, graft one part onto another,
  nest deeply; for YAML also anchors and aliases (recursive ones, alias bombs), merge keys, tags,
  non-string keys and YAML 1.1 plain scalars (``on``, ``2024-01-01``, ``0x1F``, ``12:30``);
* text operations on the written document: duplicated or dropped lines, tabs, control
  characters, BOMs, CRLF, YAML directives and extra documents, JSON comments and trailing commas;
* byte operations: flipped bits, cut or repeated ranges, truncation, invalid UTF-8, UTF-16.

The same ``Random`` state gives the same bytes on every machine; :class:`Mutant.ops` says what was
done, for the report.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from tests.support.fuzz import emit
from tests.support.fuzz.tree import (
    Anchored,
    Node,
    Obj,
    Place,
    Raw,
    copy,
    from_data,
    places,
    strings,
)

# --------------------------------------------------------------------------------- value pools

CONTROL = [
    "\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\r", "\x1b", "\x1b[2J", "\x1b]0;owned\x07",
    "\x1b[31mred\x1b[0m", "\x7f", "\x85", "\x9b", "\x9b2J", "\u202a", "\u202d", "\u202e",
    "\u2066", "\u2067", "\u2069", "\u2028", "\u2029", "\ufeff", "\u200b",
]  # fmt: skip

LONE_SURROGATE = "\ud800"

HOSTILE_STRINGS = [
    "", " ", "\ud800", "\udfff", "a\ud800b", "\udc80\udcff", "a\x00b", "\x1b[2J\x1b[H",
    "evil\u202etxt.exe", "\u2066x\u2069", "line1\nline2", "tab\there", "é", "e\u0301",
    "\ufb01", "\uff28", "\u0130", "\U0001f600", "%s%n%x", "{0}{1}", "[bold red]markup[/]",
    "[link=file:///etc/passwd]x[/link]", "${HOME}", "$(id)", "`id`", "\\", "\\u0000",
    "null", "true", "0", "-1", "NaN", "1e999", "0x10", "\t", "\n", " x ",
]  # fmt: skip

PATHS = [
    "../../etc/passwd", "..", "../", ".", "./", "/abs", "/etc/passwd", "a/./b", "a/../b",
    "a//b", "a/", "/", "a\\b", "..\\..\\x", "C:\\x", "a\x00b", "~/x", "model/../../x",
    "blobs/sha256/../../x", "airgap/bundle.json", ".airgap/bundle.json", "airgap/probe/cli.py",
    "index.json", "oci-layout", "CON", "a" * 300, "/".join(["a"] * 200), "current",
    ".staging/x", "receipts/x", "MODEL/CONFIG.JSON", "model/config.json/", "model\\config.json",
]  # fmt: skip

RAW_NUMBERS = [
    "NaN", "Infinity", "-Infinity", "1e999", "-1e999", "-0", "1E400", "1" * 5000, "-" + "9" * 4400,
    "0.0000000000000000000000000000001", "01", "0x10", "+1", ".5", "1.", "1e", "--1", "1_000",
]  # fmt: skip

NUMBERS: list[Any] = [
    0, -1, 1, 2, 7, -(2**63), 2**63 - 1, 2**63, 2**64, 10**30, -(10**30), 1.5, -0.5, 1e308,
    -1e308, 0.0, 5e-324, True, False, 4096, 2**31, 2**32 + 1,
]  # fmt: skip

YAML_SCALARS = [
    "2024-01-01", "2001-12-14t21:59:43.10-05:00", "yes", "No", "on", "OFF", "y", "~", ".nan",
    ".inf", "-.inf", "0x1F", "0o17", "017", "1_000", "1e3", "+12", "12:30:00", "1:20", "=", "<<",
    "*undefined", "&", "|", ">", "@x", "`x", "%x", "? x", "- x", "[", "{", "]", '"unterminated',
    "'single ''quoted'''", "!!python/object/apply:os.system ['true']", "!!python/name:os.system",
    "!!binary aGVsbG8=", "!!timestamp 2001-12-14", "!!float 1", "!!int x", "!!str 5",
    "!custom value", "!!set {a, b}", "!!omap [a: 1]", "!<tag:yaml.org,2002:str> x", "!!map {}",
    "!!seq []", "!!null ''", "!!bool yes", "|\n  block\n  text", ">-\n  folded", "&r [*r]",
    "&m {a: *m}", "{a: 1, a: 2}", "[a, b", "{? [a, b]: c}", "!!python/tuple [1, 2]",
]  # fmt: skip

YAML_KEYS = [
    "1", "true", "null", "~", "[a, b]", "{a: b}", "? x", '"quoted"', "'single'", "<<", "=",
    "!!python/object:os.system x", "2024-01-01", "1.5", "on", "*undefined", '""', "!!binary YQ==",
]  # fmt: skip

YAML_TAGS = [
    "!!str", "!!int", "!!float", "!!bool", "!!null", "!!binary", "!!timestamp", "!custom",
    "!!python/str", "!!python/object:os.system", "!<tag:yaml.org,2002:str>", "!!map", "!!seq",
]  # fmt: skip

_HEX64 = re.compile(r"(sha256:)?[0-9a-f]{64}")
_INDEX = re.compile(r"\[\d+\]")


def _alias_bomb(prefix: str, levels: int = 9, width: int = 10) -> str:
    """``[&p0 [x, ...], &p1 [*p0, ...], ...]``: width ** levels values when expanded."""
    out = [f"&{prefix}0 [" + ", ".join(["lol"] * width) + "]"]
    out += [
        f"&{prefix}{i} [" + ", ".join([f"*{prefix}{i - 1}"] * width) + "]" for i in range(1, levels)
    ]
    return "[" + ", ".join(out) + "]"


# --------------------------------------------------------------------------------- the mutator


@dataclass(frozen=True)
class Mutant:
    data: bytes
    ops: tuple[str, ...]


def _short(value: Any) -> str:
    text = value.text if isinstance(value, Raw) else repr(value)
    return text if len(text) <= 48 else text[:45] + "..."


class Mutator:
    """One document's mutations; ``yaml_mode`` adds the YAML-only operations and writer."""

    def __init__(
        self, rng: random.Random, root: Node, *, yaml_mode: bool, extra: Sequence[str] = ()
    ) -> None:
        self.rng = rng
        self.box: list[Any] = [root]
        self.yaml_mode = yaml_mode
        self.ops: list[str] = []
        self.vocabulary = sorted(set(strings(root)) | set(extra))
        self.digests = sorted(s for s in self.vocabulary if _HEX64.fullmatch(s))
        self.anchors = 0

    # ---------------------------------------------------------------------- helpers
    def _places(self) -> list[Place]:
        return list(places(self.box))

    def _choose(self, candidates: Sequence[Place]) -> Place:
        """One of ``candidates``, every field equally likely however many list items repeat it:
        a shape first (``$.blobs[].digest``), then one place of that shape."""
        shapes: dict[str, list[Place]] = {}
        for p in candidates:
            shapes.setdefault(_INDEX.sub("[]", p.path), []).append(p)
        return self.rng.choice(shapes[self.rng.choice(list(shapes))])

    def _pick(self, *, root: bool = False) -> Place:
        ps = self._places()
        return self._choose(ps if root or len(ps) == 1 else ps[1:])

    def _log(self, op: str, place: Place | None, value: Any = None) -> None:
        where = place.path if place is not None else ""
        self.ops.append(f"{op} {where}" + (f" = {_short(value)}" if value is not None else ""))

    def _set(self, op: str, place: Place, value: Node) -> None:
        place.set(value)
        self._log(op, place, value)

    # ---------------------------------------------------------------------- tree operations
    def op_retype(self) -> None:
        place = self._pick()
        old = place.get()
        pool: list[Node] = [None, True, False, 0, -1, 3.14, "", "x", "1", [], Obj()]
        if not isinstance(old, (Obj, list)):
            pool += [[copy(old)], Obj([("value", copy(old))]), str(old)]
        else:
            pool += [Obj([("value", copy(old))]), [copy(old)]]
        choices = [v for v in pool if type(v) is not type(old)]
        self._set("retype", place, copy(self.rng.choice(choices)))

    def op_number(self) -> None:
        place = self._pick()
        if self.rng.random() < 0.4:
            value: Node = Raw(self.rng.choice(RAW_NUMBERS))
        else:
            value = self.rng.choice(NUMBERS)
            old = place.get()
            if isinstance(old, int) and not isinstance(old, bool) and self.rng.random() < 0.5:
                value = self.rng.choice([old + 1, old - 1, -old, old * 2**32, old // 2, -1 - old])
        self._set("number", place, value)

    def op_string(self) -> None:
        place = self._pick()
        pool = HOSTILE_STRINGS if self.rng.random() < 0.7 else CONTROL
        self._set("string", place, self.rng.choice(pool))

    def op_tweak(self) -> None:
        """Change an existing string a little: the values checks most often get wrong."""
        candidates = [p for p in self._places() if isinstance(p.get(), str)]
        if not candidates:
            return self.op_string()
        place = self._choose(candidates)
        s = place.get()
        assert isinstance(s, str)
        k = self.rng.randrange(len(s) + 1)
        ctrl = self.rng.choice(CONTROL)
        variants = [
            s + "\n", s + "\r\n", "\n" + s, s.upper(), s[:-1], s + s, s + "\x00",
            s[:k] + ctrl + s[k:], "../" + s, s + "/..", "/" + s, s.replace("/", "\\"), s + "/",
            unicodedata.normalize("NFD", s), " " + s, s + " ", s[:k] + "\ud800" + s[k:],
            s * 200, s.replace(".", "\u2024"), s.replace("a", "\u0430"), s + "\u200b",
        ]  # fmt: skip
        self._set("tweak", place, self.rng.choice(variants))

    def op_digest(self) -> None:
        place = self._pick()
        old = place.get()
        base = old if isinstance(old, str) and _HEX64.fullmatch(old) else None
        if base is None:
            base = self.rng.choice(self.digests) if self.digests else "sha256:" + "ab" * 32
        hexd = base.split(":")[-1]
        prefix = "sha256:" if base.startswith("sha256:") else ""
        variants = [
            prefix + hexd[:-1], prefix + hexd + "0", base.upper(), "SHA256:" + hexd,
            base + "\n", base + " ", " " + base, prefix + hexd[:-1] + "g", "sha512:" + hexd,
            "sha256" + hexd, "sha256::" + hexd, hexd, "sha256:", "sha256:" + "0" * 64,
            prefix + "0" * 64, base + "\x00", "sha256:../../" + hexd[:50], prefix + hexd.upper(),
            base[:7] + "\u200b" + base[7:], prefix + hexd + hexd,
        ]  # fmt: skip
        if self.digests:
            variants.append(self.rng.choice(self.digests))  # valid, but another one
        self._set("digest", place, self.rng.choice(variants))

    def op_path(self) -> None:
        place = self._pick()
        pool = PATHS + [v for v in self.vocabulary if "/" in v or "." in v][:200]
        self._set("path", place, self.rng.choice(pool))

    def op_vocabulary(self) -> None:
        """A string the document (or its surroundings) uses elsewhere: confusable on purpose."""
        if not self.vocabulary:
            return self.op_string()
        self._set("reuse", self._pick(), self.rng.choice(self.vocabulary))

    def _pick_pair(self) -> Place | None:
        candidates = [p for p in self._places()[1:] if isinstance(p.parent, Obj)]
        return self._choose(candidates) if candidates else None

    def op_delete_key(self) -> None:
        place = self._pick_pair()
        if place is None:
            return self.op_retype()
        assert isinstance(place.parent, Obj)
        del place.parent.pairs[place.index]
        self._log("delete", place)

    def op_duplicate_key(self) -> None:
        place = self._pick_pair()
        if place is None:
            return self.op_retype()
        assert isinstance(place.parent, Obj)
        key, value = place.parent.pairs[place.index]
        if self.rng.random() < 0.5:
            other: Node = copy(value)
        else:
            other = self.rng.choice([None, 0, "", "other", Obj(), [], True])
        where = self.rng.choice([place.index, place.index + 1, len(place.parent.pairs)])
        place.parent.pairs.insert(where, (key, other))
        self._log("duplicate-name", place, other)

    def op_rename_key(self) -> None:
        place = self._pick_pair()
        if place is None:
            return self.op_retype()
        assert isinstance(place.parent, Obj)
        key, value = place.parent.pairs[place.index]
        text = key.text if isinstance(key, Raw) else key
        siblings = [k for k, _ in place.parent.pairs if isinstance(k, str) and k != key]
        variants = [
            text + "s", text.upper(), text[:-1], text + "\x00", "\ud800", "", " " + text,
            text + " ", text.replace("a", "\u0430"), "__proto__", "$ref", text + "\u200b",
            text.replace("_", "-"), text.title(),
        ]  # fmt: skip
        if siblings:
            variants += [self.rng.choice(siblings)] * 3  # a rename that makes a duplicate
        new = self.rng.choice(variants)
        place.parent.pairs[place.index] = (new, value)
        self._log("rename", place, new)

    def op_add_key(self) -> None:
        objects = [p for p in self._places() if isinstance(p.get(), Obj)]
        if not objects:
            return self.op_retype()
        place = self._choose(objects)
        obj = place.get()
        assert isinstance(obj, Obj)
        name = self.rng.choice(["x-fuzz", "extra", "\x1b[2J", "", *self.vocabulary[:50]])
        value: Node = copy(self.rng.choice([None, 1, "v", Obj(), [], *self.vocabulary[:20]]))
        obj.pairs.insert(self.rng.randrange(len(obj.pairs) + 1), (name, value))
        self._log("add-name", place, name)

    def op_list(self) -> None:
        lists = [p for p in self._places() if isinstance(p.get(), list) and p.get()]
        if not lists:
            return self.op_retype()
        place = self._choose(lists)
        items = place.get()
        assert isinstance(items, list)
        i, j = self.rng.randrange(len(items)), self.rng.randrange(len(items))
        what = self.rng.choice(["swap", "drop", "dup", "reverse", "empty", "repeat", "front"])
        if what == "swap":
            items[i], items[j] = items[j], items[i]
        elif what == "drop":
            del items[i]
        elif what == "dup":
            items.insert(j, copy(items[i]))
        elif what == "reverse":
            items.reverse()
        elif what == "empty":
            items.clear()
        elif what == "repeat":
            items.extend(copy(items[i]) for _ in range(self.rng.choice([2, 10, 1000])))
        else:
            items.insert(0, items.pop(i))
        self._log(f"list-{what}", place)

    def op_deep(self) -> None:
        place = self._pick()
        n = self.rng.choice([65, 100, 1000, 50_000])
        nested = ("[" * n + "]" * n, '{"a": ' * n + "1" + "}" * n)
        text = nested[self.rng.random() < 0.5]
        self._set("deep", place, Raw(text))

    def op_long(self) -> None:
        place = self._pick()
        unit = self.rng.choice(["A", "\x1b[2J", "é", "../", "\u202e"])
        n = self.rng.choice([10_000, 300_000])
        self._set("long", place, unit * (n // len(unit)))

    def op_graft(self) -> None:
        ps = self._places()
        src, dst = self._choose(ps), self._choose(ps[1:] or ps)
        self._set("graft", dst, copy(src.get()))

    def op_swap(self) -> None:
        ps = self._places()[1:]
        if len(ps) < 2:
            return self.op_retype()
        a = self._choose(ps)
        b = self._choose([p for p in ps if p is not a])
        va, vb = copy(a.get()), copy(b.get())
        a.set(vb)
        b.set(va)
        self._log("swap", a, Raw(b.path))

    # ---------------------------------------------------------------------- YAML-only
    def op_yaml_scalar(self) -> None:
        self._set("yaml-scalar", self._pick(), Raw(self.rng.choice(YAML_SCALARS)))

    def op_yaml_alias(self) -> None:
        ps = self._places()[1:]
        if len(ps) < 2:
            return self.op_yaml_scalar()
        i = self.rng.randrange(len(ps) - 1)
        j = self.rng.randrange(i + 1, len(ps))  # an alias comes after its anchor
        self.anchors += 1
        name = f"a{self.anchors}"
        target, alias = ps[i], ps[j]
        value = target.get()
        if isinstance(value, Anchored):
            name = value.anchor
        else:
            target.set(Anchored(name, value))
        alias.set(Raw(f"*{name}"))
        self._log("alias", alias, Raw(f"*{name} -> {target.path}"))

    def op_yaml_bomb(self) -> None:
        self.anchors += 1
        self._set("alias-bomb", self._pick(), Raw(_alias_bomb(f"b{self.anchors}x")))

    def op_yaml_merge(self) -> None:
        objects = [p for p in self._places() if isinstance(p.get(), Obj)]
        if not objects:
            return self.op_yaml_scalar()
        place = self._choose(objects)
        obj = place.get()
        assert isinstance(obj, Obj)
        pool: list[Node] = [Obj([("x", 1)]), Raw("*undefined"), Raw("[{a: 1}, {b: 2}]")]
        merged = self.rng.choice(pool)
        obj.pairs.insert(0, (Raw("<<"), merged))
        self._log("merge-key", place, merged)

    def op_yaml_key(self) -> None:
        place = self._pick_pair()
        if place is None:
            return self.op_yaml_scalar()
        assert isinstance(place.parent, Obj)
        key = Raw(self.rng.choice(YAML_KEYS))
        place.parent.pairs[place.index] = (key, place.parent.pairs[place.index][1])
        self._log("yaml-key", place, key)

    def op_yaml_tag(self) -> None:
        candidates = [
            p for p in self._places()[1:] if not isinstance(p.get(), (Obj, list, Anchored))
        ]
        if not candidates:
            return self.op_yaml_scalar()
        place = self._choose(candidates)
        inline = emit.to_yaml(place.get(), emit.YamlStyle()).strip()
        self._set("tag", place, Raw(f"{self.rng.choice(YAML_TAGS)} {inline}"))

    # ---------------------------------------------------------------------- the three layers
    def tree_ops(self) -> list[Callable[[], None]]:
        ops: list[Callable[[], None]] = [
            self.op_retype, self.op_number, self.op_string, self.op_tweak, self.op_tweak,
            self.op_digest, self.op_path, self.op_vocabulary, self.op_delete_key,
            self.op_duplicate_key, self.op_rename_key, self.op_add_key, self.op_list,
            self.op_list, self.op_deep, self.op_long, self.op_graft, self.op_swap,
        ]  # fmt: skip
        if self.yaml_mode:
            ops += [
                self.op_yaml_scalar, self.op_yaml_scalar, self.op_yaml_alias, self.op_yaml_alias,
                self.op_yaml_bomb, self.op_yaml_merge, self.op_yaml_key, self.op_yaml_tag,
            ]  # fmt: skip
        return ops

    def write(self) -> str:
        root = self.box[0]
        if self.yaml_mode:
            style = emit.YamlStyle(
                flow=self.rng.random() < 0.15,
                quote_all=self.rng.random() < 0.3,
                raw_controls=self.rng.random() < 0.2,
            )
            return emit.to_yaml(root, style)
        json_style = emit.JsonStyle(
            indent=self.rng.choice([2, 2, 2, None, 1, 4]), ensure_ascii=self.rng.random() < 0.3
        )
        return emit.to_json(root, json_style)

    def text_op(self, text: str) -> str:
        rng = self.rng
        lines = text.split("\n")
        i = rng.randrange(len(lines))
        choices = ["dup-line", "drop-line", "swap-lines", "control", "crlf", "bom-mid"]
        choices += (
            ["tab", "tab-value", "directive", "second-doc", "end-doc", "comment", "indent", "huge"]
            if self.yaml_mode
            else ["comment", "trailing-comma", "raw-control-in-string", "huge"]
        )
        what = rng.choice(choices)
        if what == "dup-line":
            lines.insert(i, lines[i])
        elif what == "drop-line":
            del lines[i]
        elif what == "swap-lines":
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif what == "control":
            k = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:k] + rng.choice([*CONTROL, LONE_SURROGATE]) + lines[i][k:]
        elif what == "crlf":
            return text.replace("\n", rng.choice(["\r\n", "\r"]))
        elif what == "bom-mid":
            lines[i] = "\ufeff" + lines[i]
        elif what == "tab":
            stripped = lines[i].lstrip(" ")
            lines[i] = "\t" * max(1, (len(lines[i]) - len(stripped)) // 2) + stripped
        elif what == "tab-value":
            lines[i] = lines[i].replace(": ", ":\t", 1)
        elif what == "directive":
            lines.insert(0, rng.choice(["%YAML 1.1\n---", "%TAG ! tag:evil.example,2024:\n---"]))
        elif what == "second-doc":
            lines.append(rng.choice(["---\nsecond: doc", "--- []", "---"]))
        elif what == "end-doc":
            lines.insert(i, "...")
        elif what == "comment":
            lines.insert(i, rng.choice(["# \x1b[2J", "// comment", "/* c */", "#", "# \ud800"]))
        elif what == "indent":
            lines[i] = " " + lines[i]
        elif what == "trailing-comma":
            lines[i] = re.sub(r"([}\]])", r",\1", lines[i], count=1) + ","
        elif what == "raw-control-in-string":
            lines[i] = lines[i].replace('"', '"' + rng.choice(CONTROL), 1)
        elif what == "huge":
            lines += [lines[i]] * (2_000_000 // max(1, len(lines[i]) + 1))
        self.ops.append(f"text:{what} line {i + 1}")
        return "\n".join(lines)

    def byte_op(self, data: bytes) -> bytes:
        rng = self.rng
        n = len(data)
        k = rng.randrange(n + 1)
        what = rng.choice(
            ["flip", "set", "cut", "insert", "truncate", "repeat", "invalid-utf8", "bom",
             "utf16", "nul", "empty", "blank", "garbage"]
        )  # fmt: skip
        if what == "flip" and n:
            k = rng.randrange(n)
            data = data[:k] + bytes([data[k] ^ (1 << rng.randrange(8))]) + data[k + 1 :]
        elif what == "set" and n:
            k = rng.randrange(n)
            data = data[:k] + bytes([rng.randrange(256)]) + data[k + 1 :]
        elif what == "cut":
            data = data[:k] + data[k + rng.randrange(1, 64) :]
        elif what == "insert":
            data = (
                data[:k] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16))) + data[k:]
            )
        elif what == "truncate":
            data = data[:k]
        elif what == "repeat":
            data = data[:k] + data[k : k + rng.randrange(1, 256)] * 2 + data[k + 256 :]
        elif what == "invalid-utf8":
            seq = rng.choice(
                [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]
            )
            data = data[:k] + seq + data[k:]
        elif what == "bom":
            data = b"\xef\xbb\xbf" + data
        elif what == "utf16":
            data = data.decode("utf-8", "replace").encode(rng.choice(["utf-16", "utf-16-be"]))
        elif what == "nul":
            data = data[:k] + b"\x00" + data[k:]
        elif what == "empty":
            data = b""
        elif what == "blank":
            data = b" \n\t\n"
        else:
            data = data + rng.choice([b"garbage", b"}", b"\n{}", b"\x00" * 8, b"]]]]"])
        self.ops.append(f"bytes:{what} at {k}")
        return data

    def mutant(self) -> Mutant:
        rng = self.rng
        layers = rng.random()
        tree_ops = self.tree_ops()
        if layers < 0.85:
            for _ in range(1 + int(rng.expovariate(1.2))):
                rng.choice(tree_ops)()
        text = self.write()
        if layers >= 0.85 or rng.random() < 0.2:
            text = self.text_op(text)
        data = emit.encode(text)
        if layers >= 0.95 or rng.random() < 0.1:
            data = self.byte_op(data)
        return Mutant(data, tuple(self.ops))


def parse_yaml(raw: bytes) -> Any:
    """A seed manifest as plain data (the fixtures are plain YAML)."""
    return yaml.safe_load(raw)


def mutate(
    original: bytes, rng: random.Random, *, yaml_mode: bool = False, extra: Sequence[str] = ()
) -> Mutant:
    """One mutant of ``original`` (a JSON document, or a YAML one with ``yaml_mode``)."""
    data = parse_yaml(original) if yaml_mode else json.loads(original)
    return Mutator(rng, from_data(data), yaml_mode=yaml_mode, extra=extra).mutant()


# --------------------------------------------------------------------------------- comparison


class _Pairs(list):  # type: ignore[type-arg]
    """An object's pairs, told apart from a list."""


def _pairs(p: list[tuple[str, Any]]) -> _Pairs:
    if len({k for k, _ in p}) != len(p):
        raise ValueError("a name given twice")
    return _Pairs(p)


def _tagged(x: Any) -> Any:
    if isinstance(x, _Pairs):
        return ("obj", sorted((k, _tagged(v)) for k, v in x))
    if isinstance(x, list):
        return ("list", [_tagged(v) for v in x])
    return (type(x).__name__, x)


def same_json(a: bytes, b: bytes) -> bool:
    """Whether two JSON texts hold the same data (types exact: 1, 1.0 and true differ; a name
    given twice makes a document differ from every other). Unparseable text equals nothing."""
    try:
        ta = _tagged(json.loads(a, object_pairs_hook=_pairs))
        tb = _tagged(json.loads(b, object_pairs_hook=_pairs))
    except (ValueError, RecursionError):
        return False
    return bool(ta == tb)
