"""Two targets, one site: the bundles of one multi-target manifest (same name and version) install
side by side as NAME+TARGET, each with its own current version, and the store keeps what they
share (the weights) once. Commands that take a NAME say which target when it is ambiguous."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from packager.bundle import layout
from packager.site.rules import UnitChoice, pick_unit
from packager.util.schemas import validator
from tests.site.install_support import env, install_cli, many_weights, receipt
from tests.support.cli import cli
from tests.support.projects import make_key
from tests.support.reports import checked

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


TWO = {"ascend": ("huawei", "linux/arm64"), "cuda": ("nvidia", "linux/amd64")}


@pytest.mark.parametrize(
    ("targets", "vendors", "platform", "want"),
    [
        (TWO, {"nvidia"}, "linux/amd64", "cuda"),
        (TWO, {"huawei"}, "linux/arm64", "ascend"),
        (TWO, {"huawei"}, None, "ascend"),  # platform unknown: the vendor decides
        (TWO, set(), "linux/amd64", None),  # no accelerator: ask
        (TWO, {"nvidia"}, "linux/arm64", None),  # a GPU on arm64: no target for it
        (TWO, {"nvidia", "huawei"}, None, None),  # both: ask
        ({"a": ("nvidia", "linux/amd64"), "b": ("nvidia", "linux/amd64")}, {"nvidia"}, None, None),
        ({"cpu": ("none", "linux/amd64"), **TWO}, set(), "linux/amd64", None),
    ],
)
def test_match_host(
    targets: dict[str, tuple[str, str]], vendors: set[str], platform: str | None, want: str | None
) -> None:
    from packager.bundle.combined import match_host

    assert match_host(targets, vendors, platform) == want


# ============================================================================ a real site


@pytest.fixture(scope="module")
def duo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("duo")
    priv, pub, _ = make_key(base, "duo")
    many_weights(base / "weights", 1)
    (base / "conf").mkdir()
    (base / "conf" / "a.conf").write_text("ascend\n")
    (base / "conf" / "b.conf").write_text("cuda\n")
    out: dict[str, Path] = {"pub": pub, "priv": priv, "base": base}

    def run(*args: str) -> str:
        r = subprocess.run(
            [sys.executable, "-m", "packager", *args],
            capture_output=True, text=True, env=env(AIRGAP_CACHE_DIR=str(base / "cache")),
            timeout=300,
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        return checked(args, r).stdout  # a --json report keeps its schema

    for version in ("1.0.0", "1.1.0"):
        (base / f"m-{version}.yaml").write_text(DUO.format(version=version))
        m = str(base / f"m-{version}.yaml")
        run("lock", m)  # then every build is from that lock
        built = run("build", m, "--locked", "--key", str(priv), "--out", str(base / "out"),
                    "--json")  # fmt: skip
        (base / f"targets-{version}.json").write_text(built)
        for t in ("ascend", "cuda"):
            out[f"{t}-{version}"] = base / "out" / f"duo-{version}-{t}.airgap.tar"
    # from the same lock: each target's part is the bundle built alone
    doc = run(
        "build", str(base / "m-1.0.0.yaml"), "--key", str(priv), "--combined",  # the lock
        "--json", "--out", str(base / "combined"),  # beside it is used, as with --locked
    )  # fmt: skip
    out["combined"] = base / "combined" / "duo-1.0.0-combined.airgap.tar"
    out["combined_json"] = base / "combined.json"
    out["combined_json"].write_text(doc)
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
    audit = cli("audit", "--site", str(site), "--json")
    assert audit.returncode == 0, audit.stdout
    doc = json.loads(audit.stdout)
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
    r = cli("uninstall", "duo", "--prefix", str(site), "--all")
    assert r.returncode == 2 and "say which one" in r.stderr
    assert (site / layout.SITE_BUNDLES_DIR / "duo+cuda").is_dir()  # nothing removed
    r = cli("repair", "--prefix", str(site), "duo+ascend")
    assert r.returncode == 0 and "intact duo+ascend 1.0.0" in r.stdout
    r = cli("uninstall", "duo+cuda", "--prefix", str(site), "--all")
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


# ============================================================================ one combined bundle


def test_a_combined_bundle_holds_each_target_as_built_alone(duo: dict[str, Path]) -> None:
    doc = json.loads(duo["combined_json"].read_text())
    (built,) = doc["bundles"]
    assert built["targets"] == ["ascend", "cuda"]
    # the lock beside the manifest it was built from, as a build of one target reports it
    assert doc["lock"] == {"path": str(duo["combined"].parents[1] / "m-1.0.0.lock.json"),
                           "written": False}  # fmt: skip
    for t in ("ascend", "cuda"):  # each target's signed bundle.json is the one built alone
        r = cli("verify", str(duo[f"{t}-1.0.0"]), "--key", str(duo["pub"]), "--json")
        alone = json.loads(r.stdout)["digest"]
        assert built["digests"][t] == alone
    # what it does not store twice: each target's own dedup, and what the two share
    alone = json.loads((duo["base"] / "targets-1.0.0.json").read_text())["bundles"]
    assert (
        len(alone) == 2
        and built["dedup_saved_bytes"]
        == sum(b["dedup_saved_bytes"] + b["stored_bytes"] for b in alone) - built["stored_bytes"]
    )
    assert built["dedup_saved_bytes"] > built["stored_bytes"] // 2  # the weights, once
    # about one copy of the weights: far less than the two single-target bundles together
    one = duo["ascend-1.0.0"].stat().st_size
    size = duo["combined"].stat().st_size
    assert one < size < one * 1.3, (one, size)
    r = cli("verify", str(duo["combined"]), "--key", str(duo["pub"]), "--json")
    assert r.returncode == 0, r.stdout
    v = json.loads(r.stdout)
    assert v["targets"] == ["ascend", "cuda"] and v["ok"]
    validator("verify-report").validate(v)  # a combined bundle's report, targets and all


def test_install_both_targets_of_a_combined_bundle(duo: dict[str, Path], tmp_path: Path) -> None:
    prefix = tmp_path / "site"
    r = install_cli(duo["combined"], prefix, duo["pub"], "--no-probe")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "combined bundle of 2 targets (ascend, cuda): say which one" in r.stderr
    assert not prefix.exists()  # nothing written
    for t in ("ascend", "cuda"):
        r = install_cli(duo["combined"], prefix, duo["pub"], "--no-probe", "--target", t)
        assert r.returncode == 0, r.stdout + r.stderr
        assert receipt(prefix, f"duo+{t}", "1.0.0")["target"] == t
    r = install_cli(duo["combined"], prefix, duo["pub"], "--no-probe", "--target", "rocm")
    assert r.returncode == 2 and "no target 'rocm'" in r.stderr
    assert cli("audit", "--site", str(prefix)).returncode == 0
    store = len(list((prefix / layout.SITE_BLOBS_DIR).iterdir()))
    blobs = {
        f["sha256"]
        for t in ("ascend", "cuda")
        for f in receipt(prefix, f"duo+{t}", "1.0.0")["files"]
        if f["blob"]
    }
    assert store == len(blobs)
    # the same content as from the single-target bundle: installing that is a no-op
    r = install_cli(duo["cuda-1.0.0"], prefix, duo["pub"], "--no-probe", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["action"] == "unchanged", r.stdout


def test_a_single_target_bundle_for_another_target_is_refused(
    duo: dict[str, Path], tmp_path: Path
) -> None:
    r = install_cli(
        duo["cuda-1.0.0"], tmp_path / "s", duo["pub"], "--no-probe", "--target", "ascend"
    )
    assert r.returncode == 1 and "for target cuda, not ascend" in r.stderr
    assert not (tmp_path / "s").exists()


def _rewrite(
    src: Path, dest: Path, change: Callable[[str, bytes], bytes | None], add: dict[str, bytes]
) -> None:
    with tarfile.open(src) as tin, tarfile.open(dest, "w", format=tarfile.USTAR_FORMAT) as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isreg() else None  # type: ignore[union-attr]
            if data is not None:
                new = change(m.name, data)
                if new is None:
                    continue
                m.size = len(new)
                tout.addfile(m, io.BytesIO(new))
            else:
                tout.addfile(m)
        for name, data in add.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))


def _shared_weight(duo: dict[str, Path]) -> str:
    with tarfile.open(duo["combined"]) as t:
        doc = json.loads(t.extractfile("airgap/targets/cuda/bundle.json").read())  # type: ignore[union-attr]
    big = max((b for b in doc["blobs"] if b.get("role") == "model"), key=lambda b: b["size"])
    return "blobs/sha256/" + str(big["digest"]).split(":")[1]


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("shared blob changed", "cuda: blobs/sha256/"),
        ("extra blob", "no target's bundle.json lists"),
        ("one target's bundle.json edited", "ascend:"),
        ("one target's signatures removed", "cuda: "),
    ],
)
def test_a_changed_combined_bundle_does_not_verify(
    duo: dict[str, Path], tmp_path: Path, case: str, says: str
) -> None:
    shared = _shared_weight(duo)
    bad = tmp_path / "bad.airgap.tar"

    def change(name: str, data: bytes) -> bytes | None:
        if case == "shared blob changed" and name == shared:
            return bytes([data[0] ^ 1]) + data[1:]
        if (
            case == "one target's bundle.json edited"
            and name == "airgap/targets/ascend/bundle.json"
        ):
            return data.replace(b'"duo"', b'"dua"', 1)
        if case == "one target's signatures removed":
            return None if name.startswith("airgap/targets/cuda/bundle.json.sig/") else data
        return data

    extra = {"blobs/sha256/" + "0" * 64: b"x"} if case == "extra blob" else {}
    _rewrite(duo["combined"], bad, change, extra)
    r = cli("verify", str(bad), "--key", str(duo["pub"]))
    assert r.returncode == 1, r.stdout + r.stderr
    assert says in r.stdout
    prefix = tmp_path / "site"
    r = install_cli(bad, prefix, duo["pub"], "--no-probe", "--target", "cuda")
    if case in ("shared blob changed", "one target's signatures removed"):
        assert r.returncode == 1 and not prefix.exists(), r.stdout + r.stderr


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["inspect"], "duo 1.0.0 (target cuda)"),
        (["digest"], "sha256:"),
        (["images"], "no container images"),
        (["audit", "--key", "PUB"], "verdict: PASS"),
        (["verify", "--key", "PUB"], "verified duo 1.0.0 (target cuda)"),
    ],
)
def test_commands_read_one_target_of_a_combined_bundle(
    duo: dict[str, Path], command: list[str], says: str
) -> None:
    args = [str(duo["pub"]) if a == "PUB" else a for a in command]
    r = cli(args[0], str(duo["combined"]), *args[1:], "--target", "cuda")
    assert r.returncode == 0, r.stdout + r.stderr
    assert says in r.stdout
    if args[0] != "verify":  # verify without --target checks every target
        r = cli(args[0], str(duo["combined"]), *args[1:])
        assert r.returncode == 2 and "combined bundle of 2 targets (ascend, cuda)" in r.stderr


def test_sign_refuses_a_combined_bundle(duo: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / duo["combined"].name
    shutil.copy(duo["combined"], copy)
    key = next(duo["pub"].parent.glob("duo.key.pem"))
    r = subprocess.run(
        [sys.executable, "-m", "packager", "sign", str(copy), "--key", str(key)],
        capture_output=True, text=True, env=env(), timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and "sign the single-target bundles" in r.stderr
    assert copy.read_bytes() == duo["combined"].read_bytes()


# ============================================================================ deltas per target


def _build(duo: dict[str, Path], out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    base = duo["base"]
    return subprocess.run(
        [sys.executable, "-m", "packager", "build", str(base / "m-1.1.0.yaml"), "--locked",
         "--key", str(duo["priv"]), "--out", str(out), *args],
        capture_output=True, text=True, env=env(AIRGAP_CACHE_DIR=str(base / "cache")),
        timeout=300,
    )  # fmt: skip


def _delta_base(tar: Path) -> dict[str, str]:
    with tarfile.open(tar) as tf:
        fh = tf.extractfile(layout.BUNDLE_JSON)
        assert fh is not None
        base: dict[str, str] = json.loads(fh.read())["delta"]["base"]
    return base


def test_each_targets_delta_names_its_own_base(
    duo: dict[str, Path], site: Path, tmp_path: Path
) -> None:
    """A site holding both targets: its have-list lists the bundle's name once per target, and
    the delta of each target (from that have-list, or from the combined v1) names that
    target's v1; one target's bundle is the base of that target's delta only."""
    r = cli("list", "--prefix", str(site), "--have")
    assert r.returncode == 0, r.stderr
    have = tmp_path / "have.json"
    have.write_text(r.stdout)
    held = sorted((v["name"], v["target"]) for v in json.loads(r.stdout)["installed"])
    assert held == [("duo", "ascend"), ("duo", "cuda")]
    digests = {t: cli("digest", str(duo[f"{t}-1.0.0"])).stdout.strip() for t in ("ascend", "cuda")}
    for base in (have, duo["combined"]):
        out = tmp_path / f"from-{base.name}"
        r = _build(duo, out, "--base", str(base))
        assert r.returncode == 0, r.stdout + r.stderr
        for t in ("ascend", "cuda"):
            got = _delta_base(out / f"duo-1.1.0-{t}.delta-from-1.0.0.airgap.tar")
            assert (got["version"], got["digest"]) == ("1.0.0", digests[t]), t
    for t in ("ascend", "cuda"):  # each installs over its own v1
        r = install_cli(out / f"duo-1.1.0-{t}.delta-from-1.0.0.airgap.tar", site, duo["pub"],
                        "--no-probe")  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
    assert cli("audit", "--site", str(site)).returncode == 0
    r = _build(duo, tmp_path / "one", "--base", str(duo["cuda-1.0.0"]))
    assert r.returncode == 2 and "bundle of target cuda" in r.stderr and "--target cuda" in r.stderr
    r = _build(duo, tmp_path / "one", "--base", str(duo["cuda-1.0.0"]), "--target", "cuda")
    assert r.returncode == 0, r.stdout + r.stderr
    got = _delta_base(tmp_path / "one" / "duo-1.1.0-cuda.delta-from-1.0.0.airgap.tar")
    assert got["digest"] == digests["cuda"]


