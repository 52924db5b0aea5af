"""Small manifests with real kernel files, for validate() end to end."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from packager.commands.validate import ValidationReport, validate
from packager.findings import Finding

#: the committed kernel fixtures (tests/fixtures/kernels, see its README)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kernels"
BUILD = FIXTURES / "build.sh"
COMMITTED = (
    "sm80.cubin",
    "sm90.cubin",
    "sm90a.cubin",
    "compute80.ptx",
    "two.fatbin",
    "two_lz4.fatbin",
    "libvadd.so",
)


def manifest(
    tmp: Path,
    kernels: list[dict[str, Any]],
    *,
    chips: list[str] | None = None,
    vendor: str = "nvidia",
    files: dict[str, Path | bytes | str] | None = None,
    stack: dict[str, str] | None = None,
) -> Path:
    """A valid manifest in ``tmp`` whose target has ``chips`` and ``kernels``; ``files`` are copied.
    The NVIDIA target's CUDA is the one the fixtures were built with (BUILD-INFO: 13.0)."""
    (tmp / "weights").mkdir(exist_ok=True)
    for rel, src in (files or {}).items():
        dest = tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(src, Path):
            shutil.copyfile(src, dest)
        elif isinstance(src, bytes):
            dest.write_bytes(src)
        else:
            dest.write_text(src)
    if vendor == "nvidia":
        target = {
            "platform": "linux/amd64",
            "accelerator": {"vendor": "nvidia", "chips": chips or ["h100"], "count": 1},
            "stack": stack or {"cuda": "13.0", "driver": ">=580.65.06"},
        }
    else:
        target = {
            "platform": "linux/arm64",
            "accelerator": {"vendor": "huawei", "chips": chips or ["ascend910b3"], "count": 1},
            "stack": stack or {"cann": ">=8.0.0", "driver": ">=24.1.0"},
        }
    doc = {
        "apiVersion": "airgap/v1",
        "kind": "Bundle",
        "metadata": {"name": "m", "version": "1.0.0"},
        "model": {
            "name": "org/model",
            "source": {"path": "./weights"},
            "format": "safetensors",
            "precision": "fp16",
        },
        "target": target,
        "kernels": kernels,
    }
    path = tmp / "manifest.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=400))
    return path


def findings(report: ValidationReport, *codes: str) -> list[Finding]:
    return [f for f in report.findings if not codes or f.code in codes]


def show(report: ValidationReport) -> str:
    return "\n".join(
        f"{f.severity} {f.code} {f.json_path} {f.message} | {f.hint}" for f in report.findings
    )


def text_at(path: Path, f: Finding) -> str:
    assert f.location.line is not None and f.location.column is not None
    line = path.read_text().splitlines()[f.location.line - 1]
    return line[f.location.column - 1 :]


def run(path: Path) -> ValidationReport:
    return validate(path)
