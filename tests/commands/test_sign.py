"""`airgap sign`: a co-signature added to a tar, parts or folder without moving a blob."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.golden import build_golden, write_private_key, write_public_key

MIB = 1024 * 1024
PASSPHRASE = "co-signer passphrase"
OFFICER = b"airgap test officer key"


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("AIRGAP_KEY_PASSPHRASE", PASSPHRASE)
    return {
        "builder_pub": write_public_key(tmp_path),
        "officer_priv": write_private_key(tmp_path, PASSPHRASE, OFFICER, "officer"),
        "officer_pub": write_public_key(tmp_path, OFFICER, "officer"),
    }


def _policy(tmp_path: Path, keys: dict[str, Path], threshold: int) -> Path:
    policy = tmp_path / "trust.json"
    assert cli("trust", "init", str(policy), "--threshold", str(threshold)).returncode == 0
    assert (
        cli("trust", "add", str(policy), str(keys["builder_pub"]), "--name", "builder").returncode
        == 0
    )
    assert (
        cli("trust", "add", str(policy), str(keys["officer_pub"]), "--name", "officer").returncode
        == 0
    )
    return policy


def _blob_bytes(files: list[Path]) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


@pytest.mark.parametrize("form", ["tar", "parts", "folder"])
def test_a_co_signature_meets_a_threshold_of_two(
    form: str, tmp_path: Path, keys: dict[str, Path]
) -> None:
    files = build_golden(
        tmp_path / "out", split=MIB if form == "parts" else None, layout_only=form == "folder"
    )
    bundle = next((f for f in files if f.name.endswith(".parts.json")), files[0])
    policy = _policy(tmp_path, keys, threshold=2)
    before = cli("verify", str(bundle), "--trust", str(policy), "--json")
    assert before.returncode == 1 and "needs 2" in before.stdout
    r = cli("sign", str(bundle), "--key", str(keys["officer_priv"]), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["added"] is True
    after = cli("verify", str(bundle), "--trust", str(policy), "--json")
    assert after.returncode == 0, after.stdout
    assert sorted(s["name"] for s in json.loads(after.stdout)["signers"]) == ["builder", "officer"]
    again = cli("sign", str(bundle), "--key", str(keys["officer_priv"]), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["added"] is False


def test_signing_moves_no_blob_and_keeps_the_content_digest(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    (folder,) = build_golden(tmp_path / "out", layout_only=True)
    blobs = sorted((folder / "blobs" / "sha256").iterdir())
    before = _blob_bytes(blobs)
    digest = cli("digest", str(folder)).stdout
    assert cli("sign", str(folder), "--key", str(keys["officer_priv"])).returncode == 0
    assert _blob_bytes(blobs) == before
    assert cli("digest", str(folder)).stdout == digest


def test_a_wrong_passphrase_changes_nothing(
    tmp_path: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tar,) = build_golden(tmp_path / "out")
    before = hashlib.sha256(tar.read_bytes()).hexdigest()
    monkeypatch.setenv("AIRGAP_KEY_PASSPHRASE", "not it")
    r = cli("sign", str(tar), "--key", str(keys["officer_priv"]))
    assert r.returncode == 2 and "passphrase" in r.stderr and "not it" not in r.stderr + r.stdout
    assert hashlib.sha256(tar.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tar.parent.iterdir()) == [tar.name]
