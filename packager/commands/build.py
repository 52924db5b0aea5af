"""`airgap build`: lock (or check the lock), collect images, assemble, sign, write one archive per
target, each under a temporary name renamed into place at the end."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager import __version__
from packager.bundle import layout
from packager.bundle.archive import (
    FileSink,
    OutputError,
    Part,
    PartsSink,
    TarWriter,
    write_parts_index,
)
from packager.bundle.assemble import (
    Plan,
    index_json,
    plan_files,
    plan_images,
    plan_kernels,
    plan_model,
    plan_probe,
    plan_wheels,
    sha256_digest,
)
from packager.bundle.store import BlobStore
from packager.commands.lock import (
    check_lock_belongs,
    find_drift,
    load_lock,
    lock_manifest,
    lock_path_for,
    open_stat_cache,
)
from packager.errors import InputError, LockMismatch, ResolveError
from packager.manifest.model import Manifest, Target
from packager.resolve.lockfile import Lock
from packager.util.cache import cache_dir
from packager.util.jsonio import canonical_json, pretty_json
from packager.util.progress import Reporter
from packager.util.schemas import validator
from packager.util.timefmt import epoch_of, format_utc, source_date_epoch


@dataclass(frozen=True)
class SigningKey:
    """What the build needs of a private key: its keyid, algorithm and a way to sign bytes."""

    keyid: str
    algorithm: str
    sign: Callable[[bytes], bytes]
    private_key: Any = None  # for the DSSE envelope


@dataclass
class BuiltBundle:
    target: str | None
    stem: str
    files: list[Path]
    digest: str  # content digest: sha256 of bundle.json
    size: int  # bytes written
    blobs: int
    stored_bytes: int
    dedup_saved: int
    signed_by: list[str]
    parts: list[Part] = field(default_factory=list)


@dataclass
class BuildResult:
    bundles: list[BuiltBundle]
    seconds: float
    lock_path: Path | None


def _epoch(lock: Lock) -> int:
    """The bundle's time: SOURCE_DATE_EPOCH, else the lock's."""
    sde = source_date_epoch()
    if sde is not None:
        return sde
    when = epoch_of(lock.created)
    if when is None:
        raise InputError(f"the lock's created time {lock.created!r} is not RFC 3339")
    return when


def parse_split(text: str | None) -> int | None:
    """``fat32`` | ``700M`` | ``4G`` | bytes -> bytes per part."""
    if text is None:
        return None
    t = text.strip().lower()
    if t == "fat32":
        return layout.FAT32_MAX
    units = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    try:
        if t[-1:] in units:
            n = int(float(t[:-1]) * units[t[-1]])
        elif t.endswith(("kb", "mb", "gb", "tb")):
            n = int(float(t[:-2]) * units[t[-2]])
        else:
            n = int(t)
    except ValueError:
        raise InputError(
            f"--split {text!r} is not a size", hint="e.g. --split fat32, --split 4G, --split 700M"
        ) from None
    if n < 1024 * 1024:
        raise InputError(f"--split {text!r}: parts must be at least 1 MiB")
    return n


def _wheel_sources(target: Target, lock_target: Any) -> dict[str, Path]:
    out: dict[str, Path] = {}
    folders = []
    if target.wheels is not None and target.wheels.wheelhouse is not None:
        folders.append(target.wheels.wheelhouse)
    folders.append(cache_dir() / "wheels")
    for w in lock_target.wheels:
        found = next((f / w.filename for f in folders if (f / w.filename).is_file()), None)
        if found is None:
            raise ResolveError(
                f"wheel {w.filename} is in the lock but not in "
                + " or ".join(str(f) for f in folders),
                hint="run `airgap lock` on the build host (it downloads the wheels) and build there",
            )
        out[w.filename] = found
    return out


def _kernel_entry(manifest: Manifest, target: Target, kernel: Any) -> dict[str, Any]:
    """What the site needs to run a kernel's test vectors, and the build's verdict on its binary."""
    from packager.compat.facts import load_facts
    from packager.kernels.checks import check_kernel, target_chips
    from packager.kernels.record import probe_spec

    base = f"{layout.KERNELS_INSTALL_DIR}/{kernel.name}"
    site: dict[Path, str] = {kernel.path: f"{base}/{kernel.path.name}"}
    if kernel.tests is not None:
        site.update({p: f"{base}/inputs/{p.name}" for p in kernel.tests.inputs})
        site.update({p: f"{base}/expected/{p.name}" for p in kernel.tests.expected})
    chips = target_chips(load_facts(), target.accelerator.vendor, target.accelerator.chips)
    check = check_kernel(kernel, chips)
    if not check.ok:
        from packager.errors import CheckFailed

        errors = [i for i in check.issues if i.severity.value == "error"]
        where = manifest.document.location(kernel.json_path)
        raise CheckFailed(
            f"kernel {kernel.name!r} cannot ship: "
            + "; ".join(f"{i.code} {i.message}" for i in errors),
            hint=errors[0].hint if errors else None,
            location=where,
        )
    spec = probe_spec(manifest, kernel, site.__getitem__, check)
    return {
        "name": kernel.name,
        "kind": kernel.kind,
        "path": spec["path"],
        "entry": kernel.entry,
        "targets": list(kernel.targets),
        "params": spec.get("params"),
        "tests": spec.get("tests"),
        # the check names the file by its install path, never by the build host's path
        "check": {**check.to_json(), "path": spec["path"]},
    }


def _bundle_doc(
    manifest: Manifest, lock: Lock, plan: Plan, target: Target, created: str, expires: str | None
) -> dict[str, Any]:
    t = plan.locked
    acc = target.accelerator
    blobs = [
        {
            "digest": b.digest,
            "size": b.size,
            "mediaType": b.media_type,
            "role": b.role,
            "paths": sorted(b.paths),
        }
        for b in sorted(plan.blobs.values(), key=lambda b: b.digest)
    ]
    covered = {
        **plan.airgap_files,
        layout.INDEX_JSON: index_json(plan),
        layout.OCI_LAYOUT: layout.OCI_LAYOUT_CONTENT,
    }
    files = [
        {"path": path, "sha256": sha256_digest(data).split(":", 1)[1], "size": len(data)}
        for path, data in sorted(covered.items())
    ]
    kernels = [_kernel_entry(manifest, target, k) for k in target.kernels]
    smoke = None
    if target.smoke is not None:
        s = target.smoke
        smoke = {
            "image": s.image,
            "command": list(s.command),
            "env": dict(s.env),
            "timeout_s": s.timeout_s,
            "exit_code": s.exit_code,
            "stdout_contains": s.stdout_contains,
        }
    weights = sum(f.size for f in lock.model.files)
    return {
        "bundleFormat": layout.BUNDLE_FORMAT_VERSION,
        "bundle": {
            "name": manifest.name,
            "version": manifest.version,
            "target": target.id,
            "description": manifest.description,
            "created": created,
            "expires": expires,
        },
        "tool": f"airgap {__version__}",
        "manifest": manifest.document.data,
        "manifest_digest": lock.manifest_digest,
        "lock": lock.to_json(),
        "lock_digest": sha256_digest(canonical_json(lock.to_json())),
        "target": {
            "id": target.id,
            "platform": target.platform,
            "accelerator": {
                "vendor": acc.vendor,
                "chips": list(acc.chips),
                "count": acc.count,
                "memory_bytes": acc.memory_bytes,
            },
            "stack": {
                "cuda": target.stack.cuda,
                "cann": target.stack.cann,
                "driver": target.stack.driver,
                "firmware": target.stack.firmware,
                "torch": target.stack.torch,
                "torch_npu": target.stack.torch_npu,
            },
            "precision": target.precision,
        },
        "install": {
            "bytes": sum(b.size for b in plan.blobs.values() if b.paths),
            "weights_bytes": weights,
        },
        "images": [
            {
                "ref": i.ref,
                "role": role,
                "platform": i.platform,
                "manifest_digest": i.manifest_digest,
                "index_digest": i.index_digest,
                "config_digest": i.config_digest,
            }
            for i, role in zip(t.images, (img.role for img in target.images), strict=True)
        ],
        "kernels": kernels,
        "smoke": smoke,
        "blobs": blobs,
        "files": files,
    }


def builder_id() -> str:
    """Who built it (provenance): AIRGAP_BUILDER_ID, else this host's name."""
    return (
        os.environ.get("AIRGAP_BUILDER_ID")
        or f"https://airgap.dev/builder/host/{os.uname().nodename}"
    )


