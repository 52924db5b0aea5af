"""`airgap repair --prefix DIR [NAME] [--bundle B]`: put installed versions back as installed.

Each installed version is judged by its signed bundle.json (the one whose digest the receipt
and the hash-chained audit log recorded; packager.site.repair_rules): every file that is
missing, was replaced (a link, a folder, another file), changed, or lost its read-only mode is
restored. Content comes only from bytes that hash to the signed sha256: the store's blob
(re-hashed), an intact installed copy of the same blob, or, for blobs the site no longer holds
intact, from a bundle given with ``--bundle`` (verified first against the trust policy, as
install does; only the blobs needed are read, each hashed while copied and refused unless it
is the signed digest). An edited or missing bundle.json and the other ``.airgap/`` files come
only from a verified bundle of the installed digest.

Every file is written under a temporary name in its folder and renamed over what was there;
read-only modes are restored; the prefix's lock is held throughout; each repaired version gets
an audit log entry. Files that are not part of a version (extra) are named, never deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.bundle.descriptor import Descriptor, parse_descriptor
from packager.bundle.errors import DescriptorError
from packager.bundle.reader import FolderBundle, TarBundle
from packager.bundle.verifier import Verifier
from packager.errors import InputError
from packager.signing.trust import Policy
from packager.site import auditlog
from packager.site import trust as site_trust
from packager.site.prefix import Prefix
from packager.site.receipts import InstalledFile, Receipt
from packager.site.repair_rules import (
    ABSENT,
    Fix,
    Seen,
    Source,
    Verdict,
    judge_path,
    pick_source,
    store_fix,
    trusted_descriptor,
)
from packager.site.rules import component_problem, signed_files
from packager.site.safefs import (
    CONTENT_DIR_MODE,
    CONTENT_FILE_MODE,
    DIR_MODE,
    FILE_MODE,
    Dir,
    SiteError,
    kind_of,
    walk_files,
)
from packager.site.store import BlobStore, ContentMismatch, Span
from packager.util.hashing import sha256_unchanged
from packager.util.progress import Reporter

_BUNDLE_HINT = "give --bundle B, the bundle this version was installed from (verified first)"
_Key = tuple[int, int, int, int]


def _key(st: os.stat_result) -> _Key:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


# ----------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class PathRepair:
    path: str  # in the version folder (or the store's blob name)
    problem: str
    fix: str  # "restored" | "mode" | "not repaired"
    source: str | None = None  # where the content came from (a Source, or "folder")
    hint: str | None = None  # for one not repaired: what would repair it

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "problem": self.problem,
            "fix": self.fix,
            "source": self.source,
            "hint": self.hint,
        }


@dataclass
class VersionRepair:
    name: str
    version: str
    files: int = 0
    repaired: list[PathRepair] = field(default_factory=list)
    unrepaired: list[PathRepair] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "files": self.files,
            "repaired": [r.to_json() for r in self.repaired],
            "unrepaired": [r.to_json() for r in self.unrepaired],
            "extra": self.extra,
        }


@dataclass
class RepairResult:
    prefix: Path
    bundle: Path | None = None
    bundle_digest: str | None = None
    versions: list[VersionRepair] = field(default_factory=list)
    store: list[PathRepair] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hashed_bytes: int = 0
    seconds: float = 0.0

    @property
    def unrepaired(self) -> list[tuple[VersionRepair, PathRepair]]:
        return [(v, r) for v in self.versions for r in v.unrepaired]

    @property
    def ok(self) -> bool:
        return not (self.problems or self.unrepaired or any(v.extra for v in self.versions))

    @property
    def verdict(self) -> str:
        if not self.ok:
            return "incomplete"
        done = self.store or any(v.repaired for v in self.versions)
        return "repaired" if done else "intact"

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    @property
    def needs_bundle(self) -> bool:
        """Something is not repaired and no bundle was given (the hint names --bundle)."""
        return self.bundle is None and bool(self.unrepaired)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "prefix": str(self.prefix),
            "bundle": str(self.bundle) if self.bundle is not None else None,
            "bundle_digest": self.bundle_digest,
            "versions": [v.to_json() for v in self.versions],
            "store": [r.to_json() for r in self.store],
            "problems": self.problems,
            "notes": self.notes,
            "hashed_bytes": self.hashed_bytes,
            "seconds": round(self.seconds, 3),
        }


# ----------------------------------------------------------------------------- looking


@dataclass
class _Found:
    """One regular file seen (in a version folder or the store), by where it is."""

    folder: str  # relative to the prefix
    rel: str  # relative to ``folder``
    st: os.stat_result


class _Hasher:
    """sha256 of files by (device, inode, size, mtime): each inode is read once."""

    def __init__(self, root: Dir) -> None:
        self.root = root
        self.cache: dict[_Key, str | None] = {}
        self.bytes = 0

    def _one(self, found: _Found) -> str | None:
        try:
            with self.root.walk(found.folder) as d:
                parent, _, leaf = found.rel.rpartition("/")
                with d.walk(parent) as pd:
                    fd = pd.open_read(leaf)
        except (OSError, SiteError):
            return None
        return sha256_unchanged(fd, _key, _key(found.st))  # None: replaced while we looked

    def hash_all(self, found: list[_Found]) -> None:
        todo: dict[_Key, _Found] = {}
        for f in found:
            if _key(f.st) not in self.cache:
                todo.setdefault(_key(f.st), f)
        with ThreadPoolExecutor(min(8, max(2, os.cpu_count() or 2))) as pool:
            for k, digest in zip(todo, pool.map(self._one, todo.values())):
                self.cache[k] = digest
        self.bytes += sum(f.st.st_size for f in todo.values())

    def seen(self, st: os.stat_result | None) -> Seen:
        if st is None:
            return ABSENT
        kind = kind_of(st.st_mode)
        if kind != "file":
            return Seen(kind)
        return Seen(kind, st.st_size, st.st_mode & 0o7777, self.cache.get(_key(st)))


@dataclass
class _Version:
    """One installed version in the repair's scope."""

    name: str
    version: str
    receipt: Receipt
    report: VersionRepair
    raw: bytes | None = None  # the trusted bundle.json
    raw_from_bundle: bool = False
    raw_why: str = ""  # why the installed bundle.json is not the one (when from the bundle)
    doc: Descriptor | None = None
    want: dict[str, InstalledFile] = field(default_factory=dict)
    folder_kind: str | None = None  # what bundles/NAME/VERSION is
    entries: dict[str, os.stat_result] = field(default_factory=dict)  # every path below it
    dir_modes: dict[str, int] = field(default_factory=dict)  # wanted folders that exist

    @property
    def where(self) -> str:
        return f"{layout.SITE_BUNDLES_DIR}/{self.name}/{self.version}"

    @property
    def file_mode(self) -> int:
        return CONTENT_FILE_MODE if self.receipt.read_only else FILE_MODE

    @property
    def dir_mode(self) -> int:
        return CONTENT_DIR_MODE if self.receipt.read_only else DIR_MODE

    @property
    def want_dirs(self) -> set[str]:
        return {"/".join(p.split("/")[:i]) for p in self.want for i in range(1, p.count("/") + 1)}


