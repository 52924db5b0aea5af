"""Progress reporting for long work: the narrow interface the stages call.

The stages never print; they tell a :class:`Reporter`. The CLI hands them one that draws bars
(packager.cli.progress); library callers and ``--json`` runs get this silent one.
"""

from __future__ import annotations

from types import TracebackType


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
