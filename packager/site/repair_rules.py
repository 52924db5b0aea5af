"""`airgap repair`'s decisions as pure functions: what is wrong at each installed path, and where
its content comes from. Nothing here touches a file (the I/O is packager.site.repair).

An installed path is judged against what the version's signed bundle.json says it holds
(:func:`packager.site.rules.signed_files`): :func:`judge_path` names what is wrong (missing, not
a regular file, other content, another mode) and the fix (restore the content, or only the
mode). Content comes from a copy whose bytes hash to the signed sha256 (:func:`pick_source`):
the store's blob, else an intact installed copy of the same blob, else a verified bundle; the
descriptor and the other ``.airgap/`` files are not in the store and come only from a verified
bundle whose digest is the installed one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from packager.site.receipts import InstalledFile
from packager.util.compat import StrEnum


class Fix(StrEnum):
    NONE = "none"
    MODE = "mode"  # the content is right, the mode drifted
    RESTORE = "restore"  # the content must be put back (missing, replaced, changed)


class Source(StrEnum):
    STORE = "store"  # DIR/blobs/sha256/<hex>, re-hashed
    INSTALLED = "installed copy"  # an intact installed file of the same blob (re-hashed)
    BUNDLE = "bundle"  # the verified --bundle
    NONE = "none"  # nothing verified holds it


@dataclass(frozen=True)
class Seen:
    """What is at one path now: its kind (None: absent; "file", "dir", "symbolic link", ...),
    and for a regular file its size, mode (permission bits) and sha256 (None: not hashed)."""

    kind: str | None
    size: int = 0
    mode: int = 0
    sha256: str | None = None

    def holds(self, sha256: str, size: int) -> bool:
        """A regular file with exactly this content."""
        return self.kind == "file" and self.size == size and self.sha256 == sha256


ABSENT = Seen(None)


@dataclass(frozen=True)
class Verdict:
    fix: Fix
    why: str  # for people: "missing", "a symbolic link now", "sha256 ..., installed ...", ...


def judge_path(want: InstalledFile, seen: Seen, mode: int) -> Verdict:
    """What is wrong at an installed path that must hold ``want`` with permission ``mode``."""
    if seen.kind is None:
        return Verdict(Fix.RESTORE, "missing")
    if seen.kind != "file":
        return Verdict(Fix.RESTORE, f"a {'folder' if seen.kind == 'dir' else seen.kind} now")
    if seen.size != want.size:
        return Verdict(Fix.RESTORE, f"{seen.size} bytes, installed {want.size}")
    if seen.sha256 != want.sha256:
        got = f"sha256 {seen.sha256[:16]}..." if seen.sha256 else "unreadable"
        return Verdict(Fix.RESTORE, f"{got}, installed {want.sha256[:16]}...")
    if seen.mode != mode:
        return Verdict(Fix.MODE, f"mode {seen.mode:04o}, installed {mode:04o}")
    return Verdict(Fix.NONE, "intact")


def pick_source(want: InstalledFile, store: Seen, installed: bool, in_bundle: bool) -> Source:
    """Where the content of ``want`` comes from: a store blob (``store``: what the store holds
    under its name) only when it hashes to it, else an intact installed copy (``installed``),
    else the verified bundle (``in_bundle``: it lists the blob). The descriptor and the other
    ``.airgap/`` files (not blobs) come only from the bundle."""
    if not want.blob:
        return Source.BUNDLE if in_bundle else Source.NONE
    if store.holds(want.sha256, want.size):
        return Source.STORE
    if installed:
        return Source.INSTALLED
    return Source.BUNDLE if in_bundle else Source.NONE


def store_fix(hexd: str, size: int, store: Seen, mode: int) -> Verdict:
    """What is wrong with the store's blob ``hexd`` (a version still uses it)."""
    return judge_path(InstalledFile(hexd, hexd, size, True), store, mode)


@dataclass(frozen=True)
class Trusted:
    """Which bundle.json an installed version is judged by, and why (see :func:`trusted_descriptor`)."""

    source: Source  # INSTALLED: the one in the version's folder; BUNDLE: the verified bundle's
    why: str


def trusted_descriptor(
    receipt_digest: str,
    logged: frozenset[str],
    installed_digest: str | None,
    bundle_digest: str | None,
) -> Trusted:
    """The bundle.json a version is repaired by. The receipt's digest counts only when the
    hash-chained audit log recorded the install of that digest (``logged``; empty: the log
    has no entry, the install stopped after its receipt). The installed copy counts when its
    sha256 is that digest; otherwise only a verified bundle (``bundle_digest``) of that digest
    can restore it: an edited bundle.json is never "repaired" from itself or the receipt."""
    if logged and receipt_digest not in logged:
        return Trusted(
            Source.NONE,
            f"the receipt says {receipt_digest}, the audit log recorded the install of "
            f"{', '.join(sorted(logged))}: the receipt was edited",
        )
    if installed_digest == receipt_digest:
        return Trusted(Source.INSTALLED, "the installed bundle.json is the one installed")
    what = "missing" if installed_digest is None else f"edited (now {installed_digest})"
    if bundle_digest == receipt_digest:
        return Trusted(Source.BUNDLE, f"the installed bundle.json is {what}")
    if bundle_digest is not None:
        return Trusted(
            Source.NONE,
            f"the installed bundle.json is {what}, and the bundle given is {bundle_digest}, "
            f"not the installed {receipt_digest}",
        )
    return Trusted(Source.NONE, f"the installed bundle.json is {what}")


def blob_sizes(wants: Mapping[str, InstalledFile]) -> dict[str, int]:
    """The store blobs a version's files are, by hex."""
    return {f.sha256: f.size for f in wants.values() if f.blob}
