"""The prefix's content-addressed store ``DIR/blobs/sha256/<hex>``, shared by every bundle.

A blob is streamed into a new file of the staging folder (O_EXCL|O_NOFOLLOW, mode 0644), hashed
while it is written, capped at its signed size (reading stops one byte past it), fsynced, and only
then renamed to its final name: a final name always holds complete, matching content. Large blobs
are written with O_DIRECT where the file system takes it (no copy through the page cache, and
the fsync has little left to wait for); others are handed to the disk every 32 MiB.

Many small blobs are stored in batches (:meth:`BlobStore.put_batches`): each is written and
checked under its temporary name, then one ``syncfs`` makes the whole batch durable, and only then
are they renamed, so the rule above holds with one sync per batch instead of one per blob. One
thread writes them, while another syncs the batch before.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
import hashlib
import mmap
import os
import stat
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from packager.bundle import layout
from packager.bundle.reader import SMALL_MEMBER
from packager.errors import CheckFailed
from packager.site.safefs import CONTENT_FILE_MODE, Dir, SiteError, os_error

CHUNK = 4 * 1024 * 1024


class ContentMismatch(CheckFailed):
    """Bytes read from the bundle are not what its verified descriptor says (changed since)."""


@dataclass(frozen=True)
class Span:
    """A blob as a byte range of an open file: a member of a one-file tar, or a file of a layout
    folder. Read with ``pread`` (threads share the fd), so no layer of buffering copies it."""

    fd: int
    offset: int
    length: int  # what the source holds for this blob (the tar header's size, the file's size)


#: blobs at least this large are written with O_DIRECT where the file system takes it
DIRECT_MIN = 8 * 1024 * 1024
DIRECT_ALIGN = 4096

#: blobs at least this large are hashed by a second thread while they are written
OVERLAP_MIN = 2 * CHUNK

#: written data is handed to the disk every this many bytes (it would otherwise pile up in the
#: page cache and the final fsync would wait for all of it)
WRITEBACK = 32 * 1024 * 1024


def _write_all(fd: int, chunk: memoryview, direct: list[bool]) -> None:
    """Write ``chunk``; with O_DIRECT on ``fd`` a length that is not a whole number of blocks (a
    blob's tail) or a refusal (EINVAL) turns O_DIRECT off for the rest of the file."""
    if direct[0] and len(chunk) % DIRECT_ALIGN:
        _buffered(fd, direct)
    while chunk:
        try:
            w = os.write(fd, chunk)
        except OSError as exc:
            if not (direct[0] and exc.errno == errno.EINVAL):
                raise
            _buffered(fd, direct)
            continue
        chunk = chunk[w:]


def _buffered(fd: int, direct: list[bool]) -> None:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
    direct[0] = False


def capped_copy(
    src: BinaryIO | Span,
    fd: int,
    size: int,
    *,
    what: str,
    progress: Callable[[int], None] | None = None,
    step: Callable[[], None] | None = None,
) -> str:
    """Copy exactly ``size`` bytes of ``src`` into ``fd`` and return their sha256 hex.

    The bytes hashed are the bytes written (one private, page-aligned buffer, so that ``fd`` may
    be opened with O_DIRECT: the data then goes to the disk without a copy into the page cache).
    Never reads past the signed size: a stream longer than ``size`` is refused
    (:class:`ContentMismatch`) after one byte too many, a span of another length before anything
    is read, and a shorter source too.
    """
    if isinstance(src, Span) and src.length != size:
        raise ContentMismatch(f"{what}: the bundle holds {src.length} bytes, signed size is {size}")
    h = hashlib.sha256()
    direct = [bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)]
    readinto = None if isinstance(src, Span) else cast(Any, src).readinto  # BinaryIO lacks it
    done = flushed = 0
    # anonymous memory, aligned to a page; freed with the last view of it (not closed here: a
    # slice may still be referenced by a traceback)
    view = memoryview(mmap.mmap(-1, CHUNK))
    # a large blob's chunk is hashed by a second thread while this one writes it (both let go
    # of the GIL): the copy takes the longer of the two, not their sum
    hasher = ThreadPoolExecutor(1, thread_name_prefix="hash") if size >= OVERLAP_MIN else None
    try:
        while done < size:
            want = view[: min(CHUNK, size - done)]
            n = (
                os.preadv(src.fd, [want], src.offset + done)
                if isinstance(src, Span)
                else readinto(want)  # type: ignore[misc]
            )
            if not n:
                raise ContentMismatch(f"{what}: ends after {done} bytes, signed size is {size}")
            if hasher is None:
                h.update(view[:n])
                _write_all(fd, view[:n], direct)
            else:
                hashed = hasher.submit(h.update, view[:n])
                try:
                    _write_all(fd, view[:n], direct)
                finally:  # the buffer is read again only once the hash is done with it
                    hashed.result()
            done += n
            if not direct[0] and done - flushed >= WRITEBACK:  # write back now: fsync waits less
                os.posix_fadvise(fd, flushed, done - flushed, os.POSIX_FADV_DONTNEED)
                flushed = done
            if progress is not None:
                progress(n)
            if step is not None:
                step()
    finally:
        if hasher is not None:
            hasher.shutdown()
    if not isinstance(src, Span) and src.read(1):
        raise ContentMismatch(f"{what}: longer than its signed size {size}: refused")
    return h.hexdigest()


