"""Signing keys that live in a PKCS#11 token (an HSM, a smart card, SoftHSM2): the private key
never leaves the token; airgap hashes locally and asks the token for the signature.

``--key 'pkcs11:token=NAME;object=LABEL'`` (RFC 7512, :mod:`packager.signing.pkcs11_uri`) gives
a :class:`~packager.signing.keys.SigningKey` whose ``sign`` is ``C_Sign`` with ``CKM_ECDSA`` over
the SHA-256 of the data; the token's raw ``r || s`` is turned into the DER ``Ecdsa-Sig-Value``
airgap writes for PEM keys, so signatures are the same format as today (openssl, cosign and
``verify`` read them alike). Each signature is checked against the token's public key before it
is used: a token that signs with another key than the object named stops the command.

- the library: ``module-path=`` in the URI, else ``AIRGAP_PKCS11_MODULE``;
- the PIN: ``AIRGAP_PKCS11_PIN``, else a terminal prompt; never an argument;
- the key: ECDSA P-256 (the algorithm airgap verifies everywhere); its public key from the
  token's public-key object (or a certificate) with the same label or id.

Needs python-pkcs11 (``pip install 'airgap[hsm]'``), imported only when a pkcs11: key is used.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from packager.errors import InputError
from packager.signing import keys, signature
from packager.signing.errors import KeyFileError, PassphraseUnavailable, UnsupportedKeyAlgorithm
from packager.signing.pkcs11_uri import Pkcs11Uri, parse_pkcs11_uri

MODULE_ENV: Final = "AIRGAP_PKCS11_MODULE"
PIN_ENV: Final = "AIRGAP_PKCS11_PIN"
_P256_OID_DER = bytes.fromhex("06082a8648ce3d030107")  # the EC_PARAMS of secp256r1


class TokenError(KeyFileError):
    """A PKCS#11 token, library or object that cannot give a signing key (exit 2)."""


class WrongPin(TokenError):
    """The token refused the PIN (or locked it)."""


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise InputError(
            "pkcs11: keys need the python-pkcs11 package, which is not installed",
            hint="pip install 'airgap[hsm]' (or pip install python-pkcs11)",
        ) from None
    return pkcs11


