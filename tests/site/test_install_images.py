"""`airgap install --docker --registry`: the bundle's images go into the real engine and the real
registry (scripts/services.sh) before the commit, and the receipt records them; an engine that
cannot be reached leaves the prefix as it was."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from packager.bundle import layout
from tests.site.install_support import (
    Bundles,
    built_bundles,
    current,
    descriptor_of,
    install_cli,
    log_lines,
    receipt,
)

if TYPE_CHECKING:
    import docker


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    return built_bundles(tmp_path_factory)


@pytest.mark.services
def test_images_go_into_docker_and_the_registry_with_their_digests(
    tmp_path: Path, bundles: Bundles, docker_client: docker.DockerClient, registry: str
) -> None:
    import docker.errors

    (image,) = descriptor_of(bundles.full1)["images"]
    had = True
    try:
        docker_client.images.get(image["config_digest"])
    except docker.errors.ImageNotFound:
        had = False
    prefix = tmp_path / "site"
    try:
        r = install_cli(bundles.full1, prefix, bundles.pub, "--no-probe", "--docker",
                        "--registry", registry, "--insecure", "--json")  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        doc = json.loads(r.stdout)
        into = {i["into"]: i for i in doc["images"]}
        assert into["docker"]["ref"] == image["ref"] and into["docker"]["status"] in (
            "loaded",
            "present",
        )
        assert docker_client.images.get(image["config_digest"]).id == image["config_digest"]
        pushed = into[registry]["manifest_digest"]  # the manifest blob of the bundle, unchanged
        assert pushed in {b["digest"] for b in descriptor_of(bundles.full1)["blobs"]}
        assert receipt(prefix, "tamper", "1.0.0")["images"] == doc["images"]
        # the same bundle again: nothing to install, the images step runs again and is logged
        again = json.loads(
            install_cli(
                bundles.full1, prefix, bundles.pub, "--no-probe", "--docker", "--json"
            ).stdout
        )
        assert again["action"] == "unchanged" and again["images"][0]["status"] == "present"
        assert [e["action"] for e in log_lines(prefix)] == ["install", "images"]
    finally:
        if not had:
            with contextlib.suppress(docker.errors.APIError):
                docker_client.images.remove(image["ref"], force=True)


def test_an_engine_that_cannot_be_reached_changes_nothing(
    tmp_path: Path, bundles: Bundles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    prefix = tmp_path / "site"
    r = install_cli(bundles.many1, prefix, bundles.pub, "--no-probe")
    assert r.returncode == 0  # no images, no engine needed
    r = install_cli(bundles.full1, prefix, bundles.pub, "--no-probe", "--docker")
    assert r.returncode == 2 and "cannot reach the Docker engine" in r.stderr, r.stderr
    assert (
        current(prefix, "tamper") is None
        and not (prefix / layout.SITE_RECEIPTS_DIR / "tamper").exists()
    )
    assert list((prefix / layout.SITE_STAGING_DIR).iterdir()) == []
