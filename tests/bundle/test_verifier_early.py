"""packager.bundle.verifier: blobs hashed in the background during the cheap checks are used only
against the verified descriptor, and stop when a check fails or the member is not wanted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from packager.bundle import reader
from packager.bundle.verifier import verify_bundle
from packager.signing.trust import policy_from_keys
from tests.support.golden import build_golden, write_public_key

GIANT = 4 * 2**30  # sparse: costs no disk, would take seconds to hash


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Member name -> bytes hash_member read of it."""
    seen: dict[str, int] = {}
    real = reader.Bundle.hash_member

    def counting(self: reader.Bundle, name: str, progress: object = None) -> tuple[str, int]:
        def tick(n: int) -> None:
            seen[name] = seen.get(name, 0) + n
            if progress is not None:
                progress(n)  # type: ignore[operator]

        return real(self, name, tick)

    monkeypatch.setattr(reader.Bundle, "hash_member", counting)
    return seen


def _folder_with_giant(tmp_path: Path) -> Path:
    (folder,) = build_golden(tmp_path / "out", layout_only=True)
    giant = folder / "blobs" / "sha256" / ("f" * 64)
    with giant.open("wb") as fh:
        fh.truncate(GIANT)
    return folder


def test_a_wrong_key_stops_the_early_hashing(tmp_path: Path, hashed: dict[str, int]) -> None:
    folder = _folder_with_giant(tmp_path)
    other = policy_from_keys([write_public_key(tmp_path, b"another key", "other")])
    report = verify_bundle(folder, other)
    assert not report.ok and report.blobs_checked == 0
    assert hashed.get("blobs/sha256/" + "f" * 64, 0) < GIANT


def test_an_extra_member_is_not_hashed_to_the_end(tmp_path: Path, hashed: dict[str, int]) -> None:
    folder = _folder_with_giant(tmp_path)
    report = verify_bundle(folder, policy_from_keys([write_public_key(tmp_path)]))
    assert not report.ok
    assert any("f" * 64 in f.subject or "f" * 64 in f.message for f in report.failures)
    assert hashed.get("blobs/sha256/" + "f" * 64, 0) < GIANT


def test_early_hashes_count_once_and_catch_a_changed_blob(
    tmp_path: Path, hashed: dict[str, int]
) -> None:
    (folder,) = build_golden(tmp_path / "out", layout_only=True)
    blobs = sorted((folder / "blobs" / "sha256").iterdir(), key=lambda p: -p.stat().st_size)
    policy = policy_from_keys([write_public_key(tmp_path)])
    report = verify_bundle(folder, policy)
    assert report.ok and report.descriptor is not None, report.failures
    covered = sum(f.size for f in report.descriptor.files)
    assert report.bytes_hashed == sum(os.path.getsize(p) for p in blobs) + covered
    assert all(hashed[f"blobs/sha256/{p.name}"] == p.stat().st_size for p in blobs)
    data = bytearray(blobs[0].read_bytes())
    data[0] ^= 1
    blobs[0].write_bytes(bytes(data))
    report = verify_bundle(folder, policy)
    assert not report.ok and any(blobs[0].name in str(f) for f in report.failures)
