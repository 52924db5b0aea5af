"""Bundles for the install tests, built once per session by the real `airgap build`.

- ``many``: version 1.0.0 and 2.0.0 of a CPU-only bundle of 200 small files in folders plus a
  few MB of weights (2.0.0 changes a quarter of the files: the rest are shared in the store);
- ``full``: tests/support/projects.py's complete bundle (NVIDIA target, image, kernel, wheel, file),
  in 1.0.0 and 0.9.0, and a 1.0.0 with other content;

all signed by one ECDSA key. Helpers run `airgap` as a subprocess and read a prefix's state.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from packager.bundle import layout
from tests.support.cli import cli
from tests.support.projects import PASS, make_key, project, tiny_safetensors
from tests.support.reports import checked

FILES = 200

MANY = """\
apiVersion: airgap/v1
kind: Bundle
metadata: {{name: many, version: {version}}}
model:
  name: org/many
  source: {{path: ./weights}}
  format: safetensors
  precision: bf16
target:
  platform: linux/amd64
  accelerator: {{vendor: none}}
"""


@dataclass(frozen=True)
class Bundles:
    many1: Path  # many 1.0.0 (.airgap.tar)
    many2: Path  # many 2.0.0: a quarter of the files changed
    many09: Path  # many 0.9.0
    many1_other: Path  # many 1.0.0 with other content
    many1_folder: Path  # many 1.0.0 as a layout folder
    many1_parts: Path  # many 1.0.0 as parts of 1 MiB (the parts index)
    full1: Path  # tamper 1.0.0: NVIDIA target, an image, a kernel (the probe FAILs without GPUs)
    pub: Path  # the signing key's public half
    other_pub: Path  # a key that signed nothing


def env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "AIRGAP_KEY_PASSPHRASE": PASS,
        **extra,
    }


def airgap_proc(*args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "packager", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(**extra),
    )


def run(*args: str, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "packager", *args],
        capture_output=True,
        text=True,
        env=env(**extra),
        timeout=timeout,
    )
    return checked(args, r)  # a --json report keeps its schema


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """``r``, asserted to have succeeded (its output in the failure)."""
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def install(
    bundle: Path, prefix: Path, pub: Path, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    return run("install", str(bundle), "--prefix", str(prefix), "--key", str(pub), *args, **extra)


def install_cli(
    bundle: Path, prefix: Path, pub: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return cli("install", str(bundle), "--prefix", str(prefix), "--key", str(pub), *args)


def many_weights(folder: Path, seed: int, changed: float = 0.0) -> None:
    """200 small files in 10 folders and 3 MB of weights; ``changed``: the share of files whose
    content differs from seed 1's."""
    rng = random.Random(1)
    other = random.Random(seed)
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(tiny_safetensors())
    (folder / "config.json").write_text('{"architectures": ["Many"]}\n')
    for i in range(FILES):
        data = rng.randbytes(256 + rng.randrange(4096))
        if seed != 1 and i < FILES * changed:
            data = other.randbytes(len(data))
        sub = folder / "shards" / f"d{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"part-{i:04d}.bin").write_bytes(data)


