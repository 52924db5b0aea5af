"""The chip facts the probe uses, read from the JSON made by
``packager.compat.probe_facts.export_probe_facts`` (``facts.json`` beside the probe in a bundle).

Nothing here spells a chip: names, compute capabilities and driver floors come from that data.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .versions import Version, VersionError

FACTS_FORMAT = 1
FACTS_FILE = "facts.json"


class FactsError(ValueError):
    """Facts in a shape this probe does not know."""


@dataclass
class ChipFact:
    id: str
    vendor: str
    name: str
    cc: str | None
    memory_bytes: int | None
    nvidia_smi: list[str] = field(default_factory=list)
    npu_smi: list[str] = field(default_factory=list)


def normalize_chip_name(text: str) -> str:
    """Lower case without spaces or punctuation, and without a leading vendor word
    (the same rule as packager.compat.facts.normalize_chip_name)."""
    s = re.sub(r"[\s_\-]+", "", text.strip().lower())
    for prefix in ("nvidia", "huawei"):
        if s.startswith(prefix) and len(s) > len(prefix):
            s = s[len(prefix) :]
    return s


#: words a product name adds after the chip: form factor, memory ("H100-SXM5-80GB")
_PRODUCT_WORD = re.compile(r"(sxm\d*|pcie|nvl|hbm\d*e?|\d+gb|oam|mezz|server|edition)")


def resolve_product(
    text: str, resolve: Callable[[str], str | None]
) -> tuple[str, int | None] | None:
    """A product name (``H100-SXM5-80GB``, ``A100-PCIe-40GB``, ``NVIDIA H200-SXM-141GB``) as
    (chip id, memory in GB when it names one): the leading words that ``resolve`` knows, followed
    only by form-factor and memory words. None when it is not one."""
    words = [w for w in re.split(r"[\s\-_]+", text.strip().lower()) if w]
    if words and words[0] in ("nvidia", "tesla", "huawei"):
        words = words[1:]
    for cut in range(len(words) - 1, 0, -1):
        tail = words[cut:]
        if not all(_PRODUCT_WORD.fullmatch(w) for w in tail):
            break
        chip = resolve("".join(words[:cut]))
        if chip is not None:
            mem = next((int(w[:-2]) for w in tail if re.fullmatch(r"\d+gb", w)), None)
            return chip, mem
    return None


def product_memory_gb(text: str) -> int | None:
    """The memory a product name states (``A100-SXM4-40GB`` -> 40), None when it states none."""
    words = [w for w in re.split(r"[\s\-_]+", text.strip().lower()) if w]
    sizes = [int(w[:-2]) for w in words[1:] if re.fullmatch(r"\d+gb", w)]
    return sizes[-1] if sizes else None


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s\-_]+", text.strip().lower()) if w]


class ProbeFacts:
    """Chip lookups and NVIDIA's driver floors."""

    def __init__(self, data: dict[str, Any] | None) -> None:
        self.loaded = bool(data)
        data = data or {}
        fmt = data.get("format", FACTS_FORMAT)
        if fmt != FACTS_FORMAT:
            raise FactsError(f"facts format {fmt!r} (this probe reads format {FACTS_FORMAT})")
        self.chips: dict[str, ChipFact] = {}
        for key in ("chips", "aliases", "driver_min_for_cuda_major", "driver_for_cuda_release"):
            if not isinstance(data.get(key, {}), dict):
                raise FactsError(f"facts are malformed: {key} is not an object")
        try:
            for cid, c in (data.get("chips") or {}).items():
                mem = c.get("memory_bytes")
                self.chips[str(cid)] = ChipFact(
                    id=str(cid),
                    vendor=str(c.get("vendor") or ""),
                    name=str(c.get("name") or cid),
                    cc=str(c["cc"]) if c.get("cc") else None,
                    memory_bytes=int(mem) if isinstance(mem, (int, float)) else None,
                    nvidia_smi=[str(n) for n in c.get("nvidia_smi") or []],
                    npu_smi=[str(n) for n in c.get("npu_smi") or []],
                )
            self.aliases = {str(k): str(v) for k, v in (data.get("aliases") or {}).items()}
            self.smi_prefixes = [w.lower() for w in data.get("nvidia_smi_prefixes") or []]
            self.driver_min_for_cuda_major = {
                int(k): Version.parse(str(v))
                for k, v in (data.get("driver_min_for_cuda_major") or {}).items()
            }
            rel = data.get("driver_for_cuda_release") or {}
            self.driver_for_cuda_release = {
                Version.parse(str(k)): Version.parse(str(v))
                for k, v in (rel.get("versions") or {}).items()
            }
            self.driver_for_cuda_release_unsure = bool(rel.get("unsure", False))
            #: wheels (normalized names) that load NNAL's libatb.so from the host
            self.needs_atb = frozenset(str(n) for n in data.get("needs_atb") or [])
        except (AttributeError, KeyError, TypeError, ValueError, VersionError) as exc:
            raise FactsError(f"facts are malformed: {exc}") from None

    def resolve(self, text: str) -> str | None:
        """The chip id a bundle means by ``text`` (an id, or a spelling facts accept)."""
        if text in self.chips:
            return text
        direct = self._resolve_id(text)
        if direct is not None:
            return direct
        product = resolve_product(text, self._resolve_id)
        return product[0] if product else None

    def _resolve_id(self, text: str) -> str | None:
        norm = normalize_chip_name(text)
        for cid in self.chips:
            if normalize_chip_name(cid) == norm:
                return cid
        return self.aliases.get(norm)

    def match_nvidia(self, smi_name: str) -> str | None:
        """The chip id of a name nvidia-smi prints ("NVIDIA A100-SXM4-80GB" -> "a100")."""
        words = _words(smi_name)
        if words and words[0] in self.smi_prefixes:
            words = words[1:]
        best: tuple[int, str] | None = None
        for chip in self.chips.values():
            if chip.vendor != "nvidia":
                continue
            for pattern in chip.nvidia_smi:
                pw = _words(pattern)
                if pw and words[: len(pw)] == pw and (best is None or len(pw) > best[0]):
                    best = (len(pw), chip.id)
        return best[1] if best else None

    def match_npu(self, npu_smi_name: str) -> str | None:
        """The chip id of a name npu-smi prints ("910B3" -> "ascend910b3")."""
        want = npu_smi_name.strip().lower()
        for chip in self.chips.values():
            if chip.vendor == "huawei" and want in (n.lower() for n in chip.npu_smi):
                return chip.id
        return None


def load_facts(explicit: dict[str, Any] | None = None) -> tuple[ProbeFacts, str]:
    """The facts to use and where they came from: ``explicit`` (``airgap probe``), else
    ``facts.json`` beside this file (a bundle), else the airgap package when it is importable
    (a source checkout: ``python -m packager.probe``), else none."""
    if explicit is not None:
        return ProbeFacts(explicit), "airgap"
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), FACTS_FILE)
    if os.path.exists(here):
        try:
            with open(here, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise FactsError(f"{here}: cannot read: {exc}") from None
        if not isinstance(data, dict):
            raise FactsError(f"{here}: not a JSON object")
        return ProbeFacts(data), FACTS_FILE
    try:  # a source checkout, where the facts' single source is importable
        from packager.compat.probe_facts import export_probe_facts
    except Exception:
        return ProbeFacts(None), "none"
    try:
        return ProbeFacts(export_probe_facts()), "airgap"
    except Exception:
        return ProbeFacts(None), "none"
