"""Signing keys: ECDSA P-256 (the default) and Ed25519, kept as PEM files.

- Private keys are encrypted PKCS#8 PEM (``-----BEGIN ENCRYPTED PRIVATE KEY-----``), the format
  ``openssl pkey`` and cosign read. The passphrase comes from :data:`PASSPHRASE_ENV` or, on a
  terminal, from a prompt; never from a command-line argument.
- Public keys are PEM SubjectPublicKeyInfo (``-----BEGIN PUBLIC KEY-----``).
- A key's id is the hex sha256 of its DER SubjectPublicKeyInfo, so anyone can recompute it:
  ``openssl pkey -pubin -in KEY.pub.pem -outform DER | sha256sum``.

Every way a key file can be wrong raises a :class:`~packager.signing.errors.KeyFileError` (or a
subclass) that names the file and carries a hint. The ``*_pem`` loaders are pure (bytes in, key
out) for keys that come from elsewhere than a file of their own, e.g. a trust policy.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, Protocol, Union

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import (
    PrivateKeyTypes,
    PublicKeyTypes,
)

from packager.signing.errors import (
    KeyFileError,
    PassphraseUnavailable,
    UnencryptedPrivateKey,
    UnsupportedKeyAlgorithm,
    WrongPassphrase,
)

Algorithm = Literal["ecdsa-p256-sha256", "ed25519"]
ECDSA_P256_SHA256: Final = "ecdsa-p256-sha256"
ED25519: Final = "ed25519"
DEFAULT_ALGORITHM: Final[Algorithm] = ECDSA_P256_SHA256
ALGORITHMS: Final[tuple[Algorithm, ...]] = (ECDSA_P256_SHA256, ED25519)
#: other spellings accepted by :func:`parse_algorithm` (the CLI's ``--algorithm ecdsa-p256``)
ALGORITHM_ALIASES: Final[Mapping[str, Algorithm]] = {
    "ecdsa-p256-sha256": ECDSA_P256_SHA256,
    "ecdsa-p256": ECDSA_P256_SHA256,
    "ecdsa": ECDSA_P256_SHA256,
    "p256": ECDSA_P256_SHA256,
    "ed25519": ED25519,
}

PrivateKey = Union[ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey]
PublicKey = Union[ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey]

#: the environment variable a passphrase is read from before any prompt
PASSPHRASE_ENV: Final = "AIRGAP_KEY_PASSPHRASE"
#: a key file larger than this is refused unread (a PEM key is well under 1 KiB)
MAX_KEY_FILE_BYTES: Final = 64 * 1024

_NIST_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_KEYID = re.compile(r"[0-9a-f]{64}")
_PEM_BEGIN = re.compile(rb"^-----BEGIN ([A-Z0-9 ]+)-----[ \t\r]*$", re.MULTILINE)
_ENCRYPTED_PKCS8 = b"ENCRYPTED PRIVATE KEY"
_PKCS8 = b"PRIVATE KEY"
_SPKI = b"PUBLIC KEY"
_PRIVATE_LABELS = frozenset(
    {
        _ENCRYPTED_PKCS8,
        _PKCS8,
        b"EC PRIVATE KEY",
        b"RSA PRIVATE KEY",
        b"DSA PRIVATE KEY",
        b"OPENSSH PRIVATE KEY",
    }
)
_PUBLIC_LABELS = frozenset({_SPKI, b"RSA PUBLIC KEY"})
_KEY_LABELS = _PRIVATE_LABELS | _PUBLIC_LABELS
_TO_PKCS8_HINT = "convert it: openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD.pem -out NEW.key.pem"
_GENERATE_HINT = "make a supported key with `airgap key generate` (ecdsa-p256 or ed25519)"


# --- algorithms -----------------------------------------------------------------------------


def parse_algorithm(name: str) -> Algorithm:
    """The canonical algorithm for a user-given name (``ecdsa-p256``, ``ed25519``, ...)."""
    try:
        return ALGORITHM_ALIASES[name.strip().lower()]
    except KeyError:
        raise UnsupportedKeyAlgorithm(
            f"unknown key algorithm {name!r}",
            hint="use one of: ecdsa-p256 (the default), ed25519",
        ) from None


def describe_key_type(key: PrivateKeyTypes | PublicKeyTypes) -> str:
    """A human name for any key's algorithm, e.g. ``ECDSA P-384 (secp384r1)``, ``RSA 2048-bit``."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        nist = _NIST_CURVES.get(key.curve.name)
        return f"ECDSA {nist} ({key.curve.name})" if nist else f"ECDSA {key.curve.name}"
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"RSA {key.key_size}-bit"
    if isinstance(key, (dsa.DSAPrivateKey, dsa.DSAPublicKey)):
        return f"DSA {key.key_size}-bit"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "Ed25519"
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return "Ed448"
    if isinstance(key, (x25519.X25519PrivateKey, x25519.X25519PublicKey)):
        return "X25519 (a key-agreement key, it cannot sign)"
    if isinstance(key, (x448.X448PrivateKey, x448.X448PublicKey)):
        return "X448 (a key-agreement key, it cannot sign)"
    return type(key).__name__


