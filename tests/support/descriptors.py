"""Typed descriptors for tests of the rules that take one (install plans, image listing, checks).

``make_descriptor(...)`` builds a :class:`~packager.bundle.descriptor.Descriptor` directly, so a
test can hand a pure rule inputs the schema would refuse (``../x`` install paths) and see that the
rule refuses them too; ``descriptor_json(...)`` is the same as the JSON a bundle would carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from packager.bundle.descriptor import (
    AcceleratorSpec,
    BlobRecord,
    BundleMeta,
    CoveredFile,
    Descriptor,
    ImageRecord,
    InstallSize,
    StackSpec,
    TargetSpec,
)
from packager.resolve.lockfile import Lock, LockedFile, LockedModel, LockedTarget

ZERO = "sha256:" + "0" * 64


def blob(n: int, *paths: str, size: int = 1, role: str = "file") -> BlobRecord:
    """Blob number ``n`` (its digest is ``n`` in hex), installed at ``paths``."""
    return BlobRecord(f"sha256:{n:064x}", size, "application/octet-stream", role, tuple(paths))


def make_descriptor(
    *,
    name: str = "b",
    version: str = "1.0.0",
    target: str | None = None,
    platform: str = "linux/amd64",
    blobs: Sequence[BlobRecord] = (),
    files: Sequence[CoveredFile] = (),
    images: Sequence[ImageRecord] = (),
    created: str = "2024-01-01T00:00:00Z",
    expires: str | None = None,
) -> Descriptor:
    lock = Lock(
        manifest_name=name,
        manifest_version=version,
        manifest_digest=ZERO,
        tool="airgap test",
        created=created,
        model=LockedModel(
            "test/model",
            "safetensors",
            {"path": "weights"},
            (LockedFile("config.json", "0" * 64, 2, role="config"),),
        ),
        targets=(LockedTarget(target, platform),),
    )
    return Descriptor(
        bundle=BundleMeta(name, version, target, None, created, expires),
        tool="airgap test",
        manifest={"apiVersion": "airgap/v1", "kind": "Bundle"},
        manifest_digest=ZERO,
        lock=lock,
        lock_digest=ZERO,
        target=TargetSpec(
            target, platform, AcceleratorSpec("none", (), 1, None), StackSpec(), None
        ),
        install=InstallSize(sum(b.size for b in blobs if b.paths), 0),
        images=tuple(images),
        kernels=(),
        smoke=None,
        blobs=tuple(blobs),
        files=tuple(files),
    )


def descriptor_json(**kw: Any) -> dict[str, Any]:
    return make_descriptor(**kw).to_json()
