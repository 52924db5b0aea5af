"""Trust policies: which public keys a site trusts, how many must sign, what is revoked.

Loading checks everything a verifier relies on: each keyid is recomputed from its public key (a
policy cannot make one key count as two), no key is listed twice, the threshold can be met.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.errors import InputError
from packager.signing import keys
from packager.util.fs import atomic_write_text
from packager.util.jsonio import read_json_bounded
from packager.util.schemas import validator
from packager.util.timefmt import now_utc
from packager.util.units import parse_duration

API_VERSION = "airgap/trust/v1"
MAX_POLICY_BYTES = 4 * 1024 * 1024


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
    doc = _read(path)
    errors = list(validator("trust").iter_errors(doc))
    if errors:
        e = errors[0]
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
        raise PolicyError(f"{path}: not a valid trust policy at {where}: {e.message[:200]}",
                          hint="`airgap trust show POLICY` after `airgap trust init` writes a valid one")  # fmt: skip
    found: dict[str, TrustedKey] = {}
    for i, k in enumerate(doc["keys"]):
        pub = keys.load_public_key_pem(k["public_key"].encode(), source=f"{path}: keys[{i}]")
        kid = keys.keyid(pub)
        if kid != k["keyid"]:
            raise PolicyError(
                f"{path}: keys[{i}] ({k['name']}) says keyid {k['keyid'][:16]}... but its public "
                f"key is {kid[:16]}...",
                hint="a keyid is the sha256 of the public key; re-add the key with `airgap trust add`",
            )
        if kid in found:
            raise PolicyError(
                f"{path}: the key {kid[:16]}... is listed twice ({found[kid].name}, {k['name']})",
                hint="one key counts once toward the threshold; remove the duplicate",
            )
        found[kid] = TrustedKey(k["name"], kid, keys.algorithm_of(pub), pub, k["public_key"])
    revoked = {r["keyid"]: r.get("reason", "") for r in doc["revoked"]}
    usable = [k for k in found if k not in revoked]
    if doc["threshold"] > len(usable):
        raise PolicyError(
            f"{path}: threshold {doc['threshold']} cannot be met by {len(usable)} unrevoked key(s)",
            hint="add keys or lower the threshold",
        )
    max_age = doc.get("max_age")
    return Policy(
        found, int(doc["threshold"]), revoked, parse_duration(max_age) if max_age else None, max_age
    )


def _read(path: Path) -> dict[str, Any]:
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
    doc = _read(path)
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
    doc = _read(path)
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


def show(path: Path) -> dict[str, Any]:
    p = load_policy(path)
    return {
        "policy": str(path),
        "threshold": p.threshold,
        "max_age": p.max_age_text,
        "keys": [
            {
                "name": k.name,
                "keyid": k.keyid,
                "algorithm": k.algorithm,
                "revoked": k.keyid in p.revoked,
            }
            for k in p.keys.values()
        ],
        "revoked": [{"keyid": k, "reason": r} for k, r in p.revoked.items()],
    }
