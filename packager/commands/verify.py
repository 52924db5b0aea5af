"""`airgap verify`: a bundle against a trust policy or keys (packager.bundle.verifier does the
work: parts, signatures, descriptor and validity first, then every blob re-hashed in parallel)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from packager.bundle.verifier import VerifyReport, verify_bundle
from packager.errors import InputError
from packager.signing.trust import Policy, load_policy, policy_from_keys
from packager.util.progress import Reporter

if TYPE_CHECKING:
    from packager.bundle.base import BlobSource

__all__ = ["VerifyReport", "policy_from_options", "verify", "verify_bundle"]


def policy_from_options(trust: Path | None, keys: list[Path] | None) -> Policy | None:
    """``--trust POLICY`` or ``--key PUB ...`` (threshold 1), or None when neither is given."""
    if trust is not None and keys:
        raise InputError("give --trust POLICY or --key PUB, not both")
    if trust is not None:
        return load_policy(trust)
    if keys:
        return policy_from_keys(keys)
    return None


def verify(
    bundle: Path,
    trust: Path | None,
    keys: list[Path] | None,
    *,
    reporter: Reporter | None = None,
    base: Path | None = None,
    prefix: Path | None = None,
) -> VerifyReport:
    """Verify ``bundle``; a delta's left-out blobs are checked in ``base`` (a bundle) or in the
    store of ``prefix`` (a site), and without either the delta is not verified."""
    policy = policy_from_options(trust, keys)
    if policy is None:
        raise InputError(
            "verify needs --trust POLICY or --key PUB",
            hint="a signature means nothing without a trusted key",
        )
    if base is not None and prefix is not None:
        raise InputError("give --base OLD or --prefix DIR, not both")
    with contextlib.ExitStack() as stack:
        source: BlobSource | None = None
        if base is not None:
            from packager.bundle.base import BundleBlobs

            source = stack.enter_context(contextlib.closing(BundleBlobs(base)))
        elif prefix is not None:
            from packager.site.have import StoreBlobs

            source = stack.enter_context(contextlib.closing(StoreBlobs(prefix)))
        return verify_bundle(bundle, policy, reporter=reporter, base=source)
