"""One exception hierarchy for everything a user can run into.

Every error carries a message that says what was wrong, where it was (a file, line and column, a
JSON path, a bundle part) and a hint that says what to do about it. The CLI renders these and maps
them to exit codes; nothing else in the package prints.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceLocation:
    """A place in a text file, 1-based line and column as editors show them."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


class AirgapError(Exception):
    """Base of every error airgap reports to a user."""

    #: process exit status the CLI uses for this error (CLI contract: 1 check failed, 2 input error)
    exit_code: int = 2

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        location: SourceLocation | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.location = location

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.message}"


class InputError(AirgapError):
    """Input that cannot be read or used at all: a missing file, a folder, bad YAML, bad options."""

    exit_code = 2


class ManifestReadError(InputError):
    """The manifest file could not be read or parsed as a single YAML mapping."""


class CheckFailed(AirgapError):
    """A check ran and failed: an invalid manifest, a failed verification, a probe FAIL."""

    exit_code = 1


class ResolveError(InputError):
    """An input named by the manifest cannot be resolved: missing, unreadable, unreachable."""


class PinMismatch(CheckFailed):
    """Content does not match the sha256 or digest the manifest pins."""


class LockMismatch(CheckFailed):
    """A lock that does not belong to the manifest, or inputs that drifted since it was made."""
