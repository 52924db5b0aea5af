"""Images end to end with the real engine and registry: a registry image collected blob for blob
into a bundle, read by skopeo from the bundle tar, loaded into the engine from the bundle, and the
bundle's smoke command run by the probe in that image."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import docker
import pytest

from packager.bundle.reader import open_bundle
from packager.site.images import load_into_docker
from tests.support.projects import PASS, make_key

pytestmark = pytest.mark.services


@pytest.fixture
def bundle(
    tmp_path: Path,
    registry: str,
    docker_client: docker.DockerClient,
    busybox_image: str,
    minilm_dir: Path,
) -> tuple[Path, str, str]:
    repo = f"{registry}/airgap-test/e2e-{uuid.uuid4().hex[:8]}"
    docker_client.images.get(busybox_image).tag(repo, tag="v1")
    docker_client.images.push(repo, tag="v1")
    ref = f"{repo}:v1"
    (tmp_path / "weights").mkdir()
    shutil.copyfile(minilm_dir / "config.json", tmp_path / "weights" / "config.json")
    (tmp_path / "m.yaml").write_text(
        "apiVersion: airgap/v1\nkind: Bundle\nmetadata: {name: e2e, version: 1.0.0}\n"
        "model: {name: org/m, source: {path: ./weights}, format: onnx}\n"
        "target: {platform: linux/amd64, accelerator: {vendor: none}}\n"
        f'runtime: {{images: [{{ref: "{ref}", insecure: true}}]}}\n'
        'smoke: {image: serving, command: [sh, -c, "echo smoke-$((6*7))"], timeout: 60s, '
        "expect: {exit_code: 0, stdout_contains: smoke-42}}\n"
    )
    env = {**os.environ, "AIRGAP_KEY_PASSPHRASE": PASS}
    priv, _, _ = make_key(tmp_path, "signer")
    r = subprocess.run([sys.executable, "-m", "packager", "build", str(tmp_path / "m.yaml"), "--out",
                        str(tmp_path / "out"), "--key", str(priv)], capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    registry_digest = json.loads(
        subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["Digest"]
    docker_client.images.remove(ref, force=True)
    return tmp_path / "out" / "e2e-1.0.0.airgap.tar", ref, registry_digest


def test_skopeo_reads_and_copies_the_image_from_the_bundle_tar(
    bundle: tuple[Path, str, str], registry: str
) -> None:
    tar, ref, digest = bundle
    info = subprocess.run(
        ["skopeo", "inspect", f"oci-archive:{tar}:{ref}"], capture_output=True, text=True
    )
    assert info.returncode == 0, info.stderr
    dest = f"{registry}/airgap-test/copied-{uuid.uuid4().hex[:8]}:v1"
    copy = subprocess.run(["skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false", f"oci-archive:{tar}:{ref}",
                           f"docker://{dest}"], capture_output=True, text=True)  # fmt: skip
    assert copy.returncode == 0, copy.stderr
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{dest}"],
        capture_output=True,
        check=True,
    ).stdout
    import hashlib

    listed = json.loads(raw)
    # the registry's manifest is kept byte for byte: under the copy's tag, or as its only platform entry
    kept = "sha256:" + hashlib.sha256(raw).hexdigest() == digest or any(
        m["digest"] == digest for m in listed.get("manifests", [])
    )
    assert kept, listed


def test_the_engine_loads_the_image_and_the_probe_runs_the_smoke_command(
    bundle: tuple[Path, str, str], docker_client: docker.DockerClient
) -> None:
    tar, ref, _ = bundle
    with open_bundle(tar) as b:
        (loaded,) = load_into_docker(b, docker_client)
    assert loaded.ref == ref
    out = docker_client.containers.run(
        ref, ["sh", "-c", "echo loaded-from-bundle"], network_mode="none", remove=True
    )
    assert out.strip() == b"loaded-from-bundle"
    pub = tar.parent.parent / "signer.pub.pem"
    r = subprocess.run([sys.executable, "-m", "packager", "probe", "--bundle", str(tar), "--key", str(pub), "--json"],
                       capture_output=True, text=True, timeout=180)  # fmt: skip
    (smoke,) = [c for c in json.loads(r.stdout)["checks"] if c["id"] == "smoke"]
    assert smoke["status"] == "PASS", smoke
