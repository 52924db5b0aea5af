"""The build attestation of a bundle: ``airgap/attestation.dsse.json``.

A DSSE envelope over an in-toto Statement v1 whose subjects are every blob and whose predicate is
SLSA provenance v1: the manifest and lock it was built from, the builder, and every input.
"""

from __future__ import annotations

import hashlib
import os

from packager import __version__
from packager.bundle.assemble import Plan, lock_digest
from packager.bundle.descriptor import AttestationRef
from packager.resolve.lockfile import Lock
from packager.signing import dsse, intoto, oms
from packager.signing.keys import SigningKey
from packager.util.jsonio import canonical_json


def builder_id() -> str:
    """Who built it: AIRGAP_BUILDER_ID, else this host's name."""
    return (
        os.environ.get("AIRGAP_BUILDER_ID")
        or f"https://airgap.dev/builder/host/{os.uname().nodename}"
    )


def dependencies(lock: Lock, plan: Plan) -> list[intoto.Dependency]:
    """Every input the bundle was built from, by URI and digest."""
    deps: list[intoto.Dependency] = []
    src = lock.model.source
    model_uri = (
        f"https://huggingface.co/{src['huggingface']}/resolve/{src['commit']}"
        if "commit" in src
        else f"file:{src.get('path', '')}"
    )
    for f in lock.model.files:
        deps.append(intoto.Dependency(f"{model_uri}/{f.path}", f.sha256))
    sig = lock.model.signature
    if sig is not None:  # verified by `airgap lock`: how, and by whom
        deps.append(
            intoto.Dependency(
                f"{model_uri}/{sig.path}",
                sig.sha256,
                name=intoto.PUBLISHER_SIGNATURE,
                media_type=oms.BUNDLE_MEDIA_TYPE,
                annotations={
                    "verified": True,
                    "method": sig.method,
                    "keyid": sig.keyid,
                    "signer": sig.signer,
                    "root": sig.root,
                    "root_digest": sig.root_digest,
                    "files_checked": sig.files_checked,
                },
            )
        )
    for i in plan.locked.images:
        deps.append(intoto.Dependency(f"oci://{i.ref}", i.content_digest))
    for w in plan.locked.wheels:
        deps.append(intoto.Dependency(f"pypi:{w.filename}", w.sha256))
    for fl in plan.locked.files:
        deps.append(intoto.Dependency(f"file:{fl.path}", fl.sha256))
    for k in plan.locked.kernels:
        deps.append(intoto.Dependency(f"file:{k.file.path}", k.file.sha256))
    return deps


def attestation(
    plan: Plan, manifest: intoto.ManifestRef, lock: Lock, key: SigningKey | None, epoch: int
) -> tuple[bytes, AttestationRef]:
    """The DSSE envelope (signed by ``key``; unsigned when there is none) and the reference
    bundle.json keeps to it: the sha256 of its payload, the statement. The statement depends on
    the blobs, the manifest and the lock, not on bundle.json, and is the same on every rebuild
    (an ECDSA envelope's signature is not), so bundle.json's signature covers what the
    attestation says whoever signed the envelope."""
    when = intoto.time_from_epoch(epoch)
    statement = intoto.provenance_statement(
        [intoto.blob_subject(b.digest, b.media_type) for b in plan.blobs.values()],
        manifest=manifest,
        lock_sha256=lock_digest(lock),
        tool_version=__version__,
        builder_id=builder_id(),
        started_on=when,
        finished_on=when,
        dependencies=dependencies(lock, plan),
        target=plan.target.id,
    )
    signers = [key] if key is not None else []
    payload = canonical_json(statement)
    ref = AttestationRef(
        intoto.PAYLOAD_TYPE_INTOTO, hashlib.sha256(payload).hexdigest(), len(payload)
    )
    env = dsse.envelope(intoto.PAYLOAD_TYPE_INTOTO, payload, signers)  # sign_statement's
    return dsse.envelope_to_json(env), ref
