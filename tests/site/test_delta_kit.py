"""A delta leaves out the site kit's wheels its base has installed (about 20 MB, most of a delta
whose model changed little), and the result is still exactly the full version: real bundles
built with the real site kit (`--site-kit`: pip downloads the wheels once per session, or keeps
them in AIRGAP_TEST_KIT_CACHE), Ed25519 signatures and SOURCE_DATE_EPOCH so that a full and a
delta build of one version sign the same bytes. The launcher (`sh airgap/site/airgap DELTA ...`)
runs on this host's python3 and openssl (tests/e2e/test_site_kit.py runs it on Python 3.9)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from packager.bundle import layout
from packager.bundle.have import parse_have_list
from tests.site.install_support import (
    MANY,
    current,
    descriptor_of,
    many_weights,
    ok,
    receipt,
    run,
    tree_files,
)
from tests.support.projects import make_key

EPOCH = "1767225600"  # 2026-01-01

pytestmark = pytest.mark.slow  # the site kit: a pip download on a fresh cache, 20 MB bundles


@dataclass(frozen=True)
class Kit:
    v1: Path  # many 1.0.0 with the site kit
    v2: Path  # many 2.0.0 with the site kit (the same kit: one airgap source)
    delta: Path  # 2.0.0 from 1.0.0
    v1_bare: Path  # many 1.0.0 built --no-site-kit
    v2_manifest: Path
    pub: Path
    priv: Path
    cache: Path


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory, kit_cache: Path) -> Kit:
    base = tmp_path_factory.mktemp("delta-kit")
    cache = kit_cache  # the session's: the kit wheels are downloaded once
    (base / "keys").mkdir()
    priv, pub, _ = make_key(base / "keys", "k", "ed25519")

    def build(manifest: Path, out: Path, *args: str) -> None:
        ok(run("build", str(manifest), "--out", str(out), "--key", str(priv), *args,
                SOURCE_DATE_EPOCH=EPOCH, AIRGAP_CACHE_DIR=str(cache), timeout=1800))  # fmt: skip

    for version, seed in (("1.0.0", 1), ("2.0.0", 2)):
        d = base / version
        many_weights(d / "weights", seed, changed=0.25)
        (d / "m.yaml").write_text(MANY.format(version=version))
        build(d / "m.yaml", base / "out", "--site-kit")
    build(base / "1.0.0" / "m.yaml", base / "bare", "--no-site-kit")
    v1 = base / "out" / "many-1.0.0.airgap.tar"
    build(base / "2.0.0" / "m.yaml", base / "delta", "--site-kit", "--base", str(v1))
    return Kit(
        v1,
        base / "out" / "many-2.0.0.airgap.tar",
        base / "delta" / "many-2.0.0.delta-from-1.0.0.airgap.tar",
        base / "bare" / "many-1.0.0.airgap.tar",
        base / "2.0.0" / "m.yaml",
        pub,
        priv,
        cache,
    )


def _members(tar: Path) -> set[str]:
    with tarfile.open(tar) as t:
        return {m.name for m in t.getmembers() if m.isfile()}


def _wheels(tar: Path) -> set[str]:
    return {f["path"] for f in descriptor_of(tar)["files"] if layout.is_kit_wheel(f["path"])}


def _install(bundle: Path, prefix: Path, pub: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run("install", str(bundle), "--prefix", str(prefix), "--key", str(pub), "--no-probe",
               *args)  # fmt: skip


def test_the_delta_leaves_out_the_kit_wheels_and_keeps_the_launcher(kit: Kit) -> None:
    wheels = _wheels(kit.v2)
    assert len(wheels) > 10
    doc = descriptor_of(kit.delta)
    assert set(doc["delta"]["not_carried_files"]) == wheels
    members = _members(kit.delta)
    assert not members & wheels
    assert {layout.SITE_LAUNCHER, layout.SITE_KIT_INDEX} <= members
    full, delta = kit.v2.stat().st_size, kit.delta.stat().st_size
    kit_bytes = sum(f["size"] for f in doc["files"] if f["path"] in wheels)
    assert kit_bytes > 10_000_000 and full - delta > kit_bytes, (delta, full, kit_bytes)
    r = ok(run("inspect", str(kit.delta), "--json"))
    got = json.loads(r.stdout)["delta"]
    assert got["not_carried_files"] == len(wheels)
    assert got["not_carried_files_bytes"] == sum(
        f["size"] for f in doc["files"] if f["path"] in wheels
    )


def test_a_base_without_the_kit_gets_all_of_it(kit: Kit, tmp_path: Path) -> None:
    ok(run("build", str(kit.v2_manifest), "--out", str(tmp_path), "--key", str(kit.priv),
            "--site-kit", "--base", str(kit.v1_bare), SOURCE_DATE_EPOCH=EPOCH,
            AIRGAP_CACHE_DIR=str(kit.cache), timeout=1800))  # fmt: skip
    delta = tmp_path / "many-2.0.0.delta-from-1.0.0.airgap.tar"
    assert "not_carried_files" not in descriptor_of(delta)["delta"]
    assert _wheels(kit.v2) <= _members(delta)


def test_verify_names_the_wheels_its_base_must_supply_and_checks_them_there(
    kit: Kit, tmp_path: Path
) -> None:
    r = run("verify", str(kit.delta), "--key", str(kit.pub))
    assert r.returncode == 1
    assert f"and {len(_wheels(kit.v2))} site-kit wheel(s)" in r.stdout
    assert "--base OLD or --prefix DIR" in r.stdout
    r = ok(run("verify", str(kit.delta), "--key", str(kit.pub), "--base", str(kit.v1), "--json"))
    assert json.loads(r.stdout)["delta"]["not_carried_files"] == len(_wheels(kit.v2))
    site = tmp_path / "site"
    ok(_install(kit.v1, site, kit.pub))
    ok(run("verify", str(kit.delta), "--key", str(kit.pub), "--prefix", str(site)))
    # a base bundle without the kit cannot supply it
    r = run("verify", str(kit.delta), "--key", str(kit.pub), "--base", str(kit.v1_bare))
    assert r.returncode == 1 and "site-kit wheel(s)" in r.stdout


def test_v1_then_the_delta_is_exactly_v2_installed_full(kit: Kit, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for site in (a, b):
        ok(_install(kit.v1, site, kit.pub))
    ok(_install(kit.delta, a, kit.pub))
    ok(_install(kit.v2, b, kit.pub))
    va = a / layout.SITE_BUNDLES_DIR / "many" / "2.0.0"
    vb = b / layout.SITE_BUNDLES_DIR / "many" / "2.0.0"
    assert tree_files(va) == tree_files(vb)
    assert len(list((va / ".airgap" / "site" / "wheels").iterdir())) == len(_wheels(kit.v2))
    ra, rb = receipt(a, "many", "2.0.0"), receipt(b, "many", "2.0.0")
    assert {k: v for k, v in ra.items() if k != "installed"} == {
        k: v for k, v in rb.items() if k != "installed"
    }
    assert run("audit", "--site", str(a)).returncode == 0
    assert current(a, "many") == "2.0.0"


def test_a_have_list_names_the_kit_and_its_delta_leaves_it_out(kit: Kit, tmp_path: Path) -> None:
    site = tmp_path / "site"
    ok(_install(kit.v1, site, kit.pub))
    r = ok(run("list", "--prefix", str(site), "--have"))
    have = parse_have_list(r.stdout.encode(), "stdout")
    v1 = descriptor_of(kit.v1)
    assert {(f.sha256, f.size) for f in have.kit} == {
        (f["sha256"], f["size"]) for f in v1["files"] if layout.is_kit_wheel(f["path"])
    }
    assert str(site) not in r.stdout and '"path"' not in r.stdout  # still no paths of the site
    (tmp_path / "have.json").write_text(r.stdout)
    out = tmp_path / "out"
    ok(run("build", str(kit.v2_manifest), "--out", str(out), "--key", str(kit.priv),
            "--site-kit", "--base", str(tmp_path / "have.json"), SOURCE_DATE_EPOCH=EPOCH,
            AIRGAP_CACHE_DIR=str(kit.cache), timeout=1800))  # fmt: skip
    delta = out / "many-2.0.0.delta-from-1.0.0.airgap.tar"
    assert _members(delta) == _members(kit.delta)
    ok(_install(delta, site, kit.pub))


def test_a_changed_installed_wheel_is_caught_and_nothing_is_written(
    kit: Kit, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    ok(_install(kit.v1, site, kit.pub))
    wheels = site / layout.SITE_BUNDLES_DIR / "many" / "1.0.0" / ".airgap" / "site" / "wheels"
    victim = sorted(wheels.iterdir())[0]
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1  # the same size: only hashing finds it
    victim.write_bytes(bytes(data))
    before = sorted(str(p) for p in site.rglob("*") if "audit.log" not in p.name)
    r = run("verify", str(kit.delta), "--key", str(kit.pub), "--prefix", str(site))
    assert r.returncode == 1 and "damaged or tampered" in r.stdout
    assert f"{site}/bundles/many/1.0.0/.airgap/site/wheels/{victim.name}" in r.stdout  # where
    r = _install(kit.delta, site, kit.pub)
    assert r.returncode == 1 and "nothing was installed" in r.stdout + r.stderr
    assert sorted(str(p) for p in site.rglob("*") if "audit.log" not in p.name) == before
    assert current(site, "many") == "1.0.0"


def test_a_site_that_never_held_the_kit_is_refused_naming_the_base(
    kit: Kit, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    ok(_install(kit.v1_bare, site, kit.pub))  # the same blobs, no kit
    r = _install(kit.delta, site, kit.pub)
    assert r.returncode == 1
    assert "a delta from many 1.0.0" in r.stdout + r.stderr
    assert "site-kit wheel(s)" in r.stdout + r.stderr and "nothing was installed" in r.stderr


def _launch(work: Path, bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``sh airgap/site/airgap BUNDLE ...`` from the launcher the bundle carries."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    ok(subprocess.run(["tar", "-xf", str(bundle), layout.SITE_DIR], cwd=work, capture_output=True,
                       text=True))  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRGAP_")}
    env["XDG_CACHE_HOME"] = str(work / "cache")
    return subprocess.run(["sh", layout.SITE_LAUNCHER, str(bundle), *args], cwd=work,
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip


def test_the_launcher_installs_a_delta_with_the_wheels_the_site_keeps(
    kit: Kit, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    key = ["--key", str(kit.pub)]
    ok(_launch(tmp_path / "w1", kit.v1, "install", "--prefix", str(site), *key, "--no-probe"))
    shutil.rmtree(site / layout.SITE_KIT_INSTALL_DIR)  # as if the kit were new to the site
    r = _launch(tmp_path / "w2", kit.delta, "install", "--prefix", str(site), *key, "--no-probe")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"({len(_wheels(kit.v2))} read from versions installed in {site})" in r.stderr
    assert current(site, "many") == "2.0.0"
    # a site that keeps none of them, with no kit unpacked: told what is missing, nothing run
    empty = tmp_path / "empty"
    r = _launch(tmp_path / "w3", kit.delta, "install", "--prefix", str(empty), *key)
    assert r.returncode == 1
    assert "is a delta from many 1.0.0: it leaves out" in r.stderr
    assert "install the full bundle" in r.stderr
    assert not empty.exists()


def _with_delta_record(bundle: Path, out: Path, record: object) -> Path:
    """A copy of ``bundle`` whose bundle.json has ``record`` as its (unsigned) delta record."""
    doc = descriptor_of(bundle)
    doc["delta"] = record
    raw = (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()
    with tarfile.open(bundle) as src, tarfile.open(out, "w") as dst:
        for m in src.getmembers():
            if m.name == layout.BUNDLE_JSON:
                m.size = len(raw)
                dst.addfile(m, io.BytesIO(raw))
            else:
                dst.addfile(m, src.extractfile(m) if m.isfile() else None)
    return out


@pytest.mark.parametrize(
    "record", ["x", {"base": "x", "not_carried": [], "not_carried_files": 5}, {"base": None}]
)
def test_the_launcher_takes_a_delta_record_of_any_shape_as_a_hint_only(
    kit: Kit, tmp_path: Path, record: object
) -> None:
    """The record is outside the signature: a record of another shape is no kit file's
    source, and the launcher says what is missing instead of stopping on it."""
    site = tmp_path / "site"
    key = ["--key", str(kit.pub)]
    ok(_launch(tmp_path / "w1", kit.v1, "install", "--prefix", str(site), *key, "--no-probe"))
    bad = _with_delta_record(kit.delta, tmp_path / "odd.airgap.tar", record)
    r = _launch(tmp_path / "w2", bad, "install", "--prefix", str(site), *key, "--no-probe")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "stopped:" not in r.stderr and "Traceback" not in r.stderr
    assert "that airgap/bundle.json lists is missing" in r.stderr  # its wheels are not there
    assert current(site, "many") == "1.0.0"
