"""The pure verification rules of packager.bundle.checks, case by case (no bundle on disk)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from packager.bundle import checks, layout
from packager.bundle.checks import Failure, Observed, PartSeen
from packager.bundle.descriptor import CoveredFile, Descriptor, ImageRecord
from packager.bundle.parts import Part, PartsIndex
from packager.signing import keys, signature
from packager.signing.trust import Policy, TrustedKey
from tests.support.descriptors import blob, make_descriptor

UTC = _dt.timezone.utc
NOW = _dt.datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
H = {n: f"{n:x}" * 64 for n in range(1, 6)}


def _key(seed: int) -> tuple[Ed25519PrivateKey, str]:
    k = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return k, keys.keyid(k.public_key())


def _policy(
    *seeds: int, threshold: int = 1, revoked: tuple[int, ...] = (), max_age_days: int | None = None
) -> Policy:
    found = {}
    for s in seeds:
        k, kid = _key(s)
        found[kid] = TrustedKey(f"key{s}", kid, "ed25519", k.public_key())
    return Policy(
        found,
        threshold,
        {_key(s)[1]: "compromised" for s in revoked},
        _dt.timedelta(days=max_age_days) if max_age_days else None,
        f"{max_age_days}d" if max_age_days else None,
    )


def _sigs(data: bytes, *seeds: int) -> dict[str, bytes]:
    out = {}
    for s in seeds:
        k, kid = _key(s)
        out[layout.signature_path(kid)] = signature.signature_file_content(signature.sign(k, data))
    return out


def _where(failures: list[Failure]) -> list[tuple[str, str]]:
    return [(f.check, f.subject) for f in failures]


# ----------------------------------------------------------------------------- parts

INDEX = PartsIndex(
    "b-1",
    "sha256:" + H[1],
    30,
    (Part("b-1.airgap.tar.000", 10, H[1]), Part("b-1.airgap.tar.001", 20, H[2])),
)

PARTS = [
    # (id, what was found, others, failures as (check, subject, words))
    (
        "intact",
        [PartSeen("b-1.airgap.tar.000", 10, H[1]), PartSeen("b-1.airgap.tar.001", 20, H[2])],
        [],
        [],
    ),
    (
        "missing",
        [PartSeen("b-1.airgap.tar.000", 10, H[1]), PartSeen("b-1.airgap.tar.001", None, None)],
        [],
        [("b-1.airgap.tar.001", "missing")],
    ),
    (
        "truncated",
        [PartSeen("b-1.airgap.tar.000", 9, H[1]), PartSeen("b-1.airgap.tar.001", 20, H[2])],
        [],
        [("b-1.airgap.tar.000", "truncated")],
    ),
    (
        "swapped",
        [PartSeen("b-1.airgap.tar.000", 10, H[2]), PartSeen("b-1.airgap.tar.001", 20, H[1])],
        [],
        [
            ("b-1.airgap.tar.000", "content of b-1.airgap.tar.001"),
            ("b-1.airgap.tar.001", "content of b-1.airgap.tar.000"),
        ],
    ),
    (
        "foreign",
        [PartSeen("b-1.airgap.tar.000", 10, H[3]), PartSeen("b-1.airgap.tar.001", 20, H[2])],
        [],
        [("b-1.airgap.tar.000", "another bundle")],
    ),
    (
        "extra-part",
        [PartSeen("b-1.airgap.tar.000", 10, H[1]), PartSeen("b-1.airgap.tar.001", 20, H[2])],
        [PartSeen("b-1.airgap.tar.002", 5, None)],
        [("b-1.airgap.tar.002", "does not list")],
    ),
]


@pytest.mark.parametrize(
    ("seen", "others", "expected"), [c[1:] for c in PARTS], ids=[c[0] for c in PARTS]
)
def test_parts(
    seen: list[PartSeen], others: list[PartSeen], expected: list[tuple[str, str]]
) -> None:
    got = checks.check_parts(INDEX, seen, others)
    assert [(f.subject) for f in got] == [s for s, _ in expected]
    for f, (_, words) in zip(got, expected):
        assert f.check == "parts" and words in f.message, f


# ----------------------------------------------------------------------------- signatures

DATA = b'{"bundle": "signed bytes"}'

SIGNATURES: list[
    tuple[str, Callable[[], tuple[dict[str, bytes], Policy]], list[str], list[str]]
] = [
    # (id, (signature files, policy), valid key names, failure subjects)
    ("one-of-one", lambda: (_sigs(DATA, 1), _policy(1)), ["key1"], []),
    ("two-of-two", lambda: (_sigs(DATA, 1, 2), _policy(1, 2, threshold=2)), ["key1", "key2"], []),
    (
        "one-of-two-needed",
        lambda: (_sigs(DATA, 1), _policy(1, 2, threshold=2)),
        ["key1"],
        ["threshold"],
    ),
    ("untrusted-only", lambda: (_sigs(DATA, 3), _policy(1)), [], ["threshold"]),
    (
        "revoked",
        lambda: (_sigs(DATA, 1, 2), _policy(1, 2, revoked=(2,))),
        ["key1"],
        ["key2 (" + _key(2)[1][:16] + ")"],
    ),
    (
        "revoked-does-not-count",
        lambda: (_sigs(DATA, 2), _policy(1, 2, revoked=(2,))),
        [],
        ["key2 (" + _key(2)[1][:16] + ")", "threshold"],
    ),
    (
        "over-other-bytes",
        lambda: (_sigs(b"other", 1), _policy(1)),
        [],
        ["key1 (" + _key(1)[1][:16] + ")", "threshold"],
    ),
    (
        "copied-under-another-keyid",
        lambda: (
            {layout.signature_path(_key(2)[1]): _sigs(DATA, 1)[layout.signature_path(_key(1)[1])]},
            _policy(1, 2),
        ),
        [],
        ["key2 (" + _key(2)[1][:16] + ")", "threshold"],
    ),
    (
        "not-base64",
        lambda: ({layout.signature_path(_key(1)[1]): b"%%%"}, _policy(1)),
        [],
        ["key1 (" + _key(1)[1][:16] + ")", "threshold"],
    ),
    (
        "odd-name",
        lambda: ({layout.SIGNATURES_DIR + "/x.sig": b"AAAA"}, _policy(1)),
        [],
        [layout.SIGNATURES_DIR + "/x.sig", "threshold"],
    ),
]


@pytest.mark.parametrize(
    ("make", "valid", "failed"), [c[1:] for c in SIGNATURES], ids=[c[0] for c in SIGNATURES]
)
def test_signatures(
    make: Callable[[], tuple[dict[str, bytes], Policy]], valid: list[str], failed: list[str]
) -> None:
    files, policy = make()
    verdict = checks.check_signatures(DATA, files, policy)
    assert sorted(policy.name_of(k) for k in verdict.valid) == valid
    assert [f.subject for f in verdict.failures] == failed


# ----------------------------------------------------------------------------- expiry and age

EXPIRY = [
    # (id, created, expires, max_age days, failure subjects)
    ("fresh", "2025-05-31T12:00:00Z", "2025-07-01T00:00:00Z", 30, []),
    ("expired", "2025-01-01T00:00:00Z", "2025-05-01T00:00:00Z", None, ["bundle"]),
    ("too-old", "2025-01-01T00:00:00Z", None, 30, ["bundle"]),
    ("no-expiry-no-max-age", "2020-01-01T00:00:00Z", None, None, []),
    ("created-in-the-future", "2025-06-02T00:00:00Z", None, 30, ["bundle.created"]),
    ("created-a-few-minutes-ahead", "2025-06-01T12:05:00Z", None, 30, []),
    ("created-unreadable", "2025-13-45T00:00:00Z", None, 30, ["bundle.created"]),
    (
        "expires-unreadable",
        "2025-05-31T12:00:00Z",
        "2025-02-30T00:00:00Z",
        None,
        ["bundle.expires"],
    ),
]


@pytest.mark.parametrize(
    ("created", "expires", "days", "failed"), [c[1:] for c in EXPIRY], ids=[c[0] for c in EXPIRY]
)
def test_expiry_and_age(
    created: str, expires: str | None, days: int | None, failed: list[str]
) -> None:
    d = make_descriptor(created=created, expires=expires)
    got = checks.check_expiry(d, _policy(1, max_age_days=days), NOW)
    assert [f.subject for f in got] == failed


# ----------------------------------------------------------------------------- members

DESC = make_descriptor(
    blobs=[blob(1, "model/a", size=5)], files=[CoveredFile("index.json", H[2], 7)]
)
GOOD = [
    Observed("airgap", "dir", 0),
    Observed(layout.BUNDLE_JSON, "file", 100),
    Observed(layout.SIGNATURES_DIR, "dir", 0),
    Observed(layout.SIGNATURES_DIR + "/" + "a" * 64 + ".sig", "file", 90),
    Observed("blobs", "dir", 0),
    Observed("blobs/sha256", "dir", 0),
    Observed(layout.blob_path(f"sha256:{1:064x}"), "file", 5),
    Observed("index.json", "file", 7),
]
BLOB = layout.blob_path(f"sha256:{1:064x}")

MEMBERS = [
    # (id, observed, failures as (check, subject))
    ("intact", GOOD, []),
    ("extra-file", [*GOOD, Observed("notes.txt", "file", 1)], [("layout", "notes.txt")]),
    ("missing-blob", [o for o in GOOD if o.name != BLOB], [("blobs", BLOB)]),
    (
        "wrong-size",
        [o if o.name != BLOB else Observed(BLOB, "file", 6) for o in GOOD],
        [("blobs", BLOB)],
    ),
    ("symlink", [*GOOD, Observed("link", "symlink", 0)], [("layout", "link")]),
    ("device", [*GOOD, Observed("dev", "other", 0)], [("layout", "dev")]),
    ("dotdot", [*GOOD, Observed("../etc/passwd", "file", 1)], [("layout", "../etc/passwd")]),
    ("absolute", [*GOOD, Observed("/etc/passwd", "file", 1)], [("layout", "/etc/passwd")]),
    ("twice", [*GOOD, Observed("index.json", "file", 7)], [("layout", "index.json")]),
    (
        "folder-for-file",
        [o if o.name != "index.json" else Observed("index.json", "dir", 0) for o in GOOD],
        [("layout", "index.json")],
    ),
]


@pytest.mark.parametrize(
    ("observed", "failed"), [c[1:] for c in MEMBERS], ids=[c[0] for c in MEMBERS]
)
def test_members(observed: list[Observed], failed: list[tuple[str, str]]) -> None:
    assert _where(checks.check_members(DESC, observed)) == failed


# ----------------------------------------------------------------------------- hashes


@pytest.mark.parametrize(
    ("hashes", "failed"),
    [
        ({BLOB: f"{1:064x}", "index.json": H[2]}, []),
        ({BLOB: H[3], "index.json": H[2]}, [("blobs", BLOB)]),
        ({BLOB: f"{1:064x}", "index.json": H[3]}, [("layout", "index.json")]),
        ({}, []),  # not read: check_members names what is missing
    ],
    ids=["match", "blob-differs", "file-differs", "nothing-read"],
)
def test_hashes(hashes: dict[str, str], failed: list[tuple[str, str]]) -> None:
    assert _where(checks.check_hashes(DESC, hashes)) == failed


# ----------------------------------------------------------------------------- consistency


def _consistency_desc() -> Descriptor:
    return make_descriptor(
        blobs=[blob(1, size=3, role="oci"), blob(2, size=4, role="image")],
        images=[
            ImageRecord(
                "r/img:1", "serving", "linux/amd64", f"sha256:{1:064x}", None, f"sha256:{2:064x}"
            )
        ],
    )


def _index(*entries: str) -> bytes:
    import json

    return json.dumps(
        {"manifests": [{"digest": d, "annotations": {layout.REF_NAME: "r/img:1"}} for d in entries]}
    ).encode()


CONSISTENCY = [
    # (id, index.json, manifests, failure subjects)
    (
        "consistent",
        _index(f"sha256:{1:064x}"),
        {
            f"sha256:{1:064x}": b'{"config": {"digest": "sha256:'
            + f"{2:064x}".encode()
            + b'", "size": 4}}'
        },
        [],
    ),
    ("index-points-elsewhere", _index(f"sha256:{3:064x}"), {}, ["r/img:1"]),
    (
        "manifest-names-unlisted",
        _index(f"sha256:{1:064x}"),
        {
            f"sha256:{1:064x}": b'{"layers": [{"digest": "sha256:'
            + f"{4:064x}".encode()
            + b'", "size": 1}]}'
        },
        [f"sha256:{1:064x}"],
    ),
    (
        "manifest-gives-other-size",
        _index(f"sha256:{1:064x}"),
        {
            f"sha256:{1:064x}": b'{"config": {"digest": "sha256:'
            + f"{2:064x}".encode()
            + b'", "size": 5}}'
        },
        [f"sha256:{1:064x}"],
    ),
    ("index-not-json", b"{", {}, ["index.json"]),
    ("index-wrong-types", b'{"manifests": [1, "x", null, {"digest": 7}]}', {}, ["7", "r/img:1"]),
    (
        "manifest-wrong-types",
        _index(f"sha256:{1:064x}"),
        {f"sha256:{1:064x}": b'{"config": 1, "layers": {"a": 1}, "manifests": [[]]}'},
        [],
    ),
    ("image-not-in-index", b'{"manifests": []}', {}, ["r/img:1"]),
]


@pytest.mark.parametrize(
    ("index", "manifests", "failed"), [c[1:] for c in CONSISTENCY], ids=[c[0] for c in CONSISTENCY]
)
def test_consistency(index: bytes, manifests: dict[str, bytes], failed: list[str]) -> None:
    got = checks.check_consistency(_consistency_desc(), index, manifests)
    assert [f.subject for f in got] == failed
    assert all(f.check == "consistency" for f in got)
