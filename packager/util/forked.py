"""Pure work on the second core: a forked child computes a function's result while this process
goes on with its own work (the GIL keeps threads of Python code on one core).

For work that is the same wherever it runs: pure functions of data already in memory (parsing
and checking documents), or a write the caller hands over (a build's model files into its tar).
The child writes nothing but its result to a pipe and leaves with ``os._exit`` (no atexit
handler, no buffered output of the parent's written twice). Its result is the same as calling the
function here, and whenever the child cannot give it (no ``fork`` on this platform, one CPU, the
child failed or raised, its pipe broke) the function is simply called here: a :class:`Forked`
never changes what is computed, only which core computes it.

A child is forked from a process that may run threads (hashing, a progress bar). Only the forking
thread goes on in the child: a lock another thread held at that moment stays held there (Python
3.12 warns of this). So the parent watches a child it waits for: one that sleeps without using
any CPU for :data:`STUCK_SECONDS` is taken to be stuck on such a lock, is killed, and the
function is called here instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from typing import Generic, TypeVar

# pickle, select and signal are imported where a child is made, waited for or ended: verify
# imports this module at start-up, and most bundles it verifies make no child (about 3 ms)

T = TypeVar("T")

#: set to 1 to compute every Forked in this process (a debugger, a profile of one process)
NO_FORK_ENV = "AIRGAP_NO_FORK"
#: work over at least this many entries (a model's files, an archive's members) is worth a
#: child: below it, forking and sending the result back cost more than the second core saves
FORK_MIN_ITEMS = 2000
#: a child asleep this long without using CPU is stuck (see the module docstring)
STUCK_SECONDS = 5.0
#: how often a waiting parent looks at the child
_POLL_SECONDS = 0.25


def can_fork() -> bool:
    """Whether a second process would run on a second core: ``fork`` exists, there is more than
    one CPU, and it was not turned off (:data:`NO_FORK_ENV`)."""
    return (
        hasattr(os, "fork")
        and sys.platform.startswith("linux")  # /proc watches the child (and macOS's system
        # frameworks are unsafe in a child forked without exec)
        and (os.cpu_count() or 1) > 1
        and os.environ.get(NO_FORK_ENV, "") in ("", "0")
    )


def worth_forking(items: int) -> bool:
    """Whether work over ``items`` entries is worth a child (:data:`FORK_MIN_ITEMS`)."""
    return items >= FORK_MIN_ITEMS


def _progress(pid: int | None) -> tuple[str, int] | None:
    """A process's state letter and the CPU ticks it used so far (/proc/PID/stat), or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()  # after "PID (COMM) "; COMM may hold spaces
    try:
        return fields[0].decode("ascii", "replace"), int(fields[11]) + int(fields[12])
    except (IndexError, ValueError):
        return None


class Forked(Generic[T]):
    """``fn()`` computed in a child process from now on; :meth:`result` gives it (computed here
    when the child could not). :meth:`close` (or leaving the ``with``) ends a child whose result
    is not wanted."""

    def __init__(self, fn: Callable[[], T], *, fork: bool = True) -> None:
        self._fn = fn
        self._pid: int | None = None
        self._fd: int | None = None
        if fork and can_fork():
            self._start()

    def _start(self) -> None:
        import pickle

        r, w = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no memory or no process slot: compute it here
            os.close(r)
            os.close(w)
            return
        if pid == 0:  # the child: compute, write, leave
            code = 1
            try:
                os.close(r)
                data = pickle.dumps(self._fn(), protocol=pickle.HIGHEST_PROTOCOL)
                with open(w, "wb", closefd=True) as out:
                    out.write(data)
                code = 0
            except BaseException:  # the parent computes it again, and sees why
                pass
            finally:
                os._exit(code)
        os.close(w)
        self._pid, self._fd = pid, r

    @property
    def forked(self) -> bool:
        """Whether a child is computing it (False: :meth:`result` computes it here)."""
        return self._pid is not None

    def result(self) -> T:
        """The result: the child's when it gave one, else ``fn()`` computed here (so an exception
        ``fn`` raises is raised here, as without a child)."""
        if self._fd is None:
            return self._fn()
        chunks = self._read_all(self._fd)
        ok = chunks is not None and self._reap() == 0
        if not ok:
            self.close()
        if ok and chunks:
            import pickle

            try:
                value: T = pickle.loads(b"".join(chunks))  # our own child's bytes
                return value
            except Exception:  # cut short: computed here
                pass
        return self._fn()

    def _read_all(self, fd: int) -> list[bytes] | None:
        """The child's result as it comes; None when the child is stuck (see the module)."""
        import select

        chunks: list[bytes] = []
        last: tuple[str, int] | None = None
        since = time.monotonic()
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], _POLL_SECONDS)
                if ready:
                    chunk = os.read(fd, 1 << 20)
                    if not chunk:
                        return chunks
                    chunks.append(chunk)
                    continue
                now = _progress(self._pid)
                if now is None or now != last or now[0] != "S":
                    last, since = now, time.monotonic()  # at work (or cannot tell)
                elif time.monotonic() - since > STUCK_SECONDS:
                    return None
        except OSError:
            return chunks

    def _reap(self) -> int | None:
        """Close the pipe and wait for the child: its exit code (None when there was none)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._pid is None:
            return None
        pid, self._pid = self._pid, None
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        """No result wanted: a child still at work is ended, and reaped (no zombie is left)."""
        if self._pid is not None:
            import signal

            with contextlib.suppress(OSError):
                os.kill(self._pid, signal.SIGKILL)
        self._reap()

    def __enter__(self) -> Forked[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
