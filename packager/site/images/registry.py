"""Pushing the images of a bundle to a registry: :func:`push_to_registry`.

Through :class:`packager.oci.registry.RegistryClient` (TLS, loopback HTTP, logins, the redirect
rules), per image: every config and layer blob (a HEAD first: blobs the registry has
are not sent again, so a second run resumes an interrupted push), then every manifest by digest
as its raw bytes (never re-serialized), then the kept index (if any) by digest, then the tag.
The digest the registry reports for the tag must equal the bundle's. Connection errors and
HTTP 5xx/408/429 are retried with exponential backoff; a refusal names the registry's own
error message. The destination is the original repository path on the new host:
``docker.io/library/busybox:1.36`` (or ``busybox:1.36``) pushed to ``10.0.0.5:5000`` becomes
``10.0.0.5:5000/library/busybox:1.36``; ``ghcr.io/org/app:2`` becomes ``10.0.0.5:5000/org/app:2``.
A reference with only a digest is pushed by digest, without a tag.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from packager.bundle import layout
from packager.bundle.reader import Bundle
from packager.bundle.store import BlobMismatch
from packager.errors import CheckFailed, InputError, ResolveError
from packager.oci.credentials import Credentials
from packager.oci.reference import is_registry_host, parse_reference
from packager.oci.registry import RegistryClient, RegistryError, RegistryOptions
from packager.resolve.images.common import MAX_DOCUMENT_BYTES
from packager.site.images.listing import (
    Blob,
    BundleImage,
    ImageError,
    image_entries,
    verified_chunks,
)
from packager.util.progress import Reporter

_MANIFEST_ACCEPT = ", ".join(layout.IMAGE_MANIFEST_TYPES + layout.IMAGE_INDEX_TYPES)

T = TypeVar("T")


@dataclass(frozen=True)
class PushedImage:
    """An image in the destination registry: ``destination`` is where (HOST/REPO:TAG, or
    HOST/REPO@DIGEST for a digest-only reference), ``digest`` what the tag points at (the kept
    index, else the platform manifest) as the registry reported it after the push."""

    ref: str
    destination: str
    digest: str
    manifest_digest: str
    index_digest: str | None
    uploaded: tuple[str, ...]  # blobs sent now
    mounted: tuple[str, ...]  # blobs mounted from another repository of the push (not sent)
    present: tuple[str, ...]  # blobs the repository had already (not sent)
    bytes_uploaded: int
    retries: int

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "destination": self.destination,
            "digest": self.digest,
            "manifest_digest": self.manifest_digest,
            "index_digest": self.index_digest,
            "uploaded": list(self.uploaded),
            "mounted": list(self.mounted),
            "present": list(self.present),
            "bytes_uploaded": self.bytes_uploaded,
            "retries": self.retries,
        }


def _registry_host(registry: str) -> str:
    text = registry.strip()
    if "://" in text:
        raise InputError(
            f"registry {registry!r}: give HOST[:PORT] without a scheme",
            hint="e.g. --registry 10.0.0.5:5000 (add --insecure for plain HTTP)",
        )
    if "/" in text or not is_registry_host(text):
        raise InputError(
            f"registry {registry!r} is not HOST[:PORT]",
            hint="images keep their repository path: give only the registry's address, "
            "e.g. 10.0.0.5:5000",
        )
    return text


def _options(insecure: bool, timeout: float, ca_cert: Path | None) -> RegistryOptions:
    return RegistryOptions(insecure=insecure, ca_cert=ca_cert, read_timeout=timeout)


def check_registry(
    registry: str, *, insecure: bool, timeout: float = 15.0, ca_cert: Path | None = None
) -> None:
    """The registry answers its ``/v2/`` endpoint and takes the login, before any blob is read
    (:meth:`packager.oci.registry.RegistryClient.check`); RegistryError naming the registry and
    the cause (refused, TLS, a wrong password, a timeout)."""
    host = _registry_host(registry)
    with RegistryClient(host, "library", _options(insecure, timeout, ca_cert)) as client:
        try:
            client.check()
        except RegistryError as exc:
            exc.message += "; nothing was changed"
            raise


@dataclass
class _Remote:
    """One repository on the destination registry (packager.oci.registry), with retries."""

    client: RegistryClient
    retries: int
    backoff: float
    ref: str
    retried: int = 0

    def retry(self, what: str, fn: Callable[[], T]) -> T:
        """``fn``, again after a transient failure (its RegistryError says so), at most
        ``retries`` more times, waiting ``backoff`` seconds doubled each time."""
        attempt = 0
        while True:
            try:
                return fn()
            except RegistryError as exc:
                if not exc.transient or attempt >= self.retries:
                    tries = f" (after {attempt + 1} attempts)" if attempt else ""
                    raise type(exc)(
                        f"image {self.ref}: {exc.message}{tries}", hint=exc.hint
                    ) from None
            time.sleep(self.backoff * 2**attempt)
            attempt += 1
            self.retried += 1

    def has_blob(self, digest: str) -> bool | None:
        """True / False; None when the registry's HEAD answer says neither (the upload tells)."""
        try:
            return self.client.blob_size(digest) is not None
        except RegistryError:
            return None

    def has_manifest(self, digest: str) -> bool:
        try:
            return self.client.manifest_digest(digest, _MANIFEST_ACCEPT) == digest
        except RegistryError:
            return False


