"""`airgap install`, `list`, `uninstall`, `rollback`, `gc` and `audit --site` as an operator runs
them: real bundles from the real build, real prefixes, the CLI as a subprocess."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from packager.bundle import layout
from packager.signing.trust import policy_from_keys
from packager.site.install import InstallOptions, install_bundle
from packager.site.integrity import audit_site
from packager.site.manage import gc, rollback
from tests.site.install_support import (
    FILES,
    Bundles,
    built_bundles,
    cli,
    copy_prefix,
    current,
    install,
    install_cli,
    log_lines,
    receipt,
    run,
    store_is_sound,
)

B = layout.SITE_BUNDLES_DIR


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    return built_bundles(tmp_path_factory)


def ok_json(r: Any) -> dict[str, Any]:
    assert r.returncode == 0, r.stdout + r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def audit_json(prefix: Path) -> tuple[int, dict[str, Any]]:
    """`airgap audit --site --json`, in process (the CLI's rendering is checked separately)."""
    doc = audit_site(prefix).to_json()
    return (0 if doc["ok"] else 1), doc


def install_here(bundle: Path, prefix: Path, pub: Path) -> None:
    install_bundle(bundle, prefix, policy_from_keys([pub]), InstallOptions(probe=False))


@pytest.fixture(scope="module")
def site_template(tmp_path_factory: pytest.TempPathFactory, bundles: Bundles) -> Path:
    prefix = tmp_path_factory.mktemp("site-template") / "site"
    install_here(bundles.many1, prefix, bundles.pub)
    return prefix


@pytest.fixture
def site(tmp_path: Path, site_template: Path) -> Path:
    """A prefix with many 1.0.0 installed (a copy of one made once)."""
    copy_prefix(site_template, tmp_path / "site")
    return tmp_path / "site"


# ----------------------------------------------------------------------------- install


def test_install_lays_out_links_receipt_log_and_the_probe_reads_it(
    tmp_path: Path,
    bundles: Bundles,
) -> None:
    prefix = tmp_path / "site"
    doc = ok_json(install(bundles.many1, prefix, bundles.pub, "--json"))
    assert (doc["action"], doc["name"], doc["version"], doc["previous"]) == (
        "installed", "many", "1.0.0", None,
    )  # fmt: skip
    # files: every file of the version, its .airgap/ included (what list and audit count too)
    listed = ok_json(cli("list", "--prefix", str(prefix), "--json"))
    assert doc["files"] == listed["bundles"][0]["versions"][0]["files"] > FILES + 2
    assert doc["hard_links"] is True
    assert doc["blobs_written"] == FILES + 2 and doc["blobs_present"] == 0
    assert doc["probe"]["exit_code"] in (0, 3) and doc["ok"] is True  # CPU bundle: no FAIL
    assert current(prefix, "many") == "1.0.0"
    vdir = prefix / B / "many" / "1.0.0"
    desc = json.loads((vdir / ".airgap" / "bundle.json").read_bytes())
    assert (
        "sha256:" + hashlib.sha256((vdir / ".airgap/bundle.json").read_bytes()).hexdigest()
        == doc["digest"]
    )
    assert list((vdir / ".airgap" / "bundle.json.sig").iterdir())
    for blob in desc["blobs"]:
        for p in blob["paths"]:
            f = vdir / p
            st = f.stat()
            assert st.st_mode & 0o7777 == 0o444 and not f.is_symlink()
            store = prefix / layout.SITE_BLOBS_DIR / blob["digest"].split(":")[1]
            assert os.path.samefile(f, store)  # a hard link into the store
    r = receipt(prefix, "many", "1.0.0")
    assert r["digest"] == doc["digest"] and r["signers"][0]["name"] == "site.pub.pem"
    assert {f["path"] for f in r["files"]} >= {"model/model.safetensors", ".airgap/bundle.json"}
    assert all(len(f["sha256"]) == 64 and f["size"] >= 0 for f in r["files"])
    assert r["airgap"] and r["installed"].endswith("Z") and r["target"] is None
    (entry,) = log_lines(prefix)
    assert (entry["seq"], entry["action"], entry["version"], entry["prev"]) == (
        1, "install", "1.0.0", "0" * 64,
    )  # fmt: skip
    store_is_sound(prefix)
    assert list((prefix / layout.SITE_STAGING_DIR).iterdir()) == []
    # the probe, from the installed copy, on its own
    r2 = run("probe", "--installed", "many", "--prefix", str(prefix), "--json")
    assert r2.returncode in (0, 3), r2.stderr
    assert json.loads(r2.stdout)["bundle"]["name"] == "many"
    code, audit = audit_json(prefix)
    assert code == 0 and audit["ok"] and audit["bundles"][0]["files"] == len(r["files"])


@pytest.mark.parametrize("form", ["many1_folder", "many1_parts"])
def test_a_folder_or_parts_install_the_same_files(
    tmp_path: Path, site_template: Path, bundles: Bundles, form: str
) -> None:
    prefix = tmp_path / "site"
    doc = ok_json(install_cli(getattr(bundles, form), prefix, bundles.pub, "--no-probe", "--json"))
    assert doc["action"] == "installed" and doc["blobs_written"] == FILES + 2
    assert (
        receipt(prefix, "many", "1.0.0")["files"]
        == receipt(site_template, "many", "1.0.0")["files"]
    )
    assert audit_json(prefix)[0] == 0
    store_is_sound(prefix)


@pytest.mark.slow
def test_a_blob_at_its_link_limit_is_copied(
    tmp_path: Path, site_template: Path, bundles: Bundles
) -> None:
    """A file system refuses one more hard link (EMLINK at the blob's link limit): that file is
    a verified copy, the others are still links."""
    prefix = tmp_path / "site"
    copy_prefix(site_template, prefix)
    (shared,) = [
        f for f in receipt(prefix, "many", "1.0.0")["files"] if f["path"] == "model/config.json"
    ]
    blob = prefix / layout.SITE_BLOBS_DIR / shared["sha256"]  # 2.0.0 has the same config.json
    limit = os.pathconf(blob, "PC_LINK_MAX")
    if limit > 70000:
        pytest.skip(f"this file system allows {limit} links per file")
    links = tmp_path / "links"  # same file system, outside the prefix
    links.mkdir()
    for i in range(limit - blob.stat().st_nlink):
        os.link(blob, links / str(i))
    doc = ok_json(install_cli(bundles.many2, prefix, bundles.pub, "--no-probe", "--json"))
    assert doc["hard_links"] is False and receipt(prefix, "many", "2.0.0")["linked"] is False
    copied = [
        f["path"]
        for f in receipt(prefix, "many", "2.0.0")["files"]
        if f["blob"] and (prefix / B / "many" / "2.0.0" / f["path"]).stat().st_nlink == 1
    ]
    assert copied and all(
        hashlib.sha256((prefix / B / "many" / "2.0.0" / p).read_bytes()).hexdigest() == blob.name
        for p in copied
    )
    assert audit_json(prefix)[0] == 0


def test_a_bundle_that_does_not_verify_writes_nothing(tmp_path: Path, bundles: Bundles) -> None:
    prefix = tmp_path / "site"
    r = install_cli(bundles.many1, prefix, bundles.other_pub, "--no-probe")
    assert (
        r.returncode == 1 and "did not verify" in r.stderr and "nothing was installed" in r.stderr
    )
    assert not prefix.exists()
    # a flipped byte in a layout folder
    folder = tmp_path / "b"
    import shutil

    shutil.copytree(bundles.many1_folder, folder)
    blob = max((folder / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    r = install_cli(folder, prefix, bundles.pub, "--no-probe", "--json")
    assert r.returncode == 1 and not prefix.exists()
    assert json.loads(r.stdout)["ok"] is False


def test_the_log_says_who_and_where_and_keeps_refused_attempts(
    site: Path, bundles: Bundles
) -> None:
    import getpass
    import socket

    (entry,) = log_lines(site)
    assert entry["host"] == socket.gethostname() and getpass.getuser() in entry["operator"]
    r = install_cli(bundles.many2, site, bundles.other_pub, "--no-probe")
    assert r.returncode == 1 and "did not verify" in r.stderr
    refused = log_lines(site)[-1]
    assert refused["action"] == "install-refused" and refused["name"] is None
    assert refused["detail"].startswith(bundles.many2.name + ": ") and refused["operator"]
    assert not (site / B / "many" / "2.0.0").exists()
    code, doc = audit_json(site)
    assert code == 0, doc  # a refusal is an event of the log, not damage


def test_a_probe_fail_exits_1_and_the_install_stays(tmp_path: Path, bundles: Bundles) -> None:
    prefix = tmp_path / "site"
    r = install_cli(bundles.full1, prefix, bundles.pub)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "probe: FAIL" in r.stdout and "install is complete and current" in r.stdout
    assert current(prefix, "tamper") == "1.0.0"
    assert (
        prefix / B / "tamper" / "1.0.0" / "bin" / "run.sh"
    ).read_text() == "#!/bin/sh\necho hi\n"
    doc = ok_json(
        install_cli(bundles.full1, prefix, bundles.pub, "--json")
    )  # again: no-op, no probe
    assert doc["action"] == "unchanged" and doc["probe"] is None


def test_same_content_again_is_a_noop(site: Path, bundles: Bundles) -> None:
    before = (site / layout.SITE_AUDIT_LOG).read_bytes()
    r = install(
        bundles.many1_folder, site, bundles.pub, "--no-probe"
    )  # the same bundle, as a folder
    assert r.returncode == 0 and "already installed" in r.stdout and "nothing to do" in r.stdout
    assert (site / layout.SITE_AUDIT_LOG).read_bytes() == before


def test_upgrade_shares_blobs_then_anti_rollback(site: Path, bundles: Bundles) -> None:
    doc = ok_json(install_cli(bundles.many2, site, bundles.pub, "--no-probe", "--json"))
    assert doc["previous"] == "1.0.0" and current(site, "many") == "2.0.0"
    assert 0 < doc["blobs_present"] < doc["files"]  # the unchanged files were in the store already
    old = ok_json(
        install_cli(bundles.many09, site, bundles.pub, "--no-probe", "--json", "--allow-downgrade")
    )
    assert old["action"] == "installed" and current(site, "many") == "0.9.0"
    ok_json(install_cli(bundles.many2, site, bundles.pub, "--no-probe", "--json"))  # activated
    r = install_cli(bundles.many1, site, bundles.pub, "--no-probe")  # older than current 2.0.0
    assert (
        r.returncode == 1
        and "anti-rollback" in r.stderr
        and "older than the installed 2.0.0" in r.stderr
    )
    assert "--allow-downgrade" in r.stderr and current(site, "many") == "2.0.0"
    r = install_cli(bundles.many1_other, site, bundles.pub, "--no-probe", "--allow-downgrade")
    assert r.returncode == 1 and "installed with other content" in r.stderr
    assert current(site, "many") == "2.0.0"
    actions = [e["action"] for e in log_lines(site) if e["action"] != "install-refused"]
    assert actions == ["install", "install", "install", "activate"]  # refusals are logged too


def test_same_version_other_content_is_refused(site: Path, bundles: Bundles) -> None:
    r = install_cli(bundles.many1_other, site, bundles.pub, "--no-probe", "--json")
    assert r.returncode == 1
    err = json.loads(r.stdout)["error"]
    assert (
        "1.0.0 is installed with other content" in err["message"]
        and err["type"] == "InstallRefused"
    )
    assert current(site, "many") == "1.0.0"
    assert [e["action"] for e in log_lines(site)] == ["install", "install-refused"]


def test_rollback_uninstall_gc_list(site: Path, bundles: Bundles) -> None:
    ok_json(install_cli(bundles.many2, site, bundles.pub, "--no-probe", "--json"))
    listing = ok_json(cli("list", "--prefix", str(site), "--json"))
    (b,) = listing["bundles"]
    assert b["current"] == "2.0.0" and [v["version"] for v in b["versions"]] == ["1.0.0", "2.0.0"]
    assert [v["current"] for v in b["versions"]] == [False, True]
    # rollback names both versions; anti-rollback does not apply to it
    r = cli("rollback", "many", "--prefix", str(site))
    assert (
        r.returncode == 0 and "from 2.0.0 to 1.0.0" in r.stdout and current(site, "many") == "1.0.0"
    )
    r = cli("rollback", "many", "--prefix", str(site))
    assert r.returncode == 2 and "no installed version older than the current 1.0.0" in r.stderr
    # the current version is not removed on its own
    r = cli("uninstall", "many", "--prefix", str(site), "--version", "1.0.0")
    assert r.returncode == 1 and "is the current version" in r.stderr
    doc = ok_json(cli("uninstall", "many", "--prefix", str(site), "--version", "2.0.0", "--json"))
    assert doc["removed"] == ["2.0.0"] and doc["freeable_bytes"] > 0
    assert not (site / B / "many" / "2.0.0").exists() and current(site, "many") == "1.0.0"
    gc = ok_json(cli("gc", "--prefix", str(site), "--json"))
    assert gc["removed"] > 0 and gc["removed_bytes"] == doc["freeable_bytes"]
    store_is_sound(site)
    code, audit = audit_json(site)
    assert code == 0, audit  # 1.0.0 intact after gc dropped 2.0.0's own blobs
    # every version goes only when asked for: --all (or a yes at a terminal)
    r = cli("uninstall", "many", "--prefix", str(site))
    assert r.returncode == 2 and "--all" in r.stderr and "(1.0.0)" in r.stderr, r.stderr
    assert current(site, "many") == "1.0.0"
    doc = ok_json(cli("uninstall", "many", "--prefix", str(site), "--all", "--json"))
    assert doc["removed"] == ["1.0.0"] and doc["current_after"] is None
    assert (
        not (site / B / "many").exists() and not (site / layout.SITE_RECEIPTS_DIR / "many").exists()
    )
    gc = ok_json(cli("gc", "--prefix", str(site), "--json"))
    assert gc["kept"] == 0 and list((site / layout.SITE_BLOBS_DIR).iterdir()) == []
    assert ok_json(cli("list", "--prefix", str(site), "--json"))["bundles"] == []
    actions = [(e["action"], e["version"]) for e in log_lines(site)]
    assert actions == [
        ("install", "1.0.0"), ("install", "2.0.0"), ("rollback", "1.0.0"), ("uninstall", "2.0.0"),
        ("gc", None), ("uninstall", "1.0.0"), ("gc", None),
    ]  # fmt: skip
    assert audit_json(site)[0] == 0
    r = cli("uninstall", "many", "--prefix", str(site), "--all")
    assert r.returncode == 2 and "not installed" in r.stderr


def test_list_renders_and_errors(site: Path, tmp_path: Path) -> None:
    r = cli("list", "--prefix", str(site))
    assert r.returncode == 0 and "* 1.0.0" in r.stdout and "store:" in r.stdout
    with pytest.MonkeyPatch.context() as mp:  # the site commands' default prefix
        mp.setenv("AIRGAP_PREFIX", str(site))
        r = cli("list")
    assert r.returncode == 0 and "* 1.0.0" in r.stdout, r.stderr
    r = cli("list", "--prefix", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "no such prefix" in r.stderr and "Traceback" not in r.stderr
    r = cli("audit", "--site", str(site), str(site))
    assert r.returncode == 2 and "not both" in r.stderr


# ----------------------------------------------------------------------------- audit log tamper


def _lines(prefix: Path) -> list[bytes]:
    return (prefix / layout.SITE_AUDIT_LOG).read_bytes().splitlines(keepends=True)


def _edit(line: bytes) -> bytes:
    return line.replace(b'"detail":"', b'"detail":"(edited) ')


TAMPER = [
    # (id, change to the list of lines, the line named, words)
    ("edit-middle", lambda ls: [ls[0], _edit(ls[1]), *ls[2:]], 2, "edited"),
    ("edit-first", lambda ls: [_edit(ls[0]), *ls[1:]], 1, "edited"),
    ("edit-last", lambda ls: [*ls[:-1], _edit(ls[-1])], 4, "edited"),
    ("delete-middle", lambda ls: [ls[0], *ls[2:]], 2, "entry 2 is missing"),
    ("delete-first", lambda ls: ls[1:], 1, "entry 1 is missing"),
    ("delete-last", lambda ls: ls[:-1], None, "last entries were deleted"),
    ("swap", lambda ls: [ls[0], ls[2], ls[1], ls[3]], 3, "reordered"),
    ("garbage", lambda ls: [ls[0], b"not json\n", *ls[2:]], 2, "not an audit entry"),
]


@pytest.fixture(scope="module")
def logged_template(
    site_template: Path, bundles: Bundles, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    prefix = tmp_path_factory.mktemp("logged-template") / "site"
    copy_prefix(site_template, prefix)
    install_here(bundles.many2, prefix, bundles.pub)
    rollback(prefix, "many")
    gc(prefix)
    assert len(log_lines(prefix)) == 4
    return prefix


@pytest.fixture
def logged(tmp_path: Path, logged_template: Path) -> Path:
    """A prefix whose audit log has 4 entries: install, install, rollback, gc."""
    copy_prefix(logged_template, tmp_path / "site")
    return tmp_path / "site"


@pytest.mark.parametrize(
    ("change", "line", "words"), [t[1:] for t in TAMPER], ids=[t[0] for t in TAMPER]
)
def test_audit_names_the_tampered_line(
    logged: Path, change: Any, line: int | None, words: str
) -> None:
    (logged / layout.SITE_AUDIT_LOG).write_bytes(b"".join(change(_lines(logged))))
    code, doc = audit_json(logged)
    assert code == 1 and doc["verdict"] == "FAIL"
    problems = doc["log"]["problems"]
    assert any(p["line"] == line and words in p["message"] for p in problems), problems


def test_the_next_append_keeps_evidence_of_a_deleted_last_entry(logged: Path) -> None:
    lines = _lines(logged)
    (logged / layout.SITE_AUDIT_LOG).write_bytes(b"".join(lines[:-1]))
    assert (
        cli("rollback", "many", "--prefix", str(logged)).returncode == 2
    )  # nothing older: no entry
    assert cli("gc", "--prefix", str(logged)).returncode == 0  # appends: the head no longer matches
    entries = log_lines(logged)
    assert [e["action"] for e in entries][-2:] == ["log-damaged", "gc"]
    assert entries[-2]["seq"] == 5  # entry 4 stays missing
    code, doc = audit_json(logged)
    messages = [p["message"] for p in doc["log"]["problems"]]
    assert code == 1 and any("entry 4 is missing" in m for m in messages), messages
    assert any("entries were edited or deleted" in m for m in messages)


# ----------------------------------------------------------------------------- drift


def _vdir(prefix: Path, version: str = "1.0.0") -> Path:
    return prefix / B / "many" / version


def _modify(p: Path) -> str:
    f = _vdir(p) / "model" / "shards" / "d3" / "part-0003.bin"
    f.unlink()  # a new inode: the store's blob stays as it was
    f.write_bytes(b"changed")
    return "modified:model/shards/d3/part-0003.bin"


def _modify_in_place(p: Path) -> str:
    f = _vdir(p) / "model" / "config.json"
    data = bytearray(f.read_bytes())
    data[0] ^= 1
    with f.open("r+b") as fh:  # same size, same inode (the store's blob changes with it)
        fh.write(bytes(data[:1]))
    return "modified:model/config.json"


def _delete(p: Path) -> str:
    (_vdir(p) / "model" / "shards" / "d1" / "part-0001.bin").unlink()
    return "missing:model/shards/d1/part-0001.bin"


def _add(p: Path) -> str:
    (_vdir(p) / "model" / "shards" / "d1" / "new.bin").write_bytes(b"x")
    return "extra:model/shards/d1/new.bin"


def _add_dir(p: Path) -> str:
    (_vdir(p) / "extra-dir").mkdir()
    return "extra:extra-dir/"


def _symlink(p: Path) -> str:
    f = _vdir(p) / "model" / "shards" / "d2" / "part-0002.bin"
    f.unlink()
    f.symlink_to("/etc/passwd")
    return "modified:model/shards/d2/part-0002.bin"


def _setuid(p: Path) -> str:
    (_vdir(p) / "model" / "shards" / "d4" / "part-0004.bin").chmod(0o4755)
    return "modified:model/shards/d4/part-0004.bin"


def _descriptor(p: Path) -> str:
    f = _vdir(p) / ".airgap" / "bundle.json"
    f.write_bytes(f.read_bytes().replace(b'"1.0.0"', b'"9.9.9"'))
    return "modified:.airgap/bundle.json"


DRIFT = [_modify, _modify_in_place, _delete, _add, _add_dir, _symlink, _setuid, _descriptor]


@pytest.mark.parametrize("change", DRIFT, ids=[f.__name__.strip("_") for f in DRIFT])
def test_audit_reports_drift(site: Path, change: Any) -> None:
    kind, path = change(site).split(":", 1)
    code, doc = audit_json(site)
    assert code == 1 and doc["log"]["ok"]
    (b,) = doc["bundles"]
    got = {
        "modified": [m["path"] for m in b["modified"]],
        "missing": b["missing"],
        "extra": b["extra"],
    }
    assert got[kind] == [path], got
    assert sum(map(len, got.values())) == 1, got


def test_an_edited_receipt_does_not_hide_a_replaced_file(site: Path) -> None:
    """The receipt is unsigned: drift is judged against the installed, signed bundle.json."""
    f = _vdir(site) / "model" / "shards" / "d3" / "part-0003.bin"
    f.unlink()
    f.write_bytes(b"planted")
    receipt_path = site / layout.SITE_RECEIPTS_DIR / "many" / "1.0.0.json"
    doc = json.loads(receipt_path.read_text())
    for entry in doc["files"]:
        if entry["path"] == "model/shards/d3/part-0003.bin":
            entry["sha256"] = hashlib.sha256(b"planted").hexdigest()
            entry["size"] = len(b"planted")
    receipt_path.write_text(json.dumps(doc))
    code, report = audit_json(site)
    assert code == 1
    (b,) = report["bundles"]
    assert [m["path"] for m in b["modified"]] == ["model/shards/d3/part-0003.bin"]
    assert any("does not match the signed bundle.json" in p for p in report["problems"])


def test_a_receipt_digest_the_log_never_recorded_is_named(site: Path) -> None:
    receipt_path = site / layout.SITE_RECEIPTS_DIR / "many" / "1.0.0.json"
    doc = json.loads(receipt_path.read_text())
    doc["digest"] = "sha256:" + "0" * 64
    receipt_path.write_text(json.dumps(doc))
    code, report = audit_json(site)
    assert code == 1 and any("the receipt was edited" in p for p in report["problems"]), report


def test_a_deleted_audit_log_with_versions_installed_fails(site: Path) -> None:
    (site / layout.SITE_AUDIT_LOG).unlink()
    (site / layout.SITE_AUDIT_HEAD).unlink()
    code, report = audit_json(site)
    assert code == 1 and any("audit log is missing" in p for p in report["problems"]), report


def test_the_installed_signatures_are_checked_with_a_key(
    site: Path, bundles: Bundles, tmp_path: Path
) -> None:
    r = cli("audit", "--site", str(site), "--key", str(bundles.pub))
    assert r.returncode == 0, r.stdout
    from tests.support.golden import write_public_key

    other = write_public_key(tmp_path, b"not the signer", "other")
    r = cli("audit", "--site", str(site), "--key", str(other), "--json")
    assert r.returncode == 1 and "installed signatures" in r.stdout


def test_installed_content_is_read_only_and_a_stray_edit_is_named(site: Path) -> None:
    vdir = _vdir(site)
    f = vdir / "model" / "config.json"
    assert f.stat().st_mode & 0o7777 == 0o444 and vdir.stat().st_mode & 0o7777 == 0o555
    assert (vdir / "model").stat().st_mode & 0o7777 == 0o555
    f.chmod(0o644)  # what an editor's "force write" does first
    code, report = audit_json(site)
    (b,) = report["bundles"]
    assert code == 1 and [m["path"] for m in b["modified"]] == ["model/config.json"]
    assert "mode 0644, installed 0444" in b["modified"][0]["reason"]


def test_the_audit_command_renders_and_exits(site: Path) -> None:
    r = run("audit", "--site", str(site))
    assert r.returncode == 0 and "intact many 1.0.0 (current)" in r.stdout and "PASS" in r.stdout
    _delete(site)
    lines = _lines(site)
    (site / layout.SITE_AUDIT_LOG).write_bytes(_edit(lines[0]))
    r = cli("audit", "--site", str(site))
    assert r.returncode == 1 and "DRIFT many 1.0.0" in r.stdout and "part-0001.bin" in r.stdout
    assert "TAMPERED audit.log line 1" in r.stdout and "FAIL" in r.stdout
    r = cli("audit", "--site", str(site), "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["verdict"] == "FAIL"


def test_audit_reports_a_current_link_and_folders_without_receipts(site: Path) -> None:
    (site / B / "many" / "7.0.0").mkdir()
    (site / layout.SITE_RECEIPTS_DIR / "many" / "1.0.0.json").rename(site / "moved.json")
    code, doc = audit_json(site)
    assert code == 1
    text = " ".join(doc["problems"])
    assert (
        "7.0.0: a folder with no receipt" in text
        and "current points at 1.0.0, which has no receipt" in text
    )


def test_an_append_interrupted_before_the_head_moved_is_not_damage(site: Path) -> None:
    head = site / layout.SITE_AUDIT_HEAD
    old_head = head.read_bytes()
    assert cli("gc", "--prefix", str(site)).returncode == 0
    head.write_bytes(old_head)  # as if killed between the log's write and the head's rename
    code, doc = audit_json(site)
    assert code == 0 and any("after the one audit.log.head names" in n for n in doc["log"]["notes"])
    assert cli("gc", "--prefix", str(site)).returncode == 0
    assert [e["action"] for e in log_lines(site)] == ["install", "gc", "gc"]  # no log-damaged
    code, doc = audit_json(site)
    assert code == 0 and not doc["log"]["notes"]


def test_a_torn_last_line_is_named() -> None:
    from packager.site import auditlog

    first = auditlog.make_line(auditlog.ZERO, 1, action="install", name="a", version="1",
                               digest="d", detail="", time="t")  # fmt: skip
    report = auditlog.check_chain(first + b"\n" + b'{"seq":2,"ti', None)
    assert [
        (p.line, "torn" in p.message or "not an audit entry" in p.message) for p in report.problems
    ] == [
        (2, True),
        (2, True),
    ]
