"""`airgap lock`: resolve every input of a manifest once, to content; and check a lock later.

A lock belongs to one manifest: it records the sha256 of the manifest's canonical JSON (so
comments and layout do not matter, every value does). ``check_lock`` re-resolves the inputs and
names each one whose content drifted; `airgap build --locked` refuses to build then.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packager import __version__
from packager.errors import AirgapError, InputError, LockMismatch
from packager.findings import Finding, has_errors
from packager.manifest.model import Image, Manifest, Target
from packager.resolve.files import install_dest, resolve_files, resolve_kernels
from packager.resolve.lockfile import Lock, LockedFile, LockedImage, LockedTarget, LockedWheel
from packager.resolve.statcache import StatCache
from packager.resolve.weights import resolve_weights
from packager.resolve.wheels import target_python
from packager.util.cache import cache_dir
from packager.util.compat import strict_zip
from packager.util.fs import atomic_write_text
from packager.util.jsonio import canonical_json, indented_json, read_json_bounded
from packager.util.progress import Reporter
from packager.util.schemacheck import conforms
from packager.util.schemas import validate, validator
from packager.util.timefmt import format_utc, source_date_epoch

if TYPE_CHECKING:
    import jsonschema

MAX_LOCK_BYTES = 64 * 1024 * 1024
#: pip may download GBs of wheels (torch): a wall-clock limit per pip run, not per request
WHEELS_TIMEOUT = 3600.0


def lock_path_for(manifest_path: Path) -> Path:
    """``qwen.yaml`` -> ``qwen.lock.json``, beside the manifest."""
    return manifest_path.with_name(manifest_path.stem + ".lock.json")


def manifest_digest(manifest: Manifest) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(manifest.document.data)).hexdigest()


def created_time() -> str:
    """RFC 3339 UTC, from SOURCE_DATE_EPOCH when set (reproducible builds), else now."""
    sde = source_date_epoch()
    return format_utc(sde if sde is not None else time.time())


def open_stat_cache(enabled: bool = True) -> StatCache:
    return StatCache(cache_dir() / "stat-cache.sqlite" if enabled else None)


@dataclass
class LockResult:
    lock: Lock
    findings: list[Finding] = field(default_factory=list)
    hashed_bytes: int = 0
    cache_hits: int = 0
    cache_misses: int = 0

    def summary_json(self) -> dict[str, Any]:
        lk = self.lock
        st = lk.model.safetensors
        return {
            "manifest_digest": lk.manifest_digest,
            "model": {
                "files": len(lk.model.files),
                "size": lk.model.size,
                "parameters": st.parameters if st else None,
                "dtypes": st.dtypes if st else None,
            },
            "targets": [
                {
                    "id": t.id,
                    "platform": t.platform,
                    "images": len(t.images),
                    "wheels": len(t.wheels),
                    "files": len(t.files),
                    "kernels": len(t.kernels),
                }
                for t in lk.targets
            ],
            "hashed_bytes": self.hashed_bytes,
            "stat_cache": {"hits": self.cache_hits, "misses": self.cache_misses},
        }


def _image_key(image: Image, platform: str) -> tuple[str, str, str, str]:
    return (image.ref, image.source, str(image.path), platform)


def resolve_target_images(
    target: Target, memo: dict[tuple[str, str, str, str], LockedImage], timeout: float
) -> tuple[LockedImage, ...]:
    if not target.images:
        return ()
    from packager.resolve.images import resolve_image

    out = []
    for image in target.images:
        key = _image_key(image, target.platform)
        if key not in memo:
            memo[key] = resolve_image(image, target.platform, timeout=timeout)
        out.append(memo[key])
    return tuple(out)


def resolve_target_wheels(target: Target, offline: bool, timeout: float) -> tuple[LockedWheel, ...]:
    if target.wheels is None:
        return ()
    from packager.resolve.wheels import resolve_wheels

    return resolve_wheels(
        target.wheels,
        target.platform,
        cache_dir=cache_dir(),
        offline=offline,
        timeout=timeout,
    )


def lock_manifest(
    manifest: Manifest,
    *,
    cache: StatCache,
    reporter: Reporter | None = None,
    offline: bool = False,
    timeout: float = 30.0,
) -> LockResult:
    """Resolve the model once and every target's images, wheels, files and kernels."""
    rep = reporter or Reporter()
    hashed = 0

    def advance(n: int) -> None:
        nonlocal hashed
        hashed += n
        rep.advance(n)

    rep.phase("hashing weights")
    model, findings = resolve_weights(manifest, cache, advance, rep.set_total)
    memo: dict[tuple[str, str, str, str], LockedImage] = {}
    targets = []
    for t in manifest.targets:
        label = f" [{t.id}]" if t.id else ""
        rep.phase(f"files and kernels{label}")
        files, dirs = resolve_files(manifest, t.files, cache, advance)
        kernels = resolve_kernels(manifest, t.kernels, cache, advance)
        if t.images:
            rep.phase(f"images{label}")
        images = resolve_target_images(t, memo, timeout)
        if t.wheels:
            rep.phase(f"wheels{label}")
        wheels = resolve_target_wheels(t, offline, WHEELS_TIMEOUT)
        targets.append(
            LockedTarget(
                id=t.id,
                platform=t.platform,
                images=images,
                wheels=wheels,
                python=target_python(t.wheels) if t.wheels else None,
                files=files,
                kernels=kernels,
                dirs=dirs,
            )
        )
    lock = Lock(
        manifest_name=manifest.name,
        manifest_version=manifest.version,
        manifest_digest=manifest_digest(manifest),
        tool=f"airgap {__version__}",
        created=created_time(),
        model=model,
        targets=tuple(targets),
        findings=tuple(f.to_json() for f in findings),
    )
    return LockResult(lock, findings, hashed - cache.hit_bytes, cache.hits, cache.misses)


