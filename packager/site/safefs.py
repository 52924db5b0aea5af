"""Folders by file descriptor: every step below the prefix is an ``openat`` that follows no link.

A :class:`Dir` is an open folder. Going down (:meth:`Dir.sub`), creating files
(:meth:`Dir.create`), renaming, linking and removing all take names relative to an open folder
and refuse a symbolic link anywhere below the prefix: a ``DIR/bundles`` or ``DIR/blobs`` replaced
by a link to somewhere else makes the operation fail, it never writes there. The prefix itself
may be a link (the operator chose it).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from types import TracebackType

from packager.errors import InputError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_MODE = 0o644
DIR_MODE = 0o755
#: installed content (the store's blobs, each version's files and folders) is read-only: a stray
#: edit of one installed file must not change the blob every version shares
CONTENT_FILE_MODE = 0o444
CONTENT_DIR_MODE = 0o555


class SiteError(InputError):
    """A prefix that cannot be used as it is: unsafe, unreadable, full (exit 2)."""


class UnsafePath(SiteError):
    """A symbolic link, device or other non-folder where the prefix needs a folder or a file."""


def os_error(exc: OSError, where: str) -> SiteError:
    """One clear message for an OSError at ``where`` (a path for people to read)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SiteError(
            f"no space left on the device of {where} ({exc.strerror})",
            hint="free space (or inodes) there, or use a prefix on a larger file system",
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return SiteError(f"{where}: not writable ({exc.strerror})", hint="check its permissions")
    return SiteError(f"{where}: {exc.strerror or exc}")


class Dir:
    """An open folder; ``where`` is how messages name it."""

    def __init__(self, fd: int, where: str) -> None:
        self.fd = fd
        self.where = where

    # ------------------------------------------------------------------ opening
    @classmethod
    def open_prefix(cls, path: str, *, create: bool) -> Dir:
        """The prefix folder itself (created with its parents when ``create``)."""
        if create:
            try:
                os.makedirs(path, mode=DIR_MODE, exist_ok=True)
            except FileExistsError:
                raise SiteError(f"{path} exists and is not a folder") from None
            except OSError as exc:
                raise os_error(exc, path) from None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise SiteError(
                f"{path}: no such prefix", hint="give the --prefix an install went to"
            ) from None
        except NotADirectoryError:
            raise SiteError(f"{path} is not a folder") from None
        except OSError as exc:
            raise os_error(exc, path) from None
        return cls(fd, path)

    def path_of(self, name: str) -> str:
        return f"{self.where}/{name}"

    def sub(self, name: str, *, create: bool = False) -> Dir:
        """The folder ``name`` in this one (one component), never through a link."""
        if create:
            try:
                os.mkdir(name, DIR_MODE, dir_fd=self.fd)
            except FileExistsError:
                pass
            except OSError as exc:
                raise os_error(exc, self.path_of(name)) from None
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=self.fd)
        except (NotADirectoryError, OSError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            kind = self.kind(name)
            if kind not in ("dir", None):
                raise UnsafePath(
                    f"{self.path_of(name)} is a {kind}, not a folder: refusing to go through it",
                    hint="a link or file planted in the prefix; remove it and run again",
                ) from None
            raise os_error(exc, self.path_of(name)) from None
        return Dir(fd, self.path_of(name))

    def walk(self, relpath: str, *, create: bool = False) -> Dir:
        """The folder at ``relpath`` (``a/b/c``), one component at a time."""
        d = Dir(os.dup(self.fd), self.where)
        for part in relpath.split("/"):
            if not part:
                continue
            nxt = d.sub(part, create=create)
            d.close()
            d = nxt
        return d

    def maybe_sub(self, name: str) -> Dir | None:
        try:
            return self.sub(name)
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------------ looking
    def lstat(self, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def kind(self, name: str) -> str | None:
        st = self.lstat(name)
        return None if st is None else kind_of(st.st_mode)

    def names(self) -> list[str]:
        return sorted(os.listdir(self.fd))

    def readlink(self, name: str) -> str | None:
        try:
            return os.readlink(name, dir_fd=self.fd)
        except (FileNotFoundError, OSError):
            return None

    def open_read(self, name: str) -> int:
        """A read-only fd of the regular file ``name`` (UnsafePath for anything else)."""
        try:
            fd = os.open(
                name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=self.fd
            )
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise UnsafePath(f"{self.path_of(name)}: cannot open ({exc.strerror})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UnsafePath(f"{self.path_of(name)} is not a regular file")
        return fd

    def read_small(self, name: str, limit: int) -> bytes | None:
        """The content of a regular file of at most ``limit`` bytes; None when it is absent."""
        try:
            fd = self.open_read(name)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise SiteError(f"{self.path_of(name)} is larger than {limit} bytes")
        return data

    # ------------------------------------------------------------------ writing
    def create(self, name: str, mode: int = FILE_MODE, *, direct: bool = False) -> int:
        """A new regular file (O_CREAT|O_EXCL|O_NOFOLLOW), its mode exactly ``mode``; ``direct``:
        opened with O_DIRECT where the file system takes it."""
        flags = _NEW_FILE | (os.O_DIRECT if direct else 0)
        try:
            fd = os.open(name, flags, mode, dir_fd=self.fd)
        except OSError as exc:
            if direct and exc.errno == errno.EINVAL:  # no O_DIRECT here: a plain file
                with contextlib.suppress(FileNotFoundError):  # made by this O_EXCL open
                    os.unlink(name, dir_fd=self.fd)
                return self.create(name, mode)
            raise os_error(exc, self.path_of(name)) from None
        os.fchmod(fd, mode)
        return fd

    def write_file(
        self, name: str, data: bytes, mode: int = FILE_MODE, *, sync: bool = True
    ) -> None:
        """A new file ``name`` holding ``data``, fsynced (``sync=False``: the caller makes it
        durable, as one sync of many files; packager.site.store.sync_written)."""
        fd = self.create(name, mode)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if sync:
                os.fsync(fd)
        except OSError as exc:
            raise os_error(exc, self.path_of(name)) from None
        finally:
            os.close(fd)

    def mkdir(self, name: str) -> Dir:
        try:
            os.mkdir(name, DIR_MODE, dir_fd=self.fd)
        except OSError as exc:
            raise os_error(exc, self.path_of(name)) from None
        d = self.sub(name)
        os.fchmod(d.fd, DIR_MODE)  # not narrowed by the umask: the site's users read it
        return d

    def rename(self, name: str, dest: Dir, dest_name: str) -> None:
        try:
            os.rename(name, dest_name, src_dir_fd=self.fd, dst_dir_fd=dest.fd)
        except OSError as exc:
            raise os_error(exc, dest.path_of(dest_name)) from None

    def link_from(self, src: Dir, src_name: str, name: str) -> bool:
        """Hard link ``src/src_name`` here as ``name``; False when the file system cannot."""
        try:
            os.link(src_name, name, src_dir_fd=src.fd, dst_dir_fd=self.fd, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (
                errno.EXDEV,
                errno.EPERM,
                errno.EMLINK,
                errno.ENOTSUP,
                errno.EOPNOTSUPP,
            ):
                return False
            raise os_error(exc, self.path_of(name)) from None
        return True

    def symlink(self, target: str, name: str) -> None:
        try:
            os.symlink(target, name, dir_fd=self.fd)
        except OSError as exc:
            raise os_error(exc, self.path_of(name)) from None

    def unlink(self, name: str) -> bool:
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise os_error(exc, self.path_of(name)) from None
        return True

    def remove_tree(self, name: str) -> None:
        """Remove ``name`` (a folder, recursively, or a file or link); links are not followed."""
        kind = self.kind(name)
        if kind is None:
            return
        if kind != "dir":
            self.unlink(name)
            return
        # folder by folder through descriptors (shutil.rmtree takes dir_fd only from 3.11); a
        # read-only folder of installed content is made writable first
        with self.sub(name) as folder:
            os.fchmod(folder.fd, 0o700)
            for child in folder.names():
                folder.remove_tree(child)
        try:
            os.rmdir(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise os_error(exc, self.path_of(name)) from None

    def fsync(self) -> None:
        with contextlib.suppress(OSError):  # some file systems cannot sync a folder
            os.fsync(self.fd)

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Dir:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def walk_files(d: Dir, prefix: str = "") -> Iterator[tuple[Dir, str, str, os.stat_result]]:
    """Every entry below ``d`` (depth first, sorted): (its folder, its name, its relative path,
    its lstat). Folders are entered through :meth:`Dir.sub`, so a link is reported, not followed."""
    for name in d.names():
        st = d.lstat(name)
        if st is None:
            continue
        rel = f"{prefix}{name}"
        yield d, name, rel, st
        if stat.S_ISDIR(st.st_mode):
            try:
                sub = d.sub(name)
            except (FileNotFoundError, SiteError):
                continue
            with sub:
                yield from walk_files(sub, rel + "/")
