"""Two targets, one site: the bundles of one multi-target manifest (same name and version) install
side by side as NAME+TARGET, each with its own current version, and the store keeps what they
share (the weights) once. Commands that take a NAME say which target when it is ambiguous."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from packager.bundle import layout
from packager.site.rules import UnitChoice, pick_unit
from tests.site.install_support import env, install_cli, many_weights, receipt
from tests.support.cli import cli
from tests.support.projects import make_key

DUO = """\
apiVersion: airgap/v1
kind: Bundle
metadata: {{name: duo, version: {version}}}
model:
  name: org/duo
  source: {{path: ./weights}}
  format: safetensors
  precision: bf16
targets:
  ascend:
    platform: linux/arm64
    accelerator: {{vendor: huawei, chips: [ascend910b3], count: 1}}
    stack: {{cann: ">=8.0.0", driver: ">=24.1.0"}}
    runtime:
      files: [{{source: ./conf/a.conf, dest: conf/serving.conf}}]
  cuda:
    platform: linux/amd64
    accelerator: {{vendor: nvidia, chips: [h100], count: 1}}
    stack: {{cuda: "12.4", driver: ">=550.54.14"}}
    runtime:
      files: [{{source: ./conf/b.conf, dest: conf/serving.conf}}]
"""

# ============================================================================ pure: which unit


@pytest.mark.parametrize(
    ("name", "target", "units", "want"),
    [
        ("duo", None, ["duo"], "duo"),  # a single-target bundle: its name
        ("duo", None, ["duo+cuda"], "duo+cuda"),  # one target installed: no need to say it
        ("duo", "cuda", ["duo+cuda", "duo+ascend"], "duo+cuda"),
        ("duo+cuda", None, ["duo+cuda", "duo+ascend"], "duo+cuda"),
        ("duo", "cuda", [], "duo+cuda"),  # not installed: the caller says so, by that name
        ("duo", None, [], "duo"),
        ("duo", None, ["duo", "duo+cuda"], "duo"),  # the name itself wins
        ("du", None, ["duo+cuda"], "du"),  # a prefix of a name is not that name
        ("duo", None, ["duo-x+cuda", "duo-x+ascend"], "duo"),
    ],
)
def test_pick_unit(name: str, target: str | None, units: list[str], want: str) -> None:
    assert pick_unit(name, target, units) == want


@pytest.mark.parametrize(
    ("name", "target", "units", "says"),
    [
        ("duo", None, ["duo+cuda", "duo+ascend"], "installed for 2 targets (ascend, cuda)"),
        ("duo+cuda", "cuda", ["duo+cuda"], "names a target already"),
    ],
)
def test_pick_unit_refuses(name: str, target: str | None, units: list[str], says: str) -> None:
    with pytest.raises(UnitChoice, match=r"\(|names") as exc:
        pick_unit(name, target, units)
    assert says in exc.value.message


# ============================================================================ a real site


@pytest.fixture(scope="module")
def duo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("duo")
    priv, pub, _ = make_key(base, "duo")
    many_weights(base / "weights", 1)
    (base / "conf").mkdir()
    (base / "conf" / "a.conf").write_text("ascend\n")
    (base / "conf" / "b.conf").write_text("cuda\n")
    out: dict[str, Path] = {"pub": pub}
    for version in ("1.0.0", "1.1.0"):
        (base / f"m-{version}.yaml").write_text(DUO.format(version=version))
        r = subprocess.run(
            [sys.executable, "-m", "packager", "build", str(base / f"m-{version}.yaml"),
             "--key", str(priv), "--out", str(base / "out")],
            capture_output=True, text=True, env=env(AIRGAP_CACHE_DIR=str(base / "cache")),
            timeout=300,
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        for t in ("ascend", "cuda"):
            out[f"{t}-{version}"] = base / "out" / f"duo-{version}-{t}.airgap.tar"
    return out


@pytest.fixture
def site(duo: dict[str, Path], tmp_path: Path) -> Path:
    prefix = tmp_path / "site"
    for t in ("ascend", "cuda"):
        r = install_cli(duo[f"{t}-1.0.0"], prefix, duo["pub"], "--no-probe", "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout)["installed_as"] == f"duo+{t}"
    return prefix


def test_both_targets_install_into_one_prefix(site: Path, duo: dict[str, Path]) -> None:
    for t in ("ascend", "cuda"):
        r = receipt(site, f"duo+{t}", "1.0.0")
        assert (r["name"], r["version"], r["target"]) == ("duo", "1.0.0", t)
        conf = site / layout.SITE_BUNDLES_DIR / f"duo+{t}" / "current" / "conf" / "serving.conf"
        assert conf.read_text() == f"{t}\n"
    # the weights once: every weight file of both targets is one inode of the store
    a, c = (
        site / layout.SITE_BUNDLES_DIR / f"duo+{t}" / "1.0.0" / "model" for t in ("ascend", "cuda")
    )
    weights = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(weights) > 200
    for w in weights:
        if w.name == "model.sig":
            continue
        assert os.stat(a / w).st_ino == os.stat(c / w).st_ino, w
    store = list((site / layout.SITE_BLOBS_DIR).iterdir())
    blobs = {
        f["sha256"]
        for t in ("ascend", "cuda")
        for f in receipt(site, f"duo+{t}", "1.0.0")["files"]
        if f["blob"]
    }
    assert len(store) == len(blobs)  # the two runtime files differ, nothing else is twice
    one = {f["sha256"] for f in receipt(site, "duo+cuda", "1.0.0")["files"] if f["blob"]}
    assert len(blobs - one) == 1
    # the audit sees both, intact
    r = cli("audit", "--site", str(site), "--json")
    assert r.returncode == 0, r.stdout
    doc = json.loads(r.stdout)
    assert {(b["name"], b["ok"]) for b in doc["bundles"]} == {
        ("duo+ascend", True),
        ("duo+cuda", True),
    }
    listing = json.loads(cli("list", "--prefix", str(site), "--json").stdout)
    assert json.dumps(listing).count('"target"') >= 2


def test_each_target_has_its_own_current_and_rollback(site: Path, duo: dict[str, Path]) -> None:
    r = install_cli(duo["cuda-1.1.0"], site, duo["pub"], "--no-probe")
    assert r.returncode == 0, r.stdout + r.stderr
    link = site / layout.SITE_BUNDLES_DIR
    assert os.readlink(link / "duo+cuda" / "current") == "1.1.0"
    assert os.readlink(link / "duo+ascend" / "current") == "1.0.0"
    r = cli("rollback", "duo", "--prefix", str(site))
    assert r.returncode == 2 and "installed for 2 targets (ascend, cuda)" in r.stderr
    assert "--target ascend" in r.stderr
    r = cli("rollback", "duo", "--prefix", str(site), "--target", "cuda")
    assert r.returncode == 0, r.stderr
    assert os.readlink(link / "duo+cuda" / "current") == "1.0.0"
    # anti-rollback and "same version, other content" are per target
    r = install_cli(duo["ascend-1.1.0"], site, duo["pub"], "--no-probe")
    assert r.returncode == 0, r.stdout + r.stderr


def test_uninstall_and_repair_name_the_target(site: Path) -> None:
    r = cli("uninstall", "duo", "--prefix", str(site))
    assert r.returncode == 2 and "say which one" in r.stderr
    assert (site / layout.SITE_BUNDLES_DIR / "duo+cuda").is_dir()  # nothing removed
    r = cli("repair", "--prefix", str(site), "duo+ascend")
    assert r.returncode == 0 and "intact duo+ascend 1.0.0" in r.stdout
    r = cli("uninstall", "duo+cuda", "--prefix", str(site))
    assert r.returncode == 0, r.stderr
    assert not (site / layout.SITE_BUNDLES_DIR / "duo+cuda").exists()
    r = cli("repair", "--prefix", str(site), "duo")  # one target left: no need to say it
    assert r.returncode == 0 and "intact duo+ascend 1.0.0" in r.stdout
    assert cli("audit", "--site", str(site)).returncode == 0


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (["--installed", "duo", "--target", "cuda"], ["--installed", "duo+cuda"]),
        (["--installed=duo", "--target=ascend", "--json"], ["--installed", "duo+ascend", "--json"]),
        (["--installed", "duo+cuda"], ["--installed", "duo+cuda"]),
        (["--bundle", "x.tar", "--json"], ["--bundle", "x.tar", "--json"]),
    ],
)
def test_probe_installed_names_the_target(site: Path, args: list[str], want: list[str]) -> None:
    from packager.site.manage import probe_args

    got = probe_args([*args, "--prefix", str(site)])
    assert got == [*want, "--prefix", str(site)]


def test_probe_of_an_ambiguous_name_is_a_usage_error(site: Path) -> None:
    r = cli("probe", "--installed", "duo", "--prefix", str(site))
    assert r.returncode == 2 and "installed for 2 targets" in r.stderr
