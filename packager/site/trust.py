"""The site's own trust policy: ``DIR/trust/policy.json``, changed only by rotation.

A site that keeps its policy (`airgap trust update NEW --site DIR --initial` the first time)
verifies every install against it, and accepts a new policy only when
:func:`packager.signing.trust.rotation_problems` finds nothing: a higher version, signed by a
threshold of the current policy's unrevoked keys and by a threshold of its own (TUF root
rotation). A chain of policies is applied in version order, each link checked against the one
before, so versions may be skipped only when the link that skips verifies. Every accepted policy is
kept in ``trust/history/<version>.json`` and logged in the hash-chained audit log; the current one
is replaced by renaming a complete file over it.

A bundle may carry a signed policy (``airgap/trust.json``, `build --carry-trust`): install applies
it the same way, after the bundle verified against the current policy and only if the new policy
accepts the bundle too; otherwise nothing is written.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.bundle.checks import check_signatures
from packager.errors import CheckFailed, InputError
from packager.signing.trust import (
    Policy,
    SignedPolicy,
    parse_policy,
    read_policy,
    rotation_problems,
)
from packager.site import auditlog
from packager.site.prefix import Prefix
from packager.site.safefs import Dir, SiteError
from packager.util.jsonio import DocumentError, parse_document

MAX_POLICY_BYTES = 4 * 1024 * 1024


class TrustRefused(CheckFailed):
    """A policy the site's current policy does not let in (exit 1): nothing was changed."""


@dataclass(frozen=True)
class TrustStep:
    version: int
    digest: str  # sha256 of the canonical policy
    action: str  # initial | installed | unchanged
    source: str
    signed_by_current: tuple[str, ...] = ()  # names of the current policy's keys that signed
    signed_by_own: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "digest": self.digest,
            "action": self.action,
            "source": self.source,
            "signed_by_current": list(self.signed_by_current),
            "signed_by_own": list(self.signed_by_own),
        }


@dataclass
class TrustUpdateResult:
    prefix: Path
    before: int | None  # the site's version before, None when it had no policy
    after: int
    steps: list[TrustStep] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "prefix": str(self.prefix),
            "before": self.before,
            "after": self.after,
            "steps": [s.to_json() for s in self.steps],
        }


# ----------------------------------------------------------------------------- pure


def plan_rotation(
    current: SignedPolicy | None,
    candidates: Sequence[tuple[str, SignedPolicy]],
    *,
    initial: bool = False,
) -> list[TrustStep]:
    """The steps that take a site from ``current`` through ``candidates`` ((source, policy),
    applied in version order); :class:`TrustRefused` naming the first link that does not
    verify. ``initial``: the site has no policy and the operator installs the first one."""
    steps: list[TrustStep] = []
    ordered = sorted(candidates, key=lambda c: c[1].version)
    for (src_a, a), (src_b, b) in zip(ordered, ordered[1:]):
        if a.version == b.version and a.digest != b.digest:
            raise TrustRefused(
                f"{src_a} and {src_b} are both version {a.version} with other content",
                hint="a version is given once; number the new one higher",
            )
    cur = current
    for source, new in ordered:
        if cur is None:
            if not initial:
                raise TrustRefused(
                    "this site has no trust policy yet",
                    hint="install the first one on the operator's word: "
                    "airgap trust update POLICY --site DIR --initial",
                )
            own = new.signed_by(new.policy)
            if new.signatures and len(own) < new.policy.threshold:
                raise TrustRefused(
                    f"{source}: signed by {len(own)} of its own keys, its threshold is "
                    f"{new.policy.threshold}",
                    hint="sign it with more of its keys (airgap trust sign), or not at all",
                )
            steps.append(
                TrustStep(new.version, new.digest, "initial", source, (), _names(new.policy, own))
            )
            cur = new
            continue
        if new.version == cur.version and new.digest == cur.digest:
            steps.append(TrustStep(new.version, new.digest, "unchanged", source))
            continue
        problems = rotation_problems(cur, new)
        if problems:
            raise TrustRefused(
                f"{source}: trust policy version {new.version} refused (the site has version "
                f"{cur.version}): " + "; ".join(problems),
                hint="a new policy needs the signatures of a threshold of the keys the site "
                "trusts now (airgap trust sign NEW --key KEY) and a higher version; give "
                "the policies in between when keys changed on the way",
            )
        steps.append(
            TrustStep(
                new.version, new.digest, "installed", source,
                _names(cur.policy, new.signed_by(cur.policy)),
                _names(new.policy, new.signed_by(new.policy)),
            )
        )  # fmt: skip
        cur = new
    return steps


