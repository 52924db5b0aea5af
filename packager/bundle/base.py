"""The base of a delta bundle, read from what the user names (the I/O of packager.bundle.delta).

``--base OLD`` at build: a bundle (tar, parts index or any part, layout folder) or a site's
have-list. At verify: a bundle whose blobs supply what the delta leaves out (its bytes are
hashed against the delta's signed blob list; the base's own signatures do not matter).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from packager.bundle import layout
from packager.bundle.delta import BaseContent, held_blobs, held_files
from packager.bundle.descriptor import BaseRef, content_bytes
from packager.bundle.have import is_have_list, read_have_list
from packager.bundle.reader import Bundle, open_bundle
from packager.errors import InputError


class BlobSource(Protocol):
    """Where the blobs a delta leaves out are read from: a base bundle or a site's store."""

    where: str
    #: bytes taken as checked without reading them (packager.site.have.StoreBlobs)
    unchanged_bytes: int

    def has(self, hexd: str, size: int) -> bool: ...

    def hash(self, hexd: str, progress: Callable[[int], None] | None) -> str: ...

    def kit_file(self, sha256: str, size: int) -> tuple[bytes, str] | None:
        """A site-kit wheel's bytes as this source holds them (at most ``size`` + 1, checked
        by the caller against the delta's signed sha256) and where they were read, or None
        when it holds none."""
        ...

    def summary(self) -> str | None: ...

    def close(self) -> None: ...


def _looks_like_have_list(path: Path) -> bool:
    if not path.is_file() or path.name.endswith(".airgap.parts.json"):
        return False
    try:
        with path.open("rb") as fh:
            return is_have_list(fh.read(4096))
    except OSError:
        return False


def read_bases(
    path: Path, name: str, targets: Sequence[str | None]
) -> dict[str | None, BaseContent]:
    """What the site holds according to ``path`` (see the module), for the delta of bundle
    ``name`` to each of ``targets`` (the manifest's target ids; [None] for a single-target
    manifest), read once: a have-list's version of that target (else of any target: a site
    moving to targets), a combined bundle's view of that target, or a bundle built for it."""
    if _looks_like_have_list(path):
        have = read_have_list(path)
        mine = [v for v in have.installed if v.name == name]
        if not mine:
            raise InputError(
                f"{path}: the site holds no version of {name}: a delta names the version it "
                "builds on",
                hint="build a full bundle for that site (no --base)",
            )
        sizes, kit, out = have.sizes(), have.kit_sizes(), {}
        for target in targets:
            theirs = [v for v in mine if v.target == target] or mine
            pick = next((v for v in theirs if v.current), theirs[-1])
            ref = BaseRef(pick.name, pick.version, pick.digest)
            out[target] = BaseContent(ref, sizes, str(path), kit)
        return out
    from packager.bundle.combined import targets_of

    with open_bundle(path) as b:
        held = targets_of(b.members())
        return {t: _bundle_base(path, b, held, name, t) for t in targets}


def _bundle_base(
    path: Path, b: Bundle, held: Sequence[str], name: str, target: str | None
) -> BaseContent:
    """The base of ``target``'s delta in bundle ``b`` (a combined one holds ``held``)."""
    from packager.bundle.combined import TargetView

    if held and target not in held:
        raise InputError(
            f"{path} is a combined bundle of {', '.join(held)}: it holds no target "
            f"{target!r} to be the base of its delta",
            hint="give that target's older bundle, or the site's have-list",
        )
    raw, doc = (TargetView(b, target) if held and target else b).descriptor()
    if doc.name != name:
        raise InputError(
            f"{path} is a bundle of {doc.name}, not {name}",
            hint="--base names an older bundle of the same name, or a site's have-list",
        )
    if doc.target.id is not None and target is not None and doc.target.id != target:
        raise InputError(
            f"{path} is the bundle of target {doc.target.id}: it cannot be the base of target "
            f"{target}'s delta (its content digest is another target's)",
            hint=f"build that target alone (--target {doc.target.id}), give a combined bundle "
            "or the site's have-list",
        )
    digest = "sha256:" + hashlib.sha256(content_bytes(raw)).hexdigest()
    return BaseContent(
        BaseRef(doc.name, doc.version, digest), held_blobs(doc), str(path), held_files(doc)
    )


class BundleBlobs:
    """Blobs read from a base bundle (``verify DELTA --base OLD``)."""

    def __init__(self, path: Path) -> None:
        if _looks_like_have_list(path):
            raise InputError(
                f"{path} is a have-list: it names blobs but holds none",
                hint="verify against the base bundle (--base OLD) or the site (--prefix DIR)",
            )
        self.where = str(path)
        self.unchanged_bytes = 0
        self.bundle: Bundle = open_bundle(path)
        self._kit: dict[tuple[str, int], str] | None = None

    def has(self, hexd: str, size: int) -> bool:
        m = self.bundle.members().get(layout.blob_path("sha256:" + hexd))
        return m is not None and m.kind == "file" and m.size == size

    def hash(self, hexd: str, progress: Callable[[int], None] | None) -> str:
        got, _ = self.bundle.hash_member(layout.blob_path("sha256:" + hexd), progress)
        return got

    def kit_file(self, sha256: str, size: int) -> tuple[bytes, str] | None:
        """The base bundle's site-kit wheel of that sha256 and size (found by its descriptor,
        whose files it reads where they are; the caller hashes what is returned)."""
        if self._kit is None:
            try:
                _, doc = self.bundle.descriptor()
            except InputError:
                doc = None
            self._kit = {
                (f.sha256, f.size): f.path
                for f in (doc.files if doc is not None else ())
                if layout.is_kit_wheel(f.path)
            }
        path = self._kit.get((sha256, size))
        m = self.bundle.members().get(path) if path is not None else None
        if path is None or m is None or m.kind != "file" or m.size != size:
            return None
        return self.bundle.read(path, size), f"{self.where}: {path}"

    def summary(self) -> str | None:
        return None

    def close(self) -> None:
        self.bundle.close()
