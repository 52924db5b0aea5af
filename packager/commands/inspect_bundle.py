"""`airgap inspect` and `airgap digest`: what a bundle says it holds (read, not verified).

(Named ``inspect_bundle`` so that no module of the package shadows the standard library's.)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.bundle.combined import open_target
from packager.bundle.delta import not_carried_file_bytes
from packager.bundle.descriptor import Descriptor, content_bytes
from packager.bundle.reader import Bundle
from packager.oci.registry import OciLocation, RegistryOptions

_SIGNATURE_FILE = re.compile(re.escape(layout.SIGNATURES_DIR) + r"/([0-9a-f]{64})\.sig")


@dataclass(frozen=True)
class Inspection:
    path: Path | str  # a path, or an oci:// address
    digest: str
    descriptor: Descriptor
    signatures: list[str]  # keyids with a signature file
    parts: list[str]
    members: int

    def by_role(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for b in self.descriptor.blobs:
            r = out.setdefault(b.role, {"blobs": 0, "bytes": 0})
            r["blobs"] += 1
            r["bytes"] += b.size
        return out

    def installed(self, role: str) -> list[dict[str, Any]]:
        """Every install path of the blobs of ``role``, sorted by path."""
        return sorted(
            (
                {"path": p, "size": b.size, "digest": b.digest, "mediaType": b.media_type}
                for b in self.descriptor.blobs_with_role(role)
                for p in b.paths
            ),
            key=lambda m: str(m["path"]),
        )

    def to_json(self) -> dict[str, Any]:
        d = self.descriptor
        return {
            "bundle": str(self.path),
            "digest": self.digest,
            "verified": False,
            "name": d.bundle.name,
            "version": d.bundle.version,
            "target": d.bundle.target,
            "created": d.bundle.created,
            "expires": d.bundle.expires,
            "platform": d.target.platform,
            "accelerator": d.target.accelerator.to_json(),
            "signed": bool(self.signatures),
            "signatures": self.signatures,
            "parts": self.parts,
            "size": sum(b.size for b in d.blobs),
            "roles": self.by_role(),
            "model": self.installed("model"),
            "images": [i.to_json() for i in d.images],
            "kernels": [{"name": k.name, "kind": k.kind, "path": k.path} for k in d.kernels],
            "wheels": [
                {k: m[k] for k in ("path", "size", "digest")} for m in self.installed("wheel")
            ],
            "files": [
                {k: m[k] for k in ("path", "size", "digest")} for m in self.installed("file")
            ],
            "delta": {
                "base": d.delta.base.to_json(),
                "not_carried": len(d.delta.not_carried),
                "not_carried_bytes": sum(b.size for b in d.blobs if not d.carried(b)),
                "not_carried_files": len(d.delta.not_carried_files),
                "not_carried_files_bytes": not_carried_file_bytes(d),
            }
            if d.delta is not None
            else None,
        }


def signature_keyids(b: Bundle) -> list[str]:
    """The keyids that have a signature file in the bundle (files named otherwise are not)."""
    return sorted(
        m.group(1)
        for name, member in b.members().items()
        if member.kind == "file" and (m := _SIGNATURE_FILE.fullmatch(name))
    )


def inspect_bundle(path: Path, target: str | None = None) -> Inspection:
    with open_target(path, target) as b:
        raw, doc = b.descriptor()
        return Inspection(
            path,
            "sha256:" + hashlib.sha256(raw).hexdigest(),
            doc,
            signature_keyids(b),
            [p.name for p in b.parts] if len(b.parts) > 1 else [],
            len(b.members()),
        )


def content_digest(path: Path, target: str | None = None) -> str:
    """sha256 of bundle.json (a delta's without its delta record): the same for every rebuild
    from one lock, and for a delta and the full bundle of one version."""
    with open_target(path, target) as b:
        raw = content_bytes(b.descriptor_bytes())
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def inspect_remote(loc: OciLocation, options: RegistryOptions) -> Inspection:
    """``inspect oci://...``: the descriptor and layout files of a published bundle (no blobs
    fetched; read, not verified)."""
    import tempfile

    from packager.bundle.pull import pull_bundle

    with tempfile.TemporaryDirectory(prefix="airgap-inspect-") as tmp:
        pulled = pull_bundle(loc, Path(tmp) / "bundle", None, options, blobs=False)
        info = inspect_bundle(pulled.folder)
    return Inspection(
        str(loc), info.digest, info.descriptor, info.signatures, [], len(info.descriptor.blobs)
    )