def write_lock(lock: Lock, path: Path) -> None:
    doc = lock.to_json()
    validate("lock", doc)  # what we write must follow our own schema
    text = indented_json(doc, sort_keys=False, ensure_ascii=True, allow_nan=True)  # json.dumps's
    atomic_write_text(path, text + "\n")


def load_lock(path: Path) -> Lock:
    """Read and schema-check a lock file; InputError naming the file and the JSON path."""
    doc = read_json_bounded(
        path,
        MAX_LOCK_BYTES,
        what="lock file",
        missing_hint="run `airgap lock MANIFEST` (again) to write it",
    )
    errors = (
        []
        if conforms("lock", doc)
        else sorted(validator("lock").iter_errors(doc), key=lambda e: list(e.absolute_path))
    )
    if errors:
        e = errors[0]
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
        raise InputError(
            f"{path}: not a valid airgap lock at {where}: {_short(e)}",
            hint="re-run `airgap lock` to write it again",
        )
    return Lock.from_json(doc)


def _short(e: jsonschema.ValidationError) -> str:
    return e.message if len(e.message) < 200 else e.message[:200] + "..."


# ----------------------------------------------------------------------------- drift


@dataclass(frozen=True)
class Drift:
    """One input whose content is no longer what the lock recorded."""

    kind: str  # model | file | kernel | image | wheels
    name: str
    locked: str
    now: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "locked": self.locked, "now": self.now}

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: locked {self.locked}, now {self.now}"


def check_lock_belongs(
    manifest: Manifest,
    lock: Lock,
    lock_path: Path,
    *,
    drift: Callable[[], list[Drift]] | None = None,
) -> None:
    """LockMismatch unless ``lock`` was made from this manifest as it is now, naming what
    changed; for a change the lock keeps no record of, ``drift`` (the inputs that now differ
    from the lock, such as the model files another include pattern selects) names its effect."""
    if lock.manifest_name != manifest.name:
        raise LockMismatch(
            f"{lock_path} was made from another manifest ({lock.manifest_name} "
            f"{lock.manifest_version}), not {manifest.name} {manifest.version}",
            hint=f"lock this manifest: airgap lock {manifest.path}",
        )
    if lock.manifest_digest != manifest_digest(manifest):
        changes = manifest_changes(manifest, lock)
        if changes == [UNRECORDED_CHANGE] and drift is not None:
            with contextlib.suppress(AirgapError):  # a manifest that does not resolve: as it is
                changes += [f"input {d}" for d in drift()]
        listed = "".join(f"\n  - {c}" for c in changes)
        raise LockMismatch(
            f"{manifest.path} changed since {lock_path} was made:{listed}",
            hint=f"review the change, then lock again: airgap lock {manifest.path}",
        )


