"""`airgap sign`: add a co-signature to an existing bundle without rebuilding it.

A layout folder gets two more files (``<keyid>.sig`` and its signing-time record). A tar, or its
parts, gets them as two more members where the archive's end-of-file blocks were: no blob is
rewritten or moved. The rules, each learnt from a way this went wrong:

- Only the files it was given are written: the tar or the parts (named by the validated parts
  index, all beside it, all regular files: a link is refused) and that index. Nothing is ever
  deleted that this run did not create: the appended members always cover the old end blocks and
  padding, so the existing parts are overwritten in place, never removed.
- Everything is checked before a byte changes: the descriptor parses, the archive has nothing
  after its end and no part after the one that holds the end, the parts match their index.
- A journal beside the bundle (``.NAME.signing.json``) records each part's size and where the
  append began, so an interrupted run is rolled back by the next one. The journal is read as
  typed data; one that names any file but this bundle's parts and index is refused.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.bundle.archive import BLOCK, RECORD
from packager.bundle.descriptor import Descriptor
from packager.bundle.errors import BundleFormatError
from packager.bundle.parts import Part, PartsIndex, write_parts_index
from packager.bundle.reader import Bundle, open_bundle, parts_of
from packager.errors import InputError
from packager.signing.keys import SigningKey
from packager.signing.signature import signature_file_content
from packager.signing.signing_time import make_record
from packager.util.fs import atomic_write_text
from packager.util.hashing import sha256_file
from packager.util.jsonio import DocumentError, parse_document
from packager.util.timefmt import epoch_of


class SignError(InputError):
    """The bundle cannot be signed as it is; nothing was changed."""


@dataclass(frozen=True)
class SignResult:
    bundle: Path
    keyid: str
    added: bool  # False: this key had signed already
    #: this key also made the bundle's airgap/model.sig (the bundle had none; an ECDSA key)
    model_signature: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "bundle": str(self.bundle),
            "keyid": self.keyid,
            "added": self.added,
            "model_signature_added": self.model_signature,
        }


@dataclass(frozen=True)
class _Target:
    """What a tar signing may write: these part files (in order) and this index (or none)."""

    parts: list[Path]
    index_path: Path | None
    index: PartsIndex | None


def sign_bundle(path: Path, key: SigningKey) -> SignResult:
    """Add ``key``'s signature and signing-time record; an existing one makes it a no-op."""
    if path.is_dir():
        return _sign_folder(path, key)
    target = _target(path)
    _recover(path, target)
    with open_bundle(path) as b:
        raw, doc = b.descriptor()
        members = b.members()
        signed = layout.signature_path(key.keyid) in members
        model_sig = None if layout.MODEL_SIGNATURE in members else _model_signature(doc, key)
        if signed and model_sig is None:
            return SignResult(path, key.keyid, False)
        _refuse_unsound(b, path)
        end = max(
            (m.offset + m.size + (BLOCK - m.size % BLOCK) % BLOCK for m in members.values()),
            default=0,
        )
        mtime = epoch_of(doc.bundle.created) or 0
    digest = "sha256:" + _sha256(raw)
    new = b""
    if not signed:
        new += _member(
            layout.signature_path(key.keyid), signature_file_content(key.sign(raw)), mtime
        )
        new += _member(
            layout.signing_time_path(key.keyid), make_record(key, digest, int(time.time())), mtime
        )
    if model_sig is not None:
        new += _member(layout.MODEL_SIGNATURE, model_sig, mtime)
    new += b"\0" * (2 * BLOCK)
    new += b"\0" * ((RECORD - (end + len(new)) % RECORD) % RECORD)
    _append(path, target, end, new)
    return SignResult(path, key.keyid, not signed, model_sig is not None)


def _model_signature(doc: Descriptor, key: SigningKey) -> bytes | None:
    """airgap/model.sig by ``key``, for a bundle that has none and a key that can make one
    (ECDSA P-256: packager.bundle.model_signature)."""
    from packager.bundle import model_signature

    return model_signature.sign(doc, key)


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _refuse_unsound(b: Bundle, path: Path) -> None:
    if b.problems:
        raise SignError(
            f"{path}: not signed, nothing was changed: " + "; ".join(b.problems),
            hint="`airgap verify` names what is wrong; sign an intact copy",
        )


