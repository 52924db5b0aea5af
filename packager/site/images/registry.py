"""Pushing the images of a bundle to a registry: :func:`push_to_registry`.

With python-dxf, per image: every config and layer blob (a HEAD first: blobs the registry has
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
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from packager.bundle import layout
from packager.bundle.reader import Bundle
from packager.bundle.store import BlobMismatch
from packager.errors import AirgapError, CheckFailed, InputError, ResolveError
from packager.oci.reference import is_registry_host, parse_reference
from packager.resolve.images.common import MAX_DOCUMENT_BYTES, short_reason
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


class RegistryError(InputError):
    """The destination registry refused or could not be reached."""


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


def check_registry(registry: str, *, insecure: bool, timeout: float = 15.0) -> None:
    """The registry answers its ``/v2/`` endpoint (200, or 401 asking for a login), before any
    blob is read; RegistryError naming the registry and the cause (refused, TLS, timeout)."""
    import requests

    host = _registry_host(registry)
    url = f"{'http' if insecure else 'https'}://{host}/v2/"
    try:
        r = requests.get(url, timeout=timeout, allow_redirects=False)
    except requests.exceptions.SSLError as exc:
        raise RegistryError(
            f"registry {host}: the TLS handshake failed ({short_reason(exc)}); nothing was changed",
            hint="a registry with a private CA needs its certificate trusted; plain HTTP needs "
            "--insecure",
        ) from None
    except requests.exceptions.RequestException as exc:
        raise RegistryError(
            f"registry {host} does not answer ({short_reason(exc)}); nothing was changed",
            hint=f"check the address and that the registry runs (curl {url})",
        ) from None
    if r.status_code not in (200, 401):
        raise RegistryError(
            f"registry {host} answered {r.status_code} at /v2/: not an OCI registry; "
            "nothing was changed",
            hint="give the registry's HOST[:PORT]",
        )


def _registry_message(response: Any) -> str:
    """The registry's own words from an error answer: ``CODE: message`` of its JSON errors."""
    if response is None:
        return ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        parts = []
        for e in body["errors"][:3]:
            if isinstance(e, dict):
                code, msg = e.get("code"), e.get("message")
                parts.append(": ".join(str(x) for x in (code, msg) if x))
        text = "; ".join(p for p in parts if p)
        if text:
            return text if len(text) <= 300 else text[:300] + "..."
    raw = getattr(response, "text", "") or ""
    raw = " ".join(raw.split())
    return raw if len(raw) <= 200 else raw[:200] + "..."


_STATUS_HINT = {
    401: "the registry wants credentials: give them for an HTTPS registry (airgap never sends "
    "credentials over plain HTTP)",
    403: "the account may not push to this repository: check its permissions on the registry",
    404: "check the registry address; some registries (Harbor) need the project to exist first",
    413: "the registry (or a proxy in front of it) limits upload sizes: raise the limit",
}


