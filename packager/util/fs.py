"""File-system helpers: every write that matters goes to a temporary name and is renamed; paths
that come from a manifest are looked up without raising for names the system refuses."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from packager.errors import InputError


def atomic_write_text(path: Path, text: str, *, overwrite: bool = True, mode: int = 0o644) -> None:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file in the same folder, fsync, rename."""
    atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite, mode=mode)


def atomic_write_bytes(
    path: Path, data: bytes, *, overwrite: bool = True, mode: int = 0o644
) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync, rename."""
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder", hint="create it first, or pick another path")
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists", hint="pass --force to replace it")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(
            f"{folder}: cannot write here: {exc.strerror}", hint="pick a writable folder"
        ) from None
    try:
        os.fchmod(fd, mode)  # mkstemp made it 0600; never wider than asked, even for a moment
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if path appeared meanwhile
            os.unlink(tmp)
    except FileExistsError:
        os.unlink(tmp)
        raise InputError(f"{path} already exists", hint="pass --force to replace it") from None
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise InputError(f"{path}: cannot write: {exc.strerror}") from None


def is_file(path: Path) -> bool:
    """``path.is_file()``, but False (not an OSError) for a name this system cannot look up: a
    component longer than NAME_MAX, a path longer than PATH_MAX, a loop of links, no permission."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def is_dir(path: Path) -> bool:
    """``path.is_dir()`` that never raises (see :func:`is_file`)."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def lookup_error(path: Path) -> str | None:
    """Why ``path`` cannot even be looked up (``File name too long``), or None: it exists, or it
    simply is not there."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ValueError:
        return "a NUL character in the path"
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