def _member_of(installed_path: str) -> str:
    """The bundle member an installed file of ``.airgap/`` (or model.sig) was written from."""
    if installed_path == layout.MODEL_SIGNATURE_INSTALL:
        return layout.MODEL_SIGNATURE
    return layout.AIRGAP_DIR + installed_path[len(layout.INSTALLED_META_DIR) :]


# ----------------------------------------------------------------------------- the command


def repair_site(
    prefix_path: Path,
    name: str | None = None,
    bundle: Path | None = None,
    policy: Policy | None = None,
    *,
    target: str | None = None,
    reporter: Reporter | None = None,
) -> RepairResult:
    """Repair every installed version under ``prefix_path`` (or those of ``name``); see the
    module (``target``: which target's, where ``name`` is installed for several). Raises
    InputError (exit 2) for an unusable prefix or an unknown name,
    :class:`packager.site.install.NotVerified` (exit 1) when ``bundle`` does not verify."""
    rep = reporter or Reporter()
    t0 = time.perf_counter()
    if name is not None and component_problem(name, "the bundle name"):
        raise InputError(str(component_problem(name, "the bundle name")))
    result = RepairResult(prefix_path, bundle)
    with contextlib.ExitStack() as stack:
        v: Verifier | None = None
        if bundle is not None:
            from packager.site.install import not_verified

            if policy is None and site_trust.read_site_policy(prefix_path) is None:
                raise InputError(
                    f"{bundle} is verified before repair takes anything from it: give "
                    "--trust POLICY or --key PUB",
                    hint="the keys you install with, or keep a site policy (airgap trust update)",
                )
            v = stack.enter_context(
                Verifier(bundle, site_trust.policy_for_install(prefix_path, policy), reporter=rep)
            )
            rep.phase("verifying the bundle's signatures")
            if not v.preflight() or v.report.descriptor is None:
                raise not_verified(bundle, v.report, "nothing was repaired")
            result.bundle_digest = v.report.digest
        elif policy is not None:
            raise InputError(
                "--trust/--key verify the --bundle repair takes content from: give --bundle too"
            )
        prefix = stack.enter_context(Prefix.open(prefix_path, create=False))
        stack.enter_context(prefix.locked(reporter=rep))
        result.notes += prefix.prepare()
        versions = _scope(prefix, None if name is None else prefix.unit(name, target), result)
        rep.phase("checking installed files")
        hasher = _Hasher(prefix.root)
        entries = auditlog.read_entries(prefix.root)
        for ver in versions:
            _trust(prefix, ver, entries, v, hasher, result)
        for ver in versions:
            if ver.doc is not None:
                _look(prefix, ver)
        found = [
            _Found(ver.where, rel, st)
            for ver in versions
            for rel, st in ver.entries.items()
            if rel in ver.want and stat.S_ISREG(st.st_mode) and st.st_size == ver.want[rel].size
        ]
        needed = {
            f.sha256: f.size for ver in versions if ver.doc for f in ver.want.values() if f.blob
        }
        store = BlobStore(prefix.root, create=True)
        stack.callback(store.close)
        store_st = {h: store.dir.lstat(h) for h in needed}
        found += [
            _Found(layout.SITE_BLOBS_DIR, h, st)
            for h, st in store_st.items()
            if st is not None and stat.S_ISREG(st.st_mode) and st.st_size == needed[h]
        ]
        hasher.hash_all(found)
        result.hashed_bytes = hasher.bytes
        _execute(prefix, versions, store, store_st, needed, hasher, v, result, rep)
        result.versions = [ver.report for ver in versions]
    result.seconds = time.perf_counter() - t0
    return result


