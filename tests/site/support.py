"""Servers for the site image tests: a private real registry, a registry that refuses, a flaky proxy.

All of them listen on 127.0.0.1 and serve real sockets; the code under test talks to them through
python-dxf and requests as it would to any registry.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support import services

REGISTRY_BINARY = Path("/usr/bin/docker-registry")

REGISTRY_CONFIG = """\
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: "{root}"
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _registry_binary() -> Path:
    if not REGISTRY_BINARY.is_file():
        raise services.ServiceUnavailable(f"{REGISTRY_BINARY} is missing (Debian docker-registry)")
    return REGISTRY_BINARY


@contextmanager
def private_registry(folder: Path) -> Iterator[str]:
    """A fresh distribution registry (the Debian binary scripts/services.sh runs) with its storage
    in ``folder``: ``127.0.0.1:PORT``, stopped (the process this started) on exit."""
    binary = services.require(_registry_binary)
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    config = folder / "config.yml"
    config.write_text(REGISTRY_CONFIG.format(root=folder / "data", port=port))
    log = (folder / "registry.log").open("wb")
    proc = subprocess.Popen([str(binary), "serve", str(config)], stdout=log, stderr=log)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://{address}/v2/", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the private registry did not start: {(folder / 'registry.log').read_text()}"
                    ) from None
                time.sleep(0.05)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def delete_blob(registry: str, repo: str, digest: str) -> None:
    request = urllib.request.Request(f"http://{registry}/v2/{repo}/blobs/{digest}", method="DELETE")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202, response.status


def has_blob(registry: str, repo: str, digest: str) -> bool:
    request = urllib.request.Request(f"http://{registry}/v2/{repo}/blobs/{digest}", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=10):
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


def skopeo_inspect(*args: str) -> dict[str, Any]:
    tool = services.require(lambda: services.tool("skopeo"))
    out = subprocess.run(
        [tool, "inspect", "--tls-verify=false", *args], check=True, capture_output=True, timeout=60
    ).stdout
    doc: dict[str, Any] = json.loads(out)
    return doc


def skopeo_raw(*args: str) -> bytes:
    tool = services.require(lambda: services.tool("skopeo"))
    return subprocess.run(
        [tool, "inspect", "--raw", "--tls-verify=false", *args],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout


# ---------------------------------------------------------------------------- misbehaving servers


@dataclass
class Seen:
    """Requests a server got: (method, path)."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    address: str = ""

    def add(self, method: str, path: str) -> None:
        with self.lock:
            self.requests.append((method, path))


@contextmanager
def refusing_registry(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Iterator[tuple[str, Seen]]:
    """A plain-HTTP server answering every request with ``status`` and the JSON ``body``
    (except GET /v2/, answered 200 as registries do)."""
    seen = Seen()
    data = json.dumps(body).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            seen.add(self.command, self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with _serving(Handler) as address:
        yield address, seen


@contextmanager
def flaky_proxy(upstream: str, *, fail_uploads: int, drop_manifest_puts: int) -> Iterator[Seen]:
    """A proxy in front of ``upstream`` that answers the first ``fail_uploads`` upload starts
    (POST .../blobs/uploads/) with HTTP 503 and a JSON error, and closes the connection without an
    answer on the first ``drop_manifest_puts`` manifest PUTs; everything else is forwarded.
    Yields what it saw; ``seen.address`` is where it listens."""
    seen = Seen()
    left = {"uploads": fail_uploads, "puts": drop_manifest_puts}
    lock = threading.Lock()

    def take(kind: str) -> bool:
        with lock:
            if left[kind] > 0:
                left[kind] -= 1
                return True
            return False

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            seen.add(self.command, self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if self.command == "POST" and self.path.endswith("/blobs/uploads/") and take("uploads"):
                data = b'{"errors":[{"code":"UNAVAILABLE","message":"try again soon"}]}'
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if self.command == "PUT" and "/manifests/" in self.path and take("puts"):
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            conn = http.client.HTTPConnection(upstream, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                conn.close()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with _serving(Handler) as address:
        seen.address = address
        yield seen


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
