"""Loading the images of a bundle into a Docker engine: :func:`load_into_docker`.

A docker-archive is built on the fly for each image (``manifest.json`` = ``[{"Config":
"blobs/sha256/<config>", "RepoTags": [ref], "Layers": ["blobs/sha256/<layer>", ...]}]``, last)
and streamed into ``client.images.load``. Config and layers go as they are in the bundle
(registry gzip layers too). Every blob is hashed while it streams and its last chunk is held
back until the digest is checked, so a corrupt blob never reaches the engine whole: the stream
stops, the engine sees a truncated archive and keeps nothing. The loaded image ID must equal the
config digest; the image is then tagged with its original reference. An image the engine has
already (same ID) is only tagged. Before loading, the engine's storage is checked for room
(:func:`check_engine_room`).
"""

from __future__ import annotations

import json
import math
import os
import socket
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from packager.bundle import layout
from packager.bundle.reader import Bundle, ConcatFile, FolderBundle, Member, TarBundle
from packager.errors import AirgapError, CheckFailed, InputError
from packager.oci.reference import Platform, docker_tag, try_parse_platform
from packager.resolve.images.common import short_reason
from packager.resolve.images.engine import docker_host_text
from packager.site.images import tarstream
from packager.site.images.listing import Blob, BundleImage, image_entries, verified_chunks
from packager.util.progress import Reporter
from packager.util.units import human_size

#: seconds the engine may take to answer a load (it unpacks every layer before it answers)
LOAD_TIMEOUT = 3 * 3600.0
#: room asked for beyond the estimate of what a load writes
ROOM_MARGIN = 1.05
#: how much a zstd (or unknown) compressed layer is assumed to grow when unpacked
UNPACK_RATIO = 3

_GZIP_MAGIC = b"\x1f\x8b"

ENGINE_HINT = (
    "start the Docker engine (`sudo systemctl start docker`, or `sudo dockerd &`) and check it "
    "with `docker info`; if it listens elsewhere, point DOCKER_HOST at its socket "
    "(export DOCKER_HOST=unix:///run/docker.sock)"
)


class EngineError(InputError):
    """The Docker engine cannot be used: not running, refusing, or without room."""


# ============================================================================ docker-archive


def _archive_layout(image: BundleImage, tag: str | None) -> tuple[list[Blob], bytes]:
    """The blobs a docker-archive of the platform image holds (config first) and its
    manifest.json."""
    m = image.manifest
    blobs = [m.config]
    for b in m.layers:
        if b not in blobs:
            blobs.append(b)
    doc = [
        {
            "Config": layout.blob_path(m.config.digest),
            "RepoTags": [tag] if tag else [],
            "Layers": [layout.blob_path(b.digest) for b in m.layers],
        }
    ]
    return blobs, json.dumps(doc, separators=(",", ":")).encode()


def _archive_size(blobs: list[Blob], manifest: bytes) -> int:
    dirs = 2 * tarfile.BLOCKSIZE
    members = sum(tarstream.member_size(b.size) for b in blobs)
    return dirs + members + tarstream.member_size(len(manifest)) + len(tarstream.END)


def _docker_archive(
    bundle: Bundle, image: BundleImage, tag: str | None, sent: Callable[[int], None], dest: str
) -> Iterator[bytes]:
    """A docker-archive of ``image`` built while it streams: config and layers as stored."""
    blobs, manifest = _archive_layout(image, tag)
    yield tarstream.header("blobs/", 0, directory=True)
    yield tarstream.header(layout.BLOBS_DIR + "/", 0, directory=True)
    for blob in blobs:
        what = "image config" if blob == image.manifest.config else "layer"
        yield tarstream.header(layout.blob_path(blob.digest), blob.size)
        for chunk in verified_chunks(bundle, image.ref, blob, what, dest):
            sent(len(chunk))
            yield chunk
        yield tarstream.padding(blob.size)
    yield tarstream.member("manifest.json", manifest)  # last: nothing is loadable before it
    yield tarstream.END


# ============================================================================ Docker engine


