"""Fixtures for the signing tests: keys of each algorithm, the real openssl, test dependencies."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager.signing import keys
from tests.signing.support import PASSPHRASE, require_tool


@pytest.fixture(scope="session", params=keys.ALGORITHMS)
def algorithm(request: pytest.FixtureRequest) -> keys.Algorithm:
    value: keys.Algorithm = request.param
    return value


_KEYS: dict[str, keys.PrivateKey] = {}


@pytest.fixture
def private_key(algorithm: keys.Algorithm) -> keys.PrivateKey:
    """One private key per algorithm for the whole session (generation is cheap, but why)."""
    if algorithm not in _KEYS:
        _KEYS[algorithm] = keys.generate_private_key(algorithm)
    return _KEYS[algorithm]


@pytest.fixture
def key_files(tmp_path: Path, private_key: keys.PrivateKey) -> tuple[Path, Path]:
    """(NAME.key.pem encrypted with PASSPHRASE, NAME.pub.pem) of ``private_key``."""
    priv = tmp_path / "test.key.pem"
    pub = tmp_path / "test.pub.pem"
    priv.write_bytes(keys.private_key_pem(private_key, PASSPHRASE))
    pub.write_bytes(keys.public_key_pem(private_key.public_key()))
    return priv, pub


@pytest.fixture(scope="session")
def openssl() -> str:
    return require_tool("openssl")
