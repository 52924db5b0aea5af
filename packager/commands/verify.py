"""`airgap verify`: a bundle against a trust policy or keys (packager.bundle.verifier does the
work: parts, signatures, descriptor and validity first, then every blob re-hashed in parallel)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from packager.bundle.verifier import VerifyReport, verify_bundle
from packager.errors import InputError
from packager.signing.trust import Policy, load_policy, policy_from_keys
from packager.util.progress import Reporter

if TYPE_CHECKING:  # the registry client only for oci:// (verify_remote)
    from packager.bundle.base import BlobSource
    from packager.oci.registry import OciLocation, RegistryOptions

__all__ = [
    "VerifyReport",
    "policy_from_options",
    "require_policy",
    "verify",
    "verify_bundle",
    "verify_remote",
]


def policy_from_options(trust: Path | None, keys: list[Path] | None) -> Policy | None:
    """``--trust POLICY`` or ``--key PUB ...`` (threshold 1), or None when neither is given."""
    if trust is not None and keys:
        raise InputError("give --trust POLICY or --key PUB, not both")
    if trust is not None:
        return load_policy(trust)
    if keys:
        return policy_from_keys(keys)
    return None


def require_policy(trust: Path | None, keys: list[Path] | None, command: str) -> Policy:
    """``--trust POLICY`` or ``--key PUB ...``, which ``command`` cannot do without."""
    policy = policy_from_options(trust, keys)
    if policy is None:
        raise InputError(
            f"{command} needs --trust POLICY or --key PUB",
            hint="a signature means nothing without a trusted key",
        )
    return policy


def verify(
    bundle: Path,
    trust: Path | None,
    keys: list[Path] | None,
    *,
    reporter: Reporter | None = None,
    target: str | None = None,
    base: Path | None = None,
    prefix: Path | None = None,
) -> VerifyReport:
    """Verify ``bundle``; a delta's left-out blobs are checked in ``base`` (a bundle) or in the
    store of ``prefix`` (a site), and without either the delta is not verified."""
    policy = require_policy(trust, keys, "verify")
    with delta_base(base, prefix) as source:
        return verify_bundle(bundle, policy, reporter=reporter, target=target, base=source)


@contextlib.contextmanager
def delta_base(base: Path | None, prefix: Path | None) -> Iterator[BlobSource | None]:
    """Where a delta's left-out blobs are checked: ``base`` (a bundle), the store of ``prefix``
    (a site), or nowhere (None: a delta is then not verified)."""
    if base is not None and prefix is not None:
        raise InputError("give --base OLD or --prefix DIR, not both")
    source: BlobSource | None = None
    if base is not None:
        from packager.bundle.base import BundleBlobs

        source = BundleBlobs(base)
    elif prefix is not None:
        from packager.site.have import StoreBlobs

        source = StoreBlobs(prefix, site=True)
    try:
        yield source
    finally:
        if source is not None:
            source.close()


def verify_remote(
    loc: OciLocation,
    trust: Path | None,
    keys: list[Path] | None,
    options: RegistryOptions,
    *,
    reporter: Reporter | None = None,
) -> VerifyReport:
    """``verify oci://...``: signatures first (nothing else is fetched when they fail), then the
    whole bundle into a temporary folder, verified there exactly as a tar is."""
    import tempfile

    from packager.bundle.pull import pull_bundle

    policy = require_policy(trust, keys, "verify")
    with tempfile.TemporaryDirectory(prefix="airgap-verify-") as tmp:
        pulled = pull_bundle(loc, Path(tmp) / "bundle", policy, options, reporter=reporter)
        report = verify_bundle(pulled.folder, policy, reporter=reporter)
    report.bundle = str(loc)
    return report
