"""Work on the second core in tests (packager.util.forked): every piece of work gets a child
whatever its size, and each result taken says whether a child computed it."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from packager.util import forked


def on_two_cores(monkeypatch: pytest.MonkeyPatch, *modules: ModuleType) -> list[bool]:
    """Work of any size is worth a child (FORK_MIN_ITEMS 0, AIRGAP_NO_FORK unset), and the
    ``Forked`` of each of ``modules`` records, per result taken, whether a child computed it
    (False: computed here, where fork is not to be had). Returns that record."""
    monkeypatch.setenv(forked.NO_FORK_ENV, "0")
    monkeypatch.setattr(forked, "FORK_MIN_ITEMS", 0)
    taken: list[bool] = []

    class Recorded(forked.Forked[Any]):
        def result(self) -> Any:
            taken.append(self.forked)
            return super().result()

    for module in modules:
        monkeypatch.setattr(module, "Forked", Recorded)
    return taken
