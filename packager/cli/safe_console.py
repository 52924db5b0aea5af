"""The rich Console airgap prints with for people (imported only when one is made:
packager.cli.consoles)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from packager.cli.term import visible


class SafeConsole(Console):
    """A rich Console that shows what it prints with :func:`visible` applied to every string."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(
            *(visible(o) if isinstance(o, str) else o for o in objects),
            **kwargs,
        )
