"""The store's record of checked blobs (packager.site.checked): what it keeps, what it drops,
and that a record that is not one only means hashing again."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from packager.bundle import layout
from packager.site import checked
from packager.site.prefix import Prefix


def _site(tmp_path: Path, *contents: bytes) -> tuple[Path, list[str]]:
    store = tmp_path / layout.SITE_BLOBS_DIR
    store.mkdir(parents=True)
    names = []
    for data in contents:
        hexd = hashlib.sha256(data).hexdigest()
        (store / hexd).write_bytes(data)
        names.append(hexd)
    return tmp_path, names


def _record(prefix: Path) -> dict[str, checked.Stamp]:
    with Prefix.open(prefix, create=False) as p:
        return checked.read_record(p.root)


def _write(prefix: Path, good: list[str]) -> None:
    with Prefix.open(prefix, create=False) as p, p.root.walk(layout.SITE_BLOBS_DIR) as store:
        checked.write_record(p.root, store, good)


def test_a_written_record_matches_until_the_blob_changes(tmp_path: Path) -> None:
    prefix, (a, b) = _site(tmp_path, b"a", b"b")
    _write(prefix, [a])
    rec = _record(prefix)
    assert set(rec) == {a}
    st = os.stat(prefix / layout.SITE_BLOBS_DIR / a)
    assert checked.matches(rec, a, st) and not checked.matches(rec, b, st)
    (prefix / layout.SITE_BLOBS_DIR / a).write_bytes(b"x")  # same size, new content
    assert not checked.matches(rec, a, os.stat(prefix / layout.SITE_BLOBS_DIR / a))
    _write(prefix, [b])  # an entry that no longer matches is dropped, the new one kept
    assert set(_record(prefix)) == {b}


def test_a_new_hard_link_makes_the_blob_unknown(tmp_path: Path) -> None:
    prefix, (a,) = _site(tmp_path, b"a")
    _write(prefix, [a])
    os.link(prefix / layout.SITE_BLOBS_DIR / a, tmp_path / "elsewhere")  # moves the ctime
    st = os.stat(prefix / layout.SITE_BLOBS_DIR / a)
    assert not checked.matches(_record(prefix), a, st)


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        json.dumps({"checked": 2, "blobs": {}}),
        json.dumps({"checked": 1, "blobs": []}),
        json.dumps({"checked": 1, "blobs": {"A" * 64: [1, 2, 3, 4]}}),
        json.dumps({"checked": 1, "blobs": {"a" * 64: [1, 2, 3]}}),
        json.dumps({"checked": 1, "blobs": {"a" * 64: [1, 2, 3, -4]}}),
        json.dumps({"checked": 1, "blobs": {"a" * 64: [1, 2, 3, True]}}),
        json.dumps({"checked": 1, "blobs": {"a" * 64: [1, 2, 3, 4.0]}}),
    ],
)
def test_a_record_that_is_not_one_reads_as_empty(tmp_path: Path, text: str) -> None:
    prefix, _ = _site(tmp_path)
    (prefix / layout.SITE_CHECKED_RECORD).write_text(text)
    assert _record(prefix) == {}


def test_a_link_in_place_of_the_record_is_not_followed(tmp_path: Path) -> None:
    prefix, (a,) = _site(tmp_path, b"a")
    target = tmp_path / "planted.json"
    st = os.stat(prefix / layout.SITE_BLOBS_DIR / a)
    target.write_text(json.dumps({"checked": 1, "blobs": {a: list(checked.stamp(st))}}))
    (prefix / layout.SITE_CHECKED_RECORD).symlink_to(target)
    assert _record(prefix) == {}


# ----------------------------------------------------------------------------- check_blob


@pytest.mark.parametrize(
    ("recorded", "damage", "answer"),
    [
        # (the record vouches for it, what happens to it after, (hashes to its name, stamp, read?))
        (False, None, (True, True, False)),  # unknown: read and hashed, intact
        (True, None, (True, True, True)),  # vouched for: not read
        (False, "rewrite", (False, False, False)),  # same size, other bytes: hashing finds it
        (True, "rewrite", (False, False, False)),  # the write moved the ctime: read again
        (True, "touch back", (False, False, False)),  # mtime set back: the ctime still moved
    ],
)  # fmt: skip
def test_check_blob(
    tmp_path: Path, recorded: bool, damage: str | None, answer: tuple[bool, bool, bool]
) -> None:
    from packager.site.have import check_blob

    prefix, (a,) = _site(tmp_path, b"intact content")
    blob = prefix / layout.SITE_BLOBS_DIR / a
    if recorded:
        _write(prefix, [a])
    if damage is not None:
        st = os.stat(blob)
        blob.write_bytes(b"damaged conten")  # the same size
        if damage == "touch back":
            os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))
    seen: list[int] = []
    with Prefix.open(prefix, create=False) as p, p.root.walk(layout.SITE_BLOBS_DIR) as store:
        got, good, taken = check_blob(store, a, checked.read_record(p.root), seen.append)
    assert ((got == a), good is not None, taken) == answer
    assert sum(seen) == len(b"intact content")  # progress counts every byte, read or not