def _attestation(
    plan: Plan, doc: dict[str, Any], key: SigningKey | None, epoch: int, lock: Lock
) -> bytes:
    from packager.signing import dsse, intoto

    when = intoto.time_from_epoch(epoch)
    statement = intoto.provenance_statement(
        [intoto.blob_subject(b.digest, b.media_type) for b in plan.blobs.values()],
        manifest=intoto.ManifestRef(
            doc["bundle"]["name"], doc["bundle"]["version"], doc["manifest_digest"]
        ),
        lock_sha256=doc["lock_digest"],
        tool_version=__version__,
        builder_id=builder_id(),
        started_on=when,
        finished_on=when,
        dependencies=_dependencies(lock, plan),
        target=doc["bundle"]["target"],
    )
    signers = [key.private_key] if key is not None else []
    return dsse.envelope_to_json(intoto.sign_statement(statement, signers))


def _dependencies(lock: Lock, plan: Plan) -> list[Any]:
    from packager.signing.intoto import Dependency

    deps: list[Dependency] = []
    src = lock.model.source
    model_uri = (
        f"https://huggingface.co/{src['huggingface']}/resolve/{src['commit']}"
        if "commit" in src
        else f"file:{src.get('path', '')}"
    )
    for f in lock.model.files:
        deps.append(Dependency(f"{model_uri}/{f.path}", f.sha256))
    for i in plan.locked.images:
        deps.append(Dependency(f"oci://{i.ref}", i.content_digest))
    for w in plan.locked.wheels:
        deps.append(Dependency(f"pypi:{w.filename}", w.sha256))
    for fl in plan.locked.files:
        deps.append(Dependency(f"file:{fl.path}", fl.sha256))
    for k in plan.locked.kernels:
        deps.append(Dependency(f"file:{k.file.path}", k.file.sha256))
    return deps


