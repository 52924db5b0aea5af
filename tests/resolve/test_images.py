"""Images to content digests for one platform: registry, Docker engine, OCI layout, docker-archive.

The registry, engine and skopeo are the real ones scripts/services.sh starts (tests marked
``services`` skip without them locally and fail in CI); OCI layouts, archives and the misbehaving
servers are real bytes and sockets made here.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from packager.errors import CheckFailed, PinMismatch, ResolveError
from packager.manifest.model import Image
from packager.resolve.images import (
    DOCKER_HUB_HOST,
    MAX_DOCUMENT_BYTES,
    ImageReference,
    Platform,
    parse_platform,
    parse_reference,
    resolve_image,
)
from packager.resolve.lockfile import LockedImage
from tests.support import images as sup
from tests.support import services

if TYPE_CHECKING:
    import docker

RUN = uuid.uuid4().hex[:8]  # repositories and tags of this run: the services are shared


def img(
    ref: str,
    source: str = "registry",
    *,
    digest: str | None = None,
    path: Path | None = None,
    insecure: bool = True,
) -> Image:
    return Image(
        ref=ref,
        role="serving",
        digest=digest,
        source=source,
        path=path,
        insecure=insecure,
        json_path=("runtime", "images", 0),
    )


def skopeo(*args: str) -> dict[str, Any]:
    tool = services.require(lambda: services.tool("skopeo"))
    out = subprocess.run([tool, *args], check=True, capture_output=True, text=True, timeout=60)
    doc: dict[str, Any] = json.loads(out.stdout) if out.stdout.strip() else {}
    return doc


def skopeo_copy(*args: str) -> None:
    tool = services.require(lambda: services.tool("skopeo"))
    subprocess.run([tool, "copy", "-q", *args], check=True, capture_output=True, timeout=60)


# ============================================================================ references


SHA = "sha256:" + "ab" * 32

REFERENCES = [
    # ref, host, repository, tag, digest
    ("busybox", DOCKER_HUB_HOST, "library/busybox", "latest", None),
    ("busybox:1.36", DOCKER_HUB_HOST, "library/busybox", "1.36", None),
    ("docker.io/busybox", DOCKER_HUB_HOST, "library/busybox", "latest", None),
    ("index.docker.io/library/busybox:1", DOCKER_HUB_HOST, "library/busybox", "1", None),
    ("vllm/vllm-openai:v0.6.3", DOCKER_HUB_HOST, "vllm/vllm-openai", "v0.6.3", None),
    (f"busybox@{SHA}", DOCKER_HUB_HOST, "library/busybox", None, SHA),
    (f"busybox:1.36@{SHA}", DOCKER_HUB_HOST, "library/busybox", "1.36", SHA),
    ("localhost/app", "localhost", "app", "latest", None),
    ("localhost:5000/team/app:2", "localhost:5000", "team/app", "2", None),
    ("127.0.0.1:5000/a/b/c:x_Y.z-1", "127.0.0.1:5000", "a/b/c", "x_Y.z-1", None),
    (
        "swr.cn-south-1.myhuaweicloud.com/ascendhub/mindie:2.1.RC1-800I-A2-py311-openeuler24.03-lts",
        "swr.cn-south-1.myhuaweicloud.com",
        "ascendhub/mindie",
        "2.1.RC1-800I-A2-py311-openeuler24.03-lts",
        None,
    ),
    (f"nvcr.io/nvidia/tritonserver@{SHA}", "nvcr.io", "nvidia/tritonserver", None, SHA),
    ("[::1]:5000/app:1", "[::1]:5000", "app", "1", None),
    (
        "ghcr.io/org/my__name.with-dashes---x:t",
        "ghcr.io",
        "org/my__name.with-dashes---x",
        "t",
        None,
    ),
]


@pytest.mark.parametrize(("ref", "host", "repository", "tag", "digest"), REFERENCES)
def test_parse_reference(
    ref: str, host: str, repository: str, tag: str | None, digest: str | None
) -> None:
    parsed = parse_reference(ref)
    assert parsed == ImageReference(host, repository, tag, digest)
    assert parsed.reference == (digest or tag)


BAD_REFERENCES = [
    ("", "empty"),
    (" busybox", "whitespace"),
    ("Busybox", "lowercase"),
    ("busybox:", "tag ''"),
    ("busybox:-x", "tag '-x'"),
    ("busybox:" + "a" * 129, "at most 128"),
    ("busybox@sha256:abc", "64 lowercase hex"),
    ("busybox@md5:" + "a" * 32, "sha256"),
    ("example.com//x", "empty component"),
    ("example.com/", "empty"),
    ("a/-b", "'-b'"),
    ("a/b_", "'b_'"),
    ("exa mple.com/x", "whitespace"),
    ("bad_host:5000/x", "host"),
]


@pytest.mark.parametrize(("ref", "says"), BAD_REFERENCES)
def test_parse_reference_refuses(ref: str, says: str) -> None:
    with pytest.raises(ResolveError) as info:
        parse_reference(ref)
    assert says in info.value.message
    assert info.value.hint and "[HOST[:PORT]/]NAME[:TAG]" in info.value.hint


PLATFORMS = [
    # target, candidate, accepted
    ("linux/amd64", Platform("linux", "amd64"), True),
    ("linux/amd64", Platform("linux", "arm64", "v8"), False),
    ("linux/arm64", Platform("linux", "arm64", "v8"), True),
    ("linux/arm64", Platform("linux", "arm64"), True),
    ("linux/arm64/v8", Platform("linux", "arm64"), True),  # arm64 without variant is v8
    ("linux/arm64/v8", Platform("linux", "arm64", "v9"), False),
    ("linux/arm64", Platform("windows", "arm64"), False),
    ("linux/aarch64", Platform("linux", "arm64"), True),  # aliases normalized
    ("linux/x86_64", Platform("linux", "amd64"), True),
    ("linux/amd64", Platform("unknown", "unknown"), False),  # attestation manifests
]


@pytest.mark.parametrize(("target", "candidate", "accepted"), PLATFORMS)
def test_platform_matching(target: str, candidate: Platform, accepted: bool) -> None:
    assert parse_platform(target).accepts(candidate) is accepted


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "linux/arm64/v8/x", ""])
def test_parse_platform_refuses(text: str) -> None:
    with pytest.raises(ResolveError, match="os/arch"):
        parse_platform(text)


# ============================================================================ registry: no service


def test_unreachable_registry_is_named_with_the_timeout() -> None:
    with pytest.raises(ResolveError) as info:
        resolve_image(img("127.0.0.1:1/x/y:1"), "linux/amd64", timeout=2)
    msg = info.value.message
    assert "127.0.0.1:1" in msg and "2s" in msg and "Connection refused" in msg
    assert info.value.hint and "registry address" in info.value.hint
    assert info.value.exit_code == 2


def test_a_registry_that_never_answers_times_out() -> None:
    """The call returns (with an error) instead of hanging: the timeout bounds each read."""
    with sup.silent_server() as host, pytest.raises(ResolveError) as info:
        resolve_image(img(f"{host}/x/y:1"), "linux/amd64", timeout=1)
    assert f"registry {host} did not answer within the timeout of 1s" in info.value.message


def test_a_loopback_registry_without_tls_needs_no_insecure() -> None:
    """As Docker does: a registry on 127.0.0.0/8 that does not speak TLS is used over HTTP."""
    with sup.fake_registry({}) as host, pytest.raises(ResolveError) as info:
        resolve_image(img(f"{host}/x/y:1", insecure=False), "linux/amd64", timeout=5)
    assert "TLS" not in info.value.message
    assert f"not found on registry {host}" in info.value.message  # its HTTP 404, over HTTP


def _manifest_route(
    repo: str, reference: str, body: bytes, media_type: str, claimed: str | None
) -> dict[str, tuple[int, dict[str, str], bytes]]:
    headers = {"Content-Type": media_type}
    if claimed:
        headers["Docker-Content-Digest"] = claimed
    return {f"/v2/{repo}/manifests/{reference}": (200, headers, body)}


def test_registry_digest_header_is_checked_against_the_bytes() -> None:
    image = sup.multi_arch()
    body = image.manifests["linux/amd64"]
    lie = sup.digest_of(b"something else")
    routes = _manifest_route("x/y", "1", body, sup.OCI_MANIFEST, lie)
    with sup.fake_registry(routes) as host, pytest.raises(CheckFailed) as info:
        resolve_image(img(f"{host}/x/y:1"), "linux/amd64", timeout=5)
    msg = info.value.message
    assert f"the registry claims {lie}" in msg and sup.digest_of(body) in msg
    assert f"image {host}/x/y:1" in msg


def test_registry_bytes_must_hash_to_the_digest_asked_for() -> None:
    """Without a digest header too: a manifest fetched by digest is hashed here."""
    image = sup.multi_arch()
    body = image.manifests["linux/amd64"]
    asked = sup.digest_of(b"the one we wanted")
    routes = _manifest_route("x/y", asked, body, sup.OCI_MANIFEST, None)
    with sup.fake_registry(routes) as host, pytest.raises(CheckFailed) as info:
        resolve_image(img(f"{host}/x/y@{asked}"), "linux/amd64", timeout=5)
    assert f"it was asked for by {asked}" in info.value.message


def test_registry_index_entry_bytes_are_checked() -> None:
    """An index entry whose manifest is served with other bytes is refused."""
    image = sup.multi_arch()
    amd = image.manifest_digest("linux/amd64")
    routes = {
        **_manifest_route("x/y", "1", image.index, sup.OCI_INDEX, image.index_digest),
        **_manifest_route("x/y", amd, image.manifests["linux/arm64/v8"], sup.OCI_MANIFEST, None),
    }
    with sup.fake_registry(routes) as host, pytest.raises(CheckFailed) as info:
        resolve_image(img(f"{host}/x/y:1"), "linux/amd64", timeout=5)
    assert amd in info.value.message


def test_registry_schema1_is_refused_clearly() -> None:
    body = json.dumps({"schemaVersion": 1, "name": "x/y", "tag": "1", "fsLayers": []}).encode()
    mt = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    routes = _manifest_route("x/y", "1", body, mt, sup.digest_of(body))
    with sup.fake_registry(routes) as host, pytest.raises(ResolveError) as info:
        resolve_image(img(f"{host}/x/y:1"), "linux/amd64", timeout=5)
    assert "schema 1" in info.value.message


# ============================================================================ registry: real


@pytest.fixture(scope="module")
def pushed_busybox(
    docker_client: docker.DockerClient, registry: str, busybox_image: str
) -> Iterator[str]:
    """The busybox image pushed by the real engine to the real registry; its reference."""
    repo = f"{registry}/airgap-test/resolve-images-{RUN}"
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
        image = sup.multi_arch(docker=kind == "docker", marker=f"{kind} {RUN}")
        repo = f"airgap-test/resolve-multi-{kind}-{RUN}"
        sup.push_multi_arch(registry, repo, "v1", image)
        out[kind] = (f"{registry}/{repo}:v1", image)
    return out


@pytest.mark.services
def test_registry_image_by_tag_matches_skopeo(
    pushed_busybox: str, docker_client: docker.DockerClient
) -> None:
    locked = resolve_image(img(pushed_busybox), "linux/amd64", timeout=10)
    inspected = skopeo("inspect", "--tls-verify=false", f"docker://{pushed_busybox}")
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{pushed_busybox}")
    assert locked.manifest_digest == inspected["Digest"]
    assert locked.index_digest is None
    assert locked.media_type == raw["mediaType"]
    assert locked.platform == "linux/amd64"
    assert locked.layers == tuple(inspected["Layers"])
    assert locked.size == raw["config"]["size"] + sum(la["size"] for la in raw["layers"])
    # pushing keeps the image config: its digest is the engine's image ID
    assert locked.config_digest == docker_client.images.get(pushed_busybox).id
    assert LockedImage.from_json(json.loads(json.dumps(locked.to_json()))) == locked


@pytest.mark.services
def test_registry_image_by_digest_and_pins(pushed_busybox: str) -> None:
    by_tag = resolve_image(img(pushed_busybox), "linux/amd64")
    assert by_tag.manifest_digest
    name = pushed_busybox.rsplit(":", 1)[0]
    by_digest = resolve_image(img(f"{name}@{by_tag.manifest_digest}"), "linux/amd64")
    assert by_digest.manifest_digest == by_tag.manifest_digest
    pinned = resolve_image(img(pushed_busybox, digest=by_tag.manifest_digest), "linux/amd64")
    assert pinned == by_tag
    wrong = "sha256:" + "0" * 64
    with pytest.raises(PinMismatch) as info:
        resolve_image(img(pushed_busybox, digest=wrong), "linux/amd64")
    msg = info.value.message
    assert f"expected {wrong}" in msg and by_tag.manifest_digest in msg and pushed_busybox in msg
    assert info.value.exit_code == 1


@pytest.mark.services
def test_registry_single_manifest_of_another_platform_fails(pushed_busybox: str) -> None:
    with pytest.raises(CheckFailed) as info:
        resolve_image(img(pushed_busybox), "linux/arm64")
    msg = info.value.message
    assert pushed_busybox in msg
    assert "is for linux/amd64, but the target platform is linux/arm64" in msg
    assert info.value.hint and "linux/arm64" in info.value.hint


@pytest.mark.services
@pytest.mark.parametrize("kind", ["oci", "docker"])
@pytest.mark.parametrize(
    ("target", "entry"),
    [
        ("linux/amd64", "linux/amd64"),
        ("linux/arm64", "linux/arm64/v8"),
        ("linux/arm64/v8", "linux/arm64/v8"),
    ],
)
def test_registry_multi_arch_index_chooses_the_platform(
    multi_arch_pushed: dict[str, tuple[str, sup.MultiArch]], kind: str, target: str, entry: str
) -> None:
    ref, image = multi_arch_pushed[kind]
    locked = resolve_image(img(ref), target)
    assert locked.index_digest == image.index_digest
    assert locked.manifest_digest == image.manifest_digest(entry)
    assert locked.config_digest == sup.digest_of(image.configs[entry])
    assert locked.platform == entry
    assert locked.layers == (sup.digest_of(image.layer),)
    assert locked.size == len(image.configs[entry]) + len(image.layer)
    assert locked.media_type == (sup.DOCKER_MANIFEST if kind == "docker" else sup.OCI_MANIFEST)
    # skopeo, the independent reader, agrees on the index digest the tag points at
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}")
    assert {m["digest"] for m in raw["manifests"]} == {
        image.manifest_digest(p) for p in image.manifests
    }


@pytest.mark.services
def test_registry_index_pins_and_missing_platform(
    multi_arch_pushed: dict[str, tuple[str, sup.MultiArch]],
) -> None:
    ref, image = multi_arch_pushed["oci"]
    # a pin may name the index or the platform manifest
    assert resolve_image(img(ref, digest=image.index_digest), "linux/arm64")
    assert resolve_image(img(ref, digest=image.manifest_digest("linux/arm64/v8")), "linux/arm64")
    with pytest.raises(PinMismatch) as pin:
        resolve_image(img(ref, digest=image.manifest_digest("linux/amd64")), "linux/arm64")
    assert image.manifest_digest("linux/arm64/v8") in pin.value.message
    assert image.index_digest in pin.value.message
    with pytest.raises(CheckFailed) as info:
        resolve_image(img(ref), "linux/ppc64le")
    msg = info.value.message
    assert "platform linux/ppc64le is not in index" in msg
    assert "it has linux/amd64, linux/arm64/v8" in msg and ref in msg


@pytest.mark.services
def test_registry_unknown_repository_and_tag(registry: str, pushed_busybox: str) -> None:
    repo = f"airgap-test/no-such-repo-{RUN}"
    with pytest.raises(ResolveError) as info:
        resolve_image(img(f"{registry}/{repo}:1"), "linux/amd64")
    assert f"repository {repo} is not on registry {registry}" in info.value.message
    name = pushed_busybox.rsplit(":", 1)[0]
    with pytest.raises(ResolveError) as info:
        resolve_image(img(f"{name}:no-such-tag"), "linux/amd64")
    msg = info.value.message
    assert "no-such-tag is not on registry" in msg and "MANIFEST_UNKNOWN" in msg
    assert "has 1 tag: v1" in msg  # the tags the repository does have


# ============================================================================ docker engine


@pytest.mark.services
def test_docker_engine_image(docker_client: docker.DockerClient, busybox_image: str) -> None:
    engine = docker_client.images.get(busybox_image)
    locked = resolve_image(img(busybox_image, "docker"), "linux/amd64")
    assert locked.config_digest == engine.id
    assert locked.platform == "linux/amd64"
    assert locked.layers == tuple(engine.attrs["RootFS"]["Layers"])
    assert locked.size == engine.attrs["Size"]
    assert locked.manifest_digest is None  # never pushed under this repository
    # a pin may be the image ID
    assert resolve_image(img(busybox_image, "docker", digest=engine.id), "linux/amd64") == locked
    with pytest.raises(PinMismatch, match=f"expected sha256:0{{64}}.*{engine.id}"):
        resolve_image(img(busybox_image, "docker", digest="sha256:" + "0" * 64), "linux/amd64")
    with pytest.raises(CheckFailed) as info:
        resolve_image(img(busybox_image, "docker"), "linux/arm64")
    assert "is for linux/amd64, but the target platform is linux/arm64" in info.value.message


@pytest.mark.services
def test_docker_engine_image_pushed_has_its_manifest_digest(pushed_busybox: str) -> None:
    from_registry = resolve_image(img(pushed_busybox), "linux/amd64")
    from_engine = resolve_image(img(pushed_busybox, "docker"), "linux/amd64")
    assert from_engine.manifest_digest == from_registry.manifest_digest
    assert from_engine.config_digest == from_registry.config_digest


@pytest.mark.services
def test_docker_engine_unknown_image(docker_client: docker.DockerClient) -> None:
    ref = f"airgap-test/no-such-image-{RUN}:1"
    with pytest.raises(ResolveError) as info:
        resolve_image(img(ref, "docker"), "linux/amd64")
    assert f"image {ref}: no such image in the Docker engine at DOCKER_HOST=" in info.value.message
    assert info.value.hint and "docker pull" in info.value.hint


def test_docker_engine_not_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = f"unix://{tmp_path}/no/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    with pytest.raises(ResolveError) as info:
        resolve_image(img("busybox:1", "docker"), "linux/amd64", timeout=2)
    assert f"cannot reach the Docker engine at DOCKER_HOST={host}" in info.value.message
    assert info.value.hint and "start a Docker engine" in info.value.hint


# ============================================================================ OCI layout


@pytest.mark.services
def test_oci_layout_written_by_skopeo(pushed_busybox: str, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    skopeo_copy("--src-tls-verify=false", f"docker://{pushed_busybox}", f"oci:{layout}:v1")
    locked = resolve_image(img("airgap/busybox:v1", "oci-layout", path=layout), "linux/amd64")
    inspected = skopeo("inspect", f"oci:{layout}:v1")
    assert locked.manifest_digest == inspected["Digest"]
    assert locked.layers == tuple(inspected["Layers"])
    assert locked.platform == "linux/amd64"
    assert locked.media_type == "application/vnd.oci.image.manifest.v1+json"  # skopeo converts


@pytest.mark.services
def test_oci_layout_multi_arch_written_by_skopeo(
    multi_arch_pushed: dict[str, tuple[str, sup.MultiArch]], tmp_path: Path
) -> None:
    ref, image = multi_arch_pushed["oci"]
    layout = tmp_path / "layout"
    skopeo_copy("--all", "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:multi")
    for target, entry in (("linux/amd64", "linux/amd64"), ("linux/arm64", "linux/arm64/v8")):
        locked = resolve_image(img("x:multi", "oci-layout", path=layout), target)
        assert locked.index_digest == image.index_digest  # --all keeps every digest
        assert locked.manifest_digest == image.manifest_digest(entry)
    with pytest.raises(CheckFailed, match="it has linux/amd64, linux/arm64/v8"):
        resolve_image(img("x:multi", "oci-layout", path=layout), "linux/ppc64le")


def test_oci_layout_nested_index_and_names(tmp_path: Path) -> None:
    image = sup.multi_arch()
    outer = sup.canonical(
        {
            "schemaVersion": 2,
            "mediaType": sup.OCI_INDEX,
            "manifests": [sup.descriptor(sup.OCI_INDEX, image.index)],
        }
    )
    blobs = [image.layer, *image.configs.values(), *image.manifests.values(), image.index, outer]
    amd = image.manifests["linux/amd64"]
    entries = [
        sup.named(sup.descriptor(sup.OCI_INDEX, outer), "registry.example.com/team/app:1.0"),
        sup.named(sup.descriptor(sup.OCI_MANIFEST, amd), "amd-only"),
    ]
    layout = sup.write_oci_layout(tmp_path / "l", blobs, entries)
    # the full ref as the annotation
    locked = resolve_image(
        img("registry.example.com/team/app:1.0", "oci-layout", path=layout), "linux/arm64"
    )
    assert locked.index_digest == sup.digest_of(outer)  # the outermost index the name points at
    assert locked.manifest_digest == image.manifest_digest("linux/arm64/v8")
    # the tag as the annotation; a single manifest has its config checked
    locked = resolve_image(img("anything:amd-only", "oci-layout", path=layout), "linux/amd64")
    assert locked.manifest_digest == sup.digest_of(amd) and locked.index_digest is None
    with pytest.raises(
        CheckFailed, match="is for linux/amd64, but the target platform is linux/arm64"
    ):
        resolve_image(img("anything:amd-only", "oci-layout", path=layout), "linux/arm64")
    with pytest.raises(ResolveError) as info:
        resolve_image(img("app:2.0", "oci-layout", path=layout), "linux/amd64")
    msg = info.value.message
    assert "no image named" in msg and "2.0" in msg
    assert "amd-only, registry.example.com/team/app:1.0" in msg


def test_oci_layout_single_unnamed_entry_is_used(tmp_path: Path) -> None:
    image = sup.multi_arch()
    blobs = [image.layer, *image.configs.values(), *image.manifests.values(), image.index]
    layout = sup.write_oci_layout(
        tmp_path / "l", blobs, [sup.descriptor(sup.OCI_INDEX, image.index)]
    )
    locked = resolve_image(img("whatever:1", "oci-layout", path=layout), "linux/amd64")
    assert locked.manifest_digest == image.manifest_digest("linux/amd64")
    # a single entry named otherwise is used only when the ref names no tag
    tagged = sup.multi_arch_layout(tmp_path / "n", image, name="v1")
    assert resolve_image(img("app", "oci-layout", path=tagged), "linux/amd64").index_digest
    with pytest.raises(ResolveError, match="it has v1"):
        resolve_image(img("app:v2", "oci-layout", path=tagged), "linux/amd64")


def test_oci_layout_pin(tmp_path: Path) -> None:
    image = sup.multi_arch()
    layout = sup.multi_arch_layout(tmp_path / "l", image)
    ok = resolve_image(
        img("x:v1", "oci-layout", path=layout, digest=image.index_digest), "linux/amd64"
    )
    assert ok.manifest_digest == image.manifest_digest("linux/amd64")
    with pytest.raises(PinMismatch, match=r"expected sha256:0{64}"):
        resolve_image(
            img("x:v1", "oci-layout", path=layout, digest="sha256:" + "0" * 64), "linux/amd64"
        )


def test_oci_layout_bad_input(tmp_path: Path) -> None:
    image = sup.multi_arch()

    def resolve(layout: Path, platform: str = "linux/amd64") -> LockedImage:
        return resolve_image(img("x:v1", "oci-layout", path=layout), platform)

    with pytest.raises(ResolveError, match="does not exist"):
        resolve(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ResolveError, match="is not a folder"):
        resolve(tmp_path / "file")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ResolveError, match="not an OCI image layout: oci-layout is missing"):
        resolve(empty)
    bad = sup.multi_arch_layout(tmp_path / "bad", image)
    (bad / "index.json").write_text("{not json")
    with pytest.raises(ResolveError, match=r"index\.json .* is not JSON"):
        resolve(bad)

    tampered = sup.multi_arch_layout(tmp_path / "tampered", image)
    amd = image.manifest_digest("linux/amd64")
    blob = tampered / "blobs" / "sha256" / amd.split(":")[1]
    blob.write_bytes(blob.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion":3'))
    with pytest.raises(CheckFailed) as info:
        resolve(tampered)
    assert "does not match its digest" in info.value.message and amd in info.value.message

    escaping = sup.multi_arch_layout(tmp_path / "escaping", image)
    outside = tmp_path / "outside"
    outside.write_bytes(image.manifests["linux/amd64"])
    blob = escaping / "blobs" / "sha256" / amd.split(":")[1]
    blob.unlink()
    blob.symlink_to(outside)
    with pytest.raises(ResolveError, match="outside the layout"):
        resolve(escaping)

    incomplete = sup.multi_arch_layout(tmp_path / "incomplete", image)
    (incomplete / "blobs" / "sha256" / sup.digest_of(image.layer).split(":")[1]).unlink()
    with pytest.raises(ResolveError, match=r"blob sha256:\w+ is missing"):
        resolve(incomplete)

    evil = sup.write_oci_layout(
        tmp_path / "evil",
        [],
        [
            sup.named(
                {"mediaType": sup.OCI_MANIFEST, "digest": "sha256:../../etc/passwd", "size": 1},
                "v1",
            )
        ],
    )
    with pytest.raises(ResolveError, match="no valid digest"):
        resolve(evil)


# ============================================================================ docker-archive


@pytest.mark.services
def test_docker_archive_from_docker_save(
    docker_client: docker.DockerClient, busybox_image: str, tmp_path: Path
) -> None:
    engine = docker_client.images.get(busybox_image)
    archive = tmp_path / "busybox.tar"
    with archive.open("wb") as fh:  # saved by this tag: RepoTags names it (Image.save: the first)
        for chunk in docker_client.api.get_image(busybox_image):
            fh.write(chunk)
    locked = resolve_image(img(busybox_image, "docker-archive", path=archive), "linux/amd64")
    assert locked.config_digest == engine.id
    assert locked.layers == tuple(engine.attrs["RootFS"]["Layers"])
    assert locked.platform == "linux/amd64"
    assert locked.manifest_digest is None
    assert locked.size >= engine.attrs["Size"]  # config + layer tars (headers, metadata)
    with pytest.raises(CheckFailed, match="but the target platform is linux/arm64"):
        resolve_image(img(busybox_image, "docker-archive", path=archive), "linux/arm64")
    with pytest.raises(ResolveError, match=f"it has {busybox_image} "):
        resolve_image(img("airgap-test/other:1", "docker-archive", path=archive), "linux/amd64")
    # Image.save() saves by ID: no RepoTags, and the only image is taken whatever the ref
    by_id = tmp_path / "by-id.tar"
    with by_id.open("wb") as fh:
        for chunk in engine.save():
            fh.write(chunk)
    assert resolve_image(img("any:1", "docker-archive", path=by_id), "linux/amd64") == LockedImage(
        **{**locked.__dict__, "ref": "any:1"}
    )


@pytest.mark.parametrize("oci_names", [False, True], ids=["legacy", "docker25"])
def test_docker_archive_hand_made(tmp_path: Path, oci_names: bool) -> None:
    archive = tmp_path / "a.tar"
    cdigest, diff_ids = sup.write_docker_archive(
        archive, repo_tags=["team/app:1", "team/app:latest"], oci_names=oci_names
    )
    for ref in ("team/app:1", "docker.io/team/app:latest", "team/app"):
        locked = resolve_image(img(ref, "docker-archive", path=archive), "linux/amd64")
        assert locked.config_digest == cdigest
        assert locked.layers == tuple(diff_ids)
    ok = resolve_image(
        img("team/app:1", "docker-archive", path=archive, digest=cdigest), "linux/amd64"
    )
    assert ok.config_digest == cdigest
    with pytest.raises(PinMismatch, match="pin its image ID"):
        resolve_image(
            img("team/app:1", "docker-archive", path=archive, digest="sha256:" + "0" * 64),
            "linux/amd64",
        )
    with pytest.raises(ResolveError) as info:
        resolve_image(img("team/app:2", "docker-archive", path=archive), "linux/amd64")
    assert "team/app:2 is not among the RepoTags" in info.value.message
    assert "team/app:1, team/app:latest" in info.value.message


def test_docker_archive_untagged_and_platform(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    cdigest, _ = sup.write_docker_archive(archive, architecture="arm64", repo_tags=None)
    locked = resolve_image(img("any/name:1", "docker-archive", path=archive), "linux/arm64")
    assert locked.config_digest == cdigest and locked.platform == "linux/arm64"
    with pytest.raises(CheckFailed) as info:
        resolve_image(img("any/name:1", "docker-archive", path=archive), "linux/amd64")
    assert "is for linux/arm64, but the target platform is linux/amd64" in info.value.message


def test_docker_archive_bad_input(tmp_path: Path) -> None:
    def resolve(path: Path) -> LockedImage:
        return resolve_image(img("team/app:1", "docker-archive", path=path), "linux/amd64")

    with pytest.raises(ResolveError, match="does not exist"):
        resolve(tmp_path / "missing.tar")
    with pytest.raises(ResolveError, match="not a regular file"):
        resolve(tmp_path)
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(3000))
    with pytest.raises(ResolveError, match="is not a tar archive"):
        resolve(junk)
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    with pytest.raises(ResolveError, match="is not a tar archive"):
        resolve(empty)

    no_manifest = tmp_path / "no-manifest.tar"
    with tarfile.open(no_manifest, "w") as tf:
        info = tarfile.TarInfo("repositories")
        tf.addfile(info, io.BytesIO(b""))
    with pytest.raises(ResolveError, match=r"has no manifest\.json"):
        resolve(no_manifest)

    huge = tmp_path / "huge.tar"
    with tarfile.open(huge, "w") as tf:
        info = tarfile.TarInfo("manifest.json")
        info.size = MAX_DOCUMENT_BYTES + 1
        tf.addfile(info, io.BytesIO(b" " * info.size))
    with pytest.raises(ResolveError, match="refusing to read it"):
        resolve(huge)

    # a config whose bytes do not hash to its name
    archive = tmp_path / "tampered.tar"
    cdigest, _ = sup.write_docker_archive(archive, repo_tags=["team/app:1"])
    archive.write_bytes(archive.read_bytes().replace(b'"amd64"', b'"AMD64"'))
    with pytest.raises(CheckFailed) as info:
        resolve(archive)
    assert "does not match its digest" in info.value.message and cdigest in info.value.message
