"""DSSE v1: PAE vectors, our envelopes, and securesystemslib as an independent verifier."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from packager.signing import dsse, keys
from packager.signing.errors import EnvelopeError
from tests.signing.support import require_module

PAYLOAD = b'{"_type":"https://in-toto.io/Statement/v1"}'
TYPE = dsse.PAYLOAD_TYPE_INTOTO

# (payload type, payload, PAE) -- the first is the test vector of the DSSE spec (protocol.md)
PAE_VECTORS: list[tuple[str, bytes, bytes]] = [
    ("http://example.com/HelloWorld", b"hello world",
     b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"),
    ("", b"", b"DSSEv1 0  0 "),
    ("application/vnd.in-toto+json", b"{}", b"DSSEv1 28 application/vnd.in-toto+json 2 {}"),
    ("t", b"a b\nc", b"DSSEv1 1 t 5 a b\nc"),
    ("application/\u00fc", b"\x00\xff", b"DSSEv1 14 application/\xc3\xbc 2 \x00\xff"),
    ("x", b"0123456789" * 100, b"DSSEv1 1 x 1000 " + b"0123456789" * 100),
]  # fmt: skip


@pytest.mark.parametrize(("payload_type", "payload", "expected"), PAE_VECTORS)
def test_pae_vectors(payload_type: str, payload: bytes, expected: bytes) -> None:
    assert dsse.pae(payload_type, payload) == expected


@pytest.mark.parametrize(("payload_type", "payload", "expected"), PAE_VECTORS)
def test_pae_agrees_with_securesystemslib(
    payload_type: str, payload: bytes, expected: bytes
) -> None:
    ssl_dsse = require_module("securesystemslib.dsse")
    assert ssl_dsse.Envelope(payload, payload_type, {}).pae() == dsse.pae(payload_type, payload)


def _keys(*algorithms: keys.Algorithm) -> list[keys.PrivateKey]:
    return [keys.generate_private_key(a) for a in algorithms]


def _by_keyid(*private: keys.PrivateKey) -> dict[str, keys.PublicKey]:
    return {keys.keyid(k.public_key()): k.public_key() for k in private}


def test_envelope_shape(private_key: keys.PrivateKey) -> None:
    env = dsse.envelope(TYPE, PAYLOAD, [private_key])
    assert set(env) == {"payload", "payloadType", "signatures"}
    assert base64.b64decode(env["payload"], validate=True) == PAYLOAD
    assert env["payloadType"] == TYPE
    [entry] = env["signatures"]
    assert set(entry) == {"keyid", "sig"}
    assert entry["keyid"] == keys.keyid(private_key.public_key())
    assert dsse.verify_envelope(env, _by_keyid(private_key)) == PAYLOAD


def test_envelope_signatures_sorted_and_distinct() -> None:
    a, b, c = _keys("ed25519", "ecdsa-p256-sha256", "ed25519")
    env = dsse.envelope(TYPE, PAYLOAD, [c, a, b, a])
    kids = [s["keyid"] for s in env["signatures"]]
    assert kids == sorted(kids) and len(kids) == 3
    check = dsse.check_envelope(env, _by_keyid(a, b, c))
    assert check.valid_keyids == set(kids) and not check.problems


def test_ed25519_envelope_is_reproducible() -> None:
    a, b = _keys("ed25519", "ed25519")
    assert dsse.envelope(TYPE, PAYLOAD, [a, b]) == dsse.envelope(TYPE, PAYLOAD, [b, a])


def _reencode(env: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(env)
    out.update(changes)
    return out


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _tampered_sig(env: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(env)
    sig = bytearray(base64.b64decode(out["signatures"][0]["sig"]))
    sig[-1] ^= 1
    out["signatures"][0]["sig"] = _b64(bytes(sig))
    return out


TAMPER: list[tuple[str, Any]] = [
    ("payload", lambda e: _reencode(e, payload=_b64(PAYLOAD.replace(b"v1", b"v2")))),
    ("payload-type", lambda e: _reencode(e, payloadType="application/json")),
    ("signature", _tampered_sig),
    ("no-signatures", lambda e: _reencode(e, signatures=[])),
    ("unknown-keyid", lambda e: _reencode(e, signatures=[{**e["signatures"][0], "keyid": "0" * 64}])),
    ("sig-of-pae-replayed-as-raw", None),
]  # fmt: skip


@pytest.mark.parametrize(("name", "tamper"), TAMPER, ids=[t[0] for t in TAMPER])
def test_tampered_envelope_rejected(private_key: keys.PrivateKey, name: str, tamper: Any) -> None:
    env = dsse.envelope(TYPE, PAYLOAD, [private_key])
    if tamper is None:  # a signature over the raw payload (not the PAE) must not verify
        from packager.signing.signature import sign

        entry = {"keyid": env["signatures"][0]["keyid"], "sig": _b64(sign(private_key, PAYLOAD))}
        bad = _reencode(env, signatures=[entry])
    else:
        bad = tamper(env)
    with pytest.raises(EnvelopeError) as info:
        dsse.verify_envelope(bad, _by_keyid(private_key))
    assert info.value.exit_code == 1
    assert "no valid signature" in info.value.message


def test_signature_by_an_untrusted_key(private_key: keys.PrivateKey) -> None:
    [other] = _keys("ed25519")
    env = dsse.envelope(TYPE, PAYLOAD, [other])
    with pytest.raises(EnvelopeError, match="is not a known key"):
        dsse.verify_envelope(env, _by_keyid(private_key))


def test_one_key_counts_once() -> None:
    [key] = _keys("ecdsa-p256-sha256")
    env = dsse.envelope(TYPE, PAYLOAD, [key])
    second = dict(dsse.envelope(TYPE, PAYLOAD, [key])["signatures"][0])  # another ECDSA sig
    dup = _reencode(env, signatures=[*env["signatures"], second, {"sig": second["sig"]}])
    check = dsse.check_envelope(dup, _by_keyid(key))
    assert check.valid_keyids == {keys.keyid(key.public_key())}


def test_signature_without_keyid_is_tried_against_every_key() -> None:
    a, b = _keys("ed25519", "ecdsa-p256-sha256")
    env = dsse.envelope(TYPE, PAYLOAD, [b])
    del env["signatures"][0]["keyid"]
    check = dsse.check_envelope(env, _by_keyid(a, b))
    assert check.valid_keyids == {keys.keyid(b.public_key())}


def test_partial_validity_reports_problems() -> None:
    a, b = _keys("ed25519", "ed25519")
    env = dsse.envelope(TYPE, PAYLOAD, [a, b])
    check = dsse.check_envelope(_tampered_sig(env), _by_keyid(a, b))
    assert len(check.valid_keyids) == 1
    assert len(check.problems) == 1 and "does not verify" in check.problems[0]
    assert dsse.verify_envelope(_tampered_sig(env), _by_keyid(a, b)) == PAYLOAD


def test_expected_payload_type() -> None:
    [key] = _keys("ed25519")
    env = dsse.envelope("application/json", PAYLOAD, [key])
    assert dsse.verify_envelope(env, _by_keyid(key), payload_type="application/json") == PAYLOAD
    with pytest.raises(EnvelopeError, match="payloadType"):
        dsse.verify_envelope(env, _by_keyid(key), payload_type=TYPE)


def test_url_safe_base64_is_read() -> None:
    [key] = _keys("ed25519")
    payload = b"\xfb\xff\xfe" * 5  # encodes with + and / in standard base64
    env = dsse.envelope(TYPE, payload, [key])
    assert "+" in env["payload"] or "/" in env["payload"]
    url = _reencode(env, payload=base64.urlsafe_b64encode(payload).decode().rstrip("="))
    assert dsse.verify_envelope(url, _by_keyid(key)) == payload


def test_keys_map_must_be_keyed_by_keyid() -> None:
    a, b = _keys("ed25519", "ed25519")
    env = dsse.envelope(TYPE, PAYLOAD, [a])
    with pytest.raises(ValueError):
        dsse.check_envelope(env, {keys.keyid(a.public_key()): b.public_key()})


MALFORMED: list[tuple[str, object]] = [
    ("not-an-object", []),
    ("no-payload", {"payloadType": TYPE, "signatures": []}),
    ("no-type", {"payload": "", "signatures": []}),
    ("no-signatures", {"payload": "", "payloadType": TYPE}),
    ("type-not-str", {"payload": "", "payloadType": 1, "signatures": []}),
    ("payload-not-b64", {"payload": "not base64!", "payloadType": TYPE, "signatures": []}),
    ("payload-not-str", {"payload": 5, "payloadType": TYPE, "signatures": []}),
    ("signatures-not-list", {"payload": "", "payloadType": TYPE, "signatures": {}}),
    ("entry-not-object", {"payload": "", "payloadType": TYPE, "signatures": ["x"]}),
    ("entry-no-sig", {"payload": "", "payloadType": TYPE, "signatures": [{"keyid": "a"}]}),
    ("sig-not-b64", {"payload": "", "payloadType": TYPE, "signatures": [{"sig": "%%"}]}),
    ("keyid-not-str", {"payload": "", "payloadType": TYPE, "signatures": [{"sig": "", "keyid": 1}]}),
]  # fmt: skip


@pytest.mark.parametrize("env", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_envelope(env: object) -> None:
    with pytest.raises(EnvelopeError):
        dsse.verify_envelope(env, {})


def test_add_signatures_cosigns_once() -> None:
    a, b = _keys("ecdsa-p256-sha256", "ed25519")
    env = dsse.envelope(TYPE, PAYLOAD, [a])
    cosigned = dsse.add_signatures(env, [b])
    assert len(cosigned["signatures"]) == 2
    assert dsse.check_envelope(cosigned, _by_keyid(a, b)).valid_keyids == set(_by_keyid(a, b))
    assert dsse.add_signatures(cosigned, [a, b]) == cosigned  # signing again changes nothing
    assert env["signatures"] != cosigned["signatures"]  # the input was not modified


def test_unsigned_envelope_can_be_signed_later() -> None:
    [key] = _keys("ed25519")
    unsigned = dsse.envelope(TYPE, PAYLOAD, [])
    assert unsigned["signatures"] == []
    with pytest.raises(EnvelopeError, match="no signatures"):
        dsse.verify_envelope(unsigned, _by_keyid(key))
    signed = dsse.add_signatures(unsigned, [key])
    assert signed == dsse.envelope(TYPE, PAYLOAD, [key])


def test_json_round_trip() -> None:
    [key] = _keys("ed25519")
    env = dsse.envelope(TYPE, PAYLOAD, [key])
    data = dsse.envelope_to_json(env)
    assert data.endswith(b"}\n") and b" " not in data
    assert dsse.envelope_from_json(data) == env
    # read already decoded, the envelope checks as the JSON value does (its payload decoded once)
    parsed = dsse.read_envelope(data)
    assert parsed == dsse.parse_envelope(env)
    assert dsse.check_envelope(parsed, _by_keyid(key)) == dsse.check_envelope(env, _by_keyid(key))


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"{", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"payload":"","payload":"","payloadType":"t","signatures":[]}', "given twice"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (b"[]", "not a JSON object"),
    ],
    ids=["truncated", "not-utf8", "duplicate-key", "deep", "array"],
)
def test_envelope_from_bad_json(data: bytes, fragment: str) -> None:
    with pytest.raises(EnvelopeError, match=fragment):
        dsse.envelope_from_json(data, source="attestation.dsse.json")
    with pytest.raises(EnvelopeError, match=fragment):
        dsse.read_envelope(data, source="attestation.dsse.json")


def test_envelope_from_json_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dsse, "MAX_ENVELOPE_BYTES", 100)
    with pytest.raises(EnvelopeError, match="too large"):
        dsse.envelope_from_json(b" " * 101)


# --- securesystemslib, an implementation we did not write -----------------------------------


def _sslib_key(private: keys.PrivateKey) -> Any:
    """securesystemslib's key for our public PEM, read by cryptography, not by our loader."""
    signer_mod = require_module("securesystemslib.signer")
    pem = keys.public_key_pem(private.public_key())
    public = serialization.load_pem_public_key(pem)
    return signer_mod.SSlibKey.from_crypto(public, keyid=keys.keyid(private.public_key()))


