"""The audit log's chain check (pure): every gap, repeat and edit is named, in bounded time."""

from __future__ import annotations

import pytest

from packager.site.auditlog import ZERO, check_chain, line_hash, make_line


def _log(seqs: list[int]) -> bytes:
    lines: list[bytes] = []
    prev = ZERO
    for s in seqs:
        line = make_line(
            prev, s, action="install", name="m", version="1", digest=None,
            detail="", time="2026-12-05T12:00:00Z",
        )  # fmt: skip
        lines.append(line)
        prev = line_hash(line)
    return b"".join(line + b"\n" for line in lines)


GAPS = [
    # (id, sequence numbers as written, words that must be named)
    ("none", [1, 2, 3], []),
    ("one-deleted", [1, 3], ["entry 2 is missing"]),
    ("first-deleted", [2, 3], ["entry 1 is missing"]),
    ("a-run-deleted", [1, 5], ["entries 2 to 4 (3 entries) are missing"]),
    ("forged-huge-number", [1, 10**18], [f"entries 2 to {10**18 - 1}"]),
]


@pytest.mark.parametrize(("seqs", "words"), [g[1:] for g in GAPS], ids=[g[0] for g in GAPS])
def test_gaps_in_the_sequence_are_named_as_ranges(seqs: list[int], words: list[str]) -> None:
    rep = check_chain(_log(seqs), None)
    text = " | ".join(p.message for p in rep.problems)
    for w in words:
        assert w in text, text
    if not words:
        assert not rep.problems, text
