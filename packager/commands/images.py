"""``airgap images BUNDLE``: the bundle's container images with platform, size and digests.

Read, not verified (like ``inspect``); loading and pushing are ``airgap install --docker`` and
``--registry``, which verify first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.bundle.combined import open_target
from packager.site.images import BundleImage, image_entries


@dataclass(frozen=True)
class ImagesReport:
    bundle: Path
    images: list[BundleImage]

    @property
    def size(self) -> int:
        return sum(i.size for i in self.images)

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "images": [i.to_json() for i in self.images],
            "size": self.size,
        }


def list_images(bundle: Path, target: str | None = None) -> ImagesReport:
    with open_target(bundle, target) as b:
        return ImagesReport(bundle, image_entries(b))
