"""Parsers for what the probe reads: pure functions of text, each raising :class:`ParseError`
(with a one-line reason) on output it cannot read, never anything else.

Formats (as the real tools write them):

- ``nvidia-smi --query-gpu=index,name,uuid,driver_version,compute_cap,memory.total
  --format=csv,noheader,nounits``: ``0, NVIDIA H100 80GB HBM3, GPU-..., 550.54.15, 9.0, 81559``
  (memory in MiB; ``[N/A]`` where a value is unknown); without ``compute_cap`` for drivers < R510.
- ``/proc/driver/nvidia/version``: ``NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.135  <date>``
  or ``NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build ...``.
- ``npu-smi info``: a box-drawn table; a header ``npu-smi 24.1.rc2   Version: 24.1.rc2``; per NPU a
  row ``| 0  910B3 | OK | 101.8  43  0 / 0 |`` followed by one row per chip
  (``| 0 | 0000:C1:00.0 | 0  0 / 0  3318 / 65536 |``; 310P: ``| 0  0 | 0000:01:00.0 | 0  1074 / 21534 |``).
- ``version.info``, ``ascend_toolkit_install.info``, ``/etc/os-release``, ``/etc/ascend_install.info``:
  ``key=value`` lines (values may be quoted).
- CANN ``version.cfg``: ``runtime_running_version=[7.6.0.1.220:8.0.0]``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .versions import Version, VersionError

MIB = 1 << 20


class ParseError(ValueError):
    """Text that is not in the expected format."""


def _snippet(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return repr(line.strip()[:80])
    return "empty output"


# ---------------------------------------------------------------- key=value files


def parse_kv(text: str) -> dict[str, str]:
    """``key=value`` lines (os-release, version.info, install.info); quotes are stripped,
    comments and lines without ``=`` skipped. Raises ParseError when no line is key=value."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if not key or not re.match(r"^[A-Za-z_][A-Za-z0-9_.\-]*$", key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key] = value
    if not out:
        raise ParseError(f"no key=value lines ({_snippet(text)})")
    return out


def parse_bracket_list(text: str) -> list[str]:
    """``[V100R001C15],[V100R001C17]`` -> ``["V100R001C15", "V100R001C17"]``."""
    return [m.strip() for m in re.findall(r"\[([^\]]*)\]", text) if m.strip()]


def parse_fw_range(text: str) -> tuple[Version, Version]:
    """A driver's ``compatible_version_fw=[7.0.0,7.5.99]`` -> (low, high), inclusive."""
    m = re.match(r"^\s*\[\s*([^,\]]+?)\s*,\s*([^,\]]+?)\s*\]\s*$", text)
    if not m:
        raise ParseError(f"compatible_version_fw is not [low,high]: {text.strip()[:80]!r}")
    try:
        return Version.parse(m.group(1)), Version.parse(m.group(2))
    except VersionError as exc:
        raise ParseError(str(exc)) from None


def parse_version(text: str, what: str) -> Version:
    try:
        return Version.parse(text)
    except VersionError:
        raise ParseError(f"{what} is not a version: {text.strip()[:80]!r}") from None


