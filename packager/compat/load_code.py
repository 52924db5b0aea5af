"""Model files that run code when the model loads (codes AG700-AG702).

| code  | severity | rule |
|-------|----------|------|
| AG700 | info     | a file runs code at load time and ``model.allow_code`` lists its sha256 |
| AG701 | error    | a file runs code at load time and ``model.allow_code`` does not list its sha256 |
| AG702 | warning  | ``model.allow_code`` lists a sha256 that no selected model file has |

The facts, each with its source:

- **pickle** (``torch.load`` of a legacy ``.bin``/``.pt``/``.pth``/``.ckpt``, ``pickle.load``):
  unpickling calls whatever ``__reduce__`` names ("The pickle module is not secure. Only unpickle
  data you trust", docs.python.org/3/library/pickle.html; PyTorch's ``torch.load`` documents the
  same, and Hugging Face's "Pickle scanning" page lists the attack). Told by content, never by
  name only: the stream's opcodes are walked with :func:`pickletools.genops`, which parses and
  never executes.
- **zip-pickle** (``torch.save`` since PyTorch 1.6): a zip archive whose ``data.pkl`` is a pickle
  (pytorch.org/docs/stable/notes/serialization.html).
- **python**: ``.py`` files in a model folder are imported by ``trust_remote_code=True``.
- **auto_map**: a ``config.json`` with ``auto_map`` makes transformers' Auto classes import the
  model folder's own Python (huggingface.co/docs/transformers/custom_models).

safetensors, GGUF and ONNX are data: loading them runs nothing of the file's.

Pure: names and bytes in, a kind or findings out (reading files is the caller's).
"""

from __future__ import annotations

import io
import json
import pickletools
import struct
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from packager.findings import Severity
from packager.manifest.yamlsource import JsonPath

#: how many leading bytes of a file :func:`runs_code` needs
HEAD_BYTES = 64 * 1024
#: config.json is read whole up to this size (a larger one is not a transformers config)
MAX_CONFIG_BYTES = 16 * 1024 * 1024
#: what each kind means, for people
KINDS = {
    "pickle": "a pickle: unpickling runs what its __reduce__ names",
    "zip-pickle": "a zip of pickles (torch.save): torch.load unpickles its data.pkl",
    "python": "Python source: trust_remote_code imports it",
    "auto_map": "config.json's auto_map: the Auto classes import the model's own Python",
}
#: file names whose content is tried as a pickle from its first byte (protocols 0 and 1 have no
#: PROTO opcode to recognize them by)
PICKLE_NAMES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib")
#: a pickle that parses this many opcodes before the head ends is one
MIN_OPCODES = 3


def _parses_as_pickle(head: bytes, min_ops: int) -> bool:
    """The stream is a pickle: its opcodes parse to a STOP and :func:`pickletools.dis` accepts
    it (a consistent stack and memo), with at least ``min_ops`` opcodes; or, for a pickle longer
    than the head, :data:`MIN_OPCODES` of them parse before the head ends. Parses, never runs."""
    with warnings.catch_warnings():  # genops decodes escapes: bytes that are no pickle warn
        warnings.simplefilter("ignore")
        return _parses(head, min_ops)


def _parses(head: bytes, min_ops: int) -> bool:
    ops, stop = 0, None
    try:
        for op, _arg, pos in pickletools.genops(head):
            ops += 1
            if op.name == "STOP":
                stop = (pos or 0) + 1
                break
    except Exception:  # genops raises ValueError, struct.error, UnicodeError...
        return ops >= MIN_OPCODES and len(head) >= HEAD_BYTES
    if stop is None or ops < min_ops:
        return False
    try:
        pickletools.dis(head[:stop], out=io.StringIO())
    except Exception:  # an inconsistent stream: not a pickle
        return False
    return True


def _zip_names(head: bytes) -> list[str]:
    """The names of the local file headers found in ``head`` (a zip's first entries)."""
    out: list[str] = []
    pos = 0
    while pos + 30 <= len(head) and head[pos : pos + 4] == b"PK\x03\x04":
        flags, _method = struct.unpack_from("<HH", head, pos + 6)
        size = struct.unpack_from("<I", head, pos + 18)[0]
        name_len, extra_len = struct.unpack_from("<HH", head, pos + 26)
        name = head[pos + 30 : pos + 30 + name_len].decode("utf-8", "replace")
        out.append(name)
        if flags & 0x08:  # sizes follow the data: the next header cannot be found from here
            break
        pos += 30 + name_len + extra_len + size
    return out