def _target(path: Path) -> _Target:
    """The files of a tar bundle, each checked to be a regular file of this bundle."""
    parts, index = parts_of(path)
    index_path = None
    if index is not None:
        index_path = (
            path
            if path.name.endswith(".airgap.parts.json")
            else parts[0].parent / layout.parts_index_name(index.stem)
        )
        if index_path.name != layout.parts_index_name(index.stem):
            raise SignError(
                f"{index_path}: the parts index of {index.stem} must be named "
                f"{layout.parts_index_name(index.stem)}; nothing was changed"
            )
    for p in [*parts, *([index_path] if index_path else [])]:
        try:
            st = p.lstat()
        except FileNotFoundError:
            raise SignError(f"{p}: missing; nothing was changed") from None
        if not stat.S_ISREG(st.st_mode):
            raise SignError(
                f"{p}: not a regular file (a link?); airgap signs only the files it is given",
                hint="copy the bundle's files themselves, not links to them",
            )
    return _Target(parts, index_path, index)


def _sign_folder(path: Path, key: SigningKey) -> SignResult:
    """Two more files in ``airgap/bundle.json.sig/``: written through no link."""
    with open_bundle(path) as b:
        raw, doc = b.descriptor()
    folder = path / layout.SIGNATURES_DIR
    for d in (path / layout.AIRGAP_DIR, folder):
        if d.is_symlink() or (d.exists() and not d.is_dir()):
            raise SignError(
                f"{d}: not a folder (a link?); nothing was changed",
                hint="a layout folder holds real folders and files only",
            )
    sig_path = path / layout.signature_path(key.keyid)
    time_path = path / layout.signing_time_path(key.keyid)
    model_path = path / layout.MODEL_SIGNATURE
    for p in (sig_path, time_path, model_path):
        if p.is_symlink():
            raise SignError(f"{p}: a link; nothing was changed")
    signed = sig_path.is_file()
    model_sig = None if model_path.exists() else _model_signature(doc, key)
    if model_sig is not None:
        atomic_write_text(model_path, model_sig.decode("utf-8"))
    if signed:
        return SignResult(path, key.keyid, False, model_sig is not None)
    folder.mkdir(exist_ok=True)
    digest = "sha256:" + _sha256(raw)
    atomic_write_text(
        time_path, make_record(key, digest, int(time.time())).decode("utf-8")
    )  # the record first: a signature never stands without its time
    atomic_write_text(sig_path, signature_file_content(key.sign(raw)).decode("ascii"))
    return SignResult(path, key.keyid, True, model_sig is not None)


