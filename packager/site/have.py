"""A site's have-list and its store as the base of a delta bundle.

`airgap list --prefix DIR --have` (:func:`have_list`): the blobs of the store that installed
versions use, with their sizes, the site kit's wheels installed versions keep (sha256 and size,
:func:`kit_index`), and the installed versions with their content digests
(packager.bundle.have). Blobs no version uses are left out: `airgap gc` may drop them before a
delta made against the list arrives.

:class:`StoreBlobs` is the site as the source of what a delta leaves out, for
``verify --prefix`` and ``install`` (packager.bundle.base.BlobSource): each blob is read through
the store's folder descriptor, each kit wheel through an installed version's folders (no link
followed), and hashed, so a damaged or tampered one fails the verification before anything is
written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packager.bundle import layout
from packager.bundle.have import HaveList, HeldBlob, HeldFile, HeldVersion
from packager.site import checked
from packager.site import receipts as receipts_mod
from packager.site.prefix import Prefix
from packager.site.safefs import Dir, SiteError
from packager.site.store import BlobStore
from packager.util.hashing import read_size

CHUNK = 1024 * 1024


def have_list(prefix_path: Path) -> HaveList:
    """What the store of ``prefix_path`` holds for installed versions (see the module)."""
    with Prefix.open(prefix_path, create=False) as prefix, prefix.locked(exclusive=False):
        everything, problems = receipts_mod.read_all(prefix.root)
        if problems:
            raise SiteError(
                "cannot tell what the site holds: " + "; ".join(problems),
                hint="`airgap audit --site` shows the damage",
            )
        versions = []
        for unit in sorted(everything):  # NAME, or NAME+TARGET: the bundle name is the receipt's
            cur = prefix.current(unit)
            for version, r in sorted(everything[unit].items()):
                versions.append(HeldVersion(r.name, version, r.target, r.digest, version == cur))
        used = {b for vs in everything.values() for r in vs.values() for b in r.blobs}
        blobs = []
        store_dir = prefix.sub(layout.SITE_BLOBS_DIR)
        if store_dir is not None:
            with store_dir:
                for hexd in sorted(used):
                    st = store_dir.lstat(hexd)
                    if st is not None and stat.S_ISREG(st.st_mode):
                        blobs.append(HeldBlob("sha256:" + hexd, st.st_size))
        kit = [HeldFile(h, n) for h, n in sorted(kit_index(prefix.root, everything))]
    return HaveList(tuple(blobs), tuple(versions), tuple(kit))


def kit_index(
    root: Dir, everything: Mapping[str, Mapping[str, receipts_mod.Receipt]]
) -> dict[tuple[str, int], tuple[str, str, str]]:
    """The site-kit wheels installed versions keep, by (sha256 hex, size): where one is
    (unit, version, path in the version), as its receipt says; only those still there, a
    regular file of that size (a delta's verification hashes what it reads)."""
    out: dict[tuple[str, int], tuple[str, str, str]] = {}
    for unit, versions in sorted(everything.items()):
        for version, r in sorted(versions.items()):
            for f in r.files:
                if not layout.is_installed_kit_wheel(f.path) or (f.sha256, f.size) in out:
                    continue
                folder, _, name = f.path.rpartition("/")
                try:
                    with root.walk(f"{layout.SITE_BUNDLES_DIR}/{unit}/{version}/{folder}") as d:
                        st = d.lstat(name)
                except (OSError, SiteError):
                    continue
                if st is not None and stat.S_ISREG(st.st_mode) and st.st_size == f.size:
                    out[(f.sha256, f.size)] = (unit, version, f.path)
    return out


def check_blob(
    d: Dir,
    hexd: str,
    record: Mapping[str, checked.Stamp],
    progress: Callable[[int], None] | None,
) -> tuple[str, checked.Stamp | None, bool]:
    """Store blob ``hexd`` of folder ``d`` (read without following a link): its sha256 (hex),
    the stat it had when its content was found to be ``hexd`` (None when it was not, or when it
    changed while it was read), and whether the record (packager.site.checked) vouched for it
    without a read."""
    fd = d.open_read(hexd)
    try:
        st = os.fstat(fd)
        if checked.matches(record, hexd, st):
            if progress is not None:
                progress(st.st_size)
            return hexd, checked.stamp(st), True
        h = hashlib.sha256()
        ask = read_size(st.st_size)
        while chunk := os.read(fd, ask):
            h.update(chunk)
            if progress is not None:
                progress(len(chunk))
    finally:
        os.close(fd)
    got = h.hexdigest()
    now = os.stat(hexd, dir_fd=d.fd, follow_symlinks=False)
    unchanged = checked.stamp(now) == checked.stamp(st)  # it did not change while it was read
    return got, (checked.stamp(st) if got == hexd and unchanged else None), False


def check_present(
    d: Dir,
    blobs: Mapping[str, int],
    record: Mapping[str, checked.Stamp],
    progress: Callable[[int], None] | None,
    workers: int,
) -> tuple[dict[str, int], set[str]]:
    """Store blobs (hex -> size) of folder ``d`` checked with :func:`check_blob` in parallel:
    the damaged ones (hex -> size), and the intact ones whose stat held while they were read
    (to record as checked)."""
    names = sorted(blobs)
    with ThreadPoolExecutor(workers, thread_name_prefix="store-check") as pool:
        got = dict(zip(names, pool.map(lambda h: check_blob(d, h, record, progress), names)))
    damaged = {h: blobs[h] for h, (sha, _, _) in got.items() if sha != h}
    return damaged, {h for h, (_, good, _) in got.items() if good is not None}


class StoreBlobs:
    """A prefix's store, read-only, as where a delta's left-out blobs come from.

    A blob the store's record (packager.site.checked) shows unchanged since airgap last
    established its content is taken as checked without reading it; any other is hashed.
    :attr:`good` collects both, for install to record again after it links them.

    ``site``: the prefix must exist (verify and audit name a site to check against: one that is
    not there is a usage error, SiteError); without it a prefix with no store yet (a site an
    install is about to create) holds nothing."""

    def __init__(self, prefix_path: Path, *, site: bool = False) -> None:
        self.where = str(prefix_path / layout.SITE_BLOBS_DIR)
        self._prefix: Prefix | None = None
        self._store: BlobStore | None = None
        self._record: dict[str, checked.Stamp] = {}
        #: hex -> the stat it had when its content was found right
        self.good: dict[str, checked.Stamp] = {}
        self.unchanged = self.unchanged_bytes = 0
        self._kit: dict[tuple[str, int], tuple[str, str, str]] | None = None
        if site or (prefix_path / layout.SITE_BLOBS_DIR).is_dir():
            self._prefix = Prefix.open(prefix_path, create=False)
            try:
                with contextlib.suppress(FileNotFoundError):  # no store yet: it holds no blob
                    self._store = BlobStore(self._prefix.root, create=False)
                if self._store is not None:
                    self._record = checked.read_record(self._prefix.root)
            except BaseException:
                self._prefix.close()
                raise

    def has(self, hexd: str, size: int) -> bool:
        return self._store is not None and self._store.has(hexd, size)

    def hash(self, hexd: str, progress: Callable[[int], None] | None) -> str:
        """The blob's sha256 (hex): read and hashed, or its name when the record shows it
        unchanged since it was checked."""
        assert self._store is not None
        got, good, taken = check_blob(self._store.dir, hexd, self._record, progress)
        if good is not None:
            self.good[hexd] = good
            if taken:
                self.unchanged += 1
                self.unchanged_bytes += good[1]  # the stamp's size
        return got

    def has_kit(self, sha256: str, size: int) -> bool:
        """Whether an installed version keeps that site-kit wheel (a regular file of that size;
        its content is hashed when :meth:`kit_file` reads it)."""
        return self._kit_where(sha256, size) is not None

    def _kit_where(self, sha256: str, size: int) -> tuple[str, str, str] | None:
        if self._prefix is None:
            return None
        if self._kit is None:
            everything, _ = receipts_mod.read_all(self._prefix.root)
            self._kit = kit_index(self._prefix.root, everything)
        return self._kit.get((sha256, size))

    def kit_file(self, sha256: str, size: int) -> tuple[bytes, str] | None:
        """A site-kit wheel of that sha256 and size, read from an installed version's
        ``.airgap/site/wheels/`` (no link followed; at most ``size`` + 1 bytes: the caller
        hashes them against the delta's signed sha256) and that file's path; None when no
        version keeps one."""
        where = self._kit_where(sha256, size)
        if where is None or self._prefix is None:
            return None
        unit, version, path = where
        folder, _, name = f"{layout.SITE_BUNDLES_DIR}/{unit}/{version}/{path}".rpartition("/")
        try:
            with self._prefix.root.walk(folder) as d:
                fd = d.open_read(name)
                try:
                    chunks, got = [], 0
                    while got <= size and (chunk := os.read(fd, min(CHUNK, size + 1 - got))):
                        chunks.append(chunk)
                        got += len(chunk)
                finally:
                    os.close(fd)
        except (OSError, SiteError):
            return None
        return b"".join(chunks), self._prefix.root.path_of(f"{folder}/{name}")

    def changed(self) -> list[str]:
        """The checked blobs whose stat is no longer what it was when they were checked."""
        assert self._store is not None
        out = []
        for hexd, was in self.good.items():
            st = self._store.dir.lstat(hexd)
            if st is None or checked.stamp(st) != was:
                out.append(hexd)
        return sorted(out)

    def summary(self) -> str | None:
        if not self.unchanged:
            return None
        return (
            f"{self.unchanged} blob(s) of the store were taken as checked without reading them "
            f"({self.unchanged_bytes} bytes): unchanged (inode, size, mtime, ctime) since airgap "
            f"hashed them ({layout.SITE_CHECKED_RECORD})"
        )

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._prefix is not None:
            self._prefix.close()
