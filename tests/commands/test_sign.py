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


# ----------------------------------------------------------------------------- hostile input


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): (
            "link:" + str(p.readlink())
            if p.is_symlink()
            else hashlib.sha256(p.read_bytes()).hexdigest()
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def _split(tmp_path: Path) -> tuple[Path, list[Path]]:
    files = build_golden(tmp_path / "out", split=MIB // 2)
    index = next(f for f in files if f.name.endswith(".parts.json"))
    return index, [f for f in files if f != index]


def test_a_part_listed_twice_is_refused_and_nothing_changes(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    index, _parts = _split(tmp_path)
    doc = json.loads(index.read_text())
    doc["parts"].append(dict(doc["parts"][0]))
    index.write_text(json.dumps(doc))
    before = _snapshot(index.parent)
    r = cli("sign", str(index), "--key", str(keys["officer_priv"]))
    assert r.returncode == 2 and "listed twice" in r.stderr, r.stderr
    assert _snapshot(index.parent) == before
    v = cli("verify", str(index), "--key", str(keys["builder_pub"]))
    assert v.returncode in (1, 2) and "listed twice" in v.stdout + v.stderr


def test_bytes_after_the_archive_are_refused_by_verify_and_sign(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    (tar,) = build_golden(tmp_path / "out")
    other = build_golden(tmp_path / "other")[0].read_bytes()
    with tar.open("ab") as fh:
        fh.write(other[:8192])  # another archive's first blocks, signed by no one
    v = cli("verify", str(tar), "--key", str(keys["builder_pub"]))
    assert v.returncode == 1 and "follow the end of the archive" in v.stdout, v.stdout
    before = _snapshot(tar.parent)
    s = cli("sign", str(tar), "--key", str(keys["officer_priv"]))
    assert s.returncode == 2 and "follow the end" in s.stderr, s.stderr
    assert _snapshot(tar.parent) == before


def test_a_part_listed_after_the_end_fails_verify(tmp_path: Path, keys: dict[str, Path]) -> None:
    index, parts = _split(tmp_path)
    extra = parts[0].with_name(parts[0].name[:-3] + f"{len(parts):03d}")
    extra.write_bytes(parts[0].read_bytes())
    doc = json.loads(index.read_text())
    doc["parts"].append(
        {
            "name": extra.name,
            "size": extra.stat().st_size,
            "sha256": hashlib.sha256(extra.read_bytes()).hexdigest(),
        }
    )
    doc["total_size"] += extra.stat().st_size
    index.write_text(json.dumps(doc))
    v = cli("verify", str(index), "--key", str(keys["builder_pub"]))
    assert v.returncode == 1 and "lies after the end" in v.stdout, v.stdout


def test_a_journal_naming_another_file_is_refused(tmp_path: Path, keys: dict[str, Path]) -> None:
    (tar,) = build_golden(tmp_path / "out")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    journal = tar.with_name(f".{tar.name}.signing.json")
    journal.write_text(json.dumps({"parts": [["../victim.txt", 0, 0]], "index": None}))
    r = cli("sign", str(tar), "--key", str(keys["officer_priv"]))
    assert r.returncode == 2 and "not a part of this bundle" in r.stderr, r.stderr
    assert victim.read_text() == "keep me\n"


def test_a_parts_index_naming_another_bundle_is_refused(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    index, _ = _split(tmp_path)
    doc = json.loads(index.read_text())
    doc["bundle"] = "../../elsewhere"
    index.write_text(json.dumps(doc))
    before = _snapshot(index.parent)
    r = cli("sign", str(index), "--key", str(keys["officer_priv"]))
    assert r.returncode == 2 and "not a parts index" in r.stderr, r.stderr
    assert _snapshot(index.parent) == before


def test_a_linked_signature_folder_is_refused(tmp_path: Path, keys: dict[str, Path]) -> None:
    (folder,) = build_golden(tmp_path / "out", layout_only=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sigs = folder / "airgap" / "bundle.json.sig"
    for f in sigs.iterdir():
        f.rename(elsewhere / f.name)
    sigs.rmdir()
    sigs.symlink_to(elsewhere)
    before = _snapshot(elsewhere)
    r = cli("sign", str(folder), "--key", str(keys["officer_priv"]))
    assert r.returncode == 2 and "a link" in r.stderr, r.stderr
    assert _snapshot(elsewhere) == before


def test_a_co_signature_across_parts_leaves_no_file_deleted(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    index, _parts = _split(tmp_path)
    names_before = {p.name for p in index.parent.iterdir()}
    assert cli("sign", str(index), "--key", str(keys["officer_priv"])).returncode == 0
    assert names_before <= {p.name for p in index.parent.iterdir()}
    policy = _policy(tmp_path, keys, threshold=2)
    assert cli("verify", str(index), "--trust", str(policy)).returncode == 0
