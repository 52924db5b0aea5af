"""`airgap build`: lock (or check the lock), collect images, assemble, sign, write one archive per
target, each under a temporary name renamed into place at the end."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packager import __version__
from packager.bundle import layout
from packager.bundle.archive import (
    Entry,
    FileSink,
    OutputError,
    PartsSink,
    TarWriter,
    write_entries,
    write_folder,
)
from packager.bundle.assemble import (
    Plan,
    describe,
    index_json,
    plan_files,
    plan_images,
    plan_kernels,
    plan_model,
    plan_probe,
    plan_site_kit,
    plan_wheels,
    sha256_digest,
)
from packager.bundle.delta import (
    BaseContent,
    carried_bytes,
    check_base,
    not_carried_file_bytes,
    plan_delta,
)
from packager.bundle.descriptor import DeltaRecord, Descriptor, content_bytes, descriptor_bytes
from packager.bundle.onepass import ModelWrite, OnePass
from packager.bundle.parts import Part, PartsIndex, write_parts_index
from packager.bundle.provenance import attestation
from packager.bundle.store import BlobStore
from packager.commands.lock import (
    check_lock_belongs,
    find_drift,
    load_lock,
    lock_manifest,
    lock_path_for,
    open_stat_cache,
    write_lock,
)
from packager.errors import CheckFailed, InputError, LockMismatch, ResolveError
from packager.findings import Finding
from packager.manifest.model import Manifest, Target
from packager.resolve.lockfile import Lock
from packager.resolve.statcache import StatCache
from packager.signing.intoto import ManifestRef
from packager.signing.keys import SigningKey
from packager.util.cache import cache_dir
from packager.util.compat import strict_zip
from packager.util.forked import Forked, can_fork, worth_forking
from packager.util.progress import Reporter
from packager.util.timefmt import epoch_of, format_utc, source_date_epoch
from packager.util.units import human_size


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
    #: the keyid that signed airgap/model.sig, None when the bundle has none (see notes)
    model_signature: str | None = None
    notes: list[str] = field(default_factory=list)
    #: a combined bundle's targets and each one's content digest (packager.bundle.combined)
    targets: list[str] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)
    #: a delta (``--base``): its base, and what it leaves out
    delta: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        combined = {"targets": self.targets, "digests": self.digests} if self.targets else {}
        return {
            **combined,
            "target": self.target,
            "delta": self.delta,
            "files": [str(f) for f in self.files],
            "digest": self.digest,
            "size": self.size,
            "blobs": self.blobs,
            "stored_bytes": self.stored_bytes,
            "dedup_saved_bytes": self.dedup_saved,
            "signed_by": self.signed_by,
            "parts": [p.to_json() for p in self.parts],
            "model_signature": {"path": layout.MODEL_SIGNATURE, "keyid": self.model_signature}
            if self.model_signature
            else None,
            "notes": self.notes,
        }


@dataclass
class BuildResult:
    bundles: list[BuiltBundle]
    seconds: float
    lock_path: Path | None
    #: True when this build locked the inputs and wrote ``lock_path`` (there was no lock yet)
    lock_written: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "seconds": round(self.seconds, 3),
            "lock": {
                "path": str(self.lock_path) if self.lock_path is not None else None,
                "written": self.lock_written,
            },
            "bundles": [b.to_json() for b in self.bundles],
        }


def _signing_time() -> int:
    """When the bundle is signed: SOURCE_DATE_EPOCH when set (it stands for "now" in a
    reproducible build), else now."""
    sde = source_date_epoch()
    return sde if sde is not None else int(time.time())


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


def split_note(part_size: int | None) -> str | None:
    """A warning for part sizes that just miss FAT32's largest file (4 GiB - 1 byte), such as
    ``--split 4G``: the last byte of every full part would not fit on the stick."""
    if part_size is None or not layout.FAT32_MAX < part_size <= layout.FAT32_MAX + 1024**2:
        return None
    return (
        f"parts of {part_size} bytes are over FAT32's largest file ({layout.FAT32_MAX} bytes): "
        "a FAT32 stick refuses them; use --split fat32 for FAT32 media"
    )


def carried_trust(path: Path) -> bytes:
    """`--carry-trust POLICY`: the bytes of ``airgap/trust.json``, a signed policy that meets
    its own threshold (a site checks the rest: its own keys' signatures, the version)."""
    import json

    from packager.signing.trust import read_policy

    sp = read_policy(path)
    own = sp.signed_by(sp.policy)
    if len(own) < sp.policy.threshold:
        raise InputError(
            f"{path}: signed by {len(own)} of its own keys, its threshold is "
            f"{sp.policy.threshold}: sites would refuse it",
            hint=f"sign it first: airgap trust sign {path} --key KEY",
        )
    return (json.dumps(sp.to_json(), indent=2, sort_keys=True) + "\n").encode()


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


@dataclass
class _Prepared:
    """One target's bundle, assembled and signed, before it is written."""

    target: str | None
    stem: str
    entries: dict[str, Entry]
    digest: str
    epoch: int
    blobs: int
    stored_bytes: int
    #: bytes not stored twice: content several paths share is one blob (of the whole version,
    #: a delta's left-out blobs included: leaving them out is not deduplication)
    dedup_saved: int
    signed_by: list[str]
    model_signature: str | None
    notes: list[str]
    #: a delta (``--base``): its base, and what it leaves out (BuiltBundle.delta)
    delta: dict[str, Any] | None = None
    #: the model files' blob paths in the lock's order: the archive's first blobs
    first: list[str] = field(default_factory=list)


def build_target(
    manifest: Manifest,
    lock: Lock,
    target: Target,
    *,
    out: Path,
    split: int | None,
    layout_only: bool,
    **prepare: Any,
) -> BuiltBundle:
    """One target's bundle, written (``prepare``: :func:`prepare_target`'s options)."""
    one_pass = prepare.pop("one_pass", None)
    model_write: ModelWrite | None = prepare.pop("model_write", None)
    p = prepare_target(manifest, lock, target, **prepare)
    if model_write is not None:  # the model files, written meanwhile by another process
        one_pass = model_write.joined(p.entries, p.first)  # (build() aborts it on a failure)
    return _write(
        p,
        out=out,
        split=split,
        layout_only=layout_only,
        reporter=prepare["reporter"],
        one_pass=one_pass,
    )


def prepare_target(
    manifest: Manifest,
    lock: Lock,
    target: Target,
    *,
    key: SigningKey | None,
    store: BlobStore,
    probe_payload: dict[str, bytes],
    reporter: Reporter,
    timeout: float,
    all_platforms: bool = False,
    carry_trust: bytes | None = None,
    base: BaseContent | None = None,
    site_kit: bool = False,
    offline: bool = False,
) -> _Prepared:
    locked = lock.target(target.id)
    epoch = _epoch(lock)
    created = format_utc(epoch)
    expires = (
        format_utc(epoch + int(manifest.expires.total_seconds())) if manifest.expires else None
    )

    # a model of many files: its SBOM (a component per file, pure) is made on another core while
    # this one plans the blobs and makes the attestation (forked before the image collection
    # starts its threads)
    sbom = functools.partial(_sbom, manifest, lock, target, created)
    with Forked(sbom, fork=worth_forking(len(lock.model.files))) as made_sbom:
        plan = Plan(target, locked)
        collected = []
        if target.images:  # the image machinery (docker SDK, registry clients) only when needed
            from packager.bundle.images import collect_image

            reporter.phase(f"images{f' [{target.id}]' if target.id else ''}")
            collected = [
                collect_image(
                    img, li, store, timeout=timeout, progress=reporter.advance,
                    all_platforms=all_platforms,
                )
                for img, li in strict_zip(target.images, locked.images)
            ]  # fmt: skip
        plan_model(plan, manifest, lock, created)
        plan_kernels(plan, manifest)
        plan_wheels(plan, _wheel_sources(target, locked))
        plan_files(plan, manifest.base_dir)
        plan_probe(plan, probe_payload)
        kit_notes: list[str] = []
        if site_kit:
            from packager.bundle.site_kit import site_kit as make_kit

            reporter.phase(f"site kit [{target.platform}]")
            kit = make_kit(target.platform, offline=offline)
            plan_site_kit(plan, kit.files)
            kit_notes.append(
                f"site kit for {target.platform}: {len(kit.files)} files, {human_size(kit.size)} "
                f"(sh {layout.SITE_LAUNCHER} BUNDLE COMMAND)"
            )
        plan_images(plan, collected, store)
        # what takes seconds for a model of many files: one SBOM, provenance, descriptor and model
        # signature entry per file (not the kit's phase above: a user sees which step is slow)
        reporter.phase(f"describing and signing{f' [{target.id}]' if target.id else ''}")
        envelope, attested = attestation(
            plan,
            ManifestRef(manifest.name, manifest.version, lock.manifest_digest),
            lock,
            key,
            epoch,
        )
        plan.airgap_files[layout.SBOM] = made_sbom.result()  # made meanwhile (not attested)
        if carry_trust is not None:
            plan.airgap_files[layout.CARRIED_TRUST] = carry_trust
        descriptor = describe(manifest, lock, plan, target, created, expires, attested)
        bundle_json = descriptor_bytes(descriptor, check=True)  # what is signed: the whole version
        digest = sha256_digest(bundle_json)
        written, delta = _delta(descriptor, bundle_json, base)
        entries: dict[str, bytes] = {
            layout.OCI_LAYOUT: layout.OCI_LAYOUT_CONTENT,
            layout.INDEX_JSON: index_json(plan),
            layout.BUNDLE_JSON: written,
            layout.ATTESTATION: envelope,
            **plan.airgap_files,
        }
        signed_by = []
        notes: list[str] = [*kit_notes]
        model_sig: str | None = None
        if key is not None:
            from packager.signing.signature import signature_file_content
            from packager.signing.signing_time import make_record

            entries[layout.signature_path(key.keyid)] = signature_file_content(
                key.sign(bundle_json)
            )
            entries[layout.signing_time_path(key.keyid)] = make_record(key, digest, _signing_time())
            signed_by.append(key.keyid)
            model_sig, note = _model_signature(descriptor, key, entries)
            notes += [note] if note else []
        stem = layout.bundle_stem(manifest.name, manifest.version, target.id)
        content = plan.entries(entries)
        carried = plan.stored_bytes
        if delta is not None:
            assert base is not None
            stem = layout.delta_stem(stem, base.ref.version)
            for d in delta.not_carried:
                del content[layout.blob_path(d)]
            for path in delta.not_carried_files:  # the site kit's wheels its base has installed
                del content[path]
            as_delta = replace(descriptor, delta=delta)
            carried, kit_left_out = carried_bytes(as_delta), not_carried_file_bytes(as_delta)
        return _Prepared(
            target=target.id,
            stem=stem,
            entries=content,
            digest=digest,
            epoch=epoch,
            blobs=len(plan.blobs),
            stored_bytes=carried,
            dedup_saved=plan.logical_bytes - plan.stored_bytes,
            signed_by=signed_by,
            model_signature=model_sig,
            notes=notes,
            delta={
                "base": delta.base.to_json(),
                "not_carried": len(delta.not_carried),
                "not_carried_bytes": plan.stored_bytes - carried,
                "carried_bytes": carried,
                "not_carried_files": len(delta.not_carried_files),
                "not_carried_files_bytes": kit_left_out,
            }
            if delta is not None
            else None,
            first=[layout.blob_path(f"sha256:{f.sha256}") for f in lock.model.files],
        )


def _sbom(manifest: Manifest, lock: Lock, target: Target, created: str) -> bytes:
    """The target's SBOM, as written into the bundle."""
    from packager.bundle.sbom import build_sbom, sbom_bytes

    doc = build_sbom(
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
    return sbom_bytes(doc)  # the dict per file is gone when this returns (peak memory)


def _write(
    p: _Prepared,
    *,
    out: Path,
    split: int | None,
    layout_only: bool,
    reporter: Reporter,
    one_pass: OnePass | None = None,
) -> BuiltBundle:
    """Write a prepared bundle: a tar, parts and their index, or a layout folder; with
    ``one_pass``, finish the tar that already holds the model files."""
    stem = p.stem
    p.notes += [n for n in (split_note(split),) if n]
    reporter.phase(f"writing {stem}", p.stored_bytes - (one_pass.bytes if one_pass else 0))
    parts: list[Part] = []
    if one_pass is not None:
        files, size = one_pass.finish(
            p.entries, epoch=p.epoch, first=p.first, final=out / layout.tar_name(stem),
            reporter=reporter,
        )  # fmt: skip
    elif layout_only:
        files = [write_folder(out / stem, p.entries, reporter.advance, p.epoch)]
        size = p.stored_bytes
    else:
        sink: FileSink | PartsSink
        if split is None:
            sink = FileSink(out / layout.tar_name(stem))
        else:
            sink = PartsSink(out, lambda i: layout.part_name(stem, i), split)
        try:
            with TarWriter(sink, p.epoch) as writer:
                write_entries(writer, p.entries, reporter.advance, first=p.first)
                writer.close()
                size = writer.size
            files = sink.commit()
        except BaseException:
            sink.abort()
            raise
        if isinstance(sink, PartsSink):
            parts = sink.parts
            index_path = out / layout.parts_index_name(stem)
            write_parts_index(index_path, PartsIndex(stem, p.digest, size, tuple(parts)))
            files.append(index_path)
    return BuiltBundle(
        target=p.target,
        stem=stem,
        files=files,
        digest=p.digest,
        size=size,
        blobs=p.blobs,
        stored_bytes=p.stored_bytes,
        dedup_saved=p.dedup_saved,
        signed_by=p.signed_by,
        parts=parts,
        model_signature=p.model_signature,
        notes=p.notes,
        delta=p.delta,
    )


def _combined(
    prepared: list[_Prepared],
    manifest: Manifest,
    *,
    out: Path,
    layout_only: bool,
    reporter: Reporter,
) -> BuiltBundle:
    """One bundle holding every prepared target, shared blobs once (packager.bundle.combined)."""
    from packager.bundle.combined import combine_entries, union_index

    ids = [str(p.target) for p in prepared]
    index = union_index([bytes(p.entries[layout.INDEX_JSON]) for p in prepared])  # type: ignore[arg-type]
    entries = combine_entries({str(p.target): p.entries for p in prepared}, index)
    blobs = {n: e for n, e in entries.items() if layout.digest_of_blob_path(n)}
    stored = sum(len(e) if isinstance(e, bytes) else e.size for e in blobs.values())
    one = _Prepared(
        target=None,
        stem=layout.bundle_stem(manifest.name, manifest.version, "combined"),
        entries=entries,
        digest=prepared[0].digest,  # no digest of its own: each target has its own
        epoch=prepared[0].epoch,
        blobs=len(blobs),
        stored_bytes=stored,
        # each target's own, and what the targets share (stored once here)
        dedup_saved=sum(p.dedup_saved + p.stored_bytes for p in prepared) - stored,
        signed_by=sorted({k for p in prepared for k in p.signed_by}),
        model_signature=prepared[0].model_signature,
        first=prepared[0].first,
        notes=[n for p in prepared for n in p.notes]
        + [
            f"combined: targets {', '.join(ids)} in one bundle; what they share is stored once "
            f"(`airgap install --target ID` installs one)"
        ],
    )
    built = _write(one, out=out, split=None, layout_only=layout_only, reporter=reporter)
    built.targets = ids
    built.digests = {str(p.target): p.digest for p in prepared}
    return built


def _delta(
    descriptor: Descriptor, bundle_json: bytes, base: BaseContent | None
) -> tuple[bytes, DeltaRecord | None]:
    """bundle.json as written: the signed bytes, plus the delta record when there is a base."""
    if base is None:
        return bundle_json, None
    check_base(base, descriptor.name, descriptor.version)
    delta = plan_delta(descriptor.blobs, base, descriptor.files)  # validated, a checked base
    written = descriptor_bytes(replace(descriptor, delta=delta))
    if content_bytes(written) != bundle_json:  # the invariant install and verify rest on
        raise AssertionError("a delta's bundle.json does not reduce to the full one")
    return written, delta


def _model_signature(
    descriptor: Descriptor, key: SigningKey, entries: dict[str, bytes]
) -> tuple[str | None, str | None]:
    """Add airgap/model.sig to ``entries`` when ``key`` can make one: (its keyid, a note)."""
    from packager.bundle import model_signature

    data = model_signature.sign(descriptor, key)
    if data is not None:
        entries[layout.MODEL_SIGNATURE] = data
        return key.keyid, None
    if descriptor.model_signature is None:
        return None, None
    return None, model_signature.NOT_ECDSA.format(algorithm=key.algorithm)


def _lock_for_build(
    manifest: Manifest,
    lock_path: Path,
    locked: bool,
    *,
    cache: StatCache,
    reporter: Reporter,
    offline: bool,
    timeout: float,
    before_write: Callable[[Lock], object] | None = None,
    on_loaded: Callable[[Lock], object] | None = None,
) -> tuple[Lock, bool]:
    """The lock a build uses, as cargo and npm do: the lock beside the manifest when it is there
    and every input still matches it; none there (and not ``--locked``): lock now and write it
    (atomically). A lock of another manifest, or inputs that drifted, stop the build (exit 1)
    naming each one: a build never re-locks silently. Returns (the lock, whether it was written).
    ``on_loaded``: called with a lock that belongs to the manifest, before its inputs are
    checked (a build starts writing the model files then: packager.bundle.onepass.ModelWrite).
    """
    if locked or lock_path.exists():
        lock = load_lock(lock_path)
        try:
            check_lock_belongs(
                manifest, lock, lock_path,
                drift=lambda: find_drift(manifest, lock, cache=cache, offline=offline,
                                         timeout=timeout),
            )  # fmt: skip
        except LockMismatch:
            # a model file that runs code and is not allowed is named first, as validate did
            # before the lock was read (validate leaves the model to the lock for build)
            from packager.resolve.weights import scan_code

            _refuse_errors(scan_code(manifest))
            raise
        if on_loaded is not None:
            on_loaded(lock)
        reporter.phase("checking inputs against the lock")
        drift = find_drift(
            manifest, lock, cache=cache, reporter=reporter, offline=offline, timeout=timeout
        )
        if drift:
            raise LockMismatch(
                f"{len(drift)} input(s) drifted since {lock_path}:\n  "
                + "\n  ".join(str(d) for d in drift),
                hint=f"review the changes, then record them: airgap lock {manifest.path}",
            )
        return lock, False
    result = lock_manifest(
        manifest, cache=cache, reporter=reporter, offline=offline, timeout=timeout
    )
    _refuse_errors(result.findings)
    if before_write is not None:  # a one-pass build's check of what it read (it may raise)
        before_write(result.lock)
    write_lock(result.lock, lock_path)
    return result.lock, True


def _refuse_errors(findings: list[Finding]) -> None:
    """CheckFailed naming every error finding, if there is one."""
    errors = [f for f in findings if f.severity.value == "error"]
    if errors:
        raise CheckFailed(
            "; ".join(f"{f.location}: {f.code} {f.message}" for f in errors),
            hint=errors[0].hint,
        )


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
    carry_trust: bytes | None = None,
    combined: bool = False,
    base: Path | None = None,
    site_kit: bool = False,
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
    bases: dict[str | None, BaseContent] = {}  # the base of each target's delta
    if base is not None:
        from packager.bundle.base import read_bases

        rep.phase(f"reading the base {base}")
        bases = read_bases(base, manifest.name, [t.id for t in targets])
    lock_path = lock_file or lock_path_for(manifest.path)
    one_pass: OnePass | None = None
    model_write: ModelWrite | None = None
    #: one tar per target, whole and full: the builds a tar begun early can serve
    plain = not (combined or layout_only or split is not None or base is not None)
    first_tar = out / layout.tar_name(layout.bundle_stem(manifest.name, manifest.version,
                                                         targets[0].id))  # fmt: skip

    def write_model(lock: Lock) -> None:
        """A build from the lock of a model of many files: its files go into the first target's
        tar from another process while this one checks the inputs and describes the bundle."""
        nonlocal model_write
        if plain and worth_forking(len(lock.model.files)) and can_fork():
            model_write = ModelWrite.start(manifest, lock, first_tar, _epoch(lock))

    with open_stat_cache() as cache:
        if not locked and not lock_path.exists() and plain:
            # a cold build: the model files are read once, into the first target's tar
            # (packager.bundle.onepass); each further target's tar copies them from the lock
            one_pass = OnePass.start(manifest, first_tar, cache=cache, reporter=rep)
        try:
            lock, lock_written = _lock_for_build(
                manifest, lock_path, locked, cache=cache, reporter=rep, offline=offline,
                timeout=timeout, before_write=one_pass.check if one_pass else None,
                on_loaded=write_model if one_pass is None else None,
            )  # fmt: skip
            if one_pass is not None and not one_pass.matches:
                one_pass.abort()
                one_pass = None  # the lock chose other files: write the tar the usual way
        except BaseException:
            if one_pass is not None:
                one_pass.abort()
            if model_write is not None:
                model_write.abort()
            raise
    try:  # a tar begun from the lock is dropped on any failure (aborting twice is harmless)
        _check_allowed_code(manifest, lock)
        from packager.bundle.probe_payload import probe_payload

        common: dict[str, Any] = {
            "key": key, "store": BlobStore(cache_dir() / "blobs"),
            "probe_payload": probe_payload(), "reporter": rep, "timeout": timeout,
            "all_platforms": all_platforms, "carry_trust": carry_trust, "site_kit": site_kit,
            "offline": offline,
        }  # fmt: skip
        if combined:
            if base is not None:
                raise InputError(
                    "--combined and --base: a delta of a combined bundle is not made yet"
                )
            if len(targets) < 2:
                raise InputError(
                    "--combined puts several targets into one bundle: the manifest (or --target) "
                    f"selects {len(targets)}",
                    hint="use it with a manifest that has `targets:` of two or more",
                )
            if split is not None:
                raise InputError(
                    "--combined cannot be split into parts yet",
                    hint="build it whole, or build one bundle per target with --split",
                )
            prepared = [prepare_target(manifest, lock, t, **common) for t in targets]
            one = _combined(prepared, manifest, out=out, layout_only=layout_only, reporter=rep)
            return BuildResult([one], time.perf_counter() - t0, lock_path, lock_written)
        bundles = [
            build_target(
                manifest, lock, t, out=out, split=split, layout_only=layout_only,
                one_pass=one_pass if i == 0 else None, base=bases.get(t.id),
                model_write=model_write if i == 0 else None, **common,
            )
            for i, t in enumerate(targets)
        ]  # fmt: skip
        return BuildResult(bundles, time.perf_counter() - t0, lock_path, lock_written)
    except BaseException:
        for begun in (one_pass, model_write):
            if begun is not None:
                begun.abort()
        raise


def _check_allowed_code(manifest: Manifest, lock: Lock) -> None:
    """Every model file that runs code at load time is in model.allow_code (AG701): a lock made
    before the list changed is judged by the manifest given now."""
    from packager.compat.load_code import allow_code_snippet, code_files
    from packager.errors import CheckFailed

    found = code_files(
        ((f.path, f.sha256, f.size, f.runs_code) for f in lock.model.files),
        manifest.model.allow_code,
    )
    blocked = [f for f in found if not f.allowed]
    if blocked:
        raise CheckFailed(
            f"{len(blocked)} model file(s) run code at load time and are not in "
            "model.allow_code (AG701): "
            + "; ".join(f"{f.path} ({f.kind}) sha256 {f.sha256}" for f in blocked),
            hint="review them; to carry them, list their digests: "
            + allow_code_snippet(f.sha256 for f in blocked),
        )
