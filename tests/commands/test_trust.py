"""`airgap trust init|add|revoke|show`: a policy a verifier can rely on, edited safely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.golden import write_public_key


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    p = tmp_path / "trust.json"
    assert cli("trust", "init", str(p), "--threshold", "1", "--max-age", "90d").returncode == 0
    return p


def test_add_show_revoke_round_trip(policy: Path, tmp_path: Path) -> None:
    a = write_public_key(tmp_path, b"key a", "a")
    b = write_public_key(tmp_path, b"key b", "b")
    kid_a = cli("trust", "add", str(policy), str(a), "--name", "alice").stdout.strip()
    kid_b = cli("trust", "add", str(policy), str(b), "--name", "bob").stdout.strip()
    assert len(kid_a) == len(kid_b) == 64 and kid_a != kid_b
    assert cli("trust", "revoke", str(policy), "bob", "--reason", "lost").returncode == 0
    doc = json.loads(cli("trust", "show", str(policy), "--json").stdout)
    assert doc["threshold"] == 1 and doc["max_age"] == "90d"
    assert {k["name"]: k["revoked"] for k in doc["keys"]} == {"alice": False, "bob": True}
    assert doc["revoked"] == [{"keyid": kid_b, "reason": "lost"}]
    text = cli("trust", "show", str(policy)).stdout
    assert (
        "bob" in text
        and "REVOKED" in text.split("bob")[0].split("\n")[-1] + text.split("bob")[1].split("\n")[0]
    )


def test_an_empty_keyid_revokes_nothing(policy: Path, tmp_path: Path) -> None:
    """Every keyid starts with "": with one key trusted, an empty argument named it."""
    a = write_public_key(tmp_path, b"key a", "a")
    assert cli("trust", "add", str(policy), str(a), "--name", "alice").returncode == 0
    before = policy.read_bytes()
    r = cli("trust", "revoke", str(policy), "")
    assert r.returncode == 2 and "an empty keyid names no key" in r.stderr, r.stderr
    assert policy.read_bytes() == before


BAD_EDITS = [
    # (id, how the policy document is changed, words in the error)
    ("keyid-not-its-key", lambda d: d["keys"][0].update(keyid="0" * 64), "its public key is"),
    ("key-twice", lambda d: d["keys"].append(dict(d["keys"][0], name="again")), "listed twice"),
    ("threshold-unmeetable", lambda d: d.update(threshold=2), "cannot be met"),
    (
        "revoked-keyid-with-newline",
        lambda d: d["revoked"].append({"keyid": d["keys"][0]["keyid"] + "\n"}),
        "not a valid trust policy",
    ),
    ("unknown-field", lambda d: d.update(extra=1), "not a valid trust policy"),
    (
        "revokes-a-key-it-does-not-list",
        lambda d: d["revoked"].append({"keyid": "ab" * 32}),
        "which the policy does not list",
    ),
    (
        "revokes-a-key-twice",
        lambda d: d["revoked"].extend([{"keyid": d["keys"][0]["keyid"]}] * 2),
        "a second time",
    ),
]


@pytest.mark.parametrize(
    ("change", "words"), [b[1:] for b in BAD_EDITS], ids=[b[0] for b in BAD_EDITS]
)
def test_a_policy_a_verifier_cannot_rely_on_is_refused(
    policy: Path, tmp_path: Path, change: object, words: str
) -> None:
    cli("trust", "add", str(policy), str(write_public_key(tmp_path)), "--name", "k")
    doc = json.loads(policy.read_text())
    change(doc)  # type: ignore[operator]
    policy.write_text(json.dumps(doc))
    r = cli("trust", "show", str(policy))
    assert r.returncode == 2 and words in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_a_key_added_twice_or_a_name_reused_is_refused(policy: Path, tmp_path: Path) -> None:
    a = write_public_key(tmp_path, b"key a", "a")
    assert cli("trust", "add", str(policy), str(a), "--name", "alice").returncode == 0
    again = cli("trust", "add", str(policy), str(a), "--name", "alice2")
    assert again.returncode == 2 and "already trusted" in again.stderr
    b = write_public_key(tmp_path, b"key b", "b")
    same_name = cli("trust", "add", str(policy), str(b), "--name", "alice")
    assert same_name.returncode == 2 and "already trusted" in same_name.stderr
