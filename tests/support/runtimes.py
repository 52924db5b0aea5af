"""One small runnable image bundle for the containerd and Podman tests, and their private stores.

The image is made by hand, without any engine: FROM scratch, Debian's static busybox as
``/bin/busybox`` with ``sh`` and ``cat`` linked to it, a ``/marker`` file, ``CMD cat /marker``,
one gzip layer, an OCI manifest in an OCI layout; the bundle (``from: oci-layout``) is built by
the real `airgap build`, signed, as a tar and as a layout folder. About 1 MB: cheap to stream.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import struct
import subprocess
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from packager.bundle.reader import open_bundle
from packager.site.images import BundleImage, image_entries
from tests.support import images as sup
from tests.support.projects import make_key, run_build
from tests.support.services import busybox_binary, require, unavailable

RUN = uuid.uuid4().hex[:8]

MANIFEST = """\
apiVersion: airgap/v1
kind: Bundle
metadata: {{name: runtimes, version: 1.0.0}}
model:
  name: org/runtimes
  source: {{path: ./weights}}
  format: safetensors
  precision: fp32
target:
  platform: linux/amd64
  accelerator: {{vendor: none}}
runtime:
  images:
    - {{ref: "{ref}", from: oci-layout, path: ./image}}
"""


@dataclass(frozen=True)
class RuntimeBundle:
    tar: Path  # the signed .airgap.tar
    folder: Path  # the same bundle as a layout folder
    pub: Path  # the signing key's public half
    ref: str  # the image's reference (airgap.local/...)
    marker: str  # what `cat /marker` prints
    image: BundleImage  # as image_entries reads it


def busybox_layout(root: Path, marker: str) -> Path:
    """The image as an OCI layout (ref name ``1``)."""
    tar = _layer(require(busybox_binary).read_bytes(), marker)
    gz = gzip.compress(tar, mtime=0)
    config = sup.canonical(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["cat", "/marker"]},
            "rootfs": {"type": "layers", "diff_ids": [sup.digest_of(tar)]},
        }
    )
    manifest = sup.image_manifest(config, [gz])
    entry = sup.named(sup.descriptor(sup.OCI_MANIFEST, manifest), "1")
    return sup.write_oci_layout(root, [gz, config, manifest], [entry])


def _layer(busybox: bytes, marker: str) -> bytes:
    """bin/busybox (executable), bin/sh and bin/cat linked to it, and /marker."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, mode in (
            ("bin/busybox", busybox, 0o755),
            ("marker", marker.encode() + b"\n", 0o644),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tf.addfile(info, io.BytesIO(data))
        for applet in ("sh", "cat"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname, link.mtime = tarfile.SYMTYPE, "busybox", 0
            tf.addfile(link)
    return out.getvalue()


def build_runtime_bundle(root: Path) -> RuntimeBundle:
    """Weights, the image, a key; then `airgap build` (tar, and a layout folder)."""
    marker = f"hello-runtimes-{RUN}"
    ref = f"airgap.local/runtimes-{RUN}:1"
    (root / "weights").mkdir(parents=True)
    (root / "weights" / "model.safetensors").write_bytes(_weights())
    busybox_layout(root / "image", marker)
    (root / "m.yaml").write_text(MANIFEST.format(ref=ref))
    priv, pub, _ = make_key(root, "rt")
    run_build(root / "m.yaml", root / "out", "--key", str(priv))
    run_build(root / "m.yaml", root / "layout", "--key", str(priv), "--layout-only")
    folder = root / "layout" / "runtimes-1.0.0"
    with open_bundle(folder) as b:
        (image,) = image_entries(b)
    return RuntimeBundle(
        root / "out" / "runtimes-1.0.0.airgap.tar", folder, pub, ref, marker, image
    )


def _weights() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    return struct.pack("<Q", len(header)) + header + bytes(16)


# ---------------------------------------------------------------------------- the runtimes


def containerd_address() -> str:
    """The socket of scripts/services.sh's containerd ($AIRGAP_CONTAINERD_ADDRESS), answering."""
    address = os.environ.get("AIRGAP_CONTAINERD_ADDRESS", "")
    if not address:
        unavailable("no containerd: AIRGAP_CONTAINERD_ADDRESS is not set")
    if shutil.which("ctr") is None:
        unavailable("`ctr` is not installed (apt-get install containerd)")
    r = subprocess.run(
        ["ctr", "--address", address, "version"], capture_output=True, text=True, timeout=30
    )
    if r.returncode != 0:
        unavailable(f"containerd at {address} does not answer: {r.stderr.strip()[-300:]}")
    return address


def ctr(address: str, namespace: str, *args: str, timeout: float = 120) -> str:
    r = subprocess.run(
        ["ctr", "--address", address, "--namespace", namespace, *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r.stdout
