"""The prefix's audit log: ``DIR/audit.log``, one JSON object per line, hash-chained.

Each entry is ``{"seq", "time", "action", "name", "version", "digest", "detail", "prev"}`` where
``prev`` is the sha256 (hex) of the previous line's bytes, without its newline (``"0" * 64`` for
the first) and ``seq`` counts entries from 1. Lines are appended with O_APPEND in one write and
fsynced. ``DIR/audit.log.head`` holds the last entry's seq and hash, so that deleting or editing
the last lines shows too.

What the chain shows: an edited, deleted, inserted or reordered entry, by anyone who does not
rewrite every entry after it and the head. It is not a signature: someone who can rewrite the
whole file can forge it; keep a copy of the head elsewhere for that.

:func:`check_chain` is pure; :func:`append` does the I/O.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packager.bundle import layout
from packager.site.safefs import Dir, os_error
from packager.util.jsonio import DocumentError, parse_document
from packager.util.timefmt import now_utc

ZERO = "0" * 64
#: the entry append() writes first when the log does not end where the head says
DAMAGED = "log-damaged"
FIELDS = ("seq", "time", "action", "name", "version", "digest", "detail", "prev")
#: who and where, in every entry written since they were added (older entries lack them)
WHO_FIELDS = ("operator", "host")
#: an install that was refused or did not verify: recorded, though nothing else was written
REFUSED = "install-refused"
MAX_LOG_BYTES = 256 * 1024 * 1024
_TAIL = 64 * 1024


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def make_line(
    prev: str,
    seq: int,
    *,
    action: str,
    name: str | None,
    version: str | None,
    digest: str | None,
    detail: str,
    time: str,
    operator: str | None = None,
    host: str | None = None,
) -> bytes:
    entry: dict[str, Any] = {
        "seq": seq,
        "time": time,
        "action": action,
        "name": name,
        "version": version,
        "digest": digest,
        "detail": detail,
    }
    if operator is not None and host is not None:
        entry.update(operator=operator, host=host)
    entry["prev"] = prev
    return json.dumps(entry, separators=(",", ":")).encode()  # ASCII: no line separators inside


# ----------------------------------------------------------------------------- reading


_HEX64 = re.compile(r"[0-9a-f]{64}")


def parse_entry(raw: bytes) -> dict[str, Any] | None:
    """One line of the log as a typed entry, or None when it is not one airgap wrote: exactly
    the fields of :data:`FIELDS` (and both or neither of :data:`WHO_FIELDS`), a positive whole ``seq``, strings (or null for name, version,
    digest) and a sha256 ``prev``; parsed strictly (a name given twice, deep nesting refused)."""
    try:
        entry = parse_document(raw, max_depth=2)
    except DocumentError:
        return None
    if not isinstance(entry, dict) or set(entry) - set(WHO_FIELDS) != set(FIELDS):
        return None
    who = [entry.get(k) for k in WHO_FIELDS]
    if who != [None, None] and not all(isinstance(w, str) for w in who):
        return None  # both or neither, as strings
    seq = entry["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return None
    if not all(isinstance(entry[k], str) for k in ("time", "action", "detail", "prev")):
        return None
    if not all(
        entry[k] is None or isinstance(entry[k], str) for k in ("name", "version", "digest")
    ):
        return None
    if not _HEX64.fullmatch(entry["prev"]):
        return None
    return entry


def parse_head(raw: bytes) -> tuple[int, str] | None:
    """``audit.log.head`` as (seq, sha256 of that line), or None when it is not exactly that."""
    try:
        doc = parse_document(raw, max_depth=2)
    except DocumentError:
        return None
    if not isinstance(doc, dict) or set(doc) != {"seq", "sha256"}:
        return None
    seq, sha = doc["seq"], doc["sha256"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        return None
    if not isinstance(sha, str) or not _HEX64.fullmatch(sha):
        return None
    return seq, sha


# ----------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class LogProblem:
    line: int | None  # 1-based line of audit.log
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "message": self.message}

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass
class ChainReport:
    entries: list[dict[str, Any]] = field(default_factory=list)
    problems: list[LogProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _lines(data: bytes) -> tuple[list[bytes], bool]:
    """The lines and whether the last one ends with a newline."""
    if not data:
        return [], True
    complete = data.endswith(b"\n")
    return (data[:-1] if complete else data).split(b"\n"), complete


def check_chain(data: bytes, head: bytes | None) -> ChainReport:
    """Every problem of the log ``data`` (and the head file's content), each naming its line."""
    rep = ChainReport()
    lines, complete = _lines(data)
    hashes = [line_hash(line) for line in lines]
    by_hash = {h: i for i, h in enumerate(hashes, 1)}
    seqs: list[int | None] = []
    for i, raw in enumerate(lines, 1):
        entry = parse_entry(raw)
        if entry is None:
            rep.problems.append(LogProblem(i, "not an audit entry (edited or damaged)"))
            seqs.append(None)
            rep.entries.append({})
            continue
        rep.entries.append(entry)
        seqs.append(entry["seq"])
    if not complete:
        rep.problems.append(
            LogProblem(len(lines), "the last line has no newline (a torn write, or edited)")
        )
    for i, e in enumerate(rep.entries, 1):
        if e.get("action") == DAMAGED:
            rep.problems.append(LogProblem(i, f"recorded when appending: {e.get('detail')}"))
    # sequence numbers: deleted, duplicated and reordered entries
    where: dict[int, int] = {}
    for i, s in enumerate(seqs, 1):
        if s is None:
            continue
        if s in where:
            rep.problems.append(
                LogProblem(i, f"entry {s} appears again (first on line {where[s]})")
            )
        where.setdefault(s, i)
    # gaps between the sequence numbers present, as ranges: a forged entry numbered 10**18 names
    # one gap, it does not make us count to it
    present = sorted(where)
    missing_before: set[int] = set()  # lines before which a gap was named
    for lo, hi in zip([0, *present], present):
        if hi - lo < 2:
            continue
        first, last = lo + 1, hi - 1
        missing_before.add(where[hi])
        gone = str(first) if first == last else f"{first} to {last} ({last - first + 1} entries)"
        rep.problems.append(
            LogProblem(
                where[hi],
                f"entr{'y' if first == last else 'ies'} {gone} "
                f"{'is' if first == last else 'are'} missing before this line (deleted)",
            )
        )
    prev_seq: int | None = None
    for i, s in enumerate(seqs, 1):
        if s is not None and prev_seq is not None and s < prev_seq:
            rep.problems.append(
                LogProblem(i, f"entry {s} comes after entry {prev_seq} (line {i - 1}): reordered")
            )
        if s is not None:
            prev_seq = s
    # the chain itself
    for i, entry in enumerate(rep.entries, 1):
        if not entry:
            continue
        want = ZERO if i == 1 else hashes[i - 2]
        if entry["prev"] == want:
            continue
        if i == 1:
            rep.problems.append(
                LogProblem(1, "does not start the chain: entries before it were deleted")
            )
        elif entry["prev"] in by_hash:
            j = by_hash[entry["prev"]]
            rep.problems.append(
                LogProblem(i, f"chains to line {j}, not to line {i - 1}: reordered or deleted")
            )
        elif i in missing_before:
            pass  # named above: deleted entries
        else:
            rep.problems.append(LogProblem(i - 1, f"edited: its hash is not the prev of line {i}"))
    _check_head(rep, lines, hashes, head)
    return rep


def _check_head(
    rep: ChainReport, lines: list[bytes], hashes: list[str], head: bytes | None
) -> None:
    if head is None:
        if lines:
            rep.notes.append(f"no {layout.SITE_AUDIT_HEAD}: the last entry is not anchored")
        return
    parsed = parse_head(head)
    if parsed is None:
        rep.problems.append(LogProblem(None, f"{layout.SITE_AUDIT_HEAD} is not readable (edited?)"))
        return
    seq, sha = parsed
    line_of = {e.get("seq"): i for i, e in enumerate(rep.entries, 1) if e}
    if seq == 0 and not lines:
        return
    if seq not in line_of:
        rep.problems.append(
            LogProblem(
                None,
                f"{layout.SITE_AUDIT_HEAD} names entry {seq}, which the log does not hold: "
                "the last entries were deleted",
            )
        )
        return
    i = line_of[seq]
    if hashes[i - 1] != sha:
        rep.problems.append(LogProblem(i, f"edited: does not match {layout.SITE_AUDIT_HEAD}"))
    beyond = len(lines) - i
    if beyond > 0:
        rep.notes.append(
            f"{beyond} entr{'y' if beyond == 1 else 'ies'} after the one {layout.SITE_AUDIT_HEAD} "
            "names (an append stopped before updating the head?)"
        )


def current_by_log(entries: Sequence[Mapping[str, Any]], name: str) -> tuple[str, str] | None:
    """(version, digest) the log says ``name`` is at after its last entry, or None."""
    cur: tuple[str, str] | None = None
    for e in entries:
        if e.get("name") != name:
            continue
        if e.get("action") in ("install", "activate", "rollback", "reconcile"):
            cur = (str(e.get("version")), str(e.get("digest"))) if e.get("version") else None
        elif e.get("action") == "uninstall" and cur is not None and e.get("version") == cur[0]:
            cur = None
    return cur


# ----------------------------------------------------------------------------- appending


def _last_line(fd: int, size: int) -> bytes | None:
    """The last line of the file (without its newline), read from the end."""
    if size == 0:
        return None
    end = size
    data = os.pread(fd, min(_TAIL, size), size - min(_TAIL, size))
    if data.endswith(b"\n"):
        data, end = data[:-1], end - 1
    while b"\n" not in data and len(data) < end:
        more = min(_TAIL, end - len(data))
        data = os.pread(fd, more, end - len(data) - more) + data
    return data.rsplit(b"\n", 1)[-1]


def _against_head(prefix: Dir, last: bytes | None, last_seq: int) -> tuple[int, str | None]:
    """The head's seq, and what is wrong when the log's last line is not the one it names
    (None when it is, or when the head lags by exactly one entry that chains onto it: an append
    stopped before it moved the head)."""
    raw = prefix.read_small(layout.SITE_AUDIT_HEAD, 4096)
    if raw is None:
        return 0, None
    parsed = parse_head(raw)
    if parsed is None:
        return 0, f"{layout.SITE_AUDIT_HEAD} was unreadable before this entry (edited?)"
    head_seq, head_sha = parsed
    if last is None:
        return head_seq, (
            f"the log was empty or missing while {layout.SITE_AUDIT_HEAD} named entry {head_seq}"
            if head_seq
            else None
        )
    if last_seq == head_seq and line_hash(last) == head_sha:
        return head_seq, None
    with_prev = parse_entry(last)
    if last_seq == head_seq + 1 and with_prev is not None and with_prev["prev"] == head_sha:
        return head_seq, None
    return head_seq, (
        f"before this entry the log ended with entry {last_seq}, but {layout.SITE_AUDIT_HEAD} "
        f"named entry {head_seq} (sha256 {head_sha[:16]}...): entries were edited or deleted"
    )


def read_log(prefix: Dir) -> tuple[bytes, bytes | None]:
    """The log's bytes (empty when there is none) and the head's."""
    data = prefix.read_small(layout.SITE_AUDIT_LOG, MAX_LOG_BYTES) or b""
    return data, prefix.read_small(layout.SITE_AUDIT_HEAD, 4096)


def read_entries(prefix: Dir) -> list[dict[str, Any]]:
    data, _ = read_log(prefix)
    out = []
    for line in _lines(data)[0]:
        e = parse_entry(line)
        if e is not None:
            out.append(e)
    return out


def who() -> tuple[str, str]:
    """(operator, host) for an entry: the login name (and the sudo caller's, when sudo ran
    us) and the host name; what the system cannot tell is written as ``uid N`` / ``unknown``."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        user = f"uid {os.getuid()}"
    caller = os.environ.get("SUDO_USER")
    operator = f"{caller} (sudo as {user})" if caller and caller != user else user
    try:
        host = socket.gethostname() or "unknown"
    except OSError:
        host = "unknown"
    return operator, host


def append(
    prefix: Dir,
    action: str,
    name: str | None,
    version: str | None,
    digest: str | None,
    detail: str,
) -> dict[str, Any]:
    """Append one entry (O_APPEND, one write, fsync), then move the head to it. Call it with the
    prefix locked. Returns the entry."""
    where = prefix.path_of(layout.SITE_AUDIT_LOG)
    try:
        fd = os.open(
            layout.SITE_AUDIT_LOG,
            os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o644,
            dir_fd=prefix.fd,
        )
    except OSError as exc:
        raise os_error(exc, where) from None
    try:
        size = os.fstat(fd).st_size
        last = _last_line(fd, size)
        prev = ZERO if last is None else line_hash(last)
        last_seq = 0
        if last is not None:
            last_entry = parse_entry(last)
            last_seq = (
                last_entry["seq"] if last_entry is not None else os.pread(fd, size, 0).count(b"\n")
            )
        head_seq, damage = _against_head(prefix, last, last_seq)
        seq = max(last_seq, head_seq) + 1
        torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        out = b"\n" if torn else b""
        if damage:  # evidence first: the entries the head vouched for are gone or changed
            bad = make_line(
                prev, seq, action=DAMAGED, name=None, version=None, digest=None,
                detail=damage, time=now_utc(),
            )  # fmt: skip
            out += bad + b"\n"
            prev, seq = line_hash(bad), seq + 1
        operator, host = who()
        line = make_line(
            prev, seq, action=action, name=name, version=version, digest=digest,
            detail=detail, time=now_utc(), operator=operator, host=host,
        )  # fmt: skip
        os.write(fd, out + line + b"\n")
        os.fsync(fd)
    except OSError as exc:
        raise os_error(exc, where) from None
    finally:
        os.close(fd)
    head = json.dumps({"seq": seq, "sha256": line_hash(line)}).encode() + b"\n"
    tmp = f".{layout.SITE_AUDIT_HEAD}.{secrets.token_hex(6)}.tmp"
    prefix.write_file(tmp, head)
    prefix.rename(tmp, prefix, layout.SITE_AUDIT_HEAD)
    prefix.fsync()
    entry = parse_entry(line)
    assert entry is not None  # we just wrote it
    return entry
