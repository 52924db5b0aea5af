"""A bundle as one OCI index in a registry: the mapping both ways, pure (no I/O).

``airgap publish`` pushes (see :mod:`packager.bundle.layout`, "in a registry"):

* every blob bundle.json lists, as a blob of the repository (images keep their digests);
* every manifest-typed blob, also as a manifest by its digest (children first), so the
  registry serves each image, the ModelPack model artifact and the airgap artifacts by digest;
* the **files manifest**: an OCI manifest (artifactType :data:`layout.PUBLISHED_FILES_ARTIFACT`,
  the empty config) whose layers are the layout's own files (``oci-layout``, ``index.json``,
  ``airgap/bundle.json``, its signatures, attestation, SBOM, probe...), each titled with its path;
* the **bundle index**, tagged: an OCI index (artifactType
  :data:`layout.PUBLISHED_INDEX_ARTIFACT`) listing index.json's entries as they are and then the
  files manifest, annotated with the bundle's content digest, name and version.

A puller reads the index and the files manifest (both unverified: parsed strictly and bounded),
fetches bundle.json and its signatures, verifies them, and only then anything else: the layout
files by their layers, the blobs by the verified bundle.json.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from packager.bundle import layout
from packager.errors import CheckFailed
from packager.oci.reference import SHA256_DIGEST
from packager.util.jsonio import DocumentError, canonical_json, parse_document

#: the most layout files a files manifest may list (a bundle's airgap/ holds tens)
MAX_FILES = 10_000
#: the largest layout file taken from a registry (bundle.json has its own, smaller bound)
MAX_FILE_BYTES = 64 * 1024 * 1024


class PublishedFormatError(CheckFailed):
    """A published index or files manifest that is not what airgap publish writes."""


@dataclass(frozen=True)
class LayoutFile:
    """One of the layout's own files: its path in the bundle and its layer descriptor."""

    path: str
    digest: str
    size: int

    @property
    def media_type(self) -> str:
        return layout.published_media_type(self.path)

    def to_descriptor(self) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
            "annotations": {layout.TITLE: self.path},
        }


def layout_file(path: str, data: bytes) -> LayoutFile:
    return LayoutFile(path, "sha256:" + hashlib.sha256(data).hexdigest(), len(data))


def files_manifest(files: list[LayoutFile]) -> bytes:
    """The files manifest's bytes (canonical JSON: one publish of one bundle, one digest)."""
    empty = layout.OCI_EMPTY_CONTENT
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": layout.OCI_MANIFEST,
            "artifactType": layout.PUBLISHED_FILES_ARTIFACT,
            "config": {
                "mediaType": layout.OCI_EMPTY,
                "digest": "sha256:" + hashlib.sha256(empty).hexdigest(),
                "size": len(empty),
            },
            "layers": [f.to_descriptor() for f in sorted(files, key=lambda f: f.path)],
        }
    )


def bundle_index(
    index_json: bytes, files_raw: bytes, digest: str, name: str, version: str, target: str | None
) -> bytes:
    """The tagged index: index.json's entries (as they are) and the files manifest."""
    try:
        entries = parse_document(index_json).get("manifests", [])
    except (DocumentError, AttributeError):
        raise PublishedFormatError("index.json is not an OCI index") from None
    annotations = {
        layout.PUBLISHED_DIGEST: digest,
        layout.PUBLISHED_NAME: name,
        layout.PUBLISHED_VERSION: version,
    }
    if target:
        annotations[layout.PUBLISHED_TARGET] = target
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": layout.OCI_INDEX,
            "artifactType": layout.PUBLISHED_INDEX_ARTIFACT,
            "manifests": [
                *entries,
                {
                    "mediaType": layout.OCI_MANIFEST,
                    "artifactType": layout.PUBLISHED_FILES_ARTIFACT,
                    "digest": "sha256:" + hashlib.sha256(files_raw).hexdigest(),
                    "size": len(files_raw),
                    "annotations": {layout.REF_NAME: layout.PUBLISHED_FILES_REF},
                },
            ],
            "annotations": annotations,
        }
    )


def manifest_children(raw: bytes) -> list[str]:
    """The digests of the manifests an index lists (none for a manifest): children go first."""
    try:
        doc = parse_document(raw)
    except DocumentError:
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("manifests"), list):
        return []
    return [
        d["digest"]
        for d in doc["manifests"]
        if isinstance(d, dict) and isinstance(d.get("digest"), str)
    ]


