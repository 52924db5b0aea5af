"""Build-time image collection: every blob of a locked image into the store, digests intact.

The registry, the engine and skopeo are the real ones scripts/services.sh starts (tests marked
``services`` skip without them locally and fail in CI); skopeo is the independent judge of the OCI
layouts written from what was collected. Hand-made layouts, archives and misbehaving servers are real
bytes and sockets made in tests/support/images.py.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from packager.bundle.images import CollectedImage, collect_image
from packager.bundle.store import BlobMismatch, BlobStore
from packager.errors import LockMismatch, ResolveError
from packager.manifest.model import Image
from packager.resolve.images import resolve_image
from packager.resolve.lockfile import LockedImage
from tests.support import images as sup
from tests.support import services

if TYPE_CHECKING:
    import docker

RUN = uuid.uuid4().hex[:8]  # repositories and tags of this run: the services are shared
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def img(
    ref: str, source: str = "registry", *, path: Path | None = None, insecure: bool = True
) -> Image:
    return Image(
        ref=ref,
        role="serving",
        digest=None,
        source=source,
        path=path,
        insecure=insecure,
        json_path=("runtime", "images", 0),
    )


def skopeo(*args: str) -> bytes:
    tool = services.require(lambda: services.tool("skopeo"))
    return subprocess.run([tool, *args], check=True, capture_output=True, timeout=60).stdout


def inspect(*args: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(skopeo("inspect", *args))
    return doc


def collect(
    image: Image, locked: LockedImage, store: BlobStore, **kw: Any
) -> tuple[CollectedImage, int]:
    """The collected image and the bytes that progress reported."""
    seen: list[int] = []
    collected = collect_image(image, locked, store, timeout=10, progress=seen.append, **kw)
    return collected, sum(seen)


def check_store(store: BlobStore, collected: CollectedImage) -> None:
    digests = [d for d, _, _ in collected.blobs]
    assert len(digests) == len(set(digests))
    assert collected.descriptor["digest"] == digests[0]  # the top manifest first
    for digest, size, media_type in collected.blobs:
        assert store.has(digest, size), digest
        assert sup.digest_of(store.path(digest).read_bytes()) == digest
        assert media_type.startswith("application/vnd.")
    assert not list(store.root.rglob("*.partial"))


def write_layout(root: Path, store: BlobStore, images: list[CollectedImage]) -> Path:
    """A minimal OCI layout: oci-layout, index.json naming each image by its ref, hard links."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for image in images:
        for digest, _, _ in image.blobs:
            target = blobs / digest.split(":", 1)[1]
            if not target.exists():
                target.hardlink_to(store.path(digest))
    entries = [
        {**i.descriptor, "annotations": {"org.opencontainers.image.ref.name": i.ref}}
        for i in images
    ]
    (root / "index.json").write_bytes(
        sup.canonical({"schemaVersion": 2, "mediaType": sup.OCI_INDEX, "manifests": entries})
    )
    return root


def raw_digest(transport_ref: str, *tls: str) -> str:
    return sup.digest_of(skopeo("inspect", "--raw", *tls, transport_ref))


# ============================================================================ real registry


@pytest.fixture(scope="module")
def pushed_busybox(
    docker_client: docker.DockerClient, registry: str, busybox_image: str
) -> Iterator[str]:
    """The busybox image pushed by the real engine to the real registry; its reference."""
    repo = f"{registry}/airgap-test/collect-{RUN}"
    docker_client.images.get(busybox_image).tag(repo, tag="v1")
    try:
        events = docker_client.images.push(repo, tag="v1", stream=True, decode=True)
        errors = [e for e in events if "error" in e]
        assert not errors, errors
        yield f"{repo}:v1"
    finally:
        docker_client.images.remove(f"{repo}:v1", noprune=True)


