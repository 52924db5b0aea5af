"""Images at the site, against the real engine and real registries: list, load, push.

The bundle is the one tests/site/conftest.py builds with the real `airgap build`; skopeo is the
independent judge of what a push leaves in a registry.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from packager.bundle import layout
from packager.bundle.descriptor import ImageRecord
from packager.bundle.images import collect_image
from packager.bundle.reader import open_bundle
from packager.bundle.store import BlobMismatch, BlobStore
from packager.cli.app import main as airgap_main
from packager.errors import InputError
from packager.manifest.model import Image
from packager.oci.reference import parse_reference
from packager.resolve.images import resolve_image
from packager.resolve.lockfile import LockedImage
from packager.site import images as site
from packager.site.images import docker as site_docker
from packager.util.progress import Reporter
from tests.site import support
from tests.site.bundles import RUN, SiteBundle, remove_images
from tests.support import images as sup
from tests.support.descriptors import descriptor_json
from tests.support.reports import report_problem

if TYPE_CHECKING:
    import docker

pytestmark = pytest.mark.services


class Counting(Reporter):
    def __init__(self, stop_after: int | None = None) -> None:
        self.bytes = 0
        self.notes: list[str] = []
        self.stop_after = stop_after

    def advance(self, nbytes: int) -> None:
        self.bytes += nbytes
        if self.stop_after is not None and self.bytes > self.stop_after:
            raise KeyboardInterrupt("interrupted by the test")

    def note(self, text: str) -> None:
        self.notes.append(text)


def bundle_path(site_bundle: SiteBundle, form: str) -> Path:
    return {"tar": site_bundle.tar, "parts": site_bundle.parts, "folder": site_bundle.folder}[form]


# ============================================================================ listing


def test_entries_name_every_image_with_its_kept_digests(site_bundle: SiteBundle) -> None:
    imgs = site_bundle.images
    doc = json.loads((site_bundle.folder / layout.BUNDLE_JSON).read_text())
    said = {i["ref"]: i for i in doc["images"]}
    assert {k: i.role for k, i in imgs.items()} == {
        "serving": "serving",
        "tool": "tool",
        "multi": "sidecar",
        "list": "init",
    }
    for key, image in imgs.items():
        assert image.platform == "linux/amd64"
        assert image.index is None  # built without all_platforms: the platform manifest only
        assert image.size == image.manifest.config.size + sum(b.size for b in image.layers)
        assert image.config_digest == said[image.ref]["config_digest"]
        if key != "tool":  # engine images have no registry manifest until pushed
            assert image.manifest_digest == said[image.ref]["manifest_digest"]
    serving, tool, multi, lst = (imgs[k] for k in ("serving", "tool", "multi", "list"))
    assert serving.wrapped and serving.manifest.blob.media_type == layout.DOCKER_MANIFEST
    assert all(b.media_type.endswith("gzip") for b in serving.layers)
    assert not tool.wrapped and all(b.media_type == layout.OCI_LAYER_TAR for b in tool.layers)
    m = site_bundle.multi["multi"]
    assert multi.manifest_digest == m.manifest_digest("linux/amd64") and not multi.wrapped
    assert multi.chosen_from == m.index_digest == multi.index_digest
    d = site_bundle.multi["list"]
    assert lst.wrapped and lst.manifest_digest == d.manifest_digest("linux/amd64")
    assert lst.chosen_from == d.index_digest


def test_images_command_lists_platform_size_and_digests(
    site_bundle: SiteBundle, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        airgap_main(["images", str(site_bundle.parts), "--json"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert report_problem(["images", "--json"], out) is None  # schemas/images-report
    doc = json.loads(out)
    rows = {i["ref"]: i for i in doc["images"]}
    serving = site_bundle.images["serving"]
    row = rows[serving.ref]
    assert (row["platform"], row["size"], row["manifest_digest"], row["config_digest"]) == (
        "linux/amd64",
        serving.size,
        serving.manifest_digest,
        serving.config_digest,
    )
    assert len(row["layers"]) == len(serving.layers)
    with pytest.raises(SystemExit) as exit_:
        airgap_main(["images", str(site_bundle.tar)])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for image in site_bundle.images.values():
        assert image.ref in text and image.manifest_digest in text and image.config_digest in text


# ============================================================================ loading


@pytest.mark.parametrize("form", ["tar", "parts", "folder"])
def test_load_streams_the_bundle_into_the_engine(
    form: str, site_bundle: SiteBundle, docker_client: docker.DockerClient, absent: None
) -> None:
    rep = Counting()
    with open_bundle(bundle_path(site_bundle, form)) as b:
        loaded = site.load_into_docker(b, docker_client, progress=rep)
    assert [x.status for x in loaded] == ["loaded"] * 4
    for x in loaded:
        image = next(i for i in site_bundle.images.values() if i.ref == x.ref)
        assert x.image_id == x.config_digest == image.config_digest
        assert docker_client.images.get(x.ref).id == image.config_digest  # tagged as it was
    assert (
        rep.bytes
        == sum(x.bytes_sent for x in loaded)
        >= sum(i.size for i in site_bundle.images.values())
    )
    for key in ("serving", "tool") if form == "tar" else ():  # `docker run` prints the marker
        out = docker_client.containers.run(
            site_bundle.refs[key], ["cat", "/marker"], network_mode="none", remove=True
        )
        assert out.decode().strip() == site_bundle.markers[key]
    with open_bundle(bundle_path(site_bundle, form)) as b:  # again: only tagged
        again = site.load_into_docker(b, docker_client)
    assert [x.status for x in again] == ["present"] * 4


def _corrupt_copy(site_bundle: SiteBundle, dest: Path, digest: str) -> None:
    """A copy of the layout folder (hard links) whose blob ``digest`` has one byte flipped."""
    shutil.copytree(site_bundle.folder, dest, copy_function=os.link)
    blob = dest / layout.blob_path(digest)
    data = bytearray(blob.read_bytes())
    blob.unlink()
    data[len(data) // 3] ^= 0x01
    blob.write_bytes(bytes(data))


def test_a_corrupted_layer_never_reaches_the_engine(
    site_bundle: SiteBundle, docker_client: docker.DockerClient, absent: None, tmp_path: Path
) -> None:
    import docker.errors

    serving = site_bundle.images["serving"]
    layer = max(serving.layers, key=lambda b: b.size)
    assert layer.size > site.CHUNK_SIZE  # so that part of it was sent before the check failed
    _corrupt_copy(site_bundle, tmp_path / "bad", layer.digest)
    rep = Counting()
    with open_bundle(tmp_path / "bad") as b, pytest.raises(BlobMismatch) as err:
        site.load_into_docker(b, docker_client, progress=rep)
    assert layer.digest in err.value.message and "stopped before its end" in err.value.message
    assert rep.bytes < serving.manifest.config.size + sum(b.size for b in serving.layers)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(serving.config_digest)


def test_an_image_for_another_platform_is_refused_before_loading(
    docker_client: docker.DockerClient, registry: str, tmp_path: Path
) -> None:
    image = sup.multi_arch(marker=f"site arm {RUN}")
    repo = f"airgap-test/site-arm-{RUN}"
    sup.push_multi_arch(registry, repo, "v1", image)
    folder = _layout(
        tmp_path / "arm", f"{registry}/{repo}:v1", "linux/arm64/v8", all_platforms=False
    )
    with open_bundle(folder) as b, pytest.raises(site.EngineError) as err:
        site.load_into_docker(b, docker_client)
    assert "is for linux/arm64/v8" in err.value.message and "linux/amd64" in err.value.message


def test_engine_not_running_names_docker_host(
    site_bundle: SiteBundle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import docker

    sock = f"unix://{tmp_path}/no-engine.sock"
    monkeypatch.setenv("DOCKER_HOST", sock)
    with pytest.raises(site.EngineError) as err:
        site.connect_docker(timeout=2)
    assert f"DOCKER_HOST={sock}" in err.value.message
    assert err.value.hint and "systemctl start docker" in err.value.hint
    client = docker.DockerClient(base_url=sock, version="1.41", timeout=2)  # does not connect yet
    with open_bundle(site_bundle.folder) as b, pytest.raises(site.EngineError) as err2:
        site.load_into_docker(b, client)
    assert f"DOCKER_HOST={sock}" in err2.value.message


class FakeEngine:
    """info() and images.get() of an engine, for the room check (which only reads them)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self._info = info

    def info(self) -> dict[str, Any]:
        return self._info


