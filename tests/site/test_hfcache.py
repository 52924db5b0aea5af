"""`airgap install --hf-cache DIR`: the installed weights as a Hugging Face hub cache that the real
huggingface_hub finds with no network at all (a network namespace without one: ``unshare -n``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from packager.bundle.reader import open_bundle
from packager.signing.trust import policy_from_keys
from packager.site.hfcache import repo_folder
from packager.site.install import InstallOptions, install_bundle
from tests.support.cli import cli
from tests.support.golden import build_golden, write_public_key
from tests.support.services import unavailable

REPO_ID = "airgap/golden"  # the golden manifest's model.name


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("hf")
    (tar,) = build_golden(root / "out")
    return tar, write_public_key(root)


def install(bundle: tuple[Path, Path], prefix: Path, cache: Path) -> dict[str, object]:
    tar, pub = bundle
    result = install_bundle(
        tar, prefix, policy_from_keys([pub]), InstallOptions(probe=False, hf_cache=cache)
    )
    assert result.hf_cache is not None
    return result.hf_cache


SNAPSHOT = """
import json, os, sys
from huggingface_hub import snapshot_download, try_to_load_from_cache
cache, repo, revision = sys.argv[1:4]
out = {"offline": snapshot_download(repo, cache_dir=cache)}
out["local"] = snapshot_download(repo, revision=revision, cache_dir=cache, local_files_only=True)
out["file"] = try_to_load_from_cache(repo, "config.json", cache_dir=cache)
print(json.dumps(out))
"""


def hub(cache: Path, revision: str, *, netns: bool = True) -> dict[str, str]:
    """huggingface_hub in a new process (in a namespace with no network), HF_HUB_OFFLINE=1."""
    pytest.importorskip("huggingface_hub")
    argv = [sys.executable, "-c", SNAPSHOT, str(cache), REPO_ID, revision]
    if netns:
        if shutil.which("unshare") is None:
            unavailable("unshare (util-linux) is not installed")
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        if probe.returncode != 0:
            unavailable(f"unshare -n is not allowed here: {probe.stderr.decode().strip()}")
        argv = ["unshare", "-n", *argv]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(cache.parent / "hf-home")}
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    out: dict[str, str] = json.loads(r.stdout)
    return out


def test_huggingface_hub_finds_the_installed_weights_without_a_network(
    bundle: tuple[Path, Path], tmp_path: Path
) -> None:
    prefix, cache = tmp_path / "site", tmp_path / "hub"
    info = install(bundle, prefix, cache)
    revision = str(info["revision"])
    assert info["repo_id"] == REPO_ID and info["created"] is True
    found = hub(cache, revision)
    snapshot = cache / repo_folder(REPO_ID) / "snapshots" / revision
    assert Path(found["offline"]) == Path(found["local"]) == snapshot
    assert Path(found["file"]) == snapshot / "config.json"
    model = prefix / "bundles" / "golden" / "1.0.0" / "model"
    installed = sorted(p.relative_to(model).as_posix() for p in model.rglob("*") if p.is_file())
    listed = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file())
    assert listed == installed
    for rel in installed:
        a, b = (snapshot / rel), (model / rel)
        assert a.read_bytes() == b.read_bytes()
        assert os.stat(a).st_ino == os.stat(b).st_ino  # the store's file: linked, not copied
    assert (cache / repo_folder(REPO_ID) / "refs" / "main").read_text() == revision


def test_a_second_install_keeps_the_snapshot(bundle: tuple[Path, Path], tmp_path: Path) -> None:
    prefix, cache = tmp_path / "site", tmp_path / "hub"
    first = install(bundle, prefix, cache)
    second = install(bundle, prefix, cache)
    assert second["revision"] == first["revision"] and second["created"] is False


def test_a_snapshot_with_other_files_is_refused(bundle: tuple[Path, Path], tmp_path: Path) -> None:
    prefix, cache = tmp_path / "site", tmp_path / "hub"
    info = install(bundle, prefix, cache)
    snapshot = Path(str(info["snapshot"]))
    (snapshot / "extra.bin").write_bytes(b"x")
    tar, pub = bundle
    r = cli("install", str(tar), "--prefix", str(prefix), "--key", str(pub), "--no-probe",
            "--hf-cache", str(cache))  # fmt: skip
    assert r.returncode == 1
    assert "exists with other files" in r.stderr


def test_the_cache_must_be_on_the_prefix_file_system(
    bundle: tuple[Path, Path], tmp_path: Path
) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system to try")
    cache = shm / f"airgap-hf-{os.getpid()}"
    try:
        tar, pub = bundle
        r = cli("install", str(tar), "--prefix", str(tmp_path / "site"), "--key", str(pub),
                "--no-probe", "--hf-cache", str(cache))  # fmt: skip
        assert r.returncode == 2
        assert "cannot hard-link" in r.stderr and "file system" in r.stderr
        assert "Traceback" not in r.stderr
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def test_the_cli_shows_the_cache(bundle: tuple[Path, Path], tmp_path: Path) -> None:
    tar, pub = bundle
    r = cli("install", str(tar), "--prefix", str(tmp_path / "site"), "--key", str(pub),
            "--no-probe", "--hf-cache", str(tmp_path / "hub"), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["hf_cache"]["repo_id"] == REPO_ID and doc["hf_cache"]["files"] >= 1
    with open_bundle(tar) as b:
        _raw, descriptor = b.descriptor()
        names = {p for blob in descriptor.blobs_with_role("model") for p in blob.paths}
    assert doc["hf_cache"]["files"] == len(names)
