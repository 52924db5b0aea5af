"""`airgap audit BUNDLE`: who signed, how it was built, what it holds, and the verdict."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.bundle.errors import BundleFormatError
from packager.bundle.reader import open_bundle
from packager.commands.verify import verify_bundle
from packager.signing.trust import Policy


def audit_bundle(path: Path, policy: Policy | None) -> dict[str, Any]:
    with open_bundle(path) as b:
        _, doc = b.bundle_json()
        members = b.members()
        sig_ids = sorted(
            n.rsplit("/", 1)[1].removesuffix(".sig")
            for n in members
            if n.startswith(layout.SIGNATURES_DIR + "/")
        )
        provenance = (
            _provenance(b.read(layout.ATTESTATION, 64 * 2**20))
            if layout.ATTESTATION in members
            else None
        )
        sbom = _sbom(b.read(layout.SBOM, 64 * 2**20)) if layout.SBOM in members else None
    report = verify_bundle(path, policy) if policy is not None else None
    valid = {k for k, _ in report.signers} if report else set()
    signers = []
    for kid in sig_ids:
        key = policy.keys.get(kid) if policy else None
        signers.append(
            {
                "keyid": kid,
                "name": key.name if key else None,
                "algorithm": key.algorithm if key else None,
                "trusted": key is not None,
                "revoked": bool(policy and kid in policy.revoked),
                "valid": kid in valid if report else None,
            }
        )
    bundle = doc.get("bundle", {})
    if report is None:
        verdict, reasons = (
            "NOT VERIFIED",
            ["no trust policy or key given: signatures were not checked"],
        )
    elif report.ok:
        verdict = "PASS"
        reasons = [
            f"signed by {', '.join(n for _, n in report.signers)}; {report.blobs_checked} blobs match"
        ]
    else:
        verdict, reasons = "FAIL", [str(f) for f in report.failures]
    if not sig_ids:
        reasons.append("the bundle is UNSIGNED")
    return {
        "bundle": str(path),
        "name": bundle.get("name"),
        "version": bundle.get("version"),
        "target": bundle.get("target"),
        "created": bundle.get("created"),
        "expires": bundle.get("expires"),
        "signed_at": bundle.get("created"),
        "signers": signers,
        "provenance": provenance,
        "sbom": sbom,
        "verdict": verdict,
        "reasons": reasons,
        "digest": report.digest if report else None,
    }


def _provenance(raw: bytes) -> dict[str, Any] | None:
    try:
        env = json.loads(raw)
        st = json.loads(base64.b64decode(env["payload"]))
        pred = st["predicate"]
        ext = pred["buildDefinition"]["externalParameters"]
        run = pred["runDetails"]
        deps = pred["buildDefinition"].get("resolvedDependencies", [])
        return {
            "builder": run["builder"]["id"],
            "tool_version": pred["buildDefinition"]
            .get("internalParameters", {})
            .get("toolVersion"),
            "manifest": ext.get("manifest"),
            "lock_digest": ext.get("lock", {}).get("digest"),
            "started": run.get("metadata", {}).get("startedOn"),
            "sources": [{"uri": d.get("uri"), "digest": d.get("digest")} for d in deps],
            "dsse_signatures": [s.get("keyid") for s in env.get("signatures", [])],
        }
    except (ValueError, KeyError, TypeError, BundleFormatError):
        return {"error": "the attestation is unreadable"}


def _sbom(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw)
    except ValueError:
        return {"error": "the SBOM is unreadable"}
    comps = doc.get("components", [])

    def digest(c: dict[str, Any]) -> str | None:
        for h in c.get("hashes", []):
            if h.get("alg") == "SHA-256":
                return "sha256:" + str(h["content"])
        return None

    return {
        "format": f"CycloneDX {doc.get('specVersion')}",
        "models": [
            {"name": c.get("name"), "version": c.get("version")}
            for c in comps
            if c.get("type") == "machine-learning-model"
        ],
        "images": [
            {"name": c.get("name"), "version": c.get("version"), "digest": digest(c)}
            for c in comps
            if c.get("type") == "container"
        ],
        "wheels": [
            {"name": c.get("name"), "version": c.get("version"), "digest": digest(c)}
            for c in comps
            if c.get("type") == "library"
        ],
        "files": [
            {"name": c.get("name"), "digest": digest(c)} for c in comps if c.get("type") == "file"
        ],
    }
