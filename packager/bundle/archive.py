"""Deterministic tar output, whole or in parts, written in one streaming pass.

Entries come in the order they are added (the builder adds them sorted), with a fixed mtime,
uid/gid 0, no user or group names and plain ustar headers (no extended times). File content is
copied in 4 MiB chunks while a second thread hashes the previous chunk, so hashing hides behind
the copy; a file whose digest or size differs from what the lock promised aborts the build.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import tarfile
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, NamedTuple, Protocol, Union

from packager.bundle import layout
from packager.bundle.parts import Part
from packager.errors import InputError, LockMismatch

CHUNK = 4 * 1024 * 1024
#: files up to this size are read in one call and hashed inline (no 2x CHUNK buffers per file)
SMALL = 1024 * 1024
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE


class OutputError(InputError):
    """The output could not be written: not writable, disk full."""


def write_error(where: Path, exc: OSError) -> OutputError:
    import errno

    if exc.errno == errno.ENOSPC:
        return OutputError(
            f"{where}: no space left on the device",
            hint="free space or write elsewhere with --out; nothing partial was left behind",
        )
    return OutputError(f"{where}: cannot write: {exc.strerror}", hint="check --out")


class Sink:
    """Where the tar bytes go. Subclasses write temporary files and rename them on commit."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        raise NotImplementedError

    def commit(self) -> list[Path]:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


def _tmp_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}.partial")


class FileSink(Sink):
    """One file, written as ``.NAME.PID.partial`` and renamed into place on commit."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = _tmp_path(final)
        try:
            self._fh: BinaryIO = open(self.tmp, "wb")  # noqa: SIM115 - closed in commit/abort
        except OSError as exc:
            raise write_error(final.parent, exc) from None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        try:
            self._fh.write(data)
        except OSError as exc:
            raise write_error(self.final, exc) from None

    def rewrite(self, offset: int, data: bytes) -> None:
        """Overwrite bytes already written at ``offset`` (a tar header, once its name is known)."""
        try:
            self._fh.flush()
            os.pwrite(self._fh.fileno(), data, offset)
        except OSError as exc:
            raise write_error(self.final, exc) from None

    def cut(self, offset: int) -> None:
        """Drop everything from ``offset`` on (a blob written twice); writing goes on there.
        Also how this sink takes over a file whose first ``offset`` bytes another process
        wrote (packager.bundle.onepass.ModelWrite)."""
        try:
            self._fh.flush()
            self._fh.truncate(offset)
            self._fh.seek(offset)
        except OSError as exc:
            raise write_error(self.final, exc) from None

    def commit(self) -> list[Path]:
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self.tmp, self.final)
        except OSError as exc:
            self.abort()
            raise write_error(self.final, exc) from None
        return [self.final]

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()
        self.tmp.unlink(missing_ok=True)


class PartsSink(Sink):
    """Parts of at most ``part_size`` bytes, each hashed as it is written."""

    def __init__(self, folder: Path, name_for: Callable[[int], str], part_size: int) -> None:
        if part_size < BLOCK:
            raise InputError(f"--split {part_size}: a part must hold at least {BLOCK} bytes")
        self.folder = folder
        self.name_for = name_for
        self.part_size = part_size
        self.parts: list[Part] = []
        self._tmps: list[tuple[Path, Path]] = []
        self._fh: BinaryIO | None = None
        self._h = hashlib.sha256()
        self._n = 0

    def _open(self) -> None:
        final = self.folder / self.name_for(len(self._tmps))
        tmp = _tmp_path(final)
        try:
            self._fh = open(tmp, "wb")  # noqa: SIM115 - closed in _close/abort
        except OSError as exc:
            raise write_error(self.folder, exc) from None
        self._tmps.append((tmp, final))
        self._h = hashlib.sha256()
        self._n = 0

    def _close(self) -> None:
        assert self._fh is not None
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        self.parts.append(Part(self._tmps[-1][1].name, self._n, self._h.hexdigest()))

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                if self._fh is None:
                    self._open()
                assert self._fh is not None
                room = self.part_size - self._n
                piece = view[:room]
                self._fh.write(piece)
                self._h.update(piece)
                self._n += len(piece)
                view = view[len(piece) :]
                if self._n == self.part_size:
                    self._close()
        except OSError as exc:
            raise write_error(self.folder, exc) from None

    def commit(self) -> list[Path]:
        try:
            if self._fh is not None:
                self._close()
            for tmp, final in self._tmps:
                os.replace(tmp, final)
        except OSError as exc:
            self.abort()
            raise write_error(self.folder, exc) from None
        return [final for _, final in self._tmps]

    def abort(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
        for tmp, _ in self._tmps:
            tmp.unlink(missing_ok=True)


def copy_verified(
    source: Path | str,
    write: Callable[[memoryview], object],
    *,
    size: int,
    sha256: str,
    what: str,
    pool: ThreadPoolExecutor,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Copy ``source`` to ``write`` in CHUNK pieces while ``pool`` hashes the previous piece;
    raise LockMismatch when the bytes are not the ``size`` and ``sha256`` the lock promised."""
    got, copied, grown, _ = copy_hashing(
        source, write, size=size, what=what, pool=pool, progress=progress
    )
    _check_copy(source, what, size, sha256, copied, grown, got)


