"""The serve section: schema findings (AG1xx) and the serve rules (AG600-AG609), each at its place;
the typed Serve with a target's keys over the shared ones."""

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

SERVE: dict[str, Any] = {
    "image": "serving",
    "args": ["--host", "$(AIRGAP_SERVE_HOST)", "--port", "$(AIRGAP_SERVE_PORT)"],
    "port": 8000,
    "readiness": {"path": "/health", "timeout": "60s"},
    "checks": [
        {
            "name": "embed",
            "path": "/v1/embeddings",
            "body": {"input": "hi"},
            "expect": {
                "status": 200,
                "latency": "500ms",
                "json": [
                    {"path": "$.data[0].embedding", "length": 384},
                    {"path": "$.data[0].embedding[0]", "range": [-1, 1]},
                    {"path": "$.object", "equals": "list"},
                    {"path": "$.model", "contains": "MiniLM"},
                ],
            },
        }
    ],
}

BASE: dict[str, Any] = {
    "apiVersion": "airgap/v1",
    "kind": "Bundle",
    "metadata": {"name": "m", "version": "1.0.0"},
    "model": {"name": "org/model", "source": {"path": "./weights"}, "format": "safetensors"},
    "target": {
        "platform": "linux/amd64",
        "accelerator": {"vendor": "nvidia", "chips": ["h100"], "count": 2},
        "stack": {"cuda": "12.4", "driver": ">=550.54.14"},
    },
    "runtime": {"images": [{"ref": "example.org/vllm:1", "role": "serving"}]},
    "serve": SERVE,
}


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    (tmp_path / "weights").mkdir(exist_ok=True)
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def with_serve(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            doc["serve"].pop(key, None)
        else:
            doc["serve"][key] = value
    return doc


def expectation(**e: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    doc["serve"]["checks"][0]["expect"]["json"] = [e]
    return doc


def test_the_base_is_valid(tmp_path: Path) -> None:
    report = validate(write(tmp_path, BASE))
    assert report.valid, [str(f) for f in report.findings]
    assert not [f for f in report.findings if f.code.startswith("AG6")]


CASES: list[tuple[str, dict[str, Any], str, Severity, str, str]] = [
    ("image names nothing", with_serve(image="tool"), "AG600", ERROR, "$.serve.image", "'tool'"),
    ("no image at all", {**with_serve(), "runtime": {}}, "AG600", ERROR, "$.serve", "images: none"),
    ("bad JSON path", expectation(path="$..x", equals=1), "AG601", ERROR,
     "$.serve.checks[0].expect.json[0].path", "cannot read"),
    ("two tests", expectation(path="$.a", equals=1, length=2), "AG602", ERROR,
     "$.serve.checks[0].expect.json[0]", "given: equals, length"),
    ("no test", expectation(path="$.a"), "AG602", ERROR, "$.serve.checks[0].expect.json[0]", "none given"),
    ("range upside down", expectation(path="$.a", range=[2, 1]), "AG603", ERROR,
     "$.serve.checks[0].expect.json[0].range", "minimum is above"),
    ("two checks one name", with_serve(checks=[SERVE["checks"][0], SERVE["checks"][0]]), "AG604", ERROR,
     "$.serve.checks[1].name", "'embed'"),
    ("GET with a body", with_serve(checks=[{**SERVE["checks"][0], "method": "GET"}]), "AG605", ERROR,
     "$.serve.checks[0].method", "GET"),
    ("weights over /usr", with_serve(weights="/usr"), "AG606", ERROR, "$.serve.weights", "/usr"),
    ("weights over /etc", with_serve(weights="/etc/"), "AG105", ERROR, "$.serve.weights", ""),  # schema: no trailing /
    ("weights over /usr/local", with_serve(weights="//usr//local"), "AG606", ERROR, "$.serve.weights", "/usr/local"),
    ("unknown variable", with_serve(args=["--port", "$(PORT)"]), "AG607", WARNING, "$.serve.args", "$(PORT)"),
    ("env sets the port", with_serve(env={"AIRGAP_SERVE_PORT": "1"}), "AG608", WARNING,
     "$.serve.env.AIRGAP_SERVE_PORT", "AIRGAP_SERVE_PORT"),
    ("missing checks", with_serve(checks=None), "AG610", ERROR, "$.serve", "'checks'"),
    ("no checks", with_serve(checks=[]), "AG105", ERROR, "$.serve.checks", ""),
    ("misspelt key", with_serve(readyness={"path": "/"}), "AG101", ERROR, "$.serve.readyness", "readyness"),
    ("port out of range", with_serve(port=70000), "AG105", ERROR, "$.serve.port", ""),
    ("latency form", with_serve(checks=[{**SERVE["checks"][0], "expect": {"latency": "fast"}}]), "AG105",
     ERROR, "$.serve.checks[0].expect.latency", ""),
    ("relative mount", with_serve(weights="weights"), "AG105", ERROR, "$.serve.weights", ""),
    ("mount with ..", with_serve(weights="/w/../etc"), "AG105", ERROR, "$.serve.weights", ""),
    ("bad method", with_serve(checks=[{**SERVE["checks"][0], "method": "DELETE"}]), "AG104", ERROR,
     "$.serve.checks[0].method", ""),
    ("path not absolute", with_serve(readiness={"path": "health"}), "AG105", ERROR,
     "$.serve.readiness.path", ""),
    ("bad env name", with_serve(env={"1X": "a"}), "AG105", ERROR, "$.serve.env", ""),
    ("device resource form", with_serve(device_resource="gpu"), "AG105", ERROR, "$.serve.device_resource", ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "code", "severity", "path", "words"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_serve_findings(
    tmp_path: Path, doc: dict[str, Any], code: str, severity: Severity, path: str, words: str
) -> None:
    report = validate(write(tmp_path, doc))
    found = [f for f in report.findings if f.code == code]
    assert found, [str(f) for f in report.findings]
    f = found[0]
    assert f.severity is severity
    if path:
        assert f.json_path == path, f.json_path
    assert words in f.message
    assert f.location.line is not None  # a place in the file
    assert report.valid == (
        severity is not ERROR and not any(x.severity is ERROR for x in report.findings)
    )


def test_device_resource_without_an_accelerator_warns(tmp_path: Path) -> None:
    doc = with_serve(device_resource="nvidia.com/gpu")
    doc["target"] = {"platform": "linux/amd64", "accelerator": {"vendor": "none"}}
    report = validate(write(tmp_path, doc))
    assert [f.code for f in report.findings if f.code.startswith("AG6")] == ["AG609"]


def test_targets_take_their_own_serve_keys_over_the_shared_ones(tmp_path: Path) -> None:
    doc = copy.deepcopy(BASE)
    doc.pop("target")
    doc["serve"] = {**SERVE, "env": {"A": "1", "B": "2"}}
    doc["targets"] = {
        "cuda": BASE["target"],
        "ascend": {
            "platform": "linux/arm64",
            "accelerator": {"vendor": "huawei", "chips": ["ascend910b3"], "count": 8},
            "stack": {"cann": ">=8.0.0"},
            "runtime": {"images": [{"ref": "example.org/mindie:1", "role": "serving"}]},
            "serve": {"port": 1025, "env": {"B": "3"}, "device_resource": "huawei.com/Ascend910B3"},
        },
    }
    result = load_manifest(write(tmp_path, doc))
    assert result.manifest is not None, [str(f) for f in result.findings]
    cuda, ascend = (result.manifest.target(t) for t in ("cuda", "ascend"))
    assert cuda.serve is not None and ascend.serve is not None
    assert (cuda.serve.port, ascend.serve.port) == (8000, 1025)
    assert dict(cuda.serve.env) == {"A": "1", "B": "2"}
    assert dict(ascend.serve.env) == {"A": "1", "B": "3"}
    assert ascend.serve.checks == cuda.serve.checks
    assert ascend.serve.device_resource == "huawei.com/Ascend910B3"
    assert ascend.serve.json_path == ("targets", "ascend", "serve")
    check = cuda.serve.checks[0]
    assert (check.method, check.latency_ms, check.status) == ("POST", 500, 200)
    assert [(e.kind, e.value) for e in check.json] == [
        ("length", 384), ("range", [-1, 1]), ("equals", "list"), ("contains", "MiniLM"),
    ]  # fmt: skip
    assert cuda.serve.readiness.timeout_s == 60 and cuda.serve.weights == "/weights"


def test_the_examples_validate() -> None:
    examples = Path(__file__).resolve().parents[2] / "manifests" / "examples"
    for name in (
        "demo.yaml",
        "qwen2.5-7b-ascend910b3.yaml",
        "llama-3-8b-h100.yaml",
        "qwen2.5-7b-multi.yaml",
    ):
        report = validate(examples / name)
        assert report.valid, (name, [str(f) for f in report.findings])
        assert report.manifest is not None
        assert all(t.serve is not None for t in report.manifest.targets), name