def _names(policy: Policy, keyids: Iterable[str]) -> tuple[str, ...]:
    return tuple(policy.name_of(k) for k in keyids)


# ----------------------------------------------------------------------------- the prefix


def _read_site(d: Dir | None) -> SignedPolicy | None:
    if d is None:
        return None
    raw = d.read_small(layout.SITE_TRUST_POLICY, MAX_POLICY_BYTES)
    if raw is None:
        return None
    where = d.path_of(layout.SITE_TRUST_POLICY)
    try:
        return parse_policy(parse_document(raw), where)
    except DocumentError as exc:
        raise SiteError(
            f"{where}: not JSON ({exc})", hint="restore it from trust/history/"
        ) from None


def site_policy(prefix: Prefix) -> SignedPolicy | None:
    """The site's current policy, None when it keeps none."""
    d = prefix.sub(layout.SITE_TRUST_DIR)
    try:
        return _read_site(d)
    finally:
        if d is not None:
            d.close()


def read_site_policy(prefix_path: Path) -> SignedPolicy | None:
    """The current policy of the prefix at ``prefix_path`` (None: none kept, or no prefix)."""
    if not prefix_path.is_dir():
        return None
    with Prefix.open(prefix_path, create=False) as prefix:
        return site_policy(prefix)


def _policy_bytes(sp: SignedPolicy) -> bytes:
    return (json.dumps(sp.to_json(), indent=2, sort_keys=True) + "\n").encode()


def write_site_policy(prefix: Prefix, sp: SignedPolicy, step: TrustStep) -> None:
    """Keep ``sp`` in the history, make it current (renamed over the old one), log it. Call it
    with the prefix locked."""
    data = _policy_bytes(sp)
    with prefix.root.walk(layout.SITE_TRUST_DIR, create=True) as td:
        with td.walk(layout.SITE_TRUST_HISTORY, create=True) as hd:
            name = layout.trust_history_name(sp.version)
            if hd.kind(name) is None:
                tmp = f".{name}.{secrets.token_hex(6)}.tmp"
                hd.write_file(tmp, data)
                hd.rename(tmp, hd, name)
                hd.fsync()
        tmp = f".{layout.SITE_TRUST_POLICY}.{secrets.token_hex(6)}.tmp"
        td.write_file(tmp, data)
        td.rename(tmp, td, layout.SITE_TRUST_POLICY)
        td.fsync()
    who = (
        f"signed by {', '.join(step.signed_by_current)} of the previous policy and "
        f"{', '.join(step.signed_by_own)} of its own"
        if step.action == "installed"
        else "installed as the site's first trust policy on the operator's word"
    )
    auditlog.append(
        prefix.root, "trust-update", "trust", str(sp.version), f"sha256:{sp.digest}",
        f"trust policy version {sp.version} ({sp.policy.threshold} of {len(sp.policy.keys)} keys, "
        f"{len(sp.policy.revoked)} revoked) from {step.source}; {who}",
    )  # fmt: skip


def update_site_trust(
    prefix_path: Path, policies: Sequence[Path], *, initial: bool = False
) -> TrustUpdateResult:
    """`airgap trust update NEW... --site DIR`: apply ``policies`` in version order."""
    if not policies:
        raise InputError("give at least one policy file")
    candidates = [(str(p), read_policy(p)) for p in policies]
    if not prefix_path.is_dir() and not initial:
        raise InputError(
            f"{prefix_path}: no such site folder",
            hint="give the install prefix (--site DIR); --initial makes a new one",
        )
    with Prefix.open(prefix_path, create=initial) as prefix, prefix.locked():
        current = site_policy(prefix)
        if current is not None and initial:
            raise TrustRefused(
                f"{prefix_path} has a trust policy already (version {current.version}): "
                "--initial is for a site that has none",
                hint="drop --initial: a new policy must be signed by the current one's keys",
            )
        steps = plan_rotation(current, candidates, initial=initial)
        by_digest = {sp.digest: sp for _, sp in candidates}
        for s in steps:
            if s.action != "unchanged":
                write_site_policy(prefix, by_digest[s.digest], s)
        after = steps[-1].version if steps else (current.version if current else 0)
        return TrustUpdateResult(prefix_path, current.version if current else None, after, steps)


