"""File-system helpers: every write that matters goes to a temporary name and is renamed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from packager.errors import InputError


def atomic_write_text(path: Path, text: str, *, overwrite: bool = True, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder, fsync, rename."""
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
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
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
