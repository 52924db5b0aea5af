"""The bundle's OpenSSF model signature (``airgap/model.sig``, installed as ``model/model.sig``).

- :func:`describe`: the descriptor's ``model_signature`` record and the statement it pins, from the
  lock's model files alone (pure, deterministic: the same lock gives the same bundle.json);
- :func:`sign`: the file's bytes, signed by the bundle key (ECDSA P-256 only: OMS verifiers such
  as ``model_signing verify key`` take elliptic-curve keys; an Ed25519 bundle gets no model.sig,
  and says so);
- :func:`check`: verify's judgement (pure): the file signs exactly the statement bundle.json pins,
  with a key the policy trusts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from packager.bundle import layout
from packager.bundle.checks import Failure
from packager.bundle.descriptor import Descriptor, ModelSignatureRecord
from packager.resolve.lockfile import LockedModel
from packager.signing import oms
from packager.signing.errors import OmsError
from packager.signing.keys import SigningKey
from packager.signing.trust import Policy

#: what verify says of a bundle with a model signature record and no model.sig: a build with a
#: key that is not ECDSA P-256 makes none and `airgap sign` can add one later, so bundle.json
#: cannot pin it (as it cannot pin a co-signature) and its absence is no proof it was removed
ABSENT = (
    "no model.sig in the bundle: none was made (only an ECDSA P-256 key makes one, at build or "
    "with `airgap sign BUNDLE --key KEY`), or it was removed; bundle.json cannot say which"
)
#: why a bundle has no model.sig, for build output and audit
NOT_ECDSA = (
    "no model.sig: OpenSSF model signatures are made with ECDSA keys (model_signing verifies "
    "elliptic-curve keys only) and this bundle's key is {algorithm}; co-sign it with an ECDSA "
    "P-256 key (`airgap sign BUNDLE --key KEY`) to add one"
)


#: the last statement made, with the model it was made of: a build describes the model, then
#: signs it (0.2 s a statement for a model of 50,000 files); the model is frozen, its files a
#: tuple of frozen records, so the same object gives the same statement
_last: list[tuple[LockedModel, bytes]] = []


def statement_payload(model: LockedModel) -> bytes:
    """The statement model.sig signs, from the lock's model files (path, sha256)."""
    if _last and _last[0][0] is model:
        return _last[0][1]
    payload = oms.statement_payload(
        oms.model_statement(model.name, ((f.path, f.sha256) for f in model.files))
    )
    _last[:] = [(model, payload)]
    return payload


def describe(model: LockedModel) -> ModelSignatureRecord | None:
    """The descriptor's record for ``model``; None when no file of it can be signed."""
    files = [(f.path, f.sha256) for f in model.files if not oms.ignored(f.path)]
    if not files:
        return None
    payload = statement_payload(model)
    return ModelSignatureRecord(
        path=layout.MODEL_SIGNATURE,
        install_path=layout.MODEL_SIGNATURE_INSTALL,
        predicate_type=oms.PREDICATE_TYPE,
        statement_sha256=hashlib.sha256(payload).hexdigest(),
        root_digest=oms.root_digest(sorted(files)),
        files=len(files),
    )


def sign(descriptor: Descriptor, key: SigningKey) -> bytes | None:
    """model.sig's bytes for ``descriptor`` signed by ``key``; None when the key cannot make one
    (see :data:`NOT_ECDSA`) or the descriptor has no record."""
    record = descriptor.model_signature
    if record is None or not oms.can_sign(key.algorithm) or key.public_key is None:
        return None
    payload = statement_payload(descriptor.lock.model)
    if hashlib.sha256(payload).hexdigest() != record.statement_sha256:
        raise OmsError(
            f"{layout.BUNDLE_JSON}: model_signature does not match the lock's model files",
            hint="this bundle was not made by airgap build, or was changed",
        )
    return oms.sign_model(payload, key, key.public_key)


@dataclass(frozen=True)
class ModelSignatureStatus:
    """What verify found about model.sig."""

    #: signed (by a trusted key) | untrusted (the right statement, no trusted signature) | absent
    #: | invalid (a failure) | none (no record: a bundle without model files)
    state: str
    keyid: str | None = None  # the trusted key that signed it
    files: int = 0
    root_digest: str | None = None
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "path": layout.MODEL_SIGNATURE_INSTALL if self.state != "none" else None,
            "keyid": self.keyid,
            "files": self.files,
            "root_digest": self.root_digest,
            "message": self.message,
        }


def check(
    descriptor: Descriptor, data: bytes | None, policy: Policy
) -> tuple[ModelSignatureStatus, list[Failure]]:
    """model.sig (``data``; None when the bundle has none) against bundle.json and ``policy``."""
    record = descriptor.model_signature
    if record is None:
        return ModelSignatureStatus("none", message="the bundle has no model signature record"), []

    def status(state: str, message: str, keyid: str | None = None) -> ModelSignatureStatus:
        return ModelSignatureStatus(state, keyid, record.files, record.root_digest, message)

    def invalid(message: str) -> tuple[ModelSignatureStatus, list[Failure]]:
        return status("invalid", message), [Failure("signatures", layout.MODEL_SIGNATURE, message)]

    if (
        hashlib.sha256(statement_payload(descriptor.lock.model)).hexdigest()
        != record.statement_sha256
    ):
        failure = Failure(
            "consistency",
            f"{layout.BUNDLE_JSON} model_signature",
            "its statement sha256 is not the one of the lock's model files",
        )
        return status("invalid", failure.message), [failure]
    if data is None:
        return status("absent", ABSENT), []
    try:
        sig = oms.parse_model_signature(data, source=layout.MODEL_SIGNATURE)
    except OmsError as exc:
        return invalid(exc.message)
    if sig.payload_sha256 != record.statement_sha256:
        return invalid("it signs other files than bundle.json lists (its statement differs)")
    for kid, key in sorted(policy.keys.items()):
        if oms.verifies(sig, key.public_key):
            if kid in policy.revoked:
                return invalid(f"signed by {policy.name_of(kid)} ({kid[:16]}), a revoked key")
            return status("signed", f"signed by {policy.name_of(kid)} ({kid[:16]})", kid), []
    return status(
        "untrusted",
        "its statement is the one bundle.json pins, but no key the policy trusts signed it "
        "(another signer's key, or a damaged signature): it is not installed",
    ), []
