"""``from: oci-layout``: an OCI image layout folder.

``index.json`` entries are chosen by their ``org.opencontainers.image.ref.name`` annotation (the
reference itself, its tag, or the same repository and tag written another way); several entries of
one name are chosen from by platform, as from an index. Nested indexes are descended, every
manifest and config read is checked against its digest, and blob paths are kept inside the layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from packager.manifest.model import Image
from packager.oci.mediatypes import REF_NAME
from packager.oci.reference import SHA256_DIGEST, Platform, has_explicit_tag
from packager.resolve.images.common import (
    MAX_DOCUMENT_BYTES,
    ImageDocument,
    ResolveContext,
    choose_platform,
    image_manifest_parts,
    locked_from_manifest,
    name_matches,
    parse_json_object,
    read_bounded_file,
    read_descriptor,
    ref_names,
    resolve_tree,
    verify_bytes,
)
from packager.resolve.lockfile import LockedImage


class LayoutReader:
    """Reads blobs of an OCI image layout, bounded, verified, never outside its folder."""

    def __init__(self, ctx: ResolveContext, root: Path) -> None:
        self.ctx = ctx
        self.root = root.resolve()

    def _path(self, digest: str) -> Path:
        if not SHA256_DIGEST.match(
            digest
        ):  # checked by read_descriptor already; the path depends on it
            raise self.ctx.error(f"digest {digest!r} is not sha256:<64 hex>")
        path = self.root / "blobs" / "sha256" / digest.split(":", 1)[1]
        try:
            real = path.resolve(strict=True)
        except FileNotFoundError:
            raise self.ctx.error(
                f"blob {digest} is missing from {self.ctx.where}",
                hint="the layout is incomplete; write it again (e.g. `skopeo copy ... oci:DIR:TAG`)",
            ) from None
        except (OSError, RuntimeError) as exc:
            raise self.ctx.error(
                f"blob {digest} in {self.ctx.where} cannot be read: {exc}"
            ) from None
        if not real.is_relative_to(self.root):
            raise self.ctx.error(
                f"blob {digest} in {self.ctx.where} is a link to {real}, outside the layout",
                hint="an OCI layout must hold its blobs itself; copy them in",
            )
        return real

    def read(self, digest: str, size: int | None, what: str) -> bytes:
        path = self._path(digest)
        if size is not None and size > MAX_DOCUMENT_BYTES:
            raise self.ctx.error(f"{what} {digest} is {size} bytes, more than {MAX_DOCUMENT_BYTES}")
        data = read_bounded_file(self.ctx, path, f"{what} {digest}")
        if size is not None and len(data) != size:
            raise self.ctx.mismatched(
                f"{what} {digest} in {self.ctx.where} is {len(data)} bytes, its descriptor says {size}",
                hint="the layout is corrupt; write it again",
            )
        verify_bytes(self.ctx, f"{what} {digest}", data, digest)
        return data

    def manifest(self, digest: str, size: int | None, media_type: str | None) -> ImageDocument:
        data = self.read(digest, size, "manifest")
        return ImageDocument(
            digest,
            media_type,
            parse_json_object(self.ctx, f"manifest {digest}", data),
            len(data),
            data,
        )

    def check_blob(self, digest: str, size: int, what: str) -> None:
        """A layer is present, inside the layout, with its size (it is hashed when collected)."""
        path = self._path(digest)
        actual = path.stat().st_size
        if actual != size:
            raise self.ctx.mismatched(
                f"{what} {digest} in {self.ctx.where} is {actual} bytes, the manifest says {size}",
                hint="the layout is corrupt; write it again",
            )


def resolve_oci_layout(image: Image, target: Platform) -> LockedImage:
    root = image.path
    ctx = ResolveContext(image.ref, image.source, target, f"OCI layout {root}")
    hint = "write one with `skopeo copy docker://REF oci:DIR:TAG` and set path: to DIR"
    if root is None:
        raise ctx.error("from: oci-layout needs a path: to the layout folder", hint=hint)
    if not root.exists():
        raise ctx.error(f"OCI layout folder {root} does not exist", hint=hint)
    if not root.is_dir():
        raise ctx.error(f"{root} is not a folder (an OCI layout is a folder)", hint=hint)
    layout_file, index_file = root / "oci-layout", root / "index.json"
    for f in (layout_file, index_file):
        if not f.is_file():
            raise ctx.error(f"{root} is not an OCI image layout: {f.name} is missing", hint=hint)
    marker = parse_json_object(ctx, "oci-layout", read_bounded_file(ctx, layout_file, "oci-layout"))
    if not isinstance(marker.get("imageLayoutVersion"), str):
        raise ctx.error(f"{layout_file} has no imageLayoutVersion", hint=hint)
    top_index = parse_json_object(
        ctx, "index.json", read_bounded_file(ctx, index_file, "index.json")
    )
    entries_raw = top_index.get("manifests")
    if not isinstance(entries_raw, list):
        raise ctx.error(f"{index_file} has no 'manifests' list", hint=hint)
    entries: list[tuple[str | None, dict[str, Any]]] = []
    for n, e in enumerate(entries_raw):
        read_descriptor(ctx, f"entry {n} of index.json", e)
        ann = e.get("annotations")
        name = ann.get(REF_NAME) if isinstance(ann, dict) else None
        entries.append((name if isinstance(name, str) else None, e))

    names, parsed = ref_names(image.ref)
    chosen = [e for name, e in entries if name is not None and name_matches(name, names, parsed)]
    if (
        not chosen
        and len(entries) == 1
        and (entries[0][0] is None or not has_explicit_tag(image.ref))
    ):
        chosen = [entries[0][1]]
    if not chosen:
        listed = sorted({name for name, _ in entries if name is not None})
        has = ", ".join(listed) if listed else "no named images"
        raise ctx.error(
            f"no image named {sorted(names)} ({REF_NAME}) in {ctx.where}; "
            f"it has {has} ({len(entries)} entries)",
            hint="set ref: to one of the names in the layout (its tag), or write the image into "
            "the layout under that name",
        )
    layout = LayoutReader(ctx, root)
    if len(chosen) > 1:  # one name, several platform entries: choose as from an index
        platforms: list[tuple[Platform | None, dict[str, Any]]] = [
            (Platform.from_json(e.get("platform")), e) for e in chosen
        ]
        _, entry = choose_platform(ctx, platforms, f"the {len(chosen)} entries named {image.ref}")
    else:
        entry = chosen[0]
    digest, size, mt = read_descriptor(ctx, "index.json entry", entry)
    top = layout.manifest(digest, size, mt)
    manifest, index, platform = resolve_tree(
        ctx,
        top,
        layout.manifest,
        lambda d, s: layout.read(d, s, "image config"),
    )
    (cdigest, csize, _), layers = image_manifest_parts(ctx, manifest)
    layout.check_blob(cdigest, csize, "config")
    for ldigest, lsize, _ in layers:
        layout.check_blob(ldigest, lsize, "layer")
    return locked_from_manifest(image, ctx, manifest, index, platform)
