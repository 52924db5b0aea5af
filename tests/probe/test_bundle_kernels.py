"""The probe runs a bundle's kernel test vectors through the kernel runner, reading the files
from the bundle itself (layout folder or tar) by their signed digests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from packager.probe import kernel_runner
from packager.probe.bundle import load
from packager.probe.kernels import kernel_checks
from tests.support.projects import PASS, make_key, project


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("probe-kernels")
    m = project(base / "p")
    priv, pub, _ = make_key(base, "signer")
    other = make_key(base, "other")[1]
    env = {**os.environ, "AIRGAP_CACHE_DIR": str(base / "cache"), "AIRGAP_KEY_PASSPHRASE": PASS}
    for args, out in ((["--key", str(priv)], "tar"), (["--layout-only", "--unsigned"], "folder")):
        r = subprocess.run(
            [sys.executable, "-m", "packager", "build", str(m), "--out", str(base / out), *args],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
    return {
        "tar": base / "tar" / "tamper-1.0.0.airgap.tar",
        "folder": base / "folder" / "tamper-1.0.0",
        "pub": pub,
        "other": other,
    }


@pytest.mark.parametrize("form", ["tar", "folder"])
def test_the_runner_gets_the_kernel_and_its_vectors(
    bundles: dict[str, Path], form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_run(kernel: dict[str, Any], read: Any, timeout: float = 60.0) -> tuple[str, str]:
        seen["spec"] = kernel
        seen["files"] = {
            p: read(p)
            for p in [kernel["path"], *kernel["tests"]["inputs"], *kernel["tests"]["expected"]]
        }
        return "PASS", "ran on a test double"

    monkeypatch.setattr(kernel_runner, "run_kernel_test", fake_run)
    req = load(str(bundles[form]), None, ".")
    (check,) = kernel_checks(req, live=True, timeout=10)
    assert (check.status, check.title) == ("PASS", "kernel k")
    spec = seen["spec"]
    assert spec["entry"] == "k" and spec["params"] == [8, 8]
    files = seen["files"]
    assert files["kernels/k/k.ptx"].startswith(b".version 8.0")
    assert files["kernels/k/inputs/x.npy"].startswith(b"\x93NUMPY")


def test_a_tampered_vector_is_a_fail_not_a_pass(bundles: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "b"
    shutil.copytree(bundles["folder"], folder)
    doc = json.loads((folder / "airgap/bundle.json").read_text())
    blob = next(b for b in doc["blobs"] if "kernels/k/inputs/x.npy" in b["paths"])
    p = folder / "blobs/sha256" / blob["digest"].split(":")[1]
    p.write_bytes(p.read_bytes()[:-1] + b"\x00")
    req = load(str(folder), None, ".")
    (check,) = kernel_checks(req, live=True, timeout=10)
    assert check.status in ("FAIL", "NOT RUN")
    assert check.status != "PASS"


def _probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "packager", "probe", *args, "--json"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _row(r: subprocess.CompletedProcess[str], check: str) -> dict[str, Any]:
    doc = json.loads(r.stdout)
    (row,) = [c for c in doc["checks"] if c["id"] == check]
    return row  # type: ignore[no-any-return]


def test_without_a_device_the_probe_says_not_run(bundles: dict[str, Path]) -> None:
    r = _probe("--bundle", str(bundles["tar"]), "--key", str(bundles["pub"]))
    k = _row(r, "kernels")
    assert k["status"] == "NOT RUN" and "no device" in k["reason"], k
    assert r.returncode in (1, 3)  # never 0: a kernel that did not run is not a pass


def test_an_unverified_bundle_runs_nothing_and_says_so(bundles: dict[str, Path]) -> None:
    r = _probe("--bundle", str(bundles["tar"]))
    row = _row(r, "kernels")
    assert row["status"] == "NOT RUN" and "not verified" in row["reason"], row
    assert "--trust" in row["remedy"]
    assert r.returncode in (1, 3)


def test_an_unverified_bundles_smoke_command_is_not_run(tmp_path: Path) -> None:
    from packager.probe.bundle import Requirements
    from packager.probe.kernels import smoke_checks

    canary = tmp_path / "ran"
    req = Requirements(
        "x",
        location=("tar", str(tmp_path / "b.tar")),
        smoke_spec={"image": "alpine", "command": ["touch", str(canary)]},
    )
    (row,) = smoke_checks(req, live=True, timeout=5, verified=False)
    assert row.status == "NOT RUN" and "not verified" in row.reason
    assert not canary.exists()


def test_a_bundle_signed_by_another_key_is_not_probed(bundles: dict[str, Path]) -> None:
    r = _probe("--bundle", str(bundles["tar"]), "--key", str(bundles["other"]))
    assert r.returncode == 1, r.stdout + r.stderr
    assert json.loads(r.stdout)["ok"] is False and "checks" not in json.loads(r.stdout)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--key", "k.pub"], "verify a --bundle"),
        (["--installed", "x", "--trust", "p.json"], "verify a --bundle"),
        (["--bundle", "b.tar", "--trust"], "--trust needs a value"),
    ],
)
def test_verification_options_need_a_bundle(args: list[str], words: str) -> None:
    r = _probe(*args)
    assert r.returncode == 2 and words in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_a_parts_bundle_is_probed_through_its_verified_descriptor(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    import hashlib
    import tarfile

    from packager.bundle.parts import Part, PartsIndex, write_parts_index

    data = bundles["tar"].read_bytes()
    with tarfile.open(bundles["tar"]) as tf:
        member = tf.extractfile("airgap/bundle.json")
        assert member is not None
        digest = "sha256:" + hashlib.sha256(member.read()).hexdigest()
    half = len(data) // 2
    parts = []
    for i, chunk in enumerate((data[:half], data[half:])):
        name = f"tamper-1.0.0.airgap.tar.{i:03d}"
        (tmp_path / name).write_bytes(chunk)
        parts.append(Part(name, len(chunk), hashlib.sha256(chunk).hexdigest()))
    index = tmp_path / "tamper-1.0.0.airgap.parts.json"
    write_parts_index(index, PartsIndex("tamper-1.0.0", digest, len(data), tuple(parts)))
    r = _probe("--bundle", str(index), "--key", str(bundles["pub"]))
    doc = json.loads(r.stdout)
    assert doc["bundle"]["name"] == "tamper", doc.get("bundle")
    k = _row(r, "kernels")
    assert k["status"] == "NOT RUN" and "only bundle.json" in k["reason"]


def test_a_recorded_machine_runs_no_kernel(bundles: dict[str, Path]) -> None:
    machines = Path(__file__).resolve().parents[1] / "fixtures" / "machines"
    r = subprocess.run([sys.executable, "-m", "packager", "probe", "--bundle", str(bundles["tar"]), "--json",
                        "--sysroot", str(machines / "h100x8-driver550")], capture_output=True, text=True, timeout=120)  # fmt: skip
    doc = json.loads(r.stdout)
    (k,) = [c for c in doc["checks"] if c["id"] == "kernels"]
    assert k["status"] == "NOT RUN" and "recorded machine" in k["reason"]


@pytest.mark.parametrize(
    "path", ["../../etc/passwd", "/etc/passwd", "a/../../b", "a\\..\\b", "./k"]
)
def test_an_installed_bundles_kernel_path_stays_inside_it(path: str, tmp_path: Path) -> None:
    from packager.probe.bundle import Requirements
    from packager.probe.kernels import _Files

    files = _Files(Requirements("x", location=("installed", str(tmp_path))))
    with pytest.raises(OSError, match="not a relative path inside the bundle"):
        files.read(path)
