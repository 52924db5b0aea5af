"""`airgap repair`: a prefix with many 1.0.0 and 2.0.0 installed (they share three quarters of
their files through the store) is damaged one way per case, repaired, and `audit --site` must
pass afterwards; content comes only from bytes that hash to the signed descriptor."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from packager.bundle import layout
from packager.util.schemas import validator
from tests.site.install_support import (
    Bundles,
    built_bundles,
    copy_prefix,
    install_cli,
    log_lines,
    store_is_sound,
    tree_files,
)
from tests.support.cli import cli

V1 = Path(layout.SITE_BUNDLES_DIR) / "many" / "1.0.0"
V2 = Path(layout.SITE_BUNDLES_DIR) / "many" / "2.0.0"
SHARED = "model/shards/d9/part-0199.bin"  # the same in 1.0.0 and 2.0.0 (one blob)
OWN = "model/shards/d0/part-0000.bin"  # differs between them
META = ".airgap/sbom.cdx.json"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    return built_bundles(tmp_path_factory)


@pytest.fixture(scope="module")
def template(bundles: Bundles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("repair") / "site"
    for b in (bundles.many1, bundles.many2):
        r = install_cli(b, prefix, bundles.pub, "--no-probe")
        assert r.returncode == 0, r.stdout + r.stderr
    return prefix


@pytest.fixture
def site(template: Path, tmp_path: Path) -> Path:
    prefix = tmp_path / "site"
    copy_prefix(template, prefix)
    return prefix


def _writable(path: Path) -> None:
    """Make ``path``'s folders (up to the prefix's bundles/) and itself writable, as an
    operator with a stray `chmod -R u+w` would."""
    for p in [path, *path.parents]:
        if p.name in (layout.SITE_BUNDLES_DIR, "sha256"):
            break
        if p.exists() and not p.is_symlink():
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def _blob(prefix: Path, rel: str) -> Path:
    h = hashlib.sha256((prefix / V1 / rel).read_bytes()).hexdigest()
    return prefix / layout.SITE_BLOBS_DIR / h


def _append(prefix: Path, rel: str, version: Path = V1) -> None:
    f = prefix / version / rel
    _writable(f)
    with f.open("ab") as fh:  # in place: the store's blob (the same inode) changes too
        fh.write(b"stray edit\n")


def _symlink(prefix: Path, rel: str) -> None:
    f = prefix / V1 / rel
    _writable(f)
    f.unlink()
    f.symlink_to("/etc/hostname")


def _folder(prefix: Path, rel: str) -> None:
    f = prefix / V1 / rel
    _writable(f)
    f.unlink()
    f.mkdir()
    (f / "inside").write_text("x")


def _store_link(prefix: Path, rel: str) -> None:
    b = _blob(prefix, rel)
    b.unlink()
    b.symlink_to("/etc/hostname")


def _store_gone_and_file_edited(prefix: Path, rel: str) -> None:
    b = _blob(prefix, rel)
    b.unlink()
    f = prefix / V1 / rel
    _writable(f)
    f.write_bytes(b"other content\n")


def _chmod(prefix: Path, rel: str) -> None:
    (prefix / V1 / rel).chmod(0o664)
    (prefix / V1 / rel).parent.chmod(0o775)


def _delete(prefix: Path, rel: str) -> None:
    f = prefix / V1 / rel
    _writable(f)
    f.unlink()


def _descriptor(prefix: Path, rel: str) -> None:
    f = prefix / V1 / layout.installed_meta_path(layout.BUNDLE_JSON)
    _writable(f)
    f.write_bytes(f.read_bytes().replace(b'"many"', b'"manx"', 1))


def _version_folder(prefix: Path, rel: str) -> None:
    v = prefix / V1
    for p in [v, *v.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(v)


@dataclass(frozen=True)
class Case:
    damage: Callable[[Path, str], None]
    path: str
    problem: str  # in the repaired (or not repaired) row of that path
    needs_bundle: bool  # the site holds no intact copy
    source: str = "store"
    store: bool = False  # the store's blob is what is repaired (by its hex)


CASES = {
    "appended in place (store blob too)": Case(_append, OWN, "bytes, installed", True),
    "bundle and store both given the file": Case(_append, "model/config.json", "bytes", True),
    "appended, a blob both versions share": Case(_append, SHARED, "bytes, installed", True),
    "replaced by a symlink": Case(_symlink, OWN, "a symbolic link now", False),
    "replaced by a folder": Case(_folder, "model/config.json", "a folder now", False),
    "deleted": Case(_delete, SHARED, "missing", False),
    "made writable": Case(_chmod, OWN, "mode 0664, installed 0444", False, ""),
    "store blob replaced by a link": Case(
        _store_link, OWN, "a symbolic link now", False, "installed copy", store=True
    ),
    "store blob gone, file rewritten": Case(
        _store_gone_and_file_edited, OWN, "bytes, installed", True
    ),
    "a covered .airgap file appended": Case(_append, META, "bytes, installed", True, "bundle"),
    "bundle.json edited": Case(_descriptor, ".airgap/bundle.json", "edited (now", True, "bundle"),
    "the version folder removed": Case(_version_folder, OWN, "missing", True, "store"),
}


def _repair(prefix: Path, *args: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    r = cli("repair", "--prefix", str(prefix), "--json", *args)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    doc = json.loads(r.stdout)
    validator("repair").validate(doc)
    return r.returncode, doc, r.stderr


def _audit(prefix: Path) -> tuple[int, str]:
    r = cli("audit", "--site", str(prefix))
    return r.returncode, r.stdout


def _rows(doc: dict, which: str) -> dict[str, dict]:  # type: ignore[type-arg]
    return {r["path"]: r for v in doc["versions"] if v["version"] == "1.0.0" for r in v[which]}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_repair_after_damage(case: Case, site: Path, bundles: Bundles) -> None:
    before = tree_files(site / V2)
    case.damage(site, case.path)
    assert _audit(site)[0] == 1
    code, doc, _ = _repair(site)
    if case.needs_bundle:
        assert code == 1 and doc["verdict"] == "incomplete"
        rows = _rows(doc, "unrepaired")
        row = rows.get(case.path) or rows[".airgap/bundle.json"]  # all of it, when that is gone
        assert "--bundle" in row["hint"]
        text = cli("repair", "--prefix", str(site))
        assert text.returncode == 1 and "--bundle" in text.stdout and "NOT REPAIRED" in text.stdout
        assert _audit(site)[0] == 1  # nothing was taken from an unverified source
        code, doc, _ = _repair(site, "--bundle", str(bundles.many1), "--key", str(bundles.pub))
    assert code == 0, doc
    assert doc["verdict"] == "repaired"
    rows = _rows(doc, "repaired")
    if case.store:
        assert len(doc["store"]) == 1, doc
        rows = {case.path: doc["store"][0]}
    assert case.path in rows, doc
    assert case.problem in rows[case.path]["problem"]
    if case.source:
        assert rows[case.path]["source"] == case.source
    code, out = _audit(site)
    assert code == 0, out
    store_is_sound(site)
    assert tree_files(site / V2) == before  # the other version, sharing blobs, is intact too
    assert [e["action"] for e in log_lines(site)][-1] == "repair"
    for p in (site / V1).rglob("*"):  # read-only again, no link left
        assert not p.is_symlink()
        assert p.stat().st_mode & 0o222 == 0, p
    again = _repair(site)
    assert again[0] == 0 and again[1]["verdict"] == "intact"


def test_intact_is_exit_0_and_writes_nothing(site: Path) -> None:
    log = (site / layout.SITE_AUDIT_LOG).read_bytes()
    code, doc, _ = _repair(site)
    assert (code, doc["verdict"]) == (0, "intact")
    assert [v["files"] > 200 for v in doc["versions"]] == [True, True]
    assert (site / layout.SITE_AUDIT_LOG).read_bytes() == log
    r = cli("repair", "--prefix", str(site), "many")
    assert r.returncode == 0 and "nothing to repair" in r.stdout


def test_a_shared_blob_is_restored_for_both_versions(site: Path, bundles: Bundles) -> None:
    _append(site, SHARED)  # the one inode of both versions and the store
    code, doc, _ = _repair(site, "--bundle", str(bundles.many2), "--key", str(bundles.pub))
    assert code == 0, doc  # 2.0.0's bundle holds the shared blob: it serves 1.0.0 too
    fixed = {(v["version"], r["path"]) for v in doc["versions"] for r in v["repaired"]}
    assert {("1.0.0", SHARED), ("2.0.0", SHARED)} <= fixed
    assert [r["source"] for r in doc["store"]] == ["bundle"]
    assert _audit(site)[0] == 0
    a, b = (os.stat(site / v / SHARED) for v in (V1, V2))
    assert (a.st_ino, a.st_nlink) == (b.st_ino, 3)  # one inode again: both versions and the store


def test_the_descriptor_comes_only_from_a_bundle_of_the_installed_digest(
    site: Path, bundles: Bundles
) -> None:
    _descriptor(site, "")
    code, doc, _ = _repair(site, "--bundle", str(bundles.many2), "--key", str(bundles.pub))
    assert code == 1
    row = _rows(doc, "unrepaired")[".airgap/bundle.json"]
    assert "the bundle given is" in row["problem"]
    assert _audit(site)[0] == 1


def test_a_bundle_that_does_not_verify_changes_nothing(site: Path, bundles: Bundles) -> None:
    _append(site, OWN)
    files = tree_files(site)
    r = cli(
        "repair", "--prefix", str(site), "--bundle", str(bundles.many1),
        "--key", str(bundles.other_pub),
    )  # fmt: skip
    assert r.returncode == 1 and "did not verify, nothing was repaired" in r.stderr
    assert tree_files(site) == files


def test_an_edited_receipt_is_not_believed(site: Path, bundles: Bundles) -> None:
    receipt = site / layout.SITE_RECEIPTS_DIR / "many" / "1.0.0.json"
    doc = json.loads(receipt.read_text())
    doc["digest"] = "sha256:" + "0" * 64
    receipt.write_text(json.dumps(doc))
    code, out, _ = _repair(site, "--bundle", str(bundles.many1), "--key", str(bundles.pub))
    assert code == 1
    assert "the receipt was edited" in _rows(out, "unrepaired")[".airgap/bundle.json"]["problem"]


def test_extra_files_are_named_and_left(site: Path) -> None:
    extra = site / V1 / "model" / "notes.txt"
    _writable(extra.parent)
    extra.write_text("mine")
    code, doc, _ = _repair(site)
    assert code == 1 and doc["versions"][0]["extra"] == ["model/notes.txt"]
    assert extra.read_text() == "mine"
    assert doc["versions"][0]["repaired"] == [
        {"path": p, "problem": "mode 0755, installed 0555", "fix": "mode", "source": None,
         "hint": None}
        for p in (".", "model/")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["nosuch"], 2, "nosuch is not installed"),
        (["a/b"], 2, "holds a slash"),
        (["../x"], 2, "starts with a dot"),
        (["--key", "PUB"], 2, "give --bundle too"),
        (["--bundle", "b.tar"], 2, "give --trust POLICY or --key PUB"),
    ],
)
def test_usage_errors(site: Path, bundles: Bundles, args: list[str], code: int, says: str) -> None:
    r = cli("repair", "--prefix", str(site), *(str(bundles.pub) if a == "PUB" else a for a in args))
    assert r.returncode == code, r.stdout + r.stderr
    assert says in r.stderr
