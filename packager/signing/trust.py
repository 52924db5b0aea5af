"""Trust policies: which public keys a site trusts, how many must sign, what is revoked.

Loading checks everything a verifier relies on: each keyid is recomputed from its public key (a
policy cannot make one key count as two), no key is listed twice, the threshold can be met.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.errors import InputError
from packager.signing import keys
from packager.util.jsonio import read_json_bounded
from packager.util.schemas import validator
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
    doc = read_policy_document(path)
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
