"""The probe as it ships: stdlib-only, Python 3.8 syntax, runnable from a bundle's airgap/probe/
folder in a fresh venv that has none of the project's dependencies."""

from __future__ import annotations

import ast
import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import packager.probe
from packager.bundle.probe_payload import probe_payload
from tests.probe.util import BUNDLES, MACHINES, facts, validator

PROBE_DIR = Path(packager.probe.__file__).parent
STDLIB = set(sys.stdlib_module_names)


def probe_sources() -> list[Path]:
    return sorted(PROBE_DIR.glob("*.py"))


@pytest.mark.parametrize("path", probe_sources(), ids=lambda p: p.name)
def test_python38_syntax_and_stdlib_only(path: Path) -> None:
    src = path.read_text(encoding="utf-8")
    tree = ast.parse(src, filename=str(path), feature_version=(3, 8))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # a sibling module
                continue
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            # the facts' single source is imported only when no facts.json is beside the probe
            if path.name == "chipfacts.py" and top == "packager":
                continue
            assert top in STDLIB or top == "__future__", f"{path.name} imports {name}"
    # annotations are never evaluated on 3.8 (list[str], X | None)
    if path.name != "__init__.py" and src.strip():
        assert "from __future__ import annotations" in src, path.name


def oldest_python() -> str:
    """The oldest Python >= 3.8 on this machine (pyenv's 3.8 where there is one)."""
    found: list[tuple[tuple[int, int], str]] = []
    candidates = [shutil.which(f"python3.{m}") for m in range(8, 14)]
    candidates += glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3"))
    for exe in filter(None, candidates):
        try:
            out = subprocess.run(
                [exe, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.split()
        except (OSError, subprocess.TimeoutExpired):
            continue
        if len(out) == 2 and (int(out[0]), int(out[1])) >= (3, 8):
            found.append(((int(out[0]), int(out[1])), exe))
    return min(found)[1] if found else sys.executable


@pytest.fixture(scope="module")
def bundle_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(venv python, bundle folder, its version): a fresh venv without pip, and a bundle laid
    out as the build stage lays it out."""
    base = tmp_path_factory.mktemp("standalone")
    python = oldest_python()
    venv = base / "venv"
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    vpy = venv / "bin" / "python"
    version = subprocess.run(
        [str(vpy), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # nothing of the project's in there
    probe_deps = subprocess.run(
        [
            str(vpy),
            "-c",
            "import importlib.util as u; print([m for m in ('yaml', 'typer', 'packager', 'jsonschema') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=base,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout.strip()
    assert probe_deps == "[]"
    bundle = base / "BUNDLE"
    (bundle / "airgap" / "probe").mkdir(parents=True)
    for name, data in probe_payload().items():
        (bundle / "airgap" / "probe" / name).write_bytes(data)
    (bundle / "airgap" / "bundle.json").write_bytes((BUNDLES / "cuda-h100x8.json").read_bytes())
    return vpy, bundle, version


def run_standalone(vpy: Path, bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(vpy), str(bundle / "airgap" / "probe"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=bundle.parent,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
    )


def in_process(machine: str, bundle: str | None) -> tuple[int, dict[str, str]]:
    import contextlib
    import io

    from packager.probe.cli import main

    args = ["--json", "--sysroot", str(MACHINES / machine)]
    args += ["--bundle", str(BUNDLES / f"{bundle}.json")] if bundle else ["--no-bundle"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(args, facts())
    doc = json.loads(buf.getvalue())
    return code, {c["id"]: c["status"] for c in doc["checks"]}


@pytest.mark.parametrize("machine", sorted(p.name for p in MACHINES.iterdir() if p.is_dir()))
def test_every_machine_from_a_bundle_in_a_fresh_venv(
    machine: str, bundle_env: tuple[Path, Path, str]
) -> None:
    vpy, bundle, version = bundle_env
    proc = run_standalone(
        vpy, bundle, "--bundle", str(bundle), "--json", "--sysroot", str(MACHINES / machine)
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1, 3), proc.stderr
    doc = json.loads(proc.stdout)
    validator().validate(doc)
    assert doc["probe"]["facts"] == "facts.json"
    assert doc["probe"]["python"].startswith(version + ".")
    code, statuses = in_process(machine, "cuda-h100x8")
    assert proc.returncode == code
    assert {c["id"]: c["status"] for c in doc["checks"]} == statuses


def test_standalone_uses_the_bundle_it_ships_in_and_reads_tars(
    bundle_env: tuple[Path, Path, str], tmp_path: Path
) -> None:
    vpy, bundle, _ = bundle_env
    h100 = str(MACHINES / "h100x8-driver550")
    proc = run_standalone(vpy, bundle, "--sysroot", h100)
    assert proc.returncode == 0, proc.stderr
    assert "Result: PASS" in proc.stdout
    assert "qwen2.5-7b 1.2.0 [cuda]" in proc.stdout
    # a .tar bundle, read in place
    import tarfile

    tar = tmp_path / "b.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(bundle / "airgap", arcname="airgap")
    proc = run_standalone(
        vpy, bundle, "--bundle", str(tar), "--sysroot", str(MACHINES / "a100-driver470")
    )
    assert proc.returncode == 1
    assert "FAIL     chips" in proc.stdout
    # errors stay one line
    proc = run_standalone(vpy, bundle, "--bundle", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "no such bundle" in proc.stderr


def test_standalone_live_on_this_machine(bundle_env: tuple[Path, Path, str]) -> None:
    vpy, bundle, _ = bundle_env
    proc = run_standalone(vpy, bundle, "--no-bundle", "--json")
    assert proc.returncode in (0, 1, 3), proc.stderr
    doc = json.loads(proc.stdout)
    validator().validate(doc)
    assert doc["source"]["mode"] == "live"
