"""Receipts: ``DIR/receipts/NAME/VERSION.json``, what one install put where.

A receipt exists exactly when a version is installed: it is renamed into place after the
version's folder is complete and before ``current`` may point at it, and removed first when the
version is uninstalled. `airgap audit --site` re-hashes the installed files against it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from packager.bundle import layout
from packager.site.safefs import Dir, SiteError
from packager.util.jsonio import DocumentError, indented_json, parse_document
from packager.util.schemas import first_error

MAX_RECEIPT_BYTES = 64 * 1024 * 1024
_HEX = re.compile(r"^[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class InstalledFile:
    path: str  # relative to bundles/NAME/VERSION
    sha256: str
    size: int
    blob: bool  # a hard link to (or copy of) DIR/blobs/sha256/<sha256>

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size, "blob": self.blob}


@dataclass
class Receipt:
    name: str
    version: str
    target: str | None
    digest: str  # the bundle's content digest: sha256 of bundle.json
    signers: list[dict[str, str]]  # keyid, name
    installed: str  # UTC time
    tool: str  # airgap version that installed it
    files: list[InstalledFile]
    linked: bool = True  # hard links into the store (False: copies)
    images: list[dict[str, Any]] = field(default_factory=list)  # loaded into an engine / pushed
    #: installed read-only (files 0444, folders 0555); False for installs of older airgap versions
    read_only: bool = False

    @property
    def unit(self) -> str:
        """The name of its folders: NAME, or NAME+TARGET (layout.site_unit)."""
        return layout.site_unit(self.name, self.target)

    @property
    def blobs(self) -> set[str]:
        return {f.sha256 for f in self.files if f.blob}

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def image_places(self) -> list[dict[str, str | None]]:
        """Which runtime or registry got which image (``airgap list``, ``audit --site``): ref,
        into (docker, containerd, podman, or the registry), the name it has there, the digest
        (manifest, else image ID) and its status; only text values are taken."""

        def text(entry: dict[str, Any], *keys: str) -> str | None:
            for k in keys:
                v = entry.get(k)
                if isinstance(v, str) and v:
                    return v
            return None

        return [
            {
                "ref": text(i, "ref"),
                "into": text(i, "into"),
                "name": text(i, "name", "tag", "destination"),
                "namespace": text(i, "namespace"),
                "digest": text(i, "manifest_digest", "image_id"),
                "status": text(i, "status"),
            }
            for i in self.images
            if isinstance(i, dict)
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "receipt": layout.RECEIPT_FORMAT,
            "name": self.name,
            "version": self.version,
            "target": self.target,
            "digest": self.digest,
            "signers": self.signers,
            "installed": self.installed,
            "airgap": self.tool,
            "linked": self.linked,
            "images": self.images,
            "read_only": self.read_only,
            "files": [f.to_json() for f in self.files],
        }

    def to_bytes(self) -> bytes:
        text = indented_json(self.to_json(), sort_keys=True, ensure_ascii=True, indent=1)
        return (text + "\n").encode()  # json.dumps(indent=1, sort_keys=True)'s bytes


class ReceiptError(SiteError):
    """A receipt that cannot be read: damaged or edited by hand."""


def parse_receipt(data: bytes, where: str) -> Receipt:
    try:
        doc = parse_document(data)
    except DocumentError as exc:
        raise ReceiptError(f"{where}: not a readable receipt ({exc})") from None
    problem = first_error("receipt", doc)
    if problem is not None:
        raise ReceiptError(f"{where}: not a readable receipt {problem}")
    try:
        files = [InstalledFile(f["path"], f["sha256"], f["size"], f["blob"]) for f in doc["files"]]
        return Receipt(
            name=str(doc["name"]),
            version=str(doc["version"]),
            target=doc.get("target"),
            digest=str(doc["digest"]),
            signers=list(doc.get("signers") or []),
            installed=str(doc.get("installed")),
            tool=str(doc.get("airgap")),
            files=files,
            linked=bool(doc.get("linked", True)),
            images=list(doc.get("images") or []),
            read_only=doc.get("read_only") is True,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ReceiptError(f"{where}: not a readable receipt ({exc})") from None


def merge_images(recorded: list[dict[str, Any]], now: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The images of a receipt after another images step: an entry for the same image in the
    same place (into, ref, namespace, address, store) is replaced, others are kept."""

    def key(i: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(i.get(k) for k in ("into", "ref", "namespace", "address", "store"))

    fresh = {key(i) for i in now}
    return [i for i in recorded if not isinstance(i, dict) or key(i) not in fresh] + now


def record_images(receipts: Dir, name: str, version: str, images: list[dict[str, Any]]) -> None:
    """Add what a later images step did (an install of a version already installed) to its
    receipt: written to a temporary name and renamed over it."""
    d = receipts.maybe_sub(name)
    if d is None:
        return
    with d:
        leaf = layout.receipt_name(version)
        data = d.read_small(leaf, MAX_RECEIPT_BYTES)
        if data is None:
            return
        receipt = parse_receipt(data, d.path_of(leaf))
        receipt.images = merge_images(receipt.images, images)
        tmp = f".{leaf}.{secrets.token_hex(6)}.tmp"
        d.write_file(tmp, receipt.to_bytes())
        d.rename(tmp, d, leaf)
        d.fsync()


def read_receipt(receipts: Dir, name: str, version: str) -> Receipt | None:
    d = receipts.maybe_sub(name)
    if d is None:
        return None
    with d:
        data = d.read_small(layout.receipt_name(version), MAX_RECEIPT_BYTES)
        return (
            None if data is None else parse_receipt(data, d.path_of(layout.receipt_name(version)))
        )


def versions_of(receipts: Dir, name: str) -> list[str]:
    """The versions of ``name`` that have a receipt (installed), by file name."""
    d = receipts.maybe_sub(name)
    if d is None:
        return []
    with d:
        return [
            n.removesuffix(".json")
            for n in d.names()
            if n.endswith(".json") and not n.startswith(".") and d.kind(n) == "file"
        ]


def read_all(prefix: Dir) -> tuple[dict[str, dict[str, Receipt]], list[str]]:
    """Every receipt of the prefix by name and version, and a problem for each unreadable one."""
    out: dict[str, dict[str, Receipt]] = {}
    problems: list[str] = []
    receipts = prefix.maybe_sub(layout.SITE_RECEIPTS_DIR)
    if receipts is None:
        return out, problems
    with receipts:
        for name in receipts.names():
            if receipts.kind(name) != "dir":
                problems.append(f"{receipts.path_of(name)}: not a folder of receipts")
                continue
            for version in versions_of(receipts, name):
                try:
                    r = read_receipt(receipts, name, version)
                except SiteError as exc:
                    problems.append(exc.message)
                    continue
                if r is None:
                    continue
                if r.unit != name or r.version != version:
                    problems.append(
                        f"{receipts.path_of(name)}/{layout.receipt_name(version)}: "
                        f"says {r.unit} {r.version} (moved or edited)"
                    )
                    continue
                out.setdefault(name, {})[version] = r
    return out, problems
