"""Trust policies: which public keys a site trusts, how many must sign, what is revoked.

Loading checks everything a verifier relies on: each keyid is recomputed from its public key (a
policy cannot make one key count as two), no key is listed twice, the threshold can be met.

A policy can be signed (TUF root style): the file is ``{"signed": POLICY, "signatures": [{keyid,
sig}]}``, each signature over the DSSE PAE of :data:`PAYLOAD_TYPE` and the canonical JSON of
POLICY, made by any :class:`~packager.signing.keys.SigningKey` (a key file or a token).
:func:`rotation_problems` is the rule a site applies before it replaces its policy with a new one:
a higher ``version``, signed by a threshold of the current policy's unrevoked keys and by a
threshold of the new policy's own.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as _dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.errors import InputError
from packager.signing import keys
from packager.util.jsonio import canonical_json, read_json_bounded
from packager.util.schemas import validator
from packager.util.units import parse_duration

API_VERSION = "airgap/trust/v1"
MAX_POLICY_BYTES = 4 * 1024 * 1024
#: what a policy signature signs: DSSE PAE of this type and the canonical JSON of the policy
PAYLOAD_TYPE = "application/vnd.airgap.trust.v1+json"


class PolicyError(InputError):
    """A trust policy that cannot be used as it is."""


@dataclass(frozen=True)
class TrustedKey:
    name: str
    keyid: str
    algorithm: str
    public_key: keys.PublicKey = field(repr=False, compare=False)
    pem: str = field(repr=False, default="")


@dataclass(frozen=True)
class Policy:
    keys: dict[str, TrustedKey]  # by keyid
    threshold: int
    revoked: dict[str, str]  # keyid -> reason
    max_age: _dt.timedelta | None = None
    max_age_text: str | None = None
    version: int = 1

    def name_of(self, keyid: str) -> str:
        k = self.keys.get(keyid)
        return k.name if k else keyid[:16]


def policy_from_keys(paths: list[Path]) -> Policy:
    """``--key PUB ...``: each given key trusted, threshold 1."""
    found: dict[str, TrustedKey] = {}
    for p in paths:
        pub = keys.load_public_key(p)
        kid = keys.keyid(pub)
        found[kid] = TrustedKey(p.name, kid, keys.algorithm_of(pub), pub)
    return Policy(found, 1, {})


def load_policy(path: Path) -> Policy:
    """The policy in ``path`` (plain or signed; the signatures by its own keys must verify)."""
    return read_policy(path).policy


def policy_from_document(doc: dict[str, Any], source: str) -> Policy:
    """A policy document (the schema's ``$defs/policy``, already schema-checked) as a Policy."""
    found: dict[str, TrustedKey] = {}
    for i, k in enumerate(doc["keys"]):
        pub = keys.load_public_key_pem(k["public_key"].encode(), source=f"{source}: keys[{i}]")
        kid = keys.keyid(pub)
        if kid != k["keyid"]:
            raise PolicyError(
                f"{source}: keys[{i}] ({k['name']}) says keyid {k['keyid'][:16]}... but its public "
                f"key is {kid[:16]}...",
                hint="a keyid is the sha256 of the public key; re-add the key with `airgap trust add`",
            )
        if kid in found:
            raise PolicyError(
                f"{source}: the key {kid[:16]}... is listed twice ({found[kid].name}, {k['name']})",
                hint="one key counts once toward the threshold; remove the duplicate",
            )
        found[kid] = TrustedKey(k["name"], kid, keys.algorithm_of(pub), pub, k["public_key"])
    revoked: dict[str, str] = {}
    for i, r in enumerate(doc["revoked"]):
        kid = r["keyid"]
        if kid in revoked:
            raise PolicyError(
                f"{source}: revoked[{i}] revokes the key {kid[:16]}... a second time",
                hint="list each revoked key once",
            )
        if kid not in found:
            raise PolicyError(
                f"{source}: revoked[{i}] names the key {kid[:16]}..., which the policy does not "
                "list, so the revocation would match nothing",
                hint="a revoked key stays listed under keys (marked REVOKED by `airgap trust "
                "show`); revoke it with `airgap trust revoke KEYID`",
            )
        revoked[kid] = r.get("reason", "")
    usable = [k for k in found if k not in revoked]
    if doc["threshold"] > len(usable):
        raise PolicyError(
            f"{source}: threshold {doc['threshold']} cannot be met by {len(usable)} unrevoked key(s)",
            hint="add keys or lower the threshold",
        )
    max_age = doc.get("max_age")
    return Policy(
        found,
        int(doc["threshold"]),
        revoked,
        parse_duration(max_age) if max_age else None,
        max_age,
        int(doc.get("version", 1)),
    )


def read_policy_document(path: Path) -> dict[str, Any]:
    doc = read_json_bounded(
        path,
        MAX_POLICY_BYTES,
        what="trust policy",
        missing_hint="`airgap trust init POLICY` writes one",
        error=PolicyError,
    )
    if not isinstance(doc, dict):
        raise PolicyError(f"{path}: not a JSON object")
    return doc


# ----------------------------------------------------------------------------- signed policies


@dataclass(frozen=True)
class PolicySignature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class SignedPolicy:
    """A policy file as read: the policy, the document its signatures cover, the signatures."""

    policy: Policy
    signed: dict[str, Any]  # the policy document
    signatures: tuple[PolicySignature, ...] = ()

    @property
    def version(self) -> int:
        return self.policy.version

    @property
    def payload(self) -> bytes:
        """What each signature signs: the DSSE PAE of :data:`PAYLOAD_TYPE` and canonical JSON."""
        from packager.signing.dsse import pae

        return pae(PAYLOAD_TYPE, canonical_json(self.signed))

    @property
    def digest(self) -> str:
        """sha256 (hex) of the canonical policy: equal for equal policies, signed or not."""
        return hashlib.sha256(canonical_json(self.signed)).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """The file's document: the plain policy when unsigned, else {signed, signatures}."""
        if not self.signatures:
            return dict(self.signed)
        return {
            "signed": dict(self.signed),
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                for s in sorted(self.signatures, key=lambda s: s.keyid)
            ],
        }

    def signed_by(self, trusting: Policy) -> list[str]:
        """The distinct keys of ``trusting`` (not revoked there) with a valid signature here."""
        from packager.signing.signature import verify

        out = []
        for s in self.signatures:
            key = trusting.keys.get(s.keyid)
            if key is None or s.keyid in trusting.revoked or s.keyid in out:
                continue
            if verify(key.public_key, self.payload, s.sig):
                out.append(s.keyid)
        return sorted(out)


