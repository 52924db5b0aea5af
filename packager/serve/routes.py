"""The OCI distribution API as `airgap serve` reads it: request paths and Range headers (pure).

Every request path is matched whole (``re.fullmatch``) against the read-only endpoints of the
OCI distribution spec (v1.1); a path that matches none is :data:`Kind.UNKNOWN`, never a path on
disk. Names, tags and digests are only ever used as keys into the verified catalog.

    /v2/                                   API version check
    /v2/_catalog                           the repositories (optional in the spec)
    /v2/<name>/manifests/<tag|digest>      a manifest or index
    /v2/<name>/blobs/<digest>              a blob (Range requests: 206, 416)
    /v2/<name>/tags/list                   the tags of a repository (?n= and ?last= pages)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Union
from urllib.parse import parse_qsl

from packager.util.compat import StrEnum

#: a repository name, as the distribution spec writes it
NAME = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
TAG = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
#: any digest the spec's grammar allows (an algorithm other than sha256 is answered, not served)
DIGEST = r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"
SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
#: the longest name the spec says clients may rely on, with room for its host part
MAX_NAME = 255

_BASE = re.compile(r"/v2/?")
_CATALOG = re.compile(r"/v2/_catalog")
_MANIFEST = re.compile(rf"/v2/(?P<name>{NAME})/manifests/(?P<ref>{TAG}|{DIGEST})")
_BLOB = re.compile(rf"/v2/(?P<name>{NAME})/blobs/(?P<ref>{DIGEST})")
_TAGS = re.compile(rf"/v2/(?P<name>{NAME})/tags/list")
_TAG_ONLY = re.compile(TAG)
_NAME_ONLY = re.compile(NAME)

#: methods the server answers; every other one is 405 UNSUPPORTED
READ_METHODS = ("GET", "HEAD")


class Kind(StrEnum):
    BASE = "base"
    CATALOG = "catalog"
    MANIFEST = "manifest"
    BLOB = "blob"
    TAGS = "tags"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Route:
    kind: Kind
    name: str | None = None  # the repository
    ref: str | None = None  # a tag or a digest (manifests), a digest (blobs)
    #: ``n`` and ``last`` of a tags or catalog page (None: not given); n < 0 when not a number
    n: int | None = None
    last: str | None = None

    @property
    def by_digest(self) -> bool:
        return self.ref is not None and ":" in self.ref


def parse_path(target: str) -> Route:
    """The route of a request target (``/v2/...[?query]``); :data:`Kind.UNKNOWN` when it is none."""
    if not target.startswith("/"):
        return Route(Kind.UNKNOWN)
    path, _, query_text = target.partition("?")  # not urlsplit: it drops tabs and newlines
    query = dict(parse_qsl(query_text, keep_blank_values=True))
    n = query.get("n")
    page: dict[str, Any] = {
        "n": (int(n) if n.isdigit() and len(n) <= 9 else -1) if n is not None else None,
        "last": query.get("last"),
    }
    if _BASE.fullmatch(path):
        return Route(Kind.BASE)
    if _CATALOG.fullmatch(path):
        return Route(Kind.CATALOG, **page)
    for kind, pattern in ((Kind.MANIFEST, _MANIFEST), (Kind.BLOB, _BLOB)):
        m = pattern.fullmatch(path)
        if m and len(m.group("name")) <= MAX_NAME:
            return Route(kind, m.group("name"), m.group("ref"))
    m = _TAGS.fullmatch(path)
    if m and len(m.group("name")) <= MAX_NAME:
        return Route(Kind.TAGS, m.group("name"), **page)
    return Route(Kind.UNKNOWN)


def is_tag(text: str) -> bool:
    return _TAG_ONLY.fullmatch(text) is not None


def is_name(text: str) -> bool:
    return len(text) <= MAX_NAME and _NAME_ONLY.fullmatch(text) is not None


def page(items: list[str], n: int | None, last: str | None) -> list[str] | None:
    """The spec's pagination of a sorted list: the items after ``last``, at most ``n`` of them;
    None when ``n`` is not a number."""
    if n is not None and n < 0:
        return None
    out = [i for i in items if last is None or i > last]
    return out[:n] if n is not None else out


# ----------------------------------------------------------------------------- Range


@dataclass(frozen=True)
class ByteRange:
    """``first`` to ``last`` inclusive, as Content-Range writes them."""

    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1


class Unsatisfiable:
    """A Range none of whose bytes the blob has: 416 with ``Content-Range: bytes */SIZE``."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unsatisfiable)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "UNSATISFIABLE"


UNSATISFIABLE = Unsatisfiable()
RangeAnswer = Union[None, ByteRange, Unsatisfiable]

_RANGE = re.compile(r"bytes[ \t]*=[ \t]*(?P<first>[0-9]{0,19})[ \t]*-[ \t]*(?P<last>[0-9]{0,19})")


def parse_range(header: str | None, size: int) -> RangeAnswer:
    """What a ``Range`` header asks of a blob of ``size`` bytes (RFC 9110 section 14).

    None: send it whole (no header, a header this server does not take: several ranges, another
    unit, a malformed one; RFC 9110 lets a server ignore those). A :class:`ByteRange`: send 206
    with those bytes (the last clipped to the end). :data:`UNSATISFIABLE`: 416.
    """
    if header is None:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None:
        return None
    first, last = m.group("first"), m.group("last")
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid: ignored
    if start >= size:
        return UNSATISFIABLE
    return ByteRange(start, min(end, size - 1))


# ----------------------------------------------------------------------------- error bodies


class ErrorCode(StrEnum):
    """The distribution spec's error codes this server answers with."""

    NAME_UNKNOWN = "NAME_UNKNOWN"
    MANIFEST_UNKNOWN = "MANIFEST_UNKNOWN"
    BLOB_UNKNOWN = "BLOB_UNKNOWN"
    DIGEST_INVALID = "DIGEST_INVALID"
    UNSUPPORTED = "UNSUPPORTED"
    PAGINATION_NUMBER_INVALID = "PAGINATION_NUMBER_INVALID"
    NOT_FOUND = "NOT_FOUND"
    UNAVAILABLE = "UNAVAILABLE"


def error_body(code: ErrorCode, message: str, detail: Any = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"code": code.value, "message": message}
    if detail is not None:
        entry["detail"] = detail
    return {"errors": [entry]}
