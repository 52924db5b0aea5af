"""Chip-stack rules, end to end: a manifest file in, findings with code, severity and place out.

Every case writes a small manifest into tmp_path (a base manifest plus a few overrides), runs
``validate(path)`` (schema + packager/compat/checks.py) and says which finding must come out:
its code, its severity, its JSON path, and the manifest text its file:line:column points at.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from packager.commands.validate import ValidationReport, validate
from packager.findings import Finding, Severity

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
GB = 10**9

# ----------------------------------------------------------------------------- manifests

NVIDIA: dict[str, Any] = {
    "apiVersion": "airgap/v1",
    "kind": "Bundle",
    "metadata": {"name": "m", "version": "1.0.0"},
    "model": {
        "name": "org/model",
        "source": {"path": "./weights"},
        "format": "safetensors",
        "precision": "fp16",
    },
    "target": {
        "platform": "linux/amd64",
        "accelerator": {"vendor": "nvidia", "chips": ["h100"], "count": 1},
        "stack": {"cuda": "12.4", "driver": ">=550.54.14"},
    },
}

ASCEND: dict[str, Any] = {
    **copy.deepcopy(NVIDIA),
    "target": {
        "platform": "linux/arm64",
        "accelerator": {"vendor": "huawei", "chips": ["ascend910b3"], "count": 1},
        "stack": {"cann": ">=8.0.0", "driver": ">=24.1.0"},
    },
}

#: one model, both ecosystems: an Ascend 310P3 target in fp16 and an H100 target
MULTI: dict[str, Any] = {
    **{k: copy.deepcopy(v) for k, v in NVIDIA.items() if k != "target"},
    "targets": {
        "ascend": {
            "platform": "linux/arm64",
            "accelerator": {"vendor": "huawei", "chips": ["ascend310p3"], "count": 1},
            "stack": {"cann": ">=8.0.0"},
            "precision": "fp16",
        },
        "cuda": {
            "platform": "linux/amd64",
            "accelerator": {"vendor": "nvidia", "chips": ["h100"], "count": 1},
            "stack": {"cuda": "12.4", "driver": ">=550.54.14"},
        },
    },
}
MULTI["model"]["precision"] = "bf16"

BASES = {"nvidia": NVIDIA, "ascend": ASCEND, "multi": MULTI}

DELETE = object()  # an override value that removes the key


def build(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with dotted-path overrides: {"target.stack.cuda": "11.0", "target.stack.driver": DELETE}."""
    doc = copy.deepcopy(dict(base))
    for dotted, value in overrides.items():
        *parents, last = dotted.split(".")
        node = doc
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = copy.deepcopy(value)
    return doc


@dataclass(frozen=True)
class Sparse:
    """A file of ``size`` bytes that takes no disk space."""

    size: int


def write_manifest(
    tmp_path: Path, base: str, overrides: Mapping[str, Any], files: Mapping[str, str | Sparse]
) -> Path:
    (tmp_path / "weights").mkdir()
    for rel, content in files.items():
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Sparse):
            with f.open("wb") as fh:
                fh.truncate(content.size)
        else:
            f.write_text(content)
    path = tmp_path / "manifest.yaml"
    text = yaml.safe_dump(
        build(BASES[base], overrides), sort_keys=False, default_flow_style=None, width=400
    )
    path.write_text(text)
    return path


def text_at(path: Path, finding: Finding) -> str:
    """The manifest text from the finding's line:column to the end of that line, quotes removed."""
    loc = finding.location
    assert loc.file == str(path)
    assert loc.line is not None and loc.column is not None, finding
    line = path.read_text().splitlines()[loc.line - 1]
    return line[loc.column - 1 :].replace("'", "").replace('"', "")


def show(report: ValidationReport) -> str:
    return "\n".join(
        f"{f.severity} {f.code} {f.json_path} {f.location} {f.message} | {f.hint}"
        for f in report.findings
    )


# ----------------------------------------------------------------------------- the rules

CHIPS = "target.accelerator.chips"
KERNEL_FILE: Mapping[str, str | Sparse] = MappingProxyType({"k.bin": ""})


def _kernel_file() -> Mapping[str, str | Sparse]:
    return KERNEL_FILE


def fatbin(*targets: str, kind: str = "cuda-fatbin") -> list[dict[str, Any]]:
    return [{"name": "k", "kind": kind, "path": "k.bin", "targets": list(targets)}]


def reqs(text: str) -> dict[str, str]:
    return {"requirements.txt": text}


WHEELS = {"runtime.wheels": {"requirements": "requirements.txt"}}
MINDIE = "swr.cn-south-1.myhuaweicloud.com/ascendhub/mindie:2.1.RC1-{}-py311-openeuler24.03-lts"
VLLM = "quay.io/ascend/vllm-ascend:{}"


@dataclass(frozen=True)
class Rule:
    """Given a manifest (base + overrides + files), this one finding comes out."""

    base: str
    set: Mapping[str, Any]
    code: str
    severity: Severity
    path: str
    at: str  # the manifest text that file:line:column points at
    files: Mapping[str, str | Sparse] = field(default_factory=_kernel_file)
    hint: str | None = None  # a piece of the hint