def build_all(base: Path) -> Bundles:
    keys = base / "keys"
    keys.mkdir()
    priv, pub, _ = make_key(keys, "site")
    _, other_pub, _ = make_key(keys, "other")
    jobs: list[list[str]] = []
    for tag, version, seed in (
        ("1", "1.0.0", 1), ("2", "2.0.0", 2), ("09", "0.9.0", 3), ("other", "1.0.0", 4),
    ):  # fmt: skip
        d = base / f"many-{tag}"
        many_weights(d / "weights", seed, changed=0.25)
        (d / "m.yaml").write_text(MANY.format(version=version))
        jobs.append([str(d / "m.yaml"), "--out", str(base / f"out-{tag}")])
    jobs.append([str(project(base / "full")), "--out", str(base / "out-full")])
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "packager", "build", *args, "--key", str(priv)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env(AIRGAP_CACHE_DIR=str(base / f"cache-{i}")),
        )
        for i, args in enumerate(jobs)
    ]  # fmt: skip
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, out + err
    many1 = base / "out-1" / "many-1.0.0.airgap.tar"
    folder = base / "folder" / "many-1.0.0"
    folder.mkdir(parents=True)
    subprocess.run(["tar", "-xf", str(many1), "-C", str(folder)], check=True)
    return Bundles(
        many1_parts=split_into_parts(many1, base / "parts"),
        many1=many1,
        many2=base / "out-2" / "many-2.0.0.airgap.tar",
        many09=base / "out-09" / "many-0.9.0.airgap.tar",
        many1_other=base / "out-other" / "many-1.0.0.airgap.tar",
        many1_folder=folder,
        full1=base / "out-full" / "tamper-1.0.0.airgap.tar",
        pub=pub,
        other_pub=other_pub,
    )


def split_into_parts(tar: Path, folder: Path, size: int = 1 << 20) -> Path:
    """The parts a `build --split` of the same bundle writes: slices of the tar and an index."""
    from packager.bundle.parts import Part, PartsIndex, write_parts_index

    folder.mkdir()
    data = tar.read_bytes()
    stem = tar.name.removesuffix(".airgap.tar")
    parts = []
    for i in range(0, len(data), size):
        name = f"{tar.name}.{i // size:03d}"
        (folder / name).write_bytes(data[i : i + size])
        parts.append(
            Part(name, len(data[i : i + size]), hashlib.sha256(data[i : i + size]).hexdigest())
        )
    index = folder / f"{stem}.airgap.parts.json"
    write_parts_index(index, PartsIndex(stem, descriptor_digest(tar), len(data), tuple(parts)))
    return index


def descriptor_digest(tar: Path) -> str:
    with tarfile.open(tar) as t:
        fh = t.extractfile(layout.BUNDLE_JSON)
        assert fh is not None
        return "sha256:" + hashlib.sha256(fh.read()).hexdigest()


_BUILT: dict[Path, Bundles] = {}


def built_bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    """The bundles above, built once per session (each test module's ``bundles`` fixture calls
    this; the cache keeps it to one build)."""
    key = tmp_path_factory.getbasetemp()
    if key not in _BUILT:
        _BUILT[key] = build_all(tmp_path_factory.mktemp("install-bundles"))
    return _BUILT[key]


# ----------------------------------------------------------------------------- reading a prefix


def current(prefix: Path, name: str) -> str | None:
    link = prefix / layout.SITE_BUNDLES_DIR / name / layout.SITE_CURRENT
    return os.readlink(link) if link.is_symlink() else None


def receipt(prefix: Path, name: str, version: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        (prefix / layout.SITE_RECEIPTS_DIR / name / layout.receipt_name(version)).read_text()
    )
    return doc


def log_lines(prefix: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (prefix / layout.SITE_AUDIT_LOG).read_text().splitlines()]


def store_is_sound(prefix: Path) -> None:
    """Every blob under a final name holds exactly the content its name says."""
    store = prefix / layout.SITE_BLOBS_DIR
    for p in store.iterdir() if store.is_dir() else []:
        assert p.is_file() and not p.is_symlink(), p
        assert hashlib.sha256(p.read_bytes()).hexdigest() == p.name, f"partial blob {p}"


def copy_prefix(src: Path, dest: Path) -> None:
    """A copy keeping hard links and symlinks (cp -a)."""
    subprocess.run(["cp", "-a", str(src), str(dest)], check=True)


def descriptor_of(tar: Path) -> dict[str, Any]:
    with tarfile.open(tar) as t:
        fh = t.extractfile(layout.BUNDLE_JSON)
        assert fh is not None
        doc: dict[str, Any] = json.loads(fh.read())
    return doc


def tree_files(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def outside_is_empty(folder: Path) -> None:
    assert not folder.exists() or list(folder.iterdir()) == [], list(folder.iterdir())


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