def _unreadable(source: Path | str, what: str, exc: OSError) -> InputError:
    return InputError(
        f"{what} ({source}): cannot read: {exc.strerror}",
        hint="it was there at lock time; restore it or lock again",
    )


def _read_whole(source: Path | str, size: int, what: str) -> tuple[bytes, bool]:
    """At most ``size`` bytes of a small file, in one read where the kernel gives them so:
    (its bytes, whether it holds more than ``size``). A short read is not the end: read to
    EOF, or to one byte past ``size``."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise _unreadable(source, what, exc) from None
    try:
        data = b""
        while len(data) <= size:
            more = os.read(fd, size + 1 - len(data))
            if not more:
                break
            data += more
    except OSError as exc:
        raise _unreadable(source, what, exc) from None
    finally:
        os.close(fd)
    return data[:size], len(data) > size


def copy_hashing(
    source: Path | str,
    write: Callable[[memoryview], object],
    *,
    size: int,
    what: str,
    pool: ThreadPoolExecutor,
    progress: Callable[[int], None] | None = None,
    head: int = 0,
) -> tuple[str, int, bool, bytes]:
    """Copy at most ``size`` bytes of ``source`` to ``write`` while ``pool`` hashes: (sha256 hex
    of what was copied, bytes copied, whether the file holds more than ``size``, its first
    ``head`` bytes as far as the first read holds them)."""
    h = hashlib.sha256()
    pending: Future[None] | None = None
    copied = 0
    if size <= SMALL:  # one read, hashed here: no buffers to allocate, no thread to wake
        data, grown = _read_whole(source, size, what)
        h.update(data)
        write(memoryview(data))
        copied = len(data)
        if progress:
            progress(copied)
        return h.hexdigest(), copied, grown, data[:head]
    try:
        fh = open(source, "rb", buffering=0)  # noqa: SIM115
    except OSError as exc:
        raise _unreadable(source, what, exc) from None
    bufs = (bytearray(CHUNK), bytearray(CHUNK))
    first = b""
    with fh:
        i = 0
        while copied < size:
            buf = bufs[i % 2]
            n = fh.readinto(memoryview(buf)[: min(CHUNK, size - copied)])
            if not n:
                break
            view = memoryview(buf)[:n]
            if i == 0 and head:
                first = bytes(view[:head])
            if pending is not None:
                pending.result()  # the other buffer is free again
            pending = pool.submit(h.update, view)
            write(view)
            copied += n
            i += 1
            if progress:
                progress(n)
        grown = bool(fh.read(1))
    if pending is not None:
        pending.result()
    return h.hexdigest(), copied, grown, first


def _check_copy(
    source: Path | str, what: str, size: int, sha256: str, copied: int, grown: bool, got: str
) -> None:
    if copied != size or grown:
        raise LockMismatch(
            f"{what} ({source}) changed size since the lock: locked {size} bytes, "
            f"now {'more' if grown else copied}",
            hint="the input changed between lock and build; review it and lock again",
        )
    if got != sha256:
        raise LockMismatch(
            f"{what} ({source}) changed since the lock: sha256 {got}, locked {sha256}",
            hint="the input changed between lock and build; review it and lock again",
        )


@dataclass(frozen=True)
class FileContent:
    """An entry copied from a local file at write time, verified against the lock as it goes."""

    source: Path
    size: int
    sha256: str  # hex
    what: str  # for error messages


#: what goes at a path of the output: generated bytes, or a file to copy
Entry = Union[bytes, FileContent]


class EntryWriter(Protocol):
    """An output of the build: the tar (:class:`TarWriter`) or a folder (:class:`FolderWriter`)."""

    def add_dir(self, name: str) -> None: ...

    def add_bytes(self, name: str, data: bytes) -> None: ...

    def add_file(
        self,
        name: str,
        source: Path,
        *,
        size: int,
        sha256: str,
        what: str,
        progress: Callable[[int], None] | None = None,
    ) -> None: ...


def write_entries(
    writer: EntryWriter,
    entries: dict[str, Entry],
    progress: Callable[[int], None] | None,
    *,
    first: Sequence[str] = (),
    written: Collection[str] = (),
) -> None:
    """Every entry and the folders above it, in the archive's order (layout.archive_order:
    deterministic), except ``written``: the names a one-pass build wrote already, with the
    folders above them (:meth:`TarWriter.add_hashed_file`)."""
    for name in layout.archive_order(entries, first):
        if name in written:
            continue
        item = entries.get(name)
        if item is None:
            writer.add_dir(name)
            continue
        if isinstance(item, bytes):
            writer.add_bytes(name, item)
            if progress is not None and layout.digest_of_blob_path(name):
                progress(len(item))  # a blob made in memory (a manifest, the SBOM) counts too
        else:
            writer.add_file(
                name, item.source, size=item.size, sha256=item.sha256, what=item.what,
                progress=progress,
            )  # fmt: skip


def ustar_header(name: str, size: int, mtime: int, *, directory: bool = False) -> bytes:
    """The ustar header ``tarfile.TarInfo.tobuf(USTAR_FORMAT, "utf-8", "strict")`` writes for a
    file (0644) or a folder (0755) owned by 0:0 with no user or group names, byte for byte;
    built here when the name fits the name field and the numbers their fields (a bundle of
    50,000 files would spend seconds in TarInfo), else by tarfile itself."""
    if directory and not name.endswith("/"):
        name += "/"  # as tarfile names a folder
    raw = name.encode("utf-8")
    if len(raw) > 100 or not (0 <= size < 8**11 and 0 <= mtime < 8**11) or not _fast_ok():
        return _tarfile_header(name, size, mtime, directory=directory)
    return _ustar(raw, size, mtime, directory)


def _tarfile_header(name: str, size: int, mtime: int, *, directory: bool) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")


@functools.cache
def _fast_ok() -> bool:
    """This Python's tarfile writes the headers :func:`_ustar` does (checked once)."""
    return all(
        _ustar(n.encode(), 2048, 1700000000, d) == _tarfile_header(n, 2048, 1700000000, directory=d)
        for n, d in (("blobs/sha256/" + "0" * 64, False), ("blobs/", True))
    )


