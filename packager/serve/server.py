"""The read-only OCI distribution endpoint: stdlib ``http.server`` on a verified catalog.

``ThreadingHTTPServer`` (one thread per connection, HTTP/1.1 keep-alive): the work per request is
a lookup and a ``socket.sendfile`` from the pinned file at the blob's offset, done by the kernel
without a copy through Python, so threads spend their time blocked in the kernel and memory
stays flat whatever the blob's size or the number of clients. No library adds what this needs
(the stdlib server is maintained with Python; a framework would bring an event loop and
dependencies to every site for five routes).

Every request path is parsed by :func:`packager.serve.routes.parse_path` (whole-string patterns);
names, tags and digests are keys into the catalog, never paths. A blob's file is opened without
following links (a layout folder's) and its identity compared with the one verified; a changed
file is answered 500 (and logged), never sent. Every request is logged in one line through the
``log`` callback (the CLI writes it to stderr).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from packager.serve.catalog import BlobSource, Catalog, ServedManifest
from packager.serve.routes import (
    READ_METHODS,
    SHA256,
    UNSATISFIABLE,
    ByteRange,
    ErrorCode,
    Kind,
    Route,
    error_body,
    page,
    parse_path,
    parse_range,
)

API_VERSION = "registry/2.0"
#: seconds a connection may sit idle (or a client may take to read) before it is dropped
IDLE_TIMEOUT = 120.0


@dataclass
class Stats:
    requests: int = 0
    bytes_sent: int = 0
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, nbytes: int, error: bool) -> None:
        with self.lock:
            self.requests += 1
            self.bytes_sent += nbytes
            self.errors += int(error)


class Changed(Exception):
    """A pinned file is not the one that was verified any more."""


class DistributionServer(ThreadingHTTPServer):
    daemon_threads = True  # Ctrl-C does not wait for a client that reads slowly
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        catalog: Catalog,
        log: Callable[[str], None],
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.catalog = catalog
        self.log = log
        self.stats = Stats()

    @property
    def listen(self) -> str:
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = f"[{host}]" if self.address_family == socket.AF_INET6 else str(host)
        return f"{shown}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: DistributionServer
    protocol_version = "HTTP/1.1"
    server_version = "airgap-serve"

    def version_string(self) -> str:
        return self.server_version

    timeout = IDLE_TIMEOUT

    # ------------------------------------------------------------------ plumbing

    def setup(self) -> None:
        super().setup()
        self._sent = 0
        self._t0 = time.perf_counter()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per request is written by _done, with the bytes really sent

    def log_message(self, format: str, *args: Any) -> None:
        self.server.log(f"{self.client_address[0]} {format % args}")

    def _done(self, status: int, note: str = "") -> None:
        self.server.stats.count(self._sent, status >= 400)
        took = time.perf_counter() - self._t0
        line = f"{self.client_address[0]} {self.command} {self.path} {status} {self._sent}B {took:.3f}s"
        self.server.log(line + (f" ({note})" if note else ""))

    def _headers(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Docker-Distribution-API-Version", API_VERSION)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()

    def _json(self, status: int, doc: Any, extra: dict[str, str] | None = None) -> None:
        body = json.dumps(doc, separators=(",", ":")).encode()
        self._bytes(status, body, {"Content-Type": "application/json", **(extra or {})})

    def _bytes(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self._headers(status, {**headers, "Content-Length": str(len(body))})
        if self.command != "HEAD":
            self.wfile.write(body)
            self._sent += len(body)

    def _error(self, status: int, code: ErrorCode, message: str, detail: Any = None) -> None:
        self._json(status, error_body(code, message, detail))
        self._done(status, message)

    # ------------------------------------------------------------------ methods

    def do_GET(self) -> None:
        self._t0 = time.perf_counter()
        self._sent = 0
        try:
            self._route(parse_path(self.path))
        except (BrokenPipeError, ConnectionResetError, socket.timeout) as exc:
            self.close_connection = True
            self._done(499, f"the client went away: {type(exc).__name__}")
        except Changed as exc:  # after the headers: the connection is cut, the body left short
            self.close_connection = True
            self._done(500, str(exc))

    do_HEAD = do_GET

    def _unsupported(self) -> None:
        self._t0 = time.perf_counter()
        self._sent = 0
        self.close_connection = True  # the body the client may send is not read
        self._json(
            405,
            error_body(ErrorCode.UNSUPPORTED, "this registry is read-only (airgap serve)"),
            {"Allow": ", ".join(READ_METHODS)},
        )
        self._done(405)

    do_PUT = do_POST = do_PATCH = do_DELETE = do_OPTIONS = _unsupported

    # ------------------------------------------------------------------ routes

    def _route(self, route: Route) -> None:
        cat = self.server.catalog
        if route.kind == Kind.BASE:
            self._json(200, {})
            return self._done(200)
        if route.kind == Kind.CATALOG:
            names = page(sorted(cat.repositories), route.n, route.last)
            if names is None:
                return self._error(400, ErrorCode.PAGINATION_NUMBER_INVALID, "n is not a number")
            self._json(200, {"repositories": names})
            return self._done(200)
        if route.kind == Kind.UNKNOWN:
            return self._error(404, ErrorCode.NOT_FOUND, "no such endpoint (read-only OCI API)")
        assert route.name is not None
        repo = cat.repositories.get(route.name)
        if repo is None:
            return self._error(404, ErrorCode.NAME_UNKNOWN, "repository name not known")
        if route.kind == Kind.TAGS:
            tags = page(sorted(repo.tags), route.n, route.last)
            if tags is None:
                return self._error(400, ErrorCode.PAGINATION_NUMBER_INVALID, "n is not a number")
            self._json(200, {"name": repo.name, "tags": tags})
            return self._done(200)
        ref = route.ref
        assert ref is not None
        if route.by_digest and not SHA256.fullmatch(ref):
            return self._error(400, ErrorCode.DIGEST_INVALID, "only sha256 digests are served")
        if route.kind == Kind.MANIFEST:
            digest = ref if route.by_digest else repo.tags.get(ref)
            manifest = cat.manifests.get(digest) if digest in repo.manifests else None
            if manifest is None:
                return self._error(404, ErrorCode.MANIFEST_UNKNOWN, "manifest unknown")
            return self._manifest(manifest)
        if ref in repo.manifests and ref in cat.manifests:  # a manifest read as a blob
            return self._manifest(cat.manifests[ref], as_blob=True)
        blob = cat.blobs.get(ref) if ref in repo.blobs else None
        if blob is None:
            return self._error(404, ErrorCode.BLOB_UNKNOWN, "blob unknown to registry")
        return self._blob(blob)

    def _manifest(self, m: ServedManifest, *, as_blob: bool = False) -> None:
        headers = {
            "Content-Type": "application/octet-stream" if as_blob else m.media_type,
            "Docker-Content-Digest": m.digest,
            "ETag": f'"{m.digest}"',
        }
        answer = parse_range(self.headers.get("Range"), len(m.data)) if as_blob else None
        if answer is UNSATISFIABLE:
            return self._unsatisfiable(len(m.data))
        if isinstance(answer, ByteRange):
            headers["Content-Range"] = f"bytes {answer.first}-{answer.last}/{len(m.data)}"
            self._bytes(206, m.data[answer.first : answer.last + 1], headers)
            return self._done(206)
        self._bytes(200, m.data, headers)
        self._done(200)

    def _unsatisfiable(self, size: int) -> None:
        self._headers(416, {"Content-Range": f"bytes */{size}", "Content-Length": "0"})
        self._done(416)

    def _blob(self, blob: BlobSource) -> None:
        answer = parse_range(self.headers.get("Range"), blob.size)
        if answer is UNSATISFIABLE:
            return self._unsatisfiable(blob.size)
        first, length, status = 0, blob.size, 200
        headers = {
            "Content-Type": "application/octet-stream",
            "Docker-Content-Digest": blob.digest,
            "ETag": f'"{blob.digest}"',
            "Accept-Ranges": "bytes",
        }
        if isinstance(answer, ByteRange):
            first, length, status = answer.first, answer.length, 206
            headers["Content-Range"] = f"bytes {answer.first}-{answer.last}/{blob.size}"
        try:
            opened = self._open(blob)  # before the headers: a changed file is a 500, not a cut
        except Changed as exc:
            return self._error(500, ErrorCode.UNAVAILABLE, str(exc))
        try:
            self._headers(status, {**headers, "Content-Length": str(length)})
            if self.command != "HEAD":
                self._send(blob, opened, first, length)
        finally:
            for fh in opened:
                fh.close()
        self._done(status)

    def _open(self, blob: BlobSource) -> list[Any]:
        """Each segment's file, opened now without following links and checked to be the file
        that was verified."""
        out: list[Any] = []
        try:
            for seg in blob.segments:
                try:
                    fd = os.open(seg.file.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                except OSError as exc:
                    raise Changed(f"{seg.file.path}: {exc.strerror}: the bundle changed") from None
                fh = os.fdopen(fd, "rb", buffering=0)
                out.append(fh)
                why = seg.file.changed(os.fstat(fd))
                if why is not None:
                    raise Changed(f"{seg.file.path} changed since it was verified: {why}")
        except Changed:
            for fh in out:
                fh.close()
            raise
        return out

    def _send(self, blob: BlobSource, opened: list[Any], first: int, length: int) -> None:
        """``length`` bytes of the blob from byte ``first``: sendfile from each segment."""
        pos = 0
        for seg, fh in zip(blob.segments, opened):
            lo, hi = max(first, pos), min(first + length, pos + seg.length)
            if lo < hi:
                want = hi - lo
                sent = self.connection.sendfile(fh, seg.offset + (lo - pos), want)
                self._sent += sent
                if sent != want:  # the file shrank under us: the client gets a short body
                    raise Changed(f"{seg.file.path} ended early: changed while it was sent")
            pos += seg.length
