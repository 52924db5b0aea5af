"""The golden bundle: a fixed manifest, lock and Ed25519 key build a byte-identical tar.

`tests/fixtures/golden/` holds the inputs and the lock; the key is derived from a fixed seed (a
test key, never a real one). The digests below were recorded before the code was restructured
(issue "house plan"); a change that moves code must keep them. A change that means to alter the
bundle's bytes (the descriptor's content, the probe payload, the archive) updates them in the same
commit and says why in its message.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
EPOCH = "1700000000"
BUILDER = "https://airgap.dev/builder/golden"

#: sha256 of airgap/bundle.json (the content digest) and of the whole tar
CONTENT_DIGEST = "sha256:72d734b1ed4da23aa288ed50e116621937df8d47e7c526e75118314e3d3c668d"
TAR_SHA256 = "dd8cbc16b92198050097f502bd7ac7b0adc1a5b3726441462077523d36769e8d"


def golden_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"airgap golden test key").digest())


@pytest.fixture
def golden_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    monkeypatch.setenv("AIRGAP_BUILDER_ID", BUILDER)
    monkeypatch.setenv("AIRGAP_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_the_golden_bundle_is_byte_identical(golden_env: Path) -> None:
    from packager.commands.build import build
    from packager.commands.validate import validate
    from packager.signing import keys, signature
    from packager.signing.keys import SigningKey

    private = golden_key()
    key = SigningKey(
        keyid=keys.keyid(private.public_key()),
        algorithm=keys.algorithm_of(private),
        sign=lambda data: signature.sign(private, data),
        private_key=private,
    )
    report = validate(FIXTURE / "golden.yaml")
    assert report.manifest is not None, report.to_json()
    result = build(report.manifest, out=golden_env / "out", key=key, locked=True)
    (built,) = result.bundles
    (tar,) = built.files
    assert built.digest == CONTENT_DIGEST
    assert hashlib.sha256(tar.read_bytes()).hexdigest() == TAR_SHA256
