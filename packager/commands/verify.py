"""`airgap verify`: a bundle against a trust policy or keys (packager.bundle.verifier does the
work: parts, signatures, descriptor and validity first, then every blob re-hashed in parallel)."""

from __future__ import annotations

from pathlib import Path

from packager.bundle.verifier import VerifyReport, verify_bundle
from packager.errors import InputError
from packager.oci.registry import OciLocation, RegistryOptions
from packager.signing.trust import Policy, load_policy, policy_from_keys
from packager.util.progress import Reporter

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
) -> VerifyReport:
    policy = require_policy(trust, keys, "verify")
    return verify_bundle(bundle, policy, reporter=reporter, target=target)


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
