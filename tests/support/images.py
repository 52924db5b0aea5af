"""Helpers for tests/resolve/test_images.py: image content built by hand, and small servers.

Everything here writes real bytes (blobs, manifests, layouts, tars) or serves real sockets; the
resolver under test reads them through its ordinary code paths.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import socket
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


# ---------------------------------------------------------------------------- image content


def layer_tar(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    """(uncompressed tar, gzip of it) holding ``files``; deterministic bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    tar = raw.getvalue()
    return tar, gzip.compress(tar, mtime=0)


def image_config(
    architecture: str, diff_ids: list[str], *, variant: str | None = None, os: str = "linux"
) -> bytes:
    cfg: dict[str, Any] = {
        "architecture": architecture,
        "os": os,
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    if variant:
        cfg["variant"] = variant
    return canonical(cfg)


def image_manifest(config: bytes, layers: list[bytes], *, docker: bool = False) -> bytes:
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
            "config": descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config),
            "layers": [descriptor(DOCKER_LAYER if docker else OCI_LAYER, b) for b in layers],
        }
    )


def index(entries: list[tuple[bytes, dict[str, str]]], *, docker: bool = False) -> bytes:
    """An OCI index (or docker manifest list) of (manifest bytes, platform)."""
    mt = DOCKER_MANIFEST if docker else OCI_MANIFEST
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST if docker else OCI_INDEX,
            "manifests": [descriptor(mt, m, platform=p) for m, p in entries],
        }
    )


@dataclass(frozen=True)
class MultiArch:
    """A hand-made two-platform image: one shared layer, an amd64 and an arm64/v8 config."""

    layer: bytes
    configs: dict[str, bytes]  # platform -> config
    manifests: dict[str, bytes]  # platform -> manifest
    index: bytes

    @property
    def index_digest(self) -> str:
        return digest_of(self.index)

    def manifest_digest(self, platform: str) -> str:
        return digest_of(self.manifests[platform])


def multi_arch(*, docker: bool = False, marker: str = "") -> MultiArch:
    tar, gz = layer_tar({"hello.txt": f"hello from airgap {marker}\n".encode()})
    diff_id = digest_of(tar)
    configs = {
        "linux/amd64": image_config("amd64", [diff_id]),
        "linux/arm64/v8": image_config("arm64", [diff_id], variant="v8"),
    }
    manifests = {p: image_manifest(c, [gz], docker=docker) for p, c in configs.items()}
    plats = {
        "linux/amd64": {"os": "linux", "architecture": "amd64"},
        "linux/arm64/v8": {"os": "linux", "architecture": "arm64", "variant": "v8"},
    }
    idx = index([(manifests[p], plats[p]) for p in manifests], docker=docker)
    return MultiArch(gz, configs, manifests, idx)


def push_multi_arch(registry: str, repo: str, tag: str, image: MultiArch) -> None:
    """Upload blobs, the two manifests by digest and the index by tag, bytes as they are."""
    import dxf

    client = dxf.DXF(registry, repo, insecure=True, timeout=30)
    with client:
        for blob in (image.layer, *image.configs.values()):
            client.push_blob(data=blob, digest=digest_of(blob), check_exists=True)
        for manifest in image.manifests.values():
            client.set_manifest(digest_of(manifest), manifest.decode())
        client.set_manifest(tag, image.index.decode())


# ---------------------------------------------------------------------------- OCI layouts


def write_blob(root: Path, data: bytes) -> str:
    d = digest_of(data)
    path = root / "blobs" / "sha256" / d.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return d


def write_oci_layout(root: Path, blobs: list[bytes], entries: list[dict[str, Any]]) -> Path:
    """An OCI image layout with ``blobs`` and an index.json listing ``entries``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for blob in blobs:
        write_blob(root, blob)
    (root / "index.json").write_bytes(
        canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    )
    return root


def named(desc: dict[str, Any], name: str) -> dict[str, Any]:
    return {**desc, "annotations": {"org.opencontainers.image.ref.name": name}}


def multi_arch_layout(root: Path, image: MultiArch, name: str = "v1") -> Path:
    blobs = [image.layer, *image.configs.values(), *image.manifests.values(), image.index]
    return write_oci_layout(root, blobs, [named(descriptor(OCI_INDEX, image.index), name)])


# ---------------------------------------------------------------------------- docker-archive


def write_docker_archive(
    path: Path,
    *,
    architecture: str = "amd64",
    repo_tags: list[str] | None = None,
    oci_names: bool = False,
) -> tuple[str, list[str]]:
    """A `docker save`-style tar (legacy or Docker 25+ names); (config digest, diff ids)."""
    tar, _gz = layer_tar({"bin/tool": b"#!/bin/sh\necho hi\n"})
    diff_id = digest_of(tar)
    config = image_config(architecture, [diff_id])
    cdigest = digest_of(config)
    hexid = cdigest.split(":", 1)[1]
    if oci_names:
        config_name, layer_name = f"blobs/sha256/{hexid}", f"blobs/sha256/{diff_id.split(':')[1]}"
    else:
        config_name, layer_name = f"{hexid}.json", f"{'a' * 64}/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": repo_tags, "Layers": [layer_name]}]
    with tarfile.open(path, "w") as tf:
        for name, data in (
            (layer_name, tar),
            (config_name, config),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return cdigest, [diff_id]


# ---------------------------------------------------------------------------- servers


@contextmanager
def silent_server() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a TCP server that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)  # the kernel completes handshakes; nobody ever reads or writes
        yield f"127.0.0.1:{s.getsockname()[1]}"


@contextmanager
def fake_registry(routes: dict[str, tuple[int, dict[str, str], bytes]]) -> Iterator[str]:
    """A plain-HTTP server answering GET/HEAD of ``routes`` (path -> status, headers, body)."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, body: bool) -> None:
            status, headers, data = routes.get(self.path, (404, {}, b'{"errors":[]}'))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer(True)

        def do_HEAD(self) -> None:
            self._answer(False)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