def load_signing_key(path: Path) -> SigningKey:
    """The private key at ``path``; its passphrase from AIRGAP_KEY_PASSPHRASE or a prompt."""
    from packager.signing import keys, signature

    private = keys.load_private_key(path)
    return SigningKey(
        keyid=keys.keyid(private.public_key()),
        algorithm=keys.algorithm_of(private),
        sign=lambda data: signature.sign(private, data),
        private_key=private,
    )


def _write(writer: Any, plan: Plan, entries: dict[str, bytes], reporter: Reporter) -> None:
    """Every entry in sorted order: airgap/..., blobs/sha256/..., index.json, oci-layout."""
    tree: dict[str, Any] = dict(entries)
    for b in plan.blobs.values():
        tree[layout.blob_path(b.digest)] = b
    dirs: set[str] = set()
    for name in tree:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    for name in sorted(set(tree) | dirs):
        if name in dirs:
            writer.add_dir(name)
            continue
        item = tree[name]
        if isinstance(item, bytes):
            writer.add_bytes(name, item)
        elif item.data is not None:
            writer.add_bytes(name, item.data)
        else:
            assert item.source is not None
            writer.add_file(
                name,
                item.source,
                size=item.size,
                sha256=item.digest.split(":", 1)[1],
                what=item.what,
                progress=reporter.advance,
            )


