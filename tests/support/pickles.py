"""A pickle that would run a command when loaded: the canary of the load-code tests."""

from __future__ import annotations

import os
import pickle
from pathlib import Path


class Canary:
    """Unpickling this runs ``touch PATH`` (through os.system): the file appearing means some
    code unpickled it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.path}",))


def evil_pickle(path: Path, protocol: int = 2) -> bytes:
    return pickle.dumps(Canary(path), protocol=protocol)