def _set_change(what: str, before: set[str], after: set[str]) -> list[str]:
    out = [f"{what} {x} added" for x in sorted(after - before)]
    return out + [f"{what} {x} removed" for x in sorted(before - after)]


def _source_of(manifest: Manifest) -> str:
    src = manifest.model.source
    if src.huggingface is not None:
        return f"{src.huggingface.repo}@{src.huggingface.revision}"
    assert src.path is not None
    return os.path.relpath(src.path, manifest.base_dir).replace(os.sep, "/")


def _source_change(manifest: Manifest, lock: Lock) -> list[str]:
    s = lock.model.source
    was = f"{s['huggingface']}@{s.get('revision')}" if "huggingface" in s else s.get("path", "?")
    now = _source_of(manifest)
    return [] if was == now else [f"model.source: locked {was}, now {now}"]


#: what :func:`manifest_changes` says when nothing the lock records of the manifest changed
UNRECORDED_CHANGE = (
    "a setting the lock keeps no record of (accelerator, stack, precision, include patterns, "
    "smoke, serve or another field): compare the manifest with the version you locked"
)


def manifest_changes(manifest: Manifest, lock: Lock) -> list[str]:
    """What of the manifest differs from what the lock recorded of it (pure): the version, the
    model's source, targets, and per target its platform, images, files, kernels and Python. A
    change the lock keeps no record of (accelerator, stack, smoke, serve, comments aside) is
    named as such."""
    out: list[str] = []
    if lock.manifest_version != manifest.version:
        out.append(f"metadata.version: locked {lock.manifest_version}, now {manifest.version}")
    m, lm = manifest.model, lock.model
    if lm.name != m.name:
        out.append(f"model.name: locked {lm.name}, now {m.name}")
    if lm.format != m.format:
        out.append(f"model.format: locked {lm.format}, now {m.format}")
    out += _source_change(manifest, lock)
    locked = {t.id or "target": t for t in lock.targets}
    current = {t.id or "target": t for t in manifest.targets}
    out += _set_change("target", set(locked), set(current))
    for tid in sorted(locked.keys() & current.keys()):
        lt, t = locked[tid], current[tid]
        where = "target" if tid == "target" else f"targets.{tid}"
        if lt.platform != t.platform:
            out.append(f"{where}.platform: locked {lt.platform}, now {t.platform}")
        out += _set_change(f"{where}: image", {i.ref for i in lt.images}, {i.ref for i in t.images})
        out += _set_change(
            f"{where}: file",
            {f.dest or f.path for f in lt.files},
            {install_dest(e) for e in t.files},
        )
        out += _set_change(
            f"{where}: kernel", {k.name for k in lt.kernels}, {k.name for k in t.kernels}
        )
        python = t.wheels.python if t.wheels is not None else None
        if lt.wheels and python is not None and lt.python != python:
            out.append(f"{where}.runtime.wheels.python: locked {lt.python}, now {python}")
    return out or [UNRECORDED_CHANGE]


def _files_drift(
    kind: str, locked: tuple[LockedFile, ...], now: tuple[LockedFile, ...]
) -> list[Drift]:
    out = []
    before = {f.path: f for f in locked}
    after = {f.path: f for f in now}
    for p in sorted(before.keys() | after.keys()):
        b, a = before.get(p), after.get(p)
        if b is None:
            out.append(Drift(kind, p, "absent", f"sha256:{a.sha256}" if a else "absent"))
        elif a is None:
            out.append(Drift(kind, p, f"sha256:{b.sha256}", "absent"))
        elif (a.sha256, a.size) != (b.sha256, b.size):
            out.append(Drift(kind, p, f"sha256:{b.sha256}", f"sha256:{a.sha256}"))
        elif a.executable != b.executable:
            modes = ("executable", "not executable")
            out.append(Drift(kind, p, modes[not b.executable], modes[not a.executable]))
    return out


