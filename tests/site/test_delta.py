"""Delta bundles end to end, with real bundles built here by the real `airgap build`:

v1 full, v2 full and v2 as a delta from v1 (a quarter of v2's files changed), signed by an
Ed25519 key with SOURCE_DATE_EPOCH fixed, so that the full and the delta build of v2 sign the
same bytes and the installed trees can be compared byte for byte, signatures included.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from packager.bundle import layout
from packager.bundle.have import parse_have_list
from packager.util.schemas import validator
from tests.site.install_support import (
    MANY,
    current,
    log_lines,
    many_weights,
    ok,
    receipt,
    run,
    tree_files,
)
from tests.support.projects import make_key
from tests.support.reports import report_problem

EPOCH = "1767225600"  # 2026-01-01

pytestmark = pytest.mark.slow  # about twenty real builds and installs


@dataclass(frozen=True)
class Deltas:
    v1: Path
    v2: Path
    delta: Path  # v2 from v1
    v2_folder: Path  # v2's manifest folder (for more builds)
    pub: Path
    priv: Path
    out: Path


def _build(manifest: Path, out: Path, priv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(
        "build", str(manifest), "--out", str(out), "--key", str(priv), *args,
        SOURCE_DATE_EPOCH=EPOCH, AIRGAP_CACHE_DIR=str(out.parent / "cache"), timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def deltas(tmp_path_factory: pytest.TempPathFactory) -> Deltas:
    base = tmp_path_factory.mktemp("deltas")
    (base / "keys").mkdir()
    priv, pub, _ = make_key(base / "keys", "delta", "ed25519")
    paths = []
    for version, seed in (("1.0.0", 1), ("2.0.0", 2)):
        d = base / version
        many_weights(d / "weights", seed, changed=0.25)
        (d / "m.yaml").write_text(MANY.format(version=version))
        ok(_build(d / "m.yaml", base / "out", priv))
        paths.append(base / "out" / f"many-{version}.airgap.tar")
    r = ok(_build(base / "2.0.0" / "m.yaml", base / "delta", priv, "--base", str(paths[0])))
    delta = base / "delta" / "many-2.0.0.delta-from-1.0.0.airgap.tar"
    assert delta.is_file(), r.stdout + r.stderr
    return Deltas(paths[0], paths[1], delta, base / "2.0.0", pub, priv, base)


def _bundle_json(tar: Path) -> bytes:
    with tarfile.open(tar) as t:
        fh = t.extractfile(layout.BUNDLE_JSON)
        assert fh is not None
        return fh.read()


def _members(tar: Path) -> set[str]:
    with tarfile.open(tar) as t:
        return {m.name for m in t.getmembers() if m.isfile()}


def _install(bundle: Path, prefix: Path, pub: Path) -> subprocess.CompletedProcess[str]:
    return run("install", str(bundle), "--prefix", str(prefix), "--key", str(pub), "--no-probe")


def _verify(bundle: Path, pub: Path, *args: str) -> tuple[int, dict[str, Any]]:
    r = run("verify", str(bundle), "--key", str(pub), "--json", *args)
    doc = json.loads(r.stdout)
    if r.returncode != 2:  # a report (2: the error object every command prints)
        validator("verify-report").validate(doc)
    return r.returncode, doc


def _digest(bundle: Path) -> str:
    return ok(run("digest", str(bundle))).stdout.strip()


def _store_blob(prefix: Path, rel: str, version: str = "1.0.0") -> Path:
    """The store blob behind an installed file."""
    f = prefix / layout.SITE_BUNDLES_DIR / "many" / version / rel
    return prefix / layout.SITE_BLOBS_DIR / hashlib.sha256(f.read_bytes()).hexdigest()


def _state(site: Path) -> dict[str, bytes]:
    """Everything under a site but its audit log (where a refused install is recorded)."""
    return {
        k: v for k, v in tree_files(site).items() if k not in (layout.SITE_AUDIT_LOG,
                                                               layout.SITE_AUDIT_HEAD)
    }  # fmt: skip


def _site_with_a_damaged_base_blob(d: Deltas, site: Path) -> Path:
    """v1 installed at ``site``, then one byte of a store blob v2 shares with it flipped (the
    same size: only hashing finds it); the blob's path."""
    ok(_install(d.v1, site, d.pub))
    blob = _store_blob(site, _unchanged_file(d))
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    return blob


