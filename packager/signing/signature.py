"""Detached signatures over bytes (``airgap/bundle.json``) and the ``.sig`` file format.

Signatures:
- ECDSA P-256: ECDSA over SHA-256 of the data, the DER ``Ecdsa-Sig-Value`` (what
  ``openssl dgst -sha256 -sign`` writes and ``-verify`` reads). Randomized: two signatures
  of the same bytes differ; both verify.
- Ed25519: the raw 64-byte signature of pure Ed25519 over the data (RFC 8032), what
  ``openssl pkeyutl -sign -rawin`` writes. Deterministic.

Signature file (``airgap/bundle.json.sig/<keyid>.sig``): the signature in standard base64
(RFC 4648 alphabet, ``=`` padded, on one line) followed by one ``\\n``. That is what
``cosign sign-blob`` writes and ``cosign verify-blob --signature FILE`` reads (cosign
base64-decodes a file that decodes as base64, and Go's decoder skips the newline), and it is
what ``base64 -d`` turns back into the DER for ``openssl dgst -sha256 -verify``:

    base64 -d KEYID.sig > sig.der
    openssl dgst -sha256 -verify KEY.pub.pem -signature sig.der bundle.json

(``openssl base64 -d`` needs ``-A`` for the one long line.)
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from packager.signing.errors import SignatureFormatError, UnsupportedKeyAlgorithm
from packager.signing.keys import PrivateKey, PublicKey, algorithm_of, is_keyid

#: a signature file larger than this is refused unread (ours are under 100 bytes)
MAX_SIGNATURE_FILE_BYTES: Final = 4096
SIGNATURE_FILE_SUFFIX: Final = ".sig"


def sign(private_key: PrivateKey, data: bytes) -> bytes:
    """The signature of ``data``: DER ECDSA-SHA256 for P-256 keys, raw 64 bytes for Ed25519."""
    algorithm_of(private_key)  # refuses P-384 and the like, which the type alias lets through
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(data)
    return private_key.sign(data, ec.ECDSA(hashes.SHA256()))


def verify(public_key: PublicKey, data: bytes, sig: bytes) -> bool:
    """True when ``sig`` is ``public_key``'s valid signature of ``data``; never raises for bad
    signatures (a malformed DER, a wrong length, another key's signature: all False)."""
    try:
        algorithm_of(public_key)
    except UnsupportedKeyAlgorithm:
        return False
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(sig, data)
        else:
            public_key.verify(sig, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def signature_file_content(sig: bytes) -> bytes:
    """The bytes of a ``.sig`` file: standard base64 of ``sig``, one line, then ``\\n``."""
    if not sig:
        raise ValueError("an empty signature")
    return base64.b64encode(sig) + b"\n"


def parse_signature_file(content: bytes, *, source: str = "signature file") -> bytes:
    """The raw signature from a ``.sig`` file's bytes; strict, and bounded in size.

    Accepts exactly what :func:`signature_file_content` writes, with or without the final
    newline (and a ``\\r\\n`` from an editor); anything else is a :class:`SignatureFormatError`.
    """
    if len(content) > MAX_SIGNATURE_FILE_BYTES:
        raise SignatureFormatError(
            f"{source}: too large to be a signature ({len(content)} bytes, "
            f"at most {MAX_SIGNATURE_FILE_BYTES})",
            hint="the file is not an airgap signature; sign the bundle again",
        )
    text = content.removesuffix(b"\n").removesuffix(b"\r")
    if not text:
        raise SignatureFormatError(f"{source}: empty", hint="sign the bundle again")
    try:
        sig = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureFormatError(
            f"{source}: not a base64 signature", hint="the file is damaged; sign the bundle again"
        ) from None
    if not sig:
        raise SignatureFormatError(f"{source}: empty", hint="sign the bundle again")
    return sig


def signature_file_name(keyid: str) -> str:
    """``<keyid>.sig``, the name of a key's signature file in its folder."""
    if not is_keyid(keyid):
        raise ValueError(f"not a keyid (64 lowercase hex digits): {keyid!r}")
    return keyid + SIGNATURE_FILE_SUFFIX
