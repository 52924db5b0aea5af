"""One real bundle with four images, built once for the site tests by the real `airgap build`.

- ``serving``: an image built FROM the busybox fixture with a marker file, pushed by the engine to
  the test registry (a docker schema 2 manifest with gzip layers) and removed from the engine;
- ``tool``: another such image taken from the engine (``from: docker``: an OCI manifest synthesized
  at build time, uncompressed layers), removed from the engine once the bundle is built;
- ``multi``: a hand-made two-platform OCI index (amd64 and arm64/v8) on the registry;
- ``list``: the same as a docker manifest list (listed in the bundle through a generated wrapper).

The bundle is written as parts (``--split``), as the tar those parts make up, and as a layout
folder. The engine never holds the four images between tests that need it (``absent``).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from packager.bundle.reader import open_bundle
from packager.site.images import image_entries
from tests.site.bundles import MANIFEST, RUN, SiteBundle, build_derived, remove_images
from tests.support import images as sup
from tests.support.cli import airgap
from tests.support.fs import link_tree

if TYPE_CHECKING:
    import docker


@pytest.fixture(scope="session")
def site_bundle(
    docker_client: docker.DockerClient,
    registry: str,
    busybox_image: str,
    minilm_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SiteBundle]:
    root = tmp_path_factory.mktemp("site-bundle")
    refs = {
        "serving": f"{registry}/airgap-test/site-{RUN}:v1",
        "tool": f"airgap-test/site-local-{RUN}:v1",
        "multi": f"{registry}/airgap-test/site-multi-{RUN}:v1",
        "list": f"{registry}/airgap-test/site-list-{RUN}:v1",
    }
    markers = {"serving": f"hello-airgap-{RUN}", "tool": f"tool-{RUN}"}
    build_derived(
        docker_client, busybox_image, root / "ctx-serving", refs["serving"], markers["serving"]
    )
    build_derived(docker_client, busybox_image, root / "ctx-tool", refs["tool"], markers["tool"])
    events = docker_client.images.push(refs["serving"], stream=True, decode=True)
    assert not [e for e in events if "error" in e]
    docker_client.images.remove(refs["serving"])  # the engine has it only from the bundle
    multi = {
        "multi": sup.multi_arch(marker=f"site multi {RUN}"),
        "list": sup.multi_arch(docker=True, marker=f"site list {RUN}"),
    }
    for key, image in multi.items():
        repo, tag = refs[key].split("/", 1)[1].rsplit(":", 1)
        sup.push_multi_arch(registry, repo, tag, image)
    link_tree(minilm_dir, root / "weights")
    (root / "m.yaml").write_text(MANIFEST.format(marker=markers["serving"], **refs))
    ids: list[str] = []
    try:
        r = airgap(
            "build",
            str(root / "m.yaml"),
            "--unsigned",
            "--split",
            "40M",
            "--out",
            str(root / "parts"),
        )
        assert r.returncode == 0, r.stderr
        r = airgap(
            "build",
            str(root / "m.yaml"),
            "--unsigned",
            "--layout-only",
            "--out",
            str(root / "layout"),
        )
        assert r.returncode == 0, r.stderr
        docker_client.images.remove(refs["tool"])
        parts = sorted((root / "parts").glob("site-1.0.0.airgap.tar.[0-9][0-9][0-9]"))
        assert len(parts) > 1
        tar = root / "site-1.0.0.airgap.tar"
        with tar.open("wb") as out:  # the parts are slices of the one tar
            for p in parts:
                with p.open("rb") as fh:
                    shutil.copyfileobj(fh, out)
        folder = root / "layout" / "site-1.0.0"
        with open_bundle(folder) as b:
            by_ref = {i.ref: i for i in image_entries(b)}
        images = {k: by_ref[ref] for k, ref in refs.items()}
        ids = [i.config_digest for i in images.values()]
        remove_images(docker_client, ids)
        yield SiteBundle(
            folder=folder,
            tar=tar,
            parts=root / "parts" / "site-1.0.0.airgap.parts.json",
            refs=refs,
            markers=markers,
            multi=multi,
            images=images,
        )
    finally:
        remove_images(docker_client, ids)
        for ref in (refs["serving"], refs["tool"]):
            with contextlib.suppress(Exception):
                docker_client.images.remove(ref, force=True)


@pytest.fixture
def absent(docker_client: docker.DockerClient, site_bundle: SiteBundle) -> Iterator[None]:
    """The engine holds none of the bundle's images, before and after the test."""
    remove_images(docker_client, site_bundle.config_ids)
    yield
    remove_images(docker_client, site_bundle.config_ids)
