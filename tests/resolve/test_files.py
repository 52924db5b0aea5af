"""runtime.files: a folder source is carried with its layout, execute bits and empty folders,
each file hashed like a single one; links and special files in it are refused, naming them."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest

from packager.commands.lock import find_drift, lock_manifest
from packager.errors import ResolveError
from packager.manifest.model import Manifest, load_manifest
from packager.resolve.statcache import StatCache
from tests.support.projects import tiny_safetensors

MANIFEST = """\
apiVersion: airgap/v1
kind: Bundle
metadata: {{name: tree, version: 1.0.0}}
model:
  name: org/tree
  source: {{path: ./weights}}
  format: safetensors
target:
  platform: linux/amd64
  accelerator: {{vendor: none}}
runtime:
  files:
{files}"""


def tree(root: Path) -> None:
    (root / "bin").mkdir(parents=True)
    (root / "etc" / "a" / "b").mkdir(parents=True)
    (root / "var" / "empty").mkdir(parents=True)
    (root / "bin" / "run").write_text("#!/bin/sh\nexit 0\n")
    os.chmod(root / "bin" / "run", 0o750)
    (root / "etc" / "a" / "b" / "deep.conf").write_text("x = 1\n")
    (root / "README").write_text("ops package\n")


def setup(tmp_path: Path, files: str) -> Manifest:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "model.safetensors").write_bytes(tiny_safetensors())
    (tmp_path / "m.yaml").write_text(MANIFEST.format(files=files))
    m = load_manifest(tmp_path / "m.yaml").manifest
    assert m is not None
    return m


def lock(tmp_path: Path, m: Manifest):  # type: ignore[no-untyped-def]
    with StatCache(tmp_path / "stat.db") as cache:
        return lock_manifest(m, cache=cache).lock


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_folder_is_locked_file_by_file_with_modes_and_empty_folders(tmp_path: Path) -> None:
    tree(tmp_path / "ops")
    (tmp_path / "single.sh").write_text("echo one\n")
    os.chmod(tmp_path / "single.sh", 0o755)
    (tmp_path / "plain.sh").write_text("echo two\n")
    os.chmod(tmp_path / "plain.sh", 0o755)  # a single file's own bits are not read
    m = setup(
        tmp_path,
        "    - {source: ops, dest: opt/}\n    - {source: single.sh, mode: '0755'}\n"
        "    - {source: plain.sh}\n",
    )
    t = lock(tmp_path, m).targets[0]
    got = {f.dest: (f.path, f.sha256, f.executable) for f in t.files}
    assert got == {
        "opt/ops/README": ("ops/README", sha(tmp_path / "ops/README"), False),
        "opt/ops/bin/run": ("ops/bin/run", sha(tmp_path / "ops/bin/run"), True),
        "opt/ops/etc/a/b/deep.conf": (
            "ops/etc/a/b/deep.conf", sha(tmp_path / "ops/etc/a/b/deep.conf"), False),
        "files/single.sh": ("single.sh", sha(tmp_path / "single.sh"), True),
        "files/plain.sh": ("plain.sh", sha(tmp_path / "plain.sh"), False),
    }  # fmt: skip
    assert t.dirs == ("opt/ops/var/empty",)
    assert t.to_json()["dirs"] == ["opt/ops/var/empty"]


@pytest.mark.parametrize(
    ("dest", "where"),
    [(None, "files/ops"), ("cfg/", "cfg/ops"), ("etc/operator", "etc/operator")],
)
def test_where_a_folder_goes(tmp_path: Path, dest: str | None, where: str) -> None:
    tree(tmp_path / "ops")
    entry = "{source: ops" + (f", dest: {dest}" if dest else "") + "}"
    t = lock(tmp_path, setup(tmp_path, f"    - {entry}\n")).targets[0]
    assert sorted(f.dest for f in t.files)[0] == f"{where}/README"


def test_a_link_in_a_folder_is_refused_naming_it(tmp_path: Path) -> None:
    tree(tmp_path / "ops")
    os.symlink("/etc/passwd", tmp_path / "ops" / "etc" / "a" / "passwd")
    m = setup(tmp_path, "    - {source: ops}\n")
    with pytest.raises(ResolveError) as exc:
        lock(tmp_path, m)
    assert "ops/etc/a/passwd" in exc.value.message and "symbolic link" in exc.value.message
    assert "/etc/passwd" in exc.value.message and "copy the file" in (exc.value.hint or "")
    assert exc.value.location is not None and exc.value.location.line == 13


def test_a_socket_in_a_folder_is_refused(tmp_path: Path) -> None:
    tree(tmp_path / "ops")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(tmp_path / "ops" / "sock"))
    try:
        with pytest.raises(ResolveError, match="not a regular file or folder"):
            lock(tmp_path, setup(tmp_path, "    - {source: ops}\n"))
    finally:
        s.close()


@pytest.mark.parametrize(("key", "value"), [("sha256", "a" * 64), ("mode", "0755")])
def test_a_pin_or_mode_on_a_folder_is_refused(tmp_path: Path, key: str, value: str) -> None:
    tree(tmp_path / "ops")
    m = setup(tmp_path, f'    - {{source: ops, {key}: "{value}"}}\n')
    with pytest.raises(ResolveError, match=f"is a folder: a {key} names one file"):
        lock(tmp_path, m)


def test_a_changed_file_or_mode_in_the_folder_is_drift(tmp_path: Path) -> None:
    tree(tmp_path / "ops")
    m = setup(tmp_path, "    - {source: ops}\n")
    locked = lock(tmp_path, m)
    (tmp_path / "ops" / "README").write_text("changed\n")
    os.chmod(tmp_path / "ops" / "bin" / "run", 0o640)
    os.rmdir(tmp_path / "ops" / "var" / "empty")
    with StatCache(tmp_path / "stat.db") as cache:
        drift = {(d.kind, d.name): (d.locked, d.now) for d in find_drift(m, locked, cache=cache)}
    assert drift[("file", "ops/README")][1] == f"sha256:{sha(tmp_path / 'ops/README')}"
    assert drift[("file", "ops/bin/run")] == ("executable", "not executable")
    assert drift[("folder", "files/ops/var/empty")] == ("an empty folder", "absent")
