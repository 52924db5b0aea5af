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


def snippet(text: str) -> str:
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
        raise ParseError(f"no key=value lines ({snippet(text)})")
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
        raise ParseError(f"no MemTotal in /proc/meminfo ({snippet(text)})")
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
        raise ParseError(f"no processor entries in /proc/cpuinfo ({snippet(text)})")
    return CpuInfo(model, count)


# ---------------------------------------------------------------- NVIDIA


#: the fields an nvidia-smi query may hold that the probe reads
SMI_FIELDS = frozenset(
    {
        "index",
        "name",
        "uuid",
        "driver_version",
        "compute_cap",
        "memory.total",
        "mig.mode.current",
        "mig.mode.pending",
    }
)
#: the fields an older probe asked for, when a recording does not say (argv missing)
SMI_FIELDS_V1 = ("index", "name", "uuid", "driver_version", "compute_cap", "memory.total")


@dataclass
class SmiGpu:
    index: int
    name: str
    uuid: str | None
    driver: str | None
    compute_cap: str | None
    memory_bytes: int | None
    mig_current: str | None = None  # "Enabled" | "Disabled"; None: no MIG (or not asked)
    mig_pending: str | None = None


def _na(value: str) -> str | None:
    v = value.strip()
    if not v or v.startswith("[") or v.upper() in ("N/A", "NA"):
        return None
    return v


def parse_nvidia_smi_csv(
    text: str, fields: list[str] | tuple[str, ...] | None = None, with_cc: bool = True
) -> list[SmiGpu]:
    """The CSV of an ``nvidia-smi --query-gpu=FIELDS --format=csv,noheader,nounits``, read by
    its fields (``fields``; by default the six an older probe asked for, without
    ``compute_cap`` when ``with_cc`` is false). Memory is in MiB; ``[N/A]`` is unknown."""
    if fields is None:
        fields = [f for f in SMI_FIELDS_V1 if with_cc or f != "compute_cap"]
    fields = list(fields)
    for need in ("index", "name"):
        if need not in fields:
            raise ParseError(f"the nvidia-smi query does not ask for {need}")
    width = len(fields)
    gpus: list[SmiGpu] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != width:
            raise ParseError(f"not the nvidia-smi CSV ({width} fields): {line.strip()[:80]!r}")
        row = dict(zip(fields, cells))
        idx, name = row["index"], row["name"]
        if not idx.isdigit() or not name:
            raise ParseError(f"not the nvidia-smi CSV: {line.strip()[:80]!r}")
        driver_v = _na(row.get("driver_version", ""))
        if driver_v is not None and not re.match(r"^\d+(\.\d+)+$", driver_v):
            raise ParseError(f"not a driver version in nvidia-smi's CSV: {row['driver_version']!r}")
        cc_v = _na(row.get("compute_cap", ""))
        if cc_v is not None and not re.match(r"^\d+\.\d+$", cc_v):
            raise ParseError(
                f"not a compute capability in nvidia-smi's CSV: {row['compute_cap']!r}"
            )
        mem_v = _na(row.get("memory.total", ""))
        if mem_v is not None and not mem_v.isdigit():
            raise ParseError(
                f"not a memory size in MiB in nvidia-smi's CSV: {row['memory.total']!r}"
            )
        mig = [_na(row.get(k, "")) for k in ("mig.mode.current", "mig.mode.pending")]
        for value in mig:
            if value is not None and value not in ("Enabled", "Disabled"):
                raise ParseError(f"not a MIG mode in nvidia-smi's CSV: {value!r}")
        gpus.append(
            SmiGpu(
                index=int(idx),
                name=name,
                uuid=_na(row.get("uuid", "")),
                driver=driver_v,
                compute_cap=cc_v,
                memory_bytes=int(mem_v) * MIB if mem_v is not None else None,
                mig_current=mig[0],
                mig_pending=mig[1],
            )
        )
    if not gpus:
        raise ParseError("nvidia-smi listed no GPU")
    return gpus


@dataclass
class MigDevice:
    gpu: int
    index: int  # the MIG device's index on its GPU (NVIDIA_VISIBLE_DEVICES=GPU:INDEX)
    profile: str  # "3g.71gb"
    uuid: str
    memory_bytes: int | None  # from the profile's name: "71gb" -> 71 GiB