def algorithm_of(key: PrivateKeyTypes | PublicKeyTypes) -> Algorithm:
    """The airgap algorithm of a key; :class:`UnsupportedKeyAlgorithm` for any other key."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)) and isinstance(
        key.curve, ec.SECP256R1
    ):
        return ECDSA_P256_SHA256
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return ED25519
    raise UnsupportedKeyAlgorithm(
        f"unsupported key algorithm {describe_key_type(key)}: "
        "airgap signs with ECDSA P-256 (secp256r1) or Ed25519",
        hint=_GENERATE_HINT,
    )


def _check_supported(key: PrivateKeyTypes | PublicKeyTypes, source: str) -> None:
    try:
        algorithm_of(key)
    except UnsupportedKeyAlgorithm as exc:
        raise UnsupportedKeyAlgorithm(f"{source}: {exc.message}", hint=exc.hint) from None


def _supported_private(key: PrivateKeyTypes, source: str) -> PrivateKey:
    _check_supported(key, source)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        raise AssertionError("unreachable: algorithm_of accepted an unsupported key")
    return key


def _supported_public(key: PublicKeyTypes, source: str) -> PublicKey:
    _check_supported(key, source)
    if not isinstance(key, (ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
        raise AssertionError("unreachable: algorithm_of accepted an unsupported key")
    return key


# --- keys and their serialized forms ----------------------------------------------------------


def generate_private_key(algorithm: Algorithm = DEFAULT_ALGORITHM) -> PrivateKey:
    """A new private key of ``algorithm``."""
    if algorithm == ECDSA_P256_SHA256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    raise UnsupportedKeyAlgorithm(f"unknown key algorithm {algorithm!r}", hint=_GENERATE_HINT)


def public_key_der(key: PublicKey) -> bytes:
    """The DER SubjectPublicKeyInfo of ``key``, the bytes its keyid is the hash of."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def keyid(public_key: PublicKey) -> str:
    """Hex sha256 of the DER SubjectPublicKeyInfo (64 lowercase hex digits)."""
    return hashlib.sha256(public_key_der(public_key)).hexdigest()


def is_keyid(text: str) -> bool:
    """True for a well-formed keyid: exactly 64 lowercase hex digits."""
    return _KEYID.fullmatch(text) is not None


def public_key_pem(key: PublicKey | PrivateKey) -> bytes:
    """PEM SubjectPublicKeyInfo (``-----BEGIN PUBLIC KEY-----``) of a public or private key."""
    public = (
        key.public_key()
        if isinstance(key, (ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey))
        else key
    )
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_key_pem(key: PrivateKey, passphrase: bytes) -> bytes:
    """Encrypted PKCS#8 PEM of ``key`` (cryptography's best available encryption)."""
    if not passphrase:
        raise ValueError("an empty passphrase cannot protect a private key")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


