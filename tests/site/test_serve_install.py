"""Serving files as the server demands them (manifest ``serve.install``), and runtime folders.

One bundle is built and installed the way a site does it: a model, a runtime folder (nested
folders, an executable, an empty folder) and ``serve.install`` with MindIE's modes and the
serving user's uid 1000; a second one without ``serve.install`` shows the default is unchanged.
The store's blobs are checked by inode: the declared layout never touches them.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from packager.bundle import layout
from tests.site.install_support import install, run
from tests.support.mindie import mindie_problems
from tests.support.projects import PASS, make_key, tiny_safetensors

if TYPE_CHECKING:
    import docker

UID = GID = 1000

MANIFEST = """\
apiVersion: airgap/v1
kind: Bundle
metadata: {{name: {name}, version: 1.0.0}}
model:
  name: org/served
  source: {{path: ./weights}}
  format: safetensors
  precision: bf16
target:
  platform: linux/amd64
  accelerator: {{vendor: none}}
runtime:
  images: [{{ref: "example.org/mindie:2.1", from: docker-archive, path: image.tar}}]
  files:
    - {{source: ops, dest: opt/}}
    - {{source: one.conf}}
{serve}"""

SERVE = """\
serve:
  image: serving
  port: 8000
  readiness: {path: /health}
  checks: [{name: up, path: /health}]
  install: {file_mode: "0640", dir_mode: "0750", uid: 1000, gid: 1000}
