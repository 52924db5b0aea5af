"""serve.install: the modes and owner a server demands, and the findings for impossible or
refused settings (AG620-AG623), each at its place; the typed value after the merge."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from packager.commands.validate import validate
from packager.findings import Severity
from packager.manifest.model import load_manifest

ERROR, WARNING = Severity.ERROR, Severity.WARNING

BASE: dict[str, Any] = {
    "apiVersion": "airgap/v1",
    "kind": "Bundle",
    "metadata": {"name": "m", "version": "1.0.0"},
    "model": {"name": "org/model", "source": {"path": "./weights"}, "format": "safetensors"},
    "target": {"platform": "linux/arm64", "accelerator": {"vendor": "none"}},
    "runtime": {"images": [{"ref": "swr.example/ascendhub/mindie:2.1.RC1", "role": "serving"}]},
    "serve": {
        "port": 1025,
        "readiness": {"path": "/health"},
        "checks": [{"name": "up", "path": "/health"}],
        "install": {"file_mode": "0640", "dir_mode": "0750", "uid": 1000, "gid": 1000},
    },
}


def write(tmp_path: Path, install: dict[str, Any], image: str | None = None) -> Path:
    doc = copy.deepcopy(BASE)
    doc["serve"]["install"] = install
    if image is not None:
        doc["runtime"]["images"][0]["ref"] = image
    (tmp_path / "weights").mkdir(exist_ok=True)
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def codes(tmp_path: Path, install: dict[str, Any], image: str | None = None) -> dict[str, Any]:
    report = validate(write(tmp_path, install, image))
    return {f.code: f for f in report.findings if f.code.startswith(("AG62", "AG1"))}


def test_mindies_own_modes_with_its_user_are_valid_and_typed(tmp_path: Path) -> None:
    report = validate(write(tmp_path, BASE["serve"]["install"]))
    assert report.valid, [str(f) for f in report.findings]
    assert not [f for f in report.findings if f.code.startswith("AG62")]
    m = load_manifest(tmp_path / "m.yaml").manifest
    assert m is not None and m.targets[0].serve is not None
    inst = m.targets[0].serve.install
    assert inst is not None
    assert (inst.file_mode, inst.dir_mode, inst.uid, inst.gid) == (0o640, 0o750, 1000, 1000)


CASES = [
    ("owner cannot read", {"file_mode": "0240", "dir_mode": "0750", "uid": 1}, "AG620", ERROR,
     "$.serve.install.file_mode", "0240"),
    ("owner cannot enter", {"file_mode": "0640", "dir_mode": "0640", "uid": 1}, "AG621", ERROR,
     "$.serve.install.dir_mode", "0640"),
    ("owner cannot list", {"file_mode": "0440", "dir_mode": "0150", "uid": 1}, "AG621", ERROR,
     "$.serve.install.dir_mode", "0150"),
    ("group reads, cannot enter", {"file_mode": "0640", "dir_mode": "0700", "uid": 1}, "AG622",
     WARNING, "$.serve.install.dir_mode", "group"),
    ("MindIE, others read", {"file_mode": "0644", "dir_mode": "0755", "uid": 1}, "AG623", WARNING,
     "$.serve.install", "files 0644 (at most 0640); folders 0755 (at most 0750)"),
    ("MindIE, no user", {"file_mode": "0640", "dir_mode": "0750"}, "AG623", WARNING,
     "$.serve.install", "no uid"),
    ("not octal", {"file_mode": "0648"}, "AG105", ERROR, "$.serve.install.file_mode", "'0648'"),
    ("setuid", {"file_mode": "4755"}, "AG105", ERROR, "$.serve.install.file_mode", "'4755'"),
    ("negative uid", {"uid": -1}, "AG105", ERROR, "$.serve.install.uid", "out of range"),
    ("unknown key", {"mode": "0640"}, "AG101", ERROR, "$.serve.install.mode", "unknown key"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("install", "code", "severity", "path", "text"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_impossible_or_refused_settings(
    tmp_path: Path, install: dict[str, Any], code: str, severity: Severity, path: str, text: str
) -> None:
    report = validate(write(tmp_path, install))
    hits = [f for f in report.findings if f.code.startswith(code)]
    assert hits, [str(f) for f in report.findings]
    f = hits[0]
    assert (f.severity, f.json_path) == (severity, path), str(f)
    assert text in f.message, f.message
    assert f.location.line > 0


def test_a_server_that_is_not_mindie_takes_other_modes(tmp_path: Path) -> None:
    report = validate(write(tmp_path, {"uid": 1000}, image="nvcr.io/nim/meta/llama:1"))
    assert report.valid and not [f for f in report.findings if f.code.startswith("AG62")]
