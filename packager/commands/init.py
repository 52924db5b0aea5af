"""`airgap init`: a commented starter manifest that validates as written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from packager.compat import load_facts, resolve_chip
from packager.errors import InputError
from packager.findings import did_you_mean

NAME = re.compile(r"^[a-z0-9]([a-z0-9._\-]*[a-z0-9])?\Z")


@dataclass(frozen=True)
class _Preset:
    chip: str
    platform: str
    stack: str
    image: str


_PRESETS = {
    "nvidia": _Preset(
        "h100",
        "linux/amd64",
        'cuda: "12.4"              # the CUDA the images and kernels are built with\n'
        '    driver: ">=550.54.14"     # the probe holds the site to this',
        "nvcr.io/example/vllm-openai:v0.6.3",
    ),
    "huawei": _Preset(
        "ascend910b3",
        "linux/arm64",
        'cann: ">=8.0.0"           # CANN toolkit at the site\n'
        '    driver: ">=24.1.0"        # npu-smi reports it (the HDK released with CANN 8.0.0)',
        "swr.cn-south-1.myhuaweicloud.com/ascendhub/mindie:1.0.0-800I-A2-py311-openeuler24.03-lts",
    ),
}


def starter_manifest(name: str, vendor: str | None, chip: str | None) -> str:
    if not NAME.match(name) or len(name) > 63:
        raise InputError(
            f"{name!r} is not a bundle name",
            hint="use lower-case letters, digits, '.', '_' and '-', e.g. qwen2.5-7b-ascend",
        )
    facts = load_facts()
    chip_id: str | None = None
    if chip is not None:
        found, _ = resolve_chip(facts, chip)
        if found is None:
            raise InputError(
                f"unknown chip {chip!r}",
                hint=did_you_mean(chip, facts.chip_ids()) or ", ".join(facts.chip_ids()),
            )
        if vendor not in (None, found.vendor):
            raise InputError(
                f"{found.id} is a {found.vendor} chip, not {vendor}",
                hint=f"use --vendor {found.vendor}, or leave --vendor out",
            )
        vendor, chip_id = found.vendor, found.id
    vendor = vendor or "nvidia"
    schema = resources.files("packager").joinpath("schemas", "manifest.schema.json")
    head = (
        f"# yaml-language-server: $schema={schema}\n"
        f"# airgap manifest: `airgap validate {name}.yaml`, then `airgap build {name}.yaml`.\n"
        "apiVersion: airgap/v1\n"
        "kind: Bundle\n"
        "metadata:\n"
        f"  name: {name}\n"
        "  version: 0.1.0\n"
        "  description: what this deployment serves\n"
        "  expires: 365d               # sites refuse the bundle after this\n"
        "model:\n"
        "  name: org/model-name        # as on the model hub\n"
        "  source: {path: ./weights}   # or {huggingface: {repo: org/name, revision: <commit>}}\n"
        "  format: safetensors         # safetensors | gguf | onnx | pt\n"
    )
    if vendor == "none":
        return head + (
            "  precision: fp32\n"
            '  include: ["*.safetensors", "*.json", "tokenizer*"]\n'
            "target:\n"
            "  platform: linux/amd64       # linux/amd64 | linux/arm64, as at the site\n"
            "  accelerator: {vendor: none} # CPU only\n"
        )
    preset = _PRESETS[vendor]
    chip_id = chip_id or preset.chip
    found = facts.chips[chip_id]
    bf16 = (
        found.bf16 if found.vendor == "huawei" else (found.cc is not None and found.cc.major >= 8)
    )
    platform = preset.platform if preset.platform in found.platforms else found.platforms[0]
    return head + (
        f"  precision: {'bf16' if bf16 else 'fp16'}\n"
        '  include: ["*.safetensors", "*.json", "tokenizer*"]\n'
        "target:\n"
        f"  platform: {platform}       # as at the site (uname -m)\n"
        "  accelerator:\n"
        f"    vendor: {vendor}\n"
        f"    chips: [{chip_id}]\n"
        "    count: 1                  # devices per host\n"
        "  stack:\n"
        f"    {preset.stack}\n"
        "runtime:\n"
        "  images: []                  # e.g. - {ref: " + preset.image + ", role: serving}\n"
        "  files: []                   # e.g. - {source: ./drivers/x.run, dest: drivers/}\n"
    )
