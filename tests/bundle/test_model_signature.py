"""The bundle's model.sig as verify judges it: the statement bundle.json pins, signed by a key the
policy trusts; anything else is named."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from packager.bundle import layout, model_signature
from packager.bundle.descriptor import Descriptor
from packager.resolve.lockfile import LockedFile
from packager.signing import keys, oms
from packager.signing.trust import Policy, TrustedKey
from tests.support.descriptors import make_descriptor

A = keys.signing_key_from_private(keys.generate_private_key(), "a")
B = keys.signing_key_from_private(keys.generate_private_key(), "b")
ED = keys.signing_key_from_private(keys.generate_private_key("ed25519"), "ed")


def _descriptor(*paths: str) -> Descriptor:
    d = make_descriptor()
    files = tuple(
        LockedFile(p, hashlib.sha256(p.encode()).hexdigest(), len(p), role="weight") for p in paths
    )
    lock = dataclasses.replace(d.lock, model=dataclasses.replace(d.lock.model, files=files))
    return dataclasses.replace(d, lock=lock, model_signature=model_signature.describe(lock.model))


def _policy(*signers: keys.SigningKey, revoked: tuple[str, ...] = ()) -> Policy:
    found = {}
    for s in signers:
        assert s.public_key is not None
        found[s.keyid] = TrustedKey(s.source, s.keyid, s.algorithm, s.public_key)
    return Policy(found, 1, {k: "lost" for k in revoked})


DOC = _descriptor("model.safetensors", "config.json", "1_Pooling/config.json", ".gitattributes")


def test_the_record_is_a_function_of_the_lock_and_leaves_out_what_oms_ignores() -> None:
    record = DOC.model_signature
    assert record is not None
    assert (record.path, record.install_path) == ("airgap/model.sig", "model/model.sig")
    assert record.files == 3  # .gitattributes is ignored by OpenSSF verifiers: not signed
    again = _descriptor(
        "config.json", ".gitattributes", "1_Pooling/config.json", "model.safetensors"
    )
    assert again.model_signature == record  # the order files are listed in does not matter
    statement = json.loads(model_signature.statement_payload(DOC.lock.model))
    assert [r["name"] for r in statement["predicate"]["resources"]] == [
        "1_Pooling/config.json",
        "config.json",
        "model.safetensors",
    ]
    assert statement["subject"][0]["digest"]["sha256"] == record.root_digest


def test_the_statement_is_made_once_per_model_and_again_for_another() -> None:
    # build describes, then signs, one model: the second statement is the first one's bytes
    model = DOC.lock.model
    first = model_signature.statement_payload(model)
    assert model_signature.statement_payload(model) is first
    other = dataclasses.replace(model, files=model.files[:1])
    assert model_signature.statement_payload(other) != first  # another model: made anew
    equal = dataclasses.replace(model)  # an equal model, another object: the same bytes
    assert model_signature.statement_payload(equal) == first


def test_only_ecdsa_p256_keys_make_a_model_signature() -> None:
    assert model_signature.sign(DOC, A) is not None
    assert model_signature.sign(DOC, ED) is None  # OMS verifiers take EC keys: no model.sig


def _resign(data: bytes, payload: bytes) -> bytes:
    """model.sig over another payload, validly signed by A."""
    return oms.sign_model(payload, A, A.public_key)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "state", "failed"),
    [
        ("signed by a trusted key", "signed", False),
        ("no model.sig", "absent", False),
        ("signed by another key", "untrusted", False),
        ("signed by a revoked key", "invalid", True),
        ("another statement", "invalid", True),
        ("not JSON", "invalid", True),
        ("keyless sigstore bundle", "invalid", True),
    ],
)
def test_verify_judges_model_sig(case: str, state: str, failed: bool) -> None:
    good = model_signature.sign(DOC, A)
    assert good is not None
    policy = _policy(A)
    data: bytes | None = good
    if case == "no model.sig":
        data = None
    elif case == "signed by another key":
        data = model_signature.sign(DOC, B)
    elif case == "signed by a revoked key":
        policy = _policy(A, B, revoked=(A.keyid,))
    elif case == "another statement":
        other = _descriptor("model.safetensors")
        data = _resign(good, model_signature.statement_payload(other.lock.model))
    elif case == "not JSON":
        data = b"\x00garbage"
    elif case == "keyless sigstore bundle":
        doc = json.loads(good)
        doc["verificationMaterial"] = {"certificate": {"rawBytes": "AAAA"}, "tlogEntries": []}
        data = json.dumps(doc).encode()
    status, failures = model_signature.check(DOC, data, policy)
    assert status.state == state, status
    assert bool(failures) == failed
    if failed:
        assert failures[0].subject == layout.MODEL_SIGNATURE
    if state == "signed":
        assert status.keyid == A.keyid
    if state == "absent":  # this bundle's key was P-256: "none was made" alone would mislead
        assert "or it was removed" in status.message, status.message


def test_a_record_that_does_not_match_the_lock_is_a_consistency_failure() -> None:
    record = DOC.model_signature
    assert record is not None
    forged = dataclasses.replace(
        DOC, model_signature=dataclasses.replace(record, statement_sha256="0" * 64)
    )
    status, failures = model_signature.check(forged, None, _policy(A))
    assert status.state == "invalid"
    assert failures[0].check == "consistency"


def _ignored_by_definition(path: str, ignore_paths: tuple[str, ...]) -> bool:
    """model_signing's rule as it reads: the path itself, or anything below it."""
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in ignore_paths)


@pytest.mark.parametrize(
    "path",
    ["model.sig", "model.sig.bak", "a/model.sig", ".git", ".git/config", ".gitx", ".github/x/y",
     ".gitignore", ".gitattributes", "config.json", "", "/", "x/.git/config", "model.sig/inner"],
)  # fmt: skip
@pytest.mark.parametrize("ignore", [oms.DEFAULT_IGNORE, ("dir/", "a"), ()])
def test_a_path_is_ignored_exactly_as_model_signing_ignores_it(
    path: str, ignore: tuple[str, ...]
) -> None:
    assert oms.ignored(path, ignore) == _ignored_by_definition(path, ignore)
