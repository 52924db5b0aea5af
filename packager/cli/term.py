"""Text for the terminal: nothing from a file reaches it raw.

A bundle's name, a path in a descriptor, a symbol in a kernel binary: any string that came from a
file may hold an escape sequence that erases lines above it and prints a fake "verified", a
right-to-left override that reorders what is read, or a lone surrogate that cannot be encoded.
:func:`visible` shows every such character as an escape (``\\x1b``, ``\\u202e``); the consoles of
:mod:`packager.cli.render` apply it to everything they print, and :func:`shown` also escapes
newlines and rich markup for one value inside a line. ``--json`` output needs none of this:
``json.dumps`` escapes control characters itself.
"""

from __future__ import annotations

import unicodedata

#: format characters that reorder or hide text (bidi overrides and isolates, zero-width ones)
_INVISIBLE_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def _escape_char(c: str) -> str:
    n = ord(c)
    if n < 0x100:
        return f"\\x{n:02x}"
    if n < 0x10000:
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


def visible(text: str, *, newlines: bool = True) -> str:
    """``text`` with every control, format, surrogate or unassigned character shown as an escape;
    newlines and tabs kept when ``newlines`` (a message's own layout), else escaped too."""
    keep = "\n\t" if newlines else ""
    if text.isprintable() and not any(c in text for c in "\u2028\u2029"):
        return text
    return "".join(
        c
        if c in keep or (c.isprintable() and unicodedata.category(c) not in _INVISIBLE_CATEGORIES)
        else _escape_char(c)
        for c in text
    )


def shown(value: object) -> str:
    """One value inside a line of rich markup: control characters and newlines visible, markup
    escaped."""
    from rich.markup import escape  # (rich is loaded only where people read the output)

    return escape(visible(str(value), newlines=False))


def shown_text(value: object) -> str:
    """A message of several lines (an error with its list): control characters visible,
    newlines kept, markup escaped."""
    from rich.markup import escape

    return escape(visible(str(value), newlines=True))
