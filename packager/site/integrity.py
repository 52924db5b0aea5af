"""`airgap audit --site DIR`: the audit log's hash chain, and every installed file against what
was installed (drift: modified, missing and extra files, per bundle version).

The truth for each version is its installed, signed ``.airgap/bundle.json``: its sha256 must be
the digest the receipt and the hash-chained audit log recorded at install, and every file is
judged against it, not against the receipt (an unsigned file anyone with write access can edit
along with the file it describes). With ``--trust``/``--key`` its signatures are checked too. A
prefix with installed versions and no audit log, or a version the log never saw installed, fails.

Read-only: it takes the prefix's lock shared (waiting for an install to finish) and never
repairs. Leftovers of an interrupted operation that the next one cleans up are notes, not
findings; everything else that does not match is a finding and makes the exit status 1.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from packager.bundle import layout
from packager.bundle.descriptor import parse_descriptor
from packager.bundle.errors import DescriptorError
from packager.signing.trust import Policy
from packager.site import auditlog
from packager.site import receipts as receipts_mod
from packager.site.prefix import Prefix, parse_journal
from packager.site.rules import InstallModes, folders_of, install_modes, signed_files
from packager.site.safefs import (
    FILE_MODE,
    Dir,
    SiteError,
    kind_of,
    walk_files,
)
from packager.site.trust import TrustAudit, site_policy
from packager.util.compat import strict_zip
from packager.util.hashing import sha256_unchanged


@dataclass
class VersionDrift:
    name: str
    version: str
    current: bool
    files: int
    modified: list[tuple[str, str]] = field(default_factory=list)  # (path, what changed)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    #: where the install put the images (the receipt's record: unsigned, shown, not judged)
    images: list[dict[str, str | None]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.modified or self.missing or self.extra)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "current": self.current,
            "files": self.files,
            "ok": self.ok,
            "modified": [{"path": p, "reason": r} for p, r in self.modified],
            "missing": self.missing,
            "extra": self.extra,
            "images": self.images,
        }


@dataclass
class SiteAudit:
    prefix: Path
    log: auditlog.ChainReport
    versions: list[VersionDrift] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hashed_bytes: int = 0
    receipts: dict[str, dict[str, receipts_mod.Receipt]] = field(default_factory=dict)
    journaled: set[tuple[str, str]] = field(default_factory=set)  # left by interrupted operations
    hashes: dict[Any, str | None] = field(default_factory=dict)  # by (dev, inode, size, mtime)
    #: to check the installed bundle.json's signatures with: --trust/--key, else the site's own
    policy: Policy | None = None
    #: the site's own trust policy (shown; its verdicts come through ``policy``)
    trust: TrustAudit | None = None

    @property
    def ok(self) -> bool:
        return self.log.ok and not self.problems and all(v.ok for v in self.versions)

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": str(self.prefix),
            "ok": self.ok,
            "verdict": "PASS" if self.ok else "FAIL",
            "log": {
                "entries": len(self.log.entries),
                "ok": self.log.ok,
                "problems": [p.to_json() for p in self.log.problems],
                "notes": self.log.notes,
            },
            "bundles": [v.to_json() for v in self.versions],
            "problems": self.problems,
            "notes": self.notes,
            "hashed_bytes": self.hashed_bytes,
            "trust": self.trust.to_json() if self.trust is not None else None,
        }


def audit_site(prefix_path: Path, policy: Policy | None = None) -> SiteAudit:
    with Prefix.open(prefix_path, create=False) as prefix, prefix.locked(exclusive=False):
        try:
            data, head = auditlog.read_log(prefix.root)
            chain = auditlog.check_chain(data, head)
        except SiteError as exc:
            chain = auditlog.ChainReport(problems=[auditlog.LogProblem(None, exc.message)])
        report = SiteAudit(prefix_path, chain, policy=policy)
        # a site that keeps its own trust policy is judged by it unless another is given
        report.trust = TrustAudit(site_policy(prefix))
        if report.policy is None and report.trust.policy is not None:
            report.policy = report.trust.policy.policy
        for step in (_layout, _receipts, _journaled, _check_store, _bundles, _check_log_current):
            try:
                step(prefix, report)
            except SiteError as exc:  # a link or file planted where a folder belongs
                report.problems.append(exc.message)
    return report


#: what the prefix's own names must be, when they exist
_KINDS = {
    layout.SITE_LOCK: "file",
    layout.SITE_AUDIT_LOG: "file",
    layout.SITE_AUDIT_HEAD: "file",
    layout.SITE_STAGING_DIR: "dir",
    layout.SITE_BUNDLES_DIR: "dir",
    layout.SITE_RECEIPTS_DIR: "dir",
    layout.SITE_BLOBS_DIR.split("/")[0]: "dir",
    layout.SITE_TRUST_DIR: "dir",
}


def _layout(prefix: Prefix, report: SiteAudit) -> None:
    for name, kind in _KINDS.items():
        got = prefix.root.kind(name)
        if got not in (None, kind):
            report.problems.append(
                f"{prefix.root.path_of(name)} is a {got}, not a {'folder' if kind == 'dir' else kind}"
            )
    store = prefix.sub(layout.SITE_BLOBS_DIR)
    if store is None:
        return
    with store:
        for n in store.names():
            got = store.kind(n)
            if got != "file" or not re.fullmatch(r"[0-9a-f]{64}", n):
                report.problems.append(f"{store.path_of(n)}: a {got} in the store that is no blob")


def _receipts(prefix: Prefix, report: SiteAudit) -> None:
    report.receipts, problems = receipts_mod.read_all(prefix.root)
    report.problems += problems
    installed = [(n, v) for n, vs in sorted(report.receipts.items()) for v in sorted(vs)]
    if installed and not report.log.entries and not report.log.problems:
        report.problems.append(
            f"the audit log is missing or empty, but {len(installed)} version(s) are installed "
            f"({', '.join(f'{n} {v}' for n, v in installed[:5])}): it was deleted"
        )


def _bundles(prefix: Prefix, report: SiteAudit) -> None:
    bd = prefix.bundles()
    try:
        names = sorted(set(report.receipts) | set(bd.names() if bd is not None else []))
        for name in names:
            try:
                _audit_name(prefix, bd, name, report.receipts.get(name, {}), report)
            except SiteError as exc:
                report.problems.append(exc.message)
    finally:
        if bd is not None:
            bd.close()


def _journaled(prefix: Prefix, report: SiteAudit) -> None:
    """(name, version) of the folders interrupted operations were writing or removing."""
    out = report.journaled
    top = prefix.sub(layout.SITE_STAGING_DIR)
    if top is None:
        return
    with top:
        for n in top.names():
            report.notes.append(
                f"{top.path_of(n)}: left by an interrupted operation; the next install, "
                "uninstall, rollback or gc removes it"
            )
            if top.kind(n) != "dir":
                continue
            with top.sub(n) as d:
                j = parse_journal(d.read_small(layout.STAGING_JOURNAL, 1 << 20))
            if j is not None:
                out.update((j["name"], v) for v in j["versions"])


def _check_store(prefix: Prefix, report: SiteAudit) -> None:
    everything = report.receipts
    sizes = {
        f.sha256: f.size
        for vs in everything.values()
        for r in vs.values()
        if r.linked
        for f in r.files
        if f.blob
    }
    store = prefix.sub(layout.SITE_BLOBS_DIR)
    if store is None:
        if sizes:
            report.problems.append(f"{prefix.path}/{layout.SITE_BLOBS_DIR} is missing")
        return
    with store:
        for hexd, size in sorted(sizes.items()):
            st = store.lstat(hexd)
            if st is None:
                report.notes.append(
                    f"{store.path_of(hexd)} is missing from the store (the installed files "
                    "are checked on their own)"
                )
            elif not stat.S_ISREG(st.st_mode) or st.st_size != size:
                report.problems.append(
                    f"{store.path_of(hexd)}: a damaged blob ({st.st_size} bytes, "
                    f"receipts say {size})"
                )


def _audit_name(
    prefix: Prefix,
    bd: Dir | None,
    name: str,
    versions: dict[str, receipts_mod.Receipt],
    report: SiteAudit,
) -> None:
    nd = bd.maybe_sub(name) if bd is not None else None
    try:
        current = prefix.current(name)
    except SiteError as exc:
        report.problems.append(exc.message)
        current = None
    if current is not None and current not in versions:
        report.problems.append(
            f"{name}: current points at {current}, which has no receipt (not installed)"
        )
    on_disk = nd.names() if nd is not None else []
    for entry in on_disk:
        if entry == layout.SITE_CURRENT or entry in versions:
            continue
        where = f"{nd.path_of(entry) if nd else entry}"
        if entry.startswith(f".{layout.SITE_CURRENT}."):
            report.notes.append(f"{where}: a link left by an interrupted switch")
        elif (name, entry) in report.journaled:
            report.notes.append(
                f"{where}: left without a receipt by an interrupted operation; the next one "
                "removes it"
            )
        else:
            report.problems.append(
                f"{where}: a folder with no receipt (not installed by airgap, or its receipt "
                "was deleted)"
            )
    for version in sorted(versions):
        drift = VersionDrift(
            name,
            version,
            version == current,
            len(versions[version].files),
            images=versions[version].image_places(),
        )
        vd = nd.maybe_sub(version) if nd is not None and nd.kind(version) == "dir" else None
        if vd is None:
            drift.missing = sorted(f.path for f in versions[version].files)
            if nd is not None and nd.kind(version) not in (None, "dir"):
                drift.modified.append((".", f"the version folder is a {nd.kind(version)}"))
        else:
            with vd:
                want, modes, empty = _signed_truth(vd, name, version, versions[version], report)
                if modes is None and versions[version].read_only:
                    modes = InstallModes()
                report.hashed_bytes += _drift(vd, want, drift, report.hashes, modes, empty)
        report.versions.append(drift)
    if nd is not None:
        nd.close()


Truth = tuple[dict[str, receipts_mod.InstalledFile], Optional[InstallModes], tuple[str, ...]]


def _signed_truth(
    vd: Dir, name: str, version: str, receipt: receipts_mod.Receipt, report: SiteAudit
) -> Truth:
    """What the version's folder must hold, from its installed, signed bundle.json: the files,
    the modes and owner it declares, its empty folders; every way the receipt, the log or the
    descriptor disagree is a problem. Falls back to the receipt (already named as a problem)
    when the descriptor cannot be read."""
    label = f"{name} {version}"
    fallback: Truth = ({f.path: f for f in receipt.files}, None, ())
    meta = layout.installed_meta_path(layout.BUNDLE_JSON)
    try:
        raw = vd.read_small(meta, layout.MAX_BUNDLE_JSON_BYTES)
    except SiteError as exc:
        report.problems.append(f"{label}: {exc.message}")
        return fallback
    if raw is None:
        report.problems.append(f"{label}: {meta} is missing: nothing to judge the files by")
        return fallback
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    logged = {
        str(e.get("digest"))
        for e in report.log.entries
        if e
        and e.get("action") == "install"
        and (e.get("name"), e.get("version")) == (name, version)
    }
    if logged and receipt.digest not in logged:
        report.problems.append(
            f"{label}: the receipt says {receipt.digest}, but the audit log recorded the install "
            f"of {', '.join(sorted(logged))}: the receipt was edited"
        )
    elif report.log.entries and not logged:
        report.notes.append(
            f"{label}: the audit log has no install entry yet (an install stopped after its "
            "receipt; the next operation adds it)"
        )
    if digest != receipt.digest:  # bundle.json itself changed: drift names it, and the rest is
        return fallback  # judged by the receipt, whose digest the log vouches for
    try:
        doc = parse_descriptor(raw)
    except DescriptorError as exc:
        report.problems.append(f"{label}: {exc.message}")
        return fallback
    if report.policy is not None:
        _check_installed_signatures(vd, raw, label, report)
    want = signed_files(doc, raw, receipt.files)
    for f in receipt.files:
        w = want.get(f.path)
        if w is None or (w.sha256, w.size) != (f.sha256, f.size):
            report.problems.append(
                f"{label}: the receipt's {f.path} does not match the signed bundle.json "
                "(an edited receipt)"
            )
    return want, install_modes(doc), doc.install.dirs


def installed_signature_files(vd: Dir) -> dict[str, bytes]:
    """An installed version's signature files (``.airgap/bundle.json.sig/*``) by their name in
    the bundle, for :func:`packager.bundle.checks.check_signatures`."""
    sig_dir = layout.installed_meta_path(layout.SIGNATURES_DIR)
    files: dict[str, bytes] = {}
    sd = vd.maybe_sub(sig_dir) if vd.kind(sig_dir) == "dir" else None
    if sd is not None:
        with sd:
            for n in sd.names():
                data = sd.read_small(n, 4096)
                if data is not None:
                    files[f"{layout.SIGNATURES_DIR}/{n}"] = data
    return files


def _check_installed_signatures(vd: Dir, raw: bytes, label: str, report: SiteAudit) -> None:
    from packager.bundle.checks import check_signatures

    assert report.policy is not None
    verdict = check_signatures(raw, installed_signature_files(vd), report.policy)
    report.problems += [
        f"{label}: installed signatures: {f.subject}: {f.message}" for f in verdict.failures
    ]


def _owner_drift(st: os.stat_result, modes: InstallModes | None) -> list[str]:
    """How ``st``'s owner differs from the declared one (nothing declared: nothing to say)."""
    out = []
    if modes is not None and modes.uid is not None and st.st_uid != modes.uid:
        out.append(f"owner uid {st.st_uid}, installed {modes.uid}")
    if modes is not None and modes.gid is not None and st.st_gid != modes.gid:
        out.append(f"group gid {st.st_gid}, installed {modes.gid}")
    return out


