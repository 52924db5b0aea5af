"""`airgap lock`: a lock names every input by content, belongs to one manifest, and finds drift."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import jsonschema
import pytest

from packager.commands.lock import load_lock, lock_path_for
from packager.errors import InputError
from tests.support.cli import REPO, airgap

MANIFEST = """\
# a comment that does not change the lock
apiVersion: airgap/v1
kind: Bundle
metadata: {name: lockme, version: 1.0.0}
model:
  name: sentence-transformers/all-MiniLM-L6-v2
  source: {path: ./weights}
  format: safetensors
  precision: fp32
  include: ["*.safetensors", "*.json", "vocab.txt"]
target:
  platform: linux/amd64
  accelerator: {vendor: nvidia, chips: [h100]}
  stack: {cuda: "12.4", driver: ">=550.54.14"}
runtime:
  files:
    - {source: files/run.sh, dest: bin/}
kernels:
  - name: k
    kind: cuda-ptx
    path: kernels/k.ptx
    targets: [compute_90]
    tests: {inputs: [kernels/x.npy], expected: [kernels/y.npy]}
"""


@pytest.fixture
def project(tmp_path: Path, minilm_dir: Path) -> Path:
    """A manifest folder with the real MiniLM weights (hard links), a file and a kernel."""

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(minilm_dir, tmp_path / "weights", copy_function=link_or_copy)
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels" / "k.ptx").write_text(".version 8.0\n.target sm_90\n")
    (tmp_path / "kernels" / "x.npy").write_bytes(b"x")
    (tmp_path / "kernels" / "y.npy").write_bytes(b"y")
    (tmp_path / "m.yaml").write_text(MANIFEST)
    return tmp_path


def lock_json(project: Path, *args: str) -> tuple[int, dict[str, object]]:
    r = airgap("lock", str(project / "m.yaml"), "--json", *args)
    return r.returncode, json.loads(r.stdout)


def test_lock_writes_a_schema_valid_lock_beside_the_manifest(project: Path) -> None:
    code, out = lock_json(project)
    assert code == 0, out
    path = project / "m.lock.json"
    assert out["lock"] == str(path) and out["written"] is True
    doc = json.loads(path.read_text())
    schema = json.loads((REPO / "schemas" / "lock.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert doc["manifest"]["name"] == "lockme"
    (target,) = doc["targets"]
    assert target["files"][0]["dest"] == "bin/run.sh"
    assert target["kernels"][0]["file"]["path"] == "kernels/k.ptx"
    assert [t["role"] for t in target["kernels"][0]["tests"]] == ["input", "expected"]
    assert doc["model"]["safetensors"]["parameters"] == 22_713_728


def test_a_second_lock_takes_unchanged_files_from_the_stat_cache(project: Path) -> None:
    old = 1_600_000_000
    for p in project.rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))
    assert lock_json(project)[0] == 0
    code, out = lock_json(project)
    summary = out["summary"]
    assert isinstance(summary, dict)
    assert code == 0 and summary["stat_cache"]["misses"] == 0
    assert summary["hashed_bytes"] == 0


def test_source_date_epoch_makes_locks_identical(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert lock_json(project)[0] == 0
    first = (project / "m.lock.json").read_bytes()
    assert lock_json(project)[0] == 0
    assert (project / "m.lock.json").read_bytes() == first
    assert json.loads(first)["created"] == "2023-11-14T22:13:20Z"


def drift_of(project: Path) -> tuple[int, list[dict[str, str]]]:
    r = airgap("lock", str(project / "m.yaml"), "--check", "--json")
    doc = json.loads(r.stdout)
    return r.returncode, doc.get("drift", doc)


def test_check_finds_no_drift_on_unchanged_inputs(project: Path) -> None:
    assert lock_json(project)[0] == 0
    assert drift_of(project) == (0, [])


@pytest.mark.parametrize(
    ("change", "kind", "name"),
    [
        ("weights/config.json", "model", "config.json"),
        ("files/run.sh", "file", "files/run.sh"),
        ("kernels/k.ptx", "kernel", "kernels/k.ptx"),
        ("kernels/y.npy", "kernel", "kernels/y.npy"),
    ],
)
def test_check_names_every_input_that_drifted(
    project: Path, change: str, kind: str, name: str
) -> None:
    assert lock_json(project)[0] == 0
    target = project / change
    data = target.read_bytes()
    target.unlink()  # a hard link: replace, do not edit the shared file
    target.write_bytes(data + b" ")
    code, drift = drift_of(project)
    assert code == 1
    assert [(d["kind"], d["name"]) for d in drift] == [(kind, name)]
    assert drift[0]["locked"] != drift[0]["now"]


def test_a_new_weight_file_is_drift(project: Path) -> None:
    assert lock_json(project)[0] == 0
    (project / "weights" / "extra.json").write_text("{}")
    code, drift = drift_of(project)
    assert code == 1 and drift[0]["name"] == "extra.json" and drift[0]["locked"] == "absent"


def test_a_lock_from_another_manifest_is_refused(project: Path) -> None:
    assert lock_json(project)[0] == 0
    other = project / "other.yaml"
    other.write_text(MANIFEST.replace("name: lockme", "name: other"))
    r = airgap("lock", str(other), "--check", "--lock", str(project / "m.lock.json"))
    assert r.returncode == 1 and "another manifest" in r.stderr


def test_a_changed_manifest_needs_a_new_lock_but_comments_do_not_count(project: Path) -> None:
    assert lock_json(project)[0] == 0
    m = project / "m.yaml"
    m.write_text("# another comment\n" + MANIFEST)
    assert drift_of(project)[0] == 0
    for edit, named in MANIFEST_EDITS:
        m.write_text(edit(MANIFEST))
        r = airgap("lock", str(m), "--check")
        assert r.returncode == 1 and "changed since" in r.stderr, r.stderr
        for words in named:
            assert words in r.stderr, r.stderr


MANIFEST_EDITS = [
    # (the edit, what `lock --check` names)
    (lambda t: t.replace("version: 1.0.0", "version: 1.0.1"),
     ["metadata.version: locked 1.0.0, now 1.0.1"]),
    (lambda t: t.replace("source: {path: ./weights}", "source: {path: ./other}"),
     ["model.source: locked weights, now other"]),
    (lambda t: t.replace("dest: bin/}", "dest: sbin/}"),
     ["target: file sbin/run.sh added", "target: file bin/run.sh removed"]),
    (lambda t: t.replace("name: k\n", "name: k2\n"), ["target: kernel k2 added"]),
    (lambda t: t.replace("platform: linux/amd64", "platform: linux/arm64"),
     ["target.platform: locked linux/amd64, now linux/arm64"]),
    (lambda t: t.replace('driver: ">=550.54.14"', 'driver: ">=560.0"'),
     ["a setting the lock keeps no record of"]),
    # not recorded itself, but what it changed in the inputs is named
    (lambda t: t.replace('include: ["*.safetensors", "*.json", "vocab.txt"]',
                         'include: ["*.safetensors", "*.json"]'),
     ["a setting the lock keeps no record of", "input model vocab.txt: locked sha256:",
      "now absent"]),
]  # fmt: skip


def test_a_file_pin_that_does_not_match_names_expected_and_actual(project: Path) -> None:
    m = project / "m.yaml"
    m.write_text(MANIFEST.replace("dest: bin/}", f"dest: bin/, sha256: {'a' * 64}}}"))
    r = airgap("lock", str(m))
    assert r.returncode == 1
    assert "a" * 64 in r.stderr and "does not match the pin" in r.stderr
    assert f"{m}:17:" in r.stderr
    assert not lock_path_for(m).exists()


@pytest.mark.parametrize(
    ("missing", "words"),
    [("files/run.sh", "file"), ("kernels/k.ptx", "kernel 'k'"), ("kernels/x.npy", "test vector")],
)
def test_a_missing_input_is_an_input_error(project: Path, missing: str, words: str) -> None:
    (project / missing).unlink()
    r = airgap("lock", str(project / "m.yaml"))
    assert r.returncode == 2
    assert words in r.stderr and "does not exist" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("written", "words"),
    [
        ("files/" + "r" * 300, "cannot be looked up: File name too long"),
        ('"files/run\\x1b[2J.sh"', "file '"),
    ],
)
def test_a_file_path_the_system_refuses_is_named_escaped(
    project: Path, written: str, words: str
) -> None:
    """Found by tests/support/fuzz: an OSError escaped lock; a control character in the path
    reached the terminal raw."""
    m = project / "m.yaml"
    m.write_text(MANIFEST.replace("source: files/run.sh", f"source: {written}"))
    r = airgap("lock", str(m))
    assert r.returncode == 2, r.stdout + r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr
    assert "\x1b" not in r.stderr


def test_weights_whose_dtype_disagrees_are_not_locked(project: Path) -> None:
    m = project / "m.yaml"
    m.write_text(MANIFEST.replace("precision: fp32", "precision: fp16"))
    r = airgap("lock", str(m))
    assert r.returncode == 1 and "AG320" in r.stdout
    assert not lock_path_for(m).exists()


def test_an_invalid_manifest_is_not_locked(project: Path) -> None:
    m = project / "m.yaml"
    m.write_text(MANIFEST.replace("chips: [h100]", "chips: [h10]"))
    r = airgap("lock", str(m))
    assert r.returncode == 1 and "AG201" in r.stdout
    assert not lock_path_for(m).exists()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"not json", "not JSON"),
        (b'{"lockVersion": 2}', "not a valid airgap lock"),
        (b"[]", "not a valid airgap lock"),
    ],
)
def test_unreadable_locks(tmp_path: Path, content: bytes, words: str) -> None:
    f = tmp_path / "x.lock.json"
    f.write_bytes(content)
    with pytest.raises(InputError, match=words):
        load_lock(f)


def test_a_huge_lock_is_refused_without_reading_it(tmp_path: Path) -> None:
    f = tmp_path / "x.lock.json"
    with f.open("wb") as fh:
        fh.truncate(100 * 1024 * 1024)
    with pytest.raises(InputError, match="larger than"):
        load_lock(f)
    with pytest.raises(InputError, match="no such lock file"):
        load_lock(tmp_path / "none.lock.json")
