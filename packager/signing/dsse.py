"""DSSE v1 envelopes (https://github.com/secure-systems-lab/dsse, envelope.md and protocol.md).

An envelope is the JSON object ``{"payload": b64, "payloadType": str, "signatures":
[{"keyid": str, "sig": b64}, ...]}``; each signature is over :func:`pae` of the payload type and
the payload, never over the payload alone, so a signature cannot be replayed for another type.
Signatures use :mod:`packager.signing.signature` (ECDSA P-256 DER, Ed25519 raw) and keyids are
:func:`packager.signing.keys.keyid`. We write standard padded base64; we read standard or
URL-safe, as the spec allows.

Everything here is pure: dicts and bytes in, dicts and bytes out.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, Union

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from packager.signing.errors import EnvelopeError
from packager.signing.keys import PrivateKey, PublicKey, keyid, signing_key_from_private
from packager.signing.signature import verify
from packager.util.jsonio import DocumentError, canonical_json, parse_document

#: the payload type of an in-toto Statement
PAYLOAD_TYPE_INTOTO: Final = "application/vnd.in-toto+json"
#: an attestation file larger than this is refused unparsed (one subject per blob stays far below)
MAX_ENVELOPE_BYTES: Final = 64 * 1024 * 1024

_B64_STD = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_B64_URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSEv1 pre-authentication encoding: ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``.

    LEN is the byte length as ASCII decimal without leading zeros; the type is UTF-8.
    """
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise EnvelopeError(f"DSSE envelope: {what} is not a string")
    if _B64_STD.fullmatch(text):
        std = text
    elif _B64_URL.fullmatch(text):
        std = text.replace("-", "+").replace("_", "/")
    else:
        raise EnvelopeError(f"DSSE envelope: {what} is not base64")
    try:
        return base64.b64decode(std + "=" * (-len(std) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"DSSE envelope: {what} is not base64") from None


class Signer(Protocol):
    """Anything that signs bytes under a keyid: a :class:`~packager.signing.keys.SigningKey`
    (a key file or a PKCS#11 token), never necessarily a private key in memory."""

    @property
    def keyid(self) -> str: ...

    @property
    def sign(self) -> Callable[[bytes], bytes]: ...


#: what the signing functions take: a signer, or a private key in memory (tests, throwaway keys)
SignerLike = Union[Signer, PrivateKey]


def _as_signer(key: SignerLike) -> Signer:
    if isinstance(key, (ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        return signing_key_from_private(key)
    return key


def _signature_entry(signer: Signer, payload_type: str, payload: bytes) -> dict[str, str]:
    return {"keyid": signer.keyid, "sig": _b64(signer.sign(pae(payload_type, payload)))}


def envelope(payload_type: str, payload: bytes, signers: Sequence[SignerLike]) -> dict[str, Any]:
    """A DSSE envelope over ``payload`` signed by each of ``signers``.

    One signature per distinct key, sorted by keyid, so the envelope does not depend on the
    order the keys were given in (and, with Ed25519 keys, is byte-for-byte reproducible).
    No signers give an envelope with no signatures (an unsigned bundle's attestation), which
    :func:`verify_envelope` rejects and :func:`add_signatures` can sign later.
    """
    by_keyid = {s.keyid: s for s in map(_as_signer, signers)}
    return {
        "payload": _b64(payload),
        "payloadType": payload_type,
        "signatures": [
            _signature_entry(by_keyid[kid], payload_type, payload) for kid in sorted(by_keyid)
        ],
    }


def add_signatures(env: Mapping[str, Any], signers: Sequence[SignerLike]) -> dict[str, Any]:
    """A copy of ``env`` co-signed by each of ``signers`` that has not signed it yet.

    A key whose keyid is already among the signatures adds nothing, so signing twice with one
    key changes nothing. Existing signatures are kept as they are, not checked: verify first.
    """
    parsed = parse_envelope(env)
    existing = [dict(s) for s in env["signatures"]]
    present = {s.get("keyid") for s in existing}
    for k in map(_as_signer, signers):
        if k.keyid not in present:
            existing.append(_signature_entry(k, parsed.payload_type, parsed.payload))
            present.add(k.keyid)
    existing.sort(key=lambda s: (str(s.get("keyid", "")), str(s.get("sig", ""))))
    return {"payload": env["payload"], "payloadType": env["payloadType"], "signatures": existing}


@dataclass(frozen=True)
class EnvelopeSignature:
    """One signature entry of an envelope; ``keyid`` is None when the entry has none."""

    keyid: str | None
    sig: bytes


@dataclass(frozen=True)
class ParsedEnvelope:
    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...]


def parse_envelope(env: object) -> ParsedEnvelope:
    """Check the shape of an envelope (a parsed JSON value) and decode it; verifies nothing."""
    if not isinstance(env, Mapping):
        raise EnvelopeError("DSSE envelope: not a JSON object")
    for field in ("payload", "payloadType", "signatures"):
        if field not in env:
            raise EnvelopeError(f"DSSE envelope: no {field!r}")
    payload_type = env["payloadType"]
    if not isinstance(payload_type, str):
        raise EnvelopeError("DSSE envelope: payloadType is not a string")
    payload = _unb64(env["payload"], "payload")
    raw_sigs = env["signatures"]
    if not isinstance(raw_sigs, list):
        raise EnvelopeError("DSSE envelope: signatures is not a list")
    sigs = []
    for i, entry in enumerate(raw_sigs):
        if not isinstance(entry, Mapping) or "sig" not in entry:
            raise EnvelopeError(f"DSSE envelope: signatures[{i}] is not an object with a sig")
        kid = entry.get("keyid")
        if kid is not None and not isinstance(kid, str):
            raise EnvelopeError(f"DSSE envelope: signatures[{i}].keyid is not a string")
        sigs.append(EnvelopeSignature(kid or None, _unb64(entry["sig"], f"signatures[{i}].sig")))
    return ParsedEnvelope(payload_type, payload, tuple(sigs))


@dataclass(frozen=True)
class EnvelopeCheck:
    """What :func:`check_envelope` found: the (unverified unless ``valid_keyids``) payload,
    the keyids of the distinct known keys with a valid signature, and why others failed."""

    payload_type: str
    payload: bytes
    valid_keyids: frozenset[str]
    problems: tuple[str, ...]


def check_envelope(
    env: object | ParsedEnvelope, public_keys_by_keyid: Mapping[str, PublicKey]
) -> EnvelopeCheck:
    """Verify every signature of ``env`` (a parsed JSON value, or an envelope parsed already:
    a large payload is decoded once) against the given keys; raises only for a malformed
    envelope. A signature entry without a keyid is tried against every key (the DSSE keyid is
    only a hint); valid keyids are those of the verifying keys, so no key counts twice.
    """
    for kid, key in public_keys_by_keyid.items():
        if keyid(key) != kid:
            raise ValueError(f"public_keys_by_keyid: {kid!r} is not the keyid of its key")
    parsed = env if isinstance(env, ParsedEnvelope) else parse_envelope(env)
    signed = pae(parsed.payload_type, parsed.payload)
    valid: set[str] = set()
    problems: list[str] = []
    for i, s in enumerate(parsed.signatures):
        if s.keyid is None:
            candidates = list(public_keys_by_keyid.items())
        elif s.keyid in public_keys_by_keyid:
            candidates = [(s.keyid, public_keys_by_keyid[s.keyid])]
        else:
            problems.append(f"signatures[{i}]: keyid {s.keyid} is not a known key")
            continue
        good = [kid for kid, key in candidates if verify(key, signed, s.sig)]
        if good:
            valid.update(good)
        else:
            who = f"keyid {s.keyid}" if s.keyid else "no keyid"
            problems.append(f"signatures[{i}] ({who}): the signature does not verify")
    return EnvelopeCheck(parsed.payload_type, parsed.payload, frozenset(valid), tuple(problems))


def verify_envelope(
    env: object,
    public_keys_by_keyid: Mapping[str, PublicKey],
    *,
    payload_type: str | None = None,
) -> bytes:
    """The payload of ``env`` when at least one known key signed it validly (and its type is
    ``payload_type``, when given); else :class:`EnvelopeError` saying why."""
    result = check_envelope(env, public_keys_by_keyid)
    if not result.valid_keyids:
        detail = "; ".join(result.problems) or "it has no signatures"
        raise EnvelopeError(
            f"DSSE envelope: no valid signature by a trusted key ({detail})",
            hint="the attestation was altered or signed by another key",
        )
    if payload_type is not None and result.payload_type != payload_type:
        raise EnvelopeError(
            f"DSSE envelope: payloadType is {result.payload_type!r}, expected {payload_type!r}"
        )
    return result.payload


def envelope_to_json(env: Mapping[str, Any]) -> bytes:
    """The bytes of an envelope file: canonical JSON and a final newline."""
    return canonical_json(env) + b"\n"


def envelope_from_json(data: bytes, *, source: str = "DSSE envelope") -> dict[str, Any]:
    """Parse an envelope file's bytes (bounded by :data:`MAX_ENVELOPE_BYTES`); shape-checked."""
    value, _ = _read_envelope(data, source)
    return value


def read_envelope(data: bytes, *, source: str = "DSSE envelope") -> ParsedEnvelope:
    """An envelope file's bytes, parsed and decoded (what :func:`check_envelope` checks)."""
    _, parsed = _read_envelope(data, source)
    return parsed


def _read_envelope(data: bytes, source: str) -> tuple[dict[str, Any], ParsedEnvelope]:
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(
            f"{source}: too large ({len(data)} bytes, at most {MAX_ENVELOPE_BYTES})"
        )
    try:  # a name given twice is refused: two readers must never see two different envelopes
        value = parse_document(data)
    except DocumentError as exc:
        raise EnvelopeError(f"{source}: not JSON ({exc})") from None
    parsed = parse_envelope(value)
    if not isinstance(value, dict):  # parse_envelope checked it is a mapping
        raise EnvelopeError(f"{source}: not a JSON object")
    return value, parsed
