"""`airgap trust init|add|revoke|show|sign`: edit, sign and show a trust policy file.

The policy model and its loading rules are packager.signing.trust; a site's own policy
(`airgap trust update --site`) is packager.site.trust.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.signing import keys
from packager.signing.trust import (
    API_VERSION,
    PolicyError,
    PolicySignature,
    SignedPolicy,
    read_policy,
    read_policy_document,
)
from packager.util.fs import atomic_write_text
from packager.util.schemas import validator
from packager.util.timefmt import now_utc
from packager.util.units import parse_duration


def _write(path: Path, doc: dict[str, Any]) -> None:
    validator("trust").validate(doc)
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


def init_policy(
    path: Path, threshold: int | None, max_age: str | None, from_policy: Path | None = None
) -> int:
    """A new policy file; ``from_policy``: the next version of that one (its keys, threshold,
    revocations and max age, unsigned). Returns the version written."""
    if path.exists():
        raise PolicyError(f"{path} already exists", hint="edit it with `airgap trust add|revoke`")
    if max_age is not None:
        parse_duration(max_age)
    if from_policy is not None:
        base = read_policy(from_policy)
        doc = {**base.signed, "version": base.version + 1}
        if threshold is not None:
            doc["threshold"] = threshold
        if max_age is not None:
            doc["max_age"] = max_age
    else:
        doc = {
            "apiVersion": API_VERSION,
            "version": 1,
            "threshold": threshold or 1,
            "max_age": max_age,
            "keys": [],
            "revoked": [],
        }
    _write(path, doc)
    return int(doc["version"])


def _editable(path: Path) -> tuple[dict[str, Any], int]:
    """The policy document to edit, and how many signatures the edit drops (they would no
    longer verify: the policy must be signed again)."""
    doc = read_policy_document(path)
    if "signed" in doc and isinstance(doc["signed"], dict):
        return dict(doc["signed"]), len(doc.get("signatures") or [])
    return doc, 0


@dataclass(frozen=True)
class PolicyEdit:
    """What an edit of a policy file did: the key it added or revoked (its full keyid) and the
    signatures it dropped (none when it changed nothing)."""

    keyid: str
    signatures_dropped: int


def add_key(path: Path, public_key: Path, name: str) -> PolicyEdit:
    doc, signatures = _editable(path)
    pub = keys.load_public_key(public_key)
    kid = keys.keyid(pub)
    if any(k["keyid"] == kid for k in doc["keys"]):
        raise PolicyError(f"{path}: key {kid[:16]}... is already trusted")
    if any(k["name"] == name for k in doc["keys"]):
        raise PolicyError(
            f"{path}: a key named {name!r} is already trusted", hint="pick another --name"
        )
    doc["keys"].append(
        {"name": name, "keyid": kid, "algorithm": keys.algorithm_of(pub),
         "public_key": keys.public_key_pem(pub).decode("ascii"), "added": now_utc()}
    )  # fmt: skip
    _write(path, doc)
    return PolicyEdit(kid, signatures)


def revoke_key(path: Path, keyid: str, reason: str) -> PolicyEdit:
    """Revoke the one key ``keyid`` names (a keyid, a unique prefix of one, or a key's name);
    revoking a revoked key again changes nothing (and drops no signature)."""
    if not keyid:
        raise PolicyError(
            f"{path}: an empty keyid names no key", hint="give the keyid or the key's name"
        )
    doc, signatures = _editable(path)
    matches = [
        k["keyid"] for k in doc["keys"] if k["keyid"].startswith(keyid) or k["name"] == keyid
    ]
    if len(matches) != 1:
        raise PolicyError(
            f"{path}: {keyid!r} names {'no' if not matches else 'more than one'} trusted key",
            hint="give the full keyid or the key's name (`airgap trust show`)",
        )
    kid = str(matches[0])
    if any(r["keyid"] == kid for r in doc["revoked"]):
        return PolicyEdit(kid, 0)
    doc["revoked"].append({"keyid": kid, "reason": reason, "revoked": now_utc()})
    _write(path, doc)
    return PolicyEdit(kid, signatures)


@dataclass(frozen=True)
class KeyView:
    name: str
    keyid: str
    algorithm: str
    revoked: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "keyid": self.keyid,
            "algorithm": self.algorithm,
            "revoked": self.revoked,
        }


@dataclass(frozen=True)
class PolicyView:
    """`airgap trust show`: the policy as a verifier reads it (keyids recomputed, checked)."""

    path: Path
    threshold: int
    max_age: str | None
    keys: list[KeyView]
    revoked: dict[str, str]  # keyid -> reason
    version: int = 1
    digest: str = ""
    #: keyids that signed the policy: its own (verified) and others (a previous policy's keys,
    #: checked when a site updates to it)
    signed_by_own: list[str] = field(default_factory=list)
    signed_by_others: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": str(self.path),
            "version": self.version,
            "digest": self.digest,
            "threshold": self.threshold,
            "max_age": self.max_age,
            "keys": [k.to_json() for k in self.keys],
            "revoked": [{"keyid": k, "reason": r} for k, r in self.revoked.items()],
            "signatures": {"own": self.signed_by_own, "others": self.signed_by_others},
        }


def view(sp: SignedPolicy, path: Path) -> PolicyView:
    p = sp.policy
    own = sp.signed_by(dataclasses.replace(p, revoked={}))
    return PolicyView(
        path,
        p.threshold,
        p.max_age_text,
        [KeyView(k.name, k.keyid, k.algorithm, k.keyid in p.revoked) for k in p.keys.values()],
        dict(p.revoked),
        p.version,
        sp.digest,
        own,
        sorted(s.keyid for s in sp.signatures if s.keyid not in p.keys),
    )


def show(path: Path) -> PolicyView:
    return view(read_policy(path), path)


@dataclass(frozen=True)
class PolicySignResult:
    """`airgap trust sign`: who signed, and how far the policy is from its own threshold."""

    path: Path
    keyid: str
    added: bool  # False: this key had signed it already
    version: int
    in_policy: bool  # the key is one of the policy's own (else: a previous policy's key)
    own_signers: int  # distinct unrevoked keys of the policy that signed it
    threshold: int

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": str(self.path),
            "keyid": self.keyid,
            "added": self.added,
            "version": self.version,
            "in_policy": self.in_policy,
            "own_signatures": self.own_signers,
            "threshold": self.threshold,
            "complete": self.own_signers >= self.threshold,
        }


def sign_policy(path: Path, key: keys.SigningKey) -> PolicySignResult:
    """Add ``key``'s signature to the policy at ``path`` (written in place, atomically)."""
    sp = read_policy(path)
    added = all(s.keyid != key.keyid for s in sp.signatures)
    if added:
        sig = PolicySignature(key.keyid, key.sign(sp.payload))
        sp = dataclasses.replace(sp, signatures=(*sp.signatures, sig))
        _write(path, sp.to_json())
    return PolicySignResult(
        path,
        key.keyid,
        added,
        sp.version,
        key.keyid in sp.policy.keys,
        len(sp.signed_by(sp.policy)),
        sp.policy.threshold,
    )