def _member(name: str, data: bytes, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = mtime
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    pad = (BLOCK - len(data) % BLOCK) % BLOCK
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict") + data + b"\0" * pad


# ----------------------------------------------------------------------------- the journal


def _journal(path: Path) -> Path:
    return path.with_name(f".{path.name}.signing.json")


@dataclass(frozen=True)
class _Journal:
    #: (part name, its size before, where this run began writing in it, or None: created here)
    parts: list[tuple[str, int | None, int]]
    index: str | None  # the parts index's text before

    def to_json(self) -> str:
        return json.dumps({"parts": [list(p) for p in self.parts], "index": self.index})


_NUM = re.compile(r"[0-9]{1,15}")


def _read_journal(j: Path, target: _Target) -> _Journal:
    """The journal as typed data, naming only this bundle's files; else SignError."""
    allowed = {p.name for p in target.parts}
    stem_tar = target.parts[0].name.rsplit(".", 1)[0] if target.index else target.parts[0].name
    part_name = re.compile(re.escape(stem_tar) + r"\.[0-9]{3,6}")

    def refuse(why: str) -> SignError:
        return SignError(
            f"{j}: the journal of an interrupted signing {why}; nothing was changed",
            hint="a journal only ever names the bundle's own parts: check the folder, then "
            "remove the journal by hand",
        )

    try:
        doc = parse_document(j.read_bytes()[: 1 << 20])
    except (OSError, DocumentError) as exc:
        raise refuse(f"is unreadable ({exc})") from None
    if not isinstance(doc, dict) or set(doc) != {"parts", "index"}:
        raise refuse("is not one airgap wrote")
    parts: list[tuple[str, int | None, int]] = []
    seen: set[str] = set()
    for entry in doc["parts"] if isinstance(doc["parts"], list) else [None]:
        if not (
            isinstance(entry, list)
            and len(entry) == 3
            and isinstance(entry[0], str)
            and (entry[1] is None or (isinstance(entry[1], int) and entry[1] >= 0))
            and isinstance(entry[2], int)
            and entry[2] >= 0
        ):
            raise refuse("is not one airgap wrote")
        name = entry[0]
        if name in seen or not (name in allowed or part_name.fullmatch(name)):
            raise refuse(f"names {name!r}, which is not a part of this bundle")
        if entry[1] is None and name in allowed and target.index is not None:
            raise refuse(f"says it created {name!r}, which the parts index lists")
        seen.add(name)
        parts.append((name, entry[1], entry[2]))
    index = doc["index"]
    if index is not None and (not isinstance(index, str) or target.index_path is None):
        raise refuse("is not one airgap wrote")
    return _Journal(parts, index)


def _recover(path: Path, target: _Target) -> None:
    """Undo an append that did not finish: sizes back, the zeros back, created parts removed."""
    j = _journal(path)
    if not j.exists():
        return
    journal = _read_journal(j, target)
    folder = target.parts[0].parent
    for name, size, began in journal.parts:
        p = folder / name
        if size is None:  # created by the interrupted run
            if p.is_file() and not p.is_symlink():
                p.unlink()
            continue
        if not p.is_file() or p.is_symlink():
            continue
        with open(p, "r+b") as fh:  # its end blocks and padding were zeros (checked then)
            fh.truncate(began)
            fh.truncate(size)
            fh.flush()
            os.fsync(fh.fileno())
    if journal.index is not None and target.index_path is not None:
        atomic_write_text(target.index_path, journal.index)
    j.unlink()


# ----------------------------------------------------------------------------- the append


def _append(path: Path, target: _Target, end: int, data: bytes) -> None:
    """Write ``data`` from offset ``end`` on (over the old end blocks and padding), across the
    parts in place, and into new parts where the last one is full."""
    parts = target.parts
    sizes = [p.stat().st_size for p in parts]
    limit = max(sizes) if target.index is not None else None
    starts = [sum(sizes[:i]) for i in range(len(parts))]
    at = max(i for i, s in enumerate(starts) if s <= end or i == 0)
    records: list[tuple[str, int | None, int]] = [
        (p.name, s, max(0, end - st)) for p, s, st in zip(parts, sizes, starts) if st + s > end
    ]
    if not records:
        records = [(parts[-1].name, sizes[-1], sizes[-1])]
    journal = _Journal(
        records, target.index_path.read_text() if target.index_path is not None else None
    )
    j = _journal(path)
    try:
        atomic_write_text(j, journal.to_json())
        rest = data
        i = at
        while rest:
            if i < len(parts):
                p, local = parts[i], max(0, end - starts[i])
            else:
                if target.index is None:
                    raise SignError(f"{path}: the archive ends past its last part")
                p = parts[0].parent / layout.part_name(target.index.stem, i)
                if p.exists() or p.is_symlink():
                    raise SignError(f"{p}: exists but is not listed; nothing was changed")
                journal.parts.append((p.name, None, 0))
                atomic_write_text(j, journal.to_json())
                local = 0
            room = (limit - local) if limit is not None else len(rest)
            with open(p, "r+b" if i < len(parts) else "xb") as fh:
                fh.truncate(local)
                fh.seek(local)
                fh.write(rest[:room])
                fh.flush()
                os.fsync(fh.fileno())
            rest = rest[room:]
            i += 1
        if target.index is not None and target.index_path is not None:
            listed = tuple(
                Part(p.name, p.stat().st_size, sha256_file(p).sha256)
                for p in _current_parts(target, journal)
            )
            write_parts_index(
                target.index_path,
                PartsIndex(
                    target.index.stem, target.index.digest, sum(p.size for p in listed), listed
                ),
            )
        j.unlink()
    except OSError as exc:
        _recover(path, target)
        raise SignError(
            f"{path}: cannot add the signature: {exc.strerror}", hint="nothing was changed"
        ) from None
    except (BundleFormatError, SignError):
        _recover(path, target)
        raise


def _current_parts(target: _Target, journal: _Journal) -> list[Path]:
    folder = target.parts[0].parent
    created = [folder / name for name, size, _ in journal.parts if size is None]
    return [*target.parts, *created]
