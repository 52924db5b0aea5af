"""packager.bundle.published: a bundle as one OCI index, and the strict reading back of what a
registry serves before any signature has been checked."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from packager.bundle import layout
from packager.bundle.published import (
    PublishedFormatError,
    bundle_index,
    files_manifest,
    layout_file,
    manifest_children,
    parse_bundle_index,
    parse_files_manifest,
    push_order,
)

INDEX_JSON = json.dumps(
    {
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": layout.OCI_MANIFEST, "digest": "sha256:" + "a" * 64, "size": 10,
             "annotations": {layout.REF_NAME: layout.MODEL_REF}},
        ],
    }
).encode()  # fmt: skip
FILES = {
    layout.OCI_LAYOUT: layout.OCI_LAYOUT_CONTENT,
    layout.INDEX_JSON: INDEX_JSON,
    layout.BUNDLE_JSON: b'{"bundle": {}}',
    layout.signature_path("b" * 64): b"c2lnbmF0dXJl",
    "airgap/probe/cli.py": b"print()",
}


def _digest(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def test_publish_then_read_back_gives_every_file_with_its_bytes() -> None:
    entries = [layout_file(p, d) for p, d in FILES.items()]
    raw_files = files_manifest(entries)
    raw_index = bundle_index(INDEX_JSON, raw_files, _digest(b"x"), "n", "1.0", None)
    index = parse_bundle_index(raw_index, "test")
    assert (index.files_digest, index.files_size) == (_digest(raw_files), len(raw_files))
    assert (index.bundle_digest, index.name, index.version) == (_digest(b"x"), "n", "1.0")
    back = parse_files_manifest(raw_files, "test")
    assert {f.path: (f.digest, f.size) for f in back} == {
        p: (_digest(d), len(d)) for p, d in FILES.items()
    }
    media = {f.path: f.media_type for f in back}
    assert media[layout.BUNDLE_JSON] == layout.PUBLISHED_DESCRIPTOR
    assert media[layout.signature_path("b" * 64)] == layout.PUBLISHED_SIGNATURE
    # index.json's own entries come first, as they are; then the files manifest
    doc = json.loads(raw_index)
    assert doc["manifests"][0] == json.loads(INDEX_JSON)["manifests"][0]
    assert doc["manifests"][1]["artifactType"] == layout.PUBLISHED_FILES_ARTIFACT
    # one bundle, one publish: the same bytes every time
    assert files_manifest(list(reversed(entries))) == raw_files


def _files(*layers: Any, artifact: str = layout.PUBLISHED_FILES_ARTIFACT) -> bytes:
    return json.dumps({"artifactType": artifact, "layers": list(layers)}).encode()


def _layer(path: object, size: int = 3, digest: str = "sha256:" + "d" * 64) -> dict[str, Any]:
    return {"digest": digest, "size": size, "annotations": {layout.TITLE: path}}


GOOD = _layer(layout.BUNDLE_JSON)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"[]", "not a JSON object"),
        (b"{bad", "not JSON"),
        (_files(GOOD, artifact="other"), "another artifactType"),
        (_files(), "no (or too many) files"),
        (_files(_layer("index.json")), "has no airgap/bundle.json"),
        (_files(GOOD, _layer("../etc/passwd")), "names no layout file"),
        (_files(GOOD, _layer("airgap/../x")), "names no layout file"),
        (_files(GOOD, _layer("/abs")), "names no layout file"),
        (_files(GOOD, _layer("blobs/sha256/" + "e" * 64)), "names no layout file"),
        (_files(GOOD, _layer(7)), "names no layout file"),
        (_files(GOOD, GOOD), "twice"),
        (_files(_layer(layout.BUNDLE_JSON, size=2**40)), "larger than"),
        (_files(_layer(layout.BUNDLE_JSON, size=-1)), "no valid size"),
        (_files(_layer(layout.BUNDLE_JSON, digest="sha256:../x")), "no sha256 digest"),
        (_files(_layer(layout.BUNDLE_JSON), "not an object"), "not an object"),
    ],
)
def test_a_files_manifest_that_airgap_did_not_write_is_refused(raw: bytes, says: str) -> None:
    with pytest.raises(PublishedFormatError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_files_manifest(raw, "oci://h/r:t")


def _index(*manifests: Any, artifact: str = layout.PUBLISHED_INDEX_ARTIFACT) -> bytes:
    return json.dumps({"artifactType": artifact, "manifests": list(manifests)}).encode()


FILES_ENTRY = {
    "artifactType": layout.PUBLISHED_FILES_ARTIFACT,
    "digest": "sha256:" + "f" * 64,
    "size": 100,
}


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (_index(FILES_ENTRY, artifact=layout.OCI_INDEX), "not a bundle published by airgap"),
        (_index(), "lists 0 files manifests"),
        (_index(FILES_ENTRY, FILES_ENTRY), "lists 2 files manifests"),
        (_index({**FILES_ENTRY, "digest": "md5:x"}), "no sha256 digest"),
        (json.dumps({"artifactType": layout.PUBLISHED_INDEX_ARTIFACT}).encode(), "no manifests"),
    ],
)
def test_an_index_that_airgap_did_not_write_is_refused(raw: bytes, says: str) -> None:
    with pytest.raises(PublishedFormatError, match=says):
        parse_bundle_index(raw, "oci://h/r:t")


def test_indexes_are_pushed_after_the_manifests_they_list() -> None:
    m1, m2 = b'{"layers": []}', b'{"config": {}}'
    d1, d2 = _digest(m1), _digest(m2)
    inner = json.dumps({"manifests": [{"digest": d1}, {"digest": d2}]}).encode()
    outer = json.dumps({"manifests": [{"digest": _digest(inner)}, {"digest": "sha256:absent"}]})
    docs = {d1: m1, d2: m2, _digest(inner): inner, _digest(outer.encode()): outer.encode()}
    order = push_order(docs)
    assert sorted(order) == sorted(docs)
    assert order.index(_digest(inner)) > max(order.index(d1), order.index(d2))
    assert order.index(_digest(outer.encode())) > order.index(_digest(inner))
    assert manifest_children(b"not json") == []