@pytest.fixture(scope="module")
def multi_arch_pushed(registry: str) -> dict[str, tuple[str, sup.MultiArch]]:
    """Hand-made two-platform images pushed with dxf: an OCI index and a docker manifest list."""
    out = {}
    for kind in ("oci", "docker"):
        image = sup.multi_arch(docker=kind == "docker", marker=f"collect {kind} {RUN}")
        repo = f"airgap-test/collect-multi-{kind}-{RUN}"
        sup.push_multi_arch(registry, repo, "v1", image)
        out[kind] = (f"{registry}/{repo}:v1", image)
    return out


def check_wrapper(
    store: BlobStore, collected: CollectedImage, entries: list[dict[str, Any]]
) -> None:
    """A docker-typed top is listed through a generated OCI index of its platform manifests."""
    assert collected.wrapped is not None
    assert collected.descriptor["mediaType"] == sup.OCI_INDEX
    wrapper = json.loads(store.path(collected.descriptor["digest"]).read_bytes())
    assert wrapper == {
        "schemaVersion": 2,
        "mediaType": sup.OCI_INDEX,
        "manifests": entries,
        "annotations": {"dev.airgap.image.wraps": collected.wrapped["digest"]},
    }


@pytest.mark.services
def test_registry_image_keeps_its_digest(
    pushed_busybox: str,
    registry: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = img(pushed_busybox)
    locked = resolve_image(image, "linux/amd64", timeout=10)
    assert locked.media_type == sup.DOCKER_MANIFEST  # what Docker 20.10 pushes
    store = BlobStore(tmp_path / "store")
    collected, reported = collect(image, locked, store)
    manifest_bytes = store.path(locked.manifest_digest or "").read_bytes()
    raw = json.loads(manifest_bytes)
    assert collected.ref == pushed_busybox and collected.platform == "linux/amd64"
    original = {
        "mediaType": sup.DOCKER_MANIFEST,
        "digest": locked.manifest_digest,
        "size": len(manifest_bytes),
        "platform": {"architecture": "amd64", "os": "linux"},
    }
    assert collected.wrapped == original
    check_wrapper(store, collected, [original])
    assert [d for d, _, _ in collected.blobs] == [
        collected.descriptor["digest"],
        locked.manifest_digest,
        locked.config_digest,
        *locked.layers,
    ]
    assert [mt for _, _, mt in collected.blobs[2:]] == [
        raw["config"]["mediaType"],
        *(la["mediaType"] for la in raw["layers"]),
    ]
    assert reported == sum(s for _, s, _ in collected.blobs)
    check_store(store, collected)

    # skopeo reads the layout; a copy from it into a registry has the source registry's digest
    layout = write_layout(tmp_path / "layout", store, [collected])
    oci = f"oci:{layout}:{pushed_busybox}"
    assert raw_digest(oci) == collected.descriptor["digest"]
    inspected = inspect(oci)
    assert inspected["Layers"] == list(locked.layers)
    assert inspected["Architecture"] == "amd64"
    assert sup.digest_of(skopeo("inspect", "--config", "--raw", oci)) == locked.config_digest
    dest = f"docker://{registry}/airgap-test/collect-copy-{RUN}:busybox"
    skopeo("copy", "-q", "--preserve-digests", "--dest-tls-verify=false", oci, dest)
    assert inspect("--tls-verify=false", dest)["Digest"] == locked.manifest_digest
    assert raw_digest(dest, "--tls-verify=false") == locked.manifest_digest

    # a second build finds everything in the store: no request to the registry at all
    def offline(*_: object) -> None:
        raise AssertionError("the registry was asked although the store has everything")

    monkeypatch.setattr("packager.bundle.images._RegistrySource.manifest", offline)
    monkeypatch.setattr("packager.bundle.images._RegistrySource.chunks", offline)
    again, reported_again = collect(image, locked, store)
    assert again == collected and reported_again == reported


@pytest.mark.services
@pytest.mark.parametrize("kind", ["oci", "docker"])
def test_registry_multi_arch_one_platform_or_all(
    multi_arch_pushed: dict[str, tuple[str, sup.MultiArch]],
    registry: str,
    tmp_path: Path,
    kind: str,
) -> None:
    ref, made = multi_arch_pushed[kind]
    image = img(ref)
    locked = resolve_image(image, "linux/arm64", timeout=10)
    arm = made.manifest_digest("linux/arm64/v8")
    assert locked.manifest_digest == arm and locked.index_digest == made.index_digest
    store = BlobStore(tmp_path / "store")
    wrapped = kind == "docker"
    index_doc = json.loads(made.index)

    one, _ = collect(image, locked, store)
    arm_desc = {
        "mediaType": sup.DOCKER_MANIFEST if wrapped else sup.OCI_MANIFEST,
        "digest": arm,
        "size": len(made.manifests["linux/arm64/v8"]),
        "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
    }
    platform_blobs = [arm, sup.digest_of(made.configs["linux/arm64/v8"]), sup.digest_of(made.layer)]
    if wrapped:
        check_wrapper(store, one, [arm_desc])
        assert one.wrapped == arm_desc
        platform_blobs.insert(0, one.descriptor["digest"])
    else:
        assert one.descriptor == arm_desc and one.wrapped is None
    assert [d for d, _, _ in one.blobs] == platform_blobs
    check_store(store, one)

    every, _ = collect(image, locked, store, all_platforms=True)
    assert every.platform == "linux/arm64/v8"
    index_desc = {
        "mediaType": sup.DOCKER_LIST if wrapped else sup.OCI_INDEX,
        "digest": made.index_digest,
        "size": len(made.index),
    }
    expected = [made.index, made.manifests["linux/amd64"], made.configs["linux/amd64"]]
    expected += [made.layer, made.manifests["linux/arm64/v8"], made.configs["linux/arm64/v8"]]
    all_blobs = [sup.digest_of(b) for b in expected]
    if wrapped:
        check_wrapper(store, every, index_doc["manifests"])
        assert every.wrapped == index_desc
        all_blobs.insert(0, every.descriptor["digest"])
    else:
        assert every.descriptor == index_desc and every.wrapped is None
    assert [d for d, _, _ in every.blobs] == all_blobs
    check_store(store, every)

    single = write_layout(tmp_path / "one", store, [one])
    assert raw_digest(f"oci:{single}:{ref}") == one.descriptor["digest"]
    assert inspect(f"oci:{single}:{ref}", "--override-arch=arm64")["Architecture"] == "arm64"
    dest_one = f"docker://{registry}/airgap-test/collect-copy-{kind}-{RUN}:one"
    skopeo("copy", "-q", "--preserve-digests", "--override-arch=arm64", "--dest-tls-verify=false",
           f"oci:{single}:{ref}", dest_one)  # fmt: skip
    assert raw_digest(dest_one, "--tls-verify=false") == arm

    whole = write_layout(tmp_path / "all", store, [every])
    oci = f"oci:{whole}:{ref}"
    assert raw_digest(oci) == every.descriptor["digest"]
    dest = f"docker://{registry}/airgap-test/collect-copy-{kind}-{RUN}:all"
    skopeo("copy", "-q", "--all", "--preserve-digests", "--dest-tls-verify=false", oci, dest)
    copied = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", dest))
    # the platform manifests keep their digests; an OCI index keeps its own too
    assert copied["manifests"] == index_doc["manifests"]
    if not wrapped:
        assert raw_digest(dest, "--tls-verify=false") == made.index_digest


# ============================================================================ Docker engine, archive


@pytest.mark.services
def test_docker_engine_image(
    docker_client: docker.DockerClient,
    busybox_image: str,
    registry: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = docker_client.images.get(busybox_image)
    diff_ids = engine.attrs["RootFS"]["Layers"]
    image = img(busybox_image, "docker")
    locked = resolve_image(image, "linux/amd64", timeout=10)
    store = BlobStore(tmp_path / "store")
    collected, reported = collect(image, locked, store)
    manifest_digest = collected.descriptor["digest"]
    assert collected.descriptor["mediaType"] == sup.OCI_MANIFEST
    assert collected.descriptor["platform"] == {"architecture": "amd64", "os": "linux"}
    image_id = str(engine.id)
    assert collected.blobs[1] == (image_id, store.path(image_id).stat().st_size, sup.OCI_CONFIG)
    assert [(d, mt) for d, _, mt in collected.blobs[2:]] == [(d, OCI_LAYER_TAR) for d in diff_ids]
    assert reported == sum(s for _, s, _ in collected.blobs)
    check_store(store, collected)
    manifest = store.path(manifest_digest).read_bytes()
    assert manifest == sup.canonical(json.loads(manifest))  # canonical JSON

    layout = write_layout(tmp_path / "layout", store, [collected])
    oci = f"oci:{layout}:{busybox_image}"
    inspected = inspect(oci)
    assert inspected["Digest"] == manifest_digest
    assert inspected["Layers"] == diff_ids
    assert inspected["Architecture"] == "amd64"
    assert sup.digest_of(skopeo("inspect", "--config", "--raw", oci)) == engine.id
    # the layout also pushes as it is (uncompressed layers, every digest kept)
    dest = f"docker://{registry}/airgap-test/collect-engine-{RUN}:v1"
    skopeo("copy", "-q", "--preserve-digests", "--dest-tls-verify=false", oci, dest)
    assert inspect("--tls-verify=false", dest)["Digest"] == manifest_digest

    # deterministic: a fresh store gives the same manifest; a full store needs no docker save
    fresh, _ = collect(image, locked, BlobStore(tmp_path / "fresh"))
    assert fresh == collected

    def no_save(*_: object) -> None:
        raise AssertionError("docker save although the store has every blob")

    monkeypatch.setattr("packager.bundle.images._SaveReader.read", no_save)
    assert collect(image, locked, store) == (collected, reported)
    monkeypatch.undo()

    # the same image from `docker save`'s tar gives the same blobs and manifest
    archive = tmp_path / "busybox.tar"
    with archive.open("wb") as fh:
        for chunk in docker_client.api.get_image(busybox_image):
            fh.write(chunk)
    from_tar = img(busybox_image, "docker-archive", path=archive)
    locked_tar = resolve_image(from_tar, "linux/amd64")
    collected_tar, _ = collect(from_tar, locked_tar, BlobStore(tmp_path / "tar-store"))
    assert collected_tar.descriptor == collected.descriptor
    assert collected_tar.blobs == collected.blobs


@pytest.mark.services
def test_docker_engine_image_gone(docker_client: docker.DockerClient, tmp_path: Path) -> None:
    gone = "sha256:" + "0" * 64
    locked = LockedImage("airgap-test/gone:1", "docker", "linux/amd64", gone, 1, layers=(gone,))
    with pytest.raises(ResolveError) as info:
        collect_image(img("airgap-test/gone:1", "docker"), locked, BlobStore(tmp_path))
    assert f"no longer has image {gone}" in info.value.message
    assert "DOCKER_HOST=" in info.value.message and info.value.hint


def test_docker_engine_not_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    d = "sha256:" + "1" * 64
    locked = LockedImage("busybox:1", "docker", "linux/amd64", d, 1, layers=(d,))
    with pytest.raises(ResolveError) as info:
        collect_image(img("busybox:1", "docker"), locked, BlobStore(tmp_path / "s"), timeout=2)
    assert f"unix://{tmp_path}/no.sock" in info.value.message
    assert info.value.hint and "start a Docker engine" in info.value.hint


@pytest.mark.parametrize("oci_names", [False, True], ids=["legacy", "docker25"])
def test_docker_archive_hand_made(tmp_path: Path, oci_names: bool) -> None:
    archive = tmp_path / "a.tar"
    cdigest, diff_ids = sup.write_docker_archive(
        archive, repo_tags=["team/app:1"], oci_names=oci_names
    )
    image = img("team/app:1", "docker-archive", path=archive)
    locked = resolve_image(image, "linux/amd64")
    store = BlobStore(tmp_path / "store")
    collected, _ = collect(image, locked, store)
    check_store(store, collected)
    manifest = json.loads(store.path(collected.descriptor["digest"]).read_bytes())
    config_size = store.path(cdigest).stat().st_size
    assert manifest == {
        "schemaVersion": 2,
        "mediaType": sup.OCI_MANIFEST,
        "config": {"mediaType": sup.OCI_CONFIG, "digest": cdigest, "size": config_size},
        "layers": [
            {"mediaType": OCI_LAYER_TAR, "digest": d, "size": store.path(d).stat().st_size}
            for d in diff_ids
        ],
    }
    assert [d for d, _, _ in collected.blobs] == [
        collected.descriptor["digest"],
        cdigest,
        *diff_ids,
    ]


def _flip_layer(archive: Path, out: Path, diff_id: str) -> None:
    """Copy a docker-save tar, with one byte of its layer tar changed."""
    layer_names = ("layer.tar", diff_id.split(":", 1)[1])
    with tarfile.open(archive) as src, tarfile.open(out, "w") as dst:
        for member in src.getmembers():
            fh = src.extractfile(member) if member.isfile() else None
            data = fh.read() if fh is not None else b""
            if member.name.endswith(layer_names):
                data = bytes([data[0] ^ 1]) + data[1:]
            dst.addfile(member, io.BytesIO(data) if fh is not None else None)


@pytest.mark.parametrize("oci_names", [False, True], ids=["legacy", "docker25"])
def test_docker_archive_corrupted_layer(tmp_path: Path, oci_names: bool) -> None:
    good = tmp_path / "good.tar"
    _, diff_ids = sup.write_docker_archive(good, repo_tags=["team/app:1"], oci_names=oci_names)
    image = img("team/app:1", "docker-archive", path=good)
    locked = resolve_image(image, "linux/amd64")
    bad = tmp_path / "bad.tar"
    _flip_layer(good, bad, diff_ids[0])
    store = BlobStore(tmp_path / "store")
    with pytest.raises(BlobMismatch) as info:
        collect_image(img("team/app:1", "docker-archive", path=bad), locked, store)
    msg = info.value.message
    assert "image team/app:1" in msg and locked.layers[0] in msg
    assert info.value.exit_code == 1
    assert not store.has(locked.layers[0])
    assert not [p for p in store.root.rglob("*") if p.is_file() and p.name.endswith(".partial")]


# ============================================================================ OCI layout


def test_oci_layout_all_platforms_and_flipped_byte(tmp_path: Path) -> None:
    made = sup.multi_arch(marker="layout")
    source = sup.multi_arch_layout(tmp_path / "src", made, name="v1")
    image = img("team/app:v1", "oci-layout", path=source)
    locked = resolve_image(image, "linux/amd64")
    store = BlobStore(tmp_path / "store")
    every, _ = collect(image, locked, store, all_platforms=True)
    assert every.descriptor["digest"] == made.index_digest and len(every.blobs) == 6
    check_store(store, every)

    # the shared layer served with one byte flipped: refused, nothing under its name
    layer = sup.digest_of(made.layer)
    path = source / "blobs" / "sha256" / layer.split(":", 1)[1]
    data = path.read_bytes()
    path.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])
    fresh = BlobStore(tmp_path / "fresh")
    with pytest.raises(BlobMismatch) as info:
        collect_image(image, locked, fresh)
    msg = info.value.message
    assert "image team/app:v1" in msg and f"layer {layer}" in msg and str(source) in msg
    assert info.value.hint and "nothing was kept" in info.value.hint
    assert not fresh.has(layer)
    assert not list(fresh.root.rglob("*.partial"))

    # a flipped byte in a manifest is caught before it is kept
    path.write_bytes(data)
    amd = made.manifest_digest("linux/amd64")
    mpath = source / "blobs" / "sha256" / amd.split(":", 1)[1]
    mpath.write_bytes(mpath.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion":3'))
    with pytest.raises(BlobMismatch, match=f"manifest {amd}"):
        collect_image(image, locked, BlobStore(tmp_path / "third"))
    assert not BlobStore(tmp_path / "third").has(amd)

    # a missing blob: an input error with a hint
    mpath.unlink()
    with pytest.raises(ResolveError) as missing:
        collect_image(image, locked, BlobStore(tmp_path / "fourth"))
    assert f"blob {amd} is missing" in missing.value.message and missing.value.hint


def test_lock_of_another_image_is_refused(tmp_path: Path) -> None:
    made = sup.multi_arch()
    source = sup.multi_arch_layout(tmp_path / "src", made)
    locked = resolve_image(img("team/app:v1", "oci-layout", path=source), "linux/amd64")
    other = img("team/other:v1", "oci-layout", path=source)
    with pytest.raises(LockMismatch) as info:
        collect_image(other, locked, BlobStore(tmp_path))
    assert "the lock's entry is for team/app:v1" in info.value.message
    assert info.value.hint and "airgap lock" in info.value.hint


# ============================================================================ registry, no service


def _routes(repo: str, blobs: dict[str, bytes], manifests: list[bytes]) -> dict[str, Any]:
    routes: dict[str, Any] = {}
    for m in manifests:
        headers = {"Content-Type": json.loads(m)["mediaType"]}
        routes[f"/v2/{repo}/manifests/{sup.digest_of(m)}"] = (200, headers, m)
    for digest, data in blobs.items():
        routes[f"/v2/{repo}/blobs/{digest}"] = (200, {}, data)
    return routes


def test_registry_corrupted_layer_is_refused(tmp_path: Path) -> None:
    made = sup.multi_arch()
    manifest = made.manifests["linux/amd64"]
    config = made.configs["linux/amd64"]
    layer = sup.digest_of(made.layer)
    flipped = bytes([made.layer[0] ^ 1]) + made.layer[1:]
    routes = _routes("x/y", {sup.digest_of(config): config, layer: flipped}, [manifest])
    store = BlobStore(tmp_path / "store")
    with sup.fake_registry(routes) as host:
        ref = f"{host}/x/y:1"
        locked = LockedImage(
            ref, "registry", "linux/amd64", sup.digest_of(config), 1,
            manifest_digest=sup.digest_of(manifest), layers=(layer,),
        )  # fmt: skip
        with pytest.raises(BlobMismatch) as info:
            collect_image(img(ref), locked, store, timeout=5)
    msg = info.value.message
    # the store hashes what the registry streams: another digest is refused, nothing kept
    assert f"image {ref}" in msg and f"expected {layer}" in msg
    assert not store.has(layer) and store.has(sup.digest_of(config))
    assert not list(store.root.rglob("*.partial"))


def test_registry_unreachable_or_missing_blob(tmp_path: Path) -> None:
    made = sup.multi_arch()
    manifest = made.manifests["linux/amd64"]
    config = made.configs["linux/amd64"]
    locked = LockedImage(
        "127.0.0.1:1/x/y:1", "registry", "linux/amd64", sup.digest_of(config), 1,
        manifest_digest=sup.digest_of(manifest), layers=(sup.digest_of(made.layer),),
    )  # fmt: skip
    with pytest.raises(ResolveError) as info:
        collect_image(img("127.0.0.1:1/x/y:1"), locked, BlobStore(tmp_path), timeout=2)
    assert "cannot connect to registry 127.0.0.1:1" in info.value.message and info.value.hint

    routes = _routes("x/y", {sup.digest_of(config): config}, [manifest])  # no layer
    with sup.fake_registry(routes) as host:
        ref = f"{host}/x/y:1"
        locked = LockedImage(**{**locked.__dict__, "ref": ref})
        with pytest.raises(ResolveError) as info:
            collect_image(img(ref), locked, BlobStore(tmp_path / "s"), timeout=5)
    assert "HTTP 404" in info.value.message and sup.digest_of(made.layer) in info.value.message