def _scope(prefix: Prefix, name: str | None, result: RepairResult) -> list[_Version]:
    """The installed versions to repair (those of ``name``, or all), by their receipts."""
    names = [name] if name is not None else prefix.names()
    out: list[_Version] = []
    for n in names:
        try:
            installed = prefix.installed(n)
        except SiteError as exc:
            result.problems.append(exc.message)
            continue
        for version in sorted(installed):
            out.append(_Version(n, version, installed[version], VersionRepair(n, version)))
    if name is not None and not out:
        raise InputError(
            f"{name} is not installed in {prefix.path}",
            hint="`airgap list --prefix DIR` shows what is",
        )
    return out


def _trust(
    prefix: Prefix,
    ver: _Version,
    entries: list[dict[str, Any]],
    v: Verifier | None,
    hasher: _Hasher,
    result: RepairResult,
) -> None:
    """Which bundle.json ``ver`` is judged by (repair_rules.trusted_descriptor); a version with
    none is named as not repaired, with everything it holds left as it is."""
    meta = layout.installed_meta_path(layout.BUNDLE_JSON)
    installed_raw: bytes | None = None
    nd = prefix.sub(f"{layout.SITE_BUNDLES_DIR}/{ver.name}")
    if nd is not None:
        with nd:
            ver.folder_kind = nd.kind(ver.version)
            if ver.folder_kind == "dir":
                try:
                    with nd.sub(ver.version) as vd, vd.sub(layout.INSTALLED_META_DIR) as md:
                        installed_raw = md.read_small(
                            meta.rpartition("/")[2], layout.MAX_BUNDLE_JSON_BYTES
                        )
                except (FileNotFoundError, SiteError):
                    installed_raw = None
    logged = frozenset(
        str(e.get("digest"))
        for e in entries
        if e.get("action") == "install"
        and (e.get("name"), e.get("version")) == (ver.name, ver.version)
    )
    installed_digest = (
        None if installed_raw is None else "sha256:" + hashlib.sha256(installed_raw).hexdigest()
    )
    trusted = trusted_descriptor(
        ver.receipt.digest, logged, installed_digest, v.report.digest if v else None
    )
    if trusted.source is Source.NONE:
        ver.report.unrepaired.append(
            PathRepair(meta, trusted.why, "not repaired", None, _BUNDLE_HINT if v is None else None)
        )
        return
    if trusted.source is Source.BUNDLE:
        assert v is not None
        ver.raw, ver.raw_from_bundle = v.report.verified[layout.BUNDLE_JSON], True
        ver.raw_why = trusted.why.removeprefix("the installed bundle.json is ")
    else:
        ver.raw = installed_raw
    assert ver.raw is not None
    try:
        ver.doc = parse_descriptor(ver.raw)
    except DescriptorError as exc:
        ver.report.unrepaired.append(PathRepair(meta, exc.message, "not repaired"))
        return
    ver.want = signed_files(ver.doc, ver.raw, ver.receipt.files)
    ver.report.files = len(ver.want)


