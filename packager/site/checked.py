"""The store's record of checked blobs: ``DIR/blobs/checked.json``.

A delta bundle leaves out blobs the site's store already holds; installing it must not trust
those blobs blindly (a damaged or tampered blob would become part of the new version), but
re-hashing hundreds of GB that have not changed would cost as much as the full install. So
every blob whose content airgap has established (hashed while it was stored, or hashed since)
is recorded with the stat it had afterwards: inode, size, mtime and ctime in nanoseconds. A blob
whose stat still matches is taken as checked; any write to it, a chmod, a new or removed hard
link or a replacement changes its ctime (which no user can set back), and it is hashed again.

The record is a cache of work done, with the trust of the receipts beside it (same folder, same
owner): a missing or damaged record only means blobs are hashed again, and `airgap audit
--site` always re-hashes every installed file. It is written under the prefix's lock by
install, to a temporary name renamed into place.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Mapping

from packager.bundle import layout
from packager.site.safefs import Dir, SiteError
from packager.util.jsonio import DocumentError, parse_document

#: the record's folder and name: beside blobs/sha256, never a blob name
RECORD_DIR, _, RECORD = layout.SITE_CHECKED_RECORD.rpartition("/")
RECORD_FORMAT = 1
MAX_RECORD_BYTES = 256 * 1024 * 1024
_HEX = re.compile(r"[0-9a-f]{64}")

#: inode, size, mtime_ns, ctime_ns
Stamp = tuple[int, int, int, int]


def stamp(st: os.stat_result) -> Stamp:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _blobs_parent(prefix: Dir) -> Dir | None:
    try:
        return prefix.walk(RECORD_DIR)
    except FileNotFoundError:
        return None


def read_record(prefix: Dir) -> dict[str, Stamp]:
    """The record, or an empty one when it is missing or not one (it only saves work)."""
    d = _blobs_parent(prefix)
    if d is None:
        return {}
    with d:
        try:
            raw = d.read_small(RECORD, MAX_RECORD_BYTES)
        except (OSError, SiteError):
            return {}
    if raw is None:
        return {}
    try:
        doc = parse_document(raw)
    except DocumentError:
        return {}
    if not isinstance(doc, dict) or doc.get("checked") != RECORD_FORMAT:
        return {}
    blobs = doc.get("blobs")
    if not isinstance(blobs, dict):
        return {}
    out: dict[str, Stamp] = {}
    for hexd, value in blobs.items():
        if (
            _HEX.fullmatch(hexd)
            and isinstance(value, list)
            and len(value) == 4
            and all(type(v) is int and v >= 0 for v in value)
        ):
            out[hexd] = (value[0], value[1], value[2], value[3])
    return out


def write_record(prefix: Dir, store: Dir, good: Iterable[str]) -> None:
    """Record the stat ``store``'s blobs ``good`` (hex names whose content airgap established)
    have now; keep the entries that still match; drop the rest. Call under the prefix's lock."""
    old = read_record(prefix)
    new: dict[str, Stamp] = {}
    for hexd, was in old.items():
        st = store.lstat(hexd)
        if st is not None and stamp(st) == was:
            new[hexd] = was
    for hexd in good:
        st = store.lstat(hexd)
        if st is not None:
            new[hexd] = stamp(st)
    doc = {"checked": RECORD_FORMAT, "blobs": {k: list(v) for k, v in sorted(new.items())}}
    d = _blobs_parent(prefix)
    if d is None:
        return
    with d:
        tmp = f".{RECORD}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            d.unlink(tmp)  # left by a run that was killed
        d.write_file(tmp, (json.dumps(doc, separators=(",", ":")) + "\n").encode())
        d.rename(tmp, d, RECORD)


def matches(record: Mapping[str, Stamp], hexd: str, st: os.stat_result) -> bool:
    """Whether blob ``hexd``, now of stat ``st``, is unchanged since it was checked."""
    return record.get(hexd) == stamp(st)
