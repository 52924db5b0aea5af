"""`airgap diff` over two real signed bundles (and an installed version), by the real CLI.

v1 and v2 of one project: v2 changes the version, one weight file, one image layer (an OCI
layout image), the kernel's declared targets and adds a runtime file. What diff must say was
computed by hand from those changes.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from packager.util.schemas import validator
from tests.support.cli import airgap
from tests.support.golden import FIXTURE, write_private_key, write_public_key
from tests.support.images import (
    OCI_CONFIG,
    descriptor,
    image_config,
    image_manifest,
    layer_tar,
    named,
    write_oci_layout,
)

PASSPHRASE = "diff test passphrase"
SEED = b"airgap diff test key"
IMAGE = """\
  images:
    - {ref: airgap.local/app:1, role: serving, from: oci-layout, path: ./image}
"""


def _image(root: Path, app: bytes) -> None:
    base, _ = layer_tar({"etc/base": b"base layer, the same in both versions\n"})
    top, _ = layer_tar({"app/main": app})
    cfg = image_config("amd64", ["sha256:" + "0" * 64, "sha256:" + "1" * 64])
    manifest = image_manifest(cfg, [base, top])
    if (root / "blobs").exists():
        shutil.rmtree(root)
    write_oci_layout(root, [base, top, cfg, manifest], [named(descriptor(
        "application/vnd.oci.image.manifest.v1+json", manifest,
        platform={"architecture": "amd64", "os": "linux"}), "1")])  # fmt: skip
    assert OCI_CONFIG


def _version(base: Path, tag: str) -> Path:
    """One project folder per version, built with the golden key's sibling."""
    d = base / tag
    shutil.copytree(FIXTURE, d)
    (d / "golden.lock.json").unlink()
    text = (d / "golden.yaml").read_text()
    text = text.replace("runtime:\n", "runtime:\n" + IMAGE)
    if tag == "v2":
        text = text.replace("version: 1.0.0", "version: 1.1.0")
        text = text.replace("targets: [sm_90]", "targets: [sm_90, sm_80]")
        text = text.replace(
            "    - {source: ./serving.conf, dest: config/serving.conf}\n",
            "    - {source: ./serving.conf, dest: config/serving.conf}\n"
            "    - {source: ./extra.txt, dest: config/extra.txt}\n",
        )
        (d / "extra.txt").write_text("added in v2\n")
        (d / "weights" / "config.json").write_text('{"hidden_size": 8, "changed": true}\n')
    (d / "golden.yaml").write_text(text)
    _image(d / "image", f"app {tag}\n".encode())
    return d


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    base = tmp_path_factory.mktemp("diff")
    key = write_private_key(base, PASSPHRASE, SEED, "k")
    pub = write_public_key(base, SEED, "k")
    out = []
    for tag in ("v1", "v2"):
        project = _version(base, tag)
        r = airgap(
            "build", str(project / "golden.yaml"), "--key", str(key), "--out", str(base / tag / "out"),
            env={"AIRGAP_KEY_PASSPHRASE": PASSPHRASE, "SOURCE_DATE_EPOCH": "1700000000"},
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        out.append(next((base / tag / "out").glob("*.airgap.tar")))
    return out[0], out[1], pub, base


def _diff(*args: str) -> dict[str, Any]:
    r = airgap("diff", *args, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    validator("diff").validate(doc)
    return doc


def test_the_json_names_every_change(bundles: tuple[Path, Path, Path, Path]) -> None:
    v1, v2, _, _ = bundles
    doc = _diff(str(v1), str(v2))
    assert doc["verified"] is False
    assert sorted(c["path"] for c in doc["manifest"]) == [
        "kernels[0].targets[1]",
        "metadata.version",
        "runtime.files[1].dest",
        "runtime.files[1].source",
    ]
    roles = {r["role"]: r for r in doc["roles"]}
    # model: config.json changed (one in, one out), model.safetensors and tokenizer.json kept
    assert roles["model"]["added"]["blobs"] == 1 and roles["model"]["removed"]["blobs"] == 1
    assert roles["model"]["unchanged"]["blobs"] == 2
    # the image: its top layer and its manifest are new, its base layer and config are kept
    assert roles["image"]["added"]["blobs"] == 2 and roles["image"]["unchanged"]["blobs"] == 2
    assert roles["file"]["added"]["blobs"] == 1 and roles["file"]["unchanged"]["blobs"] == 1
    assert roles["kernel"]["added"]["blobs"] == 0
    (image,) = doc["images"]
    assert image["ref"] == "airgap.local/app:1" and image["status"] == "changed"
    layers = image["layers"]
    assert layers["known"] and len(layers["added"]) == 1 and len(layers["removed"]) == 1
    assert layers["unchanged"]["count"] == 1
    (kernel,) = doc["kernels"]
    assert kernel["status"] == "changed" and kernel["new"]["targets"] == ["sm_80", "sm_90"]
    assert kernel["binary_changed"] is False
    assert doc["wheels"] == []
    delta = doc["delta"]
    assert 0 < delta["bytes"] < delta["full_bytes"]


def test_the_delta_it_announces_is_the_one_build_base_writes(
    bundles: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    """What diff says a delta from v1 carries is what `build v2 --base v1` carries: the blobs it
    does not leave out (the unchanged image layer and the probe too: a site's store keeps
    neither) and every bundle file."""
    v1, v2, _, base = bundles
    r = airgap("build", str(base / "v2" / "golden.yaml"), "--key", str(base / "k.key.pem"),
               "--out", str(tmp_path), "--base", str(v1),
               env={"AIRGAP_KEY_PASSPHRASE": PASSPHRASE, "SOURCE_DATE_EPOCH": "1700000000"})  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    made = _bundle_json(next(tmp_path.glob("*.delta-from-1.0.0.airgap.tar")))
    left_out = set(made["delta"]["not_carried"])
    carried = [b for b in made["blobs"] if b["digest"] not in left_out]
    assert left_out and any(not b.get("paths") for b in carried)  # the case that differs
    delta = _diff(str(v1), str(v2))["delta"]
    assert (delta["blobs"], delta["bytes"]) == (len(carried), sum(b["size"] for b in carried))
    assert (delta["full_blobs"], delta["full_bytes"]) == (
        len(made["blobs"]), sum(b["size"] for b in made["blobs"]))  # fmt: skip
    assert (delta["files"], delta["files_bytes"]) == (
        len(made["files"]), sum(f["size"] for f in made["files"]))  # fmt: skip
    # the delta is v2: one content digest (what `airgap digest` says of both), read or verified
    tar = next(tmp_path.glob("*.delta-from-1.0.0.airgap.tar"))
    full = airgap("digest", str(v2)).stdout.strip()
    for check in ((), ("--key", str(base / "k.pub.pem"))):
        same = _diff(str(v2), str(tar), *check)
        assert same["same_content"] is True, check
        assert same["old"]["digest"] == same["new"]["digest"] == full, check


def _bundle_json(tar: Path) -> dict[str, Any]:
    with tarfile.open(tar) as tf:
        member = tf.extractfile("airgap/bundle.json")
        assert member is not None
        doc: dict[str, Any] = json.loads(member.read())
    return doc


def test_the_text_fits_a_screen_and_says_unverified(bundles: tuple[Path, Path, Path, Path]) -> None:
    v1, v2, _, _ = bundles
    r = airgap("diff", str(v1), str(v2))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) <= 30
    assert "unverified" in r.stdout
    assert 'metadata.version: "1.0.0" -> "1.1.0"' in r.stdout
    assert "image changed airgap.local/app:1" in r.stdout and "+1 layer(s)" in r.stdout
    assert "kernel changed vadd: targets sm_90 -> sm_80, sm_90" in r.stdout
    assert "a delta from old would carry" in r.stdout


def test_with_a_key_both_sides_are_verified(bundles: tuple[Path, Path, Path, Path]) -> None:
    v1, v2, pub, _ = bundles
    doc = _diff(str(v1), str(v2), "--key", str(pub))
    assert doc["verified"] is True
    assert doc["old"]["signers"] and doc["new"]["signers"]
    r = airgap("diff", str(v1), str(v2), "--key", str(pub))
    assert "unverified" not in r.stdout and "signed by" in r.stdout


def test_a_wrong_key_fails_and_names_the_side(
    bundles: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    v1, v2, _, _ = bundles
    other = write_public_key(tmp_path, b"another key", "other")
    r = airgap("diff", str(v1), str(v2), "--key", str(other))
    assert r.returncode == 1 and str(v1) in r.stderr and "not verified" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_bundle_against_itself_is_the_same_content(
    bundles: tuple[Path, Path, Path, Path],
) -> None:
    v1, _, _, _ = bundles
    doc = _diff(str(v1), str(v1))
    assert doc["same_content"] is True
    # nothing with an install path is carried again; what a site's store keeps no copy of is
    unstored = [b for b in _bundle_json(v1)["blobs"] if not b.get("paths")]
    assert (doc["delta"]["blobs"], doc["delta"]["bytes"]) == (
        len(unstored), sum(b["size"] for b in unstored))  # fmt: skip


def test_a_layout_folder_and_parts_read_as_the_tar(
    bundles: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    _, v2, pub, base = bundles
    env = {"AIRGAP_KEY_PASSPHRASE": PASSPHRASE, "SOURCE_DATE_EPOCH": "1700000000"}
    key = str(base / "k.key.pem")
    for extra in (["--layout-only"], ["--split", "1M"]):
        out = tmp_path / extra[0].strip("-")
        r = airgap("build", str(base / "v2" / "golden.yaml"), "--key", key, "--out", str(out),
                   *extra, env=env)  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        other = (
            out / "golden-1.1.0" if extra[0] == "--layout-only" else next(out.glob("*.parts.json"))
        )
        doc = _diff(str(v2), str(other), "--key", str(pub))
        assert doc["same_content"] is True and doc["verified"] is True
        assert doc["new"]["digest"] == doc["old"]["digest"]


def test_an_installed_version_against_a_new_bundle(
    bundles: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    v1, v2, pub, _ = bundles
    prefix = tmp_path / "site"
    r = airgap("install", str(v1), "--prefix", str(prefix), "--key", str(pub), "--no-probe")
    assert r.returncode == 0, r.stdout + r.stderr
    installed = _diff("--prefix", str(prefix), "golden@1.0.0", str(v2), "--key", str(pub))
    from_tar = _diff(str(v1), str(v2))
    assert installed["old"]["kind"] == "installed" and installed["verified"] is True
    assert installed["old"]["digest"] == from_tar["old"]["digest"]
    for k in ("manifest", "roles", "kernels", "wheels", "blobs", "delta"):
        assert installed[k] == from_tar[k], k
    # a site keeps no image manifests in its store (images go to an engine or a registry)
    (image,) = installed["images"]
    assert image["status"] == "changed" and image["layers"]["known"] is False
    r = airgap("diff", "--prefix", str(prefix), "golden@9.9.9", str(v2))
    assert r.returncode == 2 and "not installed" in r.stderr and "1.0.0" in r.stderr
    r = airgap("diff", "golden@1.0.0", str(v2))
    assert r.returncode == 2 and "--prefix" in r.stderr


@pytest.mark.parametrize("bad", ["nope.tar", "../x@1"])
def test_a_missing_side_is_an_input_error(bad: str, bundles: tuple[Path, Path, Path, Path]) -> None:
    _, v2, _, _ = bundles
    r = airgap("diff", bad, str(v2))
    assert r.returncode == 2 and "Traceback" not in r.stderr
