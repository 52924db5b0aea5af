"""The consoles that print for people, made on first use: a ``--json`` run (a site's scripted
install, verify, list) never imports rich, a tenth of its start-up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from packager.cli.safe_console import SafeConsole


class LazyConsole:
    """A :class:`~packager.cli.safe_console.SafeConsole` with ``options``, made when any of its
    attributes is first used."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: SafeConsole | None = None

    @property
    def console(self) -> SafeConsole:
        if self._console is None:
            from packager.cli.safe_console import SafeConsole

            self._console = SafeConsole(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # the proxy's own fields (copy, pickle): never the console's
            raise AttributeError(name)
        return getattr(self.console, name)