@dataclass(frozen=True)
class LoadedImage:
    """An image in the engine: ``status`` is ``loaded`` (streamed now) or ``present`` (the engine
    had this image ID already: only tagged)."""

    ref: str
    image_id: str
    config_digest: str
    tag: str | None  # what it is tagged as; None for a digest-only reference
    status: str
    bytes_sent: int

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "image_id": self.image_id,
            "config_digest": self.config_digest,
            "tag": self.tag,
            "status": self.status,
            "bytes_sent": self.bytes_sent,
        }


@dataclass(frozen=True)
class RoomCheck:
    """Free space of the engine's storage against what a load writes (an estimate)."""

    checked: bool
    needed: int
    free: int | None
    root: str | None
    driver: str | None
    reason: str  # one line: what was compared, or why it could not be

    def to_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "needed": self.needed,
            "free": self.free,
            "root": self.root,
            "driver": self.driver,
            "reason": self.reason,
        }


def connect_docker(timeout: float = 60.0) -> Any:
    """A docker SDK client for $DOCKER_HOST that has answered; an :class:`EngineError` naming
    DOCKER_HOST and how to start an engine when there is none."""
    import docker
    import docker.errors
    import requests

    try:
        return docker.from_env(timeout=max(1, math.ceil(timeout)))
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise _engine_down(exc) from None


def _engine_down(exc: BaseException) -> EngineError:
    return EngineError(
        f"cannot reach the Docker engine at {docker_host_text()}: {short_reason(exc)}",
        hint=ENGINE_HINT,
    )


def _engine_info(client: Any) -> dict[str, Any]:
    import docker.errors
    import requests

    try:
        info = client.info()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise _engine_down(exc) from None
    if not isinstance(info, dict):
        raise EngineError(f"the Docker engine at {docker_host_text()} gave no `docker info`")
    return info


def _peek(bundle: Bundle, member: Member, offset: int, n: int) -> bytes | None:
    """``n`` bytes of a member at ``offset`` (negative: from its end), without a big buffer."""
    start = offset if offset >= 0 else member.size + offset
    if start < 0 or start + n > member.size:
        return None
    try:
        if isinstance(bundle, FolderBundle):
            with (bundle.source / member.name).open("rb") as fh:
                fh.seek(start)
                return fh.read(n)
        if isinstance(bundle, TarBundle):
            with ConcatFile(bundle.parts) as raw:
                raw.seek(member.offset + start)
                return raw.read(n)
    except OSError:
        return None
    return None


def _unpacked(bundle: Bundle, blob: Blob) -> int:
    """What a layer takes unpacked: a plain tar its size; gzip its trailer's ISIZE (modulo 4 GiB,
    lifted to at least the compressed size); another compression UNPACK_RATIO times its size."""
    member = bundle.members().get(layout.blob_path(blob.digest))
    head = _peek(bundle, member, 0, 2) if member is not None else None
    if member is not None and head == _GZIP_MAGIC:
        tail = _peek(bundle, member, -4, 4)
        if tail is not None and len(tail) == 4:
            size = int.from_bytes(tail, "little")
            while size < blob.size - blob.size // 64:
                size += 1 << 32
            return size
    if blob.media_type.endswith("tar") and head != _GZIP_MAGIC:
        return blob.size
    return blob.size * UNPACK_RATIO


def room_needed(bundle: Bundle, images: list[BundleImage], driver: str | None) -> int:
    """What loading ``images`` writes into an engine's storage: the archive copy a legacy engine
    untars into DockerRootDir/tmp (Podman stages the blobs alike), plus the unpacked layers (vfs
    stores each layer as a full copy of the tree below it)."""
    total = 0
    for image in images:
        blobs, manifest = _archive_layout(image, image.ref)
        total += _archive_size(blobs, manifest)
        running = 0
        for layer in image.layers:
            u = _unpacked(bundle, layer)
            running += u
            total += running if driver == "vfs" else u
    return math.ceil(total * ROOM_MARGIN)


def _is_local(client: Any, info: dict[str, Any]) -> tuple[bool, str]:
    api = getattr(client, "api", None)
    base = getattr(api, "base_url", None)
    if isinstance(base, str):
        if base != "http+docker://localhost":  # what the SDK calls a unix socket
            return False, f"the engine ({docker_host_text()}) is not on a local unix socket"
    else:
        host = os.environ.get("DOCKER_HOST", "")
        if host and not host.startswith("unix://"):
            return False, f"the engine ({docker_host_text()}) is not on a local unix socket"
    name = info.get("Name")
    if isinstance(name, str) and name and name != socket.gethostname():
        return False, f"the engine runs on host {name!r}, not here ({socket.gethostname()!r})"
    return True, ""