def _look(prefix: Prefix, ver: _Version) -> None:
    """Every entry below the version's folder (lstat, no link followed)."""
    if ver.folder_kind != "dir":
        return
    with prefix.root.walk(ver.where) as vd:
        ver.dir_modes[""] = os.fstat(vd.fd).st_mode & 0o7777
        for _parent, _name, rel, st in walk_files(vd):
            ver.entries[rel] = st
            if stat.S_ISDIR(st.st_mode):
                ver.dir_modes[rel] = st.st_mode & 0o7777


# ----------------------------------------------------------------------------- repairing


@dataclass
class _Plan:
    """What ``_execute`` does, decided before anything is written."""

    store: dict[str, Source] = field(default_factory=dict)  # blobs to put back in the store
    store_why: dict[str, str] = field(default_factory=dict)
    copies: dict[str, tuple[str, str, os.stat_result]] = field(default_factory=dict)
    restore: dict[tuple[str, str], tuple[InstalledFile, str, Source]] = field(default_factory=dict)
    modes: dict[tuple[str, str], str] = field(default_factory=dict)
    meta_from_bundle: bool = False


def _plan(
    versions: list[_Version],
    store_st: dict[str, os.stat_result | None],
    needed: dict[str, int],
    hasher: _Hasher,
    v: Verifier | None,
) -> _Plan:
    plan = _Plan()
    in_bundle: set[str] = set()
    members: set[str] = set()
    if v is not None and v.report.descriptor is not None and v.bundle is not None:
        in_bundle = {b.hex for b in v.report.descriptor.blobs}
        members = set(v.bundle.members())
    # intact installed copies of each blob (to restore the store and the others from)
    for ver in versions:
        for rel, st in ver.entries.items():
            w = ver.want.get(rel)
            if w is not None and w.blob and hasher.seen(st).holds(w.sha256, w.size):
                plan.copies.setdefault(w.sha256, (ver.where, rel, st))
    for hexd, size in needed.items():
        s = hasher.seen(store_st[hexd])
        verdict = store_fix(hexd, size, s, s.mode)
        if verdict.fix is Fix.RESTORE:
            src = pick_source(
                InstalledFile(hexd, hexd, size, True), s, hexd in plan.copies, hexd in in_bundle
            )
            plan.store[hexd], plan.store_why[hexd] = src, verdict.why
    for ver in versions:
        if ver.doc is None:
            continue
        for rel, w in sorted(ver.want.items()):
            seen = hasher.seen(ver.entries.get(rel)) if ver.folder_kind == "dir" else ABSENT
            verdict = judge_path(w, seen, ver.file_mode)
            if rel == layout.installed_meta_path(layout.BUNDLE_JSON) and ver.raw_from_bundle:
                verdict = Verdict(Fix.RESTORE, ver.raw_why)  # from the verified bundle only
            if verdict.fix is Fix.MODE:
                plan.modes[(ver.where, rel)] = verdict.why
            elif verdict.fix is Fix.RESTORE:
                if w.blob:
                    src = plan.store.get(w.sha256, Source.STORE)
                    src = Source.STORE if src is not Source.NONE else Source.NONE
                else:
                    src = (
                        Source.BUNDLE
                        if _member_of(rel) in members
                        and v is not None
                        and v.report.digest == ver.receipt.digest
                        else Source.NONE
                    )
                    plan.meta_from_bundle |= src is Source.BUNDLE
                plan.restore[(ver.where, rel)] = (w, verdict.why, src)
    return plan


