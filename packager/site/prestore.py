"""Blobs copied while the verification hashes them: an install reads each new blob once.

Install (packager.site.install) hands the Verifier a :class:`Prestore`
(packager.bundle.verifier.MemberCopier). Each blob member that the site's store lacks and that
is large (at least :data:`MIN_BYTES`) is then not hashed on its own: the verification copies it
into an unnamed file (``O_TMPFILE``) on the prefix's file system and hashes the bytes it copies
(packager.site.store.capped_copy). The copying starts only once the signatures held (the early
hashing of the archive leaves these members alone: nothing is written for a bundle whose
signatures fail), and nothing has a name: a verification that fails, or a process that dies,
leaves no trace (the kernel frees an unnamed file when its last descriptor closes).

Once the whole bundle is verified, the install gives such a file its temporary name in staging
(a link of ``/proc/self/fd/N``), makes it durable and renames it into the store, as
:meth:`packager.site.store.BlobStore.put` does with a blob it writes: a final name still only
ever holds complete, matching content.

Where the file system has no ``O_TMPFILE``, ``/proc`` is not mounted, the prefix or its store is
a link, the copy fails (no room) or the link fails for any other reason, the blob is copied
from the bundle again by ``BlobStore.put`` (read twice, as before): slower, never wrong.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from packager.bundle import layout
from packager.bundle.reader import Bundle, FolderBundle, TarBundle
from packager.site.safefs import CONTENT_FILE_MODE, Dir, os_error
from packager.site.store import DIRECT_MIN, ContentMismatch, Span, capped_copy

#: blobs at least this large are copied while verified (smaller ones are stored in batches)
MIN_BYTES = DIRECT_MIN

_TMPFILE = getattr(os, "O_TMPFILE", 0)


def _nearest_folder(path: Path) -> Path | None:
    """``path`` or its nearest folder that exists (a prefix not made yet: its parent); None
    when that is a link or no folder (the install refuses such a prefix: nothing is copied
    through it)."""
    for p in (path, *path.parents):
        try:
            st = os.lstat(p)
        except OSError:
            continue
        return p if stat.S_ISDIR(st.st_mode) else None
    return None


def _link_fd(fd: int, d: Dir, name: str) -> None:
    """A name ``name`` in ``d`` for the open file ``fd`` (an unnamed one included)."""
    os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=d.fd, follow_symlinks=True)


class Prestore:
    """The unnamed copies of one install's new blobs (see the module): a blob the store of
    ``prefix_path`` holds already at its size is hashed only (the install links it)."""

    def __init__(self, prefix_path: Path) -> None:
        self._store = prefix_path / layout.SITE_BLOBS_DIR
        self._folder = _nearest_folder(self._store) if _TMPFILE else None
        self._lock = threading.Lock()
        #: hex -> an unnamed file holding exactly that blob (its content hashed while copied)
        self._files: dict[str, int] = {}
        self._part: int | None = None  # a one-file tar, opened once for pread
        self._off = self._folder is None or not os.path.isdir("/proc/self/fd")

    # ------------------------------------------------------ the verification's side (copying)

    def wants(self, member: str, size: int) -> bool:
        if self._off or size < MIN_BYTES:
            return False
        hexd = layout.digest_of_blob_path(member)
        return hexd is not None and not self._in_store(hexd.split(":", 1)[1], size)

    def _in_store(self, hexd: str, size: int) -> bool:
        """A first look, before the lock (the install decides again under it)."""
        try:
            st = os.lstat(self._store / hexd)
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and st.st_size == size

    def copy(
        self, bundle: Bundle, member: str, size: int, progress: Callable[[int], None] | None
    ) -> str | None:
        """The member's sha256 (hex), hashed while it is copied into an unnamed file; None when
        no unnamed file could be made here (then the verification hashes it as usual)."""
        if not isinstance(bundle, (TarBundle, FolderBundle)):
            return None
        hexd = (layout.digest_of_blob_path(member) or ":").split(":", 1)[1]
        fd = self._unnamed()
        if fd is None:
            return None
        try:
            got = self._copy_into(bundle, member, size, fd, progress)
        except (OSError, ContentMismatch):  # no room, a read error: hashed as usual, which
            os.close(fd)  # names a read error as the verification always has
            self._off = True
            return None
        except BaseException:
            os.close(fd)
            raise
        if got != hexd:  # not kept: the verification names the mismatch
            os.close(fd)
            return got
        with self._lock:
            old = self._files.pop(hexd, None)
            self._files[hexd] = fd
        if old is not None:
            os.close(old)
        return got

    def _unnamed(self) -> int | None:
        assert self._folder is not None
        flags = _TMPFILE | os.O_WRONLY | os.O_CLOEXEC
        for extra in (os.O_DIRECT, 0):
            try:
                fd = os.open(self._folder, flags | extra, CONTENT_FILE_MODE)
            except OSError as exc:
                if extra and exc.errno == errno.EINVAL:
                    continue  # no O_DIRECT here
                self._off = True  # no O_TMPFILE (EOPNOTSUPP, EISDIR), no room, no permission
                return None
            os.fchmod(fd, CONTENT_FILE_MODE)
            return fd
        return None

    def _copy_into(
        self,
        bundle: Bundle,
        member: str,
        size: int,
        fd: int,
        progress: Callable[[int], None] | None,
    ) -> str:
        m = bundle.members()[member]
        if isinstance(bundle, TarBundle) and len(bundle.parts) == 1:
            with self._lock:
                if self._part is None:
                    self._part = os.open(bundle.parts[0], os.O_RDONLY | os.O_CLOEXEC)
                part = self._part
            return capped_copy(Span(part, m.offset, m.size), fd, size, what=member,
                               progress=progress)  # fmt: skip
        with bundle.open_fresh(member) as src:
            if isinstance(bundle, FolderBundle):
                sfd = src.fileno()
                span = Span(sfd, 0, os.fstat(sfd).st_size)
                return capped_copy(span, fd, size, what=member, progress=progress)
            return capped_copy(src, fd, size, what=member, progress=progress)

    # ----------------------------------------------------------- the install's side (naming)

    def take(self, hexd: str, size: int, staging: Dir, name: str) -> bool:
        """The unnamed copy of blob ``hexd`` made durable and named ``name`` in ``staging``;
        False when there is none, or it cannot be linked there (then the caller copies)."""
        with self._lock:
            fd = self._files.pop(hexd, None)
        if fd is None:
            return False
        try:
            st = os.fstat(fd)
            if st.st_size != size:
                raise ContentMismatch(f"blob {hexd}: its copy holds {st.st_size} bytes, not {size}")
            try:
                os.fsync(fd)
            except OSError as exc:
                raise os_error(exc, staging.path_of(name)) from None
            try:
                _link_fd(fd, staging, name)
            except OSError:  # another file system (EXDEV), no /proc, a refusal: copy instead
                return False
            return True
        finally:
            os.close(fd)

    def close(self) -> None:
        with self._lock:
            fds, self._files = list(self._files.values()), {}
            part, self._part = self._part, None
        for fd in fds:
            os.close(fd)
        if part is not None:
            os.close(part)
