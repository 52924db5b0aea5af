"""An install prefix: its lock, staging folders, crash recovery, and the ``current`` links.

Every operation that changes a prefix (install, uninstall, rollback, gc) holds an exclusive
``flock`` on ``DIR/.airgap.lock`` and first recovers what an interrupted one left: each staging
folder is removed, and a version folder its journal names is removed too when the version has
no receipt (an install stopped before its receipt, or an uninstall after it). A version is
installed exactly when it has a receipt; ``current`` only ever points at such a version.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.errors import InputError
from packager.site import auditlog
from packager.site import receipts as receipts_mod
from packager.site.rules import UnitChoice, component_problem, pick_unit
from packager.site.safefs import Dir, SiteError, os_error
from packager.util.jsonio import DocumentError, parse_document
from packager.util.progress import Reporter


# ----------------------------------------------------------------------------- test-only hook
class _FaultSteps:
    """TEST ONLY: with AIRGAP_TEST_KILL_AFTER=N (or AIRGAP_TEST_STOP_AFTER=N) the process sends
    itself SIGKILL (SIGSTOP) after its N-th write step, so that the crash tests of
    tests/site/test_install_faults.py stop an install at an exact point. Unset: does nothing."""

    def __init__(self) -> None:
        self.count = 0
        self.kill = int(os.environ.get("AIRGAP_TEST_KILL_AFTER") or 0)
        self.stop = int(os.environ.get("AIRGAP_TEST_STOP_AFTER") or 0)
        #: counting at all (read once: a step is taken for each file an install writes)
        self.counting = bool(self.kill or self.stop or "AIRGAP_TEST_KILL_AFTER" in os.environ)
        self._lock = threading.Lock()  # blobs are written by several threads

    def __call__(self) -> None:
        if not self.counting:
            return
        with self._lock:
            self.count += 1
            if self.kill and self.count >= self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            if self.stop and self.count == self.stop:
                os.kill(os.getpid(), signal.SIGSTOP)


step = _FaultSteps()


# ----------------------------------------------------------------------------- the prefix
class Prefix:
    """An open prefix folder. ``Prefix.open(path, create=...)``; use as a context manager."""

    def __init__(self, path: Path, root: Dir) -> None:
        self.path = path
        self.root = root
        self._lock_fd: int | None = None

    @classmethod
    def open(cls, path: Path, *, create: bool) -> Prefix:
        return cls(path, Dir.open_prefix(str(path), create=create))

    def close(self) -> None:
        self.unlock()
        self.root.close()

    def __enter__(self) -> Prefix:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ locking
    def lock(self, *, exclusive: bool = True, reporter: Reporter | None = None) -> None:
        """Take ``DIR/.airgap.lock`` (waiting, and saying so, while another airgap holds it).
        A shared lock (readers: list, audit) is skipped when the lock file cannot be made."""
        try:
            fd = os.open(
                layout.SITE_LOCK,
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
                dir_fd=self.root.fd,
            )
        except OSError as exc:
            if not exclusive:
                return
            raise os_error(exc, self.root.path_of(layout.SITE_LOCK)) from None
        kind = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
        except BlockingIOError:
            if reporter is not None:
                reporter.note(f"waiting for another airgap operation on {self.path} to finish")
            fcntl.flock(fd, kind)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    @contextlib.contextmanager
    def locked(
        self, *, exclusive: bool = True, reporter: Reporter | None = None
    ) -> Iterator[Prefix]:
        self.lock(exclusive=exclusive, reporter=reporter)
        try:
            yield self
        finally:
            self.unlock()

    # ------------------------------------------------------------------ folders
    def sub(self, relpath: str, *, create: bool = False) -> Dir | None:
        """A folder of the prefix (None when it does not exist and ``create`` is False)."""
        try:
            return self.root.walk(relpath, create=create)
        except FileNotFoundError:
            return None

    def receipts(self, create: bool = False) -> Dir | None:
        return self.sub(layout.SITE_RECEIPTS_DIR, create=create)

    def bundles(self, create: bool = False) -> Dir | None:
        return self.sub(layout.SITE_BUNDLES_DIR, create=create)

    def names(self) -> list[str]:
        """Every bundle name with a receipt folder or a bundles/ folder."""
        out: set[str] = set()
        for d in (self.receipts(), self.bundles()):
            if d is not None:
                with d:
                    out.update(n for n in d.names() if component_problem(n, "name") is None)
        return sorted(out)

    def unit(self, name: str, target: str | None = None) -> str:
        """The installed bundle ``name`` (and ``--target``) mean here (rules.pick_unit):
        InputError (exit 2) when several targets are installed and none is named."""
        try:
            return pick_unit(name, target, self.names())
        except UnitChoice as exc:
            raise InputError(exc.message, hint=exc.hint) from None

    # ------------------------------------------------------------------ state
    def installed(self, name: str) -> dict[str, receipts_mod.Receipt]:
        """The installed versions of ``name``: their receipts (SiteError for a damaged one)."""
        rd = self.receipts()
        if rd is None:
            return {}
        out = {}
        with rd:
            for v in receipts_mod.versions_of(rd, name):
                r = receipts_mod.read_receipt(rd, name, v)
                if r is not None:
                    out[v] = r
        return out

    def current(self, name: str) -> str | None:
        """The version ``bundles/NAME/current`` points at (None: no such link)."""
        b = self.sub(f"{layout.SITE_BUNDLES_DIR}/{name}")
        if b is None:
            return None
        with b:
            kind = b.kind(layout.SITE_CURRENT)
            if kind is None:
                return None
            target = b.readlink(layout.SITE_CURRENT) if kind == "symbolic link" else None
            if target is None or component_problem(target, "version") is not None:
                raise SiteError(
                    f"{b.path_of(layout.SITE_CURRENT)} is not a link to a version folder "
                    f"({kind}{f' to {target!r}' if target else ''})",
                    hint="something else wrote it; `airgap audit --site` shows the state",
                )
            return target

    def switch_current(self, name: str, version: str | None) -> None:
        """Point ``bundles/NAME/current`` at ``version`` atomically (a new link renamed over the
        old one); ``None`` removes it."""
        b = self.root.walk(f"{layout.SITE_BUNDLES_DIR}/{name}", create=True)
        with b:
            if version is None:
                b.unlink(layout.SITE_CURRENT)
            else:
                tmp = f".{layout.SITE_CURRENT}.{secrets.token_hex(6)}"
                b.symlink(version, tmp)
                step()
                b.rename(tmp, b, layout.SITE_CURRENT)
            step()
            b.fsync()

    # ------------------------------------------------------------------ staging and recovery
    def new_staging(self, journal: dict[str, Any]) -> tuple[Dir, str]:
        """A fresh ``DIR/.staging/<random>`` holding ``journal`` (op, name, versions), fsynced."""
        with self.root.walk(layout.SITE_STAGING_DIR, create=True) as top:
            name = secrets.token_hex(8)
            d = top.mkdir(name)
            d.write_file(layout.STAGING_JOURNAL, json.dumps(journal).encode())
            d.fsync()
            top.fsync()
        return d, name

    def discard_staging(self, name: str) -> list[str]:
        """Undo what the staging folder ``name`` had started (see the module) and remove it."""
        notes: list[str] = []
        top = self.sub(layout.SITE_STAGING_DIR)
        if top is None:
            return notes
        with top:
            if top.kind(name) == "dir":
                with top.sub(name) as d:
                    raw = d.read_small(layout.STAGING_JOURNAL, 1 << 20)
                journal = parse_journal(raw)
                if journal is not None:
                    notes += self._undo(journal)
            top.remove_tree(name)
            top.fsync()
        return notes

    def _undo(self, journal: dict[str, Any]) -> list[str]:
        name = journal["name"]
        notes = []
        for version in journal["versions"]:
            rd = self.receipts()
            has_receipt = False
            if rd is not None:
                with rd:
                    has_receipt = version in receipts_mod.versions_of(rd, name)
            if has_receipt:
                continue
            b = self.sub(f"{layout.SITE_BUNDLES_DIR}/{name}")
            if b is None:
                continue
            with b:
                if b.kind(version) is not None and self.current(name) != version:
                    b.remove_tree(version)
                    b.fsync()
                    notes.append(
                        f"removed {b.path_of(version)}, left without a receipt by an interrupted "
                        f"{journal['op']}"
                    )
        return notes

    def prepare(self) -> list[str]:
        """What every changing operation does first, locked: :meth:`recover`, then
        :meth:`reconcile_log`."""
        return self.recover() + self.reconcile_log()

    def reconcile_log(self) -> list[str]:
        """Append a ``reconcile`` entry for each bundle whose current version the audit log does
        not know (an operation that stopped between its commit and its log entry)."""
        notes = []
        entries = auditlog.read_entries(self.root)
        logged = {e["name"] for e in entries if isinstance(e.get("name"), str)}
        for name in sorted(set(self.names()) | logged):
            if component_problem(name, "name") is not None:
                continue
            try:
                current = self.current(name)
                installed = self.installed(name)
            except SiteError:
                continue  # audit --site reports it
            if current is not None and current not in installed:
                continue
            real = (current, installed[current].digest) if current is not None else None
            if auditlog.current_by_log(entries, name) != real:
                auditlog.append(
                    self.root, "reconcile", name, current, real[1] if real else None,
                    "an earlier operation stopped before its log entry; "
                    f"current is {current or 'none'}",
                )  # fmt: skip
                notes.append(
                    f"the audit log did not record {name}'s current version "
                    f"({current or 'none'}): added a reconcile entry"
                )
        return notes

    def recover(self) -> list[str]:
        """Clean up after interrupted operations (call it locked). Returns what it did."""
        notes: list[str] = []
        top = self.sub(layout.SITE_STAGING_DIR)
        if top is not None:
            with top:
                names = top.names()
            for n in names:
                notes += self.discard_staging(n)
        for tmp in self.root.names():
            if tmp.startswith(f".{layout.SITE_AUDIT_HEAD}.") and tmp.endswith(".tmp"):
                self.root.unlink(tmp)
        bd = self.bundles()
        if bd is not None:
            with bd:
                for name in bd.names():
                    if bd.kind(name) != "dir":
                        continue
                    with bd.sub(name) as nd:
                        for n in nd.names():
                            if n.startswith(f".{layout.SITE_CURRENT}."):
                                nd.unlink(n)
        for top in (self.bundles(), self.receipts()):
            if top is not None:
                with top:
                    for name in top.names():  # a name's folder emptied by an interrupted uninstall
                        if top.kind(name) == "dir":
                            with contextlib.suppress(OSError):
                                os.rmdir(name, dir_fd=top.fd)
        return notes


def parse_journal(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        doc = parse_document(raw, max_depth=4)
    except DocumentError:
        return None
    if not isinstance(doc, dict) or "name" not in doc or "versions" not in doc:
        return None
    name, versions = doc["name"], doc["versions"]
    if component_problem(name, "name") or not isinstance(versions, list):
        return None
    good = [v for v in versions if component_problem(v, "version") is None]
    return {"op": str(doc.get("op", "operation")), "name": name, "versions": good}
