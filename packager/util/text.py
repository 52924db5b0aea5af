"""Text from a file, shown to a person: quoted, with everything a terminal would act on escaped."""

from __future__ import annotations


def visible(text: str, limit: int | None = None) -> str:
    """``text`` quoted as Python's ``repr`` quotes it: control characters (C0, DEL, C1), bidi and
    other format characters, line separators and lone surrogates become escapes (``\\x1b``,
    ``\\u202e``, ``\\ud800``), so nothing in it moves the cursor, recolours or reorders the
    terminal. Longer than ``limit`` characters: cut, with ``...`` before the closing quote."""
    if limit is not None and len(text) > limit:
        quoted = repr(text[:limit])
        return quoted[:-1] + "..." + quoted[-1]
    return repr(text)