def push_order(manifests: dict[str, bytes]) -> list[str]:
    """Manifest digests with every index after the manifests it lists (those pushed here)."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(d: str, depth: int) -> None:
        if d in seen or depth > 8:
            return
        seen.add(d)
        for child in manifest_children(manifests[d]):
            if child in manifests:
                visit(child, depth + 1)
        done.append(d)

    for d in sorted(manifests):
        visit(d, 0)
    return done


# ----------------------------------------------------------------------------- reading back


@dataclass(frozen=True)
class PublishedIndex:
    """What the tagged index says (unverified until bundle.json's signatures hold)."""

    files_digest: str
    files_size: int
    bundle_digest: str | None
    name: str | None
    version: str | None


def _object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        doc = parse_document(raw)
    except DocumentError as exc:
        raise PublishedFormatError(f"the {what} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PublishedFormatError(f"the {what} is not a JSON object")
    return doc


def _descriptor(d: object, what: str) -> tuple[str, int]:
    if not isinstance(d, dict):
        raise PublishedFormatError(f"{what} is not an object")
    digest, size = d.get("digest"), d.get("size")
    if not isinstance(digest, str) or not SHA256_DIGEST.fullmatch(digest):
        raise PublishedFormatError(f"{what} has no sha256 digest")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= 2**53:
        raise PublishedFormatError(f"{what} has no valid size")
    return digest, size


def parse_bundle_index(raw: bytes, where: str) -> PublishedIndex:
    """The tagged index -> where its files manifest is; :class:`PublishedFormatError` when it
    is not a bundle published by airgap."""
    doc = _object(raw, f"index at {where}")
    if doc.get("artifactType") != layout.PUBLISHED_INDEX_ARTIFACT:
        raise PublishedFormatError(
            f"{where} is not a bundle published by airgap (artifactType "
            f"{str(doc.get('artifactType'))[:80]!r})",
            hint="publish it with `airgap publish BUNDLE oci://...`; plain images are pulled "
            "with docker, skopeo or ctr",
        )
    entries = doc.get("manifests")
    if not isinstance(entries, list):
        raise PublishedFormatError(f"the index at {where} lists no manifests")
    found = [
        e
        for e in entries
        if isinstance(e, dict) and e.get("artifactType") == layout.PUBLISHED_FILES_ARTIFACT
    ]
    if len(found) != 1:
        raise PublishedFormatError(
            f"the index at {where} lists {len(found)} files manifests (one expected)"
        )
    digest, size = _descriptor(found[0], "the files manifest's descriptor")
    ann = doc.get("annotations")
    ann = ann if isinstance(ann, dict) else {}

    def text(key: str) -> str | None:
        v = ann.get(key)
        return v if isinstance(v, str) else None

    return PublishedIndex(
        digest, size, text(layout.PUBLISHED_DIGEST), text(layout.PUBLISHED_NAME),
        text(layout.PUBLISHED_VERSION),
    )  # fmt: skip


def parse_files_manifest(raw: bytes, where: str) -> list[LayoutFile]:
    """The files manifest -> its layout files: paths checked (``oci-layout``, ``index.json``
    or under ``airgap/``, no ``..``), each named once, sizes bounded."""
    doc = _object(raw, f"files manifest at {where}")
    if doc.get("artifactType") != layout.PUBLISHED_FILES_ARTIFACT:
        raise PublishedFormatError(f"the files manifest at {where} has another artifactType")
    layers = doc.get("layers")
    if not isinstance(layers, list) or not 0 < len(layers) <= MAX_FILES:
        raise PublishedFormatError(f"the files manifest at {where} lists no (or too many) files")
    out: dict[str, LayoutFile] = {}
    for i, layer in enumerate(layers):
        digest, size = _descriptor(layer, f"layer {i} of the files manifest")
        ann = layer.get("annotations") if isinstance(layer, dict) else None
        path = ann.get(layout.TITLE) if isinstance(ann, dict) else None
        if not isinstance(path, str) or not layout.LAYOUT_FILE.fullmatch(path):
            raise PublishedFormatError(
                f"layer {i} of the files manifest at {where} names no layout file "
                f"({str(path)[:80]!r})"
            )
        if path in out:
            raise PublishedFormatError(f"the files manifest at {where} names {path} twice")
        limit = layout.MAX_BUNDLE_JSON_BYTES if path == layout.BUNDLE_JSON else MAX_FILE_BYTES
        if size > limit:
            raise PublishedFormatError(f"{path} in the files manifest is larger than {limit} bytes")
        out[path] = LayoutFile(path, digest, size)
    if layout.BUNDLE_JSON not in out:
        raise PublishedFormatError(f"the files manifest at {where} has no {layout.BUNDLE_JSON}")
    return [out[p] for p in sorted(out)]