"""


@dataclass(frozen=True)
class Built:
    served: Path  # with serve.install
    plain: Path  # the same content without it
    pub: Path


def _project(folder: Path, name: str, serve: str) -> Path:
    from tests.support.images import write_docker_archive

    (folder / "weights" / "sub").mkdir(parents=True)
    (folder / "weights" / "model.safetensors").write_bytes(tiny_safetensors())
    (folder / "weights" / "config.json").write_text('{"architectures": ["Served"]}\n')
    (folder / "weights" / "sub" / "extra.json").write_text('{"x": 1}\n')
    write_docker_archive(folder / "image.tar", repo_tags=["example.org/mindie:2.1"])
    ops = folder / "ops"
    (ops / "bin").mkdir(parents=True)
    (ops / "etc" / "deep" / "er").mkdir(parents=True)
    (ops / "empty").mkdir()
    (ops / "bin" / "start.sh").write_text("#!/bin/sh\necho started\n")
    os.chmod(ops / "bin" / "start.sh", 0o755)
    (ops / "etc" / "deep" / "er" / "app.conf").write_text("threads = 4\n")
    os.chmod(ops / "etc" / "deep" / "er" / "app.conf", 0o600)
    (folder / "one.conf").write_text("single = true\n")
    (folder / "m.yaml").write_text(MANIFEST.format(name=name, serve=serve))
    return folder / "m.yaml"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    base = tmp_path_factory.mktemp("serve-install")
    priv, pub, _ = make_key(base, "site")
    out = {}
    for name, serve in (("served", SERVE), ("plain", "")):
        manifest = _project(base / name, name, serve)
        r = run(
            "build", str(manifest), "--out", str(base / f"out-{name}"), "--key", str(priv),
            AIRGAP_CACHE_DIR=str(base / "cache"), AIRGAP_KEY_PASSPHRASE=PASS,
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        out[name] = next((base / f"out-{name}").glob("*.airgap.tar"))
    yield Built(out["served"], out["plain"], pub)


def _version(prefix: Path, name: str) -> Path:
    return prefix / layout.SITE_BUNDLES_DIR / name / "1.0.0"


def _store(prefix: Path, installed: Path) -> Path:
    data = json.loads((installed / ".airgap" / "bundle.json").read_bytes())
    blob = next(b for b in data["blobs"] if "model/model.safetensors" in b["paths"])
    return prefix / layout.SITE_BLOBS_DIR / blob["digest"].split(":")[1]


def _modes(root: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for folder, dirs, files in os.walk(root):
        for n in (*dirs, *files):
            p = Path(folder) / n
            st = os.lstat(p)
            out[str(p.relative_to(root))] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return out


def test_the_declared_modes_and_owner_are_laid_out_as_copies_the_store_untouched(
    built: Built, tmp_path: Path
) -> None:
    prefix = tmp_path / "site"
    r = install(built.served, prefix, built.pub, "--no-probe")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (
        "copies with the modes the server demands (files 0640, folders 0750, owner 1000:1000)"
        in r.stdout
    )
    vd = _version(prefix, "served")
    blob = _store(prefix, vd)
    st_blob, st_file = os.stat(blob), os.stat(vd / "model" / "model.safetensors")
    assert st_blob.st_ino != st_file.st_ino and st_blob.st_nlink == 1
    assert stat.S_IMODE(st_blob.st_mode) == 0o444 and st_blob.st_uid == os.getuid()
    modes = _modes(vd)
    assert modes["model/model.safetensors"] == (0o640, UID, GID)
    assert modes["model/sub"] == (0o750, UID, GID)
    assert modes["opt/ops/bin/start.sh"] == (0o750, UID, GID)  # execute where it reads
    assert modes["opt/ops/etc/deep/er/app.conf"] == (0o640, UID, GID)
    assert modes["opt/ops/empty"] == (0o750, UID, GID)
    assert modes[".airgap/bundle.json"] == (0o640, UID, GID)
    assert stat.S_IMODE(os.stat(vd).st_mode) == 0o750 and os.stat(vd).st_uid == UID
    assert mindie_problems(vd / "model", UID) == []
    audit = run("audit", "--site", str(prefix), "--json")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert json.loads(audit.stdout)["verdict"] == "PASS"


def test_the_default_layout_is_unchanged_hard_links_read_only(built: Built, tmp_path: Path) -> None:
    prefix = tmp_path / "site"
    r = install(built.plain, prefix, built.pub, "--no-probe")
    assert r.returncode == 0, r.stdout + r.stderr
    vd = _version(prefix, "plain")
    blob = _store(prefix, vd)
    st_blob, st_file = os.stat(blob), os.stat(vd / "model" / "model.safetensors")
    assert st_blob.st_ino == st_file.st_ino and st_blob.st_nlink == 2
    modes = _modes(vd)
    me = (os.getuid(), os.getgid())
    assert modes["model/model.safetensors"] == (0o444, *me)
    assert modes["model/sub"] == (0o555, *me)
    assert modes["opt/ops/bin/start.sh"] == (0o555, *me)  # its execute bit kept
    assert modes["opt/ops/empty"] == (0o555, *me)
    assert modes["files/one.conf"] == (0o444, *me)
    # MindIE would refuse the default layout: files and folders readable by others
    assert any("Other group permission failed" in p for p in mindie_problems(vd / "model", 0))
    assert run("audit", "--site", str(prefix)).returncode == 0


def test_a_chmod_or_chown_by_an_operator_is_drift_the_declared_modes_are_not(
    built: Built, tmp_path: Path
) -> None:
    prefix = tmp_path / "site"
    assert install(built.served, prefix, built.pub, "--no-probe").returncode == 0
    vd = _version(prefix, "served")
    os.chmod(vd / "model" / "config.json", 0o644)
    os.chown(vd / "opt" / "ops" / "bin" / "start.sh", 0, 0)
    os.chmod(vd / "model" / "sub", 0o755)
    audit = run("audit", "--site", str(prefix), "--json")
    assert audit.returncode == 1
    doc = json.loads(audit.stdout)
    rows = {m["path"]: m["reason"] for b in doc["bundles"] for m in b["modified"]}
    assert rows == {
        "model/config.json": "mode 0644, installed 0640",
        "model/sub/": "mode 0755, installed 0750",
        "opt/ops/bin/start.sh": "owner uid 0, installed 1000; group gid 0, installed 1000",
    }
    assert stat.S_IMODE(os.stat(_store(prefix, vd)).st_mode) == 0o444  # the store: untouched


def test_an_empty_folder_removed_is_missing(built: Built, tmp_path: Path) -> None:
    prefix = tmp_path / "site"
    assert install(built.plain, prefix, built.pub, "--no-probe").returncode == 0
    vd = _version(prefix, "plain")
    os.chmod(vd / "opt" / "ops", 0o755)
    os.rmdir(vd / "opt" / "ops" / "empty")
    doc = json.loads(run("audit", "--site", str(prefix), "--json").stdout)
    assert doc["bundles"][0]["missing"] == ["opt/ops/empty/"]


def test_the_serving_user_reads_the_install_in_a_container(
    built: Built, tmp_path: Path, docker_client: docker.DockerClient, busybox_image: str
) -> None:
    """`docker run --user 1000:1000 --network none` reads the weights; another user cannot."""
    import docker.errors

    prefix = tmp_path / "site"
    assert install(built.served, prefix, built.pub, "--no-probe").returncode == 0
    vd = _version(prefix, "served")
    script = "cat /weights/config.json && ls /weights/sub && wc -c < /weights/model.safetensors"

    def cat(user: str) -> str:
        out: bytes = docker_client.containers.run(
            busybox_image, ["sh", "-c", script], user=user, network_mode="none", remove=True,
            volumes={str(vd / "model"): {"bind": "/weights", "mode": "ro"}},
        )  # fmt: skip
        return out.decode()

    ok = cat(f"{UID}:{GID}")
    assert '"Served"' in ok and "extra.json" in ok
    assert str((vd / "model" / "model.safetensors").stat().st_size) in ok
    with pytest.raises(docker.errors.ContainerError) as exc:
        cat("1001:1001")
    assert "Permission denied" in str(exc.value)


def test_installing_for_another_owner_needs_root(built: Built) -> None:
    """Without root the install stops with a clear error and the prefix has no version."""
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the install as another user")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        os.chmod(base, 0o777)
        bundle, pub = base / built.served.name, base / "site.pub.pem"
        shutil.copy(built.served, bundle)
        shutil.copy(built.pub, pub)
        for p in (bundle, pub):
            os.chmod(p, 0o644)
        prefix = base / "site"
        r = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             sys.executable, "-m", "packager", "install", str(bundle), "--prefix", str(prefix),
             "--key", str(pub), "--no-probe"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "HOME": tmp, "AIRGAP_CACHE_DIR": str(base / "cache")},
        )  # fmt: skip
        assert r.returncode == 2, r.stdout + r.stderr
        assert "only root may give files away" in r.stderr, r.stderr
        assert "nothing was installed" in r.stderr
        assert not (prefix / layout.SITE_RECEIPTS_DIR / "served").exists()


def test_each_file_of_a_runtime_folder_is_audited(built: Built, tmp_path: Path) -> None:
    prefix = tmp_path / "site"
    assert install(built.plain, prefix, built.pub, "--no-probe").returncode == 0
    conf = _version(prefix, "plain") / "opt" / "ops" / "etc" / "deep" / "er" / "app.conf"
    os.chmod(conf.parent, 0o755)
    conf.unlink()
    conf.write_text("threads = 8\n")  # the same size: told by its digest
    os.chmod(conf, 0o444)
    os.chmod(conf.parent, 0o555)
    doc = json.loads(run("audit", "--site", str(prefix), "--json").stdout)
    (row,) = doc["bundles"][0]["modified"]
    assert row["path"] == "opt/ops/etc/deep/er/app.conf" and "sha256" in row["reason"]