def build_target(
    manifest: Manifest,
    lock: Lock,
    target: Target,
    *,
    out: Path,
    key: SigningKey | None,
    split: int | None,
    layout_only: bool,
    store: BlobStore,
    probe_payload: dict[str, bytes],
    reporter: Reporter,
    timeout: float,
    all_platforms: bool = False,
) -> BuiltBundle:
    from packager.bundle.images import collect_image
    from packager.bundle.sbom import build_sbom, sbom_bytes

    locked = lock.target(target.id)
    epoch = _epoch(lock)
    created = format_utc(epoch)
    expires = (
        format_utc(epoch + int(manifest.expires.total_seconds())) if manifest.expires else None
    )
    plan = Plan(target, locked)
    if target.images:
        reporter.phase(f"images{f' [{target.id}]' if target.id else ''}")
    collected = [
        collect_image(
            img, li, store, timeout=timeout, progress=reporter.advance, all_platforms=all_platforms
        )
        for img, li in zip(target.images, locked.images, strict=True)
    ]
    plan_model(plan, manifest, lock, created)
    plan_kernels(plan, manifest)
    plan_wheels(plan, _wheel_sources(target, locked))
    plan_files(plan)
    plan_probe(plan, probe_payload)
    plan_images(plan, collected, store)
    sbom = build_sbom(
        lock,
        target.id,
        bundle_name=manifest.name,
        bundle_version=manifest.version,
        serial_seed=f"{lock.manifest_digest}/{target.id}",
        timestamp=created,
        tool_version=__version__,
        model_license=manifest.model.license,
        precision=target.precision,
        chips=target.accelerator.chips,
        accelerator_vendor=target.accelerator.vendor,
    )
    plan.airgap_files[layout.SBOM] = sbom_bytes(sbom)
    doc = _bundle_doc(manifest, lock, plan, target, created, expires)
    validator("bundle").validate(doc)  # what we sign must follow our own schema
    bundle_json = pretty_json(doc)
    digest = sha256_digest(bundle_json)
    entries: dict[str, bytes] = {
        layout.OCI_LAYOUT: layout.OCI_LAYOUT_CONTENT,
        layout.INDEX_JSON: index_json(plan),
        layout.BUNDLE_JSON: bundle_json,
        layout.ATTESTATION: _attestation(plan, doc, key, epoch, lock),
        **plan.airgap_files,
    }
    signed_by = []
    if key is not None:
        from packager.signing.signature import signature_file_content

        entries[layout.signature_path(key.keyid)] = signature_file_content(key.sign(bundle_json))
        signed_by.append(key.keyid)
    stem = layout.bundle_stem(manifest.name, manifest.version, target.id)
    reporter.phase(f"writing {stem}", plan.stored_bytes)
    parts: list[Part] = []
    if layout_only:
        files = [_write_folder(out / stem, plan, entries, reporter, epoch)]
        size = plan.stored_bytes
    else:
        sink: FileSink | PartsSink
        if split is None:
            sink = FileSink(out / layout.tar_name(stem))
        else:
            sink = PartsSink(out, lambda i: layout.part_name(stem, i), split)
        try:
            with TarWriter(sink, epoch) as writer:
                _write(writer, plan, entries, reporter)
                writer.close()
                size = writer.size
            files = sink.commit()
        except BaseException:
            sink.abort()
            raise
        if isinstance(sink, PartsSink):
            parts = sink.parts
            index_path = out / layout.parts_index_name(stem)
            write_parts_index(index_path, stem, parts, size, digest)
            files.append(index_path)
    return BuiltBundle(
        target=target.id,
        stem=stem,
        files=files,
        digest=digest,
        size=size,
        blobs=len(plan.blobs),
        stored_bytes=plan.stored_bytes,
        dedup_saved=plan.logical_bytes - plan.stored_bytes,
        signed_by=signed_by,
        parts=parts,
    )


