"""A version's files laid out from the store: a hard link to the blob, or a file of its own
(a reflink where the file system makes one, else a copy hashed while it is written); and the
owner and modes that a bundle's serve.install asks for, never following a link."""

from __future__ import annotations

import errno
import os
import stat

from packager.site.rules import InstallModes
from packager.site.safefs import CONTENT_FILE_MODE, Dir, SiteError, os_error
from packager.site.store import BlobStore, ContentMismatch


def place(d: Dir, leaf: str, store: BlobStore, hexd: str, size: int) -> bool:
    """``leaf`` in ``d`` as a hard link to the blob (True), or a copy (:func:`copy_blob`) where
    a link fails (a file system without hard links, or a blob at its link limit: False)."""
    if d.link_from(store.dir, hexd, leaf):
        st = d.lstat(leaf)  # the link just made (no link followed)
        if st is None or not (st.st_size == size and stat.S_ISREG(st.st_mode)):
            raise SiteError(f"{d.path_of(leaf)}: the store's blob {hexd} changed while linking")
        if st.st_mode & 0o777 != CONTENT_FILE_MODE:  # a blob stored by an older airgap
            fd = d.open_read(leaf)  # a regular file, or refused
            try:
                os.fchmod(fd, CONTENT_FILE_MODE)
            finally:
                os.close(fd)
        return True
    copy_blob(d, leaf, store, hexd, size, CONTENT_FILE_MODE)
    return False


def copy_blob(d: Dir, leaf: str, store: BlobStore, hexd: str, size: int, mode: int) -> None:
    """``leaf`` in ``d`` as a file of its own with the blob's content and ``mode``: a reflink
    where the file system makes one (btrfs, XFS: no bytes copied), else a copy hashed while it
    is written (:meth:`BlobStore.copy_to`), refused when that is not the blob's digest."""
    got = store.copy_to(hexd, size, d, leaf, mode, reflink=True)
    if got is not None and got != hexd:
        raise ContentMismatch(
            f"{store.dir.path_of(hexd)}: the stored blob is damaged (sha256:{got})",
            hint="`airgap audit --site` shows what else changed; remove that blob and run again",
        )


def own(d: Dir, leaf: str, modes: InstallModes) -> None:
    """Give ``leaf`` the declared owner (never following a link)."""
    owner = modes.owner
    if owner is None:
        return
    try:
        os.chown(leaf, owner[0], owner[1], dir_fd=d.fd, follow_symlinks=False)
    except OSError as exc:
        raise owner_error(exc, d.path_of(leaf), modes) from None


def set_dir(d: Dir, modes: InstallModes) -> None:
    os.fchmod(d.fd, modes.dir)
    own_dir(d, modes)


def own_dir(d: Dir, modes: InstallModes) -> None:
    owner = modes.owner
    if owner is not None:
        try:
            os.fchown(d.fd, owner[0], owner[1])
        except OSError as exc:
            raise owner_error(exc, d.where, modes) from None


def owner_error(exc: OSError, where: str, modes: InstallModes) -> SiteError:
    who = f"uid {modes.uid if modes.uid is not None else '-'} gid {modes.gid if modes.gid is not None else '-'}"
    if exc.errno == errno.EPERM:
        return SiteError(
            f"{where}: cannot give it to {who}, as the bundle's serve.install asks: only root "
            "may give files away; nothing was installed",
            hint="run the install as root (or as that user, for its own uid)",
        )
    return os_error(exc, where)
