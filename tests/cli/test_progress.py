"""Progress for logs and CI: plain lines without a terminal, and no speed that cannot be one."""

from __future__ import annotations

import io

import pytest

from packager.cli.progress import LineReporter, honest_speed

SPEEDS = [
    # (bytes, seconds, shown)
    (10_300_000_000_000, 0.001, None),  # a cached step: "10.3 TB/s" is not a speed
    (500_000_000, 0.9, None),
    (500_000_000, 2.0, "250.0 MB/s"),
    (0, 5.0, None),
]


@pytest.mark.parametrize(("done", "seconds", "shown"), SPEEDS)
def test_a_speed_is_shown_only_when_it_means_something(
    done: int, seconds: float, shown: str | None
) -> None:
    assert honest_speed(done, seconds) == shown


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_for_a_start_every_ten_seconds_and_an_end() -> None:
    out, clock = io.StringIO(), Clock()
    with LineReporter(out, clock=clock) as rep:
        rep.phase("hashing", 4_000_000_000)
        for _ in range(30):  # 30 s, 100 MB a second
            clock.now += 1
            rep.advance(100_000_000)
        rep.phase("writing x\x1b[2Jy")
        rep.note("a note")
    lines = out.getvalue().splitlines()
    assert lines[0] == "hashing (4.0 GB) ..."
    assert lines[1:4] == [
        "hashing: 1.0 GB of 4.0 GB (25%), 100.0 MB/s",
        "hashing: 2.0 GB of 4.0 GB (50%), 100.0 MB/s",
        "hashing: 3.0 GB of 4.0 GB (75%), 100.0 MB/s",
    ]
    assert lines[4] == "hashing: done, 3.0 GB in 30.0 s, 100.0 MB/s"
    assert lines[5] == "writing x\\x1b[2Jy ..."  # a name from a file, made visible
    assert lines[6] == "a note"
    assert lines[7] == "writing x\\x1b[2Jy: done in 0.0 s"  # it counted no bytes: no "0 B"
    assert "/s" not in lines[7]  # too short for a speed


def test_a_phase_that_was_to_count_bytes_says_how_many_even_none() -> None:
    out = io.StringIO()
    with LineReporter(out, clock=Clock()) as rep:
        rep.phase("writing", 100)
    assert out.getvalue().splitlines()[-1] == "writing: done, 0 B in 0.0 s"


def test_a_failed_run_ends_no_phase_as_done() -> None:
    out = io.StringIO()
    with pytest.raises(RuntimeError), LineReporter(out, clock=Clock()) as rep:
        rep.phase("hashing")
        raise RuntimeError("stop")
    assert "done" not in out.getvalue()
