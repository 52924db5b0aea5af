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
    mindie_hardware: Mapping[str, tuple[str, ...]]
    torch_npu_for_cann: Mapping[Version, tuple[Version, ...]]
    ascend_precision_unsure: frozenset[str]
    nvidia_smi_prefixes: tuple[str, ...] = ()  # words nvidia-smi puts before a chip ("NVIDIA")

    def chip_ids(self, vendor: str | None = None) -> list[str]:
        return [c.id for c in self.chips.values() if vendor is None or c.vendor == vendor]


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
    return None, False


def _fact(raw: Any) -> Fact:
    if isinstance(raw, dict):
        return Fact(Version.parse(str(raw["version"])), bool(raw.get("unsure", False)))
    return Fact(Version.parse(str(raw)))


@cache
def load_facts() -> Facts:
    text = resources.files("packager.compat").joinpath("facts.yaml").read_text("utf-8")
    d = yaml.safe_load(text)
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
        mindie_hardware={k: tuple(v) for k, v in hw["mindie_hardware"].items()},
        torch_npu_for_cann={
            Version.parse(str(k)): tuple(Version.parse(str(x)) for x in v)
            for k, v in hw["torch_npu_for_cann"].items()
        },
        ascend_precision_unsure=frozenset(hw["precision_unsure"]),
        nvidia_smi_prefixes=tuple(str(p) for p in smi.get("prefixes", ())),
    )
