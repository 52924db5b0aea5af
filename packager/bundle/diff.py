"""What changed from one bundle version to another: pure logic over two typed descriptors.

:func:`diff_descriptors` compares two :class:`~packager.bundle.descriptor.Descriptor` (and, for
images, the layer digests each side's image manifests list, which the caller read) and says:

* the manifest fields that changed, by JSON path (``metadata.version``, ``runtime.files[1].dest``);
* blobs added, removed and unchanged by role, counted and sized (a blob is its digest: content
  that moved to another install path is unchanged content);
* images whose manifest digest changed (and the layers that came and went), added or removed;
* kernels added, removed, or whose coverage changed (targets, archs, per-chip coverage);
* wheels added or removed (by file name and digest);
* what ``airgap build NEW --base OLD`` would carry, by the build's own rule
  (:func:`packager.bundle.delta.plan_delta`): NEW's blobs except those with install paths that OLD
  holds at the same size (image layers, OCI manifests and the probe are always carried), and
  NEW's bundle files (``airgap/``: descriptor, probe, site kit) except the site-kit wheels OLD
  has.

No I/O here: packager.commands.diff reads the two sides (bundles or an installed version).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packager.bundle.delta import BaseContent, held_blobs, held_files, plan_delta
from packager.bundle.descriptor import BaseRef, BlobRecord, Descriptor, KernelRecord

#: a manifest list is shown item by item up to this many items; longer lists as one value
MAX_LIST_ITEMS = 64


@dataclass(frozen=True)
class FieldChange:
    """One manifest value: ``old``/``new`` are JSON values; ``None`` with ``in_old``/``in_new``
    False means absent on that side."""

    path: str
    old: Any
    new: Any
    in_old: bool = True
    in_new: bool = True

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.in_old:
            out["old"] = self.old
        if self.in_new:
            out["new"] = self.new
        return out


@dataclass(frozen=True)
class RoleCount:
    role: str
    added: int = 0
    added_bytes: int = 0
    removed: int = 0
    removed_bytes: int = 0
    unchanged: int = 0
    unchanged_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "added": {"blobs": self.added, "bytes": self.added_bytes},
            "removed": {"blobs": self.removed, "bytes": self.removed_bytes},
            "unchanged": {"blobs": self.unchanged, "bytes": self.unchanged_bytes},
        }


@dataclass(frozen=True)
class BlobRef:
    digest: str
    size: int
    role: str
    paths: tuple[str, ...] = ()

    @classmethod
    def of(cls, b: BlobRecord) -> BlobRef:
        return cls(b.digest, b.size, b.role, b.paths)

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "size": self.size,
            "role": self.role,
            "paths": list(self.paths),
        }


@dataclass(frozen=True)
class ImageChange:
    """An image by reference: ``added``, ``removed`` or ``changed`` (another manifest digest).
    ``layers_known`` is False when a side's image manifest could not be read."""

    ref: str
    status: str
    old_digest: str | None
    new_digest: str | None
    layers_added: tuple[BlobRef, ...] = ()
    layers_removed: tuple[BlobRef, ...] = ()
    layers_unchanged: int = 0
    layers_unchanged_bytes: int = 0
    layers_known: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "status": self.status,
            "old_digest": self.old_digest,
            "new_digest": self.new_digest,
            "layers": {
                "known": self.layers_known,
                "added": [x.to_json() for x in self.layers_added],
                "removed": [x.to_json() for x in self.layers_removed],
                "unchanged": {"count": self.layers_unchanged, "bytes": self.layers_unchanged_bytes},
            },
        }


@dataclass(frozen=True)
class KernelCoverage:
    """What a kernel runs on: its declared targets, the archs in its binary, each chip's verdict."""

    targets: tuple[str, ...]
    archs: tuple[str, ...]
    chips: tuple[tuple[str, str], ...]  # (chip, coverage), sorted

    def to_json(self) -> dict[str, Any]:
        return {
            "targets": list(self.targets),
            "archs": list(self.archs),
            "chips": {c: v for c, v in self.chips},
        }


@dataclass(frozen=True)
class KernelChange:
    name: str
    status: str  # added | removed | changed
    old: KernelCoverage | None
    new: KernelCoverage | None
    binary_changed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "old": self.old.to_json() if self.old else None,
            "new": self.new.to_json() if self.new else None,
            "binary_changed": self.binary_changed,
        }


