"""visible(): text from a file quoted so that nothing in it acts on the terminal."""

from __future__ import annotations

import pytest

from packager.util.text import visible


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
def test_what_a_terminal_would_act_on_is_escaped(text: str, limit: int | None, shown: str) -> None:
    assert visible(text, limit) == shown
    assert all(
        c >= " " and c != "\x7f" and not ("\x80" <= c <= "\x9f") for c in visible(text, limit)
    )
