"""`airgap serve` against real clients: skopeo, docker, podman and ctr pull from it.

The bundle is the site tests' (tests/site/conftest.py: four images of every kind a bundle keeps,
built by the real `airgap build`), signed here with the golden test key and served by the real
CLI in a subprocess. Each client's own record of what it pulled is the judge of the digests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from packager.commands.sign import sign_bundle
from packager.oci.reference import parse_reference
from packager.util.schemas import validator
from tests.site.bundles import RUN, SiteBundle
from tests.support import golden, oci_client
from tests.support.services import ServiceUnavailable, require, tool

if TYPE_CHECKING:
    import docker

pytestmark = [pytest.mark.services, pytest.mark.slow]


@dataclass
class Server:
    proc: subprocess.Popen[str]
    address: str
    started: dict[str, Any]
    log: Path

    def url(self, path: str) -> str:
        return f"http://{self.address}{path}"

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()


def start_server(bundle: Path, pub: Path, log: Path, *extra: str) -> Server:
    err = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "packager", "serve", str(bundle), "--key", str(pub),
         "--listen", "127.0.0.1:0", "--json", *extra],
        stdout=subprocess.PIPE, stderr=err, text=True,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )  # fmt: skip
    err.close()
    text = ""
    assert proc.stdout is not None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        text += line
        if line.startswith("}"):
            doc = json.loads(text)
            return Server(proc, doc["listen"], doc, log)
    proc.kill()
    raise AssertionError(f"airgap serve did not start: {text}\n{log.read_text()}")


def stop(server: Server) -> int:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGINT)
        try:
            return server.proc.wait(30)
        except subprocess.TimeoutExpired:
            server.proc.kill()
    return server.proc.wait()


@pytest.fixture(scope="module")
def signed(site_bundle: SiteBundle, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The site bundle's tar, copied and signed with the golden test key; and that key."""
    root = tmp_path_factory.mktemp("serve-signed")
    tar = root / site_bundle.tar.name
    shutil.copyfile(site_bundle.tar, tar)
    sign_bundle(tar, golden.signing_key())
    return tar, golden.write_public_key(root)