def _schema_problem(doc: Any) -> str | None:
    from jsonschema.exceptions import best_match

    from packager.util.schemas import json_path

    e = best_match(validator("trust").iter_errors(doc))
    if e is None:
        return None
    return f"at {json_path(e.absolute_path)}: {e.message[:200]}"


def parse_policy(doc: Any, source: str) -> SignedPolicy:
    """A policy file's parsed JSON as a :class:`SignedPolicy`; every signature by a key of the
    policy itself must verify (an edit after signing shows); others (the keys of the policy it
    replaces) are checked by :func:`rotation_problems`."""
    problem = _schema_problem(doc)
    if problem is not None:
        raise PolicyError(f"{source}: not a valid trust policy {problem}",
                          hint="`airgap trust show POLICY` after `airgap trust init` writes a valid one")  # fmt: skip
    if "signed" not in doc:
        return SignedPolicy(policy_from_document(doc, source), doc)
    signed = doc["signed"]
    sigs: list[PolicySignature] = []
    for i, s in enumerate(doc["signatures"]):
        if any(s["keyid"] == o.keyid for o in sigs):
            raise PolicyError(f"{source}: signatures[{i}]: key {s['keyid'][:16]} signed twice")
        try:
            sigs.append(PolicySignature(s["keyid"], base64.b64decode(s["sig"], validate=True)))
        except (binascii.Error, ValueError):
            raise PolicyError(f"{source}: signatures[{i}].sig is not base64") from None
    sp = SignedPolicy(policy_from_document(signed, source), signed, tuple(sigs))
    own = [s.keyid for s in sigs if s.keyid in sp.policy.keys]
    good = set(sp.signed_by(dataclasses.replace(sp.policy, revoked={})))
    bad = [k for k in own if k not in good]
    if bad:
        raise PolicyError(
            f"{source}: the signature of {sp.policy.name_of(bad[0])} ({bad[0][:16]}) does not "
            "verify: the policy was changed after it was signed",
            hint="get the policy as it was signed; edits need new signatures (airgap trust sign)",
        )
    return sp


def read_policy(path: Path) -> SignedPolicy:
    """The policy file at ``path``, plain or signed (see :func:`parse_policy`)."""
    return parse_policy(read_policy_document(path), str(path))


def rotation_problems(current: SignedPolicy, new: SignedPolicy) -> list[str]:
    """Why a site that trusts ``current`` must not replace it with ``new`` (empty: it may).

    TUF root rotation: ``new`` has a higher version, is signed by ``current.threshold`` distinct
    unrevoked keys of ``current``, and by ``new.threshold`` distinct unrevoked keys of its own.
    """
    out = []
    if new.version <= current.version:
        out.append(
            f"its version {new.version} is not higher than the site's {current.version} "
            "(a rollback, or the same version again)"
        )
    old = new.signed_by(current.policy)
    if len(old) < current.policy.threshold:
        have = ", ".join(current.policy.name_of(k) for k in old) or "none"
        out.append(
            f"signed by {len(old)} of the current policy's keys ({have}); version "
            f"{current.version} needs {current.policy.threshold}"
        )
    own = new.signed_by(new.policy)
    if len(own) < new.policy.threshold:
        have = ", ".join(new.policy.name_of(k) for k in own) or "none"
        out.append(
            f"signed by {len(own)} of its own keys ({have}); its threshold is {new.policy.threshold}"
        )
    return out
