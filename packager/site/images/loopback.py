"""A registry on 127.0.0.1 for the length of one load: :class:`LoopbackRegistry`.

Podman keeps no image from a stream without first copying it whole to a temporary file
(``podman load`` from stdin does, and then unpacks an oci-archive into a temporary folder), and
its docker-archive loses the manifest digest. A pull from a registry keeps the manifest's bytes and
digest and streams each blob. So the load serves the bundle's images, read-only and only for
itself, on a random loopback port under a random repository name, and asks Podman to pull them
by digest: every manifest and blob is streamed from the bundle as it is asked for and hashed as it
passes (:func:`packager.site.images.listing.verified_chunks`: the last chunk is held back until the
digest is checked, so a corrupt blob is cut short and Podman, which checks digests too, keeps
nothing of it). The first such failure is kept (:attr:`LoopbackRegistry.failure`) so that the load
reports it rather than Podman's words about a broken connection.

Distribution API subset: ``GET /v2/``, ``GET|HEAD /v2/<repo>/manifests/<digest>``,
``GET|HEAD /v2/<repo>/blobs/<digest>``; anything else is 404.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from packager.bundle.reader import Bundle
from packager.errors import AirgapError
from packager.site.images.listing import Blob, BundleImage, verified_chunks


class LoopbackRegistry:
    """Serve the platform manifests, configs and layers of ``images`` from ``bundle``."""

    def __init__(
        self, bundle: Bundle, images: list[BundleImage], sent: Callable[[int], None], dest: str
    ) -> None:
        self.bundle = bundle
        self.dest = dest
        self.repository = f"airgap-load/{secrets.token_hex(8)}"
        self.manifests: dict[str, tuple[BundleImage, Blob]] = {}
        self.blobs: dict[str, tuple[BundleImage, Blob, str]] = {}
        for image in images:
            m = image.manifest
            self.manifests.setdefault(m.digest, (image, m.blob))
            self.blobs.setdefault(m.config.digest, (image, m.config, "image config"))
            for layer in m.layers:
                self.blobs.setdefault(layer.digest, (image, layer, "layer"))
        self.failure: AirgapError | None = None
        self._sent = sent
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifetime

    def __enter__(self) -> LoopbackRegistry:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="airgap-loopback", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def address(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    def reference(self, manifest_digest: str) -> str:
        """What to pull: ``127.0.0.1:PORT/airgap-load/<random>@<manifest digest>``."""
        return f"{self.address}/{self.repository}@{manifest_digest}"

    # ---------------------------------------------------------------- what handlers use

    def sent(self, n: int) -> None:
        with self._lock:
            self._sent(n)

    def failed(self, exc: AirgapError) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = exc


def _handler(registry: LoopbackRegistry) -> type[BaseHTTPRequestHandler]:
    prefix = f"/v2/{registry.repository}/"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "airgap-loopback"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/v2/", "/v2"):
                self._small(200, b"{}", "application/json", body)
                return
            if path.startswith(prefix):
                kind, _, digest = path[len(prefix) :].partition("/")
                if kind == "manifests" and digest in registry.manifests:
                    image, blob = registry.manifests[digest]
                    self._blob(image, blob, "manifest", body)
                    return
                if kind == "blobs" and digest in registry.blobs:
                    self._blob(*registry.blobs[digest], body=body)
                    return
            error = {"errors": [{"code": "NAME_UNKNOWN", "message": "not served here"}]}
            self._small(404, json.dumps(error).encode(), "application/json", body)

        def _small(self, status: int, data: bytes, media_type: str, body: bool) -> None:
            self.send_response(status)
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def _blob(self, image: BundleImage, blob: Blob, what: str, body: bool) -> None:
            self.send_response(200)
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            self.send_header(
                "Content-Type",
                blob.media_type if what == "manifest" else "application/octet-stream",
            )
            self.send_header("Content-Length", str(blob.size))
            self.send_header("Docker-Content-Digest", blob.digest)
            self.end_headers()
            if not body:
                return
            try:
                for chunk in verified_chunks(registry.bundle, image.ref, blob, what, registry.dest):
                    self.wfile.write(chunk)
                    registry.sent(len(chunk))
            except AirgapError as exc:  # cut short: the client sees a truncated body
                registry.failed(exc)
                self.close_connection = True
            except OSError:  # the client went away (it retries, or gives up and says so)
                self.close_connection = True

    return Handler
