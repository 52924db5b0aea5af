"""`airgap audit BUNDLE`: signers, provenance, SBOM and a verdict an officer can file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.golden import BUILDER, build_golden, write_public_key


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    (built,) = build_golden(tmp_path_factory.mktemp("audit") / "out", layout_only=True)
    return built


def test_a_verified_bundle_shows_signer_provenance_and_sbom(folder: Path, tmp_path: Path) -> None:
    pub = write_public_key(tmp_path)
    r = cli("audit", str(folder), "--key", str(pub), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "PASS"
    (signer,) = doc["signers"]
    assert signer["trusted"] and signer["valid"] and not signer["revoked"]
    assert doc["provenance"]["builder"] == BUILDER
    assert doc["provenance"]["dsse_signatures"] == [signer["keyid"]]
    assert [m["name"] for m in doc["sbom"]["models"]] == ["airgap/golden"]
    text = cli("audit", str(folder), "--key", str(pub))
    assert "PASS" in text.stdout and BUILDER in text.stdout


def test_without_a_key_nothing_is_vouched_for(folder: Path) -> None:
    r = cli("audit", str(folder), "--json")
    assert r.returncode == 3
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "NOT VERIFIED" and doc["provenance"] is None
    assert doc["signers"][0]["valid"] is None and not doc["signers"][0]["trusted"]


def test_another_key_fails(folder: Path, tmp_path: Path) -> None:
    other = write_public_key(tmp_path, b"someone else", "other")
    r = cli("audit", str(folder), "--key", str(other), "--json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "FAIL" and doc["provenance"] is None


def test_a_forged_unsigned_attestation_is_never_shown(folder: Path, tmp_path: Path) -> None:
    import base64

    forged = tmp_path / "forged"
    shutil.copytree(folder, forged)
    env_path = forged / "airgap" / "attestation.dsse.json"
    env = json.loads(env_path.read_text())
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["predicate"]["runDetails"]["builder"]["id"] = "https://evil.example/builder"
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    env["signatures"] = []
    env_path.write_text(json.dumps(env))
    r = cli("audit", str(forged), "--key", str(write_public_key(tmp_path)), "--json")
    doc = json.loads(r.stdout)
    assert "evil.example" not in r.stdout
    assert doc["provenance"] is None
    assert any("provenance" in reason for reason in doc["reasons"])
