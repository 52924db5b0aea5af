"""in-toto Statement v1 + SLSA provenance v1, canonical JSON, and the signed attestation."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from packager.signing import dsse, intoto, keys
from packager.signing.errors import StatementError
from packager.util.jsonio import canonical_json
from tests.signing.support import require_module

H = {c: c * 64 for c in "0123456789abcdef"}  # fake sha256 hex digests
T0 = intoto.time_from_epoch(1_714_521_600)  # 2024-05-01T00:00:00Z, a SOURCE_DATE_EPOCH
MANIFEST = intoto.ManifestRef(name="qwen2.5-7b-ascend", version="1.2.0", sha256=H["a"])


def _statement(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "manifest": MANIFEST,
        "lock_sha256": "sha256:" + H["b"],
        "tool_version": "0.1.0",
        "builder_id": "https://airgap.dev/builder/local",
        "started_on": T0,
        "finished_on": T0 + timedelta(seconds=5),
        "dependencies": [
            intoto.Dependency("pkg:pypi/numpy@1.26.4", H["d"], name="numpy"),
            intoto.Dependency("docker://registry/mindie@sha256:" + H["c"], "sha256:" + H["c"]),
        ],
        "target": "ascend",
        "invocation_id": "build-1",
    }
    kwargs.update(overrides)
    subjects = kwargs.pop(
        "subjects",
        [
            intoto.blob_subject("sha256:" + H["2"], "application/vnd.oci.image.layer.v1.tar"),
            intoto.blob_subject(H["1"]),
        ],
    )
    return intoto.provenance_statement(subjects, **kwargs)


def test_provenance_statement_golden() -> None:
    assert _statement() == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": f"blobs/sha256/{H['1']}", "digest": {"sha256": H["1"]}},
            {
                "name": f"blobs/sha256/{H['2']}",
                "digest": {"sha256": H["2"]},
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
            },
        ],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://airgap.dev/build/v1",
                "externalParameters": {
                    "manifest": {
                        "name": "qwen2.5-7b-ascend",
                        "version": "1.2.0",
                        "digest": {"sha256": H["a"]},
                    },
                    "lock": {"digest": {"sha256": H["b"]}},
                    "target": "ascend",
                },
                "internalParameters": {"toolVersion": "0.1.0"},
                "resolvedDependencies": [
                    {"uri": "docker://registry/mindie@sha256:" + H["c"], "digest": {"sha256": H["c"]}},
                    {"uri": "pkg:pypi/numpy@1.26.4", "digest": {"sha256": H["d"]}, "name": "numpy"},
                ],
            },
            "runDetails": {
                "builder": {"id": "https://airgap.dev/builder/local", "version": {"airgap": "0.1.0"}},
                "metadata": {
                    "invocationId": "build-1",
                    "startedOn": "2024-05-01T00:00:00Z",
                    "finishedOn": "2024-05-01T00:00:05Z",
                },
            },
        },
    }  # fmt: skip


def test_optional_fields_are_left_out() -> None:
    s = _statement(target=None, invocation_id=None, dependencies=[])
    assert "target" not in s["predicate"]["buildDefinition"]["externalParameters"]
    assert "invocationId" not in s["predicate"]["runDetails"]["metadata"]
    assert s["predicate"]["buildDefinition"]["resolvedDependencies"] == []


def test_order_of_inputs_does_not_matter() -> None:
    subjects = [intoto.blob_subject(H[c]) for c in "5a3f1"]
    deps = [intoto.Dependency(f"file:{c}", H[c]) for c in "9e2"]
    a = _statement(subjects=subjects, dependencies=deps)
    b = _statement(subjects=subjects[::-1] + subjects[:2], dependencies=deps[::-1] + deps)
    assert canonical_json(a) == canonical_json(b)
    assert (
        len(a["subject"]) == 5
        and len(a["predicate"]["buildDefinition"]["resolvedDependencies"]) == 3
    )


def _resolved_by_definition(deps: list[intoto.Dependency]) -> list[dict[str, Any]]:
    """resolvedDependencies as first written: merged by canonical JSON, sorted by (uri, name,
    canonical JSON)."""
    by_json = {canonical_json(d): d for d in (dep.to_dict() for dep in deps)}
    order = sorted(by_json, key=lambda k: (by_json[k]["uri"], by_json[k].get("name", ""), k))
    return [by_json[k] for k in order]


def test_resolved_dependencies_are_merged_and_ordered_by_their_definition() -> None:
    """Random lists (duplicates, one uri under several digests, names, media types, empty
    names, annotations that differ in one value or in key order): the same list as merging by
    canonical JSON and sorting by (uri, name, canonical JSON)."""
    import random

    rng = random.Random(15)
    for _ in range(300):
        deps = []
        for _ in range(rng.randrange(0, 12)):
            deps.append(
                intoto.Dependency(
                    f"file:{rng.choice('abc')}",
                    H[rng.choice("012")],
                    name=rng.choice([None, "", "x", "y"]),
                    media_type=rng.choice([None, "", "application/x"]),
                    annotations=rng.choice(
                        [None, {}, {"k": 1, "j": "v"}, {"j": "v", "k": 1}, {"k": 2}]
                    ),
                )
            )
        deps += rng.sample(deps, k=len(deps) // 2)  # exact duplicates
        rng.shuffle(deps)
        assert intoto._resolved(deps) == _resolved_by_definition(deps)


@pytest.mark.parametrize(
    "overrides",
    [
        {"subjects": []},
        {"subjects": [intoto.Subject("x", H["1"]), intoto.Subject("x", H["2"])]},
        {"subjects": [intoto.Subject("x", "sha256:ABC")]},
        {"subjects": [intoto.Subject("x", "sha512:" + H["1"])]},
        {"lock_sha256": "nope"},
        {"manifest": intoto.ManifestRef("n", "1", H["1"][:-1])},
        {"dependencies": [intoto.Dependency("file:x", "0" * 63)]},
        {"finished_on": T0 - timedelta(seconds=1)},
        {"started_on": datetime(2024, 5, 1), "finished_on": datetime(2024, 5, 2)},
    ],
    ids=[
        "no-subjects", "subject-twice", "bad-digest", "sha512", "bad-lock", "bad-manifest",
        "bad-dependency", "finished-before-started", "naive-times",
    ],
)  # fmt: skip
def test_bad_statement_inputs(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _statement(**overrides)


@pytest.mark.parametrize(
    ("when", "text"),
    [
        (datetime(2024, 5, 1, tzinfo=UTC), "2024-05-01T00:00:00Z"),
        (datetime(2024, 5, 1, 8, 30, tzinfo=timezone(timedelta(hours=8))), "2024-05-01T00:30:00Z"),
        (datetime(2024, 5, 1, 0, 0, 0, 250000, tzinfo=UTC), "2024-05-01T00:00:00.25Z"),
        (intoto.time_from_epoch(0), "1970-01-01T00:00:00Z"),
    ],
)
def test_rfc3339(when: datetime, text: str) -> None:
    assert intoto.rfc3339(when) == text


def test_rfc3339_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        intoto.rfc3339(datetime(2024, 5, 1))


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"b": 1, "a": [True, None, "x"]}, b'{"a":[true,null,"x"],"b":1}'),
        ({"z": {"y": 1, "x": 2}}, b'{"z":{"x":2,"y":1}}'),
        ({"name": "模型 ü"}, '{"name":"模型 ü"}'.encode()),
        ([], b"[]"),
        ("a\nb", b'"a\\nb"'),
    ],
)
def test_canonical_json(obj: object, expected: bytes) -> None:
    assert canonical_json(obj) == expected


@pytest.mark.parametrize("bad", [math.nan, math.inf, {"k": -math.inf}])
def test_canonical_json_refuses_non_finite_numbers(bad: object) -> None:
    with pytest.raises(ValueError):
        canonical_json(bad)


def test_signed_attestation_round_trip(private_key: keys.PrivateKey) -> None:
    stmt = _statement()
    env = intoto.sign_statement(stmt, [private_key])
    assert env["payloadType"] == "application/vnd.in-toto+json"
    by_keyid = {keys.keyid(private_key.public_key()): private_key.public_key()}
    payload = dsse.verify_envelope(env, by_keyid, payload_type=intoto.PAYLOAD_TYPE_INTOTO)
    assert payload == canonical_json(stmt)
    assert intoto.parse_statement(payload) == stmt


def test_securesystemslib_verifies_the_attestation(private_key: keys.PrivateKey) -> None:
    ssl_dsse = require_module("securesystemslib.dsse")
    signer_mod = require_module("securesystemslib.signer")
    env = intoto.sign_statement(_statement(), [private_key])
    key = signer_mod.SSlibKey.from_crypto(
        private_key.public_key(), keyid=keys.keyid(private_key.public_key())
    )
    theirs = ssl_dsse.Envelope.from_dict(json.loads(dsse.envelope_to_json(env)))
    assert theirs.verify([key], 1)
    assert json.loads(theirs.payload)["predicateType"] == "https://slsa.dev/provenance/v1"


def test_in_toto_attestation_bindings_accept_the_statement() -> None:
    """The in-toto project's own protobuf bindings parse the statement and the SLSA v1 predicate
    strictly (unknown fields and malformed timestamps fail) and validate them."""
    require_module("in_toto_attestation")
    json_format = require_module("google.protobuf.json_format")
    statement_pb2 = require_module("in_toto_attestation.v1.statement_pb2")
    statement_mod = require_module("in_toto_attestation.v1.statement")
    provenance_pb2 = require_module("in_toto_attestation.predicates.provenance.v1.provenance_pb2")

    stmt = _statement()
    pb = json_format.Parse(canonical_json(stmt), statement_pb2.Statement())
    statement_mod.Statement.copy_from_pb(pb).validate()
    assert pb.predicate_type == "https://slsa.dev/provenance/v1"
    prov = json_format.Parse(canonical_json(stmt["predicate"]), provenance_pb2.Provenance())
    assert prov.build_definition.build_type == intoto.BUILD_TYPE
    assert prov.run_details.metadata.started_on.seconds == int(T0.timestamp())
    assert len(prov.build_definition.resolved_dependencies) == 2
    with pytest.raises(json_format.ParseError):  # the check is strict: a typo would be caught
        json_format.Parse(b'{"buildDefinition":{"buildTyp":"x"}}', provenance_pb2.Provenance())


PARSE_ERRORS: list[tuple[str, bytes]] = [
    ("not-json", b"{"),
    ("array", b"[]"),
    ("wrong-type", b'{"_type":"https://in-toto.io/Statement/v0.1","subject":[]}'),
    ("no-subject", b'{"_type":"https://in-toto.io/Statement/v1","predicateType":"x"}'),
    ("subject-no-sha256", b'{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha512":"00"}}],"predicateType":"x"}'),
    ("no-predicate-type", canonical_json({"_type": intoto.STATEMENT_TYPE, "subject": [{"digest": {"sha256": H["1"]}}]})),
    ("predicate-not-object", canonical_json({"_type": intoto.STATEMENT_TYPE, "subject": [{"digest": {"sha256": H["1"]}}], "predicateType": "x", "predicate": []})),
]  # fmt: skip


@pytest.mark.parametrize("payload", [p[1] for p in PARSE_ERRORS], ids=[p[0] for p in PARSE_ERRORS])
def test_parse_statement_errors(payload: bytes) -> None:
    with pytest.raises(StatementError) as info:
        intoto.parse_statement(payload)
    assert info.value.exit_code == 1
