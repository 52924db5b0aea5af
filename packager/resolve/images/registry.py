"""``from: registry``: the OCI distribution API.

Through :class:`packager.oci.registry.RegistryClient`: loopback registries without TLS need no
``insecure``, logins come from the environment or the Docker config, redirects to blob storage
carry no credentials. The reference is parsed with
:func:`packager.oci.reference.parse_reference`; both OCI and docker
schema2 media types are asked for. An index (manifest list) is narrowed to the manifest of the
target platform and both digests are recorded; a single manifest has its config read to check the
platform. Every manifest's bytes are hashed here and compared with the digest the registry claims
and the digest that led to it. Failures name the registry, what was asked and why it failed (a
404 for a tag lists the tags the repository has).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from packager.errors import ResolveError
from packager.manifest.model import Image
from packager.oci import mediatypes
from packager.oci.reference import ImageReference, Platform, parse_reference
from packager.oci.registry import (
    RegistryClient,
    RegistryError,
    RegistryOptions,
    RegistryTLSError,
)
from packager.resolve.images.common import (
    MAX_DOCUMENT_BYTES,
    ImageDocument,
    ResolveContext,
    locked_from_manifest,
    parse_json_object,
    resolve_tree,
    short_reason,
    verify_bytes,
)
from packager.resolve.lockfile import LockedImage

_TAGS_SHOWN = 10
_MANIFEST_ACCEPT = ", ".join(mediatypes.IMAGE_MANIFEST_TYPES + mediatypes.IMAGE_INDEX_TYPES)


class RegistryReader:
    """One repository on one registry (packager.oci.registry: TLS, loopback HTTP, logins from the
    environment or the Docker config, the redirect rules), every failure a packager error."""

    def __init__(
        self, ctx: ResolveContext, ref: ImageReference, insecure: bool, timeout: float
    ) -> None:
        self.ctx = ctx
        self.ref = ref
        self.timeout = timeout
        self.insecure = insecure
        options = RegistryOptions(insecure=insecure, connect_timeout=timeout, read_timeout=timeout)
        self.client = RegistryClient(ref.host, ref.repository, options)

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        import requests

        host, ctx = self.ref.host, self.ctx
        try:
            self.client.connect()
            yield
        except RegistryTLSError as exc:
            raise ctx.error(
                f"TLS with registry {host} failed while {what}: {exc.message}",
                hint="for a plain-HTTP registry (a local mirror) set insecure: true on the image; "
                "otherwise add the registry's CA certificate to the system trust store",
            ) from None
        except RegistryError as exc:
            raise ctx.error(exc.message, hint=exc.hint) from None
        except requests.exceptions.RequestException as exc:  # a body cut off while streamed
            raise ctx.error(
                f"registry {host} broke the connection while {what}: {short_reason(exc)}",
                hint="fetch again; check the registry and the network between",
            ) from None

    def _not_found(self, response: Any, what: str, reference: str | None) -> ResolveError:
        host, repo, ctx = self.ref.host, self.ref.repository, self.ctx
        codes: list[str] = []
        try:
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("errors"), list):
                codes = [str(e.get("code")) for e in body["errors"] if isinstance(e, dict)]
        except ValueError:
            pass
        top = reference is not None and reference == self.ref.reference
        if top and "MANIFEST_UNKNOWN" in codes:
            # distribution answers MANIFEST_UNKNOWN for an unknown repository too: ask its tags
            exists, tags = self._tags()
            if exists is False:
                codes = ["NAME_UNKNOWN"]
            elif exists:
                shown = ", ".join(tags[:_TAGS_SHOWN]) + (", ..." if len(tags) > _TAGS_SHOWN else "")
                return ctx.error(
                    f"{self._name(reference)} is not on registry {host} (HTTP 404 "
                    f"MANIFEST_UNKNOWN: unknown tag or digest); {repo} has "
                    f"{len(tags)} tag{'s' if len(tags) != 1 else ''}: {shown or '(none)'}",
                    hint="check the tag or digest; push the image there first",
                )
        if "NAME_UNKNOWN" in codes:
            return ctx.error(
                f"repository {repo} is not on registry {host} (HTTP 404 NAME_UNKNOWN)",
                hint="check the image name; push the image there first",
            )
        if "MANIFEST_UNKNOWN" in codes:
            return ctx.error(
                f"{self._name(reference)} is not on registry {host} (HTTP 404 MANIFEST_UNKNOWN "
                f"while {what})",
                hint="check the tag or digest (list the tags with `skopeo list-tags "
                f"docker://{host}/{repo}`); an index whose entries are missing was pushed "
                "incompletely",
            )
        if "BLOB_UNKNOWN" in codes:
            return ctx.error(
                f"the blob is missing from {host}/{repo} (HTTP 404 BLOB_UNKNOWN while {what})",
                hint="the image on the registry is incomplete; push it again",
            )
        return ctx.error(
            f"not found on registry {host} (HTTP 404 while {what})",
            hint="check the registry address, the repository name and the tag",
        )

    def _name(self, reference: str | None) -> str:
        ref = reference or self.ref.reference
        return f"{self.ref.repository}{'@' if ref.startswith('sha256:') else ':'}{ref}"

    def _tags(self) -> tuple[bool | None, list[str]]:
        """(repository exists, some of its tags); (None, []) when the registry does not say."""
        try:
            r = self.client.request("GET", self.client.url("tags/list?n=1000"), "listing tags")
            try:
                if r.status_code == 404:
                    return False, []
                body = r.json()
            finally:
                r.close()
        except (RegistryError, ValueError):  # only a better message is at stake
            return None, []
        tags = body.get("tags") if isinstance(body, dict) else None
        if not isinstance(tags, list):
            return None, []
        return True, sorted(str(t) for t in tags[:1000])

    def manifest(
        self, reference: str, expected: str | None, size: int | None = None
    ) -> ImageDocument:
        what = f"fetching manifest {reference}"
        with self._translated(what):
            r = self.client.request(
                "GET", self.client.url(f"manifests/{reference}"), what,
                headers={"Accept": _MANIFEST_ACCEPT}, stream=True,
            )  # fmt: skip
            try:
                if r.status_code == 404:
                    raise self._not_found(r, what, reference)
                chunks, got = [], 0
                for chunk in r.iter_content(64 * 1024):
                    got += len(chunk)
                    if got > MAX_DOCUMENT_BYTES:
                        raise self.ctx.error(
                            f"manifest {reference} is larger than {MAX_DOCUMENT_BYTES} bytes"
                        )
                    chunks.append(chunk)
            finally:
                r.close()
            content = b"".join(chunks)
            claimed = r.headers.get("Docker-Content-Digest")
            content_type = r.headers.get("Content-Type")
        if size is not None and len(content) != size:
            raise self.ctx.mismatched(
                f"manifest {reference} from {self.ctx.where} is {len(content)} bytes, "
                f"its descriptor says {size}",
                hint="the registry served corrupt content; fetch the image again",
            )
        if claimed is not None and not claimed.startswith("sha256:"):
            claimed = None  # another algorithm: the sha256 computed here still decides
        digest = verify_bytes(self.ctx, f"manifest {reference}", content, expected, claimed)
        data = parse_json_object(self.ctx, f"manifest {reference}", content)
        mt = content_type.split(";", 1)[0].strip() if content_type else None
        return ImageDocument(digest, mt, data, len(content), content)

    def blob(self, digest: str, size: int) -> bytes:
        if size > MAX_DOCUMENT_BYTES:
            raise self.ctx.error(
                f"image config {digest} is {size} bytes, more than {MAX_DOCUMENT_BYTES}"
            )
        what = f"fetching image config {digest}"
        chunks: list[bytes] = []
        total = 0
        with self._translated(what):
            for chunk in self.client.iter_blob(digest, MAX_DOCUMENT_BYTES):
                total += len(chunk)
                if total > MAX_DOCUMENT_BYTES:
                    raise self.ctx.error(
                        f"image config {digest} is larger than {MAX_DOCUMENT_BYTES} bytes"
                    )
                chunks.append(chunk)
        data = b"".join(chunks)
        verify_bytes(self.ctx, f"image config {digest}", data, digest)
        if len(data) != size:
            raise self.ctx.mismatched(
                f"image config {digest} from {self.ctx.where} is {len(data)} bytes, "
                f"the manifest says {size}",
                hint="the manifest is inconsistent; push the image again",
            )
        return data


def resolve_from_registry(image: Image, target: Platform, timeout: float) -> LockedImage:
    ref = parse_reference(image.ref)
    ctx = ResolveContext(image.ref, image.source, target, f"registry {ref.host}")
    registry = RegistryReader(ctx, ref, image.insecure, timeout)
    with registry.client:  # one HTTP session per thread (connection reuse)
        top = registry.manifest(ref.reference, ref.digest)
        manifest, index, platform = resolve_tree(
            ctx,
            top,
            lambda digest, size, _mt: registry.manifest(digest, digest, size),
            registry.blob,
        )
    return locked_from_manifest(image, ctx, manifest, index, platform)
