"""Progress reporting for long work: a narrow interface, rich bars on stderr in the CLI."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class Reporter:
    """Does nothing: what library code gets when nobody watches (and under --json)."""

    def phase(self, label: str, total: int | None = None) -> None:
        """Start a phase; ``total`` in bytes when known."""

    def set_total(self, total: int) -> None:
        """The current phase's size, once it is known."""

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more of the current phase are done (thread-safe)."""

    def note(self, text: str) -> None:
        """A line about what happens, outside any bar."""

    def __enter__(self) -> Reporter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class RichReporter(Reporter):
    """One bar per phase on stderr; quiet when stderr is not a terminal unless forced."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress = Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None

    def phase(self, label: str, total: int | None = None) -> None:
        if self._task is not None:
            t = self._progress.tasks[-1]
            if t.total is not None:
                self._progress.update(self._task, completed=t.total)
        self._task = self._progress.add_task(label, total=total)

    def set_total(self, total: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, total=total)

    def advance(self, nbytes: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, nbytes)

    def note(self, text: str) -> None:
        self._progress.console.print(text)

    def __enter__(self) -> RichReporter:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()
