"""Resolve a container image to content for one target platform (``airgap lock``).

Four sources, one result (:class:`packager.resolve.lockfile.LockedImage`), one module each:

``registry`` (:mod:`.registry`)
    The OCI distribution API (packager.oci.registry). Both OCI and docker schema2 media types are asked
    for. An index (manifest list) is narrowed to the manifest of the target platform and both
    digests are recorded; a single manifest has its config read to check the platform. Every
    manifest's bytes are hashed here and compared with the digest the registry claims and the
    digest that led to it.
``docker`` (:mod:`.engine`)
    The local engine through the docker SDK (``DOCKER_HOST``). An engine image has no manifest of
    its own: the image ID (config digest) identifies it, and a ``RepoDigests`` entry of the same
    repository, when there is one, gives the manifest digest.
``oci-layout`` (:mod:`.layout`)
    An OCI image layout folder: ``index.json`` entries chosen by their
    ``org.opencontainers.image.ref.name`` annotation, nested indexes descended, every manifest and
    config read checked against its digest, blob paths kept inside the layout.
``docker-archive`` (:mod:`.archive`)
    A ``docker save`` tar, read in place (no extraction): ``manifest.json`` and the image config,
    bounded reads. Layers are recorded as the ``blobs/sha256/<hex>`` names of a Docker 25+ archive,
    else as the config's ``rootfs.diff_ids`` (for the legacy layout, ``<id>/layer.tar`` is the
    uncompressed layer, whose sha256 is its diff id), so the lock never hashes gigabytes.

What they share (verified documents, the index walk, platform choice, bounded JSON) is in
:mod:`.common`; references and platforms are :mod:`packager.oci.reference`'s, re-exported here.

Every failure is a :mod:`packager.errors` exception naming the image reference, what was expected
and what was found, with a hint: :class:`ResolveError` (exit 2) for input that cannot be read or
reached, :class:`CheckFailed` / :class:`PinMismatch` (exit 1) for a wrong platform, a pin that does
not match, or content that does not hash to its digest.
"""

from __future__ import annotations

from packager.errors import ResolveError
from packager.manifest.model import Image
from packager.oci.reference import (
    DOCKER_HUB_HOST,
    ImageReference,
    Platform,
    parse_platform,
    parse_reference,
)
from packager.resolve.images.archive import resolve_docker_archive
from packager.resolve.images.common import MAX_DOCUMENT_BYTES
from packager.resolve.images.engine import resolve_from_engine
from packager.resolve.images.layout import resolve_oci_layout
from packager.resolve.images.registry import resolve_from_registry
from packager.resolve.lockfile import LockedImage

__all__ = [
    "DOCKER_HUB_HOST",
    "MAX_DOCUMENT_BYTES",
    "ImageReference",
    "Platform",
    "parse_platform",
    "parse_reference",
    "resolve_image",
]


def resolve_image(image: Image, platform: str, *, timeout: float = 30.0) -> LockedImage:
    """Resolve ``image`` to content for the target ``platform`` (``linux/amd64``, ``linux/arm64``).

    ``timeout`` bounds each network operation (connect, and each read) against a registry or a
    Docker engine, in seconds. Raises :class:`ResolveError` when the image cannot be read or
    reached, :class:`CheckFailed` when it has no manifest for ``platform`` or content that does not
    match its digest, and :class:`PinMismatch` when ``image.digest`` pins something else.
    """
    target = parse_platform(platform)
    if image.source == "registry":
        return resolve_from_registry(image, target, timeout)
    if image.source == "docker":
        return resolve_from_engine(image, target, timeout)
    if image.source == "oci-layout":
        return resolve_oci_layout(image, target)
    if image.source == "docker-archive":
        return resolve_docker_archive(image, target)
    raise ResolveError(
        f"image {image.ref}: unknown source {image.source!r}",
        hint="from: registry | docker | oci-layout | docker-archive",
    )
