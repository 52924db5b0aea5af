"""A site registry as the distribution engine of a fleet: publish once, install on every node.

Real services: the registry and the TLS registry with logins of scripts/services.sh, skopeo, and
the real CLI in separate processes. The bundle is a complete small project (model, image,
kernel, wheel, file, probe), signed with an ECDSA key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from packager.bundle.reader import open_bundle
from packager.site.images import image_entries
from packager.site.integrity import audit_site
from packager.util.schemas import validator
from tests.support import services
from tests.support.cli import airgap
from tests.support.fleet import CountingProxy, finish, proxies, start_node
from tests.support.projects import make_key, project, run_build

NODES = 8


@dataclass(frozen=True)
class Published:
    tar: Path
    pub: Path
    digest: str  # sha256 of bundle.json
    blob_bytes: int  # every blob bundle.json lists
    manifest_bytes: int  # of those, the manifests (fetched as manifests)
    image_digest: str  # the image's manifest digest
    largest: str  # the digest of the largest blob (the weights)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Published:
    root = tmp_path_factory.mktemp("fleet")
    manifest = project(root / "p", name="fleet")
    priv, pub, _ = make_key(root, "fleet")
    run_build(manifest, root / "out", "--key", str(priv))
    (tar,) = (root / "out").glob("*.airgap.tar")
    with open_bundle(tar) as b:
        raw, doc = b.descriptor()
        (image,) = image_entries(b)
    manifests = {"application/vnd.oci.image.manifest.v1+json",
                 "application/vnd.docker.distribution.manifest.v2+json",
                 "application/vnd.oci.image.index.v1+json",
                 "application/vnd.docker.distribution.manifest.list.v2+json"}  # fmt: skip
    return Published(
        tar, pub, "sha256:" + hashlib.sha256(raw).hexdigest(),
        sum(x.size for x in doc.blobs),
        sum(x.size for x in doc.blobs if x.media_type in manifests),
        image.manifest_digest,
        max(doc.blobs, key=lambda x: x.size).digest,
    )  # fmt: skip


def _repo() -> str:
    return f"fleet/run-{uuid.uuid4().hex[:8]}"


def _published(bundle: Published) -> tuple[str, str]:
    """The bundle published to the registry of scripts/services.sh: (registry, repository)."""
    registry = services.require(services.registry_address)
    repo = _repo()
    r = airgap("publish", str(bundle.tar), f"oci://{registry}/{repo}:1.0.0", "--key",
               str(bundle.pub))  # fmt: skip
    assert r.returncode == 0, r.stderr
    return registry, repo


# ----------------------------------------------------------------------------- TLS and logins


def test_publish_and_install_through_tls_with_logins(bundle: Published, tmp_path: Path) -> None:
    tls = services.require(services.tls_registry)
    url = f"oci://{tls.address}/{_repo()}:1.0.0"
    ca = ("--ca-cert", str(tls.ca))
    env_login = {"AIRGAP_REGISTRY_USER": tls.user, "AIRGAP_REGISTRY_PASSWORD": tls.password,
                 "DOCKER_CONFIG": str(tmp_path / "none")}  # fmt: skip
    r = airgap("publish", str(bundle.tar), url, "--key", str(bundle.pub), *ca, "--json",
               env=env_login)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert tls.password not in r.stdout + r.stderr
    pub = json.loads(r.stdout)
    validator("publish").validate(pub)
    assert pub["digest"] == bundle.digest and pub["blobs_uploaded"] > 0

    # a node logged in with `docker login` (the Docker config file), no flags but --ca-cert
    cfg = tmp_path / "docker"
    cfg.mkdir()
    auth = base64.b64encode(f"{tls.user}:{tls.password}".encode()).decode()
    (cfg / "config.json").write_text(json.dumps({"auths": {tls.address: {"auth": auth}}}))
    node_env = {"DOCKER_CONFIG": str(cfg)}
    prefix = tmp_path / "node"

    # a wrong key: refused on the signatures, before anything else is fetched or written
    _, other, _ = make_key(tmp_path, "other")
    r = airgap("install", url, "--prefix", str(prefix), "--key", str(other), *ca, "--no-probe",
               env=node_env)  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "nothing else was fetched" in r.stderr
    assert not (prefix / "blobs").exists() and not (prefix / "bundles").exists()

    # no CA: the --ca-cert hint; a wrong password: the registry named
    r = airgap("install", url, "--prefix", str(prefix), "--key", str(bundle.pub), env=node_env)
    assert r.returncode == 2 and "--ca-cert" in r.stderr, r.stderr
    r = airgap("install", url, "--prefix", str(prefix), "--key", str(bundle.pub), *ca,
               env={**env_login, "AIRGAP_REGISTRY_PASSWORD": "wrong"})  # fmt: skip
    assert r.returncode == 2 and tls.address in r.stderr and "wrong user or password" in r.stderr

    r = airgap("install", url, "--prefix", str(prefix), "--key", str(bundle.pub), *ca,
               "--no-probe", "--json", env=node_env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["action"] == "installed" and doc["digest"] == bundle.digest
    assert doc["pulled"]["bytes_fetched"] == bundle.blob_bytes
    assert not any((prefix / ".pull").iterdir())
    assert airgap("audit", "--site", str(prefix)).returncode == 0

    r = airgap("verify", url, "--key", str(bundle.pub), *ca, "--json", env=node_env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True
    r = airgap("inspect", url, *ca, "--json", env=node_env)
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout)
    assert (seen["bundle"], seen["digest"], seen["verified"]) == (url, bundle.digest, False)


# ----------------------------------------------------------------------------- the fleet


def _layout(prefix: Path) -> dict[str, str]:
    """Every installed file of every version -> its sha256, from the receipts."""
    out = {}
    for receipt in sorted((prefix / "receipts").rglob("*.json")):
        for f in json.loads(receipt.read_text())["files"]:
            out[f"{receipt.parent.name}/{receipt.stem}/{f['path']}"] = f["sha256"]
    return out


@pytest.mark.slow
def test_one_publish_then_eight_nodes_at_once(bundle: Published, tmp_path: Path) -> None:
    registry = services.require(services.registry_address)
    skopeo = services.require(lambda: services.tool("skopeo"))
    repo = _repo()
    r = airgap("publish", str(bundle.tar), f"oci://{registry}/{repo}:1.0.0", "--key",
               str(bundle.pub), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    # the image is there under its own digest, for any OCI client
    r2 = subprocess.run(
        [skopeo, "inspect", "--raw", "--tls-verify=false",
         f"docker://{registry}/{repo}@{bundle.image_digest}"],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert r2.returncode == 0, r2.stderr
    assert "sha256:" + hashlib.sha256(r2.stdout).hexdigest() == bundle.image_digest

    with proxies(registry, NODES) as nodes:
        t0 = time.monotonic()
        running = [
            start_node(f"oci://{p.address}/{repo}:1.0.0", tmp_path / f"node{i}", bundle.pub)
            for i, p in enumerate(nodes)
        ]
        docs = [finish(n) for n in running]
        fleet_s = time.monotonic() - t0
        layouts = [_layout(tmp_path / f"node{i}") for i in range(NODES)]
        for i, (doc, p) in enumerate(zip(docs, nodes)):
            assert doc["action"] == "installed" and doc["digest"] == bundle.digest
            pulled = doc["pulled"]
            # one copy of what the node lacked (everything), nothing twice
            assert pulled["bytes_fetched"] == bundle.blob_bytes
            assert p.served.blob_bytes + p.served.manifest_bytes - pulled["meta_bytes"] <= (
                bundle.blob_bytes
            ), (i, p.served)
            assert p.served.blob_bytes >= bundle.blob_bytes - bundle.manifest_bytes
            assert layouts[i] == layouts[0]
            assert audit_site(tmp_path / f"node{i}").ok
        print(f"\nfleet: {NODES} nodes in {fleet_s:.1f} s, {bundle.blob_bytes} blob bytes each")

        # a second install of the same version fetches no blob: the index, the files manifest,
        # the signed descriptor and its signatures (what says that it is the same version)
        p = nodes[0]
        p.reset()
        doc = finish(start_node(f"oci://{p.address}/{repo}:1.0.0", tmp_path / "node0", bundle.pub))
        assert doc["action"] == "unchanged"
        pulled = doc["pulled"]
        assert (pulled["blobs_fetched"], pulled["bytes_fetched"]) == (0, 0)
        assert pulled["files_fetched"] <= 1  # oci-layout (30 bytes)
        assert p.served.blob_bytes + p.served.manifest_bytes == pulled["meta_bytes"] < 64 * 1024
        print(f"second install: {pulled['meta_bytes']} bytes of index, descriptor and signatures")


@pytest.mark.slow
def test_a_node_killed_mid_fetch_completes_on_the_next_run(
    bundle: Published, tmp_path: Path
) -> None:
    registry, repo = _published(bundle)
    slow = CountingProxy(registry, throttle=0.05)  # > 1 MiB bodies: ~1.3 MB/s
    prefix = tmp_path / "node"
    try:
        url = f"oci://{slow.address}/{repo}:1.0.0"
        node = start_node(url, prefix, bundle.pub)
        deadline = time.monotonic() + 60

        def whole_blobs() -> int:  # fetched, checked and renamed into the pull folder
            return sum(
                1 for b in prefix.glob(".pull/*/blobs/sha256/*") if not b.name.startswith(".")
            )

        while not (whole_blobs() >= 3 and slow.served.in_flight):
            assert node.poll() is None and time.monotonic() < deadline, "no fetch to interrupt"
            time.sleep(0.02)
        node.send_signal(signal.SIGKILL)
        node.wait(timeout=30)
        slow.server.throttle = 0.0
        first = slow.served.blob_bytes
        assert 0 < first < bundle.blob_bytes
        assert not (prefix / "bundles").exists()
        slow.reset()
        doc = finish(start_node(url, prefix, bundle.pub))
    finally:
        slow.close()
    assert doc["action"] == "installed" and doc["digest"] == bundle.digest
    assert doc["pulled"]["blobs_kept"] >= 3
    assert doc["pulled"]["bytes_fetched"] < bundle.blob_bytes
    assert audit_site(prefix).ok
    assert not any((prefix / ".pull").iterdir())


def test_publish_refuses_a_bundle_that_does_not_verify(bundle: Published, tmp_path: Path) -> None:
    registry = services.require(services.registry_address)
    _, other, _ = make_key(tmp_path, "other")
    url = f"oci://{registry}/{_repo()}:1.0.0"
    r = airgap("publish", str(bundle.tar), url, "--key", str(other))
    assert r.returncode == 1 and "nothing was published" in r.stderr
    r = airgap("inspect", url)
    assert r.returncode == 2 and "not there" in r.stderr


def test_a_blob_damaged_on_the_registry_is_never_installed(
    bundle: Published, tmp_path: Path
) -> None:
    registry, repo = _published(bundle)
    prefix = tmp_path / "node"
    bad = CountingProxy(registry, corrupt=bundle.largest)
    try:
        r = airgap("install", f"oci://{bad.address}/{repo}:1.0.0", "--prefix", str(prefix),
                   "--key", str(bundle.pub), "--no-probe")  # fmt: skip
    finally:
        bad.close()
    assert r.returncode == 1, r.stderr
    assert bundle.largest in r.stderr and "publish the bundle again" in r.stderr
    assert not (prefix / "bundles").exists() and not (prefix / "receipts").exists()
    assert not list(prefix.glob(".pull/*/blobs/sha256/.part-*"))
    # the registry itself is intact: the next run completes
    with proxies(registry, 1) as (good,):
        doc = finish(start_node(f"oci://{good.address}/{repo}:1.0.0", prefix, bundle.pub))
    assert doc["action"] == "installed" and audit_site(prefix).ok