# fmt: off
RULES: dict[str, Rule] = {
    # --- chips and vendor
    "unknown-chip-h10": Rule(
        "nvidia", {CHIPS: ["h10"]}, "AG201", ERROR, "$.target.accelerator.chips[0]", "h10",
        hint="did you mean 'h100'?",
    ),
    "unknown-chip-ascend910b5": Rule(
        "ascend", {CHIPS: ["ascend910b5"]}, "AG201", ERROR, "$.target.accelerator.chips[0]",
        "ascend910b5", hint="did you mean 'ascend910b",
    ),
    "unknown-chip-nothing-close": Rule(
        "nvidia", {CHIPS: ["h100", "zzzz"]}, "AG201", ERROR, "$.target.accelerator.chips[1]",
        "zzzz", hint="known chips: t4, v100",
    ),
    "alias-H100": Rule(
        "nvidia", {CHIPS: ["H100"]}, "AG200", INFO, "$.target.accelerator.chips[0]", "H100",
        hint="'h100'",
    ),
    "alias-910B3": Rule(
        "ascend", {CHIPS: ["910B3"]}, "AG200", INFO, "$.target.accelerator.chips[0]", "910B3",
        hint="'ascend910b3'",
    ),
    "alias-second-chip": Rule(
        "ascend", {CHIPS: ["ascend910b4", "Ascend910B3"]}, "AG200", INFO,
        "$.target.accelerator.chips[1]", "Ascend910B3",
    ),
    "nvidia-chip-under-huawei": Rule(
        "ascend", {CHIPS: ["h100"]}, "AG202", ERROR, "$.target.accelerator.chips[0]", "h100",
        hint="set vendor: nvidia",
    ),
    "ascend-chip-under-nvidia": Rule(
        "nvidia", {CHIPS: ["ascend910b3"]}, "AG202", ERROR, "$.target.accelerator.chips[0]",
        "ascend910b3", hint="set vendor: huawei",
    ),
    "cann-on-nvidia": Rule(
        "nvidia", {"target.stack.cann": ">=8.0.0"}, "AG203", ERROR, "$.target.stack.cann", "cann:",
    ),
    "torch_npu-on-nvidia": Rule(
        "nvidia", {"target.stack.torch_npu": "2.4.0.post2"}, "AG203", ERROR,
        "$.target.stack.torch_npu", "torch_npu:",
    ),
    "cuda-on-huawei": Rule(
        "ascend", {"target.stack.cuda": "12.4"}, "AG203", ERROR, "$.target.stack.cuda", "cuda:",
    ),
    "vendor-none-with-chips": Rule(
        "nvidia",
        {"target.accelerator": {"vendor": "none", "chips": ["h100"]}, "target.stack": DELETE},
        "AG204", ERROR, "$.target.accelerator.chips", "[h100]",
    ),
    "vendor-none-with-cuda": Rule(
        "nvidia", {"target.accelerator": {"vendor": "none"}, "target.stack": {"cuda": "12.4"}},
        "AG204", ERROR, "$.target.stack.cuda", "cuda:",
    ),
    "vendor-none-with-cann": Rule(
        "nvidia", {"target.accelerator": {"vendor": "none"}, "target.stack": {"cann": "8.0.0"}},
        "AG204", ERROR, "$.target.stack.cann", "cann:",
    ),
    "nvidia-without-cuda": Rule(
        "nvidia", {"target.stack.cuda": DELETE}, "AG205", WARNING, "$.target.stack",
        "{driver:",
    ),
    "nvidia-without-stack": Rule(
        "nvidia", {"target.stack": DELETE}, "AG205", WARNING, "$.target",
        "platform: linux/amd64",
    ),
    "huawei-without-cann": Rule(
        "ascend", {"target.stack.cann": DELETE}, "AG205", WARNING, "$.target.stack", "{driver:",
    ),
    "cuda-not-a-version": Rule(
        "nvidia", {"target.stack.cuda": "latest"}, "AG206", ERROR, "$.target.stack.cuda", "latest",
    ),
    "driver-not-a-version": Rule(
        "nvidia", {"target.stack.driver": ">=r550"}, "AG206", ERROR, "$.target.stack.driver",
        ">=r550",
    ),
    # --- precision
    "bf16-on-ascend310p3": Rule(
        "ascend", {CHIPS: ["ascend310p3"], "model.precision": "bf16"}, "AG210", ERROR,
        "$.model.precision", "bf16", hint="fp16",
    ),
    "bf16-on-ascend910a": Rule(
        "ascend", {CHIPS: ["ascend910a"], "model.precision": "bf16"}, "AG210", ERROR,
        "$.model.precision", "bf16", hint="fp16",
    ),
    "bf16-on-t4": Rule(
        "nvidia", {CHIPS: ["t4"], "model.precision": "bf16"}, "AG210", ERROR,
        "$.model.precision", "bf16", hint="use fp16 on t4",
    ),
    "bf16-on-v100": Rule(
        "nvidia", {CHIPS: ["v100"], "model.precision": "bf16"}, "AG210", ERROR,
        "$.model.precision", "bf16", hint="use fp16 on v100",
    ),
    "tf32-on-t4": Rule(
        "nvidia", {CHIPS: ["t4"], "model.precision": "tf32"}, "AG210", ERROR,
        "$.model.precision", "tf32",
    ),
    "bf16-on-ascend310b1-unsure": Rule(
        "ascend", {CHIPS: ["ascend310b1"], "model.precision": "bf16"}, "AG210", WARNING,
        "$.model.precision", "bf16",
    ),
    "fp8-on-a100": Rule(
        "nvidia", {CHIPS: ["a100"], "model.precision": "fp8"}, "AG211", ERROR,
        "$.model.precision", "fp8", hint="fp8-capable chip",
    ),
    "fp8_e4m3-on-a100": Rule(
        "nvidia", {CHIPS: ["a100"], "model.precision": "fp8_e4m3"}, "AG211", ERROR,
        "$.model.precision", "fp8_e4m3",
    ),
    "fp8-on-910b3": Rule(
        "ascend", {"model.precision": "fp8"}, "AG211", ERROR, "$.model.precision", "fp8",
        hint="W8A8 with msModelSlim, or convert them to bf16",
    ),
    "fp8_e4m3-on-910c": Rule(
        "ascend", {CHIPS: ["ascend910c"], "model.precision": "fp8_e4m3"}, "AG211", ERROR,
        "$.model.precision", "fp8_e4m3", hint="to bf16",
    ),
    "fp8-on-310p3-converts-to-fp16": Rule(
        "ascend", {CHIPS: ["ascend310p3"], "model.precision": "fp8"}, "AG211", ERROR,
        "$.model.precision", "fp8", hint="convert them to fp16",
    ),
    # --- CUDA <-> chip
    "cuda-11.0-on-h100": Rule(
        "nvidia", {"target.stack.cuda": "11.0"}, "AG220", ERROR, "$.target.stack.cuda", "11.0",
        hint="h100 needs CUDA 11.8",
    ),
    "cuda-12.4-on-b200": Rule(
        "nvidia", {CHIPS: ["b200"]}, "AG220", ERROR, "$.target.stack.cuda", "12.4",
        hint="b200 needs CUDA 12.8",
    ),
    "cuda-12.4-on-rtx-pro-6000": Rule(
        "nvidia", {CHIPS: ["rtx-pro-6000"]}, "AG220", ERROR, "$.target.stack.cuda", "12.4",
    ),
    "cuda-12.8-on-b300-unsure": Rule(
        "nvidia", {CHIPS: ["b300"], "target.stack.cuda": "12.8"}, "AG220", WARNING,
        "$.target.stack.cuda", "12.8",
    ),
    "cuda-open-range-admits-too-old": Rule(
        "nvidia", {"target.stack.cuda": ">=11.0"}, "AG220", WARNING, "$.target.stack.cuda",
        ">=11.0", hint='narrow it, e.g. "11.8"',
    ),
    "cuda-13-on-v100": Rule(
        "nvidia",
        {CHIPS: ["v100"], "target.stack.cuda": "13.0", "target.stack.driver": ">=580.65.06"},
        "AG221", ERROR, "$.target.stack.cuda", "13.0", hint="v100 needs CUDA 9.0 .. 12.9",
    ),
    "cuda-open-range-on-v100": Rule(
        "nvidia", {CHIPS: ["v100"], "target.stack.cuda": ">=12.4"}, "AG221", WARNING,
        "$.target.stack.cuda", ">=12.4", hint="<13",
    ),
    "cuda-13-on-b200-and-v100": Rule(
        "nvidia",
        {CHIPS: ["b200", "v100"], "target.stack.cuda": "13.0", "target.stack.driver": ">=580.65.06"},
        "AG221", ERROR, "$.target.stack.cuda", "13.0",
    ),
    # --- CUDA <-> driver
    "driver-470-for-cuda-12.4": Rule(
        "nvidia", {"target.stack.driver": ">=470"}, "AG222", ERROR, "$.target.stack.driver",
        ">=470", hint='">=525.60.13"',
    ),
    "driver-unbounded-below": Rule(
        "nvidia", {"target.stack.driver": "<600"}, "AG222", ERROR, "$.target.stack.driver", "<600",
    ),
    "driver-525-for-cuda-13": Rule(
        "nvidia", {"target.stack.cuda": "13.0", "target.stack.driver": ">=550.54.14"}, "AG222",
        ERROR, "$.target.stack.driver", ">=550.54.14", hint='">=580.65.06"',
    ),
    "driver-535-for-cuda-12.4-minor-compat": Rule(
        "nvidia", {"target.stack.driver": ">=535"}, "AG223", WARNING, "$.target.stack.driver",
        ">=535", hint='">=550.54.14"',
    ),
    "cuda-matches-no-release": Rule(
        "nvidia", {"target.stack.cuda": "14.0"}, "AG224", WARNING, "$.target.stack.cuda", "14.0",
    ),
    "no-driver-constraint": Rule(
        "nvidia", {"target.stack.driver": DELETE}, "AG225", INFO, "$.target.stack", "{cuda:",
        hint='">=525.60.13"',
    ),
    # --- torch_npu <-> CANN
    "torch_npu-2.1.0.post10-under-cann-8.3": Rule(
        "ascend", {**WHEELS, "target.stack.cann": ">=8.3.RC1"}, "AG230", ERROR,
        "$.runtime.wheels", "{requirements: requirements.txt}",
        files=reqs("numpy==1.26.4\ntorch_npu==2.1.0.post10\n"), hint="2.1.0.post17",
    ),
    "torch_npu-in-stack-under-cann-8.3": Rule(
        "ascend", {"target.stack.torch_npu": "2.1.0.post10", "target.stack.cann": ">=8.3.RC1"},
        "AG230", ERROR, "$.target.stack.torch_npu", "2.1.0.post10", hint="is for CANN 8.0.0",
    ),
    "torch-2.3.1-with-torch_npu-2.4.0": Rule(
        "ascend", WHEELS, "AG231", ERROR, "$.runtime.wheels", "{requirements: requirements.txt}",
        files=reqs("torch==2.3.1\ntorch_npu==2.4.0.post2\n"), hint="pin torch==2.4.0",
    ),
    "cann-rc-without-torch_npu-facts": Rule(
        "ascend", {**WHEELS, "target.stack.cann": "7.0.RC1"}, "AG232", WARNING,
        "$.target.stack.cann", "7.0.RC1", files=reqs("torch_npu==2.4.0.post2\n"),
        hint="8.0.0",
    ),
    # --- CANN <-> chip, driver, firmware
    "cann-5.1.RC2-on-910b3": Rule(
        "ascend", {"target.stack.cann": "5.1.RC2"}, "AG233", ERROR, "$.target.stack.cann",
        "5.1.RC2", hint="ascend910b3 needs CANN 7.0.RC1 .. 9.0.0",
    ),
    "cann-6.0.RC1-on-910b3": Rule(
        "ascend", {"target.stack.cann": "6.0.RC1"}, "AG233", ERROR, "$.target.stack.cann",
        "6.0.RC1", hint='">=7.0.RC1"',
    ),
    "cann-6.3.RC2-on-910b3-early-access-warns": Rule(
        "ascend", {"target.stack.cann": "6.3.RC2"}, "AG233", WARNING, "$.target.stack.cann",
        "6.3.RC2", hint="7.0.RC1",
    ),
    "cann-range-admits-too-old-for-910b4": Rule(
        "ascend", {CHIPS: ["ascend910b4"], "target.stack.cann": ">=6.0.RC1"}, "AG233", WARNING,
        "$.target.stack.cann", ">=6.0.RC1", hint='">=7.0.RC1"',
    ),
    "cann-8.0.RC1-on-a3": Rule(
        "ascend", {CHIPS: ["ascend910c"], "target.stack.cann": "8.0.RC1"}, "AG233", ERROR,
        "$.target.stack.cann", "8.0.RC1", hint="ascend910c needs CANN 8.0.0",
    ),
    "cann-7.0.0-on-310p3-ok-5.0.2-not": Rule(
        "ascend", {CHIPS: ["ascend310p3"], "target.stack.cann": "5.0.2"}, "AG233", WARNING,
        "$.target.stack.cann", "5.0.2", hint="5.1.RC1",
    ),
    "cann-8.x-is-not-a-constraint": Rule(
        "ascend", {"target.stack.cann": "8.x"}, "AG206", ERROR, "$.target.stack.cann", "8.x",
        hint='">=8.0.0,<9"',
    ),
    "cann-matches-no-release": Rule(
        "ascend", {"target.stack.cann": "7.5"}, "AG236", WARNING, "$.target.stack.cann", "7.5",
    ),
    "cann-8.0.0-with-driver-24.1.rc2": Rule(
        "ascend", {"target.stack.driver": ">=24.1.rc2"}, "AG234", WARNING,
        "$.target.stack.driver", ">=24.1.rc2", hint='">=24.1.0"',
    ),
    "cann-8.1.RC1-with-driver-24.1.0": Rule(
        "ascend", {"target.stack.cann": ">=8.1.RC1"}, "AG234", WARNING, "$.target.stack.driver",
        ">=24.1.0", hint='">=25.0.rc1"',
    ),
    "cann-8.0.0-with-firmware-7.3": Rule(
        "ascend", {"target.stack.firmware": ">=7.3.0"}, "AG235", WARNING,
        "$.target.stack.firmware", ">=7.3.0", hint='">=7.5.0"',
    ),
    "cann-without-driver": Rule(
        "ascend", {"target.stack.driver": DELETE}, "AG234", INFO, "$.target.stack", "{cann:",
        hint='">=24.1.0"',
    ),
    # --- platform
    "ascend910b3-on-amd64": Rule(
        "ascend", {"target.platform": "linux/amd64"}, "AG301", WARNING, "$.target.platform",
        "linux/amd64",
    ),
    "gh200-on-amd64": Rule(
        "nvidia", {CHIPS: ["gh200"]}, "AG301", WARNING, "$.target.platform", "linux/amd64",
    ),
    "aarch64-driver-file-on-amd64": Rule(
        "ascend",
        {
            "target.platform": "linux/amd64",
            CHIPS: ["ascend310p3"],
            "runtime.files": [
                {"source": "./drivers/Ascend-hdk-310p-npu-driver_24.1.rc2_linux-aarch64.run"}
            ],
        },
        "AG302", WARNING, "$.runtime.files[0]", "{source: ./drivers/Ascend-hdk-310p",
        files={"drivers/Ascend-hdk-310p-npu-driver_24.1.rc2_linux-aarch64.run": ""},
    ),
    "x86_64-file-on-arm64": Rule(
        "ascend", {"runtime.files": [{"source": "./cann_linux-x86_64.run"}]}, "AG302", WARNING,
        "$.runtime.files[0]", "{source: ./cann_linux-x86_64.run}",
        files={"cann_linux-x86_64.run": ""},
    ),
    "arm64-image-on-amd64": Rule(
        "nvidia", {"runtime.images": [{"ref": "registry.local/vllm:0.6.3-arm64"}]}, "AG302",
        WARNING, "$.runtime.images[0]", "{ref: registry.local/vllm:0.6.3-arm64}",
    ),
    "mindie-800I-A2-on-310p3": Rule(
        "ascend", {CHIPS: ["ascend310p3"], "runtime.images": [{"ref": MINDIE.format("800I-A2")}]},
        "AG303", ERROR, "$.runtime.images[0].ref", "swr.cn-south-1", hint="300I-Duo",
    ),
    "mindie-300I-Duo-on-910b3": Rule(
        "ascend", {"runtime.images": [{"ref": MINDIE.format("300I-Duo")}]}, "AG303", ERROR,
        "$.runtime.images[0].ref", "swr.cn-south-1", hint="800I-A2",
    ),
    "mindie-800I-A2-on-a3": Rule(
        "ascend", {CHIPS: ["ascend910c"], "runtime.images": [{"ref": MINDIE.format("800I-A2")}]},
        "AG303", ERROR, "$.runtime.images[0].ref", "swr.cn-south-1", hint="A3",
    ),
    "vllm-ascend-a2-image-on-a3": Rule(
        "ascend", {CHIPS: ["ascend910c"], "runtime.images": [{"ref": VLLM.format("v0.9.1")}]},
        "AG303", ERROR, "$.runtime.images[0].ref", "quay.io", hint="a3 (ascend910c)",
    ),
    "vllm-ascend-310p-image-on-910b3": Rule(
        "ascend", {"runtime.images": [{"ref": VLLM.format("v0.9.1-310p")}]}, "AG303", ERROR,
        "$.runtime.images[0].ref", "quay.io", hint="(no suffix)",
    ),
    "mindie-2.1.RC1-carries-cann-8.2-against-cann-8.0": Rule(
        "ascend",
        {"target.stack.cann": "8.0.0", "target.stack.driver": ">=25.2.0",
         "runtime.images": [{"ref": MINDIE.format("800I-A2")}]},
        "AG304", WARNING, "$.runtime.images[0].ref", "swr.cn-south-1", hint='">=8.2.RC1"',
    ),
    "vllm-ascend-0.9.1-needs-the-hdk-of-cann-8.2": Rule(
        "ascend",
        {"target.stack.cann": ">=8.2.RC1", "target.stack.driver": ">=25.0.rc1",
         "runtime.images": [{"ref": VLLM.format("v0.9.1")}]},
        "AG234", WARNING, "$.target.stack.driver", ">=25.0.rc1", hint='">=25.2.0"',
    ),
    "product-name-h100-sxm5-80gb": Rule(
        "nvidia", {CHIPS: ["H100-SXM5-80GB"]}, "AG200", INFO, "$.target.accelerator.chips[0]",
        "H100-SXM5-80GB", hint="'h100'",
    ),
    "product-name-a100-40gb-suggests-memory": Rule(
        "nvidia", {CHIPS: ["A100-SXM4-40GB"]}, "AG200", INFO, "$.target.accelerator.chips[0]",
        "A100-SXM4-40GB", hint="accelerator.memory: 40GB",
    ),
    "legacy-910-name-910ProB": Rule(
        "ascend", {CHIPS: ["910ProB"], "model.precision": "fp16"}, "AG200", INFO,
        "$.target.accelerator.chips[0]", "910ProB", hint="'ascend910a'",
    ),
    # --- resources and local inputs
    "weights-larger-than-memory": Rule(
        "nvidia", {"target.accelerator.memory": "1GB"}, "AG310", WARNING,
        "$.target.accelerator", "vendor: nvidia",
        files={"weights/model.safetensors": Sparse(2 * GB)}, hint="accelerator.count",
    ),
    "weights-larger-than-chip-memory": Rule(
        "ascend", {CHIPS: ["ascend310b1"], "target.accelerator.count": 2}, "AG310", WARNING,
        "$.target.accelerator", "vendor: huawei",
        files={"weights/a.safetensors": Sparse(9 * GB), "weights/b.safetensors": Sparse(8 * GB)},
    ),
    "missing-weights-folder": Rule(
        "nvidia", {"model.source": {"path": "./missing"}}, "AG311", WARNING,
        "$.model.source.path", "./missing",
    ),
    "missing-file": Rule(
        "nvidia", {"runtime.files": [{"source": "./nope.run"}]}, "AG311", WARNING,
        "$.runtime.files[0].source", "./nope.run",
    ),
    "missing-kernel": Rule(
        "nvidia", {"kernels": fatbin("sm_90")}, "AG311", WARNING, "$.kernels[0].path", "k.bin",
        files={},
    ),
    "missing-requirements": Rule(
        "nvidia", WHEELS, "AG311", WARNING, "$.runtime.wheels",
        "{requirements: requirements.txt}",
    ),
    # --- kernels
    "sm_80-kernel-on-h100": Rule(
        "nvidia", {"kernels": fatbin("sm_80")}, "AG401", ERROR, "$.kernels[0].targets",
        "[sm_80]", hint="code=sm_90",
    ),
    "sm_90a-kernel-on-b200": Rule(
        "nvidia", {CHIPS: ["b200"], "target.stack.cuda": "12.8", "target.stack.driver": ">=570.26",
                   "kernels": fatbin("sm_90a")},
        "AG401", ERROR, "$.kernels[0].targets", "[sm_90a]",
    ),
    "sm_80-kernel-on-t4": Rule(
        "nvidia", {CHIPS: ["t4"], "kernels": fatbin("sm_80")}, "AG401", ERROR,
        "$.kernels[0].targets", "[sm_80]",
    ),
    "compute_80-ptx-on-h100": Rule(
        "nvidia", {"kernels": fatbin("compute_80")}, "AG402", WARNING, "$.kernels[0].targets",
        "[compute_80]", hint="sm_90",
    ),
    "cuda-kernel-on-huawei": Rule(
        "ascend", {"kernels": fatbin("sm_90")}, "AG403", ERROR, "$.kernels[0].kind",
        "cuda-fatbin",
    ),
    "ascend-op-on-nvidia": Rule(
        "nvidia", {"kernels": fatbin("Ascend910B3", kind="ascend-op")}, "AG403", ERROR,
        "$.kernels[0].kind", "ascend-op",
    ),
    "bad-cuda-target-sm9": Rule(
        # the schema takes any non-empty string; the rule refuses it
        "nvidia", {"kernels": fatbin("sm_90", "sm9")}, "AG404", ERROR,
        "$.kernels[0].targets[1]", "sm9",
    ),
    "ascend-op-for-910b3-on-310p3": Rule(
        "ascend", {CHIPS: ["ascend310p3"], "kernels": fatbin("Ascend910B3", kind="ascend-op")},
        "AG401", ERROR, "$.kernels[0].targets", "[Ascend910B3]", hint="Ascend310P3",
    ),
    # --- one model, two targets
    "targets-second-target-names-its-path": Rule(
        "multi", {"targets.cuda.stack.cuda": "11.0"}, "AG220", ERROR,
        "$.targets.cuda.stack.cuda", "11.0",
    ),
    "targets-bf16-without-override": Rule(
        "multi", {"targets.ascend.precision": DELETE}, "AG210", ERROR, "$.model.precision", "bf16",
    ),
    "targets-bf16-override-on-310p3": Rule(
        "multi", {"targets.ascend.precision": "bf16", "model.precision": "fp16"}, "AG210", ERROR,
        "$.targets.ascend.precision", "bf16",
    ),
    "targets-own-kernel": Rule(
        "multi", {"targets.cuda.kernels": fatbin("sm_80")}, "AG401", ERROR,
        "$.targets.cuda.kernels[0].targets", "[sm_80]",
    ),
    "targets-shared-cuda-kernel-on-ascend": Rule(
        "multi", {"kernels": fatbin("sm_90")}, "AG403", ERROR, "$.kernels[0].kind", "cuda-fatbin",
    ),
    "targets-own-wheels": Rule(
        "multi",
        {"targets.ascend.runtime": {"wheels": {"requirements": "requirements.txt"}},
         "targets.ascend.stack.cann": ">=8.3.RC1"},
        "AG230", ERROR, "$.targets.ascend.runtime.wheels", "{requirements: requirements.txt}",
        files=reqs("torch_npu==2.1.0.post10\n"),
    ),
    "cuda-range-admitting-13-with-a-12.x-driver": Rule(
        "nvidia", {"target.stack.cuda": ">=12.4"}, "AG222", WARNING, "$.target.stack.driver",
        ">=550.54.14", hint="580.65.06",
    ),
    "torch_npu-for-a-newer-cann-the-range-admits": Rule(
        "ascend", {"target.stack.torch_npu": "2.5.1", "target.stack.cann": ">=8.0.0"}, "AG230",
        WARNING, "$.target.stack.torch_npu", "2.5.1", hint='">=8.1.RC1"',
    ),
    "ascend-op-for-910b2-on-910b2c": Rule(
        "ascend", {CHIPS: ["ascend910b2c"], "kernels": fatbin("Ascend910B2", kind="ascend-op")},
        "AG401", ERROR, "$.kernels[0].targets", "[Ascend910B2]",
    ),
    "ascend-op-for-any-ascend-is-not-a-soc": Rule(
        "ascend", {"kernels": fatbin("Ascend", kind="ascend-op")},
        "AG401", ERROR, "$.kernels[0].targets", "[Ascend]",
    ),
    "cuda-kernel-on-cpu-only-target": Rule(
        "nvidia",
        {"target.accelerator": {"vendor": "none"}, "target.stack": DELETE,
         "kernels": fatbin("sm_90")},
        "AG403", ERROR, "$.kernels[0].kind", "cuda-fatbin", hint="targets.<id>.kernels",
    ),
    "targets-precision-finding-names-the-target": Rule(
        "multi", {"targets.ascend.precision": DELETE}, "AG210", ERROR, "$.model.precision", "bf16",
        hint="fp16",
    ),
    "targets-cann-on-cuda-target": Rule(
        "multi", {"targets.cuda.stack.cann": "8.0.0"}, "AG203", ERROR,
        "$.targets.cuda.stack.cann", "cann:",
    ),
}
# fmt: on


