"""Ascend op kernels: the metadata JSON CANN writes beside each kernel binary.

CANN's op compiler writes ``<binFileName><binFileSuffix>`` (usually ``.o``) and a JSON of the same
stem beside it (in ``kernel_meta/`` for JIT builds; under ``op_impl/ai_core/tbe/kernel/<soc>/``
in a binary op package), with keys such as ``binFileName``, ``binFileSuffix``, ``kernelName``,
``magic`` (``RT_DEV_BINARY_MAGIC_ELF``...), ``coreType``, ``blockDim`` and ``sha256``.

Where the JSON is looked for, for a kernel path ``dir/op.o``: ``dir/op.json``, then
``dir/kernel_meta/op.json``; a kernel path that is itself ``op.json`` names the binary through
``binFileName`` + ``binFileSuffix``.

The soc the op was built for, in this order:

1. the keys ``socVersion``, ``soc_version``, ``SocVersion``, ``socVersions`` or ``soc_versions``
   (a string or a list of strings) at the top of the JSON, or inside its ``supportInfo``,
   ``opInfo``, ``op_info`` or ``compileInfo`` object (CANN's compile records carry
   ``"socVersion": "Ascend910A"`` in ``op_info``);
2. else a folder of the kernel's path named like a soc or a soc family (``ascend910b``,
   ``ascend910_93``, ``ascend310p``), as binary op packages lay kernels out per soc.

A soc version matches a chip when it equals (ignoring case) one of the chip's soc names
(``Ascend910B3``) or its family (``Ascend910B``). ``sha256`` in the JSON, when present, must be
the binary's sha256.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.util.fs import is_file

SOC_KEYS = ("socVersion", "soc_version", "SocVersion", "socVersions", "soc_versions")
NESTED_KEYS = ("supportInfo", "opInfo", "op_info", "compileInfo")
MAX_META_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class AscendMeta:
    binary: Path
    meta: Path | None  # the JSON read, or None when there is none
    socs: tuple[str, ...]  # soc versions the op says it is built for
    soc_source: str  # "json key socVersion", "folder name ascend910b", or "none"
    sha256_declared: str | None
    sha256_actual: str | None
    kernel_name: str | None
    error: str | None = None  # the JSON could not be read

    def to_json(self) -> dict[str, Any]:
        return {
            "binary": str(self.binary),
            "meta": str(self.meta) if self.meta else None,
            "socs": list(self.socs),
            "soc_source": self.soc_source,
            "sha256_declared": self.sha256_declared,
            "sha256_actual": self.sha256_actual,
            "kernel_name": self.kernel_name,
            "error": self.error,
        }


def meta_candidates(path: Path) -> list[Path]:
    return [path.with_suffix(".json"), path.parent / "kernel_meta" / (path.stem + ".json")]


def read_meta(path: Path, known_socs: Iterable[str] = ()) -> AscendMeta:
    """What the op package says about the kernel at ``path``; never raises for bad JSON."""
    meta_path: Path | None = None
    binary = path
    if path.suffix == ".json":
        meta_path = path
    else:
        meta_path = next((c for c in meta_candidates(path) if is_file(c)), None)
    doc: dict[str, Any] = {}
    error = None
    if meta_path is not None:
        try:
            if meta_path.stat().st_size > MAX_META_BYTES:
                raise ValueError(f"{meta_path.stat().st_size} bytes, above the limit")
            loaded = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(loaded, dict):
                raise ValueError("not a JSON object")
            doc = loaded
        except (OSError, ValueError, RecursionError) as exc:
            error = f"{meta_path}: cannot read it as kernel metadata: {exc}"
    if path.suffix == ".json" and doc.get("binFileName"):
        binary = path.parent / (str(doc["binFileName"]) + str(doc.get("binFileSuffix", ".o")))
    socs, source = _socs_from(doc)
    if not socs:
        socs, source = _socs_from_folders(path, known_socs)
    declared = doc.get("sha256")
    actual = None
    if isinstance(declared, str) and is_file(binary):
        actual = _sha256(binary)
    kernel = doc.get("kernelName")
    return AscendMeta(
        binary,
        meta_path,
        socs,
        source,
        declared if isinstance(declared, str) else None,
        actual,
        kernel if isinstance(kernel, str) else None,
        error,
    )


def _as_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) and value.strip():
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if isinstance(v, str) and v.strip())
    return ()


def _socs_from(doc: dict[str, Any]) -> tuple[tuple[str, ...], str]:
    scopes: list[tuple[str, Any]] = [("", doc)] + [(f"{k}.", doc.get(k)) for k in NESTED_KEYS]
    for prefix, scope in scopes:
        if not isinstance(scope, dict):
            continue
        for key in SOC_KEYS:
            socs = _as_list(scope.get(key))
            if socs:
                return socs, f"json key {prefix}{key}"
    return (), "none"


def _socs_from_folders(path: Path, known: Iterable[str]) -> tuple[tuple[str, ...], str]:
    lowered = {k.lower(): k for k in known}
    for part in reversed(path.parent.parts):
        if part.lower() in lowered:
            return (lowered[part.lower()],), f"folder name {part}"
    return (), "none"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def soc_matches(socs: Iterable[str], chip_socs: Iterable[str], family: str | None) -> bool:
    mine = {s.lower() for s in chip_socs} | ({family.lower()} if family else set())
    return any(s.lower() in mine for s in socs)
