"""Errors of kernel inspection: a file that is not the kernel binary it is declared to be."""

from __future__ import annotations

from packager.errors import InputError


class KernelFormatError(InputError):
    """A kernel file that cannot be read as CUDA code: not CUDA at all, truncated or damaged.

    The message names the file and what was wrong at which byte; the hint says what to do.
    """
