"""Read a bundle as it travels: a layout folder, one tar, or parts (by their index or any part).

Reading never extracts: a tar (or the concatenation of its parts) is scanned header by header,
seeking past content, and members are read in place with bounded sizes.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import os
import re
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from packager.bundle import layout
from packager.bundle.descriptor import Descriptor, content_bytes, parse_descriptor
from packager.bundle.errors import BundleFormatError, DescriptorError
from packager.bundle.parts import PartsIndex, read_parts_index

MAX_MEMBERS = 1_000_000
#: a tar member up to this size is read whole with ``pread`` on part files opened once
#: (:meth:`ConcatFile.pread`), not streamed through a handle of its own: on a bundle of many
#: small files, opening and buffering per member costs more than hashing it
SMALL_MEMBER = 1024 * 1024
#: small members read in one run (TarBundle.hash_members): at most this many bytes a read, and
#: at most this much between two members (their headers, a PAX record, padding)
RUN_BYTES = 4 * 1024 * 1024
RUN_GAP = 64 * 1024
#: the buffer a streamed member is hashed through
HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Member:
    name: str  # normalized: no leading ./, folders end without /
    size: int
    offset: int  # of the content in the (concatenated) stream
    kind: str  # file | dir | other


class ConcatFile(io.RawIOBase):
    """Several files read as one seekable stream (the parts of a bundle)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.sizes = [p.stat().st_size for p in paths]
        self.starts = [sum(self.sizes[:i]) for i in range(len(paths))]
        self.total = sum(self.sizes)
        self.pos = 0
        self._open: tuple[int, io.BufferedReader] | None = None
        self._fds: list[int] | None = None  # for pread, shared by threads
        self._fds_lock = threading.Lock()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.total}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def _file(self, i: int) -> io.BufferedReader:
        if self._open is None or self._open[0] != i:
            if self._open is not None:
                self._open[1].close()
            self._open = (i, open(self.paths[i], "rb"))  # noqa: SIM115 - closed in close()
        return self._open[1]

    def readinto(self, buf: Any) -> int:
        view = memoryview(buf).cast("B")
        done = 0
        while done < len(view) and self.pos < self.total:
            i = self._part_at(self.pos)
            fh = self._file(i)
            fh.seek(self.pos - self.starts[i])
            n = fh.readinto(
                view[done : done + min(len(view) - done, self.starts[i] + self.sizes[i] - self.pos)]
            )
            if not n:
                break
            done += n
            self.pos += n
        return done

    def _part_at(self, pos: int) -> int:
        """The part that holds byte ``pos`` (the last of equal starts: an empty part holds
        nothing); ``0 <= pos < total``."""
        return bisect.bisect_right(self.starts, pos) - 1

    def pread(self, offset: int, size: int) -> bytes:
        """At most ``size`` bytes from ``offset`` of the concatenation, across parts where the
        range spans them; fewer only where the parts end (or shrank since they were opened).
        Thread-safe, and the stream position is untouched: each part is opened once and read
        with ``os.pread``."""
        fds = self._fds
        if fds is None:
            with self._fds_lock:
                if self._fds is None:
                    opened: list[int] = []
                    try:
                        for path in self.paths:
                            opened.append(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
                    except BaseException:
                        for fd in opened:
                            os.close(fd)
                        raise
                    self._fds = opened
                fds = self._fds
        chunks = []
        while size > 0 and 0 <= offset < self.total:
            i = self._part_at(offset)
            n = min(size, self.starts[i] + self.sizes[i] - offset)
            got = os.pread(fds[i], n, offset - self.starts[i])
            if not got:
                break
            chunks.append(got)
            offset += len(got)
            size -= len(got)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def close(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None
        with self._fds_lock:
            for fd in self._fds or ():
                os.close(fd)
            self._fds = None
        super().close()


def _norm(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


class Bundle:
    """What every reader offers: member names and sizes, bounded reads of small members."""

    source: Path
    parts: list[Path]
    #: every entry as found, raw names and kinds (file, dir, symlink, hardlink, other), for verify
    observed: list[tuple[str, str, int]]
    #: what is wrong with the container itself (bytes after a tar's end), for verify and sign
    problems: list[str]

    def hash_member(self, name: str, progress: Any = None) -> tuple[str, int]:
        """sha256 hex and size of a member (thread-safe): a small one read whole in place
        (:meth:`read_small`), any other through a handle of its own."""
        data = self.read_small(name)
        if data is not None:
            if progress is not None:
                progress(len(data))
            return hashlib.sha256(data).hexdigest(), len(data)
        h = hashlib.sha256()
        n = 0
        m = self.members().get(name)
        # one buffer, reused: no fresh pages to fault in per chunk (and no more than a member
        # of a folder needs: one more byte shows that it grew)
        buf = bytearray(HASH_CHUNK if m is None else min(HASH_CHUNK, m.size + 1))
        view = memoryview(buf)
        with self.open_fresh(name) as fh:
            readinto = fh.readinto  # type: ignore[attr-defined]
            while got := readinto(buf):
                h.update(view[:got])
                n += got
                if progress is not None:
                    progress(got)
        return h.hexdigest(), n

    def hash_members(self, names: list[str]) -> Iterator[tuple[str, str, int]]:
        """``(name, sha256 hex, size)`` of each member, in order, as :meth:`hash_member` gives
        them (lazily: a caller may stop between two)."""
        for name in names:
            yield (name, *self.hash_member(name))

    def read_small(self, name: str) -> bytes | None:
        """The content of a member of at most :data:`SMALL_MEMBER` bytes where this bundle
        reads it in place cheaply and thread-safely (a tar's), as many bytes as the archive
        holds of it; None otherwise (then it is streamed)."""
        return None

    def open_fresh(self, name: str) -> BinaryIO:
        raise NotImplementedError

    def members(self) -> dict[str, Member]:
        raise NotImplementedError

    def open_member(self, name: str) -> BinaryIO:
        raise NotImplementedError

    def read(self, name: str, limit: int) -> bytes:
        m = self.members().get(name)
        if m is None or m.kind != "file":
            raise BundleFormatError(
                f"{self.source}: the bundle has no {name}",
                hint="is this an airgap bundle? `airgap inspect` lists what it holds",
            )
        if m.size > limit:
            raise BundleFormatError(
                f"{self.source}: {name} is {m.size} bytes, more than the {limit} a bundle may hold"
            )
        with self.open_member(name) as fh:
            return fh.read(m.size)

    def descriptor_bytes(self) -> bytes:
        """``airgap/bundle.json`` as it is (bounded): what signatures are checked over."""
        if layout.BUNDLE_JSON not in self.members():
            from packager.bundle.combined import targets_of

            targets = targets_of(self.members())
            if targets:
                raise BundleFormatError(
                    f"{self.source} is a combined bundle of {len(targets)} targets "
                    f"({', '.join(targets)}): this reads one target's bundle",
                    hint=f"give --target {targets[0]} (inspect, digest, images, audit, verify, "
                    "install); sign the single-target bundles before `build --combined`",
                )
        return self.read(layout.BUNDLE_JSON, layout.MAX_BUNDLE_JSON_BYTES)

    def descriptor(self) -> tuple[bytes, Descriptor]:
        """The bytes signatures cover (a delta's without its delta record:
        packager.bundle.descriptor.content_bytes) and the typed parse of the whole file
        (:class:`DescriptorError` when invalid).

        Parsed, not verified: what a signature check has not covered is not trusted.
        """
        raw = self.descriptor_bytes()
        try:
            return content_bytes(raw), parse_descriptor(raw)
        except DescriptorError as exc:
            raise DescriptorError(f"{self.source}: {exc.message}", hint=exc.hint) from None

    def close(self) -> None:
        pass

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FolderBundle(Bundle):
    def __init__(self, root: Path) -> None:
        self.source = root
        self.parts = []
        self.observed = []
        self.problems = []
        self._members: dict[str, Member] | None = None

    def members(self) -> dict[str, Member]:
        if self._members is None:
            out: dict[str, Member] = {}
            for dirpath, dirs, files in os.walk(self.source):
                dirs.sort()
                for n in sorted(dirs + files):
                    full = os.path.join(dirpath, n)
                    rel = os.path.relpath(full, self.source).replace(os.sep, "/")
                    st = os.lstat(full)
                    kind = (
                        "symlink"
                        if stat.S_ISLNK(st.st_mode)
                        else "dir"
                        if stat.S_ISDIR(st.st_mode)
                        else "file"
                        if stat.S_ISREG(st.st_mode)
                        else "other"
                    )
                    self.observed.append((rel, kind, st.st_size if kind == "file" else 0))
                    out[rel] = Member(
                        rel,
                        st.st_size if kind == "file" else 0,
                        0,
                        kind if kind in ("file", "dir") else "other",
                    )
            self._members = out
        return self._members

    def open_member(self, name: str) -> BinaryIO:
        path = self.source / name
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)  # a planted symlink is never followed
        return os.fdopen(fd, "rb")

    def open_fresh(self, name: str) -> BinaryIO:
        return self.open_member(name)


class _Slice(io.RawIOBase):
    def __init__(self, base: Any, offset: int, size: int, *, owns: bool = False) -> None:
        self.base, self.offset, self.size, self.pos = base, offset, size, 0
        self.owns = owns

    def close(self) -> None:
        if self.owns and not self.closed:
            self.base.close()
        super().close()

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        view = memoryview(buf).cast("B")
        n = min(len(view), self.size - self.pos)
        if n <= 0:
            return 0
        self.base.seek(self.offset + self.pos)
        got = self.base.readinto(view[:n])
        self.pos += got or 0
        return got or 0


#: the largest GNU long name or PAX extended header read: a bundle's names are short, and a
#: hostile header that claims a GiB is refused before a byte of it is read
MAX_EXTENDED_HEADER = 64 * 1024
_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_RECORD = 20 * _BLOCK
#: how much of the archive one read of :func:`scan_tar` takes in (the headers of ~100 small files)
_SCAN_WINDOW = 256 * 1024
_TYPE_KIND = {
    b"0": "file", b"\0": "file", b"7": "file", b"5": "dir", b"1": "hardlink", b"2": "symlink",
    b"3": "device or special file", b"4": "device or special file", b"6": "device or special file",
    b"S": "GNU sparse file",
}  # fmt: skip
#: kinds whose header is not followed by content (tar's own rule; anything unknown has content)
_NO_CONTENT = ("dir", "hardlink", "symlink", "device or special file")


_OCTAL_DIGITS = re.compile(rb"[0-7]+")


def _octal(field: bytes, what: str, where: int) -> int:
    """A tar number: NUL/space-terminated octal, or GNU base-256 (first byte 0x80)."""
    if field[:1] == b"\x80":
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    if _OCTAL_DIGITS.fullmatch(text) is None:  # (a generator per field cost 0.1 s a 50k tar)
        raise BundleFormatError(f"the tar header at byte {where} has a bad {what} field")
    return int(text, 8)


def _pax_records(data: bytes, where: int) -> dict[str, str]:
    """``LEN KEY=VALUE\n`` records of a PAX extended header."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0 or not data[pos:space].isdigit():
            raise BundleFormatError(f"the PAX header at byte {where} is malformed")
        length = int(data[pos:space])
        record = data[space + 1 : pos + length]
        if length <= space - pos or not record.endswith(b"\n") or b"=" not in record:
            raise BundleFormatError(f"the PAX header at byte {where} is malformed")
        key, _, value = record[:-1].partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


@dataclass(frozen=True)
class ScannedEntry:
    name: str  # as the archive spells it
    kind: str  # file | dir | symlink | hardlink | other
    size: int
    offset: int  # of the content


@dataclass(frozen=True)
class Scan:
    entries: list[ScannedEntry]
    end: int  # the offset just after the two end-of-archive blocks
    #: what lies after the end that should not: each a sentence (empty when the archive is clean)
    trailing: list[str]


def scan_tar(raw: ConcatFile, *, max_entries: int = MAX_MEMBERS) -> Scan:
    """Every header of the (concatenated) tar, reading headers only and seeking past content.

    ustar and GNU tar headers, GNU long names and PAX path/size records (each bounded by
    :data:`MAX_EXTENDED_HEADER`). After the two zero blocks that end the archive only zero padding
    up to the next record (10 KiB) may follow; anything else is reported in ``trailing``.
    """
    total = raw.total
    entries: list[ScannedEntry] = []
    long_name: str | None = None
    pax: dict[str, str] = {}
    pos = 0
    # headers are read through a window of the archive: many small members lie in one
    window_at, window = 0, b""

    def read_at(at: int, n: int) -> bytes:
        nonlocal window_at, window
        if not (window_at <= at and at + n <= window_at + len(window)):
            window_at, window = at, raw.pread(at, max(n, _SCAN_WINDOW))
        return window[at - window_at : at - window_at + n]

    while True:
        header = read_at(pos, _BLOCK)
        if len(header) < _BLOCK:
            raise BundleFormatError(
                f"the archive ends inside a header at byte {pos} (no end-of-archive blocks)"
            )
        if header == _ZERO_BLOCK:
            second = read_at(pos + _BLOCK, _BLOCK)
            if second != _ZERO_BLOCK:
                raise BundleFormatError(f"a lone zero block at byte {pos} is not an archive end")
            end = pos + 2 * _BLOCK
            return Scan(entries, end, _trailing(raw, end, total))
        stored = _octal(header[148:156], "checksum", pos)
        computed = sum(header[:148]) + 32 * 8 + sum(header[156:])
        if stored != computed:
            raise BundleFormatError(f"the tar header at byte {pos} has a wrong checksum")
        size = _octal(header[124:136], "size", pos)
        flag = header[156:157]
        data_at = pos + _BLOCK
        next_at = data_at + (size + _BLOCK - 1) // _BLOCK * _BLOCK
        if next_at > total:
            raise BundleFormatError(
                f"an entry at byte {pos} claims {size} bytes, past the end of the archive "
                f"({total} bytes)"
            )
        if flag in (b"L", b"x", b"g", b"K"):
            if size > MAX_EXTENDED_HEADER:
                raise BundleFormatError(
                    f"an extended tar header at byte {pos} claims {size} bytes "
                    f"(at most {MAX_EXTENDED_HEADER} are read)"
                )
            data = read_at(data_at, size)
            if flag == b"L":
                long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif flag == b"x":
                pax = _pax_records(data, pos)
            pos = next_at
            continue
        if len(entries) >= max_entries:
            raise BundleFormatError(f"more than {max_entries} entries")
        name = header[0:100].split(b"\0", 1)[0]
        if header[257:262] == b"ustar":
            prefix = header[345:500].split(b"\0", 1)[0]
            if prefix:
                name = prefix + b"/" + name
        text = name.decode("utf-8", "surrogateescape")
        if long_name is not None:
            text = long_name
        if "path" in pax:
            text = pax["path"]
        if "size" in pax:
            if not pax["size"].isdigit():
                raise BundleFormatError(f"the PAX header before byte {pos} has a bad size")
            size = int(pax["size"])
            next_at = data_at + (size + _BLOCK - 1) // _BLOCK * _BLOCK
            if next_at > total:
                raise BundleFormatError(f"an entry at byte {pos} claims {size} bytes, past the end")
        kind = _TYPE_KIND.get(flag, f"tar entry of type {flag.decode('latin-1')!r}")
        entries.append(ScannedEntry(text, kind, size if kind == "file" else 0, data_at))
        long_name, pax = None, {}
        pos = data_at if kind in _NO_CONTENT else next_at


def _trailing(raw: ConcatFile, end: int, total: int) -> list[str]:
    """Only zeros may follow the end, and only up to the next 10 KiB record."""
    allowed = -(-end // _RECORD) * _RECORD
    problems = []
    if total > allowed:
        problems.append(
            f"{total - end} bytes follow the end of the archive (at byte {end}); only zero "
            f"padding up to byte {allowed} may"
        )
    raw.seek(end)
    padding = raw.read(min(total, allowed) - end)
    if padding.strip(b"\0"):
        problems.append(f"the padding after the end of the archive (byte {end}) is not zeros")
    return problems


class TarBundle(Bundle):
    def __init__(self, source: Path, parts: list[Path]) -> None:
        self.source = source
        self.parts = parts
        self._raw = ConcatFile(parts)
        self._members: dict[str, Member] | None = None
        self.observed = []
        self.problems: list[str] = []
        self.end = 0

    def members(self) -> dict[str, Member]:
        if self._members is None:
            try:
                scan = scan_tar(self._raw)
            except BundleFormatError as exc:
                raise BundleFormatError(
                    f"{self.source}: not a readable bundle tar: {exc.message}",
                    hint="a truncated or damaged copy? compare its size and sha256 with the "
                    "parts index or the original",
                ) from None
            out: dict[str, Member] = {}
            for e in scan.entries:
                self.observed.append((e.name, e.kind, e.size))
                name = _norm(e.name)
                out[name] = Member(
                    name, e.size, e.offset, e.kind if e.kind in ("file", "dir") else "other"
                )
            self.end = scan.end
            self.problems = [f"{self.source}: {t}" for t in scan.trailing]
            allowed = -(-scan.end // _RECORD) * _RECORD
            self.problems += [
                f"the part {p.name} lies after the end of the archive: a bundle's parts end with "
                "the part that holds its end"
                for p, start in zip(self.parts, self._raw.starts)
                if start >= allowed and len(self.parts) > 1
            ]
            self._members = out
        return self._members

    def open_member(self, name: str) -> BinaryIO:
        m = self.members()[name]
        return io.BufferedReader(_Slice(self._raw, m.offset, m.size), buffer_size=4 * 2**20)

    def read_small(self, name: str) -> bytes | None:
        m = self.members()[name]
        if m.size > SMALL_MEMBER:
            return None
        return self._raw.pread(m.offset, m.size)

    def hash_members(self, names: list[str]) -> Iterator[tuple[str, str, int]]:
        """As :meth:`Bundle.hash_members`; small members that lie one after the other in the
        archive are read together, one ``pread`` of at most :data:`RUN_BYTES` (a model of
        50,000 small files: 200 reads instead of 50,000). Each is hashed over its own bytes,
        as many as the archive holds of it, like :meth:`read_small`."""
        members = self.members()
        i = 0
        while i < len(names):
            first = members[names[i]]
            if first.size > SMALL_MEMBER:
                yield (names[i], *self.hash_member(names[i]))
                i += 1
                continue
            j, end = i + 1, first.offset + first.size
            while j < len(names):  # the run: members that follow, headers and padding between
                m = members[names[j]]
                if not (end <= m.offset <= end + RUN_GAP and m.size <= SMALL_MEMBER):
                    break
                if m.offset + m.size - first.offset > RUN_BYTES:
                    break
                end = m.offset + m.size
                j += 1
            run = memoryview(self._raw.pread(first.offset, end - first.offset))
            for name in names[i:j]:
                m = members[name]
                data = run[m.offset - first.offset : m.offset - first.offset + m.size]
                yield name, hashlib.sha256(data).hexdigest(), len(data)
            i = j

    def open_fresh(self, name: str) -> BinaryIO:
        m = self.members()[name]
        raw = ConcatFile(self.parts)
        return io.BufferedReader(_Slice(raw, m.offset, m.size, owns=True), buffer_size=4 * 2**20)

    def close(self) -> None:
        self._raw.close()


_PART = re.compile(r"^(?P<stem>.+\.airgap\.tar)\.(?P<n>\d{3})\Z")


def parts_of(path: Path) -> tuple[list[Path], PartsIndex | None]:
    """The part files a bundle path stands for, and the parts index when there is one."""
    if path.name.endswith(".airgap.parts.json"):
        index = read_parts_index(path)
        return [path.parent / p.name for p in index.parts], index
    m = _PART.match(path.name)
    if m:
        stem = m.group("stem")
        index_path = path.parent / layout.parts_index_name(stem[: -len(".airgap.tar")])
        if index_path.is_file():
            return parts_of(index_path)
        found = sorted(path.parent.glob(f"{stem}.[0-9][0-9][0-9]"))
        return found, None
    return [path], None


def open_bundle(path: Path) -> Bundle:
    """A layout folder, a ``.airgap.tar``, its parts index, or one of its parts."""
    if not path.exists():
        raise BundleFormatError(
            f"{path}: no such bundle",
            hint="give the .airgap.tar, its parts index or the layout folder",
        )
    if path.is_dir():
        if not (path / layout.OCI_LAYOUT).is_file():
            raise BundleFormatError(
                f"{path}: a folder without {layout.OCI_LAYOUT} is not a bundle layout"
            )
        return FolderBundle(path)
    parts, _ = parts_of(path)
    missing = [p for p in parts if not p.is_file()]
    if missing:
        raise BundleFormatError(
            f"{path}: missing part(s): {', '.join(p.name for p in missing)}",
            hint="copy every part into one folder",
        )
    if parts == [path] and _json_not_tar(path):
        raise BundleFormatError(
            f"{path}: a JSON document, not a bundle",
            hint="give the .airgap.tar, its parts index (NAME.airgap.parts.json) or the layout "
            "folder (`airgap build --base` also takes a site's have-list, which `airgap list "
            "--prefix DIR --have` writes)",
        )
    return TarBundle(path, parts)


def _json_not_tar(path: Path) -> bool:
    """Whether the file begins as JSON does and has no tar header (a have-list, a policy or a
    parts index under another name): said as such, not as a damaged archive."""
    try:
        with path.open("rb") as fh:
            head = fh.read(512)
    except OSError:
        return False  # the archive's own reading names the problem
    return head[257:262] != b"ustar" and head.lstrip(b" \t\r\n").startswith((b"{", b"["))


def iter_blob_members(b: Bundle) -> Iterator[Member]:
    for m in b.members().values():
        if layout.digest_of_blob_path(m.name):
            yield m
