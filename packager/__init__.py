"""airgap: signed offline bundles for AI inference deployments."""

from __future__ import annotations

__all__ = ["__version__"]

#: the one place the version is spelled: pyproject.toml reads it (setuptools ``attr``), so a
#: command never pays importlib.metadata's scan of every installed distribution to learn it
__version__ = "0.1.0"
