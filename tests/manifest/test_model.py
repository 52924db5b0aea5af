"""Manifest v1: schema findings with places and hints, and the typed objects built from it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import textwrap
from pathlib import Path

import pytest

from packager.findings import Severity
from packager.manifest.model import load_manifest, parse_duration, parse_size
from tests.support.manifests import BASE


def write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "m.yaml"
    f.write_text(textwrap.dedent(text))
    return f


def replace(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new)


def test_a_minimal_manifest_loads_into_typed_objects(tmp_path: Path) -> None:
    result = load_manifest(write(tmp_path, BASE))
    assert result.findings == ()
    m = result.manifest
    assert m is not None
    assert (m.name, m.version) == ("demo", "1.0.0")
    assert m.model.source.path == tmp_path / "weights"  # relative to the manifest's folder
    (t,) = m.targets
    assert t.id is None and t.json_path == ("target",)
    assert t.accelerator.chips == ("h100",) and t.accelerator.count == 2
    assert t.stack.cuda == "12.4"
    assert t.precision == "fp16"
    assert m.bundle_name(t) == "demo-1.0.0"
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.name = "other"  # type: ignore[misc]


# (description, manifest text, code, line, json path, words in the message, words in the hint)
SCHEMA_CASES = [
    (
        "unknown top-level key",
        BASE + "tagret: {}\n",
        "AG101",
        13,
        "$.tagret",
        "unknown key",
        "target",
    ),
    (
        "misspelt nested key",
        replace("count: 2", "cuont: 2"),
        "AG101",
        11,
        "$.target.accelerator.cuont",
        "unknown key 'cuont'",
        "did you mean 'count'",
    ),
    (
        "missing required key",
        replace("  format: safetensors\n", ""),
        "AG102",
        5,
        "$.model.format",
        "missing required key 'format'",
        None,
    ),
    (
        "wrong type",
        replace("count: 2", "count: two"),
        "AG103",
        11,
        "$.target.accelerator.count",
        "must be an integer",
        None,
    ),
    (
        "list instead of mapping",
        replace("metadata: {name: demo, version: 1.0.0}", "metadata: [demo]"),
        "AG103",
        3,
        "$.metadata",
        "must be a mapping",
        None,
    ),
    (
        "enum with a typo",
        replace("precision: fp16", "precision: fp61"),
        "AG104",
        8,
        "$.model.precision",
        "'fp61'",
        "did you mean 'fp16'",
    ),
    (
        "wrong apiVersion",
        replace("airgap/v1", "airgap/v2"),
        "AG104",
        1,
        "$.apiVersion",
        "airgap/v2",
        None,
    ),
    (
        "platform",
        replace("linux/amd64", "linux/x86_64"),
        "AG104",
        10,
        "$.target.platform",
        "x86_64",
        None,
    ),
    (
        "version not semver",
        replace("version: 1.0.0", "version: '1.0'"),
        "AG105",
        3,
        "$.metadata.version",
        "expected form",
        "semantic version",
    ),
    (
        "name with capitals",
        replace("name: demo", "name: Demo"),
        "AG105",
        3,
        "$.metadata.name",
        "Demo",
        None,
    ),
    (
        "empty chip list",
        replace("chips: [h100]", "chips: []"),
        "AG105",
        11,
        "$.target.accelerator.chips",
        "empty",
        None,
    ),
    (
        "same chip twice",
        replace("chips: [h100]", "chips: [h100, h100]"),
        "AG105",
        11,
        "$.target.accelerator.chips",
        "twice",
        None,
    ),
    (
        "nvidia without chips",
        replace("vendor: nvidia, chips: [h100], count: 2", "vendor: nvidia"),
        "AG102",
        11,
        "$.target.accelerator.chips",
        "'chips'",
        None,
    ),
    (
        "bad sha256 pin",
        replace("precision: fp16", "precision: fp16\n  sha256: {a.bin: xyz}"),
        "AG105",
        9,
        "$.model.sha256['a.bin']",
        "expected form",
        "sha256",
    ),
    (
        "both target and targets",
        BASE + "targets: {x: {}}\n",
        "AG106",
        13,
        "$",
        "either `target`",
        None,
    ),
    (
        "neither target nor targets",
        BASE[: BASE.index("target:")],
        "AG106",
        None,
        "$",
        "no `target`",
        None,
    ),
    (
        "source with both forms",
        replace("{path: ./weights}", "{path: ./w, huggingface: {repo: a/b, revision: main}}"),
        "AG106",
        6,
        "$.model.source",
        "does not match",
        "path",
    ),
    (
        "source with a typo",
        replace("{path: ./weights}", "{pth: ./weights}"),
        "AG106",
        6,
        "$.model.source",
        "keys given: 'pth'",
        "path",
    ),
    (
        "source with a terminal escape for a key (found by the fuzzer)",
        replace("{path: ./weights}", '{"\\x1b[2J": ./weights}'),
        "AG106",
        6,
        "$.model.source",
        "keys given: '\\x1b[2J'",
        "path",
    ),
    (
        "huggingface without revision",
        replace("{path: ./weights}", "{huggingface: {repo: a/b}}"),
        "AG102",
        6,
        "$.model.source.huggingface.revision",
        "'revision'",
        None,
    ),
    (
        "expires not a duration",
        replace("version: 1.0.0", "version: 1.0.0, expires: soon"),
        "AG105",
        3,
        "$.metadata.expires",
        "soon",
        "duration",
    ),
    (
        "kernel of unknown kind",
        BASE + "kernels: [{name: k, kind: cuda-fatbn, path: k.fatbin}]\n",
        "AG104",
        13,
        "$.kernels[0].kind",
        "cuda-fatbn",
        "did you mean 'cuda-fatbin'",
    ),
]


@pytest.mark.parametrize(
    ("text", "code", "line", "path", "message", "hint"),
    [pytest.param(*c[1:], id=c[0]) for c in SCHEMA_CASES],
)
def test_schema_findings_name_the_place_and_the_fix(
    tmp_path: Path,
    text: str,
    code: str,
    line: int | None,
    path: str,
    message: str,
    hint: str | None,
) -> None:
    result = load_manifest(write(tmp_path, text))
    assert result.manifest is None
    matching = [f for f in result.findings if f.code == code and f.json_path == path]
    assert matching, [f"{f.code} {f.json_path} {f.message}" for f in result.findings]
    f = matching[0]
    assert f.severity is Severity.ERROR
    assert message in f.message
    assert f.location.file.endswith("m.yaml")
    if line is not None:
        assert f.location.line == line
    if hint is not None:
        assert f.hint and hint in f.hint


def test_every_schema_error_is_reported_not_just_the_first(tmp_path: Path) -> None:
    text = replace("count: 2", "count: two").replace("precision: fp16", "precision: fp61")
    text += "extra: 1\n"
    codes = sorted(f.code for f in load_manifest(write(tmp_path, text)).findings)
    assert codes == ["AG101", "AG103", "AG104"]


def test_findings_come_in_file_order(tmp_path: Path) -> None:
    text = replace("count: 2", "count: two").replace("name: demo", "name: Demo")
    lines = [f.location.line for f in load_manifest(write(tmp_path, text)).findings]
    assert lines == sorted(lines)


MULTI = """\
apiVersion: airgap/v1
kind: Bundle
metadata: {name: qwen, version: 1.2.0, expires: 52w}
model:
  name: Qwen/Qwen2.5-7B-Instruct
  source: {huggingface: {repo: Qwen/Qwen2.5-7B-Instruct, revision: main, cache: ../hf}}
  format: safetensors
  precision: bf16