# --- passphrases ------------------------------------------------------------------------------


class PassphraseSource(Protocol):
    """Where a passphrase comes from; ``prompt`` is what a terminal prompt would say."""

    def __call__(self, prompt: str, /) -> bytes: ...


def _stdin_isatty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def passphrase_from_env_or_prompt(
    prompt: str = "Key passphrase: ",
    *,
    confirm: bool = False,
    environ: Mapping[str, str] | None = None,
    isatty: Callable[[], bool] = _stdin_isatty,
    ask: Callable[[str], str] = getpass.getpass,
) -> bytes:
    """The passphrase from :data:`PASSPHRASE_ENV`, else a terminal prompt, else an error.

    ``confirm`` (for a new key) prompts twice and refuses two different answers; a passphrase
    from the environment is taken as it is. This is the default :class:`PassphraseSource`;
    ``environ``, ``isatty`` and ``ask`` exist for tests.
    """
    env = os.environ if environ is None else environ
    if PASSPHRASE_ENV in env:
        value = env[PASSPHRASE_ENV]
        if not value:
            raise PassphraseUnavailable(
                f"{PASSPHRASE_ENV} is set but empty",
                hint=f"set {PASSPHRASE_ENV} to the key's passphrase, or unset it to be prompted",
            )
        return value.encode("utf-8")
    if not isatty():
        raise PassphraseUnavailable(
            "no passphrase for the private key: "
            f"{PASSPHRASE_ENV} is not set and standard input is not a terminal",
            hint=f"export {PASSPHRASE_ENV} (never pass a passphrase as an argument), "
            "or run in a terminal to be prompted",
        )
    value = _ask(ask, prompt)
    if confirm and _ask(ask, "Repeat " + prompt[:1].lower() + prompt[1:]) != value:
        raise PassphraseUnavailable(
            "the two passphrases entered differ", hint="run the command again"
        )
    return value.encode("utf-8")


def _ask(ask: Callable[[str], str], prompt: str) -> str:
    try:
        value = ask(prompt)
    except EOFError:
        raise PassphraseUnavailable(
            "no passphrase was entered", hint=f"type it at the prompt, or set {PASSPHRASE_ENV}"
        ) from None
    if not value:
        raise PassphraseUnavailable(
            "the passphrase entered is empty", hint="a private key needs a non-empty passphrase"
        )
    return value


# --- loading ----------------------------------------------------------------------------------