def module_path(uri: Pkcs11Uri, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    path = uri.module_path or env.get(MODULE_ENV, "")
    if not path:
        raise TokenError(
            f"{uri.display()}: no PKCS#11 library to load",
            hint=f"add ?module-path=/path/to/library.so to the URI, or export {MODULE_ENV} "
            "(SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)",
        )
    if not os.path.isfile(path):
        raise TokenError(
            f"{path}: no such PKCS#11 library",
            hint=f"check ?module-path= or {MODULE_ENV}; the vendor's documentation names the .so",
        )
    return path


def _stdin_isatty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def pin_from_env_or_prompt(
    token: str,
    *,
    environ: Mapping[str, str] | None = None,
    isatty: Callable[[], bool] = _stdin_isatty,
    ask: Callable[[str], str] = getpass.getpass,
) -> str:
    """The user PIN from :data:`PIN_ENV`, else a terminal prompt, else an error."""
    env = os.environ if environ is None else environ
    if PIN_ENV in env:
        if not env[PIN_ENV]:
            raise PassphraseUnavailable(
                f"{PIN_ENV} is set but empty", hint="set it to the token's user PIN, or unset it"
            )
        return env[PIN_ENV]
    if not isatty():
        raise PassphraseUnavailable(
            f"no PIN for token {token!r}: {PIN_ENV} is not set and standard input is not a "
            "terminal",
            hint=f"export {PIN_ENV} (never pass a PIN as an argument), or run in a terminal",
        )
    try:
        value = ask(f"User PIN for token {token}: ")
    except EOFError:
        value = ""
    if not value:
        raise PassphraseUnavailable("no PIN was entered", hint=f"type it, or set {PIN_ENV}")
    return value


def _load_library(path: str) -> Any:
    p11 = _pkcs11()
    try:
        return p11.lib(path)
    except Exception as exc:  # a .so that is not a PKCS#11 library, a missing symbol
        raise TokenError(
            f"{path}: cannot load it as a PKCS#11 library ({type(exc).__name__}: {exc})",
            hint=f"check ?module-path= or {MODULE_ENV}",
        ) from None


def _token_label(t: Any) -> str:
    return str(t.label).strip()


def _matches(uri: Pkcs11Uri, token: Any) -> bool:
    slot = token.slot
    checks: dict[str, Callable[[], str]] = {
        "token": lambda: _token_label(token),
        "serial": lambda: bytes(token.serial).decode("ascii", "replace").strip(),
        "manufacturer": lambda: str(token.manufacturer_id).strip(),
        "model": lambda: str(token.model).strip(),
        "slot-description": lambda: str(slot.slot_description).strip(),
        "slot-manufacturer": lambda: str(slot.manufacturer_id).strip(),
        "slot-id": lambda: str(slot.slot_id),
    }
    return all(name not in checks or checks[name]() == value for name, value in uri.attributes)


def find_token(uri: Pkcs11Uri, lib: Any) -> Any:
    """The one token ``uri`` names (its path attributes matched exactly)."""
    p11 = _pkcs11()
    try:
        tokens = [
            t
            for t in (s.get_token() for s in lib.get_slots(token_present=True))
            if p11.TokenFlag.TOKEN_INITIALIZED in t.flags
        ]
    except p11.PKCS11Error as exc:
        raise TokenError(f"{uri.display()}: cannot list the library's tokens ({exc!r})") from None
    found = [t for t in tokens if _matches(uri, t)]
    if not found:
        have = ", ".join(repr(_token_label(t)) for t in tokens) or "none"
        raise TokenError(
            f"{uri.display()}: no such token (tokens present: {have})",
            hint="check token= (the token's label: softhsm2-util --show-slots, "
            "pkcs11-tool --list-slots)",
        )
    if len(found) > 1:
        raise TokenError(
            f"{uri.display()}: {len(found)} tokens match", hint="add serial= to pick one"
        )
    return found[0]


def _key_attrs(uri: Pkcs11Uri, object_class: Any) -> dict[Any, Any]:
    p11 = _pkcs11()
    attrs: dict[Any, Any] = {p11.Attribute.CLASS: object_class}
    if uri.object is not None:
        attrs[p11.Attribute.LABEL] = uri.object
    if uri.id is not None:
        attrs[p11.Attribute.ID] = uri.id
    return attrs


def _objects(session: Any, uri: Pkcs11Uri, object_class: Any) -> list[Any]:
    return list(session.get_objects(_key_attrs(uri, object_class)))


def _ec_point(raw: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the point (some tokens give the bare point)."""
    if raw[:1] == b"\x04" and len(raw) >= 2:
        n = raw[1]
        if n < 0x80 and len(raw) == 2 + n and raw[2:3] == b"\x04":
            return raw[2:]
        if n == 0x81 and len(raw) >= 3 and len(raw) == 3 + raw[2]:
            return raw[3:]
    return raw


def _public_key(session: Any, uri: Pkcs11Uri) -> ec.EllipticCurvePublicKey:
    p11 = _pkcs11()
    what = uri.display()
    pubs = _objects(session, uri, p11.ObjectClass.PUBLIC_KEY)
    if len(pubs) > 1:
        raise TokenError(f"{what}: {len(pubs)} public keys match", hint="add id= to pick one")
    if pubs:
        pub = pubs[0]
        if pub[p11.Attribute.KEY_TYPE] != p11.KeyType.EC:
            raise UnsupportedKeyAlgorithm(
                f"{what}: a {pub[p11.Attribute.KEY_TYPE].name} key; airgap signs with "
                "ECDSA P-256 in tokens",
                hint="generate an EC key on the curve secp256r1 (prime256v1) in the token",
            )
        if bytes(pub[p11.Attribute.EC_PARAMS]) != _P256_OID_DER:
            raise UnsupportedKeyAlgorithm(
                f"{what}: an EC key on another curve than P-256",
                hint="generate an EC key on the curve secp256r1 (prime256v1) in the token",
            )
        point = _ec_point(bytes(pub[p11.Attribute.EC_POINT]))
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except ValueError:
            raise TokenError(f"{what}: the token's EC_POINT is not a P-256 point") from None
    certs = _objects(session, uri, p11.ObjectClass.CERTIFICATE)
    if len(certs) == 1:
        cert = x509.load_der_x509_certificate(bytes(certs[0][p11.Attribute.VALUE]))
        key = cert.public_key()
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            return key
        raise UnsupportedKeyAlgorithm(
            f"{what}: the certificate's key is {keys.describe_key_type(key)}, not ECDSA P-256"
        )
    raise TokenError(
        f"{what}: the token holds no public key or certificate for this object",
        hint="airgap needs the public key to compute the keyid: keep the public-key object "
        "beside the private key (softhsm2-util --import and C_GenerateKeyPair both make one)",
    )


def _object_names(session: Any) -> list[str]:
    p11 = _pkcs11()
    names = []
    for o in session.get_objects({p11.Attribute.CLASS: p11.ObjectClass.PRIVATE_KEY}):
        try:
            names.append(repr(o[p11.Attribute.LABEL]))
        except p11.PKCS11Error:
            continue
    return sorted(names)


@contextmanager
def _mapped_errors(what: str, token: str) -> Iterator[None]:
    p11 = _pkcs11()
    try:
        yield
    except p11.PinIncorrect:
        raise WrongPin(
            f"token {token!r}: wrong PIN", hint=f"check {PIN_ENV} or the PIN typed"
        ) from None
    except p11.PinLocked:
        raise WrongPin(
            f"token {token!r}: the PIN is locked (too many wrong PINs)",
            hint="the token's security officer must unlock it",
        ) from None
    except (p11.PinInvalid, p11.PinLenRange):
        raise WrongPin(
            f"token {token!r}: the PIN has characters or a length the token refuses",
            hint=f"check {PIN_ENV}",
        ) from None
    except p11.PKCS11Error as exc:
        raise TokenError(f"{what}: the token failed: {type(exc).__name__} {exc}") from None


@dataclass
class TokenKey:
    """An open, logged-in session on the token and the private key object in it."""

    uri: Pkcs11Uri
    session: Any
    private: Any
    public: ec.EllipticCurvePublicKey
    lock: threading.Lock

    def sign(self, data: bytes) -> bytes:
        """DER ECDSA-SHA256 of ``data``, computed by the token; checked with the public key."""
        p11 = _pkcs11()
        digest = hashlib.sha256(data).digest()
        with self.lock, _mapped_errors(self.uri.display(), self.uri.token or "?"):
            raw = bytes(self.private.sign(digest, mechanism=p11.Mechanism.ECDSA))
        if len(raw) != 64:
            raise TokenError(
                f"{self.uri.display()}: the token returned a {len(raw)}-byte signature, "
                "not a P-256 r||s"
            )
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        if not signature.verify(self.public, data, der):
            raise TokenError(
                f"{self.uri.display()}: the token's signature does not verify with its public "
                "key: the private and public objects are not one key pair",
                hint="give the private key and its own public key the same label and id",
            )
        return der

    def close(self) -> None:
        self.session.close()


def open_token_key(
    text: str,
    *,
    environ: Mapping[str, str] | None = None,
    pin: Callable[[str], str] | None = None,
) -> TokenKey:
    """Log in to the token ``text`` names and find its private key and public key."""
    p11 = _pkcs11()
    uri = parse_pkcs11_uri(text)
    lib = _load_library(module_path(uri, environ))
    token = find_token(uri, lib)
    label = _token_label(token)
    user_pin = (pin or (lambda t: pin_from_env_or_prompt(t, environ=environ)))(label)
    with _mapped_errors(uri.display(), label):
        try:
            session = token.open(user_pin=user_pin)
        except p11.UserAlreadyLoggedIn:  # this process logged in to the token before
            session = token.open()
    try:
        with _mapped_errors(uri.display(), label):
            privs = _objects(session, uri, p11.ObjectClass.PRIVATE_KEY)
            if not privs:
                raise TokenError(
                    f"{uri.display()}: token {label!r} holds no private key "
                    + (f"labelled {uri.object!r}" if uri.object else f"with id {uri.id!r}"),
                    hint=f"private keys there: {', '.join(_object_names(session)) or 'none'}",
                )
            if len(privs) > 1:
                raise TokenError(
                    f"{uri.display()}: {len(privs)} private keys match", hint="add id= to pick one"
                )
            if privs[0][p11.Attribute.KEY_TYPE] != p11.KeyType.EC:
                raise UnsupportedKeyAlgorithm(
                    f"{uri.display()}: a {privs[0][p11.Attribute.KEY_TYPE].name} key; airgap "
                    "signs with ECDSA P-256 in tokens",
                    hint="generate an EC key on the curve secp256r1 in the token",
                )
            public = _public_key(session, uri)
    except BaseException:
        session.close()
        raise
    return TokenKey(uri, session, privs[0], public, threading.Lock())


def load_token_signing_key(
    text: str,
    *,
    environ: Mapping[str, str] | None = None,
    pin: Callable[[str], str] | None = None,
) -> keys.SigningKey:
    """A :class:`~packager.signing.keys.SigningKey` that signs in the token ``text`` names.

    The session stays open (logged in) for as long as the process signs; it ends with it.
    """
    tk = open_token_key(text, environ=environ, pin=pin)
    return keys.SigningKey(
        keyid=keys.keyid(tk.public),
        algorithm=keys.ECDSA_P256_SHA256,
        sign=tk.sign,
        public_key=tk.public,
        source=tk.uri.display(),
    )


def token_public_key(
    text: str,
    *,
    environ: Mapping[str, str] | None = None,
    pin: Callable[[str], str] | None = None,
) -> tuple[Pkcs11Uri, keys.PublicKey]:
    """The public key of the key ``text`` names, read without a PIN when the token shows its
    public objects (most do), else after logging in."""
    p11 = _pkcs11()
    uri = parse_pkcs11_uri(text)
    lib = _load_library(module_path(uri, environ))
    token = find_token(uri, lib)
    label = _token_label(token)
    with _mapped_errors(uri.display(), label), token.open() as session:
        if _objects(session, uri, p11.ObjectClass.PUBLIC_KEY) or _objects(
            session, uri, p11.ObjectClass.CERTIFICATE
        ):
            return uri, _public_key(session, uri)
    tk = open_token_key(text, environ=environ, pin=pin)
    try:
        return uri, tk.public
    finally:
        tk.close()
