"""Read a bundle as it travels: a layout folder, one tar, or parts (by their index or any part).

Reading never extracts: a tar (or the concatenation of its parts) is scanned header by header,
seeking past content, and members are read in place with bounded sizes.
"""

from __future__ import annotations

import io
import os
import re
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from packager.bundle import layout
from packager.bundle.descriptor import Descriptor, parse_descriptor
from packager.bundle.errors import BundleFormatError, DescriptorError
from packager.bundle.parts import PartsIndex, read_parts_index

MAX_MEMBERS = 1_000_000


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
            i = max(j for j, s in enumerate(self.starts) if s <= self.pos)
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

    def close(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None
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

    def hash_member(self, name: str, progress: Any = None) -> tuple[str, int]:
        """sha256 hex and size of a member, read through a handle of its own (thread-safe)."""
        import hashlib

        h = hashlib.sha256()
        n = 0
        buf = bytearray(1024 * 1024)  # one buffer, reused: no fresh pages to fault in per chunk
        view = memoryview(buf)
        with self.open_fresh(name) as fh:
            readinto = fh.readinto  # type: ignore[attr-defined]
            while got := readinto(buf):
                h.update(view[:got])
                n += got
                if progress is not None:
                    progress(got)
        return h.hexdigest(), n

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
        return self.read(layout.BUNDLE_JSON, layout.MAX_BUNDLE_JSON_BYTES)

    def descriptor(self) -> tuple[bytes, Descriptor]:
        """The descriptor's bytes and their typed parse (:class:`DescriptorError` when invalid).

        Parsed, not verified: what a signature check has not covered is not trusted.
        """
        raw = self.descriptor_bytes()
        try:
            return raw, parse_descriptor(raw)
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


class TarBundle(Bundle):
    def __init__(self, source: Path, parts: list[Path]) -> None:
        self.source = source
        self.parts = parts
        self._raw = ConcatFile(parts)
        self._members: dict[str, Member] | None = None
        self.observed = []

    def members(self) -> dict[str, Member]:
        if self._members is None:
            out: dict[str, Member] = {}
            try:
                with tarfile.open(fileobj=self._raw, mode="r:") as tf:
                    while True:
                        info = tf.next()
                        if info is None:
                            break
                        if len(out) >= MAX_MEMBERS:
                            raise BundleFormatError(
                                f"{self.source}: more than {MAX_MEMBERS} entries"
                            )
                        kind = "file" if info.isreg() else "dir" if info.isdir() else "other"
                        raw_kind = (
                            kind
                            if kind != "other"
                            else "symlink"
                            if info.issym()
                            else "hardlink"
                            if info.islnk()
                            else "device or special file"
                        )
                        self.observed.append(
                            (info.name, raw_kind, info.size if kind == "file" else 0)
                        )
                        name = _norm(info.name)
                        out[name] = Member(
                            name, info.size if kind == "file" else 0, info.offset_data, kind
                        )
            except tarfile.TarError as exc:
                raise BundleFormatError(
                    f"{self.source}: not a readable tar ({exc})",
                    hint="a truncated copy? compare its size and sha256 with the parts index",
                ) from None
            self._members = out
        return self._members

    def open_member(self, name: str) -> BinaryIO:
        m = self.members()[name]
        return io.BufferedReader(_Slice(self._raw, m.offset, m.size), buffer_size=4 * 2**20)

    def open_fresh(self, name: str) -> BinaryIO:
        m = self.members()[name]
        raw = ConcatFile(self.parts)
        return io.BufferedReader(_Slice(raw, m.offset, m.size, owns=True), buffer_size=4 * 2**20)

    def close(self) -> None:
        self._raw.close()


_PART = re.compile(r"^(?P<stem>.+\.airgap\.tar)\.(?P<n>\d{3})$")


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
    return TarBundle(path, parts)


def iter_blob_members(b: Bundle) -> Iterator[Member]:
    for m in b.members().values():
        if layout.digest_of_blob_path(m.name):
            yield m
