"""Progress bars at a terminal (:class:`RichReporter`), one per phase on stderr."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from packager.cli.progress import honest_speed
from packager.util.progress import Reporter


class _SpeedColumn(ProgressColumn):
    """Average speed over the phase, shown only once it has run long enough to be one."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        speed = honest_speed(task.completed, elapsed or 0.0)
        return Text(speed or "", style="progress.data.speed")


class RichReporter(Reporter):
    """One bar per phase on stderr; quiet when stderr is not a terminal unless forced."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress = Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            DownloadColumn(),
            _SpeedColumn(),
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