@pytest.mark.parametrize("rule", list(RULES.values()), ids=list(RULES))
def test_rule(tmp_path: Path, rule: Rule) -> None:
    path = write_manifest(tmp_path, rule.base, rule.set, rule.files)
    report = validate(path)
    assert report.manifest is not None, show(report)  # the schema accepted it: a stack finding
    hits = [f for f in report.findings if f.code == rule.code and f.json_path == rule.path]
    assert len(hits) == 1, show(report)
    f = hits[0]
    assert f.severity is rule.severity, show(report)
    assert text_at(path, f).startswith(rule.at), (text_at(path, f), show(report))
    if rule.hint is not None:
        assert f.hint is not None and rule.hint in f.hint, f.hint
    assert report.valid is not any(x.severity is ERROR for x in report.findings)


# fmt: off
REGRESSIONS: dict[str, tuple[Rule, str | None]] = {
    "cuda-13-on-v100-bare-major": (
        Rule(
            "nvidia",
            {CHIPS: ["v100"], "target.stack.cuda": "13", "target.stack.driver": ">=580.65.06"},
            "AG221", ERROR, "$.target.stack.cuda", "13",
        ),
        None,
    ),
    "cuda-patch-release-12.4.1-on-b200": (
        Rule(
            "nvidia", {CHIPS: ["b200"], "target.stack.cuda": "12.4.1"}, "AG220", ERROR,
            "$.target.stack.cuda", "12.4.1",
        ),
        None,
    ),
    "cuda-zero-patch-12.8.0-on-b200-is-fine": (
        Rule(
            "nvidia",
            {CHIPS: ["b200"], "target.stack.cuda": "12.8.0", "target.stack.driver": ">=570.26"},
            "AG224", WARNING, "$.target.stack.cuda", "12.8.0",
        ),
        "absent",
    ),
}
# fmt: on


