"""`airgap install --containerd` and `--podman` against the real daemons: scripts/services.sh's
containerd (its own socket and state) and a private Podman store (vfs, under a temp folder).

One small runnable bundle (tests/support/runtimes.py: busybox FROM scratch with a marker) serves
every test: the image must come out with its manifest digest, unpacked, and run."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import subprocess
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from packager.bundle.reader import open_bundle
from packager.bundle.store import BlobMismatch
from packager.site.images.containerd import (
    ContainerdTarget,
    archive_blobs,
    archive_index,
    archive_size,
    chain_id,
    load_into_containerd,
    oci_archive,
)
from packager.site.images.docker import EngineError
from packager.site.images.listing import Blob
from packager.site.images.loopback import LoopbackRegistry
from packager.site.images.podman import check_podman, load_into_podman
from tests.support.cli import airgap
from tests.support.runtimes import RuntimeBundle, build_runtime_bundle, containerd_address, ctr
from tests.support.serving import podman_env

NAMESPACE = "airgap-test"


@pytest.fixture(scope="module")
def rb(tmp_path_factory: pytest.TempPathFactory) -> RuntimeBundle:
    return build_runtime_bundle(tmp_path_factory.mktemp("runtimes"))


@pytest.fixture
def address(rb: RuntimeBundle) -> Iterator[str]:
    """containerd's socket; the test namespace holds none of the bundle's image before or after."""
    address = containerd_address()
    _ctr_forget(address, rb)
    yield address
    _ctr_forget(address, rb)


def _ctr_forget(address: str, rb: RuntimeBundle) -> None:
    subprocess.run(
        ["ctr", "--address", address, "--namespace", NAMESPACE, "images", "rm", "--sync",
         _name(rb)], capture_output=True, timeout=60,
    )  # fmt: skip


def _name(rb: RuntimeBundle) -> str:
    return rb.ref  # airgap.local/...: already the normalized name


def _install(rb: RuntimeBundle, prefix: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return airgap(
        "install", str(rb.tar), "--prefix", str(prefix), "--key", str(rb.pub), "--no-probe",
        *args, env=env, timeout=300,
    )  # fmt: skip


def _corrupt_copy(rb: RuntimeBundle, tmp_path: Path, at: int) -> tuple[Path, Blob]:
    """A copy of the layout folder whose layer has one byte flipped (same size)."""
    folder = tmp_path / "bundle"
    subprocess.run(["cp", "-a", str(rb.folder), str(folder)], check=True)
    layer = rb.image.layers[0]
    path = folder / "blobs" / "sha256" / layer.digest.split(":", 1)[1]
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    return folder, layer


def _containerd_args(address: str) -> list[str]:
    return ["--containerd", "--namespace", NAMESPACE, "--address", address,
            "--snapshotter", "native"]  # fmt: skip


def test_containerd_gets_the_image_with_its_digest_unpacked_and_it_runs(
    tmp_path: Path, rb: RuntimeBundle, address: str
) -> None:
    prefix = tmp_path / "site"
    r = _install(rb, prefix, *_containerd_args(address), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    (image,) = json.loads(r.stdout)["images"]
    assert image["into"] == "containerd" and image["status"] == "loaded"
    assert image["name"] == _name(rb) and image["manifest_digest"] == rb.image.manifest_digest
    assert (image["namespace"], image["snapshotter"]) == (NAMESPACE, "native")
    listed = ctr(address, NAMESPACE, "images", "ls").splitlines()
    assert any(ln.split()[:1] == [_name(rb)] and rb.image.manifest_digest in ln for ln in listed)
    out = ctr(address, NAMESPACE, "run", "--rm", "--snapshotter", "native", _name(rb),
              f"airgap-test-{os.getpid()}")  # fmt: skip
    assert out.strip() == rb.marker  # CMD cat /marker, from the unpacked snapshot
    # the receipt, list and audit --site say where the image went
    receipt = json.loads((prefix / "receipts" / "runtimes" / "1.0.0.json").read_text())
    assert [(i["into"], i["ref"]) for i in receipt["images"]] == [("containerd", rb.ref)]
    listing = json.loads(airgap("list", "--prefix", str(prefix), "--json").stdout)
    (place,) = listing["bundles"][0]["versions"][0]["images"]
    assert place["into"] == "containerd" and place["digest"] == rb.image.manifest_digest
    text = airgap("audit", "--site", str(prefix)).stdout
    assert f"{rb.ref} -> containerd (namespace {NAMESPACE})" in text
    # again: containerd has it (same name, digest, snapshot): nothing is streamed
    again = _install(rb, prefix, *_containerd_args(address), "--json")
    assert again.returncode == 0, again.stderr
    (image,) = json.loads(again.stdout)["images"]
    assert (image["status"], image["bytes_sent"]) == ("present", 0)


def test_a_blob_that_does_not_match_stops_the_stream_and_containerd_keeps_nothing(
    tmp_path: Path, rb: RuntimeBundle, address: str
) -> None:
    folder, layer = _corrupt_copy(rb, tmp_path, rb.image.layers[0].size // 2)
    target = ContainerdTarget(address, NAMESPACE, "native")
    with open_bundle(folder) as b, pytest.raises(BlobMismatch) as err:
        load_into_containerd(b, target)
    assert layer.digest in err.value.message and "stopped" in err.value.message
    assert _name(rb) not in ctr(address, NAMESPACE, "images", "ls")
    cfg = json.loads((rb.folder / "blobs" / "sha256" / rb.image.config_digest[7:]).read_bytes())
    key = chain_id(cfg["rootfs"]["diff_ids"])  # never unpacked
    assert key not in ctr(address, NAMESPACE, "snapshots", "--snapshotter", "native", "ls")


def test_containerd_without_room_for_the_image_is_refused_before_the_stream(
    rb: RuntimeBundle, address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.statvfs
    seen: list[str] = []

    def small(path: str) -> os.statvfs_result:  # the real answer, with 1 MiB free
        st = real(path)
        seen.append(path)
        return os.statvfs_result((*st[:4], 256, 256, *st[6:]))  # f_bfree, f_bavail

    monkeypatch.setattr(os, "statvfs", small)
    target = ContainerdTarget(address, NAMESPACE, "native")
    with open_bundle(rb.tar) as b, pytest.raises(EngineError) as err:
        load_into_containerd(b, target)
    assert "not enough room" in err.value.message and "io.containerd." in err.value.message
    assert seen and all("io.containerd." in p for p in seen)  # containerd's own folders
    assert _name(rb) not in ctr(address, NAMESPACE, "images", "ls")


def test_containerd_that_does_not_answer_is_named_before_anything_is_hashed(
    tmp_path: Path, rb: RuntimeBundle
) -> None:
    prefix = tmp_path / "site"
    r = _install(rb, prefix, "--containerd", "--address", str(tmp_path / "none.sock"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"no containerd socket at {tmp_path / 'none.sock'}" in r.stderr
    assert "--address" in r.stderr and "Traceback" not in r.stderr
    assert not prefix.exists()  # refused before the prefix was made


@pytest.mark.slow  # four airgap and podman runs: over 20 s on two busy cores
def test_podman_gets_the_image_with_its_digest_and_it_runs(
    tmp_path: Path, rb: RuntimeBundle
) -> None:
    env = podman_env(tmp_path / "podman")
    prefix = tmp_path / "site"
    r = _install(rb, prefix, "--podman", "--json", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    (image,) = json.loads(r.stdout)["images"]
    assert (image["into"], image["status"], image["name"]) == ("podman", "loaded", rb.ref)
    assert image["store"] == str(tmp_path / "podman" / "storage")
    found = json.loads(_podman(env, "image", "inspect", rb.ref))[0]
    assert found["Digest"] == rb.image.manifest_digest
    assert "sha256:" + found["Id"] == rb.image.config_digest
    assert found["RepoTags"] == [rb.ref]  # the loopback registry's name is gone
    out = _podman(env, "run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024",
                  "--ulimit", "nproc=1024:1024", rb.ref)  # fmt: skip
    assert out.strip() == rb.marker
    again = _install(rb, prefix, "--podman", "--json", env=env)
    (image,) = json.loads(again.stdout)["images"]
    assert (image["status"], image["bytes_sent"]) == ("present", 0)
    assert json.loads(again.stdout)["action"] == "unchanged"


def test_a_blob_that_does_not_match_reaches_podman_cut_short(
    tmp_path: Path, rb: RuntimeBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = podman_env(tmp_path / "podman")
    for k in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"):
        monkeypatch.setenv(k, env[k])
    folder, layer = _corrupt_copy(rb, tmp_path, -100)
    with open_bundle(folder) as b, pytest.raises(BlobMismatch) as err:
        load_into_podman(b, check_podman())
    assert layer.digest in err.value.message
    r = subprocess.run(["podman", "image", "exists", rb.image.config_digest[7:]], env=env,
                       capture_output=True, timeout=60)  # fmt: skip
    assert r.returncode == 1  # Podman kept nothing


def _podman(env: dict[str, str], *args: str) -> str:
    r = subprocess.run(["podman", *args], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


# ---------------------------------------------------------------------------- the streams themselves


def test_the_oci_archive_for_ctr_holds_each_blob_once_under_its_hash_and_names_the_image(
    rb: RuntimeBundle,
) -> None:
    image = rb.image
    blobs = archive_blobs([image, image])  # the same image twice: its blobs once
    index = archive_index([(_name(rb), image.manifest.blob)])
    with open_bundle(rb.tar) as b:
        stream = b"".join(oci_archive(b, blobs, index, "run1", lambda n: None, "here"))
    assert len(stream) == archive_size(blobs, index)
    with tarfile.open(fileobj=io.BytesIO(stream)) as tf:
        members = tf.getmembers()
        names = [m.name for m in members]
        assert names[0] == "oci-layout" and names[-1] == "index.json"  # named last
        for m in members[1:-1]:
            data = tf.extractfile(m).read()  # type: ignore[union-attr]
            assert m.name == "blobs/run1/" + hashlib.sha256(data).hexdigest()
        assert len(members) == 2 + 2 + len(image.layers)  # manifest, config, layers
        doc = json.loads(tf.extractfile("index.json").read())  # type: ignore[union-attr]
    (entry,) = doc["manifests"]
    assert entry["digest"] == image.manifest_digest and "platform" not in entry
    assert entry["annotations"] == {"io.containerd.image.name": _name(rb)}


def _get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_the_loopback_registry_serves_only_the_images_blobs_verified(rb: RuntimeBundle) -> None:
    image = rb.image
    sent: list[int] = []
    with open_bundle(rb.tar) as b, LoopbackRegistry(b, [image], sent.append, "podman") as reg:
        assert reg.address.startswith("127.0.0.1:")
        base = f"http://{reg.address}/v2/{reg.repository}"
        assert _get(f"http://{reg.address}/v2/")[0] == 200
        status, headers, body = _get(f"{base}/manifests/{image.manifest_digest}")
        assert (
            status == 200 and "sha256:" + hashlib.sha256(body).hexdigest() == image.manifest_digest
        )
        assert headers["Content-Type"] == image.manifest.blob.media_type
        assert headers["Docker-Content-Digest"] == image.manifest_digest
        for blob in (image.manifest.config, *image.layers):
            status, headers, body = _get(f"{base}/blobs/{blob.digest}")
            assert status == 200 and "sha256:" + hashlib.sha256(body).hexdigest() == blob.digest
        status, headers, body = _get(f"{base}/blobs/{image.layers[0].digest}", "HEAD")
        assert (status, body) == (200, b"") and headers["Content-Length"] == str(
            image.layers[0].size
        )
        for url in (
            f"{base}/blobs/sha256:{'0' * 64}",  # not one of the image's blobs
            f"{base}/tags/list",
            f"http://{reg.address}/v2/other/repo/manifests/{image.manifest_digest}",
        ):
            assert _get(url)[0] == 404
        assert reg.failure is None
    assert sum(sent) == image.manifest.blob.size + image.size


def test_the_loopback_registry_cuts_a_corrupt_blob_short(tmp_path: Path, rb: RuntimeBundle) -> None:
    folder, layer = _corrupt_copy(rb, tmp_path, -1)
    with open_bundle(folder) as b, LoopbackRegistry(b, [rb.image], lambda n: None, "p") as reg:
        url = f"http://{reg.address}/v2/{reg.repository}/blobs/{layer.digest}"
        with pytest.raises(http.client.IncompleteRead) as err:
            _get(url)
        assert len(err.value.partial) < layer.size  # the last chunk never left
        assert isinstance(reg.failure, BlobMismatch) and layer.digest in reg.failure.message


def test_layers_containerd_holds_already_are_not_sent_again(
    rb: RuntimeBundle, address: str
) -> None:
    target = ContainerdTarget(address, NAMESPACE, "native")
    keep = f"airgap.local/keep-{os.getpid()}:1"
    try:
        with open_bundle(rb.tar) as b:
            load_into_containerd(b, target)
            # another image holds the content; the bundle's name is gone (an upgrade's case)
            ctr(address, NAMESPACE, "images", "tag", _name(rb), keep)
            ctr(address, NAMESPACE, "images", "rm", "--sync", _name(rb))
            (again,) = load_into_containerd(b, target)
        image = rb.image
        assert again.status == "loaded"
        assert again.bytes_sent == image.manifest.blob.size + image.manifest.config.size
        out = ctr(address, NAMESPACE, "run", "--rm", "--snapshotter", "native", _name(rb),
                  f"airgap-keep-{os.getpid()}")  # fmt: skip
        assert out.strip() == rb.marker
    finally:
        subprocess.run(["ctr", "--address", address, "--namespace", NAMESPACE, "images", "rm",
                        "--sync", keep], capture_output=True, timeout=60)  # fmt: skip