def check_engine_room(
    bundle: Bundle, client: Any, images: list[BundleImage] | None = None
) -> RoomCheck:
    """Compare the free space of the engine's DockerRootDir with what loading ``images`` (default:
    all of the bundle's) writes there. Raises :class:`EngineError` when it does not fit; returns
    ``checked=False`` with the reason when the engine's storage is not visible from here (a
    remote engine, a VM, another host name)."""
    info = _engine_info(client)
    images = image_entries(bundle) if images is None else images
    root = info.get("DockerRootDir") if isinstance(info.get("DockerRootDir"), str) else None
    driver = info.get("Driver") if isinstance(info.get("Driver"), str) else None
    needed = room_needed(bundle, images, driver)
    if not images:
        return RoomCheck(True, 0, None, root, driver, "nothing to load")
    local, why = _is_local(client, info)
    if local and root is None:
        local, why = False, "the engine does not say where its storage is (no DockerRootDir)"
    if local and root is not None and not os.path.isdir(root):
        local, why = False, f"its storage {root} is not visible from here"
    if not local or root is None:
        return RoomCheck(
            False,
            needed,
            None,
            root,
            driver,
            f"cannot check the room in the engine's storage: {why}; the load needs about "
            f"{human_size(needed)} there",
        )
    try:
        st = os.statvfs(root)
    except OSError as exc:
        return RoomCheck(
            False,
            needed,
            None,
            root,
            driver,
            f"cannot check the room in the engine's storage {root}: {exc.strerror or exc}; "
            f"the load needs about {human_size(needed)} there",
        )
    free = st.f_bavail * st.f_frsize
    text = (
        f"the engine's storage {root} (driver {driver or '?'}) has {human_size(free)} free; "
        f"loading {len(images)} image{'s' if len(images) != 1 else ''} needs about "
        f"{human_size(needed)}"
    )
    if free < needed:
        raise EngineError(
            f"not enough room: {text}",
            hint="free space there (`docker system prune`, remove unused images) or move the "
            "engine's data-root to a larger disk; then run the load again",
        )
    return RoomCheck(True, needed, free, root, driver, text)


def _check_platform(image: BundleImage, info: dict[str, Any]) -> None:
    engine = Platform.of(info.get("OSType"), info.get("Architecture"))
    wanted = try_parse_platform(image.platform)
    if wanted is None:
        return
    if engine is None or (wanted.os, wanted.architecture) == (engine.os, engine.architecture):
        return
    raise EngineError(
        f"image {image.ref} is for {image.platform}; the Docker engine at {docker_host_text()} "
        f"runs {engine}: it could not run it",
        hint="use the bundle built for this machine's platform, or push the image to a registry "
        "instead (airgap install --registry)",
    )


def load_into_docker(
    bundle: Bundle,
    client: Any,
    *,
    progress: Reporter | None = None,
    any_platform: bool = False,
) -> list[LoadedImage]:
    """Load every image of ``bundle`` into the engine of ``client`` (a docker SDK client, e.g.
    :func:`connect_docker`), tagged with its original reference.

    Checks first that each image's platform is the engine's (unless ``any_platform``) and that the
    engine's storage has room (:func:`check_engine_room`; when it cannot tell, ``progress`` gets a
    note saying so). A blob that does not match its digest raises :class:`BlobMismatch` and the
    engine keeps nothing of that image; an engine that is not running raises
    :class:`EngineError` naming DOCKER_HOST.
    """
    reporter = progress or Reporter()
    images = image_entries(bundle)
    if not images:
        return []
    info = _engine_info(client)
    if not any_platform:
        for image in images:
            _check_platform(image, info)
    have = {i.config_digest for i in images if _engine_has(client, i.config_digest)}
    todo: list[BundleImage] = []
    for i in images:  # one load per image ID (two references may name one image)
        if i.config_digest not in have and all(t.config_digest != i.config_digest for t in todo):
            todo.append(i)
    room = check_engine_room(bundle, client, todo)
    if not room.checked:
        reporter.note(room.reason)
    out: list[LoadedImage] = []
    for image in images:
        if image.config_digest in have:
            tag = _tag(client, image)
            out.append(
                LoadedImage(image.ref, image.config_digest, image.config_digest, tag, "present", 0)
            )
        else:
            out.append(_load_one(bundle, client, image, info, reporter))
            have.add(image.config_digest)
    return out