def _drift(
    vd: Dir,
    want: dict[str, receipts_mod.InstalledFile],
    drift: VersionDrift,
    cache: dict[Any, str | None],
    modes: InstallModes | None = None,
    empty_dirs: tuple[str, ...] = (),
) -> int:
    """Compare one version folder with what it must hold; returns the bytes hashed. ``modes``:
    the modes and owner the files and folders were installed with (None: an install by an
    airgap before read-only installs, files 0644). ``cache``: sha256 by (device, inode, size,
    mtime), shared by the versions (they share files through the store, so each is hashed
    once)."""
    drift.files = len(want)
    st_vd = os.fstat(vd.fd)
    if modes is not None:
        whys = _owner_drift(st_vd, modes)
        if st_vd.st_mode & 0o7777 != modes.dir:
            whys.insert(0, f"mode {st_vd.st_mode & 0o7777:04o}, installed {modes.dir:04o}")
        drift.modified += [(".", why) for why in whys]
    want_dirs = set(folders_of(want, empty_dirs))
    seen: dict[str, os.stat_result] = {}
    there: set[str] = set()  # the folders found
    for _parent, _name, rel, st in walk_files(vd):
        kind = stat.S_IFMT(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            there.add(rel)
            if modes is not None and rel in want_dirs:
                whys = _owner_drift(st, modes)
                if st.st_mode & 0o7777 != modes.dir:
                    whys.insert(0, f"mode {st.st_mode & 0o7777:04o}, installed {modes.dir:04o}")
                drift.modified += [(rel + "/", why) for why in whys]
            if rel not in want_dirs:
                if rel in want:
                    drift.modified.append((rel, "a folder now"))
                else:
                    drift.extra.append(rel + "/")
            continue
        if rel not in want:
            drift.extra.append(rel)
            continue
        if kind != stat.S_IFREG:
            drift.modified.append((rel, f"a {kind_of(st.st_mode)} now"))
            continue
        seen[rel] = st
    for rel in sorted(set(want) - set(seen)):
        if not any(m[0] == rel for m in drift.modified):
            drift.missing.append(rel)
    drift.missing += [d + "/" for d in empty_dirs if d not in there]

    # hash what is there, once per inode
    def key(st: os.stat_result) -> tuple[int, int, int, int]:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    todo: dict[Any, str] = {}
    for rel, st in sorted(seen.items()):
        f = want[rel]
        if st.st_size != f.size:
            drift.modified.append((rel, f"{st.st_size} bytes, installed {f.size}"))
            continue
        file_mode = modes.file_mode(rel) if modes is not None else FILE_MODE
        if st.st_mode & 0o7777 != file_mode:
            drift.modified.append(
                (rel, f"mode {st.st_mode & 0o7777:04o}, installed {file_mode:04o}")
            )
        drift.modified += [(rel, why) for why in _owner_drift(st, modes)]
        if key(st) not in cache:
            todo.setdefault(key(st), rel)

    def digest(rel: str) -> str | None:
        try:
            fd = os.open(
                rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=vd.fd
            )
        except OSError:
            return None
        return sha256_unchanged(fd, key, key(seen[rel]))  # None: replaced while we looked

    rels = list(todo.values())
    with ThreadPoolExecutor(min(8, max(2, os.cpu_count() or 2))) as pool:
        cache.update(strict_zip(todo, pool.map(digest, rels)))
    for rel, st in sorted(seen.items()):
        f = want[rel]
        if st.st_size != f.size:
            continue
        got = cache.get(key(st))
        if got is None:
            drift.modified.append((rel, "changed or unreadable while audited"))
        elif got != f.sha256:
            drift.modified.append((rel, f"sha256 {got[:16]}..., installed {f.sha256[:16]}..."))
    hashed = sum(seen[r].st_size for r in rels)
    merged: dict[str, list[str]] = {}  # one row a path: "mode 0644, installed 0444; sha256 ..."
    for rel, why in drift.modified:
        merged.setdefault(rel, []).append(why)
    drift.modified = sorted((rel, "; ".join(whys)) for rel, whys in merged.items())
    drift.extra.sort()
    return hashed


def _check_log_current(prefix: Prefix, report: SiteAudit) -> None:
    everything = report.receipts
    entries = [e for e in report.log.entries if e]
    for name, versions in everything.items():
        try:
            current = prefix.current(name)
        except SiteError:
            continue
        real = (current, versions[current].digest) if current in versions else None
        if (
            current is not None
            and real is not None
            and auditlog.current_by_log(entries, name) != real
        ):
            report.notes.append(
                f"{name}: the audit log does not (yet) record {current} as current (an "
                "operation stopped before its entry; the next one adds a reconcile entry)"
            )
