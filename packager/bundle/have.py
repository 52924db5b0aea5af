"""A site's have-list (schemas/have.schema.json): what its store holds, as typed data.

`airgap list --prefix DIR --have` writes it (packager.site.have); `airgap build --base
have.json` reads it (packager.bundle.base) to make a delta against exactly what that site has.
It holds content digests and sizes only: no path, key or time of the site.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.errors import InputError
from packager.util.jsonio import DocumentError, parse_document, read_bounded
from packager.util.schemas import first_error

HAVE_FORMAT = 1
#: a have-list lists digests; 64 MiB is several hundred thousand blobs
MAX_HAVE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class HeldBlob:
    digest: str  # sha256:<hex>
    size: int

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class HeldFile:
    """A site-kit wheel an installed version keeps (its sha256 hex and size)."""

    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class HeldVersion:
    name: str
    version: str
    target: str | None
    digest: str  # its content digest
    current: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "target": self.target,
            "digest": self.digest,
            "current": self.current,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> HeldVersion:
        return cls(d["name"], d["version"], d["target"], d["digest"], d["current"])


@dataclass(frozen=True)
class HaveList:
    blobs: tuple[HeldBlob, ...]
    installed: tuple[HeldVersion, ...]
    #: the site kit's wheels (a have-list from before them lists none: a delta carries the kit)
    kit: tuple[HeldFile, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "airgapHave": HAVE_FORMAT,
            "blobs": [b.to_json() for b in self.blobs],
            "installed": [v.to_json() for v in self.installed],
            "kit": [f.to_json() for f in self.kit],
        }

    def sizes(self) -> dict[str, int]:
        """Blob hex -> size."""
        return {b.hex: b.size for b in self.blobs}

    def kit_sizes(self) -> dict[str, int]:
        """Site-kit wheel sha256 hex -> size."""
        return {f.sha256: f.size for f in self.kit}


class HaveListError(InputError):
    """A have-list that is not one: not JSON, off the schema, a blob or version listed twice."""


def is_have_list(raw: bytes) -> bool:
    """Whether ``raw`` looks like a have-list (its format key near the start), before parsing."""
    return b'"airgapHave"' in raw[:4096]


def parse_have_list(raw: bytes, source: str) -> HaveList:
    """``raw`` as a :class:`HaveList`, or :class:`HaveListError` naming ``source`` and where."""
    try:
        doc = parse_document(raw)
    except DocumentError as exc:
        raise HaveListError(f"{source}: not a have-list: {exc}") from None
    problem = first_error("have", doc)
    if problem is not None:
        raise HaveListError(
            f"{source}: not a valid have-list {problem}",
            hint="write it with `airgap list --prefix DIR --have > have.json`",
        )
    blobs = tuple(HeldBlob(b["digest"], b["size"]) for b in doc["blobs"])
    installed = tuple(HeldVersion.from_json(v) for v in doc["installed"])
    kit = tuple(HeldFile(f["sha256"], f["size"]) for f in doc.get("kit", ()))
    seen: set[str] = set()
    for b in blobs:
        if b.digest in seen:
            raise HaveListError(f"{source}: $.blobs lists {b.digest} twice")
        seen.add(b.digest)
    for f in kit:
        if f.sha256 in seen:
            raise HaveListError(f"{source}: $.kit lists {f.sha256} twice")
        seen.add(f.sha256)
    versions: set[tuple[str, str | None, str]] = set()
    for v in installed:  # a version per target: one bundle of each is installed as NAME+TARGET
        if (v.name, v.target, v.version) in versions:
            what = v.name if v.target is None else f"{v.name} (target {v.target})"
            raise HaveListError(f"{source}: $.installed lists {what} {v.version} twice")
        versions.add((v.name, v.target, v.version))
    return HaveList(blobs, installed, kit)


def read_have_list(path: Path) -> HaveList:
    raw = read_bounded(
        path,
        MAX_HAVE_BYTES,
        what="have-list",
        missing_hint="write it at the site with `airgap list --prefix DIR --have > have.json`",
        error=HaveListError,
    )
    return parse_have_list(raw, str(path))
