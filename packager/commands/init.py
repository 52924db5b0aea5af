"""`airgap init`: a commented starter manifest that validates as written."""

from __future__ import annotations

import re
from dataclasses import dataclass

from packager.compat import Facts, load_facts, resolve_chip
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


#: where editors find the manifest schema: its ``$id``, the same on every machine (never a path
#: into this machine's installation)
SCHEMA_ID = "https://airgap.dev/schemas/manifest/v1.json"


def _chip(facts: Facts, chip: str, vendor: str | None) -> tuple[str, str]:
    """(vendor, chip id) of a ``--chip`` as people write it; InputError with a hint otherwise."""
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
    return found.vendor, found.id


def _target_lines(facts: Facts, vendor: str, chip_id: str | None) -> list[str]:
    """One target's keys (platform, accelerator, stack and, for a chip, its runtime)."""
    if vendor == "none":
        return [
            "platform: linux/amd64       # linux/amd64 | linux/arm64, as at the site",
            "accelerator: {vendor: none} # CPU only",
        ]
    preset = _PRESETS[vendor]
    chip_id = chip_id or preset.chip
    found = facts.chips[chip_id]
    platform = preset.platform if preset.platform in found.platforms else found.platforms[0]
    return [
        f"platform: {platform}       # as at the site (uname -m)",
        "accelerator:",
        f"  vendor: {vendor}",
        f"  chips: [{chip_id}]",
        "  count: 1                  # devices per host",
        "stack:",
        *("  " + line.strip() for line in preset.stack.splitlines()),
    ]


def _precision(facts: Facts, chips: list[tuple[str, str | None]]) -> str:
    """bf16 when every chip runs it, else fp16; fp32 for CPU only."""
    if all(vendor == "none" for vendor, _ in chips):
        return "fp32"
    for vendor, chip_id in chips:
        if vendor == "none":
            continue
        found = facts.chips[chip_id or _PRESETS[vendor].chip]
        bf16 = found.bf16 if vendor == "huawei" else (found.cc is not None and found.cc.major >= 8)
        if not bf16:
            return "fp16"
    return "bf16"


def _runtime(vendor: str) -> list[str]:
    if vendor == "none":
        return []
    image = _PRESETS[vendor].image
    return [
        "runtime:",
        "  images: []                  # e.g. - {ref: " + image + ", role: serving}",
        "  files: []                   # e.g. - {source: ./drivers/x.run, dest: drivers/}",
    ]


def starter_manifest(name: str, vendor: str | None, chips: list[str] | None = None) -> str:
    """A commented manifest that validates as written: one ``target``, or with several
    ``--chip`` a ``targets`` map with one target per chip (one bundle each, weights shared)."""
    if not NAME.fullmatch(name) or len(name) > 63:
        raise InputError(
            f"{name!r} is not a bundle name",
            hint="use lower-case letters, digits, '.', '_' and '-', e.g. qwen2.5-7b-ascend",
        )
    facts = load_facts()
    picked: list[tuple[str, str | None]] = [_chip(facts, c, vendor) for c in chips or []]
    ids = [c for _, c in picked]
    if len(set(ids)) != len(ids):
        raise InputError("a --chip is given twice", hint="give each chip once")
    if not picked:
        picked = [(vendor or "nvidia", None)]
    head = (
        f"# yaml-language-server: $schema={SCHEMA_ID}\n"
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
        f"  precision: {_precision(facts, picked)}\n"
        '  include: ["*.safetensors", "*.json", "tokenizer*"]\n'
    )
    if len(picked) == 1:
        vendor_, chip_id = picked[0]
        lines = ["target:"] + ["  " + x for x in _target_lines(facts, vendor_, chip_id)]
        return head + "\n".join(lines + _runtime(vendor_)) + "\n"
    lines = ["targets:                      # one bundle per target; the weights are stored once"]
    for vendor_, chip_id in picked:
        lines.append(f"  {chip_id}:")
        lines += ["    " + x for x in _target_lines(facts, vendor_, chip_id)]
        lines += ["    " + x for x in _runtime(vendor_)]
    return head + "\n".join(lines) + "\n"