_L_GPU = re.compile(r"GPU (\d+): (.+?) \(UUID: (GPU-[0-9A-Za-z\-]+)\)\s*")
_L_MIG = re.compile(r"\s+MIG\s+(\S+)\s+Device\s+(\d+): \(UUID: (MIG-[0-9A-Za-z/\-]+)\)\s*")
_MIG_MEMORY = re.compile(r"\.(\d+)gb\Z", re.IGNORECASE)


def parse_nvidia_smi_list(text: str) -> dict[int, list[MigDevice]]:
    """``nvidia-smi -L``: ``GPU 0: NVIDIA H200 (UUID: GPU-...)`` lines, each followed by its MIG
    devices (``  MIG 3g.71gb     Device  0: (UUID: MIG-...)``). GPU index -> its MIG devices."""
    out: dict[int, list[MigDevice]] = {}
    gpu: int | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _L_GPU.fullmatch(line)
        if m:
            gpu = int(m.group(1))
            out[gpu] = []
            continue
        m = _L_MIG.fullmatch(line)
        if m and gpu is not None:
            mem = _MIG_MEMORY.search(m.group(1))
            out[gpu].append(
                MigDevice(
                    gpu,
                    int(m.group(2)),
                    m.group(1),
                    m.group(3),
                    int(mem.group(1)) << 30 if mem else None,
                )
            )
            continue
        raise ParseError(f"not nvidia-smi -L: {line.strip()[:80]!r}")
    if not out:
        raise ParseError(f"nvidia-smi -L listed no GPU ({snippet(text)})")
    return out


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
    raise ParseError(f"no NVRM version line ({snippet(text)})")


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
    device: int | None  # the logical device (310P "Device" column) or physical id (A3 "Phy-ID")
    bus_id: str | None
    memory_used_bytes: int | None
    memory_bytes: int | None
    hbm: bool  # memory is HBM (910 series) rather than DDR


@dataclass
class NpuSmiInfo:
    tool_version: str | None
    driver_version: str | None
    chips: list[NpuChip] = field(default_factory=list)


#: lines npu-smi and the DCMI library print before what went wrong (log-level noise)
_NPU_NOISE = re.compile(r"^DrvMngGetConsoleLogLevel failed", re.IGNORECASE)
_NPU_ERRORS = (
    "dcmi module initialize failed",
    "dcmi model initialized failed",
    "ret is -",
    "command not found",
    "permission denied",
    "can not find",
    "cannot open shared object",
    "failed to",
)


@dataclass
class NpuSmiError:
    """What npu-smi said when it failed, and what kind of failure that is."""

    line: str  # the line that says what went wrong (not the noise before it)
    code: int | None  # the DCMI return code of "ret is -8005"
    kind: str  # busy | dcmi | libraries | permission | other