def test_room_is_checked_and_a_shortage_is_named(
    site_bundle: SiteBundle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import socket

    info = {"DockerRootDir": str(tmp_path), "Driver": "vfs", "Name": socket.gethostname()}
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with open_bundle(site_bundle.tar) as b:
        images = site.image_entries(b)
        room = site.check_engine_room(b, FakeEngine(info), images)
        assert room.checked and room.free is not None and room.free >= room.needed
        # vfs copies every layer below: more than the layers' plain sum
        plain = sum(i.size for i in images)
        assert room.needed > plain

        class Tiny:
            f_bavail, f_frsize = 10, 4096

        monkeypatch.setattr(site_docker.os, "statvfs", lambda _p: Tiny())
        with pytest.raises(site.EngineError) as err:
            site.check_engine_room(b, FakeEngine(info), images)
        assert "not enough room" in err.value.message and str(tmp_path) in err.value.message
        monkeypatch.setenv("DOCKER_HOST", "tcp://10.1.2.3:2375")
        remote = site.check_engine_room(b, FakeEngine(info), images)
        assert not remote.checked and "cannot check" in remote.reason
        assert "DOCKER_HOST=tcp://10.1.2.3:2375" in remote.reason


# ============================================================================ pushing


def _layout(
    folder: Path, ref: str, platform: str, *, all_platforms: bool, also: tuple[str, ...] = ()
) -> Path:
    """A bundle-shaped layout of one registry image collected by the build's own code (listed
    under ``ref`` and the references in ``also``)."""
    image = Image(ref, "serving", None, "registry", None, True, ("runtime", "images", 0))
    locked: LockedImage = resolve_image(image, platform, timeout=10)
    store = BlobStore(folder.parent / f"{folder.name}-store")
    got = collect_image(image, locked, store, timeout=10, all_platforms=all_platforms)
    (folder / "blobs" / "sha256").mkdir(parents=True)
    (folder / layout.OCI_LAYOUT).write_bytes(layout.OCI_LAYOUT_CONTENT)
    for digest, _, _ in got.blobs:
        (folder / layout.blob_path(digest)).hardlink_to(store.path(digest))
    entries = [
        {**got.descriptor, "annotations": {layout.REF_NAME: r, layout.ROLE: "image"}}
        for r in (ref, *also)
    ]
    (folder / layout.INDEX_JSON).write_bytes(
        sup.canonical({"schemaVersion": 2, "mediaType": layout.OCI_INDEX, "manifests": entries})
    )
    (folder / "airgap").mkdir()
    (folder / layout.BUNDLE_JSON).write_text(
        json.dumps(
            descriptor_json(
                platform="/".join(platform.split("/")[:2]),  # the target: os/arch
                images=[
                    ImageRecord(
                        r,
                        "serving",
                        locked.platform,
                        locked.manifest_digest,
                        locked.index_digest,
                        locked.config_digest,
                    )
                    for r in (ref, *also)
                ],
            )
        )
    )
    return folder


def _repo(ref: str) -> str:
    return parse_reference(ref).repository


def _dest(site_registry: str, ref: str) -> str:
    """Where a push puts ``ref``: its repository path and tag on the new host."""
    parsed = parse_reference(ref)
    return f"{site_registry}/{parsed.repository}:{parsed.tag}"


@pytest.fixture
def site_registry(tmp_path: Path) -> Any:
    with support.private_registry(tmp_path / "site-registry") as address:
        yield address


def test_push_keeps_every_digest(site_bundle: SiteBundle, site_registry: str) -> None:
    with open_bundle(site_bundle.tar) as b:
        pushed = {p.ref: p for p in site.push_to_registry(b, site_registry, insecure=True)}
    assert set(pushed) == set(site_bundle.refs.values())
    for image in site_bundle.images.values():
        p = pushed[image.ref]
        dest = _dest(site_registry, image.ref)
        assert p.destination == dest
        assert p.digest == p.manifest_digest == image.manifest_digest
        assert not p.present and set(p.uploaded) == {b.digest for b in image.blobs()}
        judged = support.skopeo_inspect(f"docker://{dest}")
        assert judged["Digest"] == image.manifest_digest, (dest, judged)
        assert sup.digest_of(support.skopeo_raw(f"docker://{dest}")) == image.manifest_digest
    # the multi-arch images keep their amd64 manifest's digest, not the index's
    multi = site_bundle.multi["multi"]
    got = pushed[site_bundle.refs["multi"]].digest
    assert got == multi.manifest_digest("linux/amd64") != multi.index_digest
    # docker.io/airgap-test/site-local-...: the repository path on the new host
    tool = pushed[site_bundle.refs["tool"]].destination
    assert tool == f"{site_registry}/airgap-test/site-local-{RUN}:v1"


def test_a_second_push_sends_nothing_and_an_interrupted_one_resumes(
    site_bundle: SiteBundle, site_registry: str
) -> None:
    serving = site_bundle.images["serving"]
    repo = _repo(serving.ref)
    first, second, *rest = serving.blobs()  # the push order: layers, then the config
    with open_bundle(site_bundle.folder) as b:
        # interrupted while the second blob of the first image streams
        with pytest.raises(KeyboardInterrupt):
            site.push_to_registry(
                b, site_registry, insecure=True, progress=Counting(stop_after=first.size)
            )
        assert support.has_blob(site_registry, repo, first.digest)
        assert not support.has_blob(site_registry, repo, second.digest)
        pushed = {p.ref: p for p in site.push_to_registry(b, site_registry, insecure=True)}
        resumed = pushed[serving.ref]
        assert resumed.present == (first.digest,)
        assert resumed.uploaded == tuple(x.digest for x in (second, *rest))
        assert resumed.digest == serving.manifest_digest
        again = site.push_to_registry(b, site_registry, insecure=True)
        assert all(not p.uploaded and p.bytes_uploaded == 0 for p in again)
        assert {p.ref: p.digest for p in again} == {r: p.digest for r, p in pushed.items()}
        # a blob lost on the registry: only that one is sent again
        support.delete_blob(site_registry, repo, second.digest)
        lost = {p.ref: p for p in site.push_to_registry(b, site_registry, insecure=True)}
    assert lost[serving.ref].uploaded == (second.digest,)
    assert lost[serving.ref].bytes_uploaded == second.size
    assert all(not p.uploaded for r, p in lost.items() if r != serving.ref)


def test_push_with_all_platforms_keeps_the_index(
    site_bundle: SiteBundle, site_registry: str, tmp_path: Path
) -> None:
    for key in ("multi", "list"):
        ref = site_bundle.refs[key]
        image = site_bundle.multi[key]
        folder = _layout(tmp_path / key, ref, "linux/amd64", all_platforms=True)
        with open_bundle(folder) as b:
            (entry,) = site.image_entries(b)
            assert entry.index is not None and entry.index.digest == image.index_digest
            assert entry.manifest_digest == image.manifest_digest("linux/amd64")
            assert {m.platform for m in entry.manifests} == {"linux/amd64", "linux/arm64/v8"}
            assert entry.wrapped == (key == "list")
            (pushed,) = site.push_to_registry(b, site_registry, insecure=True)
        dest = _dest(site_registry, ref)
        assert pushed.digest == image.index_digest
        assert sup.digest_of(support.skopeo_raw(f"docker://{dest}")) == image.index_digest
        arm = image.manifest_digest("linux/arm64/v8")
        repo = dest.rsplit(":", 1)[0]
        assert sup.digest_of(support.skopeo_raw(f"docker://{repo}@{arm}")) == arm
        judged = support.skopeo_inspect(
            "--override-arch", "arm64", "--override-variant", "v8", f"docker://{dest}"
        )
        assert judged["Architecture"] == "arm64"


def test_transient_failures_are_retried(site_bundle: SiteBundle, site_registry: str) -> None:
    with (
        support.flaky_proxy(site_registry, fail_uploads=2, drop_manifest_puts=1) as seen,
        open_bundle(site_bundle.folder) as b,
    ):
        pushed = site.push_to_registry(b, seen.address, insecure=True, retries=3, backoff=0.01)
    assert sum(p.retries for p in pushed) == 3
    tops = {i.ref: i.top.digest for i in site_bundle.images.values()}
    assert {p.ref: p.digest for p in pushed} == tops
    for p in pushed:
        dest = _dest(site_registry, p.ref)
        assert support.skopeo_inspect(f"docker://{dest}")["Digest"] == p.digest


@pytest.mark.parametrize(
    ("status", "code", "message", "headers", "requests"),
    [
        (500, "UNKNOWN", "storage backend is on fire", {}, "many"),
        (
            401,
            "UNAUTHORIZED",
            "authentication required for airgap",
            {"WWW-Authenticate": 'Basic realm="r"'},
            "one",
        ),
        (403, "DENIED", "requested access to the resource is denied", {}, "one"),
    ],
)
def test_a_refusing_registry_is_quoted(
    site_bundle: SiteBundle,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str],
    requests: str,
) -> None:
    body = {"errors": [{"code": code, "message": message, "detail": None}]}
    with (
        support.refusing_registry(status, body, headers) as (address, seen),
        open_bundle(site_bundle.folder) as b,
        pytest.raises(site.RegistryError) as err,
    ):
        site.push_to_registry(b, address, insecure=True, retries=2, backoff=0.01)
    text = err.value.message
    assert f"HTTP {status}" in text and f"{code}: {message}" in text, text
    posts = [r for r in seen.requests if r[0] == "POST"]
    if requests == "many":
        assert len(posts) == 3 and "after 3 attempts" in text
    else:
        assert len(posts) == 1 and "attempts" not in text
    if status == 401:
        assert err.value.hint and "credentials" in err.value.hint


