"""packager.util.forked: a Forked gives exactly what calling its function here gives, whichever
core computed it, and leaves no process behind."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from packager.util import forked
from packager.util.forked import Forked


def _pid() -> int:
    return os.getpid()


def _big() -> bytes:
    return bytes(range(256)) * (40 * 1024)  # 10 MiB: far more than a pipe holds


def _raises() -> None:
    raise ValueError("the function's own error")


def _dies() -> int:
    if os.getpid() != PARENT:
        os._exit(3)  # the child dies without a result
    return 7


def _unpicklable() -> Callable[[], int]:
    return lambda: 1


PARENT = os.getpid()

#: (case, function, what result() gives)
CASES: list[tuple[str, Callable[[], Any], Callable[[Any], bool]]] = [
    ("a plain value, from the child", _pid, lambda got: got != PARENT),
    ("a result larger than a pipe holds", _big, lambda got: got == _big()),
    ("a child that dies: computed here", _dies, lambda got: got == 7),
    ("a result that does not pickle: computed here", _unpicklable, lambda got: got() == 1),
]


def _gone(pid: int) -> bool:
    """The child was reaped: no process, not even a zombie, is left of it."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.mark.skipif(not forked.can_fork(), reason="no fork or one CPU here")
@pytest.mark.parametrize(("fn", "check"), [pytest.param(f, c, id=i) for i, f, c in CASES])
def test_the_result_is_the_functions(fn: Callable[[], Any], check: Callable[[Any], bool]) -> None:
    with Forked(fn) as job:
        assert job.forked
        pid = job._pid
        assert pid is not None
        assert check(job.result())
    assert _gone(pid)


@pytest.mark.skipif(not forked.can_fork(), reason="no fork or one CPU here")
def test_an_exception_in_the_child_is_raised_here_by_computing_it_again() -> None:
    job = Forked(_raises)
    with pytest.raises(ValueError, match="the function's own error"):
        job.result()


@pytest.mark.parametrize(
    ("fork", "env"), [(False, ""), (True, "1")], ids=["fork=False", f"{forked.NO_FORK_ENV}=1"]
)
def test_without_a_child_it_is_computed_here(
    fork: bool, env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(forked.NO_FORK_ENV, env)
    job = Forked(_pid, fork=fork)
    assert not job.forked and job.result() == os.getpid()


@pytest.mark.skipif(not forked.can_fork(), reason="no fork or one CPU here")
def test_closing_ends_a_child_whose_result_is_not_wanted() -> None:
    t0 = time.monotonic()
    with Forked(lambda: time.sleep(60)) as job:
        pid = job._pid
        assert pid is not None
    assert time.monotonic() - t0 < 10  # killed, not waited for
    assert _gone(pid)


@pytest.mark.skipif(not forked.can_fork(), reason="no fork or one CPU here")
def test_a_child_stuck_on_a_lock_another_thread_held_at_the_fork_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hazard of forking a process that runs threads: the child waits forever for a lock
    that no thread of its own will release. It sleeps without using CPU: it is killed, and the
    function is computed here (where the lock's holder lets it go)."""
    import threading

    monkeypatch.setattr(forked, "STUCK_SECONDS", 0.5)
    held, release = threading.Lock(), threading.Event()
    held.acquire()

    def holder() -> None:
        release.wait()
        held.release()

    def needs_the_lock() -> int:
        with held:
            return os.getpid()

    thread = threading.Thread(target=holder)
    thread.start()
    job = Forked(needs_the_lock)
    pid = job._pid
    assert pid is not None
    threading.Timer(1.0, release.set).start()  # after the child is found stuck
    t0 = time.monotonic()
    assert job.result() == os.getpid()  # computed here
    assert 0.5 < time.monotonic() - t0 < 30
    assert _gone(pid)
    thread.join()


@pytest.mark.parametrize(
    ("items", "worth"),
    [(0, False), (forked.FORK_MIN_ITEMS - 1, False), (forked.FORK_MIN_ITEMS, True), (10**6, True)],
)
def test_only_work_over_many_entries_is_worth_a_child(items: int, worth: bool) -> None:
    assert forked.worth_forking(items) is worth