# ----------------------------------------------------------------------------- install


def policy_for_install(prefix_path: Path, given: Policy | None, command: str = "install") -> Policy:
    """The policy an install (or ``command``: serve) verifies against: the site's own when it
    keeps one (and then no other may be given: a revoked key must not come back through --key),
    else ``given``."""
    site = read_site_policy(prefix_path)
    if site is not None:
        if given is not None:
            raise InputError(
                f"{prefix_path} keeps its own trust policy (version {site.version}): "
                f"{command} verifies against it, not --trust/--key",
                hint="drop --trust/--key; change the site's policy with "
                "`airgap trust update NEW --site DIR`",
            )
        return site.policy
    if given is None:
        raise InputError(
            f"{command} needs --trust POLICY or --key PUB, or a site that keeps a trust policy",
            hint="a bundle is verified against trusted keys before anything is used "
            "(airgap trust update POLICY --site DIR --initial gives the site its own)",
        )
    return given


@dataclass(frozen=True)
class CarriedTrust:
    """A policy a bundle carries, checked against the site: what install will do with it."""

    policy: SignedPolicy
    step: TrustStep | None  # None: nothing to apply (not newer, or the site keeps no policy)
    note: str


def check_carried(
    site: SignedPolicy | None,
    data: bytes,
    descriptor_bytes: bytes,
    signature_files: Mapping[str, bytes],
) -> CarriedTrust:
    """The bundle's ``airgap/trust.json`` (``data``) against the site's policy (pure).

    :class:`TrustRefused` when it is newer but the site's keys did not sign it enough, or when
    the new policy would not accept this very bundle (its signer revoked, say): then the install
    is refused and nothing is written."""
    source = f"the bundle's {layout.CARRIED_TRUST}"
    try:
        carried = parse_policy(parse_document(data), source)
    except DocumentError as exc:
        raise TrustRefused(f"{source}: not JSON ({exc})") from None
    if site is None:
        return CarriedTrust(
            carried, None,
            f"the bundle carries trust policy version {carried.version}; this site keeps no "
            "policy of its own, so it is not applied (airgap trust update --site --initial)",
        )  # fmt: skip
    if carried.version < site.version or (
        carried.version == site.version and carried.digest == site.digest
    ):
        return CarriedTrust(
            carried, None,
            f"the bundle carries trust policy version {carried.version}; the site has "
            f"version {site.version}: kept",
        )  # fmt: skip
    (step,) = plan_rotation(site, [(source, carried)])
    verdict = check_signatures(descriptor_bytes, signature_files, carried.policy)
    if len(verdict.valid) < carried.policy.threshold or verdict.failures:
        why = "; ".join(f.message for f in verdict.failures) or "too few signatures"
        raise TrustRefused(
            f"{source}: trust policy version {carried.version} would not accept this bundle "
            f"itself ({why}); nothing was installed",
            hint="install the policy on its own (airgap trust update), then a bundle its "
            "keys signed",
        )
    return CarriedTrust(carried, step, f"trust policy version {carried.version} installed")


# ----------------------------------------------------------------------------- audit --site


@dataclass
class TrustAudit:
    """The site's own policy, as `audit --site` shows it (the installed versions' signatures
    are re-checked with it by packager.site.integrity)."""

    policy: SignedPolicy | None

    def to_json(self) -> dict[str, Any] | None:
        if self.policy is None:
            return None
        p = self.policy.policy
        return {
            "version": p.version,
            "digest": self.policy.digest,
            "threshold": p.threshold,
            "keys": [
                {
                    "name": k.name,
                    "keyid": k.keyid,
                    "algorithm": k.algorithm,
                    "revoked": k.keyid in p.revoked,
                    "reason": p.revoked.get(k.keyid),
                }
                for k in p.keys.values()
            ],
        }
