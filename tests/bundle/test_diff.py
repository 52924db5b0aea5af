"""packager.bundle.diff: what changed between two descriptors, against hand-computed answers."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from packager.bundle.descriptor import Descriptor, ImageRecord, KernelRecord
from packager.bundle.diff import (
    BlobRef,
    FieldChange,
    RoleCount,
    diff_descriptors,
    field_changes,
)
from tests.support.descriptors import blob, make_descriptor


def d(n: int) -> str:
    return f"sha256:{n:064x}"


# ----------------------------------------------------------------------------- manifest fields


@pytest.mark.parametrize(
    ("old", "new", "changes"),
    [
        ({"a": 1}, {"a": 1}, []),
        ({"a": 1}, {"a": 2}, [FieldChange("a", 1, 2)]),
        ({"a": 1}, {"a": True}, [FieldChange("a", 1, True)]),  # 1 == True, but not the same
        (
            {"m": {"v": "1.0.0", "x": 1}},
            {"m": {"v": "1.1.0"}, "y": None},
            [
                FieldChange("m.v", "1.0.0", "1.1.0"),
                FieldChange("m.x", 1, None, in_new=False),
                FieldChange("y", None, None, in_old=False),
            ],
        ),
        (
            {"files": [{"src": "a"}, {"src": "b"}]},
            {"files": [{"src": "a"}, {"src": "c"}, {"src": "d"}]},
            [
                FieldChange("files[1].src", "b", "c"),
                FieldChange("files[2].src", None, "d", in_old=False),
            ],
        ),
        ({"l": []}, {"l": ["x"]}, [FieldChange("l", [], None, in_new=False),
                                   FieldChange("l[0]", None, "x", in_old=False)]),
        ({"odd key": 1}, {"odd key": 2}, [FieldChange('"odd key"', 1, 2)]),
    ],
)  # fmt: skip
def test_field_changes(
    old: dict[str, Any], new: dict[str, Any], changes: list[FieldChange]
) -> None:
    assert list(field_changes(old, new)) == changes


# ----------------------------------------------------------------------------- blobs by role

OLD_BLOBS = [
    blob(1, "model/w.safetensors", size=1000, role="model"),
    blob(2, "model/config.json", size=10, role="model"),
    blob(3, "files/run.sh", size=5, role="file"),
    blob(4, size=300, role="oci"),
]
NEW_BLOBS = [
    blob(1, "model/w.safetensors", size=1000, role="model"),
    blob(5, "model/config.json", size=12, role="model"),  # config changed
    blob(3, "files/bin/run.sh", size=5, role="file"),  # moved: same content, unchanged
    blob(6, size=310, role="oci"),
    blob(7, "wheels/x-1.0-py3-none-any.whl", size=70, role="wheel"),
]


def test_blobs_by_role_and_the_delta() -> None:
    r = diff_descriptors(
        make_descriptor(blobs=OLD_BLOBS), make_descriptor(version="1.1.0", blobs=NEW_BLOBS)
    )
    assert r.roles == (
        RoleCount("file", unchanged=1, unchanged_bytes=5),
        RoleCount("model", added=1, added_bytes=12, removed=1, removed_bytes=10,
                  unchanged=1, unchanged_bytes=1000),
        RoleCount("oci", added=1, added_bytes=310, removed=1, removed_bytes=300),
        RoleCount("wheel", added=1, added_bytes=70),
    )  # fmt: skip
    assert [b.digest for b in r.added] == [d(5), d(6), d(7)]
    assert [b.digest for b in r.removed] == [d(2), d(4)]
    # carried: the new config, the new OCI blob (never left out: no install path), the new wheel
    assert (r.delta.blobs, r.delta.bytes) == (3, 12 + 310 + 70)
    assert (r.delta.full_blobs, r.delta.full_bytes) == (5, 1000 + 12 + 5 + 310 + 70)
    assert [(w.filename, w.status, w.size) for w in r.wheels] == [
        ("x-1.0-py3-none-any.whl", "added", 70)
    ]
    assert not r.same_content


@pytest.mark.parametrize(
    ("old", "new", "carried"),
    [
        # the same blob with an install path in OLD: left out
        ([blob(1, "model/w", size=100)], [blob(1, "model/w", size=100)], (0, 0)),
        # moved to another path: still the same content in the store, left out
        ([blob(1, "model/w", size=100)], [blob(1, "model/v", size=100)], (0, 0)),
        # unchanged, but a site's store keeps no copy (an image layer, the probe): carried
        ([blob(2, size=40, role="image")], [blob(2, size=40, role="image")], (1, 40)),
        # OLD holds it only as an image layer, NEW installs it: carried (not in the store)
        ([blob(3, size=50, role="image")], [blob(3, "model/w", size=50)], (1, 50)),
        # a new blob: carried
        ([], [blob(4, "model/w", size=7)], (1, 7)),
    ],
)  # fmt: skip
def test_the_delta_follows_the_builds_rule(
    old: list[Any], new: list[Any], carried: tuple[int, int]
) -> None:
    r = diff_descriptors(make_descriptor(blobs=old), make_descriptor(version="2", blobs=new))
    assert (r.delta.blobs, r.delta.bytes) == carried


def test_the_same_descriptor_has_no_changes() -> None:
    a = make_descriptor(blobs=OLD_BLOBS)
    r = diff_descriptors(a, a, same_content=True)
    assert r.same_content and r.manifest == () and r.added == () and r.removed == ()
    assert (r.delta.blobs, r.delta.bytes) == (1, 300)  # the OCI blob: a store keeps no copy
    assert r.images == () and r.kernels == () and r.wheels == ()


@pytest.mark.parametrize(
    ("old", "new", "wheels"),
    [
        ([], [], []),
        (
            [blob(1, "wheels/a-1.0-py3-none-any.whl", size=3, role="wheel")],
            [blob(2, "wheels/a-1.1-py3-none-any.whl", size=4, role="wheel")],
            [("a-1.0-py3-none-any.whl", "removed", 3), ("a-1.1-py3-none-any.whl", "added", 4)],
        ),
        (  # the same file name with other bytes: one out, one in
            [blob(1, "wheels/a-1.0-py3-none-any.whl", size=3, role="wheel")],
            [blob(2, "wheels/a-1.0-py3-none-any.whl", size=3, role="wheel")],
            [("a-1.0-py3-none-any.whl", "removed", 3), ("a-1.0-py3-none-any.whl", "added", 3)],
        ),
    ],
)
def test_wheels(old: list[Any], new: list[Any], wheels: list[tuple[str, str, int]]) -> None:
    r = diff_descriptors(make_descriptor(blobs=old), make_descriptor(blobs=new))
    assert [(w.filename, w.status, w.size) for w in r.wheels] == wheels


# ----------------------------------------------------------------------------- images


def _image(ref: str, manifest: int) -> ImageRecord:
    return ImageRecord(ref, "serving", "linux/amd64", d(manifest), None, d(manifest + 1))


LAYERS = [blob(n, size=n * 100, role="image") for n in (20, 21, 22, 23)]


@pytest.mark.parametrize(
    ("old", "new", "old_layers", "new_layers", "expected"),
    [
        ([_image("r/a:1", 10)], [_image("r/a:1", 10)], {}, {}, []),
        ([], [_image("r/a:1", 10)], {}, {}, [("r/a:1", "added", None, d(10))]),
        ([_image("r/a:1", 10)], [], {}, {}, [("r/a:1", "removed", d(10), None)]),
        (
            [_image("r/a:1", 10)], [_image("r/a:1", 12)],
            {d(10): [d(20), d(21), d(22)]}, {d(12): [d(20), d(21), d(23)]},
            [("r/a:1", "changed", d(10), d(12), [d(23)], [d(22)], 2, 2000 + 2100, True)],
        ),
        (  # one side's manifest unread: changed, layers unknown
            [_image("r/a:1", 10)], [_image("r/a:1", 12)], {}, {d(12): [d(20)]},
            [("r/a:1", "changed", d(10), d(12), [], [], 0, 0, False)],
        ),
    ],
)  # fmt: skip
def test_images(
    old: list[ImageRecord],
    new: list[ImageRecord],
    old_layers: dict[str, list[str]],
    new_layers: dict[str, list[str]],
    expected: list[tuple[Any, ...]],
) -> None:
    r = diff_descriptors(
        make_descriptor(blobs=LAYERS, images=old),
        make_descriptor(blobs=LAYERS, images=new),
        old_layers=old_layers,
        new_layers=new_layers,
    )
    got = []
    for i in r.images:
        row: tuple[Any, ...] = (i.ref, i.status, i.old_digest, i.new_digest)
        if i.status == "changed":
            row += (
                [x.digest for x in i.layers_added],
                [x.digest for x in i.layers_removed],
                i.layers_unchanged,
                i.layers_unchanged_bytes,
                i.layers_known,
            )
        got.append(row)
    assert got == expected
    for i in r.images:
        assert all(x == BlobRef(x.digest, x.size, "image") for x in i.layers_added)
    if expected and expected[0][1] == "changed" and expected[0][-1]:
        assert r.images[0].layers_added[0].size == 2300


# ----------------------------------------------------------------------------- kernels


def _kernel(name: str, targets: list[str], archs: list[str], cover: dict[str, str]) -> KernelRecord:
    check = {
        "archs": archs,
        "coverage": [
            {"chip": c, "cc": None, "coverage": v, "via": archs} for c, v in cover.items()
        ],
    }
    return KernelRecord(name, "cuda-cubin", f"kernels/{name}/k.cubin", name, tuple(targets),
                        None, None, check)  # fmt: skip


def _with_kernels(desc: Descriptor, *kernels: KernelRecord, binary: int = 30) -> Descriptor:
    blobs = desc.blobs + tuple(blob(binary, k.path, size=9, role="kernel") for k in kernels)
    return dataclasses.replace(desc, kernels=kernels, blobs=blobs)


V90 = _kernel("vadd", ["sm_90"], ["sm_90"], {"h100": "native"})


@pytest.mark.parametrize(
    ("old", "new", "binary", "expected"),
    [
        ([V90], [V90], 30, []),
        ([V90], [V90], 31, [("vadd", "changed", True)]),  # rebuilt, same coverage
        ([], [V90], 30, [("vadd", "added", False)]),
        ([V90], [], 30, [("vadd", "removed", False)]),
        (
            [V90],
            [_kernel("vadd", ["sm_80", "sm_90"], ["sm_80", "sm_90"],
                     {"h100": "native", "a100": "native"})],
            30,
            [("vadd", "changed", False)],
        ),
        ([V90], [_kernel("vadd", ["sm_90"], ["sm_90"], {"h100": "ptx-jit"})], 30,
         [("vadd", "changed", False)]),
    ],
)  # fmt: skip
def test_kernels(
    old: list[KernelRecord], new: list[KernelRecord], binary: int, expected: list[tuple[Any, ...]]
) -> None:
    r = diff_descriptors(
        _with_kernels(make_descriptor(), *old),
        _with_kernels(make_descriptor(), *new, binary=binary),
    )
    assert [(k.name, k.status, k.binary_changed) for k in r.kernels] == expected


def test_kernel_coverage_is_read_from_the_record() -> None:
    wide = _kernel(
        "vadd", ["sm_90", "sm_80"], ["sm_90", "sm_80"], {"h100": "native", "a100": "native"}
    )
    r = diff_descriptors(
        _with_kernels(make_descriptor(), V90), _with_kernels(make_descriptor(), wide)
    )
    (k,) = r.kernels
    assert k.old is not None and k.new is not None
    assert k.old.to_json() == {
        "targets": ["sm_90"],
        "archs": ["sm_90"],
        "chips": {"h100": "native"},
    }
    assert k.new.to_json() == {
        "targets": ["sm_80", "sm_90"],
        "archs": ["sm_80", "sm_90"],
        "chips": {"a100": "native", "h100": "native"},
    }


def test_a_kernel_record_without_coverage_reads_as_none() -> None:
    bare = dataclasses.replace(V90, check={"archs": "not a list", "coverage": {"x": 1}})
    r = diff_descriptors(
        _with_kernels(make_descriptor(), V90), _with_kernels(make_descriptor(), bare)
    )
    (k,) = r.kernels
    assert k.new is not None and k.new.archs == () and k.new.chips == ()


# ----------------------------------------------------------------------------- manifest + target


def test_manifest_and_target_fields() -> None:
    a = dataclasses.replace(
        make_descriptor(), manifest={"metadata": {"name": "m", "version": "1.0.0"}}
    )
    b = dataclasses.replace(
        make_descriptor(platform="linux/arm64"),
        manifest={"metadata": {"name": "m", "version": "2.0.0"}},
    )
    r = diff_descriptors(a, b)
    assert r.manifest == (FieldChange("metadata.version", "1.0.0", "2.0.0"),)
    assert r.target_changed == (FieldChange("target.platform", "linux/amd64", "linux/arm64"),)
    doc = r.to_json()
    assert doc["manifest"] == [{"path": "metadata.version", "old": "1.0.0", "new": "2.0.0"}]