runtime:
  images: [{ref: "reg/shared:1", role: sidecar}]
  files: [{source: common.txt}]
  wheels: {requirements: common-req.txt, python: "3.11"}
kernels:
  - {name: shared, kind: cuda-ptx, path: k/shared.ptx}
targets:
  ascend:
    platform: linux/arm64
    accelerator: {vendor: huawei, chips: [ascend310p3], count: 2, memory: 24GB}
    stack: {cann: ">=8.0.0"}
    precision: fp16
    runtime:
      images: [{ref: "reg/mindie:1", role: serving}]
      wheels: {requirements: [ascend-req.txt]}
  cuda:
    platform: linux/amd64
    accelerator: {vendor: nvidia, chips: [h100]}
    stack: {cuda: "12.4"}
    kernels:
      - {name: own, kind: cuda-fatbin, path: k/own.fatbin, targets: [sm_90]}
    smoke: {command: [nvidia-smi], timeout: 2m}
"""


def test_targets_merge_shared_parts_and_override_precision(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, MULTI)).manifest
    assert m is not None
    assert m.expires == dt.timedelta(weeks=52)
    assert m.model.source.huggingface is not None
    assert m.model.source.huggingface.cache == (tmp_path / "../hf")
    ascend, cuda = m.targets
    assert (ascend.id, cuda.id) == ("ascend", "cuda")
    assert m.bundle_name(ascend) == "qwen-1.2.0-ascend"
    assert ascend.precision == "fp16" and cuda.precision == "bf16"
    assert [i.ref for i in ascend.images] == ["reg/shared:1", "reg/mindie:1"]
    assert [i.json_path for i in ascend.images] == [
        ("runtime", "images", 0),
        ("targets", "ascend", "runtime", "images", 0),
    ]
    assert [i.ref for i in cuda.images] == ["reg/shared:1"]
    assert ascend.wheels is not None and cuda.wheels is not None
    assert [p.name for p in ascend.wheels.requirements] == ["common-req.txt", "ascend-req.txt"]
    assert ascend.wheels.python == "3.11"
    assert [k.name for k in cuda.kernels] == ["shared", "own"]
    assert ascend.accelerator.memory_bytes == 24 * 10**9
    assert cuda.accelerator.count == 1
    assert cuda.smoke is not None and cuda.smoke.timeout_s == 120
    assert ascend.smoke is None
    assert m.target("cuda") is cuda


@pytest.mark.parametrize(("text", "days"), [("12h", 0.5), ("365d", 365), ("2w", 14), ("1y", 365)])
def test_durations(text: str, days: float) -> None:
    assert parse_duration(text) == dt.timedelta(days=days)


@pytest.mark.parametrize(
    ("text", "size"),
    [("64GB", 64 * 10**9), ("80GiB", 80 * 2**30), ("1.5TB", 1_500_000_000_000), ("512 MiB", 2**29)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_nodes_and_mig_default_to_one_node_of_whole_gpus(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, BASE)).manifest
    assert m is not None
    (t,) = m.targets
    assert (t.nodes, t.accelerator.mig) == (1, False)


def test_nodes_and_mig(tmp_path: Path) -> None:
    text = replace(
        "  accelerator: {vendor: nvidia, chips: [h100], count: 2}\n",
        "  nodes: 2\n  accelerator: {vendor: nvidia, chips: [h100], count: 2, mig: true}\n",
    )
    result = load_manifest(write(tmp_path, text))
    assert result.findings == ()
    assert result.manifest is not None
    (t,) = result.manifest.targets
    assert (t.nodes, t.accelerator.mig) == (2, True)


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("  platform: linux/amd64\n", "  platform: linux/amd64\n  nodes: 0\n", "$.target.nodes"),
        ("count: 2}", "count: 2, mig: yes please}", "$.target.accelerator.mig"),
    ],
    ids=["nodes-0", "mig-not-a-boolean"],
)
def test_nodes_and_mig_schema_errors(tmp_path: Path, old: str, new: str, path: str) -> None:
    result = load_manifest(write(tmp_path, replace(old, new)))
    assert result.manifest is None
    assert [f.json_path for f in result.findings if f.severity is Severity.ERROR] == [path]