def test_unreachable_registry_and_bad_addresses(site_bundle: SiteBundle) -> None:
    with sup.silent_server() as address:
        host, port = address.split(":")
    with open_bundle(site_bundle.folder) as b:
        with pytest.raises(site.RegistryError) as err:  # the port is closed now
            site.push_to_registry(b, f"{host}:{port}", insecure=True, retries=1, backoff=0.01)
        assert "cannot be reached" in err.value.message and "after 2 attempts" in err.value.message
        for bad in ("http://10.0.0.5:5000", "10.0.0.5:5000/project"):
            with pytest.raises(InputError):
                site.push_to_registry(b, bad, insecure=True)


def test_a_corrupted_blob_is_not_pushed(
    site_bundle: SiteBundle, site_registry: str, tmp_path: Path
) -> None:
    serving = site_bundle.images["serving"]
    layer = max(serving.layers, key=lambda b: b.size)
    _corrupt_copy(site_bundle, tmp_path / "bad", layer.digest)
    with open_bundle(tmp_path / "bad") as b, pytest.raises(BlobMismatch):
        site.push_to_registry(b, site_registry, insecure=True)
    assert not support.has_blob(site_registry, _repo(serving.ref), layer.digest)


def test_skopeo_reads_the_pushed_tool_image_config(
    site_bundle: SiteBundle, site_registry: str
) -> None:
    """The engine image (synthesized OCI manifest, plain tar layers) is a valid image after a push."""
    with open_bundle(site_bundle.folder) as b:
        site.push_to_registry(b, site_registry, insecure=True)
    tool = site_bundle.images["tool"]
    judged = support.skopeo_inspect(f"docker://{_dest(site_registry, tool.ref)}")
    assert judged["Digest"] == tool.manifest_digest
    assert judged["Layers"] == [b.digest for b in tool.layers]
    raw = support.skopeo_raw("--config", f"docker://{_dest(site_registry, tool.ref)}")
    assert sup.digest_of(raw) == tool.config_digest