def _execute(
    prefix: Prefix,
    versions: list[_Version],
    store: BlobStore,
    store_st: dict[str, os.stat_result | None],
    needed: dict[str, int],
    hasher: _Hasher,
    v: Verifier | None,
    result: RepairResult,
    rep: Reporter,
) -> None:
    plan = _plan(versions, store_st, needed, hasher, v)
    by_where = {ver.where: ver for ver in versions}
    for (where, rel), (_w, why, src) in plan.restore.items():
        if src is Source.NONE:
            hint = (
                f"no intact copy at the site, and the bundle given ({v.report.digest}) lacks it"
                if v is not None
                else f"no intact copy at the site: {_BUNDLE_HINT}"
            )
            by_where[where].report.unrepaired.append(
                PathRepair(rel, why, "not repaired", None, hint)
            )
    for ver in versions:
        _extras(ver)
    work = [k for k, (_, _, src) in plan.restore.items() if src is not Source.NONE]
    store_work = {h: s for h, s in plan.store.items() if s is not Source.NONE}
    if not (work or store_work or plan.modes or any(_folders_drifted(ver) for ver in versions)):
        return
    if plan.meta_from_bundle and v is not None and not v.report.blobs_checked:
        rep.phase("verifying the bundle's content")
        v.complete()  # its airgap/ files are kept as verified bytes
        if not v.report.ok:
            from packager.site.install import not_verified

            raise not_verified(v.path, v.report, "nothing was repaired")
    staging, sname = prefix.new_staging({"op": "repair", "name": "repair", "versions": []})
    try:
        with staging:
            rep.phase("restoring the store", sum(needed[h] for h in store_work))
            for hexd, src in sorted(store_work.items()):
                _restore_blob(prefix, store, staging, hexd, needed[hexd], src, plan, v, rep)
                result.store.append(PathRepair(hexd, plan.store_why[hexd], "restored", src))
            store.dir.fsync()
            if result.store:
                _log_store(prefix, result.store)
            for ver in versions:
                _repair_version(prefix, ver, plan, store, v, rep)
    finally:
        result.notes += prefix.discard_staging(sname)


def _restore_blob(
    prefix: Prefix,
    store: BlobStore,
    staging: Dir,
    hexd: str,
    size: int,
    src: Source,
    plan: _Plan,
    v: Verifier | None,
    rep: Reporter,
) -> None:
    """Put blob ``hexd`` back into the store: a hard link to an intact installed copy (the
    inode that was hashed), else its bytes from the verified bundle, hashed while copied."""
    if store.dir.kind(hexd) not in (None, "file"):  # a link or folder planted there
        store.dir.remove_tree(hexd)
    if src is Source.INSTALLED:
        where, rel, st = plan.copies[hexd]
        parent, _, leaf = rel.rpartition("/")
        tmp = f"blob-{hexd}"
        with prefix.root.walk(where) as vd, vd.walk(parent) as pd:
            if staging.link_from(pd, leaf, tmp):
                fd = staging.open_read(tmp)
                try:
                    same = _key(os.fstat(fd)) == _key(st)
                    os.fchmod(fd, CONTENT_FILE_MODE)
                finally:
                    os.close(fd)
                if same:
                    staging.rename(tmp, store.dir, hexd)
                    rep.advance(size)
                    return
                staging.unlink(tmp)
            fd = pd.open_read(leaf)  # no hard links here (or it changed): a copy, hashed
            try:
                store.put(hexd, size, Span(fd, 0, os.fstat(fd).st_size), staging,
                          what=pd.path_of(leaf), progress=rep.advance)  # fmt: skip
            finally:
                os.close(fd)
        return
    assert v is not None and v.bundle is not None
    b = v.bundle
    member = layout.blob_path("sha256:" + hexd)
    m = b.members().get(member)
    if m is None or m.kind != "file":
        raise ContentMismatch(f"{b.source}: {member} is missing from the bundle")
    if isinstance(b, TarBundle) and len(b.parts) == 1:
        fd = os.open(b.parts[0], os.O_RDONLY | os.O_CLOEXEC)
        try:
            store.put(hexd, size, Span(fd, m.offset, m.size), staging, what=member,
                      progress=rep.advance)  # fmt: skip
        finally:
            os.close(fd)
        return
    with b.open_fresh(member) as fh:
        if isinstance(b, FolderBundle):
            fd = fh.fileno()
            span = Span(fd, 0, os.fstat(fd).st_size)
            store.put(hexd, size, span, staging, what=member, progress=rep.advance)
        else:
            store.put(hexd, size, fh, staging, what=member, progress=rep.advance)


