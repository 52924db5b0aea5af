"""A fleet of nodes installing from one registry, with every byte the registry serves counted.

:class:`CountingProxy` is a small loopback reverse proxy in front of the real registry (one per
node, so each node's bytes are its own): it forwards every request as it is, streams the answer
back, and counts the bytes of blob and manifest bodies it served; ``throttle`` slows large
bodies down so that a test can kill a node midway through a fetch. :func:`start_node` runs
``airgap install oci://...`` for one node in its own process (used by tests/e2e/test_fleet.py
and ``scripts/bench.py fleet``).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.reports import report_problem

_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Served:
    blob_bytes: int = 0
    manifest_bytes: int = 0
    blobs: int = 0  # complete blob bodies
    in_flight: int = 0  # blob bodies being sent now
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        server: Any = self.server
        served: Served = server.served
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(server.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        upstream.request(self.command, self.path, body=body, headers=headers)
        r = upstream.getresponse()
        blob = self.command == "GET" and "/blobs/sha256:" in self.path and r.status == 200
        manifest = self.command == "GET" and "/manifests/" in self.path
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in _HOP:
                self.send_header(k, v)
        self.end_headers()
        with served.lock:
            served.requests += 1
            served.in_flight += blob
        try:
            slow = blob and server.throttle and int(r.getheader("Content-Length") or 0) > 2**20
            flip = blob and server.corrupt is not None and server.corrupt in self.path
            while chunk := r.read(64 * 1024):
                if flip:  # the registry's storage damaged: one bit of the first chunk
                    chunk, flip = bytes([chunk[0] ^ 1]) + chunk[1:], False
                self.wfile.write(chunk)
                with served.lock:
                    if blob:
                        served.blob_bytes += len(chunk)
                    elif manifest:
                        served.manifest_bytes += len(chunk)
                if slow:
                    time.sleep(server.throttle)
        finally:
            with served.lock:
                served.in_flight -= blob
                served.blobs += blob
            upstream.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


class CountingProxy:
    """A reverse proxy on 127.0.0.1 to ``upstream`` (HOST:PORT, plain HTTP)."""

    def __init__(self, upstream: str, *, throttle: float = 0.0, corrupt: str | None = None) -> None:
        """``throttle``: seconds of sleep per 64 KiB of a blob body over 1 MiB; ``corrupt``: a
        digest whose blob body is served with one bit flipped."""
        server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.handle_error = lambda *_: None  # a killed node breaks its connections
        server.upstream = upstream
        server.throttle = throttle
        server.corrupt = corrupt
        server.served = Served()
        self.server: Any = server
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def served(self) -> Served:
        s: Served = self.server.served
        return s

    def reset(self) -> None:
        self.server.served = Served()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def proxies(upstream: str, n: int, *, throttle: float = 0.0) -> Iterator[list[CountingProxy]]:
    made = [CountingProxy(upstream, throttle=throttle) for _ in range(n)]
    try:
        yield made
    finally:
        for p in made:
            p.close()


def start_node(
    source: str, prefix: Path, pub: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``airgap install SOURCE --prefix PREFIX --key PUB --no-probe --json`` in its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "packager", "install", source, "--prefix", str(prefix),
         "--key", str(pub), "--no-probe", "--json", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )  # fmt: skip


def finish(node: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    out, err = node.communicate(timeout=timeout)
    assert node.returncode == 0, f"exit {node.returncode}: {err[-2000:]}"
    problem = report_problem(["install", "--json"], out)  # schemas/install-report
    assert problem is None, problem
    doc: dict[str, Any] = json.loads(out)
    return doc
