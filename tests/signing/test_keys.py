"""Keys: round trips, keyids against openssl, passphrases, and every way a key file is wrong."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from packager.errors import InputError
from packager.signing import keys
from packager.signing.errors import (
    KeyFileError,
    PassphraseUnavailable,
    UnencryptedPrivateKey,
    UnsupportedKeyAlgorithm,
    WrongPassphrase,
)
from tests.signing.support import PASSPHRASE, run

ENC = serialization.Encoding
PRIV = serialization.PrivateFormat
PUBF = serialization.PublicFormat
NOENC = serialization.NoEncryption()


def given(passphrase: bytes) -> keys.PassphraseSource:
    return lambda prompt: passphrase


def never(prompt: str) -> Any:  # as a PassphraseSource and as a prompt: must not be called
    raise AssertionError(f"the passphrase must not be asked for here ({prompt})")


# --- round trips ------------------------------------------------------------------------------


def test_round_trip(key_files: tuple[Path, Path], private_key: keys.PrivateKey) -> None:
    priv_path, pub_path = key_files
    text = priv_path.read_bytes()
    assert text.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert PASSPHRASE not in text
    assert pub_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----\n")

    loaded = keys.load_private_key(priv_path, given(PASSPHRASE))
    public = keys.load_public_key(pub_path)
    assert type(loaded) is type(private_key)
    assert keys.keyid(loaded.public_key()) == keys.keyid(private_key.public_key())
    assert keys.keyid(public) == keys.keyid(private_key.public_key())
    assert keys.public_key_pem(loaded) == pub_path.read_bytes()
    assert keys.algorithm_of(loaded) == keys.algorithm_of(public) == keys.algorithm_of(private_key)


@pytest.mark.parametrize(
    ("algorithm", "key_type"),
    [
        ("ecdsa-p256-sha256", ec.EllipticCurvePrivateKey),
        ("ed25519", ed25519.Ed25519PrivateKey),
    ],
)
def test_generate(algorithm: keys.Algorithm, key_type: type) -> None:
    key = keys.generate_private_key(algorithm)
    assert isinstance(key, key_type)
    assert keys.algorithm_of(key) == algorithm


def test_default_algorithm_is_ecdsa_p256() -> None:
    key = keys.generate_private_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ecdsa-p256", "ecdsa-p256-sha256"),
        ("ecdsa-p256-sha256", "ecdsa-p256-sha256"),
        ("ECDSA", "ecdsa-p256-sha256"),
        ("ed25519", "ed25519"),
        (" Ed25519 ", "ed25519"),
    ],
)
def test_parse_algorithm(name: str, expected: str) -> None:
    assert keys.parse_algorithm(name) == expected


@pytest.mark.parametrize("name", ["rsa", "ecdsa-p384", "", "ed448"])
def test_parse_algorithm_unknown(name: str) -> None:
    with pytest.raises(UnsupportedKeyAlgorithm) as info:
        keys.parse_algorithm(name)
    assert info.value.hint and "ed25519" in info.value.hint


def test_private_key_pem_refuses_an_empty_passphrase(private_key: keys.PrivateKey) -> None:
    with pytest.raises(ValueError):
        keys.private_key_pem(private_key, b"")


def test_keyid_is_sha256_of_der_spki(private_key: keys.PrivateKey) -> None:
    der = private_key.public_key().public_bytes(ENC.DER, PUBF.SubjectPublicKeyInfo)
    kid = keys.keyid(private_key.public_key())
    assert kid == hashlib.sha256(der).hexdigest()
    assert keys.is_keyid(kid)


@pytest.mark.parametrize(
    ("text", "ok"),
    [("a" * 64, True), ("A" * 64, False), ("a" * 63, False), ("g" * 64, False), ("", False)],
)
def test_is_keyid(text: str, ok: bool) -> None:
    assert keys.is_keyid(text) is ok


def test_keyid_matches_openssl(openssl: str, key_files: tuple[Path, Path]) -> None:
    """keyid == `openssl pkey -pubin -outform DER | sha256sum`, as DESIGN promises a site."""
    _, pub = key_files
    der = run(openssl, "pkey", "-pubin", "-in", pub, "-outform", "DER")
    assert der.returncode == 0, der.stderr
    assert keys.keyid(keys.load_public_key(pub)) == hashlib.sha256(der.stdout).hexdigest()


def test_openssl_reads_our_encrypted_private_key(
    openssl: str, key_files: tuple[Path, Path]
) -> None:
    """Our encrypted PKCS#8 is standard: openssl decrypts it with the passphrase alone."""
    priv, pub = key_files
    env = {"PW": PASSPHRASE.decode()}
    out = run(openssl, "pkey", "-in", priv, "-passin", "env:PW", "-pubout", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == pub.read_bytes()
    wrong = run(openssl, "pkey", "-in", priv, "-passin", "pass:wrong", "-pubout")
    assert wrong.returncode != 0


def test_we_read_openssl_encrypted_pkcs8(openssl: str, tmp_path: Path) -> None:
    """A key made by openssl (genpkey, AES-256-CBC PKCS#8) loads, passphrase and all."""
    path = tmp_path / "openssl.key.pem"
    out = run(
        openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-aes-256-cbc", "-pass", "env:PW", "-out", path,
        env={"PW": "from-openssl"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    key = keys.load_private_key(path, given(b"from-openssl"))
    assert keys.algorithm_of(key) == "ecdsa-p256-sha256"


# --- passphrases ------------------------------------------------------------------------------


def test_passphrase_from_env_is_used_without_prompting() -> None:
    got = keys.passphrase_from_env_or_prompt(
        "p: ", environ={keys.PASSPHRASE_ENV: "pässword"}, isatty=lambda: True, ask=never
    )
    assert got == "pässword".encode()


def test_passphrase_prompted_on_a_terminal() -> None:
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return "typed"

    got = keys.passphrase_from_env_or_prompt(
        "Passphrase for k: ", environ={}, isatty=lambda: True, ask=ask
    )
    assert got == b"typed"
    assert prompts == ["Passphrase for k: "]


def _eof(prompt: str) -> str:
    raise EOFError


@pytest.mark.parametrize(
    ("environ", "tty", "ask", "fragment"),
    [
        ({}, False, never, "AIRGAP_KEY_PASSPHRASE is not set and standard input is not a terminal"),
        ({keys.PASSPHRASE_ENV: ""}, True, never, "set but empty"),
        ({}, True, _eof, "no passphrase was entered"),
        ({}, True, lambda p: "", "empty"),
    ],
    ids=["no-env-no-tty", "empty-env", "eof-at-prompt", "empty-typed"],
)
def test_passphrase_unavailable(
    environ: dict[str, str], tty: bool, ask: Callable[[str], str], fragment: str
) -> None:
    with pytest.raises(PassphraseUnavailable) as info:
        keys.passphrase_from_env_or_prompt("p: ", environ=environ, isatty=lambda: tty, ask=ask)
    assert fragment in info.value.message
    assert info.value.hint
    assert info.value.exit_code == 2


def test_new_passphrase_confirmed_at_the_prompt() -> None:
    prompts: list[str] = []
    answers = iter(["one", "one"])

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    got = keys.passphrase_from_env_or_prompt(
        "Passphrase for new key: ", confirm=True, environ={}, isatty=lambda: True, ask=ask
    )
    assert got == b"one"
    assert prompts == ["Passphrase for new key: ", "Repeat passphrase for new key: "]


def test_new_passphrase_mismatch() -> None:
    answers = iter(["one", "two"])
    with pytest.raises(PassphraseUnavailable, match="differ"):
        keys.passphrase_from_env_or_prompt(
            confirm=True, environ={}, isatty=lambda: True, ask=lambda p: next(answers)
        )


def test_new_passphrase_from_env_asks_nothing() -> None:
    got = keys.passphrase_from_env_or_prompt(
        confirm=True, environ={keys.PASSPHRASE_ENV: "env"}, isatty=lambda: True, ask=never
    )
    assert got == b"env"


def test_default_source_reads_the_environment(
    key_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(keys.PASSPHRASE_ENV, PASSPHRASE.decode())
    assert keys.load_private_key(key_files[0]) is not None


def test_default_source_without_env_or_tty(
    key_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(keys.PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("typed into a pipe\n"))  # not a terminal
    with pytest.raises(PassphraseUnavailable, match="not a terminal"):
        keys.load_private_key(key_files[0])


def test_prompt_names_the_key_file(key_files: tuple[Path, Path]) -> None:
    prompts: list[str] = []

    def source(prompt: str) -> bytes:
        prompts.append(prompt)
        return PASSPHRASE

    keys.load_private_key(key_files[0], source)
    assert prompts == [f"Passphrase for {key_files[0]}: "]


# --- bad key files ----------------------------------------------------------------------------


@functools.cache
def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def _p384() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@functools.cache
def _p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _enc(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        ENC.PEM, PRIV.PKCS8, serialization.BestAvailableEncryption(PASSPHRASE)
    )


def _plain(key: object, fmt: serialization.PrivateFormat = PRIV.PKCS8) -> bytes:
    return key.private_bytes(ENC.PEM, fmt, NOENC)  # type: ignore[attr-defined, no-any-return]


def _pub(key: object) -> bytes:
    return key.public_key().public_bytes(ENC.PEM, PUBF.SubjectPublicKeyInfo)  # type: ignore[attr-defined, no-any-return]


def _certificate() -> bytes:
    key = _p256()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airgap test")])
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(when)
        .not_valid_after(when + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(ENC.PEM)


def _damaged(pem: bytes) -> bytes:
    lines = pem.splitlines(keepends=True)
    return b"".join([lines[0], *lines[3:]])  # drop two lines of the base64 body


def _folder(path: Path) -> None:
    path.mkdir()


Make = Callable[[Path], Optional[bytes]]  # file content, or None to leave the path absent/a folder

PRIVATE_CASES: list[tuple[str, Make, type[Exception], str]] = [
    ("missing", lambda p: None, KeyFileError, "no such key file"),
    ("folder", _folder, KeyFileError, "is a folder"),
    ("empty", lambda p: b"", KeyFileError, "not a PEM private key"),
    ("text", lambda p: b"hello, I am not a key\n", KeyFileError, "not a PEM private key"),
    ("der", lambda p: _p256().private_bytes(ENC.DER, PRIV.PKCS8, NOENC), KeyFileError, "DER"),
    ("too-large", lambda p: b"x" * (keys.MAX_KEY_FILE_BYTES + 1), KeyFileError, "too large"),
    ("certificate", lambda p: _certificate(), KeyFileError, "X.509 certificate"),
    ("public-key", lambda p: _pub(_p256()), KeyFileError, "holds a public key; signing needs the private key"),
    ("two-keys", lambda p: _enc(_p256()) + _enc(_p256()), KeyFileError, "holds 2 keys"),
    ("unencrypted-pkcs8", lambda p: _plain(_p256()), UnencryptedPrivateKey, "not encrypted"),
    ("unencrypted-ed25519", lambda p: _plain(ed25519.Ed25519PrivateKey.generate()), UnencryptedPrivateKey, "not encrypted"),
    ("sec1-p256", lambda p: _plain(_p256(), PRIV.TraditionalOpenSSL), KeyFileError, "SEC1"),
    ("sec1-p384", lambda p: _plain(_p384(), PRIV.TraditionalOpenSSL), UnsupportedKeyAlgorithm, "ECDSA P-384 (secp384r1)"),
    ("rsa-pkcs8-encrypted", lambda p: _enc(_rsa()), UnsupportedKeyAlgorithm, "RSA 2048-bit"),
    ("rsa-pkcs8-clear", lambda p: _plain(_rsa()), UnsupportedKeyAlgorithm, "RSA 2048-bit"),
    ("rsa-traditional", lambda p: _plain(_rsa(), PRIV.TraditionalOpenSSL), UnsupportedKeyAlgorithm, "RSA"),
    ("p384-encrypted", lambda p: _enc(_p384()), UnsupportedKeyAlgorithm, "ECDSA P-384 (secp384r1)"),
    ("p384-clear", lambda p: _plain(_p384()), UnsupportedKeyAlgorithm, "ECDSA P-384 (secp384r1)"),
    ("ed448-encrypted", lambda p: _enc(ed448.Ed448PrivateKey.generate()), UnsupportedKeyAlgorithm, "Ed448"),
    ("openssh", lambda p: _plain(ed25519.Ed25519PrivateKey.generate(), PRIV.OpenSSH), UnsupportedKeyAlgorithm, "OpenSSH"),
    ("damaged-encrypted", lambda p: _damaged(_enc(_p256())), WrongPassphrase, "wrong passphrase"),
    ("damaged-clear", lambda p: _damaged(_plain(_p256())), KeyFileError, "damaged"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "error", "fragment"),
    [c[1:] for c in PRIVATE_CASES],
    ids=[c[0] for c in PRIVATE_CASES],
)
def test_bad_private_key(tmp_path: Path, make: Make, error: type[Exception], fragment: str) -> None:
    path = tmp_path / "k.pem"
    content = make(path)
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error) as info:
        keys.load_private_key(path, given(PASSPHRASE))
    exc = info.value
    assert isinstance(exc, InputError) and exc.exit_code == 2
    assert fragment in exc.message, exc.message
    assert str(path) in exc.message
    assert exc.hint
    assert PASSPHRASE.decode() not in f"{exc} {exc.hint}"


def test_wrong_passphrase(key_files: tuple[Path, Path]) -> None:
    secret = "wrong-but-SECRET-99"
    with pytest.raises(WrongPassphrase) as info:
        keys.load_private_key(key_files[0], given(secret.encode()))
    exc = info.value
    assert "wrong passphrase" in exc.message
    assert exc.hint and keys.PASSPHRASE_ENV in exc.hint
    rendered = f"{exc} {exc.hint} {exc!r}"
    assert secret not in rendered and PASSPHRASE.decode() not in rendered
    assert exc.__cause__ is None and exc.__suppress_context__  # no chained traceback


def test_passphrase_not_asked_for_a_key_that_needs_none(tmp_path: Path) -> None:
    path = tmp_path / "clear.pem"
    path.write_bytes(_plain(_p256()))
    with pytest.raises(UnencryptedPrivateKey):
        keys.load_private_key(path, never)
    key = keys.load_private_key(path, never, allow_unencrypted=True)
    assert keys.algorithm_of(key) == "ecdsa-p256-sha256"


def test_pem_loader_names_its_source() -> None:
    with pytest.raises(KeyFileError, match=r"^trust\.yaml: keys\.alice: "):
        keys.load_private_key_pem(b"nope", never, source="trust.yaml: keys.alice")


PUBLIC_CASES: list[tuple[str, Make, type[Exception], str]] = [
    ("missing", lambda p: None, KeyFileError, "no such key file"),
    ("folder", _folder, KeyFileError, "is a folder"),
    ("text", lambda p: b"not a key", KeyFileError, "not a PEM public key"),
    ("private-encrypted", lambda p: _enc(_p256()), KeyFileError, "holds a private key"),
    ("private-clear", lambda p: _plain(_p256()), KeyFileError, "holds a private key"),
    ("certificate", lambda p: _certificate(), KeyFileError, "X.509 certificate"),
    ("rsa-spki", lambda p: _pub(_rsa()), UnsupportedKeyAlgorithm, "RSA 2048-bit"),
    ("rsa-pkcs1", lambda p: _rsa().public_key().public_bytes(ENC.PEM, PUBF.PKCS1), UnsupportedKeyAlgorithm, "RSA"),
    ("p384", lambda p: _pub(_p384()), UnsupportedKeyAlgorithm, "ECDSA P-384 (secp384r1)"),
    ("ed448", lambda p: _pub(ed448.Ed448PrivateKey.generate()), UnsupportedKeyAlgorithm, "Ed448"),
    ("damaged", lambda p: _damaged(_pub(_rsa())), KeyFileError, "damaged"),
    ("two-keys", lambda p: _pub(_p256()) + _pub(_p256()), KeyFileError, "holds 2 keys"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "error", "fragment"),
    [c[1:] for c in PUBLIC_CASES],
    ids=[c[0] for c in PUBLIC_CASES],
)
def test_bad_public_key(tmp_path: Path, make: Make, error: type[Exception], fragment: str) -> None:
    path = tmp_path / "k.pub.pem"
    content = make(path)
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error) as info:
        keys.load_public_key(path)
    exc = info.value
    assert isinstance(exc, InputError) and exc.exit_code == 2
    assert fragment in exc.message, exc.message
    assert str(path) in exc.message
    assert exc.hint


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ECDSA P-384 (secp384r1)"),
        (lambda: ec.generate_private_key(ec.SECP256K1()), "ECDSA secp256k1"),
        (lambda: _rsa(), "RSA 2048-bit"),
        (lambda: ed448.Ed448PrivateKey.generate(), "Ed448"),
    ],
    ids=["p384", "secp256k1", "rsa", "ed448"],
)
def test_algorithm_of_unsupported(make: Callable[[], object], fragment: str) -> None:
    with pytest.raises(UnsupportedKeyAlgorithm, match=re.escape(fragment)):
        keys.algorithm_of(make())  # type: ignore[arg-type]
