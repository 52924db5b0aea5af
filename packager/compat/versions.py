"""Versions and constraints: the implementation lives in the stdlib-only probe (it ships inside
every bundle and runs on Python >= 3.8 before airgap is installed), so there is one of it."""

from packager.probe.versions import Clause, Constraint, Version, VersionError

__all__ = ["Clause", "Constraint", "Version", "VersionError"]