def test_diff_names_an_installed_target_as_the_other_commands_do(
    duo: dict[str, Path], site: Path
) -> None:
    new = str(duo["cuda-1.1.0"])
    r = cli("diff", "--prefix", str(site), "duo@1.0.0", new)
    assert r.returncode == 2 and "installed for 2 targets (ascend, cuda)" in r.stderr
    assert "duo+TARGET@1.0.0" in r.stderr
    r = cli("diff", "--prefix", str(site), "duo+cuda@1.0.0", new, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["old"]["version"] == "1.0.0"


@pytest.mark.parametrize("verified", [False, True])
def test_diff_reads_the_target_of_a_combined_bundle(duo: dict[str, Path], verified: bool) -> None:
    """diff takes --target as the other commands do: the combined bundle's cuda target against
    cuda 1.1.0 is the same diff as the cuda bundle built alone; without it, the targets are named."""
    keys = ["--key", str(duo["pub"])] if verified else []
    combined, new = str(duo["combined"]), str(duo["cuda-1.1.0"])
    r = cli("diff", combined, new, *keys)
    assert r.returncode == 2 and "combined bundle of 2 targets (ascend, cuda)" in r.stderr
    assert "--target ascend" in r.stderr
    r = cli("diff", combined, new, *keys, "--target", "cuda", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    got = json.loads(r.stdout)
    alone = json.loads(cli("diff", str(duo["cuda-1.0.0"]), new, *keys, "--json").stdout)
    assert got["old"]["digest"] == alone["old"]["digest"]
    assert got["old"]["verified"] is verified
    assert {k: v for k, v in got.items() if k != "old"} == {
        k: v for k, v in alone.items() if k != "old"
    }
    r = cli("diff", combined, new, *keys, "--target", "mips")
    assert r.returncode == 2 and "it has no target 'mips'" in r.stderr


def test_diff_target_picks_an_installed_target(duo: dict[str, Path], site: Path) -> None:
    new = str(duo["combined"])  # 1.0.0 both sides: the same content, per target
    for old in ("duo@1.0.0", "duo+cuda@1.0.0"):
        r = cli("diff", "--prefix", str(site), old, new, "--target", "cuda", "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        got = json.loads(r.stdout)
        assert got["old"]["target"] == got["new"]["target"] == "cuda"
        assert got["old"]["digest"] == got["new"]["digest"]


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        ("inspect", ()),
        ("digest", ()),
        ("images", ()),
        ("audit", ("--key",)),
        ("verify", ("--key",)),
    ],
)
def test_a_target_a_single_target_bundle_is_not_is_refused(
    duo: dict[str, Path], command: str, extra: tuple[str, ...]
) -> None:
    """--target names what the reader is to see: a single-target bundle of another target is
    refused, never shown in its place (verify refused it already; the readers now do too)."""
    args = [*extra, str(duo["pub"])] if extra else []
    cuda = str(duo["cuda-1.0.0"])
    r = cli(command, cuda, *args, "--target", "ascend")
    assert r.returncode != 0, r.stdout
    assert "ascend" in r.stdout + r.stderr and "Traceback" not in r.stdout + r.stderr
    if command != "verify":  # a usage error, before anything is read on
        assert r.returncode == 2 and "it has no target 'ascend'" in r.stderr
        assert "leave out --target" in r.stderr
    r = cli(command, cuda, *args, "--target", "cuda")  # its own target: read as asked
    assert r.returncode == 0, r.stdout + r.stderr


def test_diff_target_that_neither_side_is_is_refused(duo: dict[str, Path]) -> None:
    r = cli("diff", str(duo["cuda-1.0.0"]), str(duo["cuda-1.1.0"]), "--target", "ascend")
    assert r.returncode == 2 and "neither side is target 'ascend'" in r.stderr
    assert "old: 'cuda', new: 'cuda'" in r.stderr
    r = cli("diff", str(duo["cuda-1.0.0"]), str(duo["cuda-1.1.0"]), "--target", "cuda")
    assert r.returncode == 0, r.stdout + r.stderr