def name_class(name: str) -> str:
    """What of a file's name :func:`runs_code` looks at: ``python`` (``.py``: code whatever it
    holds), ``config`` (``config.json``: read whole), ``pickle`` (a name pickles go by: tried as
    one from the first byte), ``data`` (any other). Two files of one class and one content get
    one answer."""
    base = name.rsplit("/", 1)[-1].lower()
    if base.endswith(".py"):
        return "python"
    if base == "config.json":
        return "config"
    return "pickle" if base.endswith(PICKLE_NAMES) else "data"


def head_bytes(kind: str) -> int:
    """How many first bytes :func:`runs_code` needs of a file of the name class ``kind``."""
    return {"python": 0, "config": MAX_CONFIG_BYTES}.get(kind, HEAD_BYTES)


def runs_code(name: str, head: bytes, config: bytes | None = None) -> str | None:
    """How loading the file ``name`` (a model-relative path) runs code: ``pickle``,
    ``zip-pickle``, ``python``, ``auto_map``; None when it is read as data.

    ``head``: its first :data:`HEAD_BYTES` bytes (all of it when shorter); ``config``: the whole
    file when its name is ``config.json``.
    """
    kind = name_class(name)
    return runs_code_of(kind, config if kind == "config" and config is not None else head)


def runs_code_of(kind: str, head: bytes) -> str | None:
    """:func:`runs_code` of a file of the name class ``kind`` (:func:`name_class`) whose first
    :func:`head_bytes` bytes are ``head``."""
    if kind == "python":
        return "python"
    if kind == "config":
        return "auto_map" if _has_auto_map(head) else None
    if head.startswith(b"PK\x03\x04"):
        names = _zip_names(head)
        return "zip-pickle" if any(n.endswith(".pkl") for n in names) else None
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle" if _parses_as_pickle(head, 2) else None
    if kind == "pickle" and _parses_as_pickle(head, MIN_OPCODES):
        return "pickle"
    return None


def _has_auto_map(data: bytes) -> bool:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(doc, dict) and "auto_map" in doc


@dataclass(frozen=True)
class CodeFile:
    """A model file that runs code at load time."""

    path: str  # relative to the model folder
    sha256: str  # hex
    size: int
    kind: str  # a key of KINDS
    allowed: bool  # model.allow_code lists its sha256

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "kind": self.kind,
            "why": KINDS.get(self.kind, self.kind),
            "allowed": self.allowed,
        }


def code_files(
    files: Iterable[tuple[str, str, int, str | None]], allowed: Iterable[str]
) -> list[CodeFile]:
    """The files (path, sha256, size, kind) that run code, each judged against ``allowed``."""
    allow = set(allowed)
    return [
        CodeFile(path, sha, size, kind, sha in allow)
        for path, sha, size, kind in files
        if kind is not None
    ]


def allow_code_snippet(digests: Iterable[str]) -> str:
    """The manifest lines that allow ``digests``."""
    return "model: {allow_code: [" + ", ".join(sorted(set(digests))) + "]}"


Add = Callable[..., None]


def check_code_files(
    add: Add, found: list[CodeFile], allow_code: Mapping[str, JsonPath], model_at: JsonPath
) -> None:
    """Findings AG700-AG702 for the files that run code. ``add(severity, code, message, path,
    hint)``; ``allow_code``: each allowed sha256 and where the manifest lists it."""
    blocked = [f for f in found if not f.allowed]
    for f in found:
        if f.allowed:
            add(
                Severity.INFO,
                "AG700",
                f"{f.path} runs code at load time ({KINDS[f.kind]}), sha256 {f.sha256}: allowed "
                "by model.allow_code",
                allow_code.get(f.sha256, (*model_at, "allow_code")),
                None,
            )
        else:
            add(
                Severity.ERROR,
                "AG701",
                f"{f.path} runs code at load time ({KINDS[f.kind]}), sha256 {f.sha256}: not in "
                "model.allow_code, so it cannot be locked or built",
                model_at,
                "review the file; to carry it, list its digest: "
                + allow_code_snippet(x.sha256 for x in blocked)
                + "; or leave it out (model.exclude) and use safetensors weights",
            )
    have = {f.sha256 for f in found}
    for sha, at in allow_code.items():
        if sha not in have:
            add(
                Severity.WARNING,
                "AG702",
                f"model.allow_code lists sha256 {sha}, which no selected model file that runs "
                "code has",
                at,
                "remove it (the file changed or is no longer carried)",
            )