@pytest.mark.parametrize(
    ("rule", "mode"),
    [pytest.param(*REGRESSIONS[k], id=k) for k in REGRESSIONS],
)
def test_rule_regressions(tmp_path: Path, rule: Rule, mode: str | None) -> None:
    path = write_manifest(tmp_path, rule.base, rule.set, rule.files)
    report = validate(path)
    hits = [f for f in report.findings if f.code == rule.code and f.json_path == rule.path]
    if mode == "absent":
        assert not hits, show(report)
        return
    assert len(hits) == 1, show(report)
    assert hits[0].severity is rule.severity, show(report)


# ----------------------------------------------------------------------------- clean manifests


@dataclass(frozen=True)
class Clean:
    """Given this manifest, none of ``codes`` comes out (and no error or warning at all)."""

    base: str
    set: Mapping[str, Any]
    codes: tuple[str, ...]
    files: Mapping[str, str | Sparse] = field(default_factory=_kernel_file)


# fmt: off
CLEAN: dict[str, Clean] = {
    "base-nvidia": Clean("nvidia", {}, ()),
    "base-ascend": Clean("ascend", {}, ()),
    "base-multi-fp16-override-no-AG210": Clean("multi", {}, ("AG210",)),
    "fp8-on-h100": Clean("nvidia", {"model.precision": "fp8"}, ("AG211",)),
    "fp8-on-l40s": Clean("nvidia", {CHIPS: ["l40s"], "model.precision": "fp8"}, ("AG211",)),
    "bf16-on-a100": Clean("nvidia", {CHIPS: ["a100"], "model.precision": "bf16"}, ("AG210",)),
    "bf16-on-ascend910b3": Clean("ascend", {"model.precision": "bf16"}, ("AG210",)),
    "bf16-on-ascend910c": Clean(
        "ascend", {CHIPS: ["ascend910c"], "model.precision": "bf16"}, ("AG210",)
    ),
    "fp16-on-ascend310p3": Clean("ascend", {CHIPS: ["ascend310p3"]}, ("AG210",)),
    "cuda-11.8-on-h100": Clean(
        "nvidia", {"target.stack.cuda": "11.8", "target.stack.driver": ">=520"}, ("AG220", "AG222")
    ),
    "cuda-12.8-on-b200": Clean(
        "nvidia",
        {CHIPS: ["b200"], "target.stack.cuda": "12.8", "target.stack.driver": ">=570.26"},
        ("AG220", "AG223"),
    ),
    "cuda-range-below-13-on-v100": Clean(
        "nvidia", {CHIPS: ["v100"], "target.stack.cuda": ">=12.4,<13"}, ("AG221",)
    ),
    "cuda-13-on-t4": Clean(
        "nvidia",
        {CHIPS: ["t4"], "target.stack.cuda": "13.0", "target.stack.driver": ">=580.65.06"},
        ("AG221",),
    ),
    "driver-550.54.14-for-cuda-12.4": Clean("nvidia", {}, ("AG222", "AG223")),
    "driver-newer-branch-for-cuda-12.4": Clean(
        "nvidia", {"target.stack.driver": ">=580.65.06"}, ("AG222", "AG223")
    ),
    "torch_npu-2.4.0.post2-with-cann-8.0.0": Clean(
        "ascend",
        {**WHEELS, "target.stack.cann": "8.0.0"},
        ("AG230", "AG231", "AG232"),
        reqs("torch==2.4.0\ntorch_npu==2.4.0.post2\n"),
    ),
    "torch_npu-2.5.1-with-cann-8.1.RC1": Clean(
        "ascend",
        {"target.stack.torch_npu": "2.5.1", "target.stack.torch": "2.5.1",
         "target.stack.cann": ">=8.1.RC1", "target.stack.driver": ">=25.0.rc1"},
        ("AG230", "AG231", "AG232"),
    ),
    "ascend-op-for-the-910b-family": Clean(
        "ascend", {"kernels": fatbin("Ascend910B", kind="ascend-op")}, ("AG401",)
    ),
    "cuda-patch-release-12.4.1-on-h100": Clean(
        "nvidia", {"target.stack.cuda": "12.4.1"}, ("AG220", "AG224")
    ),
    "ascend310p3-on-amd64": Clean(
        "ascend", {"target.platform": "linux/amd64", CHIPS: ["ascend310p3"]}, ("AG301",)
    ),
    "aarch64-driver-file-on-arm64": Clean(
        "ascend",
        {"runtime.files": [{"source": "./Ascend-hdk-910b-npu-driver_24.1.rc2_linux-aarch64.run"}]},
        ("AG302",),
        {"Ascend-hdk-910b-npu-driver_24.1.rc2_linux-aarch64.run": ""},
    ),
    "mindie-800I-A2-on-910b3": Clean(
        "ascend",
        {"target.stack.driver": ">=25.2.0", "runtime.images": [{"ref": MINDIE.format("800I-A2")}]},
        ("AG303", "AG302", "AG304", "AG234"),
    ),
    "mindie-300I-Duo-on-310p3": Clean(
        "ascend",
        {CHIPS: ["ascend310p3"], "target.stack.driver": ">=25.2.0",
         "runtime.images": [{"ref": MINDIE.format("300I-Duo")}]},
        ("AG303",),
    ),
    "mindie-A3-on-910c": Clean(
        "ascend",
        {CHIPS: ["ascend910c"], "target.stack.driver": ">=25.2.0",
         "runtime.images": [{"ref": MINDIE.format("A3")}]},
        ("AG303", "AG233"),
    ),
    "vllm-ascend-a3-openeuler-on-910c": Clean(
        "ascend",
        {CHIPS: ["ascend910c"], "target.stack.cann": ">=8.2.RC1", "target.stack.driver": ">=25.2.0",
         "runtime.images": [{"ref": VLLM.format("v0.9.1-a3-openeuler")}]},
        ("AG303", "AG304", "AG234"),
    ),
    "cann-8.0.0-on-every-current-chip": Clean(
        "ascend", {CHIPS: ["ascend910b1", "ascend910b2", "ascend910b4", "ascend910c"]},
        ("AG233",),
    ),
    "cann-8.5.0-with-driver-25.2.0": Clean(
        "ascend", {"target.stack.cann": ">=8.5.0", "target.stack.driver": ">=25.2.0"},
        ("AG233", "AG234", "AG236"),
    ),
    "w8a8-int8-on-910b3": Clean("ascend", {"model.precision": "int8"}, ("AG211",)),
    "weights-exactly-fill-memory": Clean(
        "nvidia",
        {"target.accelerator.memory": "1GB", "target.accelerator.count": 2},
        ("AG310",),
        {"weights/model.safetensors": Sparse(2 * GB)},
    ),
    "weights-fit-usual-memory": Clean(
        "nvidia", {}, ("AG310",), {"weights/model.safetensors": Sparse(2 * GB)}
    ),
    "big-file-excluded-by-include": Clean(
        "nvidia",
        {"target.accelerator.memory": "1GB", "model.include": ["*.json"]},
        ("AG310",),
        {"weights/model.safetensors": Sparse(2 * GB), "weights/config.json": "{}"},
    ),
    "sm_90+compute_90-on-h100": Clean("nvidia", {"kernels": fatbin("sm_90", "compute_90")}, ()),
    "sm_80+sm_90+compute_90-on-a100-h100-b200-ptx-warns-only": Clean(
        "nvidia",
        {CHIPS: ["a100", "h100"], "kernels": fatbin("sm_80", "sm_90", "compute_90")},
        ("AG401", "AG402"),
    ),
    "sm_80-on-a10-and-l40s": Clean(
        "nvidia", {CHIPS: ["a10", "l40s"], "kernels": fatbin("sm_80")}, ("AG401", "AG402")
    ),
    "ascend-op-for-910b-family-on-910b3": Clean(
        "ascend", {"kernels": fatbin("Ascend910B", kind="ascend-op")}, ("AG401", "AG403")
    ),
    "ascend-op-for-310p3": Clean(
        "ascend",
        {CHIPS: ["ascend310p3"], "kernels": fatbin("Ascend310P3", kind="ascend-op")},
        ("AG401",),
    ),
    "multi-target-kernels-in-their-own-target": Clean(
        "multi",
        {"targets.cuda.kernels": fatbin("sm_90"),
         "targets.ascend.kernels": fatbin("Ascend310P3", kind="ascend-op")},
        ("AG401", "AG403"),
    ),
}
# fmt: on


