"""Assemble one target's bundle: the OCI layout tree, the descriptor, as a plan of entries.

Pure planning: it reads no large file. Every blob is named by the digest the lock recorded and
is copied (and verified) only when the plan is written out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packager import __version__
from packager.bundle import layout, model_signature
from packager.bundle.archive import Entry, FileContent
from packager.bundle.descriptor import (
    AcceleratorSpec,
    AttestationRef,
    BlobRecord,
    BundleMeta,
    CoveredFile,
    Descriptor,
    ImageRecord,
    InstallSize,
    KernelRecord,
    KernelVectors,
    SmokeSpec,
    StackSpec,
    TargetSpec,
)
from packager.bundle.serve_spec import serve_modes, serve_spec
from packager.bundle.store import BlobStore
from packager.manifest.model import Kernel, Manifest, Target
from packager.resolve.lockfile import Lock, LockedFile, LockedTarget
from packager.util.compat import strict_zip
from packager.util.jsonio import canonical_json

if TYPE_CHECKING:  # the image machinery (the docker SDK, registry clients) only when images come
    from packager.bundle.images import CollectedImage


def sha256_digest(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class BlobEntry:
    digest: str
    size: int
    media_type: str
    role: str  # model | image | kernel | wheel | file | probe | oci
    source: Path | None = None  # a local file, copied and verified at write time
    data: bytes | None = None  # generated content
    what: str = ""  # for error messages
    paths: list[str] = field(default_factory=list)  # install paths


@dataclass
class Plan:
    target: Target
    locked: LockedTarget
    blobs: dict[str, BlobEntry] = field(default_factory=dict)
    index: list[dict[str, Any]] = field(default_factory=list)
    airgap_files: dict[str, bytes] = field(default_factory=dict)  # path in bundle -> content
    logical_bytes: int = 0  # before dedup

    def add_blob(self, entry: BlobEntry, install_path: str | None = None) -> dict[str, Any]:
        self.logical_bytes += entry.size
        have = self.blobs.get(entry.digest)
        if have is None:
            self.blobs[entry.digest] = have = entry
        if install_path is not None and install_path not in have.paths:
            have.paths.append(install_path)
        return {"mediaType": entry.media_type, "digest": entry.digest, "size": entry.size}

    def entries(self, extra: dict[str, bytes]) -> dict[str, Entry]:
        """What the output holds: ``extra`` (the airgap/ files, index.json...) and every blob."""
        out: dict[str, Entry] = dict(extra)
        for b in self.blobs.values():
            if b.data is not None:
                out[layout.blob_path(b.digest)] = b.data
            else:
                assert b.source is not None
                out[layout.blob_path(b.digest)] = FileContent(
                    b.source, b.size, b.digest.split(":", 1)[1], b.what
                )
        return out

    def add_generated(self, data: bytes, media_type: str, role: str = "oci") -> dict[str, Any]:
        return self.add_blob(
            BlobEntry(sha256_digest(data), len(data), media_type, role, data=data, what=media_type)
        )

    @property
    def stored_bytes(self) -> int:
        return sum(b.size for b in self.blobs.values())


EMPTY_CONFIG = {
    "mediaType": layout.OCI_EMPTY,
    "digest": sha256_digest(layout.OCI_EMPTY_CONTENT),
    "size": len(layout.OCI_EMPTY_CONTENT),
}


def _artifact_manifest(
    plan: Plan,
    artifact_type: str,
    layers: list[dict[str, Any]],
    annotations: dict[str, str],
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if config is None:
        plan.add_generated(layout.OCI_EMPTY_CONTENT, layout.OCI_EMPTY)
        config = EMPTY_CONFIG
    manifest = {
        "schemaVersion": 2,
        "mediaType": layout.OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": config,
        "layers": layers,
        "annotations": dict(sorted(annotations.items())),
    }
    return plan.add_generated(canonical_json(manifest), layout.OCI_MANIFEST)


def _index_entry(
    plan: Plan, descriptor: dict[str, Any], ref: str, role: str, artifact_type: str | None = None
) -> None:
    d = dict(descriptor)
    if artifact_type:
        d["artifactType"] = artifact_type
    d["annotations"] = {layout.REF_NAME: ref, layout.ROLE: role}
    plan.index.append(d)


def _param_size(n: int) -> str:
    for unit, div in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def _file_layer(plan: Plan, f: LockedFile, media_type: str, role: str, source: Path,
                install_path: str, title_key: str, title: str) -> dict[str, Any]:  # fmt: skip
    desc = plan.add_blob(
        BlobEntry(
            f"sha256:{f.sha256}", f.size, media_type, role, source=source, what=f"{role} {title}"
        ),
        install_path,
    )
    return {**desc, "annotations": {title_key: title}}


def model_source_root(manifest: Manifest, lock: Lock) -> Path:
    src = lock.model.source
    if "path" in src:
        return manifest.base_dir / src["path"]
    from packager.manifest.model import HuggingFaceSource
    from packager.resolve.weights import hf_cache_root

    hf = manifest.model.source.huggingface
    assert hf is not None
    root = hf_cache_root(HuggingFaceSource(src["huggingface"], src["commit"], hf.cache))
    return root / ("models--" + src["huggingface"].replace("/", "--")) / "snapshots" / src["commit"]


def plan_model(plan: Plan, manifest: Manifest, lock: Lock, created: str) -> None:
    root = model_source_root(manifest, lock)
    layers = []
    for f in lock.model.files:
        if f.path == layout.MODEL_SIGNATURE_INSTALL.rsplit("/", 1)[1]:
            from packager.errors import CheckFailed

            raise CheckFailed(
                f"the lock lists {f.path} as a model file: it is an OpenSSF model signature, and "
                "the bundle's own model.sig goes there",
                hint="run `airgap lock` again (it leaves model.sig out; model.source.signature "
                "verifies a publisher's)",
            )
        media = layout.MODEL_LAYER_BY_ROLE.get(f.role or "other", layout.MODEL_WEIGHT_CONFIG)
        install = f"{layout.MODEL_INSTALL_DIR}/{f.path}"
        layers.append(
            _file_layer(
                plan, f, media, "model", root / f.path, install, layout.MODEL_FILEPATH, f.path
            )
        )
    st = lock.model.safetensors
    precision = plan.target.precision or manifest.model.precision
    descriptor: dict[str, Any] = {"name": manifest.model.name, "createdAt": created}
    if manifest.model.license:
        descriptor["licenses"] = [manifest.model.license]
    if "commit" in lock.model.source:
        descriptor["revision"] = lock.model.source["commit"]
        descriptor["sourceURL"] = f"https://huggingface.co/{lock.model.source['huggingface']}"
    config_doc: dict[str, Any] = {
        "descriptor": descriptor,
        "config": {
            "format": manifest.model.format,
            **({"precision": precision} if precision else {}),
        },
        "modelfs": {"type": "layers", "diffIds": [layer["digest"] for layer in layers]},
    }
    if st is not None:
        config_doc["config"]["paramSize"] = _param_size(st.parameters)
    config = plan.add_generated(canonical_json(config_doc), layout.MODEL_CONFIG)
    desc = _artifact_manifest(
        plan,
        layout.MODEL_ARTIFACT,
        layers,
        {layout.TITLE: manifest.model.name, layout.CREATED: created},
        config=config,
    )
    _index_entry(plan, desc, layout.MODEL_REF, "model", layout.MODEL_ARTIFACT)


def plan_kernels(plan: Plan, manifest: Manifest) -> None:
    for k, lk in strict_zip(plan.target.kernels, plan.locked.kernels):
        base = f"{layout.KERNELS_INSTALL_DIR}/{k.name}"
        binary = _file_layer(
            plan,
            lk.file,
            layout.KERNEL_BINARY,
            "kernel",
            k.path,
            f"{base}/{k.path.name}",
            layout.TITLE,
            k.path.name,
        )
        layers = [binary]
        if k.tests is not None:
            sources = list(k.tests.inputs) + list(k.tests.expected)
            for src, f in strict_zip(sources, lk.tests):
                sub = "inputs" if f.role == "input" else "expected"
                layers.append(
                    _file_layer(
                        plan,
                        f,
                        layout.KERNEL_TEST_VECTOR,
                        "kernel",
                        src,
                        f"{base}/{sub}/{src.name}",
                        layout.TITLE,
                        f"{sub}/{src.name}",
                    )
                )
        annotations = {layout.TITLE: k.name, "dev.airgap.kernel.kind": k.kind}
        if k.entry:
            annotations["dev.airgap.kernel.entry"] = k.entry
        if k.targets:
            annotations["dev.airgap.kernel.targets"] = ",".join(k.targets)
        desc = _artifact_manifest(plan, layout.KERNEL_ARTIFACT, layers, annotations)
        _index_entry(plan, desc, layout.kernel_ref(k.name), "kernel", layout.KERNEL_ARTIFACT)


def plan_wheels(plan: Plan, wheel_sources: dict[str, Path]) -> None:
    if not plan.locked.wheels:
        return
    layers = []
    for w in plan.locked.wheels:
        f = LockedFile(w.filename, w.sha256, w.size)
        layers.append(
            _file_layer(
                plan,
                f,
                layout.WHEEL,
                "wheel",
                wheel_sources[w.filename],
                f"{layout.WHEELS_INSTALL_DIR}/{w.filename}",
                layout.TITLE,
                w.filename,
            )
        )
    desc = _artifact_manifest(
        plan, layout.WHEELS_ARTIFACT, layers, {"dev.airgap.python": plan.locked.python or ""}
    )
    _index_entry(plan, desc, layout.WHEELS_REF, "wheels", layout.WHEELS_ARTIFACT)


def plan_files(plan: Plan, base_dir: Path) -> None:
    """The runtime files, one layer each (a folder source's files each with their own install
    path; ``f.path`` is the source as the lock wrote it: relative to the manifest's folder, or
    absolute)."""
    if not plan.locked.files:
        return
    layers = []
    for f in plan.locked.files:
        assert f.dest is not None
        source = base_dir / f.path
        layers.append(
            _file_layer(plan, f, layout.FILE, "file", source, f.dest, layout.TITLE, f.dest)
        )
    desc = _artifact_manifest(plan, layout.FILES_ARTIFACT, layers, {})
    _index_entry(plan, desc, layout.FILES_REF, "files", layout.FILES_ARTIFACT)


def plan_probe(plan: Plan, payload: dict[str, bytes]) -> None:
    layers = []
    for rel, data in sorted(payload.items()):
        desc = plan.add_blob(
            BlobEntry(
                sha256_digest(data),
                len(data),
                layout.PROBE_FILE,
                "probe",
                data=data,
                what=f"probe {rel}",
            )
        )
        layers.append({**desc, "annotations": {layout.TITLE: rel}})
        plan.airgap_files[f"{layout.PROBE_DIR}/{rel}"] = data
    desc = _artifact_manifest(plan, layout.PROBE_ARTIFACT, layers, {})
    _index_entry(plan, desc, layout.PROBE_REF, "probe", layout.PROBE_ARTIFACT)


def plan_site_kit(plan: Plan, files: dict[str, bytes]) -> None:
    """The site kit (packager.bundle.site_kit) as airgap files under ``airgap/site/``: listed in
    bundle.json with their sha256 like the probe, not blobs (the launcher reads them by path)."""
    for rel, data in sorted(files.items()):
        plan.airgap_files[f"{layout.SITE_DIR}/{rel}"] = data


def plan_images(plan: Plan, images: list[CollectedImage], store: BlobStore) -> None:
    for img in images:
        for digest, size, media in img.blobs:
            plan.add_blob(
                BlobEntry(
                    digest,
                    size,
                    media,
                    "image",
                    source=store.path(digest),
                    what=f"image {img.ref} blob {digest}",
                )
            )
        _index_entry(plan, img.descriptor, img.ref, "image")


def index_json(plan: Plan) -> bytes:
    manifests = sorted(plan.index, key=lambda d: d["annotations"][layout.REF_NAME])
    return canonical_json(
        {"schemaVersion": 2, "mediaType": layout.OCI_INDEX, "manifests": manifests}
    )


# ----------------------------------------------------------------------------- the descriptor


def lock_digest(lock: Lock) -> str:
    """The lock's digest as the descriptor and the provenance record it (computed once per
    lock object: a lock of 50,000 files is a few MB of JSON, and a lock never changes)."""
    last = _LOCK_DIGEST.get(id(lock))
    if last is not None and last[0] is lock:
        return last[1]
    digest = sha256_digest(canonical_json(lock.to_json()))
    _LOCK_DIGEST.clear()  # the last lock only: no lock is kept alive for long
    _LOCK_DIGEST[id(lock)] = (lock, digest)
    return digest


_LOCK_DIGEST: dict[int, tuple[Lock, str]] = {}


def kernel_record(manifest: Manifest, target: Target, kernel: Kernel) -> KernelRecord:
    """What the site needs to run a kernel's test vectors, and the build's verdict on its binary.

    Raises CheckFailed for a binary that cannot ship (no code for a target chip, no entry...).
    """
    from packager.compat.facts import load_facts
    from packager.errors import CheckFailed
    from packager.kernels.checks import check_kernel, target_chips
    from packager.kernels.record import probe_spec

    base = f"{layout.KERNELS_INSTALL_DIR}/{kernel.name}"
    site: dict[Path, str] = {kernel.path: f"{base}/{kernel.path.name}"}
    if kernel.tests is not None:
        site.update({p: f"{base}/inputs/{p.name}" for p in kernel.tests.inputs})
        site.update({p: f"{base}/expected/{p.name}" for p in kernel.tests.expected})
    chips = target_chips(load_facts(), target.accelerator.vendor, target.accelerator.chips)
    check = check_kernel(kernel, chips, stack=target.stack)
    if not check.ok:
        errors = [i for i in check.issues if i.severity.value == "error"]
        raise CheckFailed(
            f"kernel {kernel.name!r} cannot ship: "
            + "; ".join(f"{i.code} {i.message}" for i in errors),
            hint=errors[0].hint if errors else None,
            location=manifest.document.location(kernel.json_path),
        )
    spec = probe_spec(manifest, kernel, site.__getitem__, check)
    params = spec.get("params")
    tests = spec.get("tests")
    return KernelRecord(
        name=kernel.name,
        kind=kernel.kind,
        path=spec["path"],
        entry=kernel.entry,
        targets=tuple(kernel.targets),
        params=tuple(params) if params is not None else None,
        tests=KernelVectors.from_json(tests) if tests is not None else None,
        # the check names the file by its install path, never by the build host's path
        check={**check.to_json(), "path": spec["path"]},
    )


def describe(
    manifest: Manifest,
    lock: Lock,
    plan: Plan,
    target: Target,
    created: str,
    expires: str | None,
    attestation: AttestationRef | None = None,
) -> Descriptor:
    """The descriptor of one target's bundle, once every blob of ``plan`` is known."""
    covered = {
        **plan.airgap_files,
        layout.INDEX_JSON: index_json(plan),
        layout.OCI_LAYOUT: layout.OCI_LAYOUT_CONTENT,
    }
    acc = target.accelerator
    stack = target.stack
    smoke = target.smoke
    return Descriptor(
        bundle=BundleMeta(
            manifest.name,
            manifest.version,
            target.id,
            manifest.description,
            created,
            expires,
            int(manifest.expires.total_seconds()) if manifest.expires else None,
        ),
        tool=f"airgap {__version__}",
        manifest=manifest.document.data,
        manifest_digest=lock.manifest_digest,
        lock=lock,
        lock_digest=lock_digest(lock),
        target=TargetSpec(
            target.id,
            target.platform,
            AcceleratorSpec(acc.vendor, tuple(acc.chips), acc.count, acc.memory_bytes, acc.mig),
            StackSpec(
                stack.cuda, stack.cann, stack.driver, stack.firmware, stack.torch, stack.torch_npu
            ),
            target.precision,
            target.nodes,
        ),
        install=InstallSize(
            sum(b.size for b in plan.blobs.values() if b.paths),
            sum(f.size for f in lock.model.files),
            executables=tuple(sorted(f.dest for f in plan.locked.files if f.executable and f.dest)),
            dirs=tuple(sorted(plan.locked.dirs)),
            modes=serve_modes(target.serve.install)
            if target.serve and target.serve.install
            else None,
        ),
        images=tuple(
            ImageRecord(
                i.ref, img.role, i.platform, i.manifest_digest, i.index_digest, i.config_digest
            )
            for i, img in strict_zip(plan.locked.images, target.images)
        ),
        kernels=tuple(kernel_record(manifest, target, k) for k in target.kernels),
        smoke=SmokeSpec(
            smoke.image,
            tuple(smoke.command),
            dict(smoke.env),
            smoke.timeout_s,
            smoke.exit_code,
            smoke.stdout_contains,
        )
        if smoke is not None
        else None,
        blobs=tuple(
            BlobRecord(b.digest, b.size, b.media_type, b.role, tuple(sorted(b.paths)))
            for b in sorted(plan.blobs.values(), key=lambda b: b.digest)
        ),
        files=tuple(
            CoveredFile(path, sha256_digest(data).split(":", 1)[1], len(data))
            for path, data in sorted(covered.items())
        ),
        attestation=attestation,
        serve=serve_spec(target.serve) if target.serve is not None else None,
        model_signature=model_signature.describe(lock.model),
    )
