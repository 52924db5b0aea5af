"""quoted(): a value from a file inside a message, with nothing in it a terminal acts on."""

from __future__ import annotations

import pytest

from packager.util.text import quoted


@pytest.mark.parametrize(
    ("text", "limit", "shown"),
    [
        ("plain", None, "'plain'"),
        ("\x1b[2J", None, "'\\x1b[2J'"),
        ("a\x00b\x7f\x9b", None, "'a\\x00b\\x7f\\x9b'"),
        ("evil\u202etxt", None, "'evil\\u202etxt'"),
        ("\u2066x\u2069\u2028", None, "'\\u2066x\\u2069\\u2028'"),
        ("\ud800", None, "'\\ud800'"),
        ("line\nnext\ttab", None, "'line\\nnext\\ttab'"),
        ("é\U0001f600", None, "'é\U0001f600'"),
        ("abcdef", 3, "'abc...'"),
        ("\x1b" * 10, 2, "'\\x1b\\x1b...'"),
    ],
)
def test_what_a_terminal_would_act_on_is_escaped_and_long_values_cut(
    text: str, limit: int | None, shown: str
) -> None:
    assert quoted(text, limit) == shown
    assert all(
        c >= " " and c != "\x7f" and not ("\x80" <= c <= "\x9f") for c in quoted(text, limit)
    )