@dataclass
class _Remote:
    """One repository on the destination registry, through python-dxf."""

    host: str
    repository: str
    insecure: bool
    timeout: float
    retries: int
    backoff: float
    credentials: tuple[str, str] | None
    ref: str
    retried: int = 0
    denied: Any = None  # the last 401 answer (dxf drops it): the registry's words are in it
    client: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        import dxf

        self.client = dxf.DXF(
            self.host,
            self.repository,
            auth=self._auth,
            insecure=self.insecure,
            timeout=self.timeout,
        )

    def _auth(self, client: Any, response: Any) -> None:
        self.denied = response
        if self.insecure:  # no credentials over plain HTTP; dxf raises DXFUnauthorizedError
            return
        import requests

        user, password = self.credentials or (None, None)
        try:
            client.authenticate(user, password, actions=["pull", "push"], response=response)
        except (requests.exceptions.RequestException, KeyError, ValueError):
            return  # the request is answered 401 again: reported with the registry's words

    @property
    def scheme(self) -> str:
        return "http" if self.insecure else "https"

    def retry(self, what: str, fn: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return fn()
            except AirgapError:
                raise
            except Exception as exc:
                translated = self._translate(exc, what, attempt + 1)
                if translated is None:
                    raise
                error, transient = translated
                if not transient or attempt >= self.retries:
                    raise error from None
            time.sleep(self.backoff * 2**attempt)
            attempt += 1
            self.retried += 1

    def _translate(
        self, exc: Exception, what: str, attempts: int
    ) -> tuple[RegistryError, bool] | None:
        import dxf.exceptions
        import requests

        where = f"registry {self.host} ({self.scheme})"
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        head = f"image {self.ref}: {where} "
        if isinstance(exc, requests.exceptions.SSLError):
            return RegistryError(
                f"{head}TLS failed while {what}: {short_reason(exc)}",
                hint="for a plain-HTTP registry pass --insecure; otherwise install its CA "
                "certificate",
            ), False
        if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return RegistryError(
                f"{head}cannot be reached while {what}{tries}: {short_reason(exc)}",
                hint="check the address and port and that the registry runs; a plain-HTTP "
                "registry needs --insecure",
            ), True
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return RegistryError(f"{head}broke the connection while {what}{tries}"), True
        status: int | None = None
        response: Any = None
        if isinstance(exc, dxf.exceptions.DXFUnauthorizedError):
            status, response = 401, self.denied
        elif isinstance(exc, requests.exceptions.HTTPError):
            response = exc.response
            status = getattr(response, "status_code", None)
        elif isinstance(exc, dxf.exceptions.DXFError):
            return RegistryError(f"{head}failed while {what}: {exc}"), False
        elif isinstance(exc, requests.exceptions.RequestException):
            return RegistryError(f"{head}failed while {what}: {short_reason(exc)}"), True
        else:
            return None
        said = _registry_message(response)
        transient = status is not None and (status >= 500 or status in (408, 429))
        hint = _STATUS_HINT.get(status or 0) or (
            "the registry failed: check its log and its storage, then run the push again "
            "(blobs already there are not sent again)"
            if transient
            else None
        )
        return RegistryError(
            f"{head}refused {what} in {self.repository}: HTTP {status}"
            + (f": {said}" if said else "")
            + tries,
            hint=hint,
        ), transient

    # ---------------------------------------------------------------- operations

    def has_blob(self, digest: str) -> bool | None:
        """True / False; None when the registry's HEAD answer says neither (the upload tells)."""
        import dxf.exceptions
        import requests

        try:
            self.client.blob_size(digest)
        except requests.exceptions.HTTPError as exc:
            status = getattr(exc.response, "status_code", None)
            return False if status == 404 else None
        except dxf.exceptions.DXFUnauthorizedError:
            return None
        return True

    def has_manifest(self, digest: str) -> bool:
        import dxf.exceptions
        import requests

        try:
            got, _ = self.client.head_manifest_and_response(digest)
        except (requests.exceptions.HTTPError, dxf.exceptions.DXFUnauthorizedError):
            return False
        return bool(got == digest)

    def mount(self, source: str, digest: str) -> bool:
        """Mount a blob from another repository of the registry; False when it will not."""
        import dxf.exceptions
        import requests

        try:
            self.client.mount_blob(source, digest)
        except (dxf.exceptions.DXFMountFailed, requests.exceptions.HTTPError):
            return False
        return True

    def put_manifest(self, reference: str, raw: bytes, media_type: str) -> str | None:
        """PUT the manifest's bytes as they are (dxf's set_manifest takes text and reads the media
        type from the JSON); the digest the registry reports."""
        r = self.client._request(
            "put", "manifests/" + reference, data=raw, headers={"Content-Type": media_type}
        )
        got = r.headers.get("Docker-Content-Digest")
        return got if isinstance(got, str) else None

    def digest_of(self, reference: str) -> str | None:
        r = self.client._request(
            "head", "manifests/" + reference, headers={"Accept": _MANIFEST_ACCEPT}
        )
        got = r.headers.get("Docker-Content-Digest")
        return got if isinstance(got, str) else None


class _Upload:
    """A blob's verified chunks with a length: requests sends Content-Length, not chunked."""

    def __init__(self, chunks: Iterator[bytes], size: int) -> None:
        self.chunks = chunks
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks


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
) -> list[PushedImage]:
    """Push every image of ``bundle`` to ``registry`` (HOST[:PORT]) with its digests unchanged.

    ``insecure``: plain HTTP. ``retries``: how many times a transient failure (connection error,
    timeout, HTTP 5xx/408/429) is retried, waiting ``backoff`` seconds doubled each time.
    ``credentials`` (user, password) are used when the registry asks (HTTPS only). Raises
    :class:`RegistryError` with the registry's own error message when it refuses,
    :class:`BlobMismatch` for a corrupt blob (sent no further), :class:`CheckFailed` when the
    registry reports another digest than the bundle's.
    """
    host = _registry_host(registry)
    reporter = progress or Reporter()
    known: dict[str, str] = {}  # blob -> a repository of this push that holds it
    return [
        _push_image(
            bundle, image, host, insecure, retries, reporter, timeout, backoff, credentials, known
        )
        for image in image_entries(bundle)
    ]


def _push_image(
    bundle: Bundle,
    image: BundleImage,
    host: str,
    insecure: bool,
    retries: int,
    reporter: Reporter,
    timeout: float,
    backoff: float,
    credentials: tuple[str, str] | None,
    known: dict[str, str],
) -> PushedImage:
    """Push one image; ``known`` maps blobs already on the registry in this push to their
    repository (a blob shared by two images is mounted across, not sent twice)."""
    try:
        ref = parse_reference(image.ref)
    except ResolveError as exc:
        raise ImageError(exc.message, hint=exc.hint) from None
    remote = _Remote(
        host, ref.repository, insecure, timeout, max(0, retries), backoff, credentials, image.ref
    )
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
        if source is not None and source != ref.repository and remote.mount(source, blob.digest):
            return "mounted"
        what = "image config" if any(blob == m.config for m in image.manifests) else "layer"
        chunks = verified_chunks(bundle, image.ref, blob, what, f"registry {host}")

        def counted() -> Iterator[bytes]:
            for chunk in chunks:
                count(len(chunk))
                yield chunk

        remote.client.push_blob(
            data=_Upload(counted(), blob.size), digest=blob.digest, check_exists=False
        )
        return "uploaded"

    def push_manifest(blob: Blob, reference: str) -> None:
        raw = bundle.read(layout.blob_path(blob.digest), MAX_DOCUMENT_BYTES)
        got = "sha256:" + hashlib.sha256(raw).hexdigest()
        if got != blob.digest:
            raise BlobMismatch(
                f"image {image.ref}: manifest {blob.digest} in {bundle.source} hashes to {got}",
                hint="the bundle is corrupt: `airgap verify` names the damaged part",
            )
        said = remote.put_manifest(reference, raw, blob.media_type)
        if said is not None and said != blob.digest:
            raise CheckFailed(
                f"image {image.ref}: registry {host} stored manifest {blob.digest} as {said}",
                hint="the registry rewrote the manifest; use a registry that stores manifests as "
                "they are (distribution, Harbor, Zot)",
            )

    top = image.top
    reference = ref.tag or top.digest
    with remote.client:  # one HTTP session
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
        reported = remote.retry(f"reading back {reference}", partial(remote.digest_of, reference))
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