@contextlib.contextmanager
def _writable(d: Dir) -> Iterator[None]:
    """``d`` writable by its owner while files are put into it; its mode is set after."""
    with contextlib.suppress(OSError):
        os.fchmod(d.fd, DIR_MODE | 0o200)
    yield


def _folder(prefix: Prefix, ver: _Version) -> Dir:
    """The version's folder, made again (empty) when it is missing or not a folder."""
    with prefix.root.walk(f"{layout.SITE_BUNDLES_DIR}/{ver.name}") as nd:
        kind = nd.kind(ver.version)
        if kind != "dir":
            with _writable(nd):
                if kind is not None:
                    nd.unlink(ver.version)
                    ver.report.repaired.append(
                        PathRepair(".", f"the version folder is a {kind}", "restored", "folder")
                    )
                nd.mkdir(ver.version).close()
            os.fchmod(nd.fd, DIR_MODE)
            ver.folder_kind = "dir"
        return nd.sub(ver.version)


def _repair_version(
    prefix: Prefix,
    ver: _Version,
    plan: _Plan,
    store: BlobStore,
    v: Verifier | None,
    rep: Reporter,
) -> None:
    if ver.doc is None:
        return
    mine = {
        rel: x
        for (where, rel), x in plan.restore.items()
        if where == ver.where and x[2] is not Source.NONE
    }
    modes = {rel: why for (where, rel), why in plan.modes.items() if where == ver.where}
    drifted = {
        d: m
        for d, m in ver.dir_modes.items()
        if m != ver.dir_mode and (d in ver.want_dirs or not d)
    }
    absent = {d for d in ver.want_dirs if d not in ver.dir_modes}
    if not (mine or modes or drifted or absent or ver.folder_kind != "dir"):
        return
    rep.note(f"repairing {ver.name} {ver.version}")
    dirs: dict[str, Dir] = {}
    try:
        dirs[""] = _folder(prefix, ver)
        os.fchmod(dirs[""].fd, DIR_MODE | 0o200)
        for d in sorted(ver.want_dirs, key=lambda x: (x.count("/"), x)):
            parent, _, leaf = d.rpartition("/")
            pd = dirs[parent]
            kind = pd.kind(leaf)
            if kind != "dir":
                if kind is not None:
                    pd.remove_tree(leaf)
                    ver.report.repaired.append(
                        PathRepair(d + "/", f"a {kind} now", "restored", "folder")
                    )
                pd.mkdir(leaf).close()
            dirs[d] = pd.sub(leaf)
            os.fchmod(dirs[d].fd, DIR_MODE | 0o200)
        for rel, (w, why, src) in sorted(mine.items()):
            parent, _, leaf = rel.rpartition("/")
            try:
                _put(dirs[parent], leaf, w, ver, store, v)
            except ContentMismatch as exc:  # the bundle's copy is not the installed one
                ver.report.unrepaired.append(
                    PathRepair(rel, why, "not repaired", None, exc.message)
                )
                continue
            ver.report.repaired.append(PathRepair(rel, why, "restored", str(src)))
            rep.advance(w.size)
        for rel, why in sorted(modes.items()):
            parent, _, leaf = rel.rpartition("/")
            fd = dirs[parent].open_read(leaf)
            try:
                os.fchmod(fd, ver.file_mode)
            finally:
                os.close(fd)
            ver.report.repaired.append(PathRepair(rel, why, "mode"))
        for d, was in sorted(drifted.items()):
            if was is None:
                continue  # made again: its files say so
            why = f"mode {was:04o}, installed {ver.dir_mode:04o}"
            ver.report.repaired.append(PathRepair(f"{d}/" if d else ".", why, "mode"))
    finally:  # read-only again, whatever happened
        for rel in sorted(dirs, key=lambda k: -k.count("/")):
            dirs[rel].fsync()
            with contextlib.suppress(OSError):
                os.fchmod(dirs[rel].fd, ver.dir_mode)
            dirs[rel].close()
    if ver.report.repaired:
        _log(prefix, ver)