def test_one_image_under_two_references_is_loaded_once_and_mounted_once(
    site_bundle: SiteBundle,
    site_registry: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = site_bundle.refs["multi"]
    other = f"airgap-test/site-alias-{RUN}:v2"
    folder = _layout(tmp_path / "two", ref, "linux/amd64", all_platforms=False, also=(other,))
    with open_bundle(folder) as b:
        first, second = site.image_entries(b)
    remove_images(docker_client, [first.config_digest])
    try:
        with open_bundle(folder) as b:
            loaded = [x.to_json() for x in site.load_into_docker(b, docker_client)]
        assert [x["status"] for x in loaded] == ["loaded", "present"]
        assert docker_client.images.get(other).id == docker_client.images.get(ref).id
    finally:
        remove_images(docker_client, [first.config_digest])
    with open_bundle(folder) as b:
        pushed = [p.to_json() for p in site.push_to_registry(b, site_registry, insecure=True)]
    assert [p["destination"] for p in pushed] == [_dest(site_registry, r) for r in (ref, other)]
    all_blobs = [b.digest for b in first.blobs()]
    assert (pushed[0]["uploaded"], pushed[1]["mounted"]) == (all_blobs, all_blobs)
    assert pushed[1]["bytes_uploaded"] == 0 and pushed[1]["digest"] == second.manifest_digest
