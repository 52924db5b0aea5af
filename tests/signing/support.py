"""Helpers for the signing tests: the test passphrase, test dependencies, the real tools."""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from tests.support import services

PASSPHRASE = b"correct horse SECRET-42"


def require_module(name: str) -> ModuleType:
    """Import a test dependency; skip without it, fail when AIRGAP_REQUIRE_SERVICES=1 (CI)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        message = f"test dependency {name} is not installed ({exc}); pip install -e .[test]"
        if services.services_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def require_tool(name: str) -> str:
    """Absolute path of a command-line tool; skip without it, fail in CI."""
    return services.require(lambda: services.tool(name))


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(a) for a in args], capture_output=True, timeout=30, env=env)