def npu_smi_error(text: str) -> NpuSmiError | None:
    """The failure in npu-smi's output, or None when it printed no known failure.

    ``-8020`` ("dcmi model initialized failed, because the device is used") is a device another
    process or container holds; ``-8005`` ("dcmi module initialize failed") a DCMI library that
    cannot reach the driver: not loaded, or (in a container) the device files or the driver folder
    not mapped in, or no permission on them. Which of those it is takes the device nodes too:
    see the probe's checks."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    meaningful = [ln for ln in lines if not _NPU_NOISE.match(ln)]
    low_all = text.lower()
    code_m = re.search(r"ret is (-\d+)", text)
    code = int(code_m.group(1)) if code_m else None
    if not any(marker in low_all for marker in _NPU_ERRORS):
        return None
    line = next((ln for ln in meaningful if "ret is -" in ln.lower()), None)
    if line is None:
        line = next(
            (ln for ln in meaningful if any(m in ln.lower() for m in _NPU_ERRORS)),
            meaningful[0] if meaningful else lines[0],
        )
    low = line.lower()
    if code == -8020 or "device is used" in low or "device busy" in low:
        kind = "busy"
    elif "permission denied" in low:
        kind = "permission"
    elif "cannot open shared object" in low or "can not find" in low:
        kind = "libraries"
    elif "dcmi" in low or code is not None:
        kind = "dcmi"
    else:
        kind = "other"
    return NpuSmiError(line[:200], code, kind)


def _cells(line: str) -> list[str]:
    s = line.strip()
    if not (s.startswith("|") and s.endswith("|")):
        return []
    return [c.strip() for c in s[1:-1].split("|")]


@dataclass
class _Columns:
    """Where npu-smi put each field, read from its two header rows (the layouts differ by chip
    and driver: 910B ``Chip``, 310P ``Chip Device``, A3 ``Chip Phy-ID``; wider tables)."""

    health: int = 1
    bus: int = 1
    memory: int = 2
    hbm: int | None = None  # the cell holding HBM-Usage when it is not the memory cell
    has_hbm: bool = False
    has_device: bool = False


def _find(cells: list[str], word: str) -> int | None:
    return next((i for i, c in enumerate(cells) if word.lower() in c.lower()), None)


def parse_npu_smi_info(text: str) -> NpuSmiInfo:
    """``npu-smi info``: the driver version of its header and one entry per chip."""
    err = npu_smi_error("\n".join(text.splitlines()[:6]))
    if err is not None:
        raise ParseError(err.line)
    m = re.search(r"npu-smi\s+(\S+)\s+Version:\s*(\S+)", text)
    if not m:
        raise ParseError(f"no 'npu-smi ... Version:' header ({snippet(text)})")
    info = NpuSmiInfo(m.group(1), m.group(2))
    cols = _Columns()
    in_table = False
    header_seen = False
    current: tuple[int, str, str] | None = None
    for line in text.splitlines():
        cells = _cells(line)
        if not cells:
            if line.strip().startswith("+") and header_seen:
                in_table = True
            continue
        first = cells[0].split()
        if first[:1] == ["NPU"] and any("Process" in c for c in cells):
            break  # the process table follows the devices
        if first[:1] == ["NPU"] and "Name" in cells[0]:
            header_seen, in_table = True, False
            cols.health = _find(cells, "Health") or 1
            continue
        if first[:1] == ["Chip"] and not in_table:
            cols.has_device = len(first) > 1  # "Chip Device" (310P) or "Chip Phy-ID" (A3)
            cols.bus = _find(cells, "Bus-Id") or 1
            cols.memory = _find(cells, "Memory-Usage") or 2
            hbm = _find(cells, "HBM-Usage")
            cols.has_hbm = hbm is not None
            cols.hbm = hbm if hbm is not None and hbm != cols.memory else None
            continue
        if not in_table or len(cells) < 3:
            continue
        if first and first[0].isdigit() and len(first) >= 2 and not first[1].isdigit():
            # NPU row: "0     910B3" | health | power temp hugepages
            health = cells[cols.health].split() if cols.health < len(cells) else []
            current = (int(first[0]), " ".join(first[1:]), health[0] if health else "")
            continue
        if current is not None and first and first[0].isdigit():
            # chip row: "0", "0  0" (chip, device) or "0  1" (chip, physical id) | bus id | ...
            chip = int(first[0])
            device = (
                int(first[1]) if cols.has_device and len(first) > 1 and first[1].isdigit() else None
            )
            mem_cell = cells[cols.memory] if cols.memory < len(cells) else ""
            pairs = re.findall(r"(\d+)\s*/\s*(\d+)", mem_cell)
            if cols.hbm is not None and cols.hbm < len(cells):
                pairs = re.findall(r"(\d+)\s*/\s*(\d+)", cells[cols.hbm]) or pairs
                pick = pairs[0] if pairs else None
            elif pairs:
                pick = pairs[1] if cols.has_hbm and len(pairs) > 1 else pairs[0]
            else:
                pick = None
            used = total = None
            if pick is not None:
                used, total = int(pick[0]) * MIB, int(pick[1]) * MIB
            bus = (cells[cols.bus] if cols.bus < len(cells) else "") or None
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
                    hbm=cols.has_hbm,
                )
            )
            continue
        if first and not first[0].isdigit() and "No running processes" not in cells[0]:
            raise ParseError(f"unexpected npu-smi row: {line.strip()[:80]!r}")
    if not header_seen:
        raise ParseError(f"no NPU table in npu-smi info ({snippet(text)})")
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
        raise ParseError(f"docker's runtimes are not JSON ({snippet(text)})") from None
    if not isinstance(data, dict):
        raise ParseError(f"docker's runtimes are not a JSON object ({snippet(text)})")
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
        raise ParseError(f"not the engine's JSON version ({snippet(text)})") from None
    if not isinstance(data, dict):
        raise ParseError(f"not the engine's JSON version ({snippet(text)})")

    def version(part: Any) -> str | None:
        if isinstance(part, dict) and isinstance(part.get("Version"), str):
            return str(part["Version"]) or None
        return None

    client, server = version(data.get("Client")), version(data.get("Server"))
    if client is None and server is None:
        raise ParseError("no Client or Server version in the engine's JSON")
    return client, server
