"""The request grammar of `airgap serve`: whole-path routes, Range headers, pages, --listen."""

from __future__ import annotations

import pytest

from packager.commands.serve import parse_listen
from packager.errors import InputError
from packager.serve.routes import (
    UNSATISFIABLE,
    ByteRange,
    Kind,
    RangeAnswer,
    Route,
    page,
    parse_path,
    parse_range,
)

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("target", "route"),
    [
        ("/v2/", Route(Kind.BASE)),
        ("/v2", Route(Kind.BASE)),
        ("/v2/_catalog", Route(Kind.CATALOG)),
        ("/v2/_catalog?n=2&last=a", Route(Kind.CATALOG, n=2, last="a")),
        ("/v2/_catalog?n=x", Route(Kind.CATALOG, n=-1)),
        ("/v2/busybox/manifests/1.36", Route(Kind.MANIFEST, "busybox", "1.36")),
        ("/v2/library/busybox/manifests/latest", Route(Kind.MANIFEST, "library/busybox", "latest")),
        (f"/v2/a/b/c/manifests/{D}", Route(Kind.MANIFEST, "a/b/c", D)),
        (f"/v2/team/app/blobs/{D}", Route(Kind.BLOB, "team/app", D)),
        (
            "/v2/team/app/blobs/sha512:" + "0" * 128,
            Route(Kind.BLOB, "team/app", "sha512:" + "0" * 128),
        ),
        ("/v2/team/app/tags/list", Route(Kind.TAGS, "team/app")),
        ("/v2/team/app/tags/list?n=10", Route(Kind.TAGS, "team/app", n=10)),
        # a repository may be named like an endpoint's word
        (f"/v2/manifests/manifests/{D}", Route(Kind.MANIFEST, "manifests", D)),
        # nothing else: no traversal, no upper case names, no blobs by tag, no trailing junk
        ("/v2/../etc/passwd", Route(Kind.UNKNOWN)),
        ("/v2/a/../b/manifests/x", Route(Kind.UNKNOWN)),
        ("/v2/Team/manifests/x", Route(Kind.UNKNOWN)),
        ("/v2/team/blobs/latest", Route(Kind.UNKNOWN)),
        (f"/v2/team/blobs/{D}/", Route(Kind.UNKNOWN)),
        (f"/v2/team/blobs/{D}\n", Route(Kind.UNKNOWN)),
        ("/v2/team/manifests/" + "t" * 129, Route(Kind.UNKNOWN)),
        ("/v2/team/manifests/-bad", Route(Kind.UNKNOWN)),
        ("/v2/team/manifests/a%2fb", Route(Kind.UNKNOWN)),
        ("/v2/a//b/tags/list", Route(Kind.UNKNOWN)),
        ("/v2/" + "a/" * 130 + "manifests/x", Route(Kind.UNKNOWN)),  # a name past 255
        ("/v3/", Route(Kind.UNKNOWN)),
        ("http://elsewhere/v2/", Route(Kind.UNKNOWN)),
        ("", Route(Kind.UNKNOWN)),
    ],
)
def test_paths_route_whole_or_not_at_all(target: str, route: Route) -> None:
    assert parse_path(target) == route


@pytest.mark.parametrize(
    ("header", "size", "answer"),
    [
        (None, 10, None),
        ("bytes=0-4", 10, ByteRange(0, 4)),
        ("bytes=5-", 10, ByteRange(5, 9)),
        ("bytes=5-100", 10, ByteRange(5, 9)),  # the last clipped to the end
        ("bytes=-3", 10, ByteRange(7, 9)),
        ("bytes=-30", 10, ByteRange(0, 9)),
        ("bytes=9-9", 10, ByteRange(9, 9)),
        (" bytes = 1 - 2 ", 10, ByteRange(1, 2)),
        ("bytes=10-", 10, UNSATISFIABLE),
        ("bytes=10-20", 10, UNSATISFIABLE),
        ("bytes=-0", 10, UNSATISFIABLE),
        ("bytes=0-", 0, UNSATISFIABLE),
        ("bytes=-5", 0, UNSATISFIABLE),
        # ignored (RFC 9110 lets a server send it whole): malformed, reversed, several, other units
        ("bytes=4-2", 10, None),
        ("bytes=-", 10, None),
        ("bytes=0-1,3-4", 10, None),
        ("items=0-1", 10, None),
        ("bytes=a-b", 10, None),
        ("bytes=" + "9" * 30 + "-", 10, None),
    ],
)
def test_range_headers(header: str | None, size: int, answer: RangeAnswer) -> None:
    assert parse_range(header, size) == answer


def test_a_byte_range_counts_both_ends() -> None:
    assert ByteRange(3, 3).length == 1 and ByteRange(0, 9).length == 10


@pytest.mark.parametrize(
    ("n", "last", "out"),
    [
        (None, None, ["a", "b", "c"]),
        (2, None, ["a", "b"]),
        (2, "a", ["b", "c"]),
        (None, "c", []),
        (0, None, []),
        (-1, None, None),
    ],
)
def test_pages(n: int | None, last: str | None, out: list[str] | None) -> None:
    assert page(["a", "b", "c"], n, last) == out


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:5000", ("127.0.0.1", 5000)),
        ("localhost:0", ("127.0.0.1", 0)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("[::1]:5000", ("::1", 5000)),
    ],
)
def test_listen_addresses(text: str, address: tuple[str, int]) -> None:
    assert parse_listen(text) == address


@pytest.mark.parametrize(
    "text",
    [
        "5000",
        "127.0.0.1",
        "example.com:80",
        "127.0.0.1:65536",
        "[127.0.0.1]:5",
        "::1:5000",
        "1.2.3.4:5:6",
    ],
)
def test_bad_listen_addresses_say_how_to_write_one(text: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_listen(text)
    assert exc.value.hint is not None and "--listen 127.0.0.1:5000" in exc.value.hint
