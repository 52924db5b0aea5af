"""The golden bundle (tests/fixtures/golden): a small, real, reproducible signed bundle.

Built in-process in about half a second from a committed manifest, weights and lock with a key
derived from a fixed seed (a test key, never a real one). Tests of commands that read bundles
(inspect, sign, verify, audit) build it into a temporary folder rather than share one copy.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from packager.signing.keys import SigningKey

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
MANIFEST = FIXTURE / "golden.yaml"
EPOCH = "1700000000"
BUILDER = "https://airgap.dev/builder/golden"


def golden_private_key(seed: bytes = b"airgap golden test key") -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest())


def signing_key(seed: bytes = b"airgap golden test key") -> SigningKey:
    from packager.signing.keys import signing_key_from_private

    return signing_key_from_private(golden_private_key(seed), "golden test key")


def write_public_key(
    folder: Path, seed: bytes = b"airgap golden test key", name: str = "golden"
) -> Path:
    """The seed's public key as ``folder/NAME.pub.pem`` (for --key)."""
    pub = (
        golden_private_key(seed)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    path = folder / f"{name}.pub.pem"
    path.write_bytes(pub)
    return path


def write_private_key(folder: Path, passphrase: str, seed: bytes, name: str) -> Path:
    """The seed's private key as an encrypted PEM ``folder/NAME.key.pem`` (for sign --key)."""
    pem = golden_private_key(seed).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    path = folder / f"{name}.key.pem"
    path.write_bytes(pem)
    os.chmod(path, 0o600)
    return path


@contextmanager
def golden_environment(cache: Path) -> Iterator[None]:
    saved = {
        k: os.environ.get(k) for k in ("SOURCE_DATE_EPOCH", "AIRGAP_BUILDER_ID", "AIRGAP_CACHE_DIR")
    }
    os.environ.update(
        {"SOURCE_DATE_EPOCH": EPOCH, "AIRGAP_BUILDER_ID": BUILDER, "AIRGAP_CACHE_DIR": str(cache)}
    )
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def build_golden(
    out: Path,
    *,
    split: int | None = None,
    layout_only: bool = False,
    signed: bool = True,
    key: SigningKey | None = None,
    carry_trust: bytes | None = None,
) -> list[Path]:
    """Build the golden bundle into ``out``; the files written (tar, parts + index, or folder).
    ``key``: sign with it instead of the golden Ed25519 key."""
    from packager.commands.build import build
    from packager.commands.validate import validate

    report = validate(MANIFEST)
    assert report.manifest is not None, report.to_json()
    with golden_environment(out.parent / f".{out.name}-cache"):
        result = build(
            report.manifest,
            out=out,
            key=key or (signing_key() if signed else None),
            locked=True,
            split=split,
            layout_only=layout_only,
            carry_trust=carry_trust,
        )
    (built,) = result.bundles
    return built.files
