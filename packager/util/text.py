"""A value from a file inside a message: quoted, cut to a length, nothing in it a terminal acts on.

Messages are built outside ``packager/cli`` (findings, errors); :func:`quoted` makes the value
in one unmistakable (``'./a\\x1b[2J'``) whatever prints it; ``packager.cli.term`` escapes whole
lines at the terminal besides."""

from __future__ import annotations


def quoted(text: str, limit: int | None = None) -> str:
    """``text`` quoted as Python's ``repr`` quotes it: control characters (C0, DEL, C1), bidi and
    other format characters, line separators and lone surrogates become escapes (``\\x1b``,
    ``\\u202e``, ``\\ud800``), so nothing in it moves the cursor, recolours or reorders the
    terminal. Longer than ``limit`` characters: cut, with ``...`` before the closing quote."""
    if limit is not None and len(text) > limit:
        cut = repr(text[:limit])
        return cut[:-1] + "..." + cut[-1]
    return repr(text)
