"""The facts the stdlib-only probe needs, exported from ``facts.yaml`` as plain JSON data.

The probe ships inside every bundle as ``airgap/probe/`` with a ``facts.json`` made by
:func:`export_probe_facts`; ``airgap probe`` passes the same dict in. Nothing in the probe spells
a chip, a compute capability or a driver floor: it reads them from here.
"""

from __future__ import annotations

from typing import Any

from packager.compat.facts import load_facts

#: bump when the shape of the export changes (the probe refuses an export it does not know)
PROBE_FACTS_FORMAT = 1


def export_probe_facts() -> dict[str, Any]:
    """Chips (vendor, name, compute capability, memory, the names nvidia-smi / npu-smi print),
    chip aliases, and NVIDIA's driver floors per CUDA major and per CUDA release. JSON-able,
    with sorted keys' content in a fixed order (facts.yaml's order for chips)."""
    facts = load_facts()
    chips: dict[str, Any] = {}
    for chip in facts.chips.values():
        chips[chip.id] = {
            "vendor": chip.vendor,
            "name": chip.name,
            "cc": str(chip.cc) if chip.cc is not None else None,
            "memory_bytes": chip.memory_bytes,
            "platforms": list(chip.platforms),
            "nvidia_smi": list(chip.nvidia_smi),
            "npu_smi": list(chip.npu_smi),
            "soc": list(chip.soc),
        }
    return {
        "format": PROBE_FACTS_FORMAT,
        "chips": chips,
        "aliases": dict(sorted(facts.aliases.items())),
        "nvidia_smi_prefixes": list(facts.nvidia_smi_prefixes),
        "driver_min_for_cuda_major": {
            str(k): str(v) for k, v in sorted(facts.driver_min_for_cuda_major.items())
        },
        "driver_for_cuda_release": {
            "unsure": facts.driver_for_cuda_release_unsure,
            "versions": {str(k): str(v) for k, v in sorted(facts.driver_for_cuda_release.items())},
        },
        "needs_atb": sorted(facts.needs_atb),
    }