def push_to_registry(
    bundle: Bundle,
    registry: str,
    *,
    insecure: bool,
    retries: int = 3,
    progress: Reporter | None = None,
    timeout: float = 60.0,
    backoff: float = 0.5,
    credentials: tuple[str, str] | None = None,
    ca_cert: Path | None = None,
) -> list[PushedImage]:
    """Push every image of ``bundle`` to ``registry`` (HOST[:PORT]) with its digests unchanged.

    ``insecure``: plain HTTP to a host that is not loopback (packager.oci.registry).
    ``retries``: how many times a transient failure (connection error, timeout, HTTP
    5xx/408/429) is retried, waiting ``backoff`` seconds doubled each time. ``credentials``
    (user, password), else the environment or the Docker config, are used when the registry
    asks. Raises
    :class:`RegistryError` with the registry's own error message when it refuses,
    :class:`BlobMismatch` for a corrupt blob (sent no further), :class:`CheckFailed` when the
    registry reports another digest than the bundle's.
    """
    host = _registry_host(registry)
    reporter = progress or Reporter()
    known: dict[str, str] = {}  # blob -> a repository of this push that holds it
    login = Credentials(*credentials, "credentials given") if credentials else None
    options = _options(insecure, timeout, ca_cert)
    return [
        _push_image(bundle, image, host, options, login, retries, backoff, reporter, known)
        for image in image_entries(bundle)
    ]


def _push_image(
    bundle: Bundle,
    image: BundleImage,
    host: str,
    options: RegistryOptions,
    credentials: Credentials | None,
    retries: int,
    backoff: float,
    reporter: Reporter,
    known: dict[str, str],
) -> PushedImage:
    """Push one image; ``known`` maps blobs already on the registry in this push to their
    repository (a blob shared by two images is mounted across, not sent twice)."""
    try:
        ref = parse_reference(image.ref)
    except ResolveError as exc:
        raise ImageError(exc.message, hint=exc.hint) from None
    client = RegistryClient(host, ref.repository, options, credentials=credentials, push=True)
    remote = _Remote(client, max(0, retries), backoff, image.ref)
    dest = f"{host}/{ref.repository}"
    blobs = image.blobs()
    reporter.phase(f"push {image.ref}", sum(b.size for b in blobs))
    uploaded: list[str] = []
    mounted: list[str] = []
    present: list[str] = []
    sent = 0

    def count(n: int) -> None:
        nonlocal sent
        sent += n
        reporter.advance(n)

    def push_blob(blob: Blob) -> str:
        if remote.has_blob(blob.digest):
            return "present"
        source = known.get(blob.digest)
        if source is not None and source != ref.repository and client.mount(source, blob.digest):
            return "mounted"
        what = "image config" if any(blob == m.config for m in image.manifests) else "layer"
        chunks = verified_chunks(bundle, image.ref, blob, what, f"registry {host}")

        def counted() -> Iterator[bytes]:
            for chunk in chunks:
                count(len(chunk))
                yield chunk

        client.upload_blob(blob.digest, blob.size, counted())
        return "uploaded"

    def push_manifest(blob: Blob, reference: str) -> None:
        raw = bundle.read(layout.blob_path(blob.digest), MAX_DOCUMENT_BYTES)
        got = "sha256:" + hashlib.sha256(raw).hexdigest()
        if got != blob.digest:
            raise BlobMismatch(
                f"image {image.ref}: manifest {blob.digest} in {bundle.source} hashes to {got}",
                hint="the bundle is corrupt: `airgap verify` names the damaged part",
            )
        said = client.put_manifest(reference, raw, blob.media_type)
        if said is not None and said != blob.digest:
            raise CheckFailed(
                f"image {image.ref}: registry {host} stored manifest {blob.digest} as {said}",
                hint="the registry rewrote the manifest; use a registry that stores manifests as "
                "they are (distribution, Harbor, Zot)",
            )

    top = image.top
    reference = ref.tag or top.digest
    with client:  # one HTTP session per thread
        remote.retry("reaching the registry", client.connect)
        for blob in blobs:
            how = remote.retry(f"uploading blob {blob.digest}", partial(push_blob, blob))
            {"uploaded": uploaded, "mounted": mounted, "present": present}[how].append(blob.digest)
            if how != "uploaded":
                reporter.advance(blob.size)
            known[blob.digest] = ref.repository
        for doc in [m.blob for m in image.manifests] + list(image.indexes):
            if not remote.retry(
                f"checking manifest {doc.digest}", partial(remote.has_manifest, doc.digest)
            ):
                remote.retry(
                    f"pushing manifest {doc.digest}", partial(push_manifest, doc, doc.digest)
                )
        if ref.tag:
            remote.retry(f"tagging {ref.tag}", partial(push_manifest, top, ref.tag))
        reported = remote.retry(
            f"reading back {reference}",
            partial(client.manifest_digest, reference, _MANIFEST_ACCEPT),
        )
    if reported != top.digest:
        raise CheckFailed(
            f"image {image.ref}: after the push, registry {host} reports {dest}"
            f"{':' if ref.tag else '@'}{reference} as {reported}, the bundle's digest is "
            f"{top.digest}",
            hint="the tag was moved by someone else meanwhile, or the registry rewrote the "
            "manifest; push again and compare with `skopeo inspect`",
        )
    return PushedImage(
        ref=image.ref,
        destination=f"{dest}:{ref.tag}" if ref.tag else f"{dest}@{top.digest}",
        digest=reported,
        manifest_digest=image.manifest_digest,
        index_digest=image.index.digest if image.index is not None else None,
        uploaded=tuple(uploaded),
        mounted=tuple(mounted),
        present=tuple(present),
        bytes_uploaded=sent,
        retries=remote.retried,
    )