def _unchanged_file(d: Deltas) -> str:
    """An install path whose blob v1 and v2 share (left out of the delta)."""
    doc = json.loads(_bundle_json(d.delta))
    left_out = set(doc["delta"]["not_carried"])
    return str(next(p for b in doc["blobs"] if b["digest"] in left_out for p in b["paths"]))


# ----------------------------------------------------------------------------- build


def test_the_delta_lists_every_blob_carries_only_the_new_ones(deltas: Deltas) -> None:
    full = json.loads(_bundle_json(deltas.v2))
    doc = json.loads(_bundle_json(deltas.delta))
    v1 = json.loads(_bundle_json(deltas.v1))
    assert doc["delta"]["base"] == {
        "name": "many", "version": "1.0.0", "digest": _digest(deltas.v1),
    }  # fmt: skip
    assert {k: v for k, v in doc.items() if k != "delta"} == full  # every blob listed
    v1_blobs = {(b["digest"], b["size"]) for b in v1["blobs"] if b["paths"]}
    expected = sorted(b["digest"] for b in full["blobs"] if (b["digest"], b["size"]) in v1_blobs)
    assert doc["delta"]["not_carried"] == expected and len(expected) > 100
    carried = {layout.digest_of_blob_path(m) for m in _members(deltas.delta)} - {None}
    assert carried == {b["digest"] for b in full["blobs"]} - set(expected)
    # the content digest covers the version, not how it travels
    assert _digest(deltas.delta) == _digest(deltas.v2)
    # the archive shrinks by what it leaves out (with headers and padding) and grows by the
    # delta record, within one tar record
    sizes = {b["digest"]: b["size"] for b in full["blobs"]}
    left_out = sum(512 + -(-sizes[d] // 512) * 512 for d in expected)
    record = len(_bundle_json(deltas.delta)) - len(_bundle_json(deltas.v2))
    got = deltas.delta.stat().st_size - (deltas.v2.stat().st_size - left_out)
    assert abs(got - record) < 10240 + 512


def test_a_delta_from_a_layout_folder_or_parts_is_the_same(deltas: Deltas, tmp_path: Path) -> None:
    folder = tmp_path / "v1"
    folder.mkdir()
    subprocess.run(["tar", "-xf", str(deltas.v1), "-C", str(folder)], check=True)
    out = tmp_path / "out"
    ok(
        _build(
            deltas.v2_folder / "m.yaml", out, deltas.priv, "--base", str(folder), "--split", "1M"
        )
    )
    index = out / "many-2.0.0.delta-from-1.0.0.airgap.parts.json"
    assert index.is_file()
    parts = sorted(out.glob("many-2.0.0.delta-from-1.0.0.airgap.tar.[0-9]*"))
    assert b"".join(p.read_bytes() for p in parts) == deltas.delta.read_bytes()
    code, rep = _verify(index, deltas.pub, "--base", str(deltas.v1))
    assert code == 0, rep


@pytest.mark.parametrize(
    ("base", "message"),
    [
        ("self", "itself"),
        ("other-name", "not many"),
        ("have-without", "holds no version of many"),
        ("bad-json", "not a valid have-list at $.blobs[0]"),
        ("twice", "twice"),
    ],
)
def test_a_base_that_cannot_be_one_is_refused(
    deltas: Deltas, tmp_path: Path, base: str, message: str
) -> None:
    blob = {"digest": "sha256:" + "a" * 64, "size": 1}
    ver = {"name": "other", "version": "1.0.0", "target": None, "digest": blob["digest"],
           "current": True}  # fmt: skip
    docs = {
        "have-without": {"airgapHave": 1, "blobs": [blob], "installed": [ver]},
        "bad-json": {"airgapHave": 1, "blobs": [{"digest": "sha256:zz", "size": 1}], "installed": []},
        "twice": {"airgapHave": 1, "blobs": [blob, blob], "installed": [ver]},
    }  # fmt: skip
    if base == "self":
        path = deltas.v2
    elif base == "other-name":
        path = tmp_path / "o"
        (path / "weights").parent.mkdir()
        many_weights(path / "weights", 1)
        (path / "m.yaml").write_text(MANY.format(version="1.0.0").replace("name: many", "name: o"))
        ok(_build(path / "m.yaml", tmp_path / "o-out", deltas.priv))
        path = tmp_path / "o-out" / "o-1.0.0.airgap.tar"
    else:
        path = tmp_path / "have.json"
        path.write_text(json.dumps(docs[base]))
    r = _build(deltas.v2_folder / "m.yaml", tmp_path / "x", deltas.priv, "--base", str(path))
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not list((tmp_path / "x").glob("*.tar")) if (tmp_path / "x").exists() else True


# ----------------------------------------------------------------------------- verify


def test_verify_without_its_base_is_not_verified_and_names_the_base(deltas: Deltas) -> None:
    code, rep = _verify(deltas.delta, deltas.pub)
    assert code == 1 and not rep["verified"]
    assert rep["delta"]["base"]["version"] == "1.0.0" and rep["delta"]["checked_in"] is None
    (failure,) = rep["failures"]
    assert failure["check"] == "delta"
    assert "many 1.0.0" in failure["message"] and _digest(deltas.v1) in failure["message"]
    text = run("verify", str(deltas.delta), "--key", str(deltas.pub))
    assert text.returncode == 1 and "1.0.0" in text.stdout + text.stderr


def test_verify_with_the_base_bundle_or_a_site_checks_the_whole_version(
    deltas: Deltas, tmp_path: Path
) -> None:
    code, rep = _verify(deltas.delta, deltas.pub, "--base", str(deltas.v1))
    assert code == 0, rep["failures"]
    full_code, full = _verify(deltas.v2, deltas.pub)
    assert full_code == 0 and rep["digest"] == full["digest"]
    assert rep["blobs_checked"] == full["blobs_checked"]
    site = tmp_path / "site"
    ok(_install(deltas.v1, site, deltas.pub))
    code, rep = _verify(deltas.delta, deltas.pub, "--prefix", str(site))
    assert code == 0, rep["failures"]
    assert rep["delta"]["checked_in"].endswith("blobs/sha256")
    # a have-list holds no bytes
    have = tmp_path / "have.json"
    have.write_text(ok(run("list", "--prefix", str(site), "--have")).stdout)
    r = run("verify", str(deltas.delta), "--key", str(deltas.pub), "--base", str(have))
    assert r.returncode == 2 and "have-list" in r.stderr
    # a prefix that is not there is a usage error, not "the blobs are not in it"; one that is
    # not a site yet holds none of them
    for command in ("verify", "audit"):
        r = run(
            command, str(deltas.delta), "--key", str(deltas.pub), "--prefix", str(tmp_path / "no")
        )
        assert r.returncode == 2 and "no such prefix" in r.stderr, (command, r.stderr)
    (tmp_path / "empty").mkdir()
    r = run(
        "verify", str(deltas.delta), "--key", str(deltas.pub), "--prefix", str(tmp_path / "empty")
    )
    assert r.returncode == 1 and "not all in" in r.stdout, r.stdout + r.stderr
    # a base that lacks them (the delta itself): named as such, never "checked in" it
    r = run("verify", str(deltas.delta), "--key", str(deltas.pub), "--base", str(deltas.delta))
    assert r.returncode == 1 and f"not all in {deltas.delta}" in r.stdout
    assert "checked in" not in r.stdout


def test_a_tampered_carried_blob_is_caught(deltas: Deltas, tmp_path: Path) -> None:
    doc = json.loads(_bundle_json(deltas.delta))
    left_out = set(doc["delta"]["not_carried"])
    victim = next(b for b in doc["blobs"] if b["paths"] and b["digest"] not in left_out)
    folder = tmp_path / "delta"
    folder.mkdir()
    subprocess.run(["tar", "-xf", str(deltas.delta), "-C", str(folder)], check=True)
    blob = folder / layout.blob_path(victim["digest"])
    data = bytearray(blob.read_bytes())
    data[0] ^= 1
    blob.write_bytes(bytes(data))
    code, rep = _verify(folder, deltas.pub, "--base", str(deltas.v1))
    assert code == 1
    assert [f["subject"] for f in rep["failures"]] == [layout.blob_path(victim["digest"])]
    site = tmp_path / "site"
    ok(_install(deltas.v1, site, deltas.pub))
    before = _state(site)
    r = _install(folder, site, deltas.pub)
    assert r.returncode == 1 and "did not verify" in r.stderr
    assert _state(site) == before and current(site, "many") == "1.0.0"


def test_a_delta_carrying_a_blob_it_says_it_leaves_out_fails(
    deltas: Deltas, tmp_path: Path
) -> None:
    folder = tmp_path / "delta"
    folder.mkdir()
    subprocess.run(["tar", "-xf", str(deltas.delta), "-C", str(folder)], check=True)
    extra = json.loads(_bundle_json(deltas.delta))["delta"]["not_carried"][0]
    v1 = tmp_path / "v1"
    v1.mkdir()
    subprocess.run(["tar", "-xf", str(deltas.v1), "-C", str(v1)], check=True)
    shutil.copy(v1 / layout.blob_path(extra), folder / layout.blob_path(extra))
    code, rep = _verify(folder, deltas.pub, "--base", str(deltas.v1))
    assert code == 1
    assert any("delta.not_carried lists it" in f["message"] for f in rep["failures"])


# ----------------------------------------------------------------------------- install


def test_v1_then_the_delta_is_exactly_v2_installed_full(deltas: Deltas, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    ok(_install(deltas.v1, a, deltas.pub))
    ok(_install(deltas.v1, b, deltas.pub))
    r = ok(run("install", str(deltas.delta), "--prefix", str(a), "--key", str(deltas.pub),
                "--no-probe", "--json"))  # fmt: skip
    res = json.loads(r.stdout)
    assert res["action"] == "installed" and res["digest"] == _digest(deltas.v2)
    assert any(n.startswith("a delta from many 1.0.0: ") for n in res["notes"])
    ok(_install(deltas.v2, b, deltas.pub))
    va = a / layout.SITE_BUNDLES_DIR / "many" / "2.0.0"
    vb = b / layout.SITE_BUNDLES_DIR / "many" / "2.0.0"
    assert tree_files(va) == tree_files(vb) and len(tree_files(va)) > 200
    assert tree_files(a / layout.SITE_BLOBS_DIR) == tree_files(b / layout.SITE_BLOBS_DIR)
    ra, rb = receipt(a, "many", "2.0.0"), receipt(b, "many", "2.0.0")
    assert {k: v for k, v in ra.items() if k != "installed"} == {
        k: v for k, v in rb.items() if k != "installed"
    }
    assert [e["digest"] for e in log_lines(a)] == [e["digest"] for e in log_lines(b)]
    audit = run("audit", "--site", str(a), "--json")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    # and back to the base, then forward again (a no-op: the version is installed)
    back = json.loads(ok(run("rollback", "many", "--prefix", str(a), "--json")).stdout)
    assert (back["from"], back["to"], back["digest"]) == ("2.0.0", "1.0.0", _digest(deltas.v1))
    assert current(a, "many") == "1.0.0"
    again = ok(run("install", str(deltas.delta), "--prefix", str(a), "--key", str(deltas.pub),
                    "--no-probe", "--json"))  # fmt: skip
    assert json.loads(again.stdout)["action"] == "activated" and current(a, "many") == "2.0.0"


def test_the_json_of_a_delta_build_and_its_install_keeps_the_report_schemas(
    deltas: Deltas, tmp_path: Path
) -> None:
    """What `build --base --json` and `install DELTA --json` print (schemas/build-report and
    install-report): the delta's base and its carried and left-out bytes, the blobs the install
    wrote and those the store had; a report that lost a field or says another action fails."""
    r = ok(_build(deltas.v2_folder / "m.yaml", tmp_path / "out", deltas.priv, "--base",
                  str(deltas.v1), "--json"))  # fmt: skip
    assert report_problem(["build", "--json"], r.stdout) is None
    built = json.loads(r.stdout)
    (b,) = built["bundles"]
    assert b["delta"]["base"] == {"name": "many", "version": "1.0.0", "digest": _digest(deltas.v1)}
    assert b["delta"]["not_carried"] > 0 and b["delta"]["carried_bytes"] == b["stored_bytes"]
    assert b["digest"] == _digest(deltas.v2) and built["lock"]["written"] is False
    full = json.loads(ok(_build(deltas.v2_folder / "m.yaml", tmp_path / "full", deltas.priv,
                                "--json")).stdout)["bundles"][0]  # fmt: skip
    # what the delta leaves out is not deduplication: the same figure as the full version's
    assert b["dedup_saved_bytes"] == full["dedup_saved_bytes"] < b["delta"]["not_carried_bytes"]
    same = json.loads(ok(run("digest", str(deltas.delta), "--json")).stdout)  # digest-report
    assert same == {"ok": True, "bundle": str(deltas.delta), "digest": b["digest"]}
    site = tmp_path / "site"
    ok(_install(deltas.v1, site, deltas.pub))
    r = ok(run("install", str(deltas.delta), "--prefix", str(site), "--key", str(deltas.pub),
                "--no-probe", "--json"))  # fmt: skip
    assert report_problem(["install", "--json"], r.stdout) is None
    done = json.loads(r.stdout)
    assert done["action"] == "installed" and done["previous"] == "1.0.0"
    assert done["blobs_written"] > 0 and done["blobs_present"] > 0 and done["probe"] is None
    no_base = {**b, "delta": {**b["delta"], "base": {"name": "many", "version": "1.0.0"}}}
    for command, broken, where in (
        ("build", {**built, "bundles": [no_base]}, "$.bundles[0].delta"),
        ("build", {k: v for k, v in built.items() if k != "lock"}, "'lock' is a required"),
        ("install", {**done, "action": "copied"}, "$.action"),
        ("install", {**done, "extra": 1}, "'extra' was unexpected"),
        ("install", {**done, "digest": done["digest"] + "\n"}, "$.digest"),
    ):
        problem = report_problem([command, "--json"], json.dumps(broken))
        assert problem is not None and where in problem, (command, problem)


def test_a_delta_against_a_have_list_of_a_site_with_another_model(
    deltas: Deltas, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    ok(_install(deltas.v1, site, deltas.pub))
    other = tmp_path / "other"
    many_weights(other / "weights", 7, changed=1.0)  # shares model.safetensors and config.json
    (other / "m.yaml").write_text(MANY.format(version="3.1.0").replace("name: many", "name: other"))
    ok(_build(other / "m.yaml", tmp_path / "other-out", deltas.priv))
    ok(_install(tmp_path / "other-out" / "other-3.1.0.airgap.tar", site, deltas.pub))
    r = ok(run("list", "--prefix", str(site), "--have"))
    have = json.loads(r.stdout)
    parsed = parse_have_list(r.stdout.encode(), "stdout")  # follows schemas/have.schema.json
    assert len(parsed.blobs) == len(have["blobs"]) > 200
    assert {(v["name"], v["version"], v["current"]) for v in have["installed"]} == {
        ("many", "1.0.0", True), ("other", "3.1.0", True),
    }  # fmt: skip
    assert str(site) not in r.stdout and "path" not in r.stdout  # no paths of the site
    schema_check = run("list", "--prefix", str(site), "--have")  # stable: same bytes again
    assert schema_check.stdout == r.stdout
    (tmp_path / "have.json").write_text(r.stdout)
    out = tmp_path / "out"
    ok(_build(deltas.v2_folder / "m.yaml", out, deltas.priv, "--base", str(tmp_path / "have.json")))
    delta = out / "many-2.0.0.delta-from-1.0.0.airgap.tar"
    assert _members(delta) == _members(deltas.delta)  # what v1 holds, no more
    ok(_install(delta, site, deltas.pub))
    assert current(site, "many") == "2.0.0" and current(site, "other") == "3.1.0"
    assert run("audit", "--site", str(site)).returncode == 0


def test_a_delta_whose_base_blob_was_gced_is_refused_with_nothing_written(
    deltas: Deltas, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    ok(_install(deltas.v1, site, deltas.pub))
    ok(run("uninstall", "many", "--prefix", str(site), "--all"))
    ok(run("gc", "--prefix", str(site)))
    before = _state(site)
    r = _install(deltas.delta, site, deltas.pub)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "many 1.0.0" in r.stderr and _digest(deltas.v1) in r.stderr
    n = len(json.loads(_bundle_json(deltas.delta))["delta"]["not_carried"])
    assert f"{n} blob(s)" in r.stderr and "nothing was installed" in r.stderr
    assert _state(site) == before
    fresh = tmp_path / "fresh"
    r = _install(deltas.delta, fresh, deltas.pub)
    assert r.returncode == 1 and not fresh.exists()


def test_store_blobs_checked_before_are_not_read_again_unless_changed(
    deltas: Deltas, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    ok(_install(deltas.v1, site, deltas.pub))
    record = site / "blobs" / "checked.json"
    n = len(json.loads(_bundle_json(deltas.delta))["delta"]["not_carried"])
    code, rep = _verify(deltas.delta, deltas.pub, "--prefix", str(site))
    assert code == 0 and any(f"{n} blob(s) of the store were taken" in m for m in rep["notes"])
    record.write_text("{not json")  # a damaged record: everything is hashed again
    code, rep = _verify(deltas.delta, deltas.pub, "--prefix", str(site))
    assert code == 0 and not any("taken as checked" in m for m in rep["notes"])
    ok(_install(deltas.delta, site, deltas.pub))
    v2_blobs = {b["digest"][7:] for b in json.loads(_bundle_json(deltas.v2))["blobs"] if b["paths"]}
    assert set(json.loads(record.read_text())["blobs"]) == v2_blobs  # v1's others: unknown now
    assert run("audit", "--site", str(site)).returncode == 0


def test_a_tampered_base_blob_in_the_store_is_caught(deltas: Deltas, tmp_path: Path) -> None:
    site = tmp_path / "site"
    blob = _site_with_a_damaged_base_blob(deltas, site)
    code, rep = _verify(deltas.delta, deltas.pub, "--prefix", str(site))
    assert code == 1 and any("damaged or tampered" in f["message"] for f in rep["failures"])
    before = _state(site)
    r = _install(deltas.delta, site, deltas.pub)
    assert r.returncode == 1 and "did not verify" in r.stderr
    assert blob.name in r.stderr and "install the full bundle" in r.stderr
    assert _state(site) == before and current(site, "many") == "1.0.0"
    assert not (site / layout.SITE_RECEIPTS_DIR / "many" / "2.0.0.json").exists()


def test_a_full_install_does_not_link_a_damaged_store_blob(deltas: Deltas, tmp_path: Path) -> None:
    """The blobs a full bundle would link from the store are checked first like a delta's base
    blobs; a damaged one is stored again from the bundle, and the new version is intact."""
    site = tmp_path / "site"
    blob = _site_with_a_damaged_base_blob(deltas, site)
    r = ok(_install(deltas.v2, site, deltas.pub))
    assert "did not hash to their names" in r.stderr + r.stdout and blob.name in r.stderr + r.stdout
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name  # the store is intact again
    audit = run("audit", "--site", str(site))
    assert audit.returncode == 1
    assert "intact many 2.0.0" in audit.stdout and "DRIFT many 1.0.0" in audit.stdout
    ok(run("repair", "--prefix", str(site)))  # v1 from the store's intact copy
    ok(run("audit", "--site", str(site)))


def test_audit_of_a_delta_checks_it_whole_with_its_base(deltas: Deltas, tmp_path: Path) -> None:
    """The officer audits the delta before approving it: with its base (a bundle or a site)
    the verdict is the full version's; without, it fails naming the base, as verify does."""
    key = ("--key", str(deltas.pub))
    r = run("audit", str(deltas.delta), *key, "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and doc["verdict"] == "FAIL"
    assert any("1.0.0" in reason and "--base" in reason for reason in doc["reasons"])
    r = run("audit", str(deltas.delta), *key, "--base", str(deltas.v1), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["verdict"] == "PASS", r.stdout + r.stderr
    site = tmp_path / "site"
    ok(_install(deltas.v1, site, deltas.pub))
    r = run("audit", str(deltas.delta), *key, "--prefix", str(site), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["verdict"] == "PASS", r.stdout + r.stderr
    r = run("audit", "--site", str(site), "--base", str(deltas.v1))
    assert r.returncode == 2 and "--site" in r.stderr