#: blobs up to this size may be stored in batches (:meth:`BlobStore.put_batches`): read whole,
#: as a bundle reads a small member in place (packager.bundle.reader.SMALL_MEMBER)
BATCH_MAX_BLOB = SMALL_MEMBER
#: a batch holds at most this many blobs, or bytes (one file-system sync each)
BATCH_BLOBS = 1024
BATCH_BYTES = 64 * 1024 * 1024


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs`` (Linux), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return cast(Callable[[int], int], fn)


def sync_files(d: Dir, names: Sequence[str]) -> None:
    """Make the files ``names`` of folder ``d`` (written, closed, not yet synced) durable: one
    ``syncfs`` of ``d``'s file system (since Linux 5.8 it reports a write-back error of any file
    there since ``d`` was opened, as an fsync of each would); an fsync per file where syncfs
    is missing or refused (another OS, a sandbox)."""
    sync_written([(d, names)])


def sync_written(groups: Sequence[tuple[Dir, Sequence[str]]]) -> None:
    """:func:`sync_files` for files of several folders of one file system: one ``syncfs`` (of
    the first folder's), or an fsync of each file."""
    syncfs = _syncfs()
    if syncfs is not None and groups:
        if syncfs(groups[0][0].fd) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EPERM, errno.EACCES):
            raise OSError(err, os.strerror(err))
    for d, names in groups:
        for name in names:
            fd = d.open_read(name)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


#: FICLONE (linux/fs.h): the destination shares the source's extents (copy on write)
FICLONE = 0x40049409


def _reflinked(out: int, src: int) -> bool:
    """Whether ``out`` now shares ``src``'s extents (False: another file system, or one that
    shares none; copy instead)."""
    try:
        fcntl.ioctl(out, FICLONE, src)
    except OSError:
        return False
    return True


