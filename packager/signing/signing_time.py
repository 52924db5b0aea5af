"""When a signer signed: a small signed record beside each signature, so a policy's max age and a
bundle's validity count from the signing, not from when the inputs were locked.

``airgap/bundle.json.sig/<keyid>.time.json`` is a DSSE envelope (payload type
:data:`PAYLOAD_TYPE`) over ``{"bundle": <content digest>, "keyid": <keyid>, "signed": <RFC 3339>}``,
signed by the same key as ``<keyid>.sig``. The build writes SOURCE_DATE_EPOCH there when it is set
(reproducible builds replace "now" with it), else the time of signing; `airgap sign` the time of
co-signing. Reading is pure: bytes, key and digest in, a time or :class:`SignatureFormatError` out.
"""

from __future__ import annotations

import base64
import datetime as _dt

from packager.signing import dsse
from packager.signing.errors import EnvelopeError, SignatureFormatError
from packager.signing.keys import PublicKey, SigningKey
from packager.util.jsonio import DocumentError, canonical_json, parse_document
from packager.util.timefmt import format_utc, parse_utc

PAYLOAD_TYPE = "application/vnd.airgap.signing-time.v1+json"
MAX_RECORD_BYTES = 4096


def make_record(key: SigningKey, content_digest: str, when: int) -> bytes:
    """The record of ``key`` signing the bundle whose bundle.json has ``content_digest``."""
    payload = canonical_json(
        {"bundle": content_digest, "keyid": key.keyid, "signed": format_utc(when)}
    )
    sig = key.sign(dsse.pae(PAYLOAD_TYPE, payload))
    env = {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": key.keyid, "sig": base64.b64encode(sig).decode("ascii")}],
    }
    return dsse.envelope_to_json(env)


def read_record(
    raw: bytes, *, keyid: str, public_key: PublicKey, content_digest: str, source: str
) -> _dt.datetime:
    """The signing time in ``raw``, checked: signed by ``keyid``, about this bundle."""

    def bad(why: str) -> SignatureFormatError:
        return SignatureFormatError(f"{source}: {why}")

    if len(raw) > MAX_RECORD_BYTES:
        raise bad(f"larger than {MAX_RECORD_BYTES} bytes; not a signing-time record")
    try:
        env = parse_document(raw)
        check = dsse.check_envelope(env, {keyid: public_key})
    except (DocumentError, EnvelopeError) as exc:
        raise bad(f"not a signing-time record ({exc})") from None
    if keyid not in check.valid_keyids or check.payload_type != PAYLOAD_TYPE:
        raise bad("not signed by its key (a copied or altered record)")
    try:
        doc = parse_document(check.payload)
    except DocumentError as exc:
        raise bad(f"its payload is not JSON ({exc})") from None
    if not isinstance(doc, dict) or set(doc) != {"bundle", "keyid", "signed"}:
        raise bad("its payload is not {bundle, keyid, signed}")
    if doc["bundle"] != content_digest or doc["keyid"] != keyid:
        raise bad("it is about another bundle.json or another key")
    when = parse_utc(doc["signed"])
    if when is None:
        raise bad(f"the time {doc['signed']!r} is not RFC 3339 UTC")
    return when