def _sslib_envelope(env: dict[str, Any]) -> Any:
    # from_dict rewrites the signature dicts in place; give it a copy of the JSON as a file holds it
    ssl_dsse = require_module("securesystemslib.dsse")
    return ssl_dsse.Envelope.from_dict(json.loads(dsse.envelope_to_json(env)))


def test_securesystemslib_verifies_our_envelope(private_key: keys.PrivateKey) -> None:
    sslib_key = _sslib_key(private_key)
    envelope = _sslib_envelope(dsse.envelope(TYPE, PAYLOAD, [private_key]))
    assert envelope.payload == PAYLOAD and envelope.payload_type == TYPE
    accepted = envelope.verify([sslib_key], 1)
    assert set(accepted) == {keys.keyid(private_key.public_key())}


def test_securesystemslib_verifies_a_cosigned_envelope_at_threshold_two() -> None:
    a, b = _keys("ecdsa-p256-sha256", "ed25519")
    env = dsse.add_signatures(dsse.envelope(TYPE, PAYLOAD, [a]), [b])
    accepted = _sslib_envelope(env).verify([_sslib_key(a), _sslib_key(b)], 2)
    assert len(accepted) == 2


@pytest.mark.parametrize("name", ["payload", "payload-type", "signature"])
def test_securesystemslib_rejects_our_tampered_envelope(
    private_key: keys.PrivateKey, name: str
) -> None:
    exceptions = require_module("securesystemslib.exceptions")
    tamper = dict(TAMPER)[name]
    bad = tamper(dsse.envelope(TYPE, PAYLOAD, [private_key]))
    with pytest.raises(exceptions.VerificationError):
        _sslib_envelope(bad).verify([_sslib_key(private_key)], 1)


def test_we_verify_a_securesystemslib_envelope(private_key: keys.PrivateKey) -> None:
    ssl_dsse = require_module("securesystemslib.dsse")
    signer_mod = require_module("securesystemslib.signer")
    signer = signer_mod.CryptoSigner(private_key, _sslib_key(private_key))
    theirs = ssl_dsse.Envelope(PAYLOAD, TYPE, {})
    theirs.sign(signer)
    env = json.loads(json.dumps(theirs.to_dict()))
    assert dsse.verify_envelope(env, _by_keyid(private_key), payload_type=TYPE) == PAYLOAD
