"""The real services the suite relies on: Docker engine, registry, skopeo (scripts/services.sh)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import services

if TYPE_CHECKING:
    import docker


@pytest.mark.services
def test_docker_engine_answers_ping(docker_client: docker.DockerClient) -> None:
    assert docker_client.ping() is True
    info = docker_client.info()
    assert info["Driver"] == "vfs"


@pytest.mark.services
def test_busybox_runs_without_network(
    docker_client: docker.DockerClient, busybox_image: str
) -> None:
    output = docker_client.containers.run(
        busybox_image,
        ["sh", "-c", "echo airgap-$((6 * 7)); ls /sys/class/net"],
        network_mode="none",
        remove=True,
    )
    # The shell ran inside the container, which has a loopback interface and nothing else.
    assert output.decode().split() == ["airgap-42", "lo"]


def _push(client: docker.DockerClient, repository: str, tag: str) -> str:
    """Push repository:tag; return the manifest digest the engine reports."""
    digest = ""
    for event in client.images.push(repository, tag=tag, stream=True, decode=True):
        assert "error" not in event, event
        aux = event.get("aux") or {}
        digest = aux.get("Digest", digest)
    assert digest.startswith("sha256:"), "push reported no digest"
    return digest


def _get_manifest(registry: str, name: str, reference: str) -> tuple[str, str, bytes]:
    """GET a manifest; return (Docker-Content-Digest, Content-Type, body)."""
    request = urllib.request.Request(
        f"http://{registry}/v2/{name}/manifests/{reference}",
        headers={"Accept": ", ".join(services.MANIFEST_MEDIA_TYPES)},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return (
            response.headers["Docker-Content-Digest"],
            response.headers["Content-Type"],
            response.read(),
        )


@pytest.mark.services
def test_registry_push_matches_skopeo_digest(
    docker_client: docker.DockerClient, busybox_image: str, registry: str
) -> None:
    skopeo = services.require(lambda: services.tool("skopeo"))
    repository = f"{registry}/airgap-test/busybox"
    assert docker_client.images.get(busybox_image).tag(repository, tag="1")

    pushed = _push(docker_client, repository, "1")
    header_digest, content_type, body = _get_manifest(registry, "airgap-test/busybox", "1")
    assert content_type in services.MANIFEST_MEDIA_TYPES
    assert header_digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert header_digest == pushed

    result = subprocess.run(
        [skopeo, "inspect", "--tls-verify=false", f"docker://{repository}:1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    inspected: dict[str, Any] = json.loads(result.stdout)
    assert inspected["Digest"] == header_digest


def test_shared_dir_is_a_folder(shared_dir: Path) -> None:
    assert shared_dir.is_dir()
    assert any(shared_dir.iterdir())


@pytest.mark.parametrize(
    ("value", "outcome"), [("1", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_missing_service_skips_or_fails(
    monkeypatch: pytest.MonkeyPatch, value: str, outcome: type[BaseException]
) -> None:
    def probe() -> str:
        raise services.ServiceUnavailable("no such service")

    monkeypatch.setenv(services.REQUIRE_ENV, value)
    with pytest.raises(outcome, match="no such service"):
        services.require(probe)
    with pytest.raises(outcome, match="AIRGAP_REGISTRY is not set"):
        monkeypatch.delenv("AIRGAP_REGISTRY", raising=False)
        services.require_services("registry")
