"""Trust that rotates: signed trust policies and a site that takes a new one only when a threshold
of the keys it trusts now signed it (TUF root rotation), through `airgap trust sign|update` and
bundles that carry a policy."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from packager.signing.keys import load_signing_key
from tests.support.cli import cli
from tests.support.golden import build_golden
from tests.support.projects import PASS, make_key

KEYS = ("alice", "bob", "carol", "dave")


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[Path, Path]]:
    monkeypatch.setenv("AIRGAP_KEY_PASSPHRASE", PASS)
    folder = tmp_path / "keys"
    folder.mkdir()
    return {n: make_key(folder, n)[:2] for n in KEYS}


def ok(*args: str) -> str:
    r = cli(*args)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


PolicyMaker = Callable[..., Path]


@pytest.fixture
def policy(tmp_path: Path, keys: dict[str, tuple[Path, Path]]) -> PolicyMaker:
    """policy(name, trusted, threshold, signers, base=None, revoke=()): a policy file made with
    the CLI as an officer would: init (--from the previous version), add, revoke, sign."""

    def make(
        name: str,
        trusted: tuple[str, ...],
        threshold: int,
        signers: tuple[str, ...],
        base: Path | None = None,
        revoke: tuple[str, ...] = (),
    ) -> Path:
        path = tmp_path / f"{name}.json"
        init = ["trust", "init", str(path), "--threshold", str(threshold)]
        ok(*init, *(["--from", str(base)] if base else []))
        doc = json.loads(path.read_text())
        have = {k["name"] for k in doc["keys"]}
        for k in trusted:
            if k not in have:
                ok("trust", "add", str(path), str(keys[k][1]), "--name", k)
        for k in sorted(have - set(trusted) - set(revoke)):
            doc = json.loads(path.read_text())
            doc["keys"] = [x for x in doc["keys"] if x["name"] != k]
            path.write_text(json.dumps(doc))
        for k in revoke:
            ok("trust", "revoke", str(path), k, "--reason", "key lost")
        for k in signers:
            signed = json.loads(ok("trust", "sign", str(path), "--key", str(keys[k][0]), "--json"))
            _schema("trust-sign").validate(signed)
            assert signed["in_policy"] == (k in trusted)
        return path

    return make


def update(
    site: Path, *policies: Path, initial: bool = False
) -> tuple[int, dict[str, object], str]:
    args = ["trust", "update", *map(str, policies), "--site", str(site), "--json"]
    r = cli(*args, *(["--initial"] if initial else []))
    try:
        doc = json.loads(r.stdout)
    except json.JSONDecodeError:
        doc = {}
    return r.returncode, doc, r.stderr


def site_version(site: Path) -> int:
    doc = json.loads((site / "trust" / "policy.json").read_text())
    return int(doc["signed"]["version"] if "signed" in doc else doc["version"])


@pytest.fixture
def chain(policy: PolicyMaker) -> list[Path]:
    """v1 {alice, bob} 2-of-2 -> v2 {bob, carol} -> v3 {carol, dave} -> v4 {carol, dave} 1-of-2,
    each signed by two keys of the one before and its own threshold."""
    v1 = policy("v1", ("alice", "bob"), 2, ("alice", "bob"))
    v2 = policy("v2", ("bob", "carol"), 2, ("alice", "bob", "carol"), base=v1)
    v3 = policy("v3", ("carol", "dave"), 2, ("bob", "carol", "dave"), base=v2)
    v4 = policy("v4", ("carol", "dave"), 1, ("carol", "dave"), base=v3)
    return [v1, v2, v3, v4]


def _schema(name: str) -> jsonschema.protocols.Validator:
    from packager.util.schemas import validator

    return validator(name)


def test_three_rotations_apply_in_order(tmp_path: Path, chain: list[Path]) -> None:
    site = tmp_path / "site"
    assert update(site, chain[0], initial=True)[0] == 0
    for i, p in enumerate(chain[1:], start=2):
        code, doc, err = update(site, p)
        assert code == 0, err
        _schema("trust-update").validate(doc)
        assert doc["after"] == i and site_version(site) == i
    assert sorted(p.name for p in (site / "trust" / "history").iterdir()) == [
        "1.json", "2.json", "3.json", "4.json",
    ]  # fmt: skip
    log = [json.loads(line) for line in (site / "audit.log").read_text().splitlines()]
    assert [e["version"] for e in log if e["action"] == "trust-update"] == ["1", "2", "3", "4"]
    audit = cli("audit", "--site", str(site), "--json")
    assert audit.returncode == 0, audit.stdout
    assert json.loads(audit.stdout)["trust"]["version"] == 4


def test_a_chain_given_at_once_is_applied_in_version_order(
    tmp_path: Path, chain: list[Path]
) -> None:
    site = tmp_path / "site"
    update(site, chain[0], initial=True)
    code, doc, err = update(site, chain[3], chain[1], chain[2])
    assert code == 0, err
    assert [s["version"] for s in doc["steps"]] == [2, 3, 4]  # type: ignore[index]


def test_a_skipped_version_is_allowed_only_when_the_skipping_link_verifies(
    tmp_path: Path, chain: list[Path], policy: PolicyMaker
) -> None:
    site = tmp_path / "site"
    update(site, chain[0], initial=True)
    # v3 alone: of v1's keys only bob signed it, v1 needs two
    code, _, err = update(site, chain[2])
    assert code == 1
    assert "signed by 1 of the current policy's keys (bob); version 1 needs 2" in err
    assert site_version(site) == 1
    # v2 then v4 (v3 skipped): v4 carries carol's and dave's signatures, v2 needs two of bob, carol
    code, _, err = update(site, chain[1], chain[3])
    assert code == 1 and "version 4 refused" in err
    assert site_version(site) == 1  # the chain is all or nothing
    # a v3 that alice and bob (v1's keys) signed too may skip v2
    v3b = policy("v3b", ("carol", "dave"), 2, ("alice", "bob", "carol", "dave"), base=chain[1])
    code, _, err = update(site, v3b)
    assert code == 0, err
    assert site_version(site) == 3


def test_a_policy_signed_by_too_few_old_keys_is_refused(
    tmp_path: Path, chain: list[Path], policy: PolicyMaker
) -> None:
    site = tmp_path / "site"
    update(site, chain[0], initial=True)
    weak = policy("weak", ("bob", "carol"), 2, ("alice", "carol"), base=chain[0])  # bob missing
    code, _, err = update(site, weak)
    assert code == 1
    assert "signed by 1 of the current policy's keys (alice)" in err
    assert "signed by 1 of its own keys (carol); its threshold is 2" in err
    assert site_version(site) == 1


def test_a_lower_version_is_a_rollback_and_refused(tmp_path: Path, chain: list[Path]) -> None:
    site = tmp_path / "site"
    update(site, chain[0], initial=True)
    update(site, chain[1], chain[2])
    code, _, err = update(site, chain[1])
    assert code == 1
    assert "its version 2 is not higher than the site's 3" in err
    # the same version again is nothing to do
    code, doc, _ = update(site, chain[2])
    assert code == 0 and doc["steps"][0]["action"] == "unchanged"  # type: ignore[index]


def test_an_edit_after_signing_shows(tmp_path: Path, chain: list[Path]) -> None:
    doc = json.loads(chain[1].read_text())
    doc["signed"]["threshold"] = 1
    chain[1].write_text(json.dumps(doc))
    code, _, err = update(tmp_path / "site", chain[0], initial=True)
    assert code == 0
    code, _, err = update(tmp_path / "site", chain[1])
    assert code == 2 and "the policy was changed after it was signed" in err


def test_revoking_the_key_that_signed_the_current_bundle(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]], policy: PolicyMaker
) -> None:
    site = tmp_path / "site"
    v1 = policy("r1", ("alice", "bob"), 1, ("alice",))
    update(site, v1, initial=True)
    (by_alice,) = build_golden(tmp_path / "a", key=load_signing_key(keys["alice"][0]))
    ok("install", str(by_alice), "--prefix", str(site), "--no-probe")
    v2 = policy("r2", ("alice", "bob"), 1, ("bob",), base=v1, revoke=("alice",))
    code, _, err = update(site, v2)
    assert code == 0, err  # bob (trusted by v1) signed it: accepted
    audit = cli("audit", "--site", str(site), "--json")
    assert audit.returncode == 1
    doc = json.loads(audit.stdout)
    assert doc["verdict"] == "FAIL"
    assert any("golden 1.0.0" in p and "installed signatures" in p
               and "signed by a revoked key: key lost" in p for p in doc["problems"])  # fmt: skip
    # the site refuses what alice signed, even beside a good signature
    ok("sign", str(by_alice), "--key", str(keys["bob"][0]))
    again = cli("install", str(by_alice), "--prefix", str(site), "--no-probe")
    assert again.returncode == 1 and "signed by a revoked key: key lost" in again.stderr
    # the way back: the same content signed by bob alone
    (by_bob,) = build_golden(tmp_path / "b", key=load_signing_key(keys["bob"][0]))
    ok("uninstall", "golden", "--prefix", str(site), "--all")
    ok("install", str(by_bob), "--prefix", str(site), "--no-probe")
    assert cli("audit", "--site", str(site)).returncode == 0


def test_a_bundle_carries_a_signed_policy_to_the_site(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]], chain: list[Path], policy: PolicyMaker
) -> None:
    site = tmp_path / "site"
    update(site, chain[0], initial=True)
    from packager.commands.build import carried_trust

    # signed by alice and bob: v1 takes it, and v2 (bob, carol; 2 of 2) needs carol too
    ab = [load_signing_key(keys[k][0]) for k in ("alice", "bob")]
    (bundle,) = build_golden(tmp_path / "b", key=ab[0], carry_trust=carried_trust(chain[1]))
    ok("sign", str(bundle), "--key", str(keys["bob"][0]))
    refused = cli("install", str(bundle), "--prefix", str(site), "--no-probe")
    assert refused.returncode == 1
    assert "would not accept this bundle itself" in refused.stderr
    assert site_version(site) == 1 and not (site / "bundles").exists()
    ok("sign", str(bundle), "--key", str(keys["carol"][0]))
    out = ok("install", str(bundle), "--prefix", str(site), "--no-probe")
    assert "trust policy version 2 installed" in out
    assert site_version(site) == 2

    # a bundle carrying a policy the site's keys did not sign is refused whole
    stray = policy("stray", ("carol", "dave"), 1, ("dave",), base=chain[1])
    (other,) = build_golden(tmp_path / "c", key=ab[1], carry_trust=carried_trust(stray))
    ok("sign", str(other), "--key", str(keys["carol"][0]))
    ok("uninstall", "golden", "--prefix", str(site), "--all")  # the same version with other content
    bad = cli("install", str(other), "--prefix", str(site), "--no-probe")
    assert bad.returncode == 1 and "trust policy version 3 refused" in bad.stderr
    assert site_version(site) == 2
    assert not (site / "receipts" / "golden" / "1.0.0.json").exists()


def test_a_site_that_keeps_a_policy_takes_no_other(
    tmp_path: Path, keys: dict[str, tuple[Path, Path]], chain: list[Path]
) -> None:
    site = tmp_path / "site"
    update(site, chain[0], initial=True)
    (bundle,) = build_golden(tmp_path / "b", key=load_signing_key(keys["alice"][0]))
    r = cli("install", str(bundle), "--prefix", str(site), "--key", str(keys["alice"][1]))
    assert r.returncode == 2 and "keeps its own trust policy (version 1)" in r.stderr
    # v1 needs two signatures: alice's alone does not do
    r = cli("install", str(bundle), "--prefix", str(site), "--no-probe")
    assert r.returncode == 1 and "the policy needs 2" in r.stderr
    assert update(site, chain[0], initial=True)[0] == 1  # --initial only once


def test_carrying_a_policy_that_misses_its_own_threshold_is_refused_at_build(
    policy: PolicyMaker,
) -> None:
    from packager.commands.build import carried_trust
    from packager.errors import InputError

    half = policy("half", ("alice", "bob"), 2, ("alice",))
    with pytest.raises(InputError, match="signed by 1 of its own keys, its threshold is 2"):
        carried_trust(half)
