"""Include/exclude globs over paths relative to a source folder."""

from __future__ import annotations

import fnmatch
import posixpath


def glob_matches(pattern: str, rel: str) -> bool:
    """A glob without a slash matches the file name at any depth; with a slash, the whole path."""
    target = rel if "/" in pattern else posixpath.basename(rel)
    return fnmatch.fnmatchcase(target, pattern)


def selected(rel: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    """Whether ``rel`` (a POSIX path relative to the source) is selected by the globs."""
    if include and not any(glob_matches(p, rel) for p in include):
        return False
    return not any(glob_matches(p, rel) for p in exclude)