def _engine_has(client: Any, image_id: str) -> bool:
    import docker.errors
    import requests

    try:
        found = client.images.get(image_id)
    except docker.errors.ImageNotFound:
        return False
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise _engine_down(exc) from None
    return bool(found.id == image_id)


def _engine_failed(image: BundleImage, what: str, exc: BaseException) -> EngineError:
    import docker.errors

    if isinstance(exc, docker.errors.APIError):
        reason = str(exc.explanation or exc)
    else:
        reason = short_reason(exc)
    return EngineError(
        f"image {image.ref}: the Docker engine at {docker_host_text()} failed while {what}: "
        f"{reason}",
        hint="check the engine's log (`journalctl -u docker`) and `docker info`; " + ENGINE_HINT,
    )


def _load_one(
    bundle: Bundle, client: Any, image: BundleImage, info: dict[str, Any], reporter: Reporter
) -> LoadedImage:
    import docker.errors
    import requests

    tag_parts = docker_tag(image.ref)
    tag = f"{tag_parts[0]}:{tag_parts[1]}" if tag_parts else None
    blobs, manifest = _archive_layout(image, tag)
    reporter.phase(f"load {image.ref}", _archive_size(blobs, manifest))
    sent = 0

    def count(n: int) -> None:
        nonlocal sent
        sent += n
        reporter.advance(n)

    dest = f"the Docker engine ({docker_host_text()})"
    api = getattr(client, "api", None)
    old_timeout = getattr(api, "timeout", None)
    if api is not None:
        api.timeout = max(LOAD_TIMEOUT, old_timeout or 0)  # it answers once every layer is in
    try:
        client.images.load(_docker_archive(bundle, image, tag, count, dest))
    except AirgapError:
        raise
    except docker.errors.ImageLoadError as exc:
        raise EngineError(
            f"image {image.ref}: the Docker engine at {docker_host_text()} refused the image: "
            f"{exc}",
            hint="the engine's log (`journalctl -u docker`) says more",
        ) from None
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise _engine_failed(image, "loading the image", exc) from None
    finally:
        if api is not None:
            api.timeout = old_timeout
    image_id = _loaded_id(client, image, info)
    _tag(client, image)
    return LoadedImage(image.ref, image_id, image.config_digest, tag, "loaded", sent)


def _loaded_id(client: Any, image: BundleImage, info: dict[str, Any]) -> str:
    """The loaded image's ID, which must be its config digest (the legacy image store's rule)."""
    import docker.errors
    import requests

    try:
        found = client.images.get(image.config_digest)
    except docker.errors.ImageNotFound:
        raise EngineError(
            f"image {image.ref}: the engine accepted the archive but has no image "
            f"{image.config_digest}",
            hint="an engine with the containerd image store names images by manifest digest: "
            "check `docker images --digests`",
        ) from None
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise _engine_failed(image, "looking up the loaded image", exc) from None
    if found.id != image.config_digest:
        raise CheckFailed(
            f"image {image.ref}: the engine's image ID is {found.id}, the bundle's config digest "
            f"is {image.config_digest}",
            hint="the engine changed the image while loading it; report this with `docker info`",
        )
    return str(found.id)


def _tag(client: Any, image: BundleImage) -> str | None:
    """Tag the image ID with the original reference (moving the tag if it pointed elsewhere)."""
    import docker.errors
    import requests

    parts = docker_tag(image.ref)
    if parts is None:
        return None
    repo, tag = parts
    try:
        client.api.tag(image.config_digest, repo, tag, force=True)
        found = client.images.get(f"{repo}:{tag}")
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise _engine_failed(image, f"tagging it {repo}:{tag}", exc) from None
    if found.id != image.config_digest:
        raise EngineError(
            f"image {image.ref}: after tagging, {repo}:{tag} names {found.id}, not "
            f"{image.config_digest}"
        )
    return f"{repo}:{tag}"
