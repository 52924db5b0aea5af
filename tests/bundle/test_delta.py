"""Delta bundles, the pure part: what a delta leaves out, what its content is, how its record
and a have-list are read (packager.bundle.delta, .descriptor, .have, .checks)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from packager.bundle import checks, layout
from packager.bundle.checks import Observed
from packager.bundle.delta import (
    BaseContent,
    check_base,
    missing,
    needs_base,
    not_carried_files,
    plan_delta,
)
from packager.bundle.descriptor import (
    BaseRef,
    CoveredFile,
    DeltaRecord,
    content_bytes,
    descriptor_bytes,
    parse_descriptor,
)
from packager.bundle.errors import DescriptorError
from packager.bundle.have import HaveListError, parse_have_list
from packager.errors import InputError
from tests.support.descriptors import ZERO, blob, make_descriptor

BLOBS = (
    blob(1, "model/a.safetensors", size=100, role="model"),
    blob(2, "model/b.safetensors", size=200, role="model"),
    blob(3, size=50, role="oci"),  # no install path: never in a site's store
    blob(4, "wheels/w.whl", size=10, role="wheel"),
)
BASE = BaseRef("b", "0.9.0", ZERO)


def _base(held: dict[int, int]) -> BaseContent:
    return BaseContent(BASE, {f"{n:064x}": size for n, size in held.items()}, "test")


@pytest.mark.parametrize(
    ("held", "left_out"),
    [
        ({}, []),  # a base with nothing in common: a full bundle in all but name
        ({1: 100, 2: 200, 4: 10}, [1, 2, 4]),
        ({1: 100, 2: 999}, [1]),  # same digest, other size: not the same blob, carried
        ({3: 50}, []),  # a pathless blob is never left out, even when the base lists it
    ],
)
def test_plan_delta_leaves_out_what_the_base_holds_with_install_paths(
    held: dict[int, int], left_out: list[int]
) -> None:
    record = plan_delta(BLOBS, _base(held))
    assert record.base == BASE
    assert record.not_carried == tuple(f"sha256:{n:064x}" for n in left_out)


def test_content_bytes_of_a_delta_are_the_full_descriptor() -> None:
    full = make_descriptor(blobs=BLOBS)
    delta = replace(full, delta=plan_delta(BLOBS, _base({1: 100, 2: 200})))
    raw = descriptor_bytes(delta)
    assert raw != descriptor_bytes(full)
    assert content_bytes(raw) == descriptor_bytes(full)
    assert content_bytes(descriptor_bytes(full)) is not None
    assert content_bytes(descriptor_bytes(full)) == descriptor_bytes(full)
    parsed = parse_descriptor(raw)
    assert parsed.delta == delta.delta
    assert [b.digest for b in BLOBS if not parsed.carried(b)] == list(delta.delta.not_carried)  # type: ignore[union-attr]


def test_a_full_bundle_whose_text_says_delta_is_hashed_as_it_is() -> None:
    full = make_descriptor(blobs=BLOBS, name="delta")
    raw = descriptor_bytes(full)
    assert b'"delta"' in raw and content_bytes(raw) == raw


def _delta_doc(not_carried: list[str]) -> bytes:
    doc: dict[str, Any] = make_descriptor(blobs=BLOBS).to_json()
    doc["delta"] = {"base": BASE.to_json(), "not_carried": not_carried}
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("not_carried", "message"),
    [
        ([BLOBS[0].digest, BLOBS[0].digest], "lists 'sha256:" + f"{1:064x}' twice"),
        ([f"sha256:{9:064x}"], "which is not a blob it lists"),
        ([BLOBS[2].digest], "it has no install path"),
        (["sha256:XYZ"], "does not match"),
    ],
)
def test_a_delta_record_that_cannot_be_true_is_refused(
    not_carried: list[str], message: str
) -> None:
    with pytest.raises(DescriptorError) as err:
        parse_descriptor(_delta_doc(not_carried))
    assert message in err.value.message


def test_members_of_a_delta_may_lack_only_what_it_leaves_out() -> None:
    doc = replace(make_descriptor(blobs=BLOBS), delta=DeltaRecord(BASE, (BLOBS[0].digest,)))
    seen = [Observed(b.member, "file", b.size) for b in BLOBS if b is not BLOBS[0]]
    seen += [Observed("airgap/bundle.json", "file", 2)]
    got = {(f.subject, f.message) for f in checks.check_members(doc, seen)}
    assert got == set()
    carried_anyway = [*seen, Observed(BLOBS[0].member, "file", BLOBS[0].size)]
    got = {(f.subject, f.message) for f in checks.check_members(doc, carried_anyway)}
    assert got == {(BLOBS[0].member, "carried, but delta.not_carried lists it")}
    lacking = [o for o in seen if o.name != BLOBS[1].member]
    got = {(f.subject, f.message) for f in checks.check_members(doc, lacking)}
    assert got == {(BLOBS[1].member, "missing")}


def test_missing_and_the_message_name_the_base() -> None:
    doc = replace(
        make_descriptor(blobs=BLOBS),
        delta=DeltaRecord(BASE, (BLOBS[0].digest, BLOBS[1].digest)),
    )
    absent = missing(doc, lambda hexd, size: hexd == BLOBS[0].hex and size == 100)
    assert absent == [BLOBS[1]]
    line = needs_base(doc, absent, "the store")
    assert line == f"a delta from b 0.9.0 (content {ZERO}): 1 blob(s), 200 B, are not in the store"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (BaseRef("b", "1.0.0", ZERO), "itself"),
        (BaseRef("b", "../x", ZERO), "cannot be part of a file name"),
        (BaseRef("b", "0.9.0\n", ZERO), "cannot be part of a file name"),
    ],
)
def test_check_base_refuses(ref: BaseRef, message: str) -> None:
    with pytest.raises(InputError) as err:
        check_base(BaseContent(ref, {}, "test"), "b", "1.0.0")
    assert message in err.value.message


HAVE = {
    "airgapHave": 1,
    "blobs": [{"digest": ZERO, "size": 3}],
    "installed": [
        {"name": "b", "version": "1.0.0", "target": None, "digest": ZERO, "current": True}
    ],
}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(extra=1), "Additional properties"),
        (lambda d: d["blobs"].append(dict(d["blobs"][0])), "lists " + ZERO + " twice"),
        (lambda d: d["installed"].append(dict(d["installed"][0])), "lists b 1.0.0 twice"),
        (lambda d: d["installed"][0].update(version="1.0.0\n"), "$.installed[0].version"),
        (lambda d: d["blobs"][0].update(path="/etc/x"), "$.blobs[0]"),
    ],
)
def test_a_have_list_is_parsed_strictly(edit: Any, message: str) -> None:
    doc = json.loads(json.dumps(HAVE))
    assert parse_have_list(json.dumps(doc).encode(), "h").sizes() == {"0" * 64: 3}
    edit(doc)
    with pytest.raises(HaveListError) as err:
        parse_have_list(json.dumps(doc).encode(), "h.json")
    assert message in err.value.message and "h.json" in err.value.message


def _two_targets(second: str | None) -> bytes:
    doc = json.loads(json.dumps(HAVE))
    doc["installed"] = [dict(doc["installed"][0], target="cuda")]
    doc["installed"].append(dict(doc["installed"][0], target=second))
    return json.dumps(doc).encode()


def test_a_version_per_target_is_one_each_but_a_target_twice_is_refused() -> None:
    """A site with two targets of one bundle (units b+cuda, b+ascend) lists the bundle's name
    with each target: the same version twice, once per target."""
    have = parse_have_list(_two_targets("ascend"), "h")
    assert [(v.name, v.target) for v in have.installed] == [("b", "cuda"), ("b", "ascend")]
    with pytest.raises(HaveListError) as err:
        parse_have_list(_two_targets("cuda"), "h.json")
    assert "lists b (target cuda) 1.0.0 twice" in err.value.message


def test_a_have_list_with_a_name_twice_in_json_is_refused() -> None:
    raw = b'{"airgapHave": 1, "airgapHave": 1, "blobs": [], "installed": []}'
    with pytest.raises(HaveListError):
        parse_have_list(raw, "h.json")


# ----------------------------------------------------------------------------- the site kit

KIT_WHEEL = "airgap/site/wheels/" + "a" * 32 + ".whl"
FILES = (
    CoveredFile(layout.SITE_LAUNCHER, "1" * 64, 900),
    CoveredFile(layout.SITE_KIT_INDEX, "2" * 64, 80),
    CoveredFile(KIT_WHEEL, "3" * 64, 5000),
    CoveredFile("airgap/site/wheels/" + "b" * 32 + ".whl", "4" * 64, 7000),
)


@pytest.mark.parametrize(
    ("held", "left_out"),
    [
        ({}, []),
        ({"3" * 64: 5000}, [KIT_WHEEL]),
        ({"3" * 64: 5001}, []),  # same sha256, another size: carried
        ({"1" * 64: 900, "2" * 64: 80}, []),  # the launcher and the index: always carried
    ],
)
def test_plan_delta_leaves_out_only_kit_wheels_the_base_has(
    held: dict[str, int], left_out: list[str]
) -> None:
    record = plan_delta(BLOBS, BaseContent(BASE, {}, "test", held), FILES)
    assert record.not_carried_files == tuple(left_out)
    doc = replace(make_descriptor(blobs=BLOBS, files=FILES), delta=record)
    assert [f.path for f in not_carried_files(doc)] == left_out
    assert doc.file_carried(layout.SITE_LAUNCHER)


def _kit_delta_doc(not_carried_files: list[str]) -> bytes:
    doc: dict[str, Any] = make_descriptor(blobs=BLOBS, files=FILES).to_json()
    doc["delta"] = {
        "base": BASE.to_json(),
        "not_carried": [],
        "not_carried_files": not_carried_files,
    }
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        ([KIT_WHEEL, KIT_WHEEL], f"lists {KIT_WHEEL!r} twice"),
        ([layout.SITE_LAUNCHER], "does not match"),  # the schema: wheels only
        (["airgap/site/wheels/" + "c" * 32 + ".whl"], "which is not a site-kit wheel it lists"),
        (["airgap/site/wheels/../bundle.json"], "does not match"),
        (["airgap/sbom.cdx.json"], "does not match"),
    ],
)
def test_a_kit_record_that_cannot_be_true_is_refused(paths: list[str], message: str) -> None:
    parse_descriptor(_kit_delta_doc([KIT_WHEEL]))  # a true one
    with pytest.raises(DescriptorError) as err:
        parse_descriptor(_kit_delta_doc(paths))
    assert message in err.value.message


def test_members_of_a_delta_may_lack_the_kit_wheels_it_leaves_out() -> None:
    record = DeltaRecord(BASE, (), (KIT_WHEEL,))
    doc = replace(make_descriptor(blobs=BLOBS, files=FILES), delta=record)
    seen = [Observed(b.member, "file", b.size) for b in BLOBS]
    seen += [Observed(f.path, "file", f.size) for f in FILES if f.path != KIT_WHEEL]
    seen += [Observed("airgap/bundle.json", "file", 2)]
    assert checks.check_members(doc, seen) == []
    carried_anyway = [*seen, Observed(KIT_WHEEL, "file", 5000)]
    got = {(f.subject, f.message) for f in checks.check_members(doc, carried_anyway)}
    assert got == {(KIT_WHEEL, "carried, but delta.not_carried_files lists it")}
    line = needs_base(doc, [], "the store", not_carried_files(doc))
    assert line.endswith("0 blob(s) and 1 site-kit wheel(s), 5.0 KB, are not in the store")


def test_a_have_list_kit_is_read_and_a_wheel_twice_is_refused() -> None:
    doc = json.loads(json.dumps(HAVE))
    doc["kit"] = [{"sha256": "3" * 64, "size": 5000}]
    assert parse_have_list(json.dumps(doc).encode(), "h").kit_sizes() == {"3" * 64: 5000}
    doc["kit"].append(dict(doc["kit"][0]))
    with pytest.raises(HaveListError) as err:
        parse_have_list(json.dumps(doc).encode(), "h.json")
    assert "$.kit lists " + "3" * 64 + " twice" in err.value.message
    del doc["kit"]  # a have-list from before the kit: it holds none
    assert parse_have_list(json.dumps(doc).encode(), "h").kit == ()


@pytest.mark.parametrize(
    ("path", "in_bundle", "installed"),
    [
        ("airgap/site/wheels/" + "a" * 32 + ".whl", True, False),
        (".airgap/site/wheels/" + "a" * 32 + ".whl", False, True),
        ("airgap/site/wheels/", False, False),  # no name
        (".airgap/site/wheels/", False, False),
        ("airgap/site/wheels/x/y.whl", False, False),  # not directly in the folder
        (".airgap/site/wheels/x/y.whl", False, False),
        ("airgap/site/kit.json", False, False),  # the index and the launcher: always carried
        (layout.SITE_LAUNCHER, False, False),
        ("model/airgap/site/wheels/a.whl", False, False),
    ],
)
def test_which_paths_are_kit_wheels(path: str, in_bundle: bool, installed: bool) -> None:
    assert layout.is_kit_wheel(path) is in_bundle
    assert layout.is_installed_kit_wheel(path) is installed