@pytest.mark.parametrize("case", list(CLEAN.values()), ids=list(CLEAN))
def test_clean(tmp_path: Path, case: Clean) -> None:
    path = write_manifest(tmp_path, case.base, case.set, case.files)
    report = validate(path)
    assert report.manifest is not None, show(report)
    assert not [f for f in report.findings if f.code in case.codes], show(report)
    assert not [f for f in report.findings if f.severity is not INFO], show(report)
    assert report.valid


def test_multi_target_precision_override(tmp_path: Path) -> None:
    """bf16 model, Ascend 310P3 target overriding precision to fp16: no AG210 anywhere; a
    finding in the second target (cuda) names $.targets.cuda... and that target's YAML line."""
    path = write_manifest(tmp_path, "multi", {"targets.cuda.stack.cuda": "11.0"}, {})
    report = validate(path)
    assert report.manifest is not None
    assert [t.id for t in report.manifest.targets] == ["ascend", "cuda"]
    assert [t.precision for t in report.manifest.targets] == ["fp16", "bf16"]
    assert not [f for f in report.findings if f.code == "AG210"], show(report)
    (f,) = [f for f in report.findings if f.severity is ERROR]
    assert (f.code, f.json_path) == ("AG220", "$.targets.cuda.stack.cuda")
    lines = path.read_text().splitlines()
    assert f.location.line is not None
    assert lines.index("  cuda:") < f.location.line - 1  # below the `cuda:` target's key
    assert text_at(path, f).startswith("11.0")


