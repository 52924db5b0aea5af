"""Publisher signatures in: the real model_signing tool signs the source model (with a key or a
certificate), `airgap lock` verifies it against what it locks, stops naming the file when it
does not match, and the result travels in the lock, the bundle's provenance and `airgap audit`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.cli import airgap
from tests.support.oms import model_signing
from tests.support.projects import PASS, make_key, tiny_safetensors

MANIFEST = """\
apiVersion: airgap/v1
kind: Bundle
metadata: {{name: signed, version: 1.0.0, expires: 30d}}
model:
  name: publisher/tiny
  source:
    path: ./weights
    signature: {signature}
  format: safetensors
  precision: bf16
target:
  platform: linux/amd64
  accelerator: {{vendor: none}}
"""


def _pem_private(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _pem_public(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def _der_keyid(path: Path) -> str:
    key = serialization.load_pem_public_key(path.read_bytes())
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    w = tmp_path / "weights"
    (w / "1_Pooling").mkdir(parents=True)
    (w / "model.safetensors").write_bytes(tiny_safetensors())
    (w / "config.json").write_text('{"architectures": ["Tiny"]}\n')
    (w / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}\n')
    (w / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    return w


def _publisher_key(tmp_path: Path, curve: ec.EllipticCurve | None = None) -> tuple[Path, Path]:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    return (
        _pem_private(key, tmp_path / "publisher.key.pem"),
        _pem_public(key, tmp_path / "publisher.pub.pem"),
    )


def _sign_with_key(weights: Path, private: Path) -> None:
    r = model_signing("sign", "key", "--private_key", str(private),
                      "--signature", str(weights / "model.sig"), str(weights))  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr


def _manifest(tmp_path: Path, signature: str) -> Path:
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST.format(signature=signature))
    return m


def _env(tmp_path: Path) -> dict[str, str]:
    return {"AIRGAP_CACHE_DIR": str(tmp_path / "cache"), "AIRGAP_KEY_PASSPHRASE": PASS}


def test_lock_verifies_a_key_signature_and_the_result_reaches_the_bundle_audit(
    tmp_path: Path, weights: Path
) -> None:
    private, public = _publisher_key(tmp_path)
    _sign_with_key(weights, private)
    m = _manifest(tmp_path, "{public_key: publisher.pub.pem}")
    r = airgap("lock", str(m), "--json", env=_env(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    lock = json.loads((tmp_path / "m.lock.json").read_text())
    sig = lock["model"]["signature"]
    assert sig["verified"] is True and sig["method"] == "key"
    assert sig["keyid"] == _der_keyid(public)
    assert sig["sha256"] == hashlib.sha256((weights / "model.sig").read_bytes()).hexdigest()
    assert sig["files_checked"] == 3  # .gitattributes is shipped but ignored by OMS
    assert "model.sig" not in [f["path"] for f in lock["model"]["files"]]

    priv, pub, _ = make_key(tmp_path, "release")
    b = airgap("build", str(m), "--out", str(tmp_path / "out"), "--key", str(priv), "--locked",
               env=_env(tmp_path), timeout=300)  # fmt: skip
    assert b.returncode == 0, b.stderr
    tar = tmp_path / "out" / "signed-1.0.0.airgap.tar"
    a = airgap("audit", str(tar), "--key", str(pub))
    assert a.returncode == 0, a.stdout
    assert f"weights signed by the publisher's key {sig['keyid']}" in a.stdout
    doc = json.loads(airgap("audit", str(tar), "--key", str(pub), "--json").stdout)
    assert doc["provenance"]["publisher_signature"]["keyid"] == sig["keyid"]
    assert doc["provenance"]["publisher_signature"]["verified"] is True
    assert doc["publisher_signature"]["root_digest"] == sig["root_digest"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("modify", "config.json: sha256"),
        ("add", "extra.json is not among the signed files"),
        ("delete", "1_Pooling/config.json is signed but missing from the model folder"),
        ("other key", "does not verify with"),
        ("damage", "not a Sigstore bundle"),
    ],
)
def test_lock_stops_naming_the_signature_when_it_does_not_match(
    tmp_path: Path, weights: Path, change: str, says: str
) -> None:
    private, public = _publisher_key(tmp_path)
    _sign_with_key(weights, private)
    if change == "modify":
        (weights / "config.json").write_text('{"architectures": ["Changed"]}\n')
    elif change == "add":
        (weights / "extra.json").write_text("{}\n")
    elif change == "delete":
        (weights / "1_Pooling" / "config.json").unlink()
    elif change == "other key":
        other = ec.generate_private_key(ec.SECP256R1())
        _pem_public(other, public)
    elif change == "damage":
        (weights / "model.sig").write_bytes(b"{not json")
    m = _manifest(tmp_path, "{public_key: publisher.pub.pem}")
    r = airgap("lock", str(m), env=_env(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{weights / 'model.sig'}: the publisher's model signature does not match" in r.stderr
    assert says in r.stderr
    assert "m.yaml:" in r.stderr  # the manifest line that asked for it
    assert not (tmp_path / "m.lock.json").exists()


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name = (
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]) if issuer else name
    )
    signer = issuer[1] if issuer else key
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        b = b.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    return b.sign(signer, hashes.SHA256())


def _pki(folder: Path, prefix: str) -> tuple[Path, Path, Path, Path]:
    """root -> intermediate -> leaf: (root.pem, intermediate.pem, leaf.pem, leaf.key.pem)."""
    root_key, inter_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _cert(f"{prefix} Root CA", root_key, None, ca=True)
    inter = _cert(f"{prefix} Signing CA", inter_key, (f"{prefix} Root CA", root_key), ca=True)
    leaf = _cert(f"{prefix} Model Release", leaf_key, (f"{prefix} Signing CA", inter_key), ca=False)
    out = []
    for name, cert in (("root", root), ("intermediate", inter), ("leaf", leaf)):
        p = folder / f"{prefix}-{name}.pem"
        p.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out.append(p)
    return out[0], out[1], out[2], _pem_private(leaf_key, folder / f"{prefix}-leaf.key.pem")


def test_lock_verifies_a_certificate_signature_against_the_given_root(
    tmp_path: Path, weights: Path
) -> None:
    root, inter, leaf, leaf_key = _pki(tmp_path, "Publisher")
    r = model_signing("sign", "certificate", "--private_key", str(leaf_key),
                      "--signing_certificate", str(leaf), "--certificate_chain", str(inter),
                      "--signature", str(weights / "model.sig"), str(weights))  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    # the reference verifier agrees this chain is good
    ref = model_signing("verify", "certificate", "--signature", str(weights / "model.sig"),
                        "--certificate_chain", str(root), str(weights))  # fmt: skip
    assert ref.returncode == 0, ref.stdout + ref.stderr

    m = _manifest(tmp_path, f"{{certificate_chain: [{root.name}]}}")
    ok = airgap("lock", str(m), env=_env(tmp_path))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    sig = json.loads((tmp_path / "m.lock.json").read_text())["model"]["signature"]
    assert sig["method"] == "certificate"
    assert sig["signer"] == "CN=Publisher Model Release"
    assert sig["root"] == "CN=Publisher Root CA"

    other_root, *_ = _pki(tmp_path, "Someone Else")
    m = _manifest(tmp_path, f"{{certificate_chain: [{other_root.name}]}}")
    bad = airgap("lock", str(m), env=_env(tmp_path))
    assert bad.returncode == 1
    assert "does not chain to a trusted root" in bad.stderr


def test_a_p384_publisher_key_and_a_sharded_signature_verify(tmp_path: Path, weights: Path) -> None:
    import model_signing as ms

    private, public = _publisher_key(tmp_path, ec.SECP384R1())
    ms.signing.Config().use_elliptic_key_signer(private_key=private).set_hashing_config(
        ms.hashing.Config().use_shard_serialization(shard_size=1024 * 1024)
    ).sign(weights, weights / "model.sig")
    m = _manifest(tmp_path, "{public_key: publisher.pub.pem}")
    r = airgap("lock", str(m), env=_env(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    sig = json.loads((tmp_path / "m.lock.json").read_text())["model"]["signature"]
    assert sig["serialization"] == "shards" and sig["keyid"] == _der_keyid(public)
    # one byte changed inside the second shard of the weights
    data = bytearray((weights / "model.safetensors").read_bytes())
    data[1024 * 1024 + 10] ^= 1
    (weights / "model.safetensors").write_bytes(bytes(data))
    bad = airgap("lock", str(m), env=_env(tmp_path))
    assert bad.returncode == 1
    assert "model.safetensors: bytes 1048576-2097152 differ from the signed shard" in bad.stderr


def test_a_new_publisher_signature_is_drift(tmp_path: Path, weights: Path) -> None:
    private, _ = _publisher_key(tmp_path)
    _sign_with_key(weights, private)
    m = _manifest(tmp_path, "{public_key: publisher.pub.pem}")
    assert airgap("lock", str(m), env=_env(tmp_path)).returncode == 0
    _sign_with_key(weights, private)  # the same files, signed again: other signature bytes
    r = airgap("lock", str(m), "--check", env=_env(tmp_path))
    assert r.returncode == 1
    assert "publisher signature" in r.stdout


def test_a_model_sig_nobody_asked_to_check_is_not_locked_and_says_so(
    tmp_path: Path, weights: Path
) -> None:
    private, _ = _publisher_key(tmp_path)
    _sign_with_key(weights, private)
    m = tmp_path / "m.yaml"
    m.write_text(MANIFEST.format(signature="{}").replace("    signature: {}\n", ""))
    r = airgap("lock", str(m), env=_env(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "AG330" in r.stdout
    lock = json.loads((tmp_path / "m.lock.json").read_text())
    assert "model.sig" not in [f["path"] for f in lock["model"]["files"]]
    assert "signature" not in lock["model"]


@pytest.mark.parametrize(
    ("signature", "code", "says"),
    [
        ("{public_key: missing.pub.pem}", 2, "no such public key file"),
        ("{public_key: publisher.pub.pem, certificate_chain: [root.pem]}", 1, "signature"),
        ("{path: nowhere.sig, public_key: publisher.pub.pem}", 2, "no such model signature file"),
    ],
)
def test_bad_signature_settings_are_clear_errors(
    tmp_path: Path, weights: Path, signature: str, code: int, says: str
) -> None:
    private, _ = _publisher_key(tmp_path)
    _sign_with_key(weights, private)
    r = airgap("lock", str(_manifest(tmp_path, signature)), env=_env(tmp_path))
    assert r.returncode == code, r.stdout + r.stderr
    assert says in r.stdout + r.stderr
    assert "Traceback" not in r.stderr
