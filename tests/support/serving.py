"""The reference server (scripts/serving) for tests: its module, its reference embeddings, its image,
a serving manifest around it, and a private Podman.

The image is built once per machine by ``scripts/serving/build-image.sh`` (mmdebstrap, about a
minute, then cached under $AIRGAP_CACHE_DIR/serving or ~/.cache/airgap/serving); a test that needs
it and cannot build it skips, or fails under AIRGAP_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.support.services import REPO_ROOT, unavailable

SERVING = REPO_ROOT / "scripts" / "serving"
IMAGE_REF = "airgap.local/minilm-server:1"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


@functools.cache
def server_module() -> ModuleType:
    """scripts/serving/minilm_server.py, imported by path (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("minilm_server", SERVING / "minilm_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def reference() -> dict[str, Any]:
    """scripts/serving/reference_embeddings.json (sentence-transformers' output)."""
    data: dict[str, Any] = json.loads((SERVING / "reference_embeddings.json").read_text())
    return data


@functools.cache
def _built_image() -> tuple[Path | None, str]:
    if os.geteuid() != 0 and shutil.which("mmdebstrap") is None:
        return None, "building the serving image needs mmdebstrap (or root to install it)"
    r = subprocess.run(
        ["bash", str(SERVING / "build-image.sh")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if r.returncode != 0:
        return None, f"scripts/serving/build-image.sh failed: {r.stderr.strip()[-2000:]}"
    return Path(r.stdout.strip().splitlines()[-1]), ""


def serving_image() -> Path:
    """The reference server's OCI layout (tag ``1``), built once and cached."""
    path, why = _built_image()
    if path is None:
        unavailable(why)
    return path


def podman_env(root: Path) -> dict[str, str]:
    """Environment for a private Podman under ``root``: vfs storage, runc when installed (Debian's
    crun refuses hybrid cgroup hosts), and the ulimits this sandbox allows."""
    if shutil.which("podman") is None:
        unavailable("podman is not installed (apt-get install podman catatonit)")
    root.mkdir(parents=True, exist_ok=True)
    runtime = 'runtime = "runc"\n' if shutil.which("runc") else ""
    (root / "containers.conf").write_text(
        f"[engine]\n{runtime}\n"
        '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
    )
    (root / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\nrunroot = "{root}/run"\ngraphroot = "{root}/storage"\n'
    )
    return {
        **os.environ,
        "CONTAINERS_CONF": str(root / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
    }


def copy_into_podman(layout: Path, env: dict[str, str], ref: str = IMAGE_REF) -> None:
    """The OCI layout's image into Podman's storage, its manifest digest unchanged (skopeo)."""
    if shutil.which("skopeo") is None:
        unavailable("skopeo is not installed")
    r = subprocess.run(
        ["skopeo", "copy", "-q", f"oci:{layout}:1", f"containers-storage:{ref}"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr


SERVE_SECTION = """\
serve:
  image: serving
  args: [--model, /weights, --host, $(AIRGAP_SERVE_HOST), --port, $(AIRGAP_SERVE_PORT),
         --model-name, all-MiniLM-L6-v2]
  port: 8000
  readiness: {{path: /health, timeout: 120s}}
  checks:
    - name: models
      path: /v1/models
      expect:
        latency: 2s
        json: [{{path: "$.data[0].id", equals: all-MiniLM-L6-v2}}]
    - name: embed-cat
      path: /v1/embeddings
      body: {{input: [The cat sits on the mat., A man is playing a guitar.]}}
      expect:
        status: 200
        latency: 5s
        json:
          - {{path: "$.object", equals: list}}
          - {{path: "$.data", length: 2}}
          - {{path: "$.data[0].embedding", length: 384}}
          - {{path: "$.data[0].embedding[0]", range: [{lo0}, {hi0}]}}
          - {{path: "$.data[1].embedding[4]", range: [{lo1}, {hi1}]}}
          - {{path: "$.usage.prompt_tokens", equals: 18}}
"""


def serving_manifest(folder: Path, weights: Path, layout: Path, name: str = "served") -> Path:
    """A CPU manifest for all-MiniLM-L6-v2 with the reference server's image and golden checks
    whose numbers come from reference_embeddings.json (within 1e-4)."""
    ref = reference()["items"]
    e0, e1 = ref[0]["embedding"][0], ref[1]["embedding"][4]
    text = f"""\
apiVersion: airgap/v1
kind: Bundle
metadata: {{name: {name}, version: 1.0.0}}
model:
  name: {MODEL_NAME}
  source: {{path: {weights}}}
  format: safetensors
  precision: fp32
  include: ["*.safetensors", "*.json", "vocab.txt", "tokenizer*"]
target:
  platform: linux/amd64
  accelerator: {{vendor: none}}
runtime:
  images:
    - {{ref: "{IMAGE_REF}", role: serving, from: oci-layout, path: {layout}}}
""" + SERVE_SECTION.format(lo0=e0 - 1e-4, hi0=e0 + 1e-4, lo1=e1 - 1e-4, hi1=e1 + 1e-4)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path
