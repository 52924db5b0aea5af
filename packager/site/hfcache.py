"""``airgap install ... --hf-cache DIR``: the installed weights as a Hugging Face hub cache.

Servers that take a hub id (vLLM, TGI, transformers) find a model offline (``HF_HUB_OFFLINE=1``)
in a cache laid out as the hub client writes it:

    DIR/models--ORG--NAME/blobs/<sha256>                    hard links into the prefix's store
    DIR/models--ORG--NAME/snapshots/<REVISION>/<path>       symlinks ../../blobs/<sha256>
    DIR/models--ORG--NAME/refs/main                         REVISION

Nothing is copied: a blob that cannot be hard-linked (another file system) is an error that says
so. ORG/NAME is the model's name in the lock. REVISION is the hub commit when the weights came
from the hub (the lock records it), else a 40-hex id derived from the files' paths and digests, so
that the same weights always get the same revision. A snapshot already there with the same files is
kept; one with other files is refused. Each snapshot is built under a temporary name and renamed
into place; ``refs/main`` is replaced by a rename.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.bundle.descriptor import Descriptor
from packager.errors import CheckFailed, InputError
from packager.site.safefs import SiteError

#: a hub repo id: [namespace/]name, no "--" or ".." (the hub refuses those)
_REPO_ID = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class HfCacheResult:
    cache: Path
    repo_id: str
    revision: str
    snapshot: Path
    files: int
    created: bool  # False: the snapshot was already there with these files

    def to_json(self) -> dict[str, Any]:
        return {
            "cache": str(self.cache),
            "repo_id": self.repo_id,
            "revision": self.revision,
            "snapshot": str(self.snapshot),
            "files": self.files,
            "created": self.created,
        }


def repo_folder(repo_id: str) -> str:
    """``org/name`` -> ``models--org--name`` (the hub client's folder name)."""
    return "models--" + repo_id.replace("/", "--")


def revision_of(descriptor: Descriptor, files: list[tuple[str, str]]) -> str:
    """The hub commit the lock records, else a revision derived from (path, sha256) pairs."""
    source = descriptor.lock.model.source
    commit = source.get("commit") if isinstance(source, dict) else None
    if isinstance(commit, str) and _COMMIT.fullmatch(commit):
        return commit
    h = hashlib.sha256(b"airgap hf-cache revision v1\n")
    for path, hexd in sorted(files):
        h.update(f"{path}\0{hexd}\n".encode())
    return h.hexdigest()[:40]


def model_files(descriptor: Descriptor) -> list[tuple[str, str]]:
    """(path under model/, blob hex) of every installed model file."""
    prefix = layout.MODEL_INSTALL_DIR + "/"
    out = []
    for b in descriptor.blobs_with_role("model"):
        for p in b.paths:
            if p.startswith(prefix):
                out.append((p[len(prefix) :], b.hex))
    return sorted(out)


def layout_hf_cache(prefix: Path, descriptor: Descriptor, cache: Path) -> HfCacheResult:
    """Lay the installed weights of ``descriptor`` out under ``cache`` (see the module)."""
    repo_id = descriptor.lock.model.name
    if not _REPO_ID.fullmatch(repo_id) or "--" in repo_id or ".." in repo_id:
        raise InputError(
            f"--hf-cache: the model name {repo_id!r} is not a Hugging Face repo id",
            hint="the manifest's model.name must be ORG/NAME (letters, digits, . _ -) for a hub cache",
        )
    files = model_files(descriptor)
    if not files:
        raise InputError("--hf-cache: the bundle installs no model files")
    revision = revision_of(descriptor, files)
    store = prefix / layout.SITE_BLOBS_DIR
    try:
        cache.mkdir(parents=True, exist_ok=True)
        repo = cache / repo_folder(repo_id)
        _no_link(repo)
        for sub in ("blobs", "snapshots", "refs"):
            (repo / sub).mkdir(parents=True, exist_ok=True)
            _no_link(repo / sub)
        blobs = repo / "blobs"
        for _path, hexd in files:
            _link_blob(store / hexd, blobs / hexd)
        snapshot = repo / "snapshots" / revision
        created = True
        if os.path.lexists(snapshot):
            _same_snapshot(snapshot, files)
            created = False
        else:
            work = repo / "snapshots" / f".{revision}.{uuid.uuid4().hex[:8]}.tmp"
            try:
                for path, hexd in files:
                    link = work / path
                    link.parent.mkdir(parents=True, exist_ok=True)
                    depth = path.count("/") + 2  # snapshots/REV/<path> -> ../../blobs
                    os.symlink("/".join([".."] * depth + ["blobs", hexd]), link)
                os.rename(work, snapshot)
            finally:
                if os.path.lexists(work):
                    shutil.rmtree(work, ignore_errors=True)
        ref = repo / "refs" / "main"
        tmp = repo / "refs" / f".main.{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_text(revision)
        os.replace(tmp, ref)
    except OSError as exc:
        raise SiteError(
            f"--hf-cache {cache}: {exc.strerror or exc}"
            + (f" ({exc.filename})" if exc.filename else ""),
            hint="the cache folder must be writable",
        ) from None
    return HfCacheResult(cache, repo_id, revision, snapshot, len(files), created)


def _no_link(path: Path) -> None:
    if path.is_symlink():
        raise SiteError(
            f"--hf-cache: {path} is a symbolic link; refusing to write through it",
            hint="remove the link, or pick another cache folder",
        )


def _link_blob(src: Path, dest: Path) -> None:
    """``dest`` as a hard link to the store's blob ``src`` (already there: the same inode)."""
    try:
        os.link(src, dest, follow_symlinks=False)
    except FileExistsError:
        a, b = os.stat(src, follow_symlinks=False), os.lstat(dest)
        if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
            raise CheckFailed(
                f"--hf-cache: {dest} exists and is not the prefix's blob {src.name}",
                hint="remove it (the cache keeps one file per digest), then install again",
            ) from None
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise SiteError(
                f"--hf-cache: cannot hard-link {src} to {dest}: {exc.strerror}",
                hint="put the hub cache on the prefix's file system: it holds hard links into "
                "the store, never copies",
            ) from None
        raise


def _same_snapshot(snapshot: Path, files: list[tuple[str, str]]) -> None:
    want = {path: hexd for path, hexd in files}
    have: dict[str, str] = {}
    for dirpath, _dirs, names in os.walk(snapshot):
        for n in names:
            full = Path(dirpath) / n
            rel = full.relative_to(snapshot).as_posix()
            target = os.readlink(full) if full.is_symlink() else ""
            have[rel] = target.rsplit("/", 1)[-1]
    if have != want:
        raise CheckFailed(
            f"--hf-cache: {snapshot} exists with other files",
            hint="remove that snapshot folder, then install again",
        )