def _folders_drifted(ver: _Version) -> dict[str, int | None]:
    """The version's folders ("": itself) that lost their installed mode (by the mode they
    have), or are missing or replaced (None)."""
    if ver.doc is None:
        return {}
    out: dict[str, int | None] = {
        d: m
        for d, m in ver.dir_modes.items()
        if m != ver.dir_mode and (d in ver.want_dirs or not d)
    }
    out.update({d: None for d in ver.want_dirs | {""} if d not in ver.dir_modes})
    return out


def _put(
    d: Dir, leaf: str, w: InstalledFile, ver: _Version, store: BlobStore, v: Verifier | None
) -> None:
    """``w`` at ``d/leaf``: written under a temporary name and renamed over what is there."""
    tmp = f".airgap-repair-{secrets.token_hex(6)}"
    if not w.blob:
        data = (
            ver.raw
            if w.path == layout.installed_meta_path(layout.BUNDLE_JSON) and ver.raw_from_bundle
            else None
        )
        if data is None and v is not None:
            data = v.report.verified.get(_member_of(w.path))
        if data is None or hashlib.sha256(data).hexdigest() != w.sha256 or len(data) != w.size:
            raise ContentMismatch(
                f"{d.path_of(leaf)}: the bundle's {_member_of(w.path)} is not what was installed",
                hint="give the bundle this version was installed from",
            )
        d.write_file(tmp, data, ver.file_mode)
    elif ver.receipt.linked and d.link_from(store.dir, w.sha256, tmp):
        fd = d.open_read(tmp)
        try:
            st = os.fstat(fd)
            if st.st_size != w.size:
                raise SiteError(f"{store.dir.path_of(w.sha256)} changed while repairing")
            os.fchmod(fd, ver.file_mode)
        finally:
            os.close(fd)
    else:
        if store.copy_to(w.sha256, w.size, d, tmp, ver.file_mode) != w.sha256:
            d.unlink(tmp)
            raise ContentMismatch(f"{store.dir.path_of(w.sha256)} changed while repairing")
    if d.kind(leaf) == "dir":
        d.remove_tree(leaf)
    d.rename(tmp, d, leaf)


def _extras(ver: _Version) -> None:
    if ver.doc is None:
        return
    want_dirs = ver.want_dirs
    files = set(ver.want)
    for rel, st in sorted(ver.entries.items()):
        if rel in files or rel in want_dirs:
            continue
        parts = rel.split("/")
        if any("/".join(parts[:i]) in files for i in range(1, len(parts))):
            continue  # inside a folder that replaced a file: removed with it
        if any(
            "/".join(parts[:i]) in want_dirs
            and not stat.S_ISDIR(ver.entries["/".join(parts[:i])].st_mode)
            for i in range(1, len(parts))
        ):
            continue
        parent = rel.rpartition("/")[0]
        if parent and parent not in want_dirs and parent in ver.entries:
            continue  # named by its folder
        ver.report.extra.append(rel + ("/" if stat.S_ISDIR(st.st_mode) else ""))


def _log(prefix: Prefix, ver: _Version) -> None:
    restored = [r.path for r in ver.report.repaired if r.fix == "restored"]
    modes = [r.path for r in ver.report.repaired if r.fix == "mode"]
    sources = sorted({str(r.source) for r in ver.report.repaired if r.fix == "restored"})
    parts = []
    if restored:
        parts.append(
            f"restored {len(restored)} file(s) from {', '.join(sources)}: "
            + ", ".join(restored[:5])
            + (" ..." if len(restored) > 5 else "")
        )
    if modes:
        parts.append(f"read-only mode put back on {len(modes)}")
    auditlog.append(
        prefix.root, "repair", ver.name, ver.version, ver.receipt.digest, "; ".join(parts)
    )


def _log_store(prefix: Prefix, fixed: list[PathRepair]) -> None:
    sources = sorted({str(r.source) for r in fixed})
    names = ", ".join(r.path[:16] for r in fixed[:5]) + (" ..." if len(fixed) > 5 else "")
    auditlog.append(
        prefix.root, "repair", None, None, None,
        f"store: restored {len(fixed)} blob(s) from {', '.join(sources)}: {names}",
    )  # fmt: skip
