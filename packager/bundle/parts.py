"""The parts index, ``NAME-VERSION.airgap.parts.json`` (schemas/parts-index.schema.json).

A bundle split for removable media travels as ``STEM.airgap.tar.000``, ``.001``, ... beside this
index, which lists each part's size and sha256 so a bad copy is named part by part. The index is
not signed: it only helps find damage, and every name in it is checked to be a plain file name of
this bundle before it is joined to a folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.bundle.errors import BundleFormatError
from packager.util.fs import atomic_write_text
from packager.util.jsonio import DocumentError, parse_document
from packager.util.schemas import first_error

PARTS_FORMAT = 1
#: a parts index lists names and digests; anything larger is not one
MAX_INDEX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Part:
    name: str
    size: int
    sha256: str  # hex

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Part:
        return cls(d["name"], d["size"], d["sha256"])


@dataclass(frozen=True)
class PartsIndex:
    stem: str  # NAME-VERSION[-TARGET]
    digest: str  # the content digest: sha256 of bundle.json
    total_size: int
    parts: tuple[Part, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "airgapParts": PARTS_FORMAT,
            "bundle": self.stem,
            "digest": self.digest,
            "total_size": self.total_size,
            "parts": [p.to_json() for p in self.parts],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PartsIndex:
        return cls(
            d["bundle"], d["digest"], d["total_size"], tuple(Part.from_json(p) for p in d["parts"])
        )


def parse_parts_index(raw: bytes, source: Path) -> PartsIndex:
    """A parts index from its bytes, or :class:`BundleFormatError` naming what is wrong.

    Beyond the schema: no part listed twice, each part named after the index's own stem.
    """
    if len(raw) > MAX_INDEX_BYTES:
        raise BundleFormatError(
            f"{source}: larger than {MAX_INDEX_BYTES // 2**20} MiB; not a parts index"
        )
    try:
        doc = parse_document(raw)
    except DocumentError as exc:
        raise BundleFormatError(f"{source}: not a parts index: {exc}") from None
    problem = first_error("parts-index", doc)
    if problem is not None:
        raise BundleFormatError(
            f"{source}: not a parts index {problem}",
            hint="`airgap build --split` writes one beside the parts; copy it unchanged",
        )
    index = PartsIndex.from_json(doc)
    seen: set[str] = set()
    for p in index.parts:
        if p.name in seen:
            raise BundleFormatError(f"{source}: the part {p.name} is listed twice")
        seen.add(p.name)
        if not p.name.startswith(layout.tar_name(index.stem) + "."):
            raise BundleFormatError(
                f"{source}: the part {p.name} is not a part of {index.stem}",
                hint="a parts index lists only the parts of its own bundle",
            )
    return index


def read_parts_index(path: Path) -> PartsIndex:
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_INDEX_BYTES + 1)
    except OSError as exc:
        raise BundleFormatError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_parts_index(raw, path)


def write_parts_index(path: Path, index: PartsIndex) -> None:
    import json

    atomic_write_text(path, json.dumps(index.to_json(), indent=2) + "\n")
