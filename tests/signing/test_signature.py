"""Detached signatures: our own verify, the .sig file format, and the stock openssl commands."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from packager.signing import keys, signature
from packager.signing.errors import SignatureFormatError, UnsupportedKeyAlgorithm
from tests.signing.support import PASSPHRASE, require_tool, run

DATA = b'{"bundle":{"name":"qwen2.5-7b-ascend","version":"1.2.0"}}\n'


def test_sign_verify(private_key: keys.PrivateKey) -> None:
    sig = signature.sign(private_key, DATA)
    public = private_key.public_key()
    assert signature.verify(public, DATA, sig)
    assert not signature.verify(public, DATA + b" ", sig)
    assert not signature.verify(public, DATA[:-1], sig)


def test_signature_shapes() -> None:
    ed = keys.generate_private_key("ed25519")
    assert len(signature.sign(ed, DATA)) == 64
    p256 = keys.generate_private_key("ecdsa-p256-sha256")
    der = signature.sign(p256, DATA)
    assert der[0] == 0x30 and 8 <= len(der) <= 72  # DER SEQUENCE of two INTEGERs


def test_ed25519_is_deterministic_ecdsa_is_randomized() -> None:
    ed = keys.generate_private_key("ed25519")
    assert signature.sign(ed, DATA) == signature.sign(ed, DATA)
    p256 = keys.generate_private_key("ecdsa-p256-sha256")
    a, b = signature.sign(p256, DATA), signature.sign(p256, DATA)
    assert a != b
    assert signature.verify(p256.public_key(), DATA, a)
    assert signature.verify(p256.public_key(), DATA, b)


def _flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: b"",
        lambda s: s[:-1],
        lambda s: s + b"\x00",
        lambda s: _flip(s, len(s) // 2),
        lambda s: _flip(s, len(s) - 1),
        lambda s: b"\x30" * len(s),
        lambda s: base64.b64encode(s),
    ],
    ids=["empty", "truncated", "extended", "flip-middle", "flip-last", "garbage", "base64-not-raw"],
)
def test_verify_rejects_mangled_signatures(private_key: keys.PrivateKey, mangle: object) -> None:
    sig = signature.sign(private_key, DATA)
    bad = mangle(sig)  # type: ignore[operator]
    assert not signature.verify(private_key.public_key(), DATA, bad)


def test_verify_rejects_other_keys(algorithm: keys.Algorithm) -> None:
    signer = keys.generate_private_key(algorithm)
    sig = signature.sign(signer, DATA)
    for other in keys.ALGORITHMS:
        assert not signature.verify(keys.generate_private_key(other).public_key(), DATA, sig)


def test_unsupported_keys() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(UnsupportedKeyAlgorithm):
        signature.sign(p384, DATA)
    sig = p384.sign(DATA, ec.ECDSA(hashes.SHA256()))
    assert not signature.verify(p384.public_key(), DATA, sig)


# --- the .sig file ----------------------------------------------------------------------------


def test_signature_file_content(private_key: keys.PrivateKey) -> None:
    sig = signature.sign(private_key, DATA)
    content = signature.signature_file_content(sig)
    assert content.endswith(b"\n") and content.count(b"\n") == 1
    assert base64.b64decode(content, validate=False) == sig
    assert base64.b64decode(content.strip(), validate=True) == sig
    assert signature.parse_signature_file(content) == sig


@pytest.mark.parametrize(
    ("transform", "ok"),
    [
        (lambda c: c, True),
        (lambda c: c.rstrip(b"\n"), True),
        (lambda c: c.rstrip(b"\n") + b"\r\n", True),
        (lambda c: c + b"\n", False),
        (lambda c: b" " + c, False),
        (lambda c: c[:10] + b"\n" + c[10:], False),
        (lambda c: c.replace(b"=", b""), False),
        (lambda c: c.replace(b"+", b"-").replace(b"/", b"_") + b"!", False),
        (lambda c: b"", False),
        (lambda c: b"\n", False),
        (lambda c: b"A" * (signature.MAX_SIGNATURE_FILE_BYTES + 4), False),
    ],
    ids=[
        "as-written", "no-newline", "crlf", "two-newlines", "leading-space", "wrapped",
        "no-padding", "not-base64", "empty", "only-newline", "too-large",
    ],
)  # fmt: skip
def test_parse_signature_file(transform: object, ok: bool) -> None:
    sig = bytes(range(70))  # length 70: base64 has padding
    content = transform(signature.signature_file_content(sig))  # type: ignore[operator]
    if ok:
        assert signature.parse_signature_file(content) == sig
    else:
        with pytest.raises(SignatureFormatError) as info:
            signature.parse_signature_file(content, source="x.sig")
        assert info.value.message.startswith("x.sig: ")
        assert info.value.exit_code == 1


def test_signature_file_name() -> None:
    kid = "ab" * 32
    assert signature.signature_file_name(kid) == kid + ".sig"
    for bad in ("../" + kid[3:], kid.upper(), "", kid + "0"):
        with pytest.raises(ValueError):
            signature.signature_file_name(bad)


# --- the stock tools a security officer would use ---------------------------------------------


def _write_signed(tmp_path: Path, key: keys.PrivateKey, data: bytes) -> tuple[Path, Path, Path]:
    data_path = tmp_path / "bundle.json"
    data_path.write_bytes(data)
    pub = tmp_path / "key.pub.pem"
    pub.write_bytes(keys.public_key_pem(key))
    sig_path = tmp_path / f"{keys.keyid(key.public_key())}.sig"
    sig_path.write_bytes(signature.signature_file_content(signature.sign(key, data)))
    return data_path, pub, sig_path


def test_openssl_dgst_verifies_ecdsa(openssl: str, tmp_path: Path) -> None:
    """The documented check, verbatim: openssl dgst -sha256 -verify over `base64 -d` of the file."""
    bash, _ = require_tool("bash"), require_tool("base64")
    key = keys.generate_private_key("ecdsa-p256-sha256")
    data, pub, sig = _write_signed(tmp_path, key, DATA)
    command = 'openssl dgst -sha256 -verify "$1" -signature <(base64 -d "$2") "$3"'
    ok = subprocess.run([bash, "-c", command, "-", pub, sig, data], capture_output=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == b"Verified OK"

    data.write_bytes(DATA.replace(b"1.2.0", b"1.2.1"))
    bad = subprocess.run(
        [bash, "-c", command, "-", pub, sig, data], capture_output=True, timeout=30
    )
    assert bad.returncode == 1
    assert b"Verification failure" in bad.stdout


def test_openssl_signature_verifies_with_ours(openssl: str, tmp_path: Path) -> None:
    """And the other way round: openssl's ECDSA-SHA256 DER signature passes our verify."""
    key = keys.generate_private_key("ecdsa-p256-sha256")
    key_path = tmp_path / "k.key.pem"
    key_path.write_bytes(keys.private_key_pem(key, PASSPHRASE))
    data = tmp_path / "data"
    data.write_bytes(DATA)
    out = run(
        openssl, "dgst", "-sha256", "-sign", key_path, "-passin", "env:PW", data,
        env={"PW": PASSPHRASE.decode()},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert signature.verify(key.public_key(), DATA, out.stdout)
    assert not signature.verify(key.public_key(), DATA + b"x", out.stdout)


def _pkeyutl_has_rawin(openssl: str) -> bool:
    helptext = run(openssl, "pkeyutl", "-help")
    return b"-rawin" in helptext.stdout + helptext.stderr


def test_openssl_pkeyutl_verifies_ed25519(openssl: str, tmp_path: Path) -> None:
    if not _pkeyutl_has_rawin(openssl):
        version = run(openssl, "version").stdout.decode().strip()
        pytest.skip(f"{version}: `openssl pkeyutl` has no -rawin (OpenSSL 3.0 or later has it)")
    key = keys.generate_private_key("ed25519")
    data, pub, sig_file = _write_signed(tmp_path, key, DATA)
    raw = tmp_path / "sig.raw"
    raw.write_bytes(base64.b64decode(sig_file.read_bytes()))
    args = ("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-sigfile", raw, "-in")
    ok = run(openssl, *args, data)
    assert ok.returncode == 0, ok.stderr
    assert b"Signature Verified Successfully" in ok.stdout
    data.write_bytes(DATA + b" ")
    bad = run(openssl, *args, data)
    assert bad.returncode != 0
    assert b"Signature Verification Failure" in bad.stdout


def test_openssl_rejects_ecdsa_signature_of_other_key(openssl: str, tmp_path: Path) -> None:
    base64_tool = require_tool("base64")
    signer, other = (keys.generate_private_key() for _ in range(2))
    data, _, sig = _write_signed(tmp_path, signer, DATA)
    pub = tmp_path / "other.pub.pem"
    pub.write_bytes(keys.public_key_pem(other))
    der = tmp_path / "sig.der"
    der.write_bytes(run(base64_tool, "-d", sig).stdout)
    out = run(openssl, "dgst", "-sha256", "-verify", pub, "-signature", der, data)
    assert out.returncode == 1