class _FolderWriter:
    """The same entries as the tar, as a folder (``--layout-only``)."""

    def __init__(self, root: Path, mtime: int) -> None:
        self.root = root
        self.mtime = mtime

    def add_dir(self, name: str) -> None:
        (self.root / name).mkdir(parents=True, exist_ok=True)

    def add_bytes(self, name: str, data: bytes) -> None:
        p = self.root / name
        p.write_bytes(data)
        os.utime(p, (self.mtime, self.mtime))

    def add_file(
        self,
        name: str,
        source: Path,
        *,
        size: int,
        sha256: str,
        what: str,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from packager.bundle.archive import copy_verified

        dest = self.root / name
        with (
            open(dest, "wb") as out,
            ThreadPoolExecutor(1, thread_name_prefix="layout-hash") as pool,
        ):
            copy_verified(
                source, out.write, size=size, sha256=sha256, what=what, pool=pool, progress=progress
            )
        os.utime(dest, (self.mtime, self.mtime))


def _write_folder(
    final: Path, plan: Plan, entries: dict[str, bytes], reporter: Reporter, mtime: int
) -> Path:
    tmp = final.with_name(f".{final.name}.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        _write(_FolderWriter(tmp, mtime), plan, entries, reporter)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        from packager.bundle.archive import _write_error

        raise _write_error(final, exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def build(
    manifest: Manifest,
    *,
    out: Path,
    key: SigningKey | None,
    locked: bool = False,
    lock_file: Path | None = None,
    split: int | None = None,
    layout_only: bool = False,
    target_id: str | None = None,
    reporter: Reporter | None = None,
    offline: bool = False,
    timeout: float = 60.0,
    all_platforms: bool = False,
) -> BuildResult:
    rep = reporter or Reporter()
    t0 = time.perf_counter()
    targets = list(manifest.targets)
    if target_id is not None:
        ids = [t.id for t in targets]
        if target_id not in ids:
            raise InputError(
                f"--target {target_id!r}: the manifest has no such target",
                hint=f"targets: {', '.join(str(i) for i in ids)}",
            )
        targets = [t for t in targets if t.id == target_id]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the output folder: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise OutputError(
            f"{out}: the output folder is not writable", hint="pick another with --out"
        )
    lock_path = lock_file or lock_path_for(manifest.path)
    with open_stat_cache() as cache:
        if locked:
            lock = load_lock(lock_path)
            check_lock_belongs(manifest, lock, lock_path)
            rep.phase("checking inputs against the lock")
            drift = find_drift(
                manifest, lock, cache=cache, reporter=rep, offline=offline, timeout=timeout
            )
            if drift:
                raise LockMismatch(
                    f"{len(drift)} input(s) drifted since {lock_path}:\n  "
                    + "\n  ".join(str(d) for d in drift),
                    hint="review the changes; `airgap lock` records the new content",
                )
        else:
            result = lock_manifest(
                manifest, cache=cache, reporter=rep, offline=offline, timeout=timeout
            )
            errors = [f for f in result.findings if f.severity.value == "error"]
            if errors:
                from packager.errors import CheckFailed

                raise CheckFailed(
                    "; ".join(f"{f.location}: {f.code} {f.message}" for f in errors),
                    hint=errors[0].hint,
                )
            lock = result.lock
    from packager.bundle.probe_payload import probe_payload

    payload = probe_payload()
    store = BlobStore(cache_dir() / "blobs")
    bundles = [
        build_target(
            manifest,
            lock,
            t,
            out=out,
            key=key,
            split=split,
            layout_only=layout_only,
            store=store,
            probe_payload=payload,
            reporter=rep,
            timeout=timeout,
            all_platforms=all_platforms,
        )
        for t in targets
    ]
    return BuildResult(bundles, time.perf_counter() - t0, lock_path if locked else None)