@dataclass(frozen=True)
class WheelChange:
    filename: str
    status: str  # added | removed
    digest: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Delta:
    """What a delta bundle from OLD would carry (:func:`delta_from`): ``blobs``/``bytes`` of
    NEW's ``full_blobs``/``full_bytes``, and ``files``/``files_bytes`` of NEW's ``full_files``
    bundle files (all but the site-kit wheels OLD has)."""

    blobs: int
    bytes: int
    full_blobs: int
    full_bytes: int
    files: int = 0  # the bundle files it carries (all but the site-kit wheels OLD has)
    files_bytes: int = 0
    full_files: int = 0  # NEW's bundle files
    full_files_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DescriptorDiff:
    same_content: bool
    manifest: tuple[FieldChange, ...]
    roles: tuple[RoleCount, ...]
    added: tuple[BlobRef, ...]
    removed: tuple[BlobRef, ...]
    images: tuple[ImageChange, ...]
    kernels: tuple[KernelChange, ...]
    wheels: tuple[WheelChange, ...]
    delta: Delta
    target_changed: tuple[FieldChange, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "same_content": self.same_content,
            "manifest": [c.to_json() for c in self.manifest],
            "target": [c.to_json() for c in self.target_changed],
            "roles": [r.to_json() for r in self.roles],
            "blobs": {
                "added": [b.to_json() for b in self.added],
                "removed": [b.to_json() for b in self.removed],
            },
            "images": [i.to_json() for i in self.images],
            "kernels": [k.to_json() for k in self.kernels],
            "wheels": [w.to_json() for w in self.wheels],
            "delta": self.delta.to_json(),
        }


# ----------------------------------------------------------------------------- manifest fields


def _key_path(prefix: str, key: str) -> str:
    simple = key.replace("_", "").replace("-", "").isalnum()
    part = key if simple else '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{prefix}.{part}" if prefix else part


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for k in value:
            _flatten(value[k], _key_path(prefix, str(k)), out)
    elif isinstance(value, list) and value and len(value) <= MAX_LIST_ITEMS:
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}[{i}]", out)
    else:
        out[prefix or "$"] = value


def field_changes(
    old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = ""
) -> tuple[FieldChange, ...]:
    """Every leaf value that differs, by path, in the order of the old document then the new."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    _flatten(old, prefix, a)
    _flatten(new, prefix, b)
    out = []
    for path in list(a) + [p for p in b if p not in a]:
        if path not in b:
            out.append(FieldChange(path, a[path], None, in_new=False))
        elif path not in a:
            out.append(FieldChange(path, None, b[path], in_old=False))
        elif a[path] != b[path] or type(a[path]) is not type(b[path]):
            out.append(FieldChange(path, a[path], b[path]))
    return tuple(out)


# ----------------------------------------------------------------------------- blobs and roles


def _role_counts(old: Descriptor, new: Descriptor) -> tuple[RoleCount, ...]:
    before = {b.digest: b for b in old.blobs}
    after = {b.digest: b for b in new.blobs}
    counts: dict[str, dict[str, int]] = {}

    def add(role: str, what: str, size: int) -> None:
        c = counts.setdefault(role, {})
        c[what] = c.get(what, 0) + 1
        c[what + "_bytes"] = c.get(what + "_bytes", 0) + size

    for d, b in after.items():
        add(b.role, "unchanged" if d in before else "added", b.size)
    for d, b in before.items():
        if d not in after:
            add(b.role, "removed", b.size)
    return tuple(RoleCount(role, **counts[role]) for role in sorted(counts))


# ----------------------------------------------------------------------------- images


def _image_changes(
    old: Descriptor,
    new: Descriptor,
    old_layers: Mapping[str, Sequence[str]],
    new_layers: Mapping[str, Sequence[str]],
) -> tuple[ImageChange, ...]:
    def digest(i: Any) -> str:
        return str(i.manifest_digest or i.index_digest or i.config_digest)

    before = {i.ref: i for i in old.images}
    after = {i.ref: i for i in new.images}
    sizes = {b.digest: b for b in old.blobs} | {b.digest: b for b in new.blobs}

    def ref(d: str) -> BlobRef:
        b = sizes.get(d)
        return BlobRef(d, b.size if b else 0, "image")

    out = []
    for r in list(before) + [r for r in after if r not in before]:
        b, a = before.get(r), after.get(r)
        if a is None:
            assert b is not None
            out.append(ImageChange(r, "removed", digest(b), None))
        elif b is None:
            out.append(ImageChange(r, "added", None, digest(a)))
        elif digest(a) != digest(b):
            lb = old_layers.get(digest(b))
            la = new_layers.get(digest(a))
            if lb is None or la is None:
                out.append(ImageChange(r, "changed", digest(b), digest(a), layers_known=False))
                continue
            same = [d for d in la if d in set(lb)]
            out.append(
                ImageChange(
                    r,
                    "changed",
                    digest(b),
                    digest(a),
                    tuple(ref(d) for d in la if d not in set(lb)),
                    tuple(ref(d) for d in lb if d not in set(la)),
                    len(same),
                    sum(ref(d).size for d in same),
                )
            )
    return tuple(out)


# ----------------------------------------------------------------------------- kernels


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def kernel_coverage(k: KernelRecord) -> KernelCoverage:
    """A kernel's coverage from its record (``check`` is a build record: read defensively)."""
    chips = k.check.get("coverage")
    pairs = sorted(
        (str(c.get("chip")), str(c.get("coverage")))
        for c in (chips if isinstance(chips, list) else [])
        if isinstance(c, Mapping)
    )
    return KernelCoverage(
        tuple(sorted(k.targets)), tuple(sorted(_strings(k.check.get("archs")))), tuple(pairs)
    )