# ---------------------------------------------------------------- host


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` -> bytes by field (``MemTotal``, ``MemAvailable``, ...)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"^(\w[\w()]*):\s+(\d+)(?:\s+(kB))?\s*$", line)
        if m:
            out[m.group(1)] = int(m.group(2)) * (1024 if m.group(3) else 1)
    if "MemTotal" not in out:
        raise ParseError(f"no MemTotal in /proc/meminfo ({_snippet(text)})")
    return out


#: Arm CPU implementer/part codes -> names (lscpu's table, the ones inference hosts use)
_ARM_PARTS = {
    ("0x48", "0xd01"): "HiSilicon Kunpeng-920",
    ("0x48", "0xd02"): "HiSilicon Kunpeng-930",
    ("0x41", "0xd0c"): "Arm Neoverse-N1",
    ("0x41", "0xd40"): "Arm Neoverse-V1",
    ("0x41", "0xd49"): "Arm Neoverse-N2",
    ("0x41", "0xd4f"): "Arm Neoverse-V2",
    ("0x41", "0xd8e"): "Arm Neoverse-N3",
    ("0xc0", "0xac3"): "Ampere-1",
    ("0x46", "0x001"): "Fujitsu A64FX",
}


@dataclass
class CpuInfo:
    model: str | None
    count: int


def parse_cpuinfo(text: str) -> CpuInfo:
    """``/proc/cpuinfo``: the model (x86 ``model name``; Arm implementer/part) and the count of
    ``processor`` entries."""
    count = 0
    model: str | None = None
    impl = part = None
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, value = (s.strip() for s in line.split(":", 1))
        if key == "processor":
            count += 1
        elif key in ("model name", "Model Name", "cpu model") and model is None and value:
            model = value
        elif key == "CPU implementer" and impl is None:
            impl = value.lower()
        elif key == "CPU part" and part is None:
            part = value.lower()
    if model is None and impl is not None:
        model = _ARM_PARTS.get((impl, part or ""), f"Arm implementer {impl} part {part}")
    if count == 0 and model is None:
        raise ParseError(f"no processor entries in /proc/cpuinfo ({_snippet(text)})")
    return CpuInfo(model, count)


# ---------------------------------------------------------------- NVIDIA


@dataclass
class SmiGpu:
    index: int
    name: str
    uuid: str | None
    driver: str | None
    compute_cap: str | None
    memory_bytes: int | None


def _na(value: str) -> str | None:
    v = value.strip()
    if not v or v.startswith("[") or v.upper() in ("N/A", "NA"):
        return None
    return v


def parse_nvidia_smi_csv(text: str, with_cc: bool = True) -> list[SmiGpu]:
    """The CSV of the nvidia-smi query (index, name, uuid, driver, [compute_cap,] memory MiB)."""
    width = 6 if with_cc else 5
    gpus: list[SmiGpu] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != width:
            raise ParseError(f"not the nvidia-smi CSV ({width} fields): {line.strip()[:80]!r}")
        idx, name, uuid, driver = cells[0], cells[1], cells[2], cells[3]
        cc = cells[4] if with_cc else None
        mem = cells[-1]
        if not idx.isdigit() or not name:
            raise ParseError(f"not the nvidia-smi CSV: {line.strip()[:80]!r}")
        driver_v = _na(driver)
        if driver_v is not None and not re.match(r"^\d+(\.\d+)+$", driver_v):
            raise ParseError(f"not a driver version in nvidia-smi's CSV: {driver!r}")
        cc_v = _na(cc) if cc is not None else None
        if cc_v is not None and not re.match(r"^\d+\.\d+$", cc_v):
            raise ParseError(f"not a compute capability in nvidia-smi's CSV: {cc!r}")
        mem_v = _na(mem)
        if mem_v is not None and not mem_v.isdigit():
            raise ParseError(f"not a memory size in MiB in nvidia-smi's CSV: {mem!r}")
        gpus.append(
            SmiGpu(
                index=int(idx),
                name=name,
                uuid=_na(uuid),
                driver=driver_v,
                compute_cap=cc_v,
                memory_bytes=int(mem_v) * MIB if mem_v is not None else None,
            )
        )
    if not gpus:
        raise ParseError("nvidia-smi listed no GPU")
    return gpus


@dataclass
class NvidiaModule:
    version: str
    flavor: str  # "proprietary" | "open"
    arch: str | None


_NVRM_OPEN = re.compile(
    r"NVRM version:\s+NVIDIA UNIX Open Kernel Module for (\S+)\s+(\d+(?:\.\d+)+)\b"
)
_NVRM_PROP = re.compile(r"NVRM version:\s+NVIDIA UNIX (\S+) Kernel Module\s+(\d+(?:\.\d+)+)\b")


def parse_nvidia_proc_version(text: str) -> NvidiaModule:
    """``/proc/driver/nvidia/version``'s NVRM line: the kernel module's version and flavor."""
    for line in text.splitlines():
        m = _NVRM_OPEN.search(line)
        if m:
            return NvidiaModule(m.group(2), "open", m.group(1))
        m = _NVRM_PROP.search(line)
        if m:
            return NvidiaModule(m.group(2), "proprietary", m.group(1))
    raise ParseError(f"no NVRM version line ({_snippet(text)})")


def parse_tool_version(text: str) -> str | None:
    """The first ``version X.Y.Z`` in a ``--version`` output (nvidia-ctk, nvidia-container-runtime)."""
    m = re.search(r"\bversion\s+v?(\d+(?:\.\d+)+(?:[-.~+][0-9A-Za-z.]+)?)", text, re.IGNORECASE)
    return m.group(1) if m else None


# ---------------------------------------------------------------- Ascend


@dataclass
class NpuChip:
    npu: int
    chip: int
    name: str
    health: str
    device: int | None  # the logical device (/dev/davinciN) where npu-smi prints one (310P)
    bus_id: str | None
    memory_used_bytes: int | None
    memory_bytes: int | None
    hbm: bool  # memory is HBM (910 series) rather than DDR


@dataclass
class NpuSmiInfo:
    tool_version: str | None
    driver_version: str | None
    chips: list[NpuChip] = field(default_factory=list)


_NPU_ERRORS = (
    "dcmi module initialize failed",
    "command not found",
    "permission denied",
    "can not find",
    "failed to",
)


def _cells(line: str) -> list[str]:
    s = line.strip()
    if not (s.startswith("|") and s.endswith("|")):
        return []
    return [c.strip() for c in s[1:-1].split("|")]


def parse_npu_smi_info(text: str) -> NpuSmiInfo:
    """``npu-smi info``: the driver version of its header and one entry per chip."""
    for line in text.splitlines()[:5]:
        low = line.lower()
        for marker in _NPU_ERRORS:
            if marker in low:
                raise ParseError(line.strip()[:200])
    m = re.search(r"npu-smi\s+(\S+)\s+Version:\s*(\S+)", text)
    if not m:
        raise ParseError(f"no 'npu-smi ... Version:' header ({_snippet(text)})")
    info = NpuSmiInfo(m.group(1), m.group(2))
    has_hbm = False
    has_device = False
    in_table = False
    header_seen = False
    current: tuple[int, str, str] | None = None
    for line in text.splitlines():
        cells = _cells(line)
        if not cells:
            if line.strip().startswith("+"):
                current = None if "=" not in line else current
                if header_seen:
                    in_table = True
            continue
        first = cells[0].split()
        if first[:1] == ["NPU"] and any("Name" in c for c in cells[:1]):
            header_seen, in_table = True, False
            continue
        if first[:1] == ["NPU"] and any("Process" in c for c in cells):
            break  # the process table follows the devices
        if first[:1] == ["Chip"]:
            has_device = "Device" in cells[0]
            has_hbm = any("HBM" in c for c in cells)
            continue
        if not in_table or len(cells) < 3:
            continue
        if first and first[0].isdigit() and len(first) >= 2 and not first[1].isdigit():
            # NPU row: "0     910B3" | health | power temp hugepages
            current = (int(first[0]), " ".join(first[1:]), cells[1].split()[0] if cells[1] else "")
            continue
        if current is not None and first and first[0].isdigit():
            # chip row: "0" or "0  0" (chip, device) | bus id | aicore  mem-used / total  [hbm]
            chip = int(first[0])
            device = int(first[1]) if has_device and len(first) > 1 and first[1].isdigit() else None
            pairs = re.findall(r"(\d+)\s*/\s*(\d+)", cells[2])
            used = total = None
            if pairs:
                pick = pairs[1] if has_hbm and len(pairs) > 1 else pairs[0]
                used, total = int(pick[0]) * MIB, int(pick[1]) * MIB
            bus = cells[1] or None
            info.chips.append(
                NpuChip(
                    npu=current[0],
                    chip=chip,
                    name=current[1],
                    health=current[2],
                    device=device,
                    bus_id=bus,
                    memory_used_bytes=used,
                    memory_bytes=total,
                    hbm=has_hbm,
                )
            )
            continue
        if first and not first[0].isdigit() and "No running processes" not in cells[0]:
            raise ParseError(f"unexpected npu-smi row: {line.strip()[:80]!r}")
    if not header_seen:
        raise ParseError(f"no NPU table in npu-smi info ({_snippet(text)})")
    return info


def parse_version_cfg(text: str) -> str | None:
    """CANN ``version.cfg``: the CANN version of ``runtime_running_version=[7.6.0.1.220:8.0.0]``
    (or of the toolkit's line); None when there is none."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(\w+)_running_version\s*=\s*\[([^:\]]*):([^\]]+)\]", line)
        if m:
            found[m.group(1)] = m.group(3).strip()
    for key in ("toolkit", "runtime", "compiler"):
        if key in found:
            return found[key]
    return next(iter(found.values()), None)


# ---------------------------------------------------------------- containers


def parse_daemon_json(text: str) -> tuple[list[str], str | None]:
    """``/etc/docker/daemon.json`` -> (the runtimes it registers, its default-runtime)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ParseError(f"daemon.json is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ParseError("daemon.json is not a JSON object")
    runtimes = data.get("runtimes")
    names = sorted(runtimes) if isinstance(runtimes, dict) else []
    default = data.get("default-runtime")
    return names, default if isinstance(default, str) else None


def parse_runtimes_json(text: str) -> dict[str, str]:
    """``docker info --format '{{json .Runtimes}}'`` -> runtime name -> its path."""
    try:
        data = json.loads(text.strip() or "null")
    except ValueError:
        raise ParseError(f"docker's runtimes are not JSON ({_snippet(text)})") from None
    if not isinstance(data, dict):
        raise ParseError(f"docker's runtimes are not a JSON object ({_snippet(text)})")
    out: dict[str, str] = {}
    for name, value in data.items():
        path = value.get("path") if isinstance(value, dict) else None
        out[str(name)] = str(path) if path else ""
    return out


def parse_engine_version(text: str) -> tuple[str | None, str | None]:
    """``docker|podman version --format '{{json .}}'`` -> (client version, server version)."""
    try:
        data: Any = json.loads(text.strip().splitlines()[0] if text.strip() else "")
    except (ValueError, IndexError):
        raise ParseError(f"not the engine's JSON version ({_snippet(text)})") from None
    if not isinstance(data, dict):
        raise ParseError(f"not the engine's JSON version ({_snippet(text)})")

    def version(part: Any) -> str | None:
        if isinstance(part, dict) and isinstance(part.get("Version"), str):
            return str(part["Version"]) or None
        return None

    client, server = version(data.get("Client")), version(data.get("Server"))
    if client is None and server is None:
        raise ParseError("no Client or Server version in the engine's JSON")
    return client, server