def _signature_drift(before: Lock, after: Lock) -> list[Drift]:
    """The publisher's model signature file, when it changed (it verified again, or lock
    stopped before this)."""
    b, a = before.model.signature, after.model.signature
    if (b.sha256 if b else None) == (a.sha256 if a else None):
        return []
    either = b or a
    path = either.path if either is not None else "model.sig"
    return [
        Drift(
            "publisher signature",
            path,
            f"sha256:{b.sha256}" if b else "absent",
            f"sha256:{a.sha256}" if a else "absent",
        )
    ]


def find_drift(
    manifest: Manifest,
    lock: Lock,
    *,
    cache: StatCache,
    reporter: Reporter | None = None,
    offline: bool = False,
    timeout: float = 30.0,
) -> list[Drift]:
    """Every input whose content differs from the lock (resolution errors propagate)."""
    current = lock_manifest(
        manifest, cache=cache, reporter=reporter, offline=offline, timeout=timeout
    ).lock
    drift = _files_drift("model", lock.model.files, current.model.files)
    drift += _signature_drift(lock, current)
    for before, after in strict_zip(lock.targets, current.targets):
        drift += _files_drift("file", before.files, after.files)
        for d in sorted(set(before.dirs) ^ set(after.dirs)):
            was = "an empty folder" if d in before.dirs else "absent"
            drift.append(
                Drift("folder", d, was, "absent" if d in before.dirs else "an empty folder")
            )
        drift += _files_drift(
            "kernel",
            tuple(k.file for k in before.kernels)
            + tuple(t for k in before.kernels for t in k.tests),
            tuple(k.file for k in after.kernels) + tuple(t for k in after.kernels for t in k.tests),
        )
        for b, a in strict_zip(before.images, after.images):
            if b.content_digest != a.content_digest:
                drift.append(Drift("image", b.ref, b.content_digest, a.content_digest))
        bw = {(w.filename, w.sha256) for w in before.wheels}
        aw = {(w.filename, w.sha256) for w in after.wheels}
        for name, sha in sorted(bw - aw):
            now = next((f"{f} sha256:{s}" for f, s in aw - bw if f == name), "absent")
            drift.append(Drift("wheels", name, f"sha256:{sha}", now))
        for name, sha in sorted(aw - bw):
            if name not in {f for f, _ in bw}:
                drift.append(Drift("wheels", name, "absent", f"sha256:{sha}"))
    return drift


@dataclass(frozen=True)
class LockReport:
    """`airgap lock`: the lock made, where it went, whether it was written (no error findings)."""

    path: Path
    result: LockResult
    written: bool

    @property
    def ok(self) -> bool:
        return self.written

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.written,
            "lock": str(self.path),
            "written": self.written,
            "summary": self.result.summary_json(),
            "findings": [f.to_json() for f in self.result.findings],
        }


@dataclass(frozen=True)
class DriftReport:
    """`airgap lock --check`: every input whose content is no longer what the lock says."""

    path: Path
    drift: list[Drift]

    @property
    def ok(self) -> bool:
        return not self.drift

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "lock": str(self.path), "drift": [d.to_json() for d in self.drift]}


def lock_command(
    manifest: Manifest,
    path: Path,
    *,
    check: bool = False,
    use_cache: bool = True,
    reporter: Reporter | None = None,
    offline: bool = False,
    timeout: float = 30.0,
) -> LockReport | DriftReport:
    """`airgap lock`: resolve every input and write the lock at ``path`` (unless a finding is
    an error); with ``check``, re-resolve and name each input that drifted since that lock."""
    existing = load_lock(path) if check else None
    with open_stat_cache(use_cache) as cache:
        if existing is not None:
            check_lock_belongs(
                manifest, existing, path,
                drift=lambda: find_drift(manifest, existing, cache=cache, offline=offline,
                                         timeout=timeout),
            )  # fmt: skip
            drift = find_drift(
                manifest, existing, cache=cache, reporter=reporter, offline=offline, timeout=timeout
            )
            return DriftReport(path, drift)
        result = lock_manifest(
            manifest, cache=cache, reporter=reporter, offline=offline, timeout=timeout
        )
    written = not has_errors(result.findings)
    if written:
        write_lock(result.lock, path)
    return LockReport(path, result, written)
