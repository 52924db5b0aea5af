"""A cold build's one read of the model: the files go into the tar as they are hashed.

A build with no lock yet must lock before it can write ``bundle.json``, and the lock needs every
model file's digest. Read naively, each file is read twice: hashed for the lock, then copied
(and hashed again) into the tar. Here each model file is copied into the tar once, in the lock's
order, hashed while it is copied (packager.bundle.archive.TarWriter.add_hashed_file): its header
goes out with a placeholder name and is rewritten with its digest's name. The digests go into
the stat cache, with how each file runs code at load time (from the first read), so the lock that
follows stats the files instead of opening them again. The
archive's order (layout.archive_order: blobs first, model files in the lock's order, then the
rest, ``bundle.json`` after the blobs) is what a build from the lock writes too, so both give the
same bytes.

A file whose stat changed while it was read (a write; or only its ctime, from a new hard link) is
not given to the stat cache: the lock reads it again, and when its digest differs from what went
into the tar, the build stops (LockMismatch) before the lock is written. Both list the folder with
packager.resolve.weights.model_files; when the lock still lists other files (one added between the
two listings), the tar is dropped and written the usual way.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from packager.bundle import layout
from packager.bundle.archive import (
    Entry,
    FileSink,
    Sink,
    TarWriter,
    write_entries,
    write_error,
)
from packager.errors import LockMismatch, ResolveError
from packager.manifest.model import Manifest
from packager.resolve.lockfile import Lock
from packager.resolve.statcache import Fact, StatCache, stat_key
from packager.util.forked import Forked
from packager.util.progress import Reporter

if TYPE_CHECKING:
    from packager.resolve.weights import Listed


@dataclass
class OnePass:
    """The tar being written, holding the model files read so far."""

    sink: FileSink
    writer: TarWriter
    #: the members written already (the blob folders and the model files' blobs)
    written: set[str] = field(default_factory=set)
    #: (relative path, sha256 hex, size) of each model file, in the lock's order
    files: list[tuple[str, str, int]] = field(default_factory=list)
    #: the bytes of the blobs written
    bytes: int = 0

    #: the lock that follows lists the files read, in the same order (set by :meth:`check`)
    matches: bool = False

    @classmethod
    def start(
        cls, manifest: Manifest, final: Path, *, cache: StatCache, reporter: Reporter
    ) -> OnePass:
        """Write every model file of ``manifest`` into a new tar that will be ``final``."""
        from packager.resolve.weights import model_files

        chosen = model_files(manifest).chosen  # the lock's own listing, stat and real paths
        sink = FileSink(final)
        one = cls(sink, TarWriter(sink, None))
        try:
            one._read(chosen, cache, reporter)
        except BaseException:
            one.abort()
            raise
        return one

    def _read(self, chosen: list[Listed], cache: StatCache, reporter: Reporter) -> None:
        from packager.compat.load_code import name_class
        from packager.resolve.weights import code_probes

        probes = code_probes()
        reporter.phase(
            "reading the model files into the bundle", sum(st.st_size for _, (_, st) in chosen)
        )
        for name in layout.BLOB_FOLDERS:
            self.writer.add_dir(name)
            self.written.add(name)
        for rel, (real, st) in chosen:
            probe = probes[name_class(rel)]
            got = self.writer.add_hashed_file(
                Path(real), size=st.st_size, what=f"model file {rel}", written=self.written,
                progress=reporter.advance, head=probe.head,
            )  # fmt: skip
            try:
                after = os.stat(real)
            except OSError as exc:
                raise ResolveError(f"{real}: cannot stat: {exc.strerror}") from None
            # the digest (and, when the first read held enough, how the file runs code) for
            # the lock that follows; a stat that changed (a write, or only a new hard link) is
            # not kept: the lock reads that file again, and check() compares
            if stat_key(after) == stat_key(st):
                whole = len(got.head) >= min(probe.head, st.st_size)
                fact = Fact(probe.of, probe.answer(got.head)) if whole else None
                cache.store(real, st, got.sha256, fact)
            self.files.append((rel, got.sha256, st.st_size))
            self.bytes += st.st_size if got.kept else 0

    def check(self, lock: Lock) -> None:
        """Before the lock is written: :attr:`matches` when it lists the files read, in the same
        order (else the tar is written again the usual way); the same files with another
        content: LockMismatch."""
        self.matches = [f.path for f in lock.model.files] == [rel for rel, _, _ in self.files]
        if not self.matches:
            return
        for f, (rel, hexd, size) in zip(lock.model.files, self.files):
            if (f.sha256, f.size) != (hexd, size):
                raise LockMismatch(
                    f"model file {rel} changed while the build read it: sha256 {hexd} written, "
                    f"{f.sha256} locked",
                    hint="something is writing to the model files; let it finish, then build again",
                )

    def finish(
        self,
        entries: dict[str, Entry],
        *,
        epoch: int,
        first: Sequence[str],
        final: Path,
        reporter: Reporter,
    ) -> tuple[list[Path], int]:
        """Write the rest of the bundle's ``entries`` after the model files (``first``: their
        blob paths in the lock's order), give every header the bundle's time ``epoch``, and
        rename the tar into place as ``final``: (its files, its size)."""
        if final != self.sink.final:
            raise AssertionError(f"one-pass tar {self.sink.final} is not {final}")
        extra = self.written - set(layout.archive_order(entries))
        if extra:
            raise AssertionError(f"one-pass tar holds members the bundle does not: {sorted(extra)}")
        try:
            with self.writer as writer:
                writer.set_mtime(epoch)
                write_entries(writer, entries, reporter.advance, first=first, written=self.written)
                writer.close()
            return self.sink.commit(), writer.size
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self.writer.__exit__(None, None, None)
        self.sink.abort()


#: a model file as the usual write copies it: (blob path, source, size, sha256 hex, what)
ModelFile = tuple[str, str, int, str, str]


class _StreamSink(Sink):
    """A child's writes into the file the parent's FileSink made (committed by the parent)."""

    def __init__(self, fh: BinaryIO, where: Path) -> None:
        self._fh = fh
        self._where = where

    def write(self, data: bytes | bytearray | memoryview) -> None:
        try:
            self._fh.write(data)
        except OSError as exc:
            raise write_error(self._where, exc) from None


def _write_model_files(
    tmp: Path, final: Path, epoch: int, files: Sequence[ModelFile]
) -> tuple[int, list[str], int]:
    """The blob folders and ``files`` written from the start of ``tmp`` as
    :func:`packager.bundle.archive.write_entries` writes them first (each checked against the
    lock while it is copied: LockMismatch when it changed): (bytes written, the names written
    in order, the model bytes)."""
    names: list[str] = []
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as exc:
        raise write_error(final, exc) from None
    with open(fd, "wb", buffering=1 << 20) as fh:
        with TarWriter(_StreamSink(fh, final), epoch) as writer:
            for name in layout.BLOB_FOLDERS:
                writer.add_dir(name)
                names.append(name)
            for name, source, size, sha256, what in files:
                writer.add_file(name, source, size=size, sha256=sha256, what=what)
                names.append(name)
        try:
            fh.flush()
        except OSError as exc:
            raise write_error(final, exc) from None
    return writer.size, names, sum(f[2] for f in files)


class ModelWrite:
    """A build from its lock: the model files written into the tar by a forked child
    (packager.util.forked) from :meth:`start` on, while this process goes on; :meth:`joined`
    hands the tar over as a :class:`OnePass` for the rest. A child that fails is run again here
    (Forked), so its error (a model file that changed: LockMismatch) is raised here."""

    def __init__(self, final: Path, epoch: int, files: list[ModelFile]) -> None:
        self.sink = FileSink(final)
        self.epoch = epoch
        write = functools.partial(_write_model_files, self.sink.tmp, final, epoch, files)
        self._job: Forked[tuple[int, list[str], int]] = Forked(write)

    @classmethod
    def start(cls, manifest: Manifest, lock: Lock, final: Path, epoch: int) -> ModelWrite:
        """The lock's model files, in its order, each content once (as Plan.add_blob keeps the
        first file of a digest), into a new tar that will be ``final``."""
        from packager.bundle.assemble import model_source_root

        root = str(model_source_root(manifest, lock))
        files: dict[str, ModelFile] = {}
        for f in lock.model.files:
            name = layout.blob_path(f"sha256:{f.sha256}")
            if name not in files:  # the same file as root / f.path
                files[name] = (
                    name,
                    os.path.join(root, f.path),
                    f.size,
                    f.sha256,
                    f"model {f.path}",
                )
        return cls(final, epoch, list(files.values()))

    def joined(self, entries: dict[str, Entry], first: Sequence[str]) -> OnePass | None:
        """The tar holding the model files, to finish (:meth:`OnePass.finish`); None when the
        bundle's entries do not begin with what was written (the tar is dropped: write it the
        usual way)."""
        try:
            size, names, model_bytes = self._job.result()
            if layout.archive_order(entries, first)[: len(names)] != names:
                self.abort()
                return None
            self.sink.cut(size)  # this process writes on after the child's bytes
        except BaseException:
            self.abort()
            raise
        writer = TarWriter(self.sink, self.epoch)
        writer.size = size
        return OnePass(self.sink, writer, set(names), [], model_bytes, matches=True)

    def abort(self) -> None:
        """Stop the child (if it still runs) and drop the tar."""
        self._job.close()
        self.sink.abort()
