"""`airgap sign`: add a co-signature to an existing bundle without rebuilding it.

A layout folder gets one more file. A tar (or its parts) gets one more member appended where the
archive's end-of-file blocks were: no blob is rewritten or moved. A journal beside the bundle
records the original sizes first, so an interrupted append is rolled back by the next run.
"""

from __future__ import annotations

import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.bundle.archive import BLOCK, RECORD
from packager.bundle.errors import BundleFormatError
from packager.bundle.parts import Part, PartsIndex, write_parts_index
from packager.bundle.reader import FolderBundle, open_bundle, parts_of
from packager.errors import InputError
from packager.signing.keys import SigningKey
from packager.util.compat import strict_zip
from packager.util.fs import atomic_write_text
from packager.util.hashing import sha256_file
from packager.util.timefmt import epoch_of


@dataclass(frozen=True)
class SignResult:
    bundle: Path
    keyid: str
    added: bool  # False: this key had signed already

    def to_json(self) -> dict[str, Any]:
        return {"bundle": str(self.bundle), "keyid": self.keyid, "added": self.added}


def _journal(path: Path) -> Path:
    return path.with_name(f".{path.name}.signing.json")


def _recover(path: Path) -> None:
    """Undo a co-signature append that did not finish."""
    j = _journal(path)
    if not j.exists():
        return
    doc = json.loads(j.read_text())
    for name, size in doc["parts"]:
        p = path.parent / name
        if size is None:
            p.unlink(missing_ok=True)
        elif p.exists():
            os.truncate(p, size)
    if doc.get("index") is not None:
        atomic_write_text(path.parent / doc["index_name"], doc["index"])
    j.unlink()


def _member(name: str, data: bytes, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = mtime
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    pad = (BLOCK - len(data) % BLOCK) % BLOCK
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict") + data + b"\0" * pad


def sign_bundle(path: Path, key: SigningKey) -> SignResult:
    from packager.signing.signature import signature_file_content

    if path.is_file():
        _recover(path)
    with open_bundle(path) as b:
        raw, doc = b.descriptor()
        members = b.members()
        name = layout.signature_path(key.keyid)
        if name in members:
            return SignResult(path, key.keyid, False)
        sig = signature_file_content(key.sign(raw))
        if isinstance(b, FolderBundle):
            folder = path / layout.SIGNATURES_DIR
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path / name, sig.decode("ascii"))
            return SignResult(path, key.keyid, True)
        end = max(m.offset + m.size + (BLOCK - m.size % BLOCK) % BLOCK for m in members.values())
        mtime = epoch_of(doc.bundle.created) or 0
        parts = b.parts
    new = _member(name, sig, mtime) + b"\0" * (2 * BLOCK)
    total = end + len(new)
    new += b"\0" * ((RECORD - total % RECORD) % RECORD)
    _append(path, parts, end, new)
    return SignResult(path, key.keyid, True)


def _append(path: Path, parts: list[Path], end: int, data: bytes) -> None:
    """Replace everything after ``end`` (the end-of-archive blocks) with ``data``, across parts."""
    _, index = parts_of(path)
    sizes = [p.stat().st_size for p in parts]
    limit = max(sizes) if index is not None else None
    index_path = None
    if index is not None:
        index_path = parts[0].parent / layout.parts_index_name(index.stem)
    recorded: list[list[object]] = [[p.name, s] for p, s in strict_zip(parts, sizes)]
    journal: dict[str, object] = {
        "parts": recorded,
        "index": index_path.read_text() if index_path else None,
        "index_name": index_path.name if index_path else None,
    }
    # which part holds offset `end`
    start = 0
    at = len(parts) - 1
    for i, s in enumerate(sizes):
        if end < start + s or i == len(parts) - 1:
            at = i
            break
        start += s
    local = end - start
    new_parts: list[Path] = []
    try:
        j = _journal(path)
        atomic_write_text(j, json.dumps(journal))
        for p in parts[at + 1 :]:
            p.unlink()
        with open(parts[at], "r+b") as fh:
            fh.truncate(local)
            fh.seek(local)
            room = (limit - local) if limit is not None else len(data)
            fh.write(data[:room])
            fh.flush()
            os.fsync(fh.fileno())
        rest = data[room:] if limit is not None else b""
        n = at + 1
        while rest:
            name = f"{parts[0].name[:-4]}.{n:03d}"
            p = parts[0].parent / name
            recorded.append([name, None])
            atomic_write_text(j, json.dumps(journal))
            with open(p, "wb") as fh:
                fh.write(rest[:limit])
                fh.flush()
                os.fsync(fh.fileno())
            new_parts.append(p)
            rest = rest[limit:] if limit is not None else b""
            n += 1
        if index is not None and index_path is not None:
            final = parts[: at + 1] + new_parts
            listed = tuple(Part(p.name, p.stat().st_size, sha256_file(p).sha256) for p in final)
            write_parts_index(
                index_path,
                PartsIndex(index.stem, index.digest, sum(p.size for p in listed), listed),
            )
        j.unlink()
    except OSError as exc:
        _recover(path)
        raise InputError(
            f"{path}: cannot add the signature: {exc.strerror}", hint="nothing was changed"
        ) from None
    except BundleFormatError:
        _recover(path)
        raise
