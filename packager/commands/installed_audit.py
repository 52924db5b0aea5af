"""What an officer's report says about an installed version, from what install kept of it.

``bundles/NAME/VERSION/.airgap/`` holds the signed descriptor, its signatures, the attestation
and the SBOM; ``model/model.sig`` the OpenSSF model signature. :func:`audit_installed` reads them
(bounded, through the prefix's descriptors) and judges them against a policy, the same rules as
`airgap audit BUNDLE` (the blobs themselves are the drift check's business:
packager.site.integrity).
"""

from __future__ import annotations

from pathlib import Path

from packager.bundle import layout, model_signature
from packager.bundle.checks import check_signatures
from packager.bundle.descriptor import parse_descriptor
from packager.bundle.errors import DescriptorError
from packager.bundle.sbom import SbomSummary, summarize_sbom
from packager.bundle.verifier import attestation_verdict
from packager.commands.audit import AuditReport, Signer
from packager.signing import oms
from packager.signing.trust import Policy
from packager.site.prefix import Prefix
from packager.site.receipts import Receipt
from packager.site.safefs import Dir, SiteError

MAX_META_BYTES = 64 * 1024 * 1024


def _read(d: Dir, relpath: str, limit: int) -> bytes | None:
    folder, _, name = relpath.rpartition("/")
    try:
        with d.walk(folder) as sub:
            return sub.read_small(name, limit)
    except FileNotFoundError:
        return None


def kept_signatures(meta: Dir) -> dict[str, bytes]:
    """The signatures and signing-time records an install kept beside bundle.json."""
    out: dict[str, bytes] = {}
    sd = meta.maybe_sub("bundle.json.sig")
    if sd is None:
        return out
    with sd:
        for n in sd.names():
            data = sd.read_small(n, 4096)
            if data is not None:
                out[f"{layout.SIGNATURES_DIR}/{n}"] = data
    return out


def audit_installed(
    prefix: Prefix, name: str, version: str, receipt: Receipt | None, policy: Policy | None
) -> AuditReport:
    """The report of installed ``name`` ``version`` under ``policy`` (None: nothing is vouched
    for beyond what install recorded in the receipt)."""
    where = f"{layout.SITE_BUNDLES_DIR}/{name}/{version}"
    with prefix.root.walk(where) as vd:
        meta = vd.sub(layout.INSTALLED_META_DIR)
        with meta:
            raw = meta.read_small("bundle.json", layout.MAX_BUNDLE_JSON_BYTES)
            if raw is None:
                raise SiteError(f"{vd.path_of(layout.INSTALLED_META_DIR)}/bundle.json is missing")
            sigs = kept_signatures(meta)
            attestation = meta.read_small("attestation.dsse.json", MAX_META_BYTES)
            sbom_raw = meta.read_small("sbom.cdx.json", MAX_META_BYTES)
        model_sig = _read(vd, layout.MODEL_SIGNATURE_INSTALL, oms.MAX_SIGNATURE_BYTES)
    try:
        doc = parse_descriptor(raw)
    except DescriptorError as exc:
        raise SiteError(f"{name} {version}: {exc.message}") from None
    reasons: list[str] = []
    sbom: SbomSummary | None = None
    sbom_error = None
    if sbom_raw is not None:
        try:
            sbom = summarize_sbom(sbom_raw)
        except ValueError:
            sbom_error = "the SBOM is unreadable"
    kids = sorted(n.rsplit("/", 1)[1].removesuffix(".sig") for n in sigs)
    if policy is None:
        recorded = {s["keyid"]: s["name"] for s in (receipt.signers if receipt else [])}
        signers = [Signer(k, recorded.get(k), None, k in recorded, False, None) for k in kids]
        return AuditReport(
            Path(prefix.path) / where, doc.bundle, signers, None, sbom, sbom_error,
            "NOT VERIFIED",
            ["no trust policy: the signatures were checked at install (receipt), not now"],
            receipt.digest if receipt else None, None, doc.lock.model.signature, None,
            doc.images, doc.kernels,
        )  # fmt: skip
    verdict = check_signatures(raw, sigs, policy)
    signers = [
        Signer(
            k,
            policy.keys[k].name if k in policy.keys else None,
            policy.keys[k].algorithm if k in policy.keys else None,
            k in policy.keys,
            k in policy.revoked,
            k in verdict.valid,
        )
        for k in kids
    ]
    failures = [f"[{f.check}] {f.subject}: {f.message}" for f in verdict.failures]
    provenance = None
    if attestation is not None:
        provenance, failure, note = attestation_verdict(attestation, doc, policy)
        failures += [f"[consistency] attestation: {failure}"] if failure else []
        reasons += [note] if note else []
    status, ms_failures = model_signature.check(doc, model_sig, policy)
    failures += [str(f) for f in ms_failures]
    ok = not failures
    reasons = (
        [f"signed by {', '.join(policy.name_of(k) for k in verdict.valid)} (its installed copy)"]
        if ok
        else failures
    ) + reasons
    return AuditReport(
        Path(prefix.path) / where, doc.bundle, signers, provenance, sbom, sbom_error,
        "PASS" if ok else "FAIL", reasons, receipt.digest if receipt else None, status,
        doc.lock.model.signature, policy, doc.images, doc.kernels,
    )  # fmt: skip


def audit_current_versions(
    prefix_path: Path, receipts: dict[str, dict[str, Receipt]], policy: Policy | None
) -> list[AuditReport]:
    """:func:`audit_installed` of the current version of every installed bundle name; the site's
    own trust policy when it keeps one, else ``policy``."""
    from packager.site.trust import site_policy

    out = []
    with Prefix.open(prefix_path, create=False) as prefix, prefix.locked(exclusive=False):
        kept = site_policy(prefix)
        use = kept.policy if kept is not None else policy
        for name in sorted(receipts):
            version = prefix.current(name)
            if version is None or version not in receipts[name]:
                continue
            out.append(audit_installed(prefix, name, version, receipts[name][version], use))
    return out