@pytest.fixture(scope="module")
def server(signed: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(*signed, tmp_path_factory.mktemp("serve-log") / "stderr.txt")
    yield s
    assert stop(s) == 0, s.log.read_text()
    assert "stopped:" in s.log.read_text()


def served_name(site_bundle: SiteBundle, key: str) -> str:
    ref = parse_reference(site_bundle.refs[key])
    return f"{ref.repository}:{ref.tag}"


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ============================================================================ the catalog


def test_it_announces_every_image_and_the_bundle(server: Server, site_bundle: SiteBundle) -> None:
    doc = server.started
    validator("serve").validate(doc)
    tags = {(r["name"], t["tag"]): t["digest"] for r in doc["repositories"] for t in r["tags"]}
    for key, image in site_bundle.images.items():
        repo, tag = served_name(site_bundle, key).rsplit(":", 1)
        assert tags[(repo, tag)] == image.top.digest
    assert ("site", "1.0.0") in tags
    assert doc["bundles"][0]["signers"][0]["name"] == "golden.pub.pem"
    assert doc["bytes_verified"] >= doc["bytes"]  # every blob was hashed before it was served
    with urllib.request.urlopen(server.url("/v2/_catalog")) as r:
        assert json.load(r)["repositories"] == sorted(r["name"] for r in doc["repositories"])


# ============================================================================ skopeo


def test_skopeo_copies_every_image_with_its_digests(
    server: Server, site_bundle: SiteBundle, tmp_path: Path
) -> None:
    skopeo = require(lambda: tool("skopeo"))
    for key, image in site_bundle.images.items():
        src = f"docker://{server.address}/{served_name(site_bundle, key)}"
        raw = subprocess.run(
            [skopeo, "inspect", "--raw", "--tls-verify=false", src],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        assert sha256_of(raw) == image.manifest_digest
        dest = tmp_path / key  # dir: keeps the manifest and every blob byte for byte
        r = subprocess.run(
            [skopeo, "copy", "--src-tls-verify=false", src, f"dir:{dest}"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert sha256_of((dest / "manifest.json").read_bytes()) == image.manifest_digest
        for blob in (*image.layers, image.manifest.config):
            assert sha256_of((dest / blob.digest[7:]).read_bytes()) == blob.digest


def test_the_bundle_index_reaches_every_blob_of_the_bundle(
    server: Server, signed: tuple[Path, Path]
) -> None:
    """site:1.0.0 is the bundle's index.json: pulled whole, it is every blob bundle.json lists
    (skopeo 1.9 copies no index that lists an index, as this one does for the manifest list)."""
    from packager.bundle.reader import open_bundle

    pulled = oci_client.pull(f"http://{server.address}", "site", "1.0.0")
    with open_bundle(signed[0]) as b:
        _, doc = b.descriptor()
    listed = {x.digest for x in doc.blobs}
    assert set(pulled.manifests) | set(pulled.blobs) == listed | {
        oci_client.digest_of(next(iter(pulled.manifests.values())))
    }


# ============================================================================ docker, podman, ctr


def test_docker_pulls_and_runs_the_image(
    server: Server, site_bundle: SiteBundle, docker_client: docker.DockerClient, absent: None
) -> None:
    name = f"{server.address}/{served_name(site_bundle, 'serving')}"
    image = site_bundle.images["serving"]
    try:
        pulled = docker_client.images.pull(name)
        assert f"{name.rsplit(':', 1)[0]}@{image.manifest_digest}" in pulled.attrs["RepoDigests"]
        assert pulled.id == image.config_digest
        out = docker_client.containers.run(
            name, ["cat", "/marker"], remove=True, network_mode="none"
        )
        assert out.decode().strip() == site_bundle.markers["serving"]
    finally:
        with contextlib.suppress(Exception):
            docker_client.images.remove(name, force=True)


def test_podman_pulls_with_the_digests(
    server: Server, site_bundle: SiteBundle, tmp_path: Path
) -> None:
    podman = require(lambda: tool("podman"))
    conf = tmp_path / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "vfs"\nrunroot = "{tmp_path}/run"\ngraphroot = "{tmp_path}/graph"\n'
    )
    env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf)}
    try:
        for key in ("serving", "list"):
            name = f"{server.address}/{served_name(site_bundle, key)}"
            r = subprocess.run(
                [podman, "pull", "--tls-verify=false", name],
                capture_output=True,
                text=True,
                env=env,
            )
            assert r.returncode == 0, r.stderr
            got = subprocess.run(
                [podman, "image", "inspect", "--format", "{{.Digest}} {{.Id}}", name],
                capture_output=True, text=True, env=env, check=True,
            ).stdout.split()  # fmt: skip
            image = site_bundle.images[key]
            assert got == [image.manifest_digest, image.config_digest[7:]]
    finally:
        # not `podman system reset`: it would remove the host's podman networks too
        subprocess.run([podman, "rmi", "--all", "--force"], capture_output=True, env=env)


def containerd_socket() -> str:
    """containerd's socket: $AIRGAP_CONTAINERD_ADDRESS (a containerd of scripts/services.sh's
    own), else the one the private Docker engine runs (its exec root beside the docker socket,
    as scripts/services.sh lays it out)."""
    given = os.environ.get("AIRGAP_CONTAINERD_ADDRESS", "")
    if given:
        return given.removeprefix("unix://")
    host = os.environ.get("DOCKER_HOST", "")
    sock = Path(host.removeprefix("unix://")).parent / "exec" / "containerd" / "containerd.sock"
    if not host or not sock.is_socket():
        raise ServiceUnavailable("no containerd socket (AIRGAP_CONTAINERD_ADDRESS, or Docker's)")
    return str(sock)


def test_ctr_pulls_with_plain_http(server: Server, site_bundle: SiteBundle) -> None:
    ctr = require(lambda: tool("ctr"))
    sock = require(containerd_socket)
    ns = f"airgap-serve-{RUN}"
    base = [ctr, "--address", sock, "--namespace", ns]
    names = [f"{server.address}/{served_name(site_bundle, k)}" for k in ("serving", "multi")]
    try:
        for name in names:
            r = subprocess.run(
                [*base, "images", "pull", "--plain-http", "--snapshotter", "native", name],
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert r.returncode == 0, r.stdout + r.stderr
        listed = subprocess.run(
            [*base, "images", "ls"], capture_output=True, text=True, check=True
        ).stdout
        for key, name in zip(("serving", "multi"), names):
            row = next(line.split() for line in listed.splitlines() if line.startswith(name + " "))
            assert site_bundle.images[key].top.digest in row
    finally:
        subprocess.run([*base, "images", "rm", *names], capture_output=True)
        for snap in subprocess.run(
            [*base, "snapshots", "--snapshotter", "native", "ls"], capture_output=True, text=True
        ).stdout.splitlines()[1:]:
            subprocess.run(
                [*base, "snapshots", "--snapshotter", "native", "rm", snap.split()[0]],
                capture_output=True,
            )
        subprocess.run([*base, "content", "prune", "references"], capture_output=True)
        subprocess.run([ctr, "--address", sock, "namespaces", "rm", ns], capture_output=True)


# ============================================================================ HTTP details


def test_parallel_range_requests_reassemble_a_layer(
    server: Server, site_bundle: SiteBundle
) -> None:
    image = site_bundle.images["serving"]
    layer = max(image.layers, key=lambda b: b.size)
    repo = served_name(site_bundle, "serving").rsplit(":", 1)[0]
    url = server.url(f"/v2/{repo}/blobs/{layer.digest}")
    step = -(-layer.size // 16)

    def fetch(i: int) -> bytes:
        first, last = i * step, min(layer.size, (i + 1) * step) - 1
        req = urllib.request.Request(url, headers={"Range": f"bytes={first}-{last}"})
        with urllib.request.urlopen(req) as r:
            assert r.status == 206
            assert r.headers["Content-Range"] == f"bytes {first}-{last}/{layer.size}"
            return bytes(r.read())

    with ThreadPoolExecutor(16) as pool:
        chunks = list(pool.map(fetch, range(16)))
    assert sha256_of(b"".join(chunks)) == layer.digest
    deadline = time.monotonic() + 10  # each line is written just after its response
    while time.monotonic() < deadline:
        lines = server.log_lines()
        if sum(1 for line in lines if f"GET /v2/{repo}/blobs/{layer.digest} 206" in line) >= 16:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("fewer than 16 request lines were logged")
