"""The vocabulary of the checks: statuses, a check with its reason and remedy, the devices a
bundle can use, and the small formatters every check shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .bundle import Requirements
from .chipfacts import ProbeFacts
from .detect import Detection, Gpu
from .parse import MigDevice
from .versions import Constraint, Version, VersionError

PASS = "PASS"
WARN = "WARN"
FAIL = "FAIL"
NOT_RUN = "NOT RUN"
STATUSES = (PASS, WARN, FAIL, NOT_RUN)
#: how bad each status is, for the overall verdict
SEVERITY = {PASS: 0, NOT_RUN: 1, WARN: 2, FAIL: 3}

#: device memory as the tools report it runs a few percent under the nominal size
MEMORY_TOLERANCE = 0.9


@dataclass
class Check:
    id: str
    title: str
    status: str
    reason: str
    remedy: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "reason": self.reason,
            "remedy": self.remedy,
        }


def worst(checks: list[Check]) -> str:
    return max((c.status for c in checks), key=lambda s: SEVERITY[s], default=PASS)


def exit_code(checks: list[Check]) -> int:
    """0 all pass, 1 any FAIL, 3 when the worst is WARN or NOT RUN."""
    w = worst(checks)
    return 1 if w == FAIL else 3 if w in (WARN, NOT_RUN) else 0


def gib(n: int | None) -> str:
    if n is None:
        return "?"
    if n >= 1 << 40:
        return f"{n / (1 << 40):.1f} TiB"
    return f"{n / (1 << 30):.1f} GiB"


def gb(n: int) -> str:
    return f"{n / 1e9:g} GB"


def ranges(ids: list[int]) -> str:
    """``[0, 1, 2, 3, 6]`` -> ``0-3,6``."""
    out: list[str] = []
    nums = sorted(set(ids))
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ",".join(out)


def version_of(text: str | None) -> Version | None:
    if not text:
        return None
    try:
        return Version.parse(text)
    except VersionError:
        return None


def need_text(constraint: Constraint) -> str:
    """``>= 550.54.14`` for a constraint with a lower bound, else the constraint itself."""
    low = constraint.lower_bound()
    if low is not None and all(c.op in (">=", ">", "~=") for c in constraint.clauses):
        return f">= {low}"
    return str(constraint)


# ---------------------------------------------------------------- devices


@dataclass
class Device:
    label: str  # "GPU 0", "NPU 3", "NPU 1 chip 1", "GPU 0 MIG 1"
    index: int  # what *_VISIBLE_DEVICES takes (a MIG device's GPU)
    name: str
    chip: str | None
    memory_bytes: int | None
    mig: MigDevice | None = None  # a MIG device of GPU ``index``

    @property
    def visible(self) -> str:
        """What NVIDIA_VISIBLE_DEVICES / ASCEND_VISIBLE_DEVICES take for it (``0``, ``0:1``)."""
        return f"{self.index}:{self.mig.index}" if self.mig else str(self.index)


def devices(det: Detection, vendor: str) -> list[Device]:
    if vendor == "nvidia":
        return [
            Device(f"GPU {g.index}", g.index, g.name, g.chip, g.memory_bytes)
            for g in det.nvidia.gpus
        ]
    out = []
    multi = any(n.chip_index > 0 for n in det.ascend.npus)
    for n in det.ascend.npus:
        label = f"NPU {n.npu}" + (f" chip {n.chip_index}" if multi else "")
        index = n.device if n.device is not None else n.npu
        out.append(Device(label, index, n.name, n.chip, n.memory_bytes))
    return out


def visible_var(vendor: str) -> str:
    return "NVIDIA_VISIBLE_DEVICES" if vendor == "nvidia" else "ASCEND_VISIBLE_DEVICES"


def describe_group(devs: list[Device]) -> str:
    """``GPU 4-7 are a100 (NVIDIA A100-SXM4-80GB)``, grouped by name."""
    groups: dict[str, list[Device]] = {}
    for d in devs:
        groups.setdefault(d.name, []).append(d)
    parts = []
    for name, ds in groups.items():
        kind = ds[0].label.split()[0]
        what = f"{ds[0].chip} ({name})" if ds[0].chip else f"{name!r} (a chip airgap does not know)"
        parts.append(
            f"{kind} {ranges([d.index for d in ds])} {'is' if len(ds) == 1 else 'are'} {what}"
        )
    return "; ".join(parts)


def wanted(req: Requirements, facts: ProbeFacts) -> list[str]:
    return [facts.resolve(c) or c for c in req.chips]


def matching(det: Detection, req: Requirements, facts: ProbeFacts) -> list[Device]:
    """The devices of the bundle's chips, as the hardware has them (a GPU with MIG on too)."""
    devs = devices(det, req.vendor or "")
    if not req.chips:
        return devs
    want = set(wanted(req, facts))
    return [d for d in devs if d.chip in want]


def mig_gpus(det: Detection, req: Requirements, facts: ProbeFacts) -> list[Gpu]:
    """The bundle's GPUs that have MIG on: CUDA sees their MIG devices, not them."""
    if req.vendor != "nvidia":
        return []
    ids = {d.index for d in matching(det, req, facts)}
    return [g for g in det.nvidia.gpus if g.index in ids and g.mig_enabled]


def usable(det: Detection, req: Requirements, facts: ProbeFacts) -> list[Device]:
    """The devices of the bundle's chips that its programs can open: a GPU with MIG on is not
    one (CUDA sees only its MIG devices); its MIG devices are, for a target that may run on one
    (``target.accelerator.mig``)."""
    mig = {g.index: g for g in mig_gpus(det, req, facts)}
    out: list[Device] = []
    for d in matching(det, req, facts):
        g = mig.get(d.index)
        if g is None:
            out.append(d)
        elif req.mig:
            for m in g.mig_devices or []:
                label = f"GPU {g.index} MIG {m.index}"
                out.append(
                    Device(label, g.index, f"{g.name} MIG {m.profile}", d.chip, m.memory_bytes, m)
                )
    return out
