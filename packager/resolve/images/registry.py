"""``from: registry``: the OCI distribution API through python-dxf.

The reference is parsed with :func:`packager.oci.reference.parse_reference`; both OCI and docker
schema2 media types are asked for. An index (manifest list) is narrowed to the manifest of the
target platform and both digests are recorded; a single manifest has its config read to check the
platform. Every manifest's bytes are hashed here and compared with the digest the registry claims
and the digest that led to it. Failures name the registry, what was asked and why it failed (a
404 for a tag lists the tags the repository has).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from packager.errors import ResolveError
from packager.manifest.model import Image
from packager.oci.reference import ImageReference, Platform, parse_reference
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


def _anonymous_auth(client: Any, response: Any) -> None:
    """dxf auth hook: an anonymous bearer token (Docker Hub, ghcr.io) for public images."""
    client.authenticate(response=response)


_TAGS_SHOWN = 10


class RegistryReader:
    """One repository on one registry, every failure turned into a packager error."""

    def __init__(
        self, ctx: ResolveContext, ref: ImageReference, insecure: bool, timeout: float
    ) -> None:
        import dxf

        self.ctx = ctx
        self.ref = ref
        self.timeout = timeout
        self.insecure = insecure
        self.client = dxf.DXF(
            ref.host,
            ref.repository,
            auth=None if insecure else _anonymous_auth,
            insecure=insecure,
            timeout=timeout,
        )

    @contextmanager
    def _translated(self, what: str, reference: str | None = None) -> Iterator[None]:
        import dxf.exceptions
        import requests

        host, repo, ctx = self.ref.host, self.ref.repository, self.ctx
        scheme = "http" if self.insecure else "https"
        try:
            yield
        except requests.exceptions.SSLError as exc:
            raise ctx.error(
                f"TLS with registry {host} failed while {what}: {short_reason(exc)}",
                hint="for a plain-HTTP registry (a local mirror) set insecure: true on the image; "
                "otherwise install the registry's CA certificate",
            ) from None
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            text = str(exc)
            if isinstance(exc, requests.exceptions.Timeout) or "timed out" in text.lower():
                raise ctx.error(
                    f"registry {host} did not answer within the timeout of {self.timeout:g}s "
                    f"({scheme}, while {what})",
                    hint="check the registry address and that this host can reach it; "
                    "on a slow link raise the timeout",
                ) from None
            raise ctx.error(
                f"cannot connect to registry {host} ({scheme}, timeout {self.timeout:g}s, while "
                f"{what}): {short_reason(exc)}",
                hint="check the registry address and port and that it is running; "
                "for a plain-HTTP registry set insecure: true",
            ) from None
        except requests.exceptions.HTTPError as exc:
            raise self._http_error(exc, what, reference) from None
        except dxf.exceptions.DXFUnauthorizedError:
            raise ctx.error(
                f"registry {host} refused access to {repo} (HTTP 401 unauthorized) while {what}",
                hint="check the repository name (Docker Hub answers 401 for names that do not "
                "exist); private repositories need credentials, which airgap does not read yet: "
                "pull the image with docker and use from: docker",
            ) from None
        except dxf.exceptions.DXFAuthInsecureError:
            raise ctx.error(
                f"registry {host} asks for authentication over plain HTTP while {what}",
                hint="use HTTPS for a registry that needs credentials (drop insecure: true)",
            ) from None
        except dxf.exceptions.DXFDigestMismatchError as exc:
            raise ctx.mismatched(
                f"{what} from {ctx.where}: the content does not match its digest: "
                f"expected {exc.expected}, got {exc.got}",
                hint="the registry served corrupt content; fetch the image again",
            ) from None
        except dxf.exceptions.DXFError as exc:
            raise ctx.error(f"registry {host} failed while {what}: {exc}") from None
        except requests.exceptions.RequestException as exc:
            raise ctx.error(
                f"request to registry {host} failed while {what}: {short_reason(exc)}"
            ) from None
        except (KeyError, ValueError) as exc:  # malformed auth challenge or token answer
            raise ctx.error(
                f"registry {host} gave an answer that cannot be used while {what}: {exc!r}"
            ) from None

    def _http_error(self, exc: Any, what: str, reference: str | None) -> ResolveError:
        host, repo, ctx = self.ref.host, self.ref.repository, self.ctx
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        codes: list[str] = []
        try:
            body = response.json() if response is not None else None
            if isinstance(body, dict) and isinstance(body.get("errors"), list):
                codes = [str(e.get("code")) for e in body["errors"] if isinstance(e, dict)]
        except ValueError:
            pass
        if status != 404:
            detail = f" ({', '.join(codes)})" if codes else ""
            return ctx.error(
                f"registry {host} answered HTTP {status}{detail} while {what}",
                hint="check the reference; retry later if the registry is overloaded",
            )
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
        import requests

        tags: list[str] = []
        try:
            for tag in self.client.list_aliases(batch_size=100, iterate=True):
                tags.append(str(tag))
                if len(tags) >= 1000:
                    break
        except requests.exceptions.HTTPError as exc:
            response = getattr(exc, "response", None)
            if getattr(response, "status_code", None) == 404:
                return False, []
            return None, []
        except Exception:  # only a better message is at stake: never mask the first error
            return None, []
        return True, sorted(tags)

    def manifest(
        self, reference: str, expected: str | None, size: int | None = None
    ) -> ImageDocument:
        what = f"fetching manifest {reference}"
        with self._translated(what, reference):
            _text, response = self.client.get_manifest_and_response(reference)
            content: bytes = response.content
            claimed = response.headers.get("Docker-Content-Digest")
            content_type = response.headers.get("Content-Type")
        if len(content) > MAX_DOCUMENT_BYTES:
            raise self.ctx.error(f"manifest {reference} is larger than {MAX_DOCUMENT_BYTES} bytes")
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
            stream = cast("Iterable[bytes]", self.client.pull_blob(digest))  # checked at its end
            for chunk in stream:
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
    with registry.client:  # one HTTP session (connection reuse); no I/O of its own
        top = registry.manifest(ref.reference, ref.digest)
        manifest, index, platform = resolve_tree(
            ctx,
            top,
            lambda digest, size, _mt: registry.manifest(digest, digest, size),
            registry.blob,
        )
    return locked_from_manifest(image, ctx, manifest, index, platform)