class BlobStore:
    """``DIR/blobs/sha256`` opened (and created) without following links."""

    def __init__(self, prefix: Dir, *, create: bool) -> None:
        self.dir = prefix.walk(layout.SITE_BLOBS_DIR, create=create)

    def close(self) -> None:
        self.dir.close()

    def _refuse_planted(self, hexd: str) -> None:
        """Nothing but a file (a damaged blob of the wrong size) may be renamed over."""
        kind = self.dir.kind(hexd)
        if kind not in (None, "file"):
            raise SiteError(
                f"{self.dir.path_of(hexd)} is a {kind}: refusing to replace it",
                hint="something planted it in the store; remove it and run again",
            )

    def has(self, hexd: str, size: int) -> bool:
        """A regular file of the right size under the blob's name (its content was hashed when it
        was stored; `airgap audit --site` hashes the installed files)."""
        st = self.dir.lstat(hexd)
        return st is not None and stat.S_ISREG(st.st_mode) and st.st_size == size

    def put(
        self,
        hexd: str,
        size: int,
        src: BinaryIO | Span,
        staging: Dir,
        *,
        what: str,
        progress: Callable[[int], None] | None = None,
        step: Callable[[], None] | None = None,
    ) -> None:
        """Stream ``src`` into the store as blob ``hexd`` of ``size`` bytes (see the module)."""
        tmp = f"blob-{hexd}"
        fd = staging.create(tmp, CONTENT_FILE_MODE, direct=size >= DIRECT_MIN)
        try:
            try:
                got = capped_copy(src, fd, size, what=what, progress=progress, step=step)
                os.fsync(fd)
            except OSError as exc:
                raise os_error(exc, self.dir.path_of(hexd)) from None
        finally:
            os.close(fd)
        if got != hexd:
            staging.unlink(tmp)
            raise ContentMismatch(
                f"{what}: content is sha256:{got}, not sha256:{hexd} (the bundle changed after "
                "it was verified?)",
                hint="verify the bundle again: airgap verify BUNDLE",
            )
        if step is not None:
            step()
        self.enter(hexd, staging, tmp)

    def enter(self, hexd: str, staging: Dir, tmp: str) -> None:
        """Staging's ``tmp`` (complete, durable, hashed to ``hexd``) renamed into the store."""
        self._refuse_planted(hexd)
        staging.rename(tmp, self.dir, hexd)  # over a damaged one of the wrong size, if any

    def put_batches(
        self,
        batches: Sequence[list[tuple[str, int, str]]],
        read: Callable[[str, int, str], bytes],
        staging: Dir,
        *,
        progress: Callable[[int], None] | None = None,
        step: Callable[[], None] | None = None,
    ) -> None:
        """Store small blobs in ``batches``, each blob ``(hexd, size, what)`` with ``read(hexd,
        size, what)`` giving the bytes the bundle holds of it (at most ``size``: the caller
        refuses a member of another size before reading it).

        Each is hashed and written to a new file of ``staging``, one at a time (one blob's
        bytes in memory); a short or wrong one is refused (:class:`ContentMismatch`) before
        anything of its batch gets its name. Then one file-system sync (:func:`sync_files`)
        makes every file of the batch durable, and only after it are they renamed into the
        store: as with :meth:`put`, a blob is on disk before its name appears, and a crash or a
        full disk leaves only temporary files in ``staging`` (which the install discards).

        This thread writes each batch while another syncs the batch before it. One thread makes
        the files: threads that create files in one folder contend for its lock in the kernel
        (and for the GIL): four of them storing 50,000 small blobs spent 20-40 s of system time
        spinning, one spends none."""
        with ThreadPoolExecutor(1, thread_name_prefix="store-sync") as syncer:
            pending: tuple[Future[None], list[str]] | None = None
            for blobs in batches:
                written = self._write_batch(blobs, read, staging, progress, step)
                if not written:  # nothing to make durable
                    continue
                synced = syncer.submit(sync_files, staging, [f"blob-{h}" for h in written])
                if pending is not None:
                    self._name_batch(*pending, staging, step)
                pending = (synced, written)
            if pending is not None:
                self._name_batch(*pending, staging, step)

    def _write_batch(
        self,
        blobs: list[tuple[str, int, str]],
        read: Callable[[str, int, str], bytes],
        staging: Dir,
        progress: Callable[[int], None] | None,
        step: Callable[[], None] | None,
    ) -> list[str]:
        """Each blob of a batch checked and written to its temporary file (not synced)."""
        written: list[str] = []
        for hexd, size, what in blobs:
            data = read(hexd, size, what)
            if len(data) != size:
                raise ContentMismatch(
                    f"{what}: ends after {len(data)} bytes, signed size is {size}"
                )
            got = hashlib.sha256(data).hexdigest()
            if got != hexd:
                raise ContentMismatch(
                    f"{what}: content is sha256:{got}, not sha256:{hexd} (the bundle changed after "
                    "it was verified?)",
                    hint="verify the bundle again: airgap verify BUNDLE",
                )
            tmp = f"blob-{hexd}"
            fd = staging.create(tmp, CONTENT_FILE_MODE)
            try:
                try:
                    _write_all(fd, memoryview(data), [False])
                except OSError as exc:
                    raise os_error(exc, self.dir.path_of(hexd)) from None
            finally:
                os.close(fd)
            written.append(hexd)
            if progress is not None:
                progress(size)
            if step is not None:
                step()
        return written

    def _name_batch(
        self,
        synced: Future[None],
        written: list[str],
        staging: Dir,
        step: Callable[[], None] | None,
    ) -> None:
        """Once a batch's sync returned (its error raised, naming staging), its blobs named."""
        try:
            synced.result()
        except OSError as exc:
            raise os_error(exc, staging.where) from None
        if step is not None:
            step()
        for hexd in written:  # every one durable: now they may have their names
            self.enter(hexd, staging, f"blob-{hexd}")

    def adopt(
        self,
        hexd: str,
        size: int,
        src: Dir,
        staging: Dir,
        *,
        what: str,
        progress: Callable[[int], None] | None = None,
    ) -> bool:
        """Take ``src/hexd`` (a blob pulled into the same file system, already fsynced) into
        the store by a hard link instead of a copy: the linked file is hashed as it is and
        renamed into place only when it is ``hexd`` of ``size`` bytes. False when the file
        system cannot link (then :meth:`put` copies)."""
        tmp = f"blob-{hexd}"
        if not staging.link_from(src, hexd, tmp):
            return False
        fd = staging.open_read(tmp)
        try:
            h = hashlib.sha256()
            got = 0
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            while got <= size and (n := os.readv(fd, [buf])):
                h.update(view[:n])
                got += n
                if progress is not None:
                    progress(n)
            os.fchmod(fd, CONTENT_FILE_MODE)
        except OSError as exc:
            raise os_error(exc, self.dir.path_of(hexd)) from None
        finally:
            os.close(fd)
        if got != size or h.hexdigest() != hexd:
            staging.unlink(tmp)
            raise ContentMismatch(
                f"{what}: content is sha256:{h.hexdigest()} ({got} bytes), not sha256:{hexd} "
                f"({size} bytes) (the pulled bundle changed after it was verified?)",
                hint="run the install again: it fetches what is damaged",
            )
        self.enter(hexd, staging, tmp)
        return True

    def copy_to(
        self, hexd: str, size: int, d: Dir, name: str, mode: int, *, reflink: bool = False
    ) -> str | None:
        """Copy blob ``hexd`` (``size`` bytes, no more read) into a new file ``d/name`` of
        ``mode``, fsynced; returns the sha256 hex of what was copied (the caller compares).
        ``reflink``: where the file system shares extents (btrfs, XFS), the new file shares the
        blob's instead: nothing is read or written, and None is returned. The blob is only
        read: its inode, mode and owner stay as they are."""
        src = self.dir.open_read(hexd)
        try:
            stored = os.fstat(src).st_size
            if stored != size:
                raise ContentMismatch(
                    f"{self.dir.path_of(hexd)}: the stored blob has {stored} bytes, not {size}",
                    hint="remove that blob and run again",
                )
            out = d.create(name, mode)
            try:
                got = None
                if not (reflink and _reflinked(out, src)):
                    got = capped_copy(Span(src, 0, size), out, size, what=self.dir.path_of(hexd))
                os.fsync(out)
            finally:
                os.close(out)
        except OSError as exc:
            raise os_error(exc, d.path_of(name)) from None
        finally:
            os.close(src)
        return got

    def names(self) -> list[str]:
        return [n for n in self.dir.names() if len(n) == 64]

    def size_of(self, hexd: str) -> int:
        st = self.dir.lstat(hexd)
        return st.st_size if st is not None else 0
