"""Typed access to ``facts.yaml``: chips, compute capabilities, version floors and tables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from packager.compat.versions import Version
from packager.probe.chipfacts import resolve_product

GB = 10**9


@dataclass(frozen=True)
class Fact:
    """A value and whether its source is unsure (unsure facts give warnings, not errors)."""

    value: Version
    unsure: bool = False


@dataclass(frozen=True)
class Chip:
    id: str
    vendor: str  # nvidia | huawei
    name: str
    memory_bytes: int
    platforms: tuple[str, ...]
    cc: Version | None = None  # NVIDIA compute capability
    bf16: bool | None = None  # Ascend: native bf16 (None: decided by cc on NVIDIA)
    bf16_unsure: bool = False
    soc: tuple[str, ...] = ()  # Ascend soc_version names
    family: str | None = None  # Ascend soc family (Ascend910B) an op package may target
    npu_smi: tuple[str, ...] = ()  # names npu-smi prints
    nvidia_smi: tuple[str, ...] = ()  # leading words of the names nvidia-smi prints ("H100")


@dataclass(frozen=True)
class CannFloor:
    """The first CANN release for a chip; below ``error_below`` none can know it."""

    version: Version
    error_below: Version | None = None


@dataclass(frozen=True)
class Hdk:
    """The Ascend HDK released with a CANN release: its NPU driver and firmware line."""

    driver: Version
    firmware: Version


@dataclass(frozen=True)
class ServingImage:
    """A serving image family published per chip: tag hardware word -> chips, release -> CANN."""

    name: str  # mindie | vllm-ascend
    hardware: Mapping[str, tuple[str, ...]]
    cann: Mapping[Version, Version]


@dataclass(frozen=True)
class PrecisionGap:
    """Precisions some chips cannot run, and what to do instead (``{float}``: bf16 or fp16)."""

    precisions: frozenset[str]
    chips: frozenset[str]
    hint: str


@dataclass(frozen=True)
class Facts:
    chips: Mapping[str, Chip]
    aliases: Mapping[str, str]
    precision_min_cc: Mapping[str, Version]
    cuda_min_for_cc: Mapping[Version, Fact]
    cuda_min_cc: Mapping[int, Version]
    driver_min_for_cuda_major: Mapping[int, Version]
    driver_for_cuda_release: Mapping[Version, Version]
    driver_for_cuda_release_unsure: bool
    cuda_releases: tuple[Version, ...]
    torch_npu_for_cann: Mapping[Version, tuple[Version, ...]]
    cann_min: Mapping[str, CannFloor]
    cann_releases: tuple[Version, ...]
    cann_hdk: Mapping[Version, Hdk]
    cann_hdk_unsure: bool
    precision_unsupported: tuple[PrecisionGap, ...]
    serving_images: Mapping[str, ServingImage]
    needs_atb: frozenset[str]
    ptx_isa_for_cuda: Mapping[Version, Version]
    nvidia_smi_prefixes: tuple[str, ...] = ()  # words nvidia-smi puts before a chip ("NVIDIA")

    def chip_ids(self, vendor: str | None = None) -> list[str]:
        return [c.id for c in self.chips.values() if vendor is None or c.vendor == vendor]

    @property
    def mindie_hardware(self) -> Mapping[str, tuple[str, ...]]:
        """MindIE tag hardware words (800I-A2, 300I-Duo, ...) -> the chips they are built for."""
        return self.serving_images["mindie"].hardware


def normalize_chip_name(text: str) -> str:
    """Lower case without spaces or punctuation, and without a leading vendor word."""
    s = re.sub(r"[\s_\-]+", "", text.strip().lower())
    for prefix in ("nvidia", "huawei"):
        if s.startswith(prefix) and len(s) > len(prefix):
            s = s[len(prefix) :]
    return s


def resolve_chip(facts: Facts, text: str) -> tuple[Chip | None, bool]:
    """The chip a manifest means by ``text``, and whether it was an alias rather than the id."""
    if text in facts.chips:
        return facts.chips[text], False
    norm = normalize_chip_name(text)
    for chip in facts.chips.values():
        if normalize_chip_name(chip.id) == norm:
            return chip, True
    if norm in facts.aliases:
        return facts.chips[facts.aliases[norm]], True
    product = resolve_product(text, lambda t: _resolve_id(facts, t))
    if product is not None:
        return facts.chips[product[0]], True
    return None, False


def _resolve_id(facts: Facts, text: str) -> str | None:
    norm = normalize_chip_name(text)
    for chip in facts.chips.values():
        if normalize_chip_name(chip.id) == norm:
            return chip.id
    return facts.aliases.get(norm)


def _fact(raw: Any) -> Fact:
    if isinstance(raw, dict):
        return Fact(Version.parse(str(raw["version"])), bool(raw.get("unsure", False)))
    return Fact(Version.parse(str(raw)))


@cache
def load_facts() -> Facts:
    text = resources.files("packager.compat").joinpath("facts.yaml").read_text("utf-8")
    # libyaml's safe loader when PyYAML has it (the same documents, parsed in C)
    d = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    nv, hw = d["nvidia"], d["huawei"]
    smi = nv.get("smi_names") or {}
    smi_chips = smi.get("chips") or {}
    chips: dict[str, Chip] = {}
    for cid, c in nv["chips"].items():
        chips[cid] = Chip(
            id=cid,
            vendor="nvidia",
            name=c["name"],
            memory_bytes=int(c["memory_gb"] * GB),
            platforms=tuple(c["platforms"]),
            cc=Version.parse(str(c["cc"])),
            nvidia_smi=tuple(str(n) for n in smi_chips.get(cid, ())),
        )
    for cid, c in hw["chips"].items():
        bf16 = c["bf16"]
        unsure = isinstance(bf16, dict) and bool(bf16.get("unsure"))
        chips[cid] = Chip(
            id=cid,
            vendor="huawei",
            name=c["name"],
            memory_bytes=int(c["memory_gb"] * GB),
            platforms=tuple(c["platforms"]),
            bf16=bool(bf16["value"] if isinstance(bf16, dict) else bf16),
            bf16_unsure=unsure,
            soc=tuple(c["soc"]),
            family=c.get("family"),
            npu_smi=tuple(str(n) for n in c["npu_smi"]),
        )
    rel = nv["driver_for_cuda_release"]
    return Facts(
        chips=chips,
        aliases={normalize_chip_name(str(k)): v for k, v in d["aliases"].items()},
        precision_min_cc={k: Version.parse(str(v)) for k, v in nv["precision_min_cc"].items()},
        cuda_min_for_cc={Version.parse(str(k)): _fact(v) for k, v in nv["cuda_min_for_cc"].items()},
        cuda_min_cc={int(k): Version.parse(str(v)) for k, v in nv["cuda_min_cc"].items()},
        driver_min_for_cuda_major={
            int(k): Version.parse(str(v)) for k, v in nv["driver_min_for_cuda_major"].items()
        },
        driver_for_cuda_release={
            Version.parse(str(k)): Version.parse(str(v)) for k, v in rel["versions"].items()
        },
        driver_for_cuda_release_unsure=bool(rel.get("unsure", False)),
        cuda_releases=tuple(Version.parse(str(v)) for v in nv["cuda_releases"]),
        torch_npu_for_cann={
            Version.parse(str(k)): tuple(Version.parse(str(x)) for x in v)
            for k, v in hw["torch_npu_for_cann"].items()
        },
        cann_min={
            str(k): CannFloor(
                Version.parse(str(v["version"])),
                Version.parse(str(v["error_below"])) if v.get("error_below") else None,
            )
            for k, v in hw["cann_min"]["chips"].items()
        },
        cann_releases=tuple(Version.parse(str(v)) for v in hw["cann_releases"]),
        cann_hdk={
            Version.parse(str(k)): Hdk(
                Version.parse(str(v["driver"])), Version.parse(str(v["firmware"]))
            )
            for k, v in hw["cann_hdk"]["releases"].items()
        },
        cann_hdk_unsure=bool(hw["cann_hdk"].get("unsure", False)),
        precision_unsupported=tuple(
            PrecisionGap(
                frozenset(str(p) for p in v["precisions"]),
                frozenset(str(c) for c in v["chips"]),
                str(v["hint"]),
            )
            for k, v in hw["precision_unsupported"].items()
            if k != "source"
        ),
        serving_images={
            str(k): ServingImage(
                str(k),
                {str(h): tuple(c) for h, c in v["hardware"].items()},
                {Version.parse(str(r)): Version.parse(str(c)) for r, c in v["cann"].items()},
            )
            for k, v in hw["serving_images"].items()
            if k != "source"
        },
        needs_atb=frozenset(str(n) for n in hw["needs_atb"]),
        ptx_isa_for_cuda={
            Version.parse(str(k)): Version.parse(str(v)) for k, v in nv["ptx_isa_for_cuda"].items()
        },
        nvidia_smi_prefixes=tuple(str(p) for p in smi.get("prefixes", ())),
    )
