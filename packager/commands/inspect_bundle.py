"""`airgap inspect` and `airgap digest`: what a bundle says it holds (read, not verified)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.bundle.errors import BundleFormatError
from packager.bundle.reader import open_bundle


@dataclass(frozen=True)
class Inspection:
    path: Path
    digest: str
    descriptor: dict[str, Any]
    signatures: list[str]  # keyids with a signature file
    parts: list[str]
    members: int

    def to_json(self) -> dict[str, Any]:
        d = self.descriptor
        blobs = d.get("blobs", [])
        by_role: dict[str, dict[str, int]] = {}
        for b in blobs:
            r = by_role.setdefault(b.get("role", "?"), {"blobs": 0, "bytes": 0})
            r["blobs"] += 1
            r["bytes"] += int(b.get("size", 0))
        return {
            "bundle": str(self.path),
            "digest": self.digest,
            "verified": False,
            "name": d.get("bundle", {}).get("name"),
            "version": d.get("bundle", {}).get("version"),
            "target": d.get("bundle", {}).get("target"),
            "created": d.get("bundle", {}).get("created"),
            "expires": d.get("bundle", {}).get("expires"),
            "platform": d.get("target", {}).get("platform"),
            "accelerator": d.get("target", {}).get("accelerator"),
            "signed": bool(self.signatures),
            "signatures": self.signatures,
            "parts": self.parts,
            "size": sum(int(b.get("size", 0)) for b in blobs),
            "roles": by_role,
            "model": sorted(
                (
                    {
                        "path": p,
                        "size": b["size"],
                        "digest": b["digest"],
                        "mediaType": b["mediaType"],
                    }
                    for b in blobs
                    if b.get("role") == "model"
                    for p in b.get("paths", [])
                ),
                key=lambda m: str(m["path"]),
            ),
            "images": d.get("images", []),
            "kernels": [
                {"name": k["name"], "kind": k["kind"], "path": k["path"]}
                for k in d.get("kernels", [])
            ],
            "wheels": [
                {"path": p, "size": b["size"], "digest": b["digest"]}
                for b in blobs
                if b.get("role") == "wheel"
                for p in b.get("paths", [])
            ],
            "files": [
                {"path": p, "size": b["size"], "digest": b["digest"]}
                for b in blobs
                if b.get("role") == "file"
                for p in b.get("paths", [])
            ],
        }


def inspect_bundle(path: Path) -> Inspection:
    with open_bundle(path) as b:
        raw, doc = b.bundle_json()
        sigs = sorted(
            name.rsplit("/", 1)[1].removesuffix(".sig")
            for name, m in b.members().items()
            if name.startswith(layout.SIGNATURES_DIR + "/") and m.kind == "file"
        )
        if "blobs" not in doc or "bundle" not in doc:
            raise BundleFormatError(f"{path}: {layout.BUNDLE_JSON} is not an airgap descriptor")
        return Inspection(
            path,
            "sha256:" + hashlib.sha256(raw).hexdigest(),
            doc,
            sigs,
            [p.name for p in b.parts] if len(b.parts) > 1 else [],
            len(b.members()),
        )


def content_digest(path: Path) -> str:
    """sha256 of bundle.json: the same for every rebuild from one lock."""
    with open_bundle(path) as b:
        raw, _ = b.bundle_json()
    return "sha256:" + hashlib.sha256(raw).hexdigest()