def _read_key_file(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise KeyFileError(
            f"{path}: no such key file", hint="check the path; `airgap key generate` makes a key"
        ) from None
    except IsADirectoryError:
        raise KeyFileError(
            f"{path}: is a folder, not a key file", hint="give the path of a .pem key file"
        ) from None
    except OSError as exc:
        raise KeyFileError(
            f"{path}: cannot read the key file: {exc.strerror}",
            hint="check that it exists and is readable by this user",
        ) from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(
            f"{path}: too large to be a key file (more than {MAX_KEY_FILE_BYTES} bytes)",
            hint="give the path of a .pem key file",
        )
    return data


def _pem_labels(data: bytes) -> list[bytes]:
    return [m.group(1) for m in _PEM_BEGIN.finditer(data)]


def _not_a_key(data: bytes, labels: list[bytes], source: str, wanted: str) -> KeyFileError:
    if labels and b"CERTIFICATE" in labels[0]:
        return KeyFileError(
            f"{source}: holds an X.509 certificate, not a {wanted}",
            hint="give the key itself; a certificate's public key: "
            "openssl x509 -in CERT.pem -pubkey -noout > KEY.pub.pem",
        )
    if labels:
        names = ", ".join(sorted({label.decode("ascii") for label in labels}))
        return KeyFileError(f"{source}: holds PEM {names}, not a {wanted}", hint=_GENERATE_HINT)
    if data[:1] == b"\x30":
        return KeyFileError(
            f"{source}: a DER (binary) file; airgap reads keys as PEM",
            hint="convert it: openssl pkey -inform DER -in KEY.der -out KEY.pem",
        )
    return KeyFileError(f"{source}: not a PEM {wanted} file", hint=_GENERATE_HINT)


def _one_key_label(data: bytes, source: str, wanted: str) -> bytes:
    labels = _pem_labels(data)
    key_labels = [label for label in labels if label in _KEY_LABELS]
    if not key_labels:
        raise _not_a_key(data, labels, source, wanted)
    if len(key_labels) > 1:
        raise KeyFileError(
            f"{source}: holds {len(key_labels)} keys; airgap expects one key per file",
            hint="split the file, one key in each",
        )
    return key_labels[0]


def load_private_key_pem(
    data: bytes,
    passphrase_source: PassphraseSource | None = None,
    *,
    source: str = "private key",
    allow_unencrypted: bool = False,
) -> PrivateKey:
    """A supported private key from PEM ``data``; ``source`` names it in errors.

    The passphrase is asked for only when the key is encrypted. An unencrypted key is refused
    unless ``allow_unencrypted`` (meant for tests and throwaway keys).
    """
    label = _one_key_label(data, source, "private key")
    if label in _PUBLIC_LABELS:
        raise KeyFileError(
            f"{source}: holds a public key; signing needs the private key",
            hint="give NAME.key.pem, the private key written beside NAME.pub.pem",
        )
    if label == b"RSA PRIVATE KEY":
        raise UnsupportedKeyAlgorithm(
            f"{source}: unsupported key algorithm RSA: "
            "airgap signs with ECDSA P-256 (secp256r1) or Ed25519",
            hint=_GENERATE_HINT,
        )
    if label in {b"DSA PRIVATE KEY", b"OPENSSH PRIVATE KEY"}:
        what = "a DSA" if label.startswith(b"DSA") else "an OpenSSH-format"
        raise UnsupportedKeyAlgorithm(
            f"{source}: {what} private key; airgap reads encrypted PKCS#8 "
            "ECDSA P-256 or Ed25519 keys",
            hint=_GENERATE_HINT,
        )
    if label == b"EC PRIVATE KEY":  # SEC1 ("traditional OpenSSL") format
        if b"Proc-Type: 4,ENCRYPTED" not in data:
            # say the more basic problem first: a P-384 key should not be converted to no avail
            _supported_private(_load_private(data, None, source), source)
        raise KeyFileError(
            f"{source}: an EC private key in SEC1 format; airgap reads encrypted PKCS#8",
            hint=_TO_PKCS8_HINT,
        )
    if label == _PKCS8:
        key = _supported_private(_load_private(data, None, source), source)
        if not allow_unencrypted:
            raise UnencryptedPrivateKey(
                f"{source}: the private key is not encrypted; airgap keeps private keys "
                "as passphrase-encrypted PKCS#8",
                hint="encrypt it: openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY.pem -out "
                "KEY.key.pem (then delete the clear copy)",
            )
        return key
    # _ENCRYPTED_PKCS8
    ask = passphrase_source or passphrase_from_env_or_prompt
    passphrase = ask(f"Passphrase for {source}: ")
    return _supported_private(_load_private(data, passphrase, source), source)


def _load_private(data: bytes, passphrase: bytes | None, source: str) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(data, passphrase)
    except UnsupportedAlgorithm as exc:
        raise UnsupportedKeyAlgorithm(
            f"{source}: the key uses an algorithm or encryption this system cannot read ({exc})",
            hint=_GENERATE_HINT,
        ) from None
    except (ValueError, TypeError):
        if passphrase is not None:
            raise WrongPassphrase(
                f"{source}: cannot decrypt the private key: wrong passphrase "
                "(or a damaged key file)",
                hint=f"check {PASSPHRASE_ENV} or the passphrase typed",
            ) from None
        raise KeyFileError(
            f"{source}: the private key is damaged and cannot be parsed", hint=_GENERATE_HINT
        ) from None


def load_private_key(
    path: Path | str,
    passphrase_source: PassphraseSource | None = None,
    *,
    allow_unencrypted: bool = False,
) -> PrivateKey:
    """Read an encrypted PKCS#8 PEM private key file (see :func:`load_private_key_pem`).

    ``passphrase_source`` defaults to :func:`passphrase_from_env_or_prompt`.
    """
    p = Path(path)
    return load_private_key_pem(
        _read_key_file(p), passphrase_source, source=str(p), allow_unencrypted=allow_unencrypted
    )


def load_public_key_pem(data: bytes, *, source: str = "public key") -> PublicKey:
    """A supported public key from PEM SubjectPublicKeyInfo ``data``; never from a private key."""
    label = _one_key_label(data, source, "public key")
    if label in _PRIVATE_LABELS:
        raise KeyFileError(
            f"{source}: holds a private key; give the public key instead",
            hint="give NAME.pub.pem; keep private keys off the machines that only verify",
        )
    if label == b"RSA PUBLIC KEY":
        raise UnsupportedKeyAlgorithm(
            f"{source}: unsupported key algorithm RSA: "
            "airgap verifies ECDSA P-256 (secp256r1) or Ed25519 keys",
            hint=_GENERATE_HINT,
        )
    try:
        key = serialization.load_pem_public_key(data)
    except UnsupportedAlgorithm as exc:
        raise UnsupportedKeyAlgorithm(
            f"{source}: the public key uses an algorithm this system cannot read ({exc})",
            hint=_GENERATE_HINT,
        ) from None
    except ValueError:
        raise KeyFileError(
            f"{source}: the public key is damaged and cannot be parsed",
            hint="copy NAME.pub.pem again from where the key was made",
        ) from None
    return _supported_public(key, source)


def load_public_key(path: Path | str) -> PublicKey:
    """Read a PEM SubjectPublicKeyInfo public key file."""
    p = Path(path)
    return load_public_key_pem(_read_key_file(p), source=str(p))


@dataclass(frozen=True)
class SigningKey:
    """What signing needs of a private key, wherever it lives (a PEM file, a PKCS#11 token):
    its keyid, algorithm, public key and a way to sign bytes. Bundle signatures, the DSSE
    attestation and the model signature all go through ``sign``; nothing needs the private key
    itself, so a key that never leaves its token signs the same way."""

    keyid: str
    algorithm: str
    sign: Callable[[bytes], bytes]
    public_key: PublicKey | None = None
    #: where the key is, for messages (a file path, a pkcs11: URI without its PIN)
    source: str = ""


def signing_key_from_private(private: PrivateKey, source: str = "") -> SigningKey:
    """A :class:`SigningKey` over an in-memory private key."""
    from packager.signing import signature

    public = private.public_key()
    return SigningKey(
        keyid=keyid(public),
        algorithm=algorithm_of(private),
        sign=lambda data: signature.sign(private, data),
        public_key=public,
        source=source,
    )


def load_signing_key(path: Path) -> SigningKey:
    """The private key at ``path``; its passphrase from AIRGAP_KEY_PASSPHRASE or a prompt."""
    return signing_key_from_private(load_private_key(path), str(path))


def open_signing_key(spec: str) -> SigningKey:
    """``--key`` for signing: a ``pkcs11:`` URI (a key in a token) or a private key file."""
    from packager.signing.pkcs11_uri import is_pkcs11_uri

    if is_pkcs11_uri(spec):
        from packager.signing.pkcs11 import load_token_signing_key

        return load_token_signing_key(spec)
    return load_signing_key(Path(spec))
