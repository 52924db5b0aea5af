"""``from: docker``: the local Docker engine through the docker SDK (``DOCKER_HOST``).

An engine image has no manifest of its own: the image ID (config digest) identifies it, and a
``RepoDigests`` entry of the same repository, when there is one, gives the manifest digest. A pin
may name either. An engine that cannot be reached is a :class:`ResolveError` naming DOCKER_HOST and
how to start one.
"""

from __future__ import annotations

import math
import os
from typing import Any

from packager.errors import PinMismatch, ResolveError
from packager.manifest.model import Image
from packager.oci.reference import SHA256_DIGEST, Platform, parse_reference
from packager.resolve.images.common import ResolveContext, check_platform, short_reason
from packager.resolve.lockfile import LockedImage


def docker_host_text() -> str:
    host = os.environ.get("DOCKER_HOST")
    return (
        f"DOCKER_HOST={host}" if host else "DOCKER_HOST unset (default unix:///var/run/docker.sock)"
    )


def docker_context(ref: str, source: str, target: Platform, **kw: Any) -> ResolveContext:
    return ResolveContext(ref, source, target, f"the Docker engine ({docker_host_text()})", **kw)


def docker_client(ctx: ResolveContext, timeout: float) -> Any:
    """A docker SDK client for $DOCKER_HOST, ``timeout`` bounding each read; a ResolveError
    naming DOCKER_HOST and how to start an engine when there is none."""
    import docker
    import docker.errors
    import requests

    where = docker_host_text()
    try:
        return docker.from_env(timeout=max(1, math.ceil(timeout)))
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise ctx.error(
            f"cannot reach the Docker engine at {where}: {short_reason(exc)}",
            hint="start a Docker engine (`sudo systemctl start docker`, or `bash scripts/services.sh "
            "start` and source the env it prints) and point DOCKER_HOST at its socket; or take the "
            "image from: registry, oci-layout or docker-archive instead",
        ) from None


def resolve_from_engine(image: Image, target: Platform, timeout: float) -> LockedImage:
    import docker
    import docker.errors
    import requests

    where = docker_host_text()
    ctx = docker_context(image.ref, image.source, target)
    client = docker_client(ctx, timeout)
    try:
        try:
            attrs: dict[str, Any] = client.images.get(image.ref).attrs
        except docker.errors.ImageNotFound:
            raise ctx.error(
                f"no such image in the Docker engine at {where}",
                hint=f"pull or build it first (`docker pull {image.ref}`), and check the name "
                "and tag with `docker images`",
            ) from None
        except docker.errors.APIError as exc:
            raise ctx.error(
                f"the Docker engine at {where} refused to inspect it: {exc.explanation or exc}",
                hint="check the image reference",
            ) from None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise ctx.error(
                f"the Docker engine at {where} did not answer within {timeout:g}s or failed: "
                f"{short_reason(exc)}",
                hint="check that the engine is running and responsive",
            ) from None
    finally:
        client.close()

    image_id = attrs.get("Id")
    if not isinstance(image_id, str) or not SHA256_DIGEST.match(image_id):
        raise ctx.error(f"the engine reports an image ID that is not a sha256 digest: {image_id!r}")
    found = Platform.of(attrs.get("Os"), attrs.get("Architecture"), attrs.get("Variant"))
    if found is None:
        raise ctx.error(f"the engine does not report the image's os/architecture ({image_id})")
    check_platform(ctx, found, f"the engine's image {image_id}")
    rootfs = attrs.get("RootFS") or {}
    layers = rootfs.get("Layers") if isinstance(rootfs, dict) else None
    if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
        layers = []
    size = attrs.get("Size")
    repo_digests = _same_repository_digests(image.ref, attrs.get("RepoDigests"))
    pin = image.digest
    manifest_digest: str | None
    if pin is not None and pin in repo_digests:
        manifest_digest = pin
    else:
        ref_digest = image.ref.split("@", 1)[1] if "@" in image.ref else None
        if ref_digest is not None and ref_digest in repo_digests:
            manifest_digest = ref_digest
        else:
            manifest_digest = repo_digests[0] if repo_digests else None
    if pin is not None and pin != image_id and pin not in repo_digests:
        raise PinMismatch(
            f"image {image.ref}: digest pin does not match: expected {pin}, the engine's image has "
            f"ID {image_id} and manifest digests {', '.join(repo_digests) or '(none for this repository)'}",
            hint="if the image changed on purpose, update digest:; otherwise pull the pinned "
            f"image (`docker pull NAME@{pin}`)",
        )
    return LockedImage(
        ref=image.ref,
        source=image.source,
        platform=str(found),
        config_digest=image_id,
        size=size if isinstance(size, int) else 0,
        manifest_digest=manifest_digest,
        index_digest=None,
        media_type=None,
        layers=tuple(layers),
    )


def _same_repository_digests(ref: str, repo_digests: object) -> list[str]:
    """Digests of ``RepoDigests`` entries (``NAME@sha256:...``) of the same repository as ``ref``."""
    try:
        want = parse_reference(ref)
    except ResolveError:
        return []  # an image ID or a local name: no repository to match
    out: list[str] = []
    for rd in repo_digests if isinstance(repo_digests, list) else ():
        if not isinstance(rd, str):
            continue
        try:
            got = parse_reference(rd)
        except ResolveError:
            continue
        if (got.host, got.repository) == (want.host, want.repository) and got.digest:
            out.append(got.digest)
    return out