def _ustar(raw: bytes, size: int, mtime: int, directory: bool) -> bytes:
    head = b"".join(
        (
            raw.ljust(100, b"\0"),
            b"0000755\0" if directory else b"0000644\0",
            b"0000000\0" * 2,  # uid, gid
            b"%011o\0" % size,
            b"%011o\0" % mtime,
        )
    )
    tail = b"".join(
        (
            tarfile.DIRTYPE if directory else tarfile.REGTYPE,
            bytes(100),  # linkname
            tarfile.POSIX_MAGIC,
            bytes(64),  # uname, gname
            bytes(16 + 155 + 12),  # devmajor, devminor (no device), prefix, the block's padding
        )
    )
    checksum = sum(head) + sum(tail) + 8 * 0x20  # the checksum field counts as spaces
    return head + b"%06o\0 " % checksum + tail


class Hashed(NamedTuple):
    """A file copied in by :meth:`TarWriter.add_hashed_file`."""

    sha256: str  # hex
    kept: bool  # False: its content was in the archive already
    head: bytes  # its first bytes, as many as asked for and the first read held


class TarWriter:
    """A deterministic ustar stream into a Sink."""

    def __init__(self, sink: Sink, mtime: int | None) -> None:
        """``mtime`` None: not known yet (a one-pass build, before its lock exists); every
        header is then written with a placeholder time and rewritten by :meth:`set_mtime`."""
        self.sink = sink
        self.mtime = mtime
        self.size = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tar-hash")
        #: headers to rewrite once the time is known: (offset, name, size, directory)
        self._unsettled: list[tuple[int, str, int, bool]] = []

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        self.sink.write(data)
        self.size += len(data)

    def _header_bytes(self, name: str, size: int, *, directory: bool = False) -> bytes:
        return ustar_header(name, 0 if directory else size, self.mtime or 0, directory=directory)

    def _header(self, name: str, size: int, *, directory: bool = False) -> None:
        if self.mtime is None:
            self._unsettled.append((self.size, name, size, directory))
        self._emit(self._header_bytes(name, size, directory=directory))

    def _seekable(self) -> FileSink:
        if not isinstance(self.sink, FileSink):
            raise TypeError("a one-pass build writes one tar file (no parts)")
        return self.sink

    def add_hashed_file(
        self,
        source: Path,
        *,
        size: int,
        what: str,
        written: set[str],
        progress: Callable[[int], None] | None = None,
        head: int = 0,
    ) -> Hashed:
        """Copy ``source`` in as the blob of its own content, read once: the header goes out
        with a placeholder name, the content is hashed while it is copied, and the header is
        rewritten with the digest's name. A blob already ``written`` is cut out again (a model
        file listed twice with one content is stored once); ``written`` gains the blob's name.
        ``head``: how many first bytes to hand back (from the first read)."""
        sink = self._seekable()
        start = self.size
        self._header(layout.blob_path("sha256:" + "0" * 64), size)
        hexd, copied, grown, first = copy_hashing(
            source, self._emit, size=size, what=what, pool=self._pool, progress=progress,
            head=head,
        )  # fmt: skip
        if copied != size or grown:
            raise LockMismatch(
                f"{what} ({source}) changed size while it was read: {size} bytes when looked at, "
                f"now {'more' if grown else copied}",
                hint="something is writing to the model files; let it finish, then build again",
            )
        name = layout.blob_path("sha256:" + hexd)
        if name in written:
            sink.cut(start)
            self.size = start
            if self.mtime is None:
                self._unsettled.pop()
            return Hashed(hexd, False, first)
        written.add(name)
        self._pad(size)
        if self.mtime is None:
            self._unsettled[-1] = (start, name, size, False)
        else:
            sink.rewrite(start, self._header_bytes(name, size))
        return Hashed(hexd, True, first)

    def set_mtime(self, mtime: int) -> None:
        """The archive's time, now known: every header written before is rewritten with it."""
        self.mtime = mtime
        if self._unsettled:
            sink = self._seekable()
            for offset, name, size, directory in self._unsettled:
                sink.rewrite(offset, self._header_bytes(name, size, directory=directory))
            self._unsettled.clear()

    def _pad(self, size: int) -> None:
        rest = size % BLOCK
        if rest:
            self._emit(b"\0" * (BLOCK - rest))

    def add_dir(self, name: str) -> None:
        self._header(name, 0, directory=True)

    def add_bytes(self, name: str, data: bytes) -> None:
        self._header(name, len(data))
        self._emit(data)
        self._pad(len(data))

    def add_file(
        self,
        name: str,
        source: Path | str,
        *,
        size: int,
        sha256: str,
        what: str,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Copy ``source`` into the archive, hashing while copying; it must be what was locked."""
        self._header(name, size)
        copy_verified(
            source,
            self._emit,
            size=size,
            sha256=sha256,
            what=what,
            pool=self._pool,
            progress=progress,
        )
        self._pad(size)

    def close(self) -> None:
        self._emit(b"\0" * (2 * BLOCK))
        rest = self.size % RECORD
        if rest:
            self._emit(b"\0" * (RECORD - rest))
        self._pool.shutdown()

    def __enter__(self) -> TarWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pool.shutdown(wait=True)


class FolderWriter:
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
        dest = self.root / name
        with (
            open(dest, "wb") as out,
            ThreadPoolExecutor(1, thread_name_prefix="layout-hash") as pool,
        ):
            copy_verified(
                source, out.write, size=size, sha256=sha256, what=what, pool=pool, progress=progress
            )
        os.utime(dest, (self.mtime, self.mtime))


def write_folder(
    final: Path, entries: dict[str, Entry], progress: Callable[[int], None] | None, mtime: int
) -> Path:
    """The entries as a folder, built under a temporary name and renamed into place."""
    tmp = _tmp_path(final)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        write_entries(FolderWriter(tmp, mtime), entries, progress)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_error(final, exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
