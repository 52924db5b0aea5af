"""`airgap lock` over a two-target manifest with real services: a multi-arch image in the real
registry, a wheelhouse of real wheels, the real MiniLM weights; then a tag that moves is drift."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from tests.support.cli import airgap
from tests.support.images import multi_arch, push_multi_arch
from tests.support.wheels import make_wheel

pytestmark = pytest.mark.services


def manifest(registry: str, repo: str) -> str:
    return f"""\
apiVersion: airgap/v1
kind: Bundle
metadata: {{name: both, version: 1.0.0}}
model:
  name: sentence-transformers/all-MiniLM-L6-v2
  source: {{path: ./weights}}
  format: safetensors
  precision: fp32
  include: ["*.safetensors", "*.json"]
runtime:
  images:
    - {{ref: "{registry}/{repo}:v1", insecure: true}}
  wheels: {{requirements: requirements.txt, wheelhouse: ./wheelhouse, python: "3.11"}}
targets:
  ascend:
    platform: linux/arm64
    accelerator: {{vendor: huawei, chips: [ascend910b3]}}
    stack: {{cann: ">=8.0.0"}}
  cuda:
    platform: linux/amd64
    accelerator: {{vendor: nvidia, chips: [h100]}}
    stack: {{cuda: "12.4", driver: ">=550.54.14"}}
"""


@pytest.fixture
def project(tmp_path: Path, minilm_dir: Path, registry: str) -> tuple[Path, str, str]:
    repo = f"airgap-test/lock-{uuid.uuid4().hex[:8]}"
    push_multi_arch(registry, repo, "v1", multi_arch(marker="v1"))

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(minilm_dir, tmp_path / "weights", copy_function=link_or_copy)
    wh = tmp_path / "wheelhouse"
    make_wheel(wh, "servekit", "1.0.0", requires=["fastjson>=2"])
    make_wheel(
        wh, "fastjson", "2.1.0", tag="cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
    )
    make_wheel(
        wh, "fastjson", "2.1.0", tag="cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64"
    )
    (tmp_path / "requirements.txt").write_text("servekit==1.0.0\n")
    (tmp_path / "m.yaml").write_text(manifest(registry, repo))
    return tmp_path, registry, repo


def test_each_target_locks_its_own_platform(project: tuple[Path, str, str]) -> None:
    folder, _registry, _repo = project
    r = airgap("lock", str(folder / "m.yaml"), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    lock = json.loads((folder / "m.lock.json").read_text())
    ascend, cuda = lock["targets"]
    image = multi_arch(marker="v1")
    assert ascend["images"][0]["manifest_digest"] == image.manifest_digest("linux/arm64/v8")
    assert cuda["images"][0]["manifest_digest"] == image.manifest_digest("linux/amd64")
    assert (
        ascend["images"][0]["index_digest"]
        == cuda["images"][0]["index_digest"]
        == image.index_digest
    )
    assert [w["filename"] for w in ascend["wheels"]] == [
        "fastjson-2.1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "servekit-1.0.0-py3-none-any.whl",
    ]
    assert "x86_64" in cuda["wheels"][0]["filename"]
    assert ascend["python"] == "3.11"
    assert lock["model"] == json.loads((folder / "m.lock.json").read_text())["model"]


def test_a_tag_that_moved_since_the_lock_is_named(project: tuple[Path, str, str]) -> None:
    folder, registry, repo = project
    assert airgap("lock", str(folder / "m.yaml")).returncode == 0
    push_multi_arch(registry, repo, "v1", multi_arch(marker="v2"))  # someone re-pushes the tag
    r = airgap("lock", str(folder / "m.yaml"), "--check", "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    drift = json.loads(r.stdout)["drift"]
    assert {(d["kind"], d["name"]) for d in drift} == {("image", f"{registry}/{repo}:v1")}
    assert len(drift) == 2  # once per target platform
    moved = multi_arch(marker="v2")
    assert {d["now"] for d in drift} == {
        moved.manifest_digest("linux/amd64"),
        moved.manifest_digest("linux/arm64/v8"),
    }


def test_an_unreachable_registry_is_named_within_the_timeout(
    tmp_path: Path, minilm_dir: Path
) -> None:
    shutil.copytree(minilm_dir, tmp_path / "weights")
    (tmp_path / "m.yaml").write_text(
        manifest("127.0.0.1:1", "nothing/here").split("  wheels:")[0]
        + "targets:\n  cuda:\n    platform: linux/amd64\n"
        "    accelerator: {vendor: nvidia, chips: [h100]}\n"
        '    stack: {cuda: "12.4", driver: ">=550.54.14"}\n'
    )
    r = airgap("lock", str(tmp_path / "m.yaml"), "--timeout", "3")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "127.0.0.1:1" in r.stderr and "Traceback" not in r.stderr