def _kernel_changes(old: Descriptor, new: Descriptor) -> tuple[KernelChange, ...]:
    before = {k.name: k for k in old.kernels}
    after = {k.name: k for k in new.kernels}

    def binary(d: Descriptor, k: KernelRecord) -> str | None:
        return next((b.digest for b in d.blobs if k.path in b.paths), None)

    out = []
    for name in list(before) + [n for n in after if n not in before]:
        b, a = before.get(name), after.get(name)
        if a is None:
            assert b is not None
            out.append(KernelChange(name, "removed", kernel_coverage(b), None))
        elif b is None:
            out.append(KernelChange(name, "added", None, kernel_coverage(a)))
        else:
            cb, ca = kernel_coverage(b), kernel_coverage(a)
            changed_binary = binary(old, b) != binary(new, a)
            if cb != ca or changed_binary:
                out.append(KernelChange(name, "changed", cb, ca, changed_binary))
    return tuple(out)


# ----------------------------------------------------------------------------- wheels


def _wheels(d: Descriptor) -> dict[tuple[str, str], BlobRecord]:
    return {
        (p.rsplit("/", 1)[-1], b.digest): b for b in d.blobs_with_role("wheel") for p in b.paths
    }


def _wheel_changes(old: Descriptor, new: Descriptor) -> tuple[WheelChange, ...]:
    before, after = _wheels(old), _wheels(new)
    out = [
        WheelChange(name, "removed", dg, before[(name, dg)].size)
        for name, dg in sorted(before.keys() - after.keys())
    ]
    out += [
        WheelChange(name, "added", dg, after[(name, dg)].size)
        for name, dg in sorted(after.keys() - before.keys())
    ]
    return tuple(out)


# ----------------------------------------------------------------------------- the whole


def delta_from(old: Descriptor, new: Descriptor) -> Delta:
    """What ``airgap build NEW --base OLD`` would carry: OLD stands for a site that installed it
    (:func:`held_blobs`, as packager.bundle.base reads a bundle given as --base), and
    the blobs and site-kit wheels left out are the ones :func:`plan_delta` leaves out; every
    other blob and bundle file is carried."""
    base = BaseContent(BaseRef(old.name, old.version, ""), held_blobs(old), "OLD", held_files(old))
    plan = plan_delta(new.blobs, base, new.files)
    left_out, kit = set(plan.not_carried), set(plan.not_carried_files)
    carried = [b for b in new.blobs if b.digest not in left_out]
    files = [f for f in new.files if f.path not in kit]
    return Delta(
        blobs=len(carried),
        bytes=sum(b.size for b in carried),
        full_blobs=len(new.blobs),
        full_bytes=sum(b.size for b in new.blobs),
        files=len(files),
        files_bytes=sum(f.size for f in files),
        full_files=len(new.files),
        full_files_bytes=sum(f.size for f in new.files),
    )


def diff_descriptors(
    old: Descriptor,
    new: Descriptor,
    *,
    old_layers: Mapping[str, Sequence[str]] | None = None,
    new_layers: Mapping[str, Sequence[str]] | None = None,
    same_content: bool = False,
) -> DescriptorDiff:
    """OLD -> NEW. ``*_layers``: image manifest digest -> its layer digests, for the images whose
    manifest each side could read (the others are reported with ``layers_known`` False).
    ``same_content``: the two descriptors are byte-identical (the caller compared digests)."""
    before = {b.digest for b in old.blobs}
    after = {b.digest for b in new.blobs}
    added = tuple(BlobRef.of(b) for b in new.blobs if b.digest not in before)
    removed = tuple(BlobRef.of(b) for b in old.blobs if b.digest not in after)
    return DescriptorDiff(
        same_content=same_content,
        manifest=field_changes(old.manifest, new.manifest),
        target_changed=field_changes(old.target.to_json(), new.target.to_json(), "target"),
        roles=_role_counts(old, new),
        added=added,
        removed=removed,
        images=_image_changes(old, new, old_layers or {}, new_layers or {}),
        kernels=_kernel_changes(old, new),
        wheels=_wheel_changes(old, new),
        delta=delta_from(old, new),
    )
