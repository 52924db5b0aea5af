"""The site tests' image bundle: what it holds (the fixture that builds it is in conftest.py)."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packager.site.images import BundleImage
from tests.support import images as sup

if TYPE_CHECKING:
    import docker

RUN = uuid.uuid4().hex[:8]

MANIFEST = """\
apiVersion: airgap/v1
kind: Bundle
metadata: {{name: site, version: 1.0.0}}
model:
  name: sentence-transformers/all-MiniLM-L6-v2
  source: {{path: ./weights}}
  format: safetensors
  precision: fp32
  include: ["*.safetensors", "*.json", "vocab.txt"]
target:
  platform: linux/amd64
  accelerator: {{vendor: none}}
runtime:
  images:
    - {{ref: "{serving}", insecure: true}}
    - {{ref: "{tool}", from: docker, role: tool}}
    - {{ref: "{multi}", insecure: true, role: sidecar}}
    - {{ref: "{list}", insecure: true, role: init}}
smoke: {{image: serving, command: [cat, /marker], timeout: 30s, expect: {{stdout_contains: "{marker}"}}}}
"""


@dataclass(frozen=True)
class SiteBundle:
    folder: Path  # the layout folder
    tar: Path  # one .airgap.tar
    parts: Path  # the parts index of the same bundle
    refs: dict[str, str]  # serving | tool | multi | list -> reference
    markers: dict[str, str]  # serving | tool -> the content of /marker
    multi: dict[str, sup.MultiArch]  # multi | list -> the hand-made image
    images: dict[str, BundleImage]  # by key, as image_entries reads them from the folder

    @property
    def config_ids(self) -> list[str]:
        return [i.config_digest for i in self.images.values()]


def build_derived(
    client: docker.DockerClient, base: str, folder: Path, tag: str, marker: str
) -> None:
    folder.mkdir(parents=True)
    (folder / "marker").write_text(marker + "\n")
    (folder / "Dockerfile").write_text(f"FROM {base}\nCOPY marker /marker\n")
    client.images.build(path=str(folder), tag=tag, rm=True, forcerm=True, network_mode="none")


def remove_images(client: docker.DockerClient, ids: list[str]) -> None:
    import docker.errors

    for image_id in ids:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(image_id, force=True)
