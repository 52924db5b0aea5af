"""Progress on stderr: the CLI's :class:`~packager.util.progress.Reporter`s. Bars at a terminal
(packager.cli.bars, imported only there: rich's progress costs start-up time); plain lines, one
when a phase starts, one every few seconds and one when it ends, for logs and CI
(:class:`LineReporter`)."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Callable, TextIO

from packager.cli.term import visible
from packager.util.progress import Reporter
from packager.util.units import human_size

#: a phase shorter than this shows no speed: bytes taken from a cache in a blink are not a rate
MIN_SECONDS_FOR_SPEED = 1.0


def honest_speed(done: float, seconds: float) -> str | None:
    """``12.3 MB/s``, or None when the phase was too short for a rate to mean anything (pure)."""
    if seconds < MIN_SECONDS_FOR_SPEED or done <= 0:
        return None
    return f"{human_size(done / seconds)}/s"


class LineReporter(Reporter):
    """Plain lines for logs (stderr not a terminal): a phase's start, its progress every
    ``every`` seconds, and its end with the bytes and time; thread-safe."""

    def __init__(
        self, out: TextIO, *, every: float = 10.0, clock: Callable[[], float] | None = None
    ) -> None:
        self._out = out
        self._every = every
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._label: str | None = None
        self._total: int | None = None
        self._done = 0
        self._started = 0.0
        self._last = 0.0

    def _line(self, text: str) -> None:
        self._out.write(visible(text, newlines=False) + "\n")
        self._out.flush()

    def _amount(self) -> str:
        if self._total:
            pct = min(100.0, 100.0 * self._done / self._total)
            return f"{human_size(self._done)} of {human_size(self._total)} ({pct:.0f}%)"
        return human_size(self._done)

    def _finish(self) -> None:
        if self._label is None:
            return
        seconds = self._clock() - self._started
        speed = honest_speed(self._done, seconds)
        rate = f", {speed}" if speed else ""
        # a phase that counts no bytes (checking inputs, signing) says how long it took only:
        # "done, 0 B" read as if nothing had been done
        amount = f", {human_size(self._done)}" if self._done or self._total else ""
        self._line(f"{self._label}: done{amount} in {seconds:.1f} s{rate}")
        self._label = None

    def phase(self, label: str, total: int | None = None) -> None:
        with self._lock:
            self._finish()
            self._label, self._total, self._done = label, total, 0
            self._started = self._last = self._clock()
            size = f" ({human_size(total)})" if total else ""
            self._line(f"{label}{size} ...")

    def set_total(self, total: int) -> None:
        with self._lock:
            self._total = total

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self._done += nbytes
            now = self._clock()
            if self._label is None or now - self._last < self._every:
                return
            self._last = now
            speed = honest_speed(self._done, now - self._started)
            self._line(f"{self._label}: {self._amount()}" + (f", {speed}" if speed else ""))

    def note(self, text: str) -> None:
        with self._lock:
            self._line(text)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            if exc_type is None:
                self._finish()
            self._label = None