# ----------------------------------------------------------------------------- every finding


ALL_CASES = [pytest.param(r.base, r.set, r.files, id=f"rule-{k}") for k, r in RULES.items()] + [
    pytest.param(c.base, c.set, c.files, id=f"clean-{k}") for k, c in CLEAN.items()
]


@pytest.mark.parametrize(
    ("base", "overrides", "files"),
    [p for p in ALL_CASES],
)
def test_every_error_has_a_hint_and_a_place(
    tmp_path: Path, base: str, overrides: Mapping[str, Any], files: Mapping[str, str | Sparse]
) -> None:
    path = write_manifest(tmp_path, base, overrides, files)
    report = validate(path)
    for f in report.findings:
        assert f.code.startswith("AG") and len(f.code) == 5, f
        assert f.message, f
        assert f.json_path.startswith("$"), f
        assert f.location.file == str(path), f
        assert f.location.line is not None and f.location.column is not None, f
        if f.severity is ERROR:
            assert f.hint, f"{f.code} at {f.json_path} has no hint: {f.message}"


def test_codes_are_stable_strings_in_json(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, "nvidia", {CHIPS: ["t4"], "model.precision": "bf16"}, {})
    (finding,) = validate(path).to_json()["findings"]
    assert finding["code"] == "AG210"
    assert finding["severity"] == "error"
    assert finding["path"] == "$.model.precision"
    assert finding["file"] == str(path)
    assert finding["line"] == 8  # model.precision in the written manifest


