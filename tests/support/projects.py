"""A small but complete project to build: weights, a docker-archive image, a kernel with test
vectors, a wheel, a runtime file; and signing keys for it."""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

from packager.signing import keys
from tests.support.images import write_docker_archive
from tests.support.wheels import make_wheel

PASS = "test-passphrase"

MANIFEST = """\
apiVersion: airgap/v1
kind: Bundle
metadata: {name: tamper, version: 1.0.0, expires: 30d}
model:
  name: org/tiny
  source: {path: ./weights}
  format: safetensors
  precision: bf16
target:
  platform: linux/amd64
  accelerator: {vendor: nvidia, chips: [h100]}
  stack: {cuda: "12.4", driver: ">=550.54.14"}
runtime:
  images: [{ref: "example.org/tool:1", from: docker-archive, path: image.tar}]
  wheels: {requirements: requirements.txt, wheelhouse: ./wheelhouse, python: "3.11"}
  files: [{source: files/run.sh, dest: bin/}]
kernels:
  - name: k
    kind: cuda-ptx
    path: kernels/k.ptx
    entry: k
    targets: [compute_90]
    tests: {inputs: [kernels/x.npy], expected: [kernels/y.npy], grid: [1], block: [1]}
"""

PTX = """\
.version 8.0
.target sm_90
.address_size 64

.visible .entry k(
\t.param .u64 k_param_0,
\t.param .u64 k_param_1
)
{
\tret;
}
"""


def npy(values: list[float]) -> bytes:
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({len(values)},), }}"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return (
        b"\x93NUMPY\x01\x00"
        + struct.pack("<H", len(header))
        + header.encode()
        + struct.pack(f"<{len(values)}f", *values)
    )


def tiny_safetensors() -> bytes:
    """3 MiB of weights: enough for several 1 MiB parts."""
    n = 3 * 1024 * 1024
    header = json.dumps(
        {"w": {"dtype": "BF16", "shape": [n // 2], "data_offsets": [0, n]}}
    ).encode()
    return struct.pack("<Q", len(header)) + header + os.urandom(n)


def make_key(
    folder: Path, name: str, algorithm: str = "ecdsa-p256-sha256"
) -> tuple[Path, Path, str]:
    key = keys.generate_private_key(algorithm)  # type: ignore[arg-type]
    priv, pub = folder / f"{name}.key.pem", folder / f"{name}.pub.pem"
    priv.write_bytes(keys.private_key_pem(key, PASS.encode()))
    pub.write_bytes(keys.public_key_pem(key))
    return priv, pub, keys.keyid(key.public_key())


def project(folder: Path, name: str = "tamper") -> Path:
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "model.safetensors").write_bytes(tiny_safetensors())
    (folder / "weights" / "config.json").write_text('{"architectures": ["Tiny"]}\n')
    write_docker_archive(folder / "image.tar", repo_tags=["example.org/tool:1"])
    make_wheel(folder / "wheelhouse", "servekit", "1.0.0")
    (folder / "requirements.txt").write_text("servekit==1.0.0\n")
    (folder / "files").mkdir()
    (folder / "files" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (folder / "kernels").mkdir()
    (folder / "kernels" / "k.ptx").write_text(PTX)
    (folder / "kernels" / "x.npy").write_bytes(npy([1.0, 2.0]))
    (folder / "kernels" / "y.npy").write_bytes(npy([2.0, 4.0]))
    (folder / "m.yaml").write_text(MANIFEST.replace("name: tamper", f"name: {name}"))
    return folder / "m.yaml"


def run_build(manifest: Path, out: Path, *args: str, env: dict[str, str] | None = None) -> None:
    r = subprocess.run(
        [os.sys.executable, "-m", "packager", "build", str(manifest), "--out", str(out), *args],  # type: ignore[attr-defined]
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "AIRGAP_KEY_PASSPHRASE": PASS, "AIRGAP_CACHE_DIR": str(out.parent / "cache"), **(env or {})},
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
