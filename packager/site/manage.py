"""`airgap list`, `uninstall`, `rollback` and `gc` on an install prefix.

Each one that changes the prefix holds its lock, recovers interrupted operations first
(:meth:`packager.site.prefix.Prefix.recover`), records what it did in the audit log, and is
crash-safe the same way install is: a version stops being installed when its receipt is moved
out (into a staging folder whose journal names it), then its folder follows.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.bundle.pull import remove_stale
from packager.errors import CheckFailed
from packager.site import auditlog
from packager.site import receipts as receipts_mod
from packager.site.prefix import Prefix, step
from packager.site.rules import compare_versions, component_problem, newest
from packager.site.safefs import Dir, SiteError
from packager.site.store import BlobStore
from packager.util.progress import Reporter


class NotInstalled(SiteError):
    """A name or version the prefix does not hold."""


class Refused(CheckFailed):
    """An operation that would leave the prefix in a state nobody asked for."""


def _check_name(name: str) -> None:
    bad = component_problem(name, "the bundle name")
    if bad:
        raise SiteError(bad)


def _prepare(prefix: Prefix) -> list[str]:
    return prefix.prepare()


def installed_unit(prefix_path: Path, name: str, target: str | None = None) -> str:
    """What ``name`` (and ``--target``) mean under ``prefix_path`` (Prefix.unit): NAME, or
    NAME+TARGET; ``name`` as it is when there is no such prefix (the caller says so)."""
    if not prefix_path.is_dir():
        return name if target is None else layout.site_unit(name, target)
    with Prefix.open(prefix_path, create=False) as prefix:
        return prefix.unit(name, target)


def probe_args(args: list[str]) -> list[str]:
    """`airgap probe` arguments with ``--installed NAME [--target T]`` made the installed
    bundle's folder name (NAME+TARGET where NAME is installed for several targets): the probe
    that ships in bundles reads ``PREFIX/bundles/<that>/current``."""
    opts: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        flag, eq, value = a.partition("=")
        if flag in ("--installed", "--prefix", "--target"):
            if not eq:
                if i + 1 >= len(args):
                    rest.append(a)
                    break
                value = args[i + 1]
                i += 1
            opts[flag] = value
            if flag != "--target":
                rest += [flag, value]
        else:
            rest.append(a)
        i += 1
    if "--installed" not in opts:
        if "--target" in opts:
            raise SiteError("--target goes with --installed NAME --prefix DIR")
        return args
    _check_name(opts["--installed"])
    unit = installed_unit(
        Path(opts.get("--prefix", ".")), opts["--installed"], opts.get("--target")
    )
    at = rest.index("--installed")
    rest[at + 1] = unit
    return rest


# ----------------------------------------------------------------------------- list


@dataclass
class InstalledVersion:
    receipt: receipts_mod.Receipt
    current: bool

    def to_json(self) -> dict[str, Any]:
        r = self.receipt
        return {
            "version": r.version,
            "current": self.current,
            "digest": r.digest,
            "target": r.target,
            "installed": r.installed,
            "signers": r.signers,
            "files": len(r.files),
            "bytes": r.size,
            "images": r.image_places(),
        }


@dataclass
class SiteListing:
    prefix: Path
    bundles: dict[str, list[InstalledVersion]] = field(default_factory=dict)
    current: dict[str, str | None] = field(default_factory=dict)
    store_blobs: int = 0
    store_bytes: int = 0
    unreferenced_bytes: int = 0
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": str(self.prefix),
            "bundles": [
                {
                    "name": name,
                    "current": self.current.get(name),
                    "versions": [v.to_json() for v in versions],
                }
                for name, versions in self.bundles.items()
            ],
            "store": {
                "blobs": self.store_blobs,
                "bytes": self.store_bytes,
                "unreferenced_bytes": self.unreferenced_bytes,
            },
            "problems": self.problems,
        }


def list_installed(prefix_path: Path) -> SiteListing:
    out = SiteListing(prefix_path)
    with Prefix.open(prefix_path, create=False) as prefix, prefix.locked(exclusive=False):
        everything, out.problems = receipts_mod.read_all(prefix.root)
        for name in sorted(everything):
            try:
                cur = prefix.current(name)
            except SiteError as exc:
                out.problems.append(exc.message)
                cur = None
            out.current[name] = cur
            versions = sorted(everything[name], key=_version_key)
            out.bundles[name] = [InstalledVersion(everything[name][v], v == cur) for v in versions]
        used = {b for vs in everything.values() for r in vs.values() for b in r.blobs}
        store_dir = prefix.sub(layout.SITE_BLOBS_DIR)
        if store_dir is not None:
            with store_dir:
                for n in store_dir.names():
                    st = store_dir.lstat(n)
                    size = st.st_size if st is not None else 0
                    out.store_blobs += 1
                    out.store_bytes += size
                    if n not in used:
                        out.unreferenced_bytes += size
    return out


def _version_key(v: str) -> Any:
    import functools

    return functools.cmp_to_key(compare_versions)(v)


# ----------------------------------------------------------------------------- uninstall


@dataclass
class UninstallResult:
    prefix: Path
    name: str
    removed: list[str]
    current_before: str | None
    current_after: str | None
    freeable_bytes: int
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": str(self.prefix),
            "name": self.name,
            "removed": self.removed,
            "current_before": self.current_before,
            "current_after": self.current_after,
            "freeable_bytes": self.freeable_bytes,
            "notes": self.notes,
        }


def installed_versions(prefix_path: Path, name: str, target: str | None = None) -> list[str]:
    """The installed versions of ``name`` (of ``target``, or NAME+TARGET), oldest first
    (:class:`NotInstalled` when none)."""
    _check_name(name)
    with Prefix.open(prefix_path, create=False) as prefix:
        name = prefix.unit(name, target)
        installed = prefix.installed(name)
    if not installed:
        raise NotInstalled(f"{name} is not installed under {prefix_path}")
    return sorted(installed, key=_version_key)


def uninstall(
    prefix_path: Path,
    name: str,
    version: str | None = None,
    *,
    target: str | None = None,
    reporter: Reporter | None = None,
) -> UninstallResult:
    """Remove ``version`` of ``name`` (not the current one), or every version (and ``current``).
    ``target``: which target's, where several are installed (NAME+TARGET says it too).
    Blobs stay in the store until `airgap gc`."""
    _check_name(name)
    with Prefix.open(prefix_path, create=False) as prefix, prefix.locked(reporter=reporter):
        notes = _prepare(prefix)
        name = prefix.unit(name, target)
        installed = prefix.installed(name)
        current = prefix.current(name)
        if not installed and current is None:
            raise NotInstalled(f"{name} is not installed under {prefix_path}")
        if version is not None:
            if version not in installed:
                raise NotInstalled(
                    f"{name} {version} is not installed under {prefix_path}",
                    hint=f"installed: {', '.join(sorted(installed, key=_version_key)) or 'none'}",
                )
            if version == current:
                raise Refused(
                    f"{name} {version} is the current version: not removed",
                    hint=f"roll back first (airgap rollback {name}), or remove every version "
                    f"(airgap uninstall {name})",
                )
            versions = [version]
        else:
            versions = sorted(installed, key=_version_key)
        staging, sname = prefix.new_staging({"op": "uninstall", "name": name, "versions": versions})
        try:
            with staging, contextlib.ExitStack() as opened:
                if version is None:
                    prefix.switch_current(name, None)
                rd, bd = prefix.receipts(), prefix.bundles()
                for d in (rd, bd):
                    if d is not None:
                        opened.callback(d.close)
                for v in versions:
                    # the receipt first: from then on the version is not installed; its folder
                    # follows (the journal names it, should this stop in between)
                    for top, entry, moved in ((rd, layout.receipt_name(v), f"receipt-{v}"),
                                              (bd, v, f"tree-{v}")):  # fmt: skip
                        nd = top.maybe_sub(name) if top is not None else None
                        if nd is None:
                            continue
                        with nd:
                            if nd.kind(entry) is not None:
                                nd.rename(entry, staging, moved)
                                nd.fsync()
                                step()
                if version is None:
                    for d in (rd, bd):
                        if d is not None and d.kind(name) == "dir":
                            _rmdir_if_empty(d, name)
        finally:
            notes += prefix.discard_staging(sname)
        for v in versions:
            auditlog.append(
                prefix.root, "uninstall", name, v, installed[v].digest,
                f"removed; current: {current or 'none'} -> "
                f"{current if version is not None else 'none'}",
            )  # fmt: skip
        gone = {f.sha256: f.size for v in versions for f in installed[v].files if f.blob}
        everything, _ = receipts_mod.read_all(prefix.root)
        still = {b for vs in everything.values() for r in vs.values() for b in r.blobs}
        freeable = sum(size for h, size in gone.items() if h not in still)
    return UninstallResult(
        prefix_path, name, versions, current, current if version is not None else None,
        freeable, notes,
    )  # fmt: skip


def _rmdir_if_empty(d: Dir, name: str) -> None:
    with contextlib.suppress(OSError):  # not empty: something else is in there; leave it
        os.rmdir(name, dir_fd=d.fd)


# ----------------------------------------------------------------------------- rollback


@dataclass
class RollbackResult:
    prefix: Path
    name: str
    previous: str
    current: str
    digest: str
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": str(self.prefix),
            "name": self.name,
            "from": self.previous,
            "to": self.current,
            "digest": self.digest,
            "notes": self.notes,
        }


def rollback(
    prefix_path: Path,
    name: str,
    *,
    target: str | None = None,
    reporter: Reporter | None = None,
) -> RollbackResult:
    """Make the newest installed version older than the current one current (an explicit
    choice, so anti-rollback does not apply). ``target``: which target's, where several are
    installed (NAME+TARGET says it too)."""
    _check_name(name)
    with Prefix.open(prefix_path, create=False) as prefix, prefix.locked(reporter=reporter):
        notes = _prepare(prefix)
        name = prefix.unit(name, target)
        installed = prefix.installed(name)
        current = prefix.current(name)
        if current is None:
            raise NotInstalled(f"{name} has no current version under {prefix_path}")
        older = [v for v in installed if compare_versions(v, current) < 0]
        target = newest(older)
        if target is None:
            raise NotInstalled(
                f"{name}: no installed version older than the current {current} to roll back to",
                hint=f"installed: {', '.join(sorted(installed, key=_version_key))}",
            )
        prefix.switch_current(name, target)
        auditlog.append(
            prefix.root, "rollback", name, target, installed[target].digest,
            f"current: {current} -> {target} (rollback)",
        )  # fmt: skip
    return RollbackResult(prefix_path, name, current, target, installed[target].digest, notes)


# ----------------------------------------------------------------------------- gc


@dataclass
class GcResult:
    prefix: Path
    removed: int
    removed_bytes: int
    kept: int
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": str(self.prefix),
            "removed": self.removed,
            "removed_bytes": self.removed_bytes,
            "kept": self.kept,
            "notes": self.notes,
        }


def gc(prefix_path: Path, *, reporter: Reporter | None = None) -> GcResult:
    """Remove every blob of the store that no receipt references (and leftovers of
    interrupted operations, pulls from a registry included)."""
    with Prefix.open(prefix_path, create=False) as prefix, prefix.locked(reporter=reporter):
        notes = _prepare(prefix)
        notes += remove_stale(prefix_path / layout.SITE_PULL_DIR)
        everything, problems = receipts_mod.read_all(prefix.root)
        if problems:
            raise SiteError(
                "cannot tell which blobs are in use: " + "; ".join(problems),
                hint="`airgap audit --site` shows the damage; nothing was removed",
            )
        used = {b for vs in everything.values() for r in vs.values() for b in r.blobs}
        removed = removed_bytes = kept = 0
        if prefix.sub(layout.SITE_BLOBS_DIR) is not None:
            store = BlobStore(prefix.root, create=False)
            try:
                for n in store.names():
                    if n in used:
                        kept += 1
                        continue
                    removed_bytes += store.size_of(n)
                    store.dir.unlink(n)
                    removed += 1
                    step()
                store.dir.fsync()
            finally:
                store.close()
        auditlog.append(
            prefix.root, "gc", None, None, None,
            f"removed {removed} unreferenced blob(s), {removed_bytes} bytes; kept {kept}",
        )  # fmt: skip
    return GcResult(prefix_path, removed, removed_bytes, kept, notes)
