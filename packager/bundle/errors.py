"""Errors of reading a bundle, in the package's one hierarchy (:mod:`packager.errors`)."""

from __future__ import annotations

from packager.errors import InputError


class BundleFormatError(InputError):
    """The input is not a readable airgap bundle."""


class DescriptorError(BundleFormatError):
    """``airgap/bundle.json`` is not a descriptor this airgap can use: not JSON, a name given
    twice, a value of the wrong type or form. The message names the JSON path."""
