"""A content-addressed blob store on disk (the build cache): ``ROOT/sha256/<hex>``.

Blobs are written to a temporary name while being hashed and renamed into place only when the
digest (and size, when known) match, so a blob under its final name is always complete.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packager.bundle import layout
from packager.errors import CheckFailed, InputError


class BlobMismatch(CheckFailed):
    """Content that does not hash to the digest it was fetched by."""


@dataclass(frozen=True)
class StoredBlob:
    digest: str
    size: int
    path: Path


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        return self.root / layout.blob_path(digest).removeprefix("blobs/")

    def has(self, digest: str, size: int | None = None) -> bool:
        p = self.path(digest)
        try:
            st = p.stat()
        except OSError:
            return False
        return size is None or st.st_size == size

    def put_stream(
        self, chunks: Iterable[bytes], digest: str, size: int | None = None, *, what: str = "blob"
    ) -> StoredBlob:
        """Store a stream under ``digest``; raise BlobMismatch (nothing kept) if it is not that."""
        final = self.path(digest)
        if self.has(digest, size):
            for _ in chunks:  # drain a generator that the caller expects consumed
                pass
            return StoredBlob(digest, final.stat().st_size, final)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.partial")
        h = hashlib.sha256()
        n = 0
        try:
            with open(tmp, "wb") as fh:
                for chunk in chunks:
                    h.update(chunk)
                    fh.write(chunk)
                    n += len(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            got = "sha256:" + h.hexdigest()
            if got != digest or (size is not None and n != size):
                raise BlobMismatch(
                    f"{what}: content is {got} ({n} bytes), expected {digest}"
                    + (f" ({size} bytes)" if size is not None else ""),
                    hint="the source served other bytes than its digest promises; nothing was kept",
                )
            os.replace(tmp, final)
        except OSError as exc:
            raise InputError(
                f"{final.parent}: cannot write the build cache: {exc.strerror}"
            ) from None
        finally:
            tmp.unlink(missing_ok=True)
        return StoredBlob(digest, n, final)

    def put_bytes(self, data: bytes) -> StoredBlob:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        return self.put_stream([data], digest, len(data))
