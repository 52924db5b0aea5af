"""`airgap trust init|add|revoke|show`: edit and show a trust policy file.

The policy model and its loading rules are packager.signing.trust.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.signing import keys
from packager.signing.trust import API_VERSION, PolicyError, load_policy, read_policy_document
from packager.util.fs import atomic_write_text
from packager.util.schemas import validator
from packager.util.timefmt import now_utc
from packager.util.units import parse_duration


def _write(path: Path, doc: dict[str, Any]) -> None:
    validator("trust").validate(doc)
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


def init_policy(path: Path, threshold: int, max_age: str | None) -> None:
    if path.exists():
        raise PolicyError(f"{path} already exists", hint="edit it with `airgap trust add|revoke`")
    if max_age is not None:
        parse_duration(max_age)
    _write(
        path,
        {
            "apiVersion": API_VERSION,
            "threshold": threshold,
            "max_age": max_age,
            "keys": [],
            "revoked": [],
        },
    )


def add_key(path: Path, public_key: Path, name: str) -> str:
    doc = read_policy_document(path)
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
    return kid


def revoke_key(path: Path, keyid: str, reason: str) -> None:
    doc = read_policy_document(path)
    matches = [
        k["keyid"] for k in doc["keys"] if k["keyid"].startswith(keyid) or k["name"] == keyid
    ]
    if keys.is_keyid(keyid) and keyid not in matches:
        matches = [keyid]
    if len(matches) != 1:
        raise PolicyError(
            f"{path}: {keyid!r} names {'no' if not matches else 'more than one'} trusted key",
            hint="give the full keyid or the key's name (`airgap trust show`)",
        )
    if any(r["keyid"] == matches[0] for r in doc["revoked"]):
        return
    doc["revoked"].append({"keyid": matches[0], "reason": reason, "revoked": now_utc()})
    _write(path, doc)


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

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": str(self.path),
            "threshold": self.threshold,
            "max_age": self.max_age,
            "keys": [k.to_json() for k in self.keys],
            "revoked": [{"keyid": k, "reason": r} for k, r in self.revoked.items()],
        }


def show(path: Path) -> PolicyView:
    p = load_policy(path)
    return PolicyView(
        path,
        p.threshold,
        p.max_age_text,
        [KeyView(k.name, k.keyid, k.algorithm, k.keyid in p.revoked) for k in p.keys.values()],
        dict(p.revoked),
    )
