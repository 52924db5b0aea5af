"""Combined bundles: several targets of one manifest in one archive, shared blobs stored once.

A combined bundle is the union of the single-target bundles `airgap build` makes for each
target, with nothing re-signed and no new descriptor: each target's own signed ``airgap/``
files and its ``index.json`` move under ``airgap/targets/<id>/``, every blob is stored once in
the shared ``blobs/sha256/``, and the top ``index.json`` lists every target's manifests (for
OCI tools). :class:`TargetView` presents one target of it exactly as its single-target bundle
(the same members, names and bytes), so verify, install and audit read a target of a combined
bundle through the code that reads any bundle, against that target's own signatures; the
single-target format is unchanged. A combined bundle verifies when every target verifies and
every member belongs to at least one target (and the top ``index.json`` is the union).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from packager.bundle import layout
from packager.bundle.descriptor import parse_descriptor
from packager.bundle.errors import BundleFormatError, DescriptorError
from packager.bundle.reader import Bundle, Member, open_bundle

#: where each target's airgap/ files and index.json are in a combined bundle
TARGETS_DIR = f"{layout.AIRGAP_DIR}/targets"
_TARGET_ID = re.compile(r"[a-z0-9]([a-z0-9\-]{0,30}[a-z0-9])?")
_IN_TARGET = re.compile(re.escape(TARGETS_DIR) + r"/([^/]+)(?:/(.*))?")

E = TypeVar("E")


def target_member(target: str, name: str) -> str:
    """A member of the target's own bundle -> its name in the combined bundle (blobs and
    ``oci-layout`` are shared and keep theirs)."""
    if name == layout.INDEX_JSON:
        return f"{TARGETS_DIR}/{target}/{layout.INDEX_JSON}"
    if name == layout.AIRGAP_DIR or name.startswith(layout.AIRGAP_DIR + "/"):
        return f"{TARGETS_DIR}/{target}{name[len(layout.AIRGAP_DIR) :]}"
    return name


def view_name(target: str, name: str) -> str | None:
    """A member of the combined bundle -> its name in ``target``'s view; None when it belongs
    to another target, or is the top index.json or one of the folders that hold targets.
    Anything that is no part of the format keeps its name (verify names it as extra)."""
    m = _IN_TARGET.fullmatch(name)
    if m:
        if m.group(1) != target:
            return None if _TARGET_ID.fullmatch(m.group(1)) else name
        rest = m.group(2)
        if rest is None:
            return layout.AIRGAP_DIR
        return layout.INDEX_JSON if rest == layout.INDEX_JSON else f"{layout.AIRGAP_DIR}/{rest}"
    if name in (layout.INDEX_JSON, layout.AIRGAP_DIR, TARGETS_DIR):
        return None
    return name


def targets_of(members: Mapping[str, Member]) -> list[str]:
    """The targets a combined bundle holds (by their bundle.json); [] for any other bundle."""
    out = set()
    for name in members:
        m = _IN_TARGET.fullmatch(name)
        if m and m.group(2) == "bundle.json" and _TARGET_ID.fullmatch(m.group(1)):
            out.add(m.group(1))
    if layout.BUNDLE_JSON in members:
        return []
    return sorted(out)


def combine_entries(
    per_target: Mapping[str, Mapping[str, E]], index: bytes
) -> dict[str, E | bytes]:
    """The entries of a combined bundle from each target's entries (name -> content): blobs
    once (a digest names one content), each target's other files under its folder, and the top
    ``index`` (:func:`union_index`)."""
    out: dict[str, E | bytes] = {}
    for target, entries in sorted(per_target.items()):
        for name, content in entries.items():
            out.setdefault(target_member(target, name), content)
    out[layout.INDEX_JSON] = index
    return out


def union_index(indexes: list[bytes]) -> bytes:
    """The top index.json: every target's manifests, each once, in a stable order."""
    seen: dict[str, Any] = {}
    for raw in indexes:
        for m in json.loads(raw).get("manifests", []):
            seen.setdefault(json.dumps(m, sort_keys=True), m)
    doc = {
        "schemaVersion": 2,
        "mediaType": layout.OCI_INDEX,
        "manifests": [seen[k] for k in sorted(seen)],
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


class TargetView(Bundle):
    """One target of a combined bundle, read as its own bundle (see the module)."""

    def __init__(
        self, base: Bundle, target: str, hash_cache: dict[str, tuple[str, int]] | None = None
    ) -> None:
        self.base = base
        self.target = target
        #: sha256 and size by member of ``base``, shared by the views of one verification:
        #: a blob several targets share is read once
        self.hash_cache = hash_cache
        self.source = base.source
        self.parts = base.parts
        self._members: dict[str, Member] | None = None
        self.observed = []
        self.problems = []

    def _blobs(self) -> set[str] | None:
        """The blob members the target's descriptor lists (parsed, not trusted: it only decides
        what the view shows; verify checks the signatures over the same bytes). None: the
        descriptor cannot be read (then every blob is shown, and verify fails on the descriptor)."""
        name = target_member(self.target, layout.BUNDLE_JSON)
        m = self.base.members().get(name)
        if m is None or m.kind != "file" or m.size > layout.MAX_BUNDLE_JSON_BYTES:
            return None
        try:
            doc = parse_descriptor(self.base.read(name, layout.MAX_BUNDLE_JSON_BYTES))
        except (DescriptorError, BundleFormatError):
            return None
        return {b.member for b in doc.blobs}

    def members(self) -> dict[str, Member]:
        if self._members is None:
            base = self.base.members()
            blobs = self._blobs()
            out: dict[str, Member] = {}
            for name, m in base.items():
                mine = view_name(self.target, name)
                if mine is None or (
                    blobs is not None and layout.digest_of_blob_path(mine) and mine not in blobs
                ):
                    continue
                out[mine] = Member(mine, m.size, m.offset, m.kind)
            self.observed = []
            for raw, kind, size in self.base.observed:
                mine = view_name(self.target, raw.removeprefix("./").rstrip("/"))
                if mine is None or (
                    blobs is not None and layout.digest_of_blob_path(mine) and mine not in blobs
                ):
                    continue
                self.observed.append((mine, kind, size))
            self.problems = list(self.base.problems)
            self._members = out
        return self._members

    def _base_name(self, name: str) -> str:
        if name not in self.members():
            raise BundleFormatError(f"{self.source}: target {self.target} has no {name}")
        return target_member(self.target, name)

    def open_member(self, name: str) -> BinaryIO:
        return self.base.open_member(self._base_name(name))

    def open_fresh(self, name: str) -> BinaryIO:
        return self.base.open_fresh(self._base_name(name))

    def read_small(self, name: str) -> bytes | None:
        return self.base.read_small(self._base_name(name))

    def hash_member(self, name: str, progress: Any = None) -> tuple[str, int]:
        key = self._base_name(name)
        if self.hash_cache is not None and key in self.hash_cache:
            got = self.hash_cache[key]
            if progress is not None:
                progress(got[1])
            return got
        got = super().hash_member(name, progress)
        if self.hash_cache is not None:
            self.hash_cache[key] = got
        return got

    def close(self) -> None:
        self.base.close()


def unclaimed(base: Bundle, targets: list[str]) -> list[str]:
    """Members of a combined bundle no target's view holds (an extra blob or file)."""
    claimed: set[str] = set()
    for t in targets:
        view = TargetView(base, t)
        claimed.update(target_member(t, n) for n in view.members())
    structural = {layout.INDEX_JSON, layout.AIRGAP_DIR, TARGETS_DIR}
    structural.update(f"{TARGETS_DIR}/{t}" for t in targets)
    return sorted(
        n
        for n, m in base.members().items()
        if n not in claimed and n not in structural and m.kind == "file"
    )


def select(
    base: Bundle,
    target: str | None,
    where: Path,
    hash_cache: dict[str, tuple[str, int]] | None = None,
) -> Bundle:
    """``base`` itself for a single-target bundle; the view of ``target`` of a combined one
    (a BundleFormatError listing the targets when it names none, or one it does not hold)."""
    targets = targets_of(base.members())
    if not targets:
        return base
    if target is None or target not in targets:
        raise BundleFormatError(
            f"{where} is a combined bundle of {len(targets)} targets ({', '.join(targets)}): "
            + ("say which one" if target is None else f"it has no target {target!r}"),
            hint=f"--target {targets[0]}",
        )
    return TargetView(base, target, hash_cache)


def match_host(
    targets: Mapping[str, tuple[str, str]], vendors: set[str], platform: str | None
) -> str | None:
    """The one target (id -> (accelerator vendor, platform)) this host can run: its vendor's
    accelerators are present (``vendors``: "nvidia", "huawei") and its platform is the host's
    (when known). None when no target or several fit: then the operator says which."""
    fit = [
        t
        for t, (vendor, plat) in sorted(targets.items())
        if vendor in vendors and (platform is None or plat == platform)
    ]
    return fit[0] if len(fit) == 1 else None


def open_target(path: Path, target: str | None = None, *, strict: bool = True) -> Bundle:
    """:func:`packager.bundle.reader.open_bundle`, then :func:`select` (``target`` of a
    combined bundle; a single-target bundle as it is). ``strict``: a single-target bundle named
    with a ``target`` that is not its own is refused (BundleFormatError), never shown in its
    place; without it (diff, whose other side may be the combined one) it is read as it is."""
    base = open_bundle(path)
    try:
        chosen = select(base, target, path)
        if strict and chosen is base and target is not None:
            _, doc = base.descriptor()
            if doc.bundle.target != target:
                raise BundleFormatError(
                    f"{path} is not a combined bundle, and it is "
                    + (
                        f"for target {doc.bundle.target!r}"
                        if doc.bundle.target
                        else "the bundle of a single-target manifest"
                    )
                    + f": it has no target {target!r}",
                    hint="leave out --target for a single-target bundle",
                )
        return chosen
    except BaseException:
        base.close()
        raise