def test_a_precision_finding_in_a_target_names_it(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, "multi", {"targets.ascend.precision": DELETE}, {})
    (f,) = [f for f in validate(path).findings if f.code == "AG210"]
    assert "target 'ascend'" in f.message


LONG = "w" * 300  # one name longer than NAME_MAX: the system cannot look it up


@pytest.mark.parametrize(
    ("overrides", "where", "words"),
    [
        pytest.param(
            {"model.source": {"path": "./" + LONG}},
            "$.model.source.path",
            "cannot be looked up on this host (File name too long)",
            id="weights-name-too-long",
        ),
        pytest.param(
            {"runtime.files": [{"source": "./" + "\u202e" * 100, "dest": "x"}]},
            "$.runtime.files[0].source",
            "'./\\u202e\\u202e",
            id="file-name-too-long-bidi",
        ),
        pytest.param(
            {"runtime.files": [{"source": "./a\x1b[2J", "dest": "x"}]},
            "$.runtime.files[0].source",
            "file './a\\x1b[2J' not found",
            id="escape-in-name",
        ),
        pytest.param(
            {"kernels": [{"name": "k", "kind": "cuda-fatbin", "path": LONG, "targets": ["sm_90"]}]},
            "$.kernels[0].path",
            "(File name too long)",
            id="kernel-name-too-long",
        ),
        pytest.param(
            {
                "kernels": [
                    {"name": "k", "kind": "ascend-op", "path": LONG, "targets": ["Ascend910B3"]}
                ]
            },
            "$.kernels[0].path",
            "(File name too long)",
            id="ascend-op-name-too-long",
        ),
    ],
)
def test_a_path_the_system_cannot_look_up_is_a_finding_not_a_crash(
    tmp_path: Path, overrides: Mapping[str, Any], where: str, words: str
) -> None:
    """Found by tests/support/fuzz: an OSError (ENAMETOOLONG) escaped validate and lock."""
    path = write_manifest(tmp_path, "nvidia", overrides, {})
    report = validate(path)
    hits = [f for f in report.findings if f.code == "AG311" and f.json_path == where]
    assert len(hits) == 1, show(report)
    assert words in hits[0].message, hits[0].message
    assert all(c >= " " for c in hits[0].message), hits[0].message
