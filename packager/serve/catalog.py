"""What `airgap serve` serves: verified manifests and blobs, and the repositories that name them.

Pure data. A :class:`Catalog` is built only from content that was verified (packager.serve.sources):
manifests are held in memory as the exact bytes whose sha256 was checked; a blob is where its
verified bytes lie, as segments of files each pinned by its identity (device, inode, size,
mtime, ctime) taken before verification: the server opens the file without following links and
refuses to send from it when that identity changed.

A repository lists its tags (tag -> manifest digest) and every manifest and blob reachable from
them: a request for content that is not in the repository it names is answered as unknown, as a
registry does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from packager.errors import InputError


@dataclass(frozen=True)
class FileIdentity:
    """A file as it was when its content was verified."""

    path: str
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, path: str, st: os.stat_result) -> FileIdentity:
        return cls(path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def changed(self, st: os.stat_result) -> str | None:
        """What differs in ``st`` (of the file opened now), or None when it is the same file."""
        if (st.st_dev, st.st_ino) != (self.dev, self.ino):
            return "it was replaced by another file"
        if st.st_size != self.size:
            return f"its size is {st.st_size}, it was {self.size}"
        if (st.st_mtime_ns, st.st_ctime_ns) != (self.mtime_ns, self.ctime_ns):
            return "it was written or its metadata changed"
        return None


@dataclass(frozen=True)
class Segment:
    file: FileIdentity
    offset: int
    length: int


@dataclass(frozen=True)
class BlobSource:
    """A verified blob: its bytes are the segments, in order (a blob of a split tar may span two
    parts)."""

    digest: str
    size: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class ServedManifest:
    digest: str
    media_type: str
    data: bytes


@dataclass
class Repository:
    name: str
    tags: dict[str, str] = field(default_factory=dict)  # tag -> manifest digest
    manifests: set[str] = field(default_factory=set)
    blobs: set[str] = field(default_factory=set)
    #: what the repository stands for: ``image REF`` or ``bundle NAME VERSION``, per tag
    origins: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tags": [
                {"tag": t, "digest": d, "from": self.origins.get(t)}
                for t, d in sorted(self.tags.items())
            ],
            "manifests": len(self.manifests),
            "blobs": len(self.blobs),
        }


@dataclass
class Catalog:
    repositories: dict[str, Repository] = field(default_factory=dict)
    manifests: dict[str, ServedManifest] = field(default_factory=dict)
    blobs: dict[str, BlobSource] = field(default_factory=dict)

    def repository(self, name: str) -> Repository:
        repo = self.repositories.get(name)
        if repo is None:
            repo = self.repositories[name] = Repository(name)
        return repo

    def add(
        self,
        name: str,
        tag: str | None,
        top: str | None,
        manifests: set[str],
        blobs: set[str],
        origin: str,
    ) -> None:
        """``origin`` (an image or the bundle) as repository ``name``, ``tag`` -> ``top`` (None:
        content served by digest only).

        Every digest must be in the catalog already; the same name and tag for two different
        things is refused (serving one of them would hide the other)."""
        tops = {top} if top is not None else set()
        missing = sorted((manifests | tops) - set(self.manifests)) + sorted(
            d for d in blobs if d not in self.blobs and d not in self.manifests
        )
        if missing:
            raise InputError(f"{origin}: {missing[0]} is not among the verified content")
        repo = self.repository(name)
        if tag is not None and top is not None:
            had = repo.tags.get(tag)
            if had is not None and had != top:
                raise InputError(
                    f"{origin} and {repo.origins[tag]} would both be served as {name}:{tag}",
                    hint="images are served under their repository path without the registry "
                    "host; serve the bundles one at a time",
                )
            repo.tags[tag] = top
            repo.origins.setdefault(tag, origin)
        repo.manifests |= manifests | tops
        repo.blobs |= blobs

    def to_json(self) -> list[dict[str, Any]]:
        return [self.repositories[n].to_json() for n in sorted(self.repositories)]
