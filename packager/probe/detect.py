"""What is on the machine: host, NVIDIA GPUs, Ascend NPUs and the container engine.

Detection never raises: each source that cannot be read leaves a status and a one-line message
(``ok``, ``missing``, ``failed``, ``timeout``, ``unreadable``) for the checks to report.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from . import fabric, parse
from .chipfacts import ProbeFacts
from .parse import MigDevice, NpuSmiError, ParseError
from .system import CmdResult, DevEntry, Disk, System, device_command, query_fields

ASCEND_BASE = "/usr/local/Ascend"
_ARCH_PLATFORM = {
    "x86_64": "linux/amd64",
    "amd64": "linux/amd64",
    "aarch64": "linux/arm64",
    "arm64": "linux/arm64",
    "ppc64le": "linux/ppc64le",
    "s390x": "linux/s390x",
    "riscv64": "linux/riscv64",
}
ASCEND_MANAGER_NODES = ("davinci_manager", "devmm_svm", "hisi_hdc")
#: what the CANN toolkit's set_env.sh sets and the probe reports
ASCEND_ENV = ("ASCEND_HOME_PATH", "ASCEND_TOOLKIT_HOME", "LD_LIBRARY_PATH")


@dataclass
class Source:
    """How one source of facts went: ``ok``, ``missing``, ``failed``, ``timeout``, ``unreadable``
    (garbage output), ``denied`` (permission), or ``not-run``."""

    status: str
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message}


def _cmd_source(res: CmdResult) -> Source:
    if not res.found:
        return Source("missing", res.describe())
    if res.error == "permission denied":
        return Source("denied", res.describe())
    if res.error:
        return Source("failed", res.describe())
    if res.timeout:
        return Source("timeout", res.describe())
    if res.rc != 0:
        return Source("failed", res.describe())
    return Source("ok")


# ---------------------------------------------------------------- data


@dataclass
class Host:
    hostname: str | None = None
    os_id: str | None = None
    os_version: str | None = None
    os_name: str | None = None
    kernel: str | None = None
    arch: str | None = None
    platform: str | None = None
    libc: str | None = None
    libc_version: str | None = None
    cpu_model: str | None = None
    cpu_count: int | None = None
    memory_bytes: int | None = None
    memory_available_bytes: int | None = None
    disk: Disk | None = None
    disk_for: str = "."
    container: str | None = None  # docker | podman | kubernetes | container: the probe runs in one

    def to_json(self) -> dict[str, Any]:
        return {
            "hostname": self.hostname,
            "container": self.container,
            "os": {"id": self.os_id, "version": self.os_version, "name": self.os_name},
            "kernel": self.kernel,
            "arch": self.arch,
            "platform": self.platform,
            "libc": {"name": self.libc, "version": self.libc_version},
            "cpu": {"model": self.cpu_model, "count": self.cpu_count},
            "memory": {
                "total_bytes": self.memory_bytes,
                "available_bytes": self.memory_available_bytes,
            },
            "disk": None
            if self.disk is None
            else {
                "path": self.disk.path,
                "free_bytes": self.disk.free_bytes,
                "total_bytes": self.disk.total_bytes,
            },
        }


@dataclass
class Gpu:
    index: int
    name: str
    chip: str | None
    uuid: str | None
    compute_cap: str | None
    memory_bytes: int | None
    mig: str | None = None  # the current MIG mode: Enabled | Disabled; None: no MIG / not asked
    mig_pending: str | None = None  # the mode after the next GPU reset
    mig_devices: list[MigDevice] | None = None  # None: not listed (nvidia-smi -L did not answer)
    fabric_state: str | None = None  # nvidia-smi -q: Completed | In Progress | Not Started ...
    fabric_status: str | None = None

    @property
    def mig_enabled(self) -> bool:
        return self.mig == "Enabled"

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "chip": self.chip,
            "uuid": self.uuid,
            "compute_cap": self.compute_cap,
            "memory_bytes": self.memory_bytes,
            "mig": {
                "current": self.mig,
                "pending": self.mig_pending,
                "devices": None
                if self.mig_devices is None
                else [
                    {
                        "index": d.index,
                        "profile": d.profile,
                        "uuid": d.uuid,
                        "memory_bytes": d.memory_bytes,
                    }
                    for d in self.mig_devices
                ],
            },
            "fabric": {"state": self.fabric_state, "status": self.fabric_status},
        }


@dataclass
class FabricManager:
    """The NVSwitch fabric and Fabric Manager (HGX/DGX 8-GPU systems)."""

    nvswitches: int = 0  # /dev/nvidia-nvswitchN nodes
    query: Source = field(default_factory=lambda: Source("not-run"))  # nvidia-smi -q
    service: str | None = None  # systemctl is-active: active | inactive | failed | activating
    service_source: Source = field(default_factory=lambda: Source("not-run"))
    version: str | None = None  # nv-fabricmanager --version
    log_mismatch: fabric.FmMismatch | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "nvswitches": self.nvswitches,
            "query": self.query.to_json(),
            "service": self.service,
            "service_source": self.service_source.to_json(),
            "version": self.version,
            "log_mismatch": self.log_mismatch.line if self.log_mismatch else None,
        }


@dataclass
class Interconnect:
    """What the cluster comparison reads: InfiniBand ports and the GPU topology."""

    ibstat: Source = field(default_factory=lambda: Source("not-run"))
    ports: list[fabric.IbPort] = field(default_factory=list)
    topo: Source = field(default_factory=lambda: Source("not-run"))
    topology: fabric.Topology | None = None

    def to_json(self) -> dict[str, Any]:
        t = self.topology
        return {
            "ibstat": self.ibstat.to_json(),
            "ports": [
                {
                    "ca": p.ca,
                    "port": p.port,
                    "state": p.state,
                    "physical_state": p.physical,
                    "rate": p.rate,
                    "link_layer": p.link_layer,
                }
                for p in self.ports
            ],
            "topology": dict(
                self.topo.to_json(),
                gpus=list(t.gpus) if t else [],
                matrix=t.gpu_matrix() if t else [],
                nics=dict(t.nics) if t else {},
                nearest_nic=t.nearest_nic() if t else {},
            ),
        }


@dataclass
class Nvidia:
    present: bool = False
    smi: Source = field(default_factory=lambda: Source("not-run"))
    gpus: list[Gpu] = field(default_factory=list)
    driver: str | None = None  # what nvidia-smi reports, else the kernel module
    module_version: str | None = None
    module_flavor: str | None = None  # proprietary | open
    nodes: list[DevEntry] = field(default_factory=list)
    nvidia_ctk: str | None = None
    container_runtime: str | None = None
    cdi_specs: list[str] = field(default_factory=list)
    #: the driver's user-space library on disk (libnvidia-ml.so.X, or what a version mismatch
    #: names): differs from the running kernel module until the next reboot after an update
    installed: str | None = None
    smi_error: str | None = None  # mismatch | no-driver | no-devices | permission | other
    mig_list: Source = field(default_factory=lambda: Source("not-run"))  # nvidia-smi -L
    fabric: FabricManager = field(default_factory=FabricManager)
    net: Interconnect = field(default_factory=Interconnect)

    def to_json(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "nvidia_smi": dict(self.smi.to_json(), error=self.smi_error),
            "driver": {
                "version": self.driver,
                "module_version": self.module_version,
                "module": self.module_flavor,
                "installed": self.installed,
            },
            "gpus": [g.to_json() for g in self.gpus],
            "mig_list": self.mig_list.to_json(),
            "fabric": self.fabric.to_json(),
            "interconnect": self.net.to_json(),
            "devices": [_dev_json(d) for d in self.nodes],
            "container_toolkit": {
                "nvidia_ctk": self.nvidia_ctk,
                "nvidia_container_runtime": self.container_runtime,
                "cdi_specs": list(self.cdi_specs),
            },
        }


@dataclass
class Npu:
    npu: int
    chip_index: int
    device: int | None
    name: str
    chip: str | None
    health: str
    bus_id: str | None
    memory_bytes: int | None
    memory_used_bytes: int | None
    hbm: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "npu": self.npu,
            "chip_index": self.chip_index,
            "device": self.device,
            "name": self.name,
            "chip": self.chip,
            "health": self.health,
            "bus_id": self.bus_id,
            "memory_bytes": self.memory_bytes,
            "memory_used_bytes": self.memory_used_bytes,
            "hbm": self.hbm,
        }


@dataclass
class CannInstall:
    version: str | None
    innerversion: str | None
    arch: str | None
    layout: str  # ascend-toolkit (CANN < 8.5) | cann (CANN >= 8.5: cann-<ver>)
    path: str  # the install root (ASCEND_TOOLKIT_HOME points here)
    info_file: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "innerversion": self.innerversion,
            "arch": self.arch,
            "layout": self.layout,
            "path": self.path,
            "info_file": self.info_file,
        }


@dataclass
class NpuNet:
    """One NPU's RoCE port as hccn_tool reports it."""

    device: int
    source: Source
    ip: str | None = None
    link: str | None = None  # UP | DOWN
    health: str | None = None  # Success | ...
    tls: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "source": self.source.to_json(),
            "ip": self.ip,
            "link": self.link,
            "health": self.health,
            "tls": self.tls,
        }


@dataclass
class Ascend:
    present: bool = False
    smi: Source = field(default_factory=lambda: Source("not-run"))
    smi_version: str | None = None  # the driver version npu-smi's header prints
    npus: list[Npu] = field(default_factory=list)
    install_path: str = ASCEND_BASE
    driver_version: str | None = None
    driver_source: Source = field(default_factory=lambda: Source("not-run"))
    driver_innerversion: str | None = None
    driver_compatible: list[str] = field(default_factory=list)
    firmware_range: tuple[str, str] | None = None
    firmware_version: str | None = None
    firmware_source: Source = field(default_factory=lambda: Source("not-run"))
    cann: list[CannInstall] = field(default_factory=list)
    cann_active: CannInstall | None = None
    env: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(ASCEND_ENV))
    nodes: list[DevEntry] = field(default_factory=list)
    docker_runtime_installed: bool = False
    smi_error: NpuSmiError | None = None
    atb: list[str] = field(default_factory=list)  # libatb.so of the NNAL packages found
    atb_home: str | None = None  # ATB_HOME_PATH (nnal/atb/set_env.sh sets it)
    net: list[NpuNet] = field(default_factory=list)  # hccn_tool, per NPU (when asked for)

    def to_json(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "npu_smi": dict(
                self.smi.to_json(),
                version=self.smi_version,
                error=None
                if self.smi_error is None
                else {
                    "line": self.smi_error.line,
                    "code": self.smi_error.code,
                    "kind": self.smi_error.kind,
                },
            ),
            "atb": {"home": self.atb_home, "libraries": list(self.atb)},
            "network": [n.to_json() for n in self.net],
            "npus": [n.to_json() for n in self.npus],
            "install_path": self.install_path,
            "driver": {
                "version": self.driver_version,
                "source": self.driver_source.to_json(),
                "innerversion": self.driver_innerversion,
                "compatible_version": list(self.driver_compatible),
                "compatible_firmware": list(self.firmware_range) if self.firmware_range else None,
            },
            "firmware": {
                "version": self.firmware_version,
                "source": self.firmware_source.to_json(),
            },
            "cann": {
                "active": self.cann_active.to_json() if self.cann_active else None,
                "installs": [c.to_json() for c in self.cann],
            },
            "env": dict(self.env),
            "devices": [_dev_json(d) for d in self.nodes],
            "docker_runtime_installed": self.docker_runtime_installed,
        }


@dataclass
class Engine:
    name: str | None = None  # docker | podman
    source: Source = field(default_factory=lambda: Source("not-run"))
    client_version: str | None = None
    server_version: str | None = None
    runtimes: list[str] | None = None  # what the running daemon reports
    daemon_json: Source = field(default_factory=lambda: Source("not-run"))
    daemon_json_runtimes: list[str] = field(default_factory=list)
    default_runtime: str | None = None

    def all_runtimes(self) -> list[str]:
        return sorted(set(self.runtimes or []) | set(self.daemon_json_runtimes))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.source.to_json(),
            "client_version": self.client_version,
            "server_version": self.server_version,
            "runtimes": None if self.runtimes is None else list(self.runtimes),
            "daemon_json": dict(
                self.daemon_json.to_json(),
                runtimes=list(self.daemon_json_runtimes),
                default_runtime=self.default_runtime,
            ),
        }


@dataclass
class Detection:
    host: Host
    nvidia: Nvidia
    ascend: Ascend
    engine: Engine
    dev_listed: bool
    errors: list[str] = field(default_factory=list)  # a detector that failed outright

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host.to_json(),
            "nvidia": self.nvidia.to_json(),
            "ascend": self.ascend.to_json(),
            "engine": self.engine.to_json(),
        }


def _dev_json(d: DevEntry) -> dict[str, Any]:
    return {"name": d.name, "type": d.kind, "access": d.access}


# ---------------------------------------------------------------- detectors


def detect_host(system: System, prefix: str) -> Host:
    h = Host(disk_for=prefix)
    h.hostname = system.hostname()
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = system.read_text(path)
        if text is None:
            continue
        try:
            osr = parse.parse_kv(text)
        except ParseError:
            continue
        h.os_id = osr.get("ID")
        h.os_version = osr.get("VERSION_ID")
        h.os_name = osr.get("PRETTY_NAME") or osr.get("NAME")
        break
    u = system.uname()
    h.kernel = u.release or None
    h.arch = u.machine or None
    h.platform = _ARCH_PLATFORM.get((u.machine or "").lower())
    libc = system.libc()
    if libc:
        parts = libc.split()
        h.libc = parts[0]
        h.libc_version = parts[1] if len(parts) > 1 else None
    cpu_text = system.read_text("/proc/cpuinfo")
    cpu_count_info = None
    if cpu_text is not None:
        try:
            cpu = parse.parse_cpuinfo(cpu_text)
            h.cpu_model, cpu_count_info = cpu.model, cpu.count or None
        except ParseError:
            pass
    h.cpu_count = system.cpu_count() or cpu_count_info
    mem_text = system.read_text("/proc/meminfo")
    if mem_text is not None:
        try:
            mem = parse.parse_meminfo(mem_text)
            h.memory_bytes = mem.get("MemTotal")
            h.memory_available_bytes = mem.get("MemAvailable")
        except ParseError:
            pass
    h.disk = system.disk(prefix)
    h.container = _container(system)
    return h


def _container(system: System) -> str | None:
    """The kind of container the probe runs in, None on a host."""
    if system.exists("/.dockerenv"):
        return "docker"
    if system.exists("/run/.containerenv"):
        return "podman"
    cgroup = system.read_text("/proc/1/cgroup") or ""
    for word, kind in (("kubepods", "kubernetes"), ("docker", "docker"), ("libpod", "podman")):
        if word in cgroup:
            return kind
    env = system.env().get("container")
    return env or None


_BAD_FIELD = re.compile(r'Field "([^"]+)" is not a valid field to query', re.IGNORECASE)
_NVML_LIBRARY = re.compile(r"NVML library version:\s*(\d+(?:\.\d+)+)")
#: where the driver's user-space NVML library lives (its file name carries the version)
NVML_GLOBS = (
    "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.*.*",
    "/usr/lib/aarch64-linux-gnu/libnvidia-ml.so.*.*",
    "/usr/lib64/libnvidia-ml.so.*.*",
    "/usr/lib/libnvidia-ml.so.*.*",
)


def smi_error_kind(text: str) -> str | None:
    """What kind of failure nvidia-smi printed: ``mismatch`` (the kernel module and the installed
    library differ: an update waits for a reboot), ``no-driver`` (no driver to talk to),
    ``no-devices`` (the driver sees no GPU), ``permission``, else ``other``."""
    low = text.lower()
    if not low.strip():
        return None
    if "version mismatch" in low:
        return "mismatch"
    if "couldn't communicate" in low or "could not communicate" in low:
        return "no-driver"
    if "no devices were found" in low:
        return "no-devices"
    if "insufficient permissions" in low or "permission denied" in low:
        return "permission"
    return "other"


def _installed_nvidia(system: System, smi: CmdResult) -> str | None:
    m = _NVML_LIBRARY.search(smi.stdout + smi.stderr)
    if m:
        return m.group(1)
    versions = set()
    for pattern in NVML_GLOBS:
        for path in system.glob(pattern):
            v = path.rsplit("libnvidia-ml.so.", 1)[-1]
            if re.fullmatch(r"\d+(\.\d+)+", v):
                versions.add(v)
    return next(iter(versions)) if len(versions) == 1 else None


def _smi_listing(system: System, results: dict[str, CmdResult]) -> CmdResult:
    """The GPU listing: the full query, or an older driver's (no compute_cap before R510, no MIG
    fields before R450), chosen by what the driver refuses."""
    smi = results["nvidia-smi"]
    for fallback in ("nvidia-smi-legacy", "nvidia-smi-basic"):
        if not smi.found or smi.ok or smi.timeout:
            return smi
        m = _BAD_FIELD.search(smi.stdout + smi.stderr)
        if m is None or m.group(1) not in parse.SMI_FIELDS:
            return smi
        smi = system.run(fallback)
    return smi


def detect_nvidia(
    system: System, facts: ProbeFacts, dev: list[DevEntry] | None, results: dict[str, CmdResult]
) -> Nvidia:
    nv = Nvidia()
    nv.nodes = [d for d in dev or [] if d.name.startswith("nvidia")]
    proc = system.read_text("/proc/driver/nvidia/version")
    if proc is not None:
        try:
            mod = parse.parse_nvidia_proc_version(proc)
            nv.module_version, nv.module_flavor = mod.version, mod.flavor
        except ParseError:
            pass
    if nv.module_version is None:
        sys_ver = system.read_text("/sys/module/nvidia/version")
        if sys_ver and re.match(r"^\d+(\.\d+)+$", sys_ver.strip()):
            nv.module_version = sys_ver.strip()
    smi = _smi_listing(system, results)
    nv.smi = _cmd_source(smi)
    if nv.smi.status == "failed" and smi.error is None:
        nv.smi_error = smi_error_kind(smi.stdout + "\n" + smi.stderr)
    if nv.smi.status == "ok":
        try:
            rows = parse.parse_nvidia_smi_csv(smi.stdout, query_fields(smi.argv))
        except ParseError as exc:
            nv.smi = Source("unreadable", f"nvidia-smi printed what the probe cannot read: {exc}")
        else:
            for r in rows:
                chip = facts.match_nvidia(r.name)
                cc = r.compute_cap
                if cc is None and chip is not None:
                    cc = facts.chips[chip].cc
                nv.gpus.append(
                    Gpu(
                        r.index,
                        r.name,
                        chip,
                        r.uuid,
                        cc,
                        r.memory_bytes,
                        r.mig_current,
                        r.mig_pending,
                    )
                )
            nv.driver = next((r.driver for r in rows if r.driver), None)
    if nv.driver is None:
        nv.driver = nv.module_version
    nv.installed = _installed_nvidia(system, smi)
    nv.present = bool(
        proc is not None or nv.module_version or nv.nodes or nv.gpus or nv.smi.status != "missing"
    )
    if nv.gpus:
        _mig_devices(nv, results["nvidia-smi-list"])
        _fabric(system, nv, dev, results)
    ctk, ncr = results["nvidia-ctk"], results["nvidia-container-runtime"]
    if ctk.ok:
        nv.nvidia_ctk = parse.parse_tool_version(ctk.stdout + ctk.stderr) or "unknown"
    if ncr.ok:
        nv.container_runtime = parse.parse_tool_version(ncr.stdout + ncr.stderr) or "unknown"
    for spec in ("/etc/cdi/nvidia.yaml", "/etc/cdi/nvidia.json", "/var/run/cdi/nvidia.yaml"):
        if system.exists(spec):
            nv.cdi_specs.append(spec)
    return nv


def _mig_devices(nv: Nvidia, listing: CmdResult) -> None:
    """The MIG devices of each GPU that has MIG on (``nvidia-smi -L``)."""
    if not any(g.mig_enabled for g in nv.gpus):
        return
    nv.mig_list, migs = _parsed(listing, "nvidia-smi -L", parse.parse_nvidia_smi_list)
    if migs is None:
        return
    for g in nv.gpus:
        if g.mig_enabled and g.index in migs:
            g.mig_devices = migs[g.index]


def _fabric(
    system: System, nv: Nvidia, dev: list[DevEntry] | None, results: dict[str, CmdResult]
) -> None:
    """NVSwitches, each GPU's fabric state and Fabric Manager (service, version, log)."""
    fm = nv.fabric
    fm.nvswitches = sum(1 for d in dev or [] if re.fullmatch(r"nvidia-nvswitch\d+", d.name))
    q = results["nvidia-smi-query"]
    fm.query, query = _parsed(q, "nvidia-smi -q", fabric.parse_nvidia_smi_query)
    if query is not None:
        # nvidia-smi -q lists the GPUs in the order of their indices
        for g, qg in zip(nv.gpus, query.gpus):
            g.fabric_state, g.fabric_status = qg.fabric_state, qg.fabric_status
            if g.mig is None and qg.mig_current in ("Enabled", "Disabled"):
                g.mig, g.mig_pending = qg.mig_current, qg.mig_pending
    status = results["fabricmanager-status"]
    if status.recorded:
        fm.service_source = _cmd_source(status)
        out = status.stdout.strip().splitlines()
        word = out[0].strip() if out else ""
        if (
            status.found
            and not status.timeout
            and status.error is None
            and re.fullmatch(r"active|inactive|failed|activating|deactivating|reloading", word)
        ):
            fm.service = word
            fm.service_source = Source("ok")
    version = results["fabricmanager-version"]
    if version.ok:
        try:
            fm.version = fabric.parse_fabricmanager_version(version.stdout + version.stderr)
        except ParseError:
            fm.version = None
    log = system.read_text("/var/log/fabricmanager.log")
    if log:
        fm.log_mismatch = fabric.fabricmanager_log_mismatch(log[-(256 << 10) :])


def _parsed(res: CmdResult | None, what: str, reader: Any) -> tuple[Source, Any]:
    """How a recorded or run command went, and what ``reader`` made of its output (None when
    it did not answer, or answered what the probe cannot read)."""
    if res is None or not res.recorded:
        return Source("not-run", f"{what} was not recorded"), None
    src = _cmd_source(res)
    if src.status != "ok":
        return src, None
    try:
        return src, reader(res.stdout)
    except ParseError as exc:
        return Source("unreadable", f"{what}: {exc}"), None


def detect_interconnect(nv: Nvidia, results: dict[str, CmdResult]) -> None:
    """InfiniBand ports and the GPU topology, for comparing the nodes of a cluster."""
    net = nv.net
    net.ibstat, ports = _parsed(results.get("ibstat"), "ibstat", fabric.parse_ibstat)
    net.ports = ports or []
    topo = results.get("nvidia-smi-topo")
    net.topo, net.topology = _parsed(topo, "nvidia-smi topo -m", fabric.parse_nvidia_smi_topo)


def _ascend_base(system: System) -> str:
    text = system.read_text("/etc/ascend_install.info")
    if text:
        try:
            kv = parse.parse_kv(text)
        except ParseError:
            return ASCEND_BASE
        path = kv.get("Driver_Install_Path_Param")
        if path and path.startswith("/"):
            return os.path.normpath(path)
    return ASCEND_BASE


def _read_kv(system: System, path: str) -> tuple[dict[str, str] | None, Source]:
    text = system.read_text(path)
    if text is None:
        if path in system.unreadable:
            return None, Source("denied", f"{path}: permission denied")
        return None, Source("missing", f"{path} not found")
    try:
        return parse.parse_kv(text), Source("ok")
    except ParseError as exc:
        return None, Source("unreadable", f"{path}: {exc}")


def _cann_installs(system: System, bases: list[str], env_roots: list[str]) -> list[CannInstall]:
    patterns: list[str] = []
    for root in env_roots:
        patterns.append(root.rstrip("/") + "/*-linux/ascend_toolkit_install.info")
    for base in bases:
        patterns += [
            base + "/ascend-toolkit/latest/*-linux/ascend_toolkit_install.info",
            base + "/ascend-toolkit/*/*-linux/ascend_toolkit_install.info",
            base + "/cann/*-linux/ascend_toolkit_install.info",
            base + "/cann-*/*-linux/ascend_toolkit_install.info",
        ]
    seen_files: set[str] = set()
    out: list[CannInstall] = []
    roots: list[str] = []
    for pattern in patterns:
        for info in system.glob(pattern):
            if info in seen_files:
                continue
            seen_files.add(info)
            root = os.path.dirname(os.path.dirname(info))
            kv, _src = _read_kv(system, info)
            if kv is None:
                continue
            version = kv.get("version") or _cfg_version(system, root)
            out.append(
                CannInstall(
                    version=version,
                    innerversion=kv.get("innerversion"),
                    arch=kv.get("arch"),
                    layout=_layout(root),
                    path=root,
                    info_file=info,
                )
            )
            roots.append(root)
    # an install with a version.cfg but no ascend_toolkit_install.info (a partial install)
    for base in bases:
        for cfg in system.glob(base + "/ascend-toolkit/latest/version.cfg") + system.glob(
            base + "/cann-*/version.cfg"
        ):
            root = os.path.dirname(cfg)
            if root in roots:
                continue
            version = _cfg_version(system, root)
            if version:
                out.append(CannInstall(version, None, None, _layout(root), root, None))
                roots.append(root)
    return out


def _cfg_version(system: System, root: str) -> str | None:
    text = system.read_text(root + "/version.cfg")
    return parse.parse_version_cfg(text) if text else None


def _layout(root: str) -> str:
    parts = root.rstrip("/").split("/")
    if any(p == "cann" or p.startswith("cann-") for p in parts[-2:]):
        return "cann"
    return "ascend-toolkit"


def _same_root(a: str, b: str) -> bool:
    return os.path.normpath(a) == os.path.normpath(b)


def detect_ascend(
    system: System, facts: ProbeFacts, dev: list[DevEntry] | None, results: dict[str, CmdResult]
) -> Ascend:
    a = Ascend()
    a.nodes = [
        d for d in dev or [] if re.match(r"^davinci\d+$", d.name) or d.name in ASCEND_MANAGER_NODES
    ]
    a.install_path = _ascend_base(system)
    drv, a.driver_source = _read_kv(system, a.install_path + "/driver/version.info")
    if drv is not None:
        a.driver_version = drv.get("Version") or drv.get("version") or drv.get("package_version")
        a.driver_innerversion = drv.get("Innerversion") or drv.get("innerversion")
        a.driver_compatible = parse.parse_bracket_list(drv.get("compatible_version", ""))
        fw = drv.get("compatible_version_fw")
        if fw:
            try:
                lo, hi = parse.parse_fw_range(fw)
                a.firmware_range = (str(lo), str(hi))
            except ParseError:
                a.firmware_range = None
    fw_kv, a.firmware_source = _read_kv(system, a.install_path + "/firmware/version.info")
    if fw_kv is not None:
        a.firmware_version = fw_kv.get("Version") or fw_kv.get("version")
    smi = results["npu-smi"]
    a.smi = _cmd_source(smi)
    text = smi.stdout + ("\n" + smi.stderr if smi.stderr else "")
    err = parse.npu_smi_error(text) if smi.found and smi.error is None else None
    if err is not None and (a.smi.status != "ok" or "ret is -" in err.line.lower()):
        a.smi_error = err
        said = err.line if err.line.lower().startswith("npu-smi") else "npu-smi: " + err.line
        a.smi = Source("failed", said)
    elif a.smi.status == "ok":
        try:
            info = parse.parse_npu_smi_info(smi.stdout)
        except ParseError as exc:
            a.smi = Source("unreadable", f"npu-smi info printed what the probe cannot read: {exc}")
        else:
            a.smi_version = info.driver_version
            for c in info.chips:
                a.npus.append(
                    Npu(
                        npu=c.npu,
                        chip_index=c.chip,
                        device=c.device,
                        name=c.name,
                        chip=facts.match_npu(c.name),
                        health=c.health,
                        bus_id=c.bus_id,
                        memory_bytes=c.memory_bytes,
                        memory_used_bytes=c.memory_used_bytes,
                        hbm=c.hbm,
                    )
                )
    env = system.env()
    a.env = {k: env.get(k) for k in ASCEND_ENV}
    env_roots = [v for v in (a.env["ASCEND_TOOLKIT_HOME"], a.env["ASCEND_HOME_PATH"]) if v]
    bases = [a.install_path] + ([ASCEND_BASE] if a.install_path != ASCEND_BASE else [])
    a.cann = _dedupe(_cann_installs(system, bases, env_roots))
    for root in env_roots:
        match = next((c for c in a.cann if _same_root(c.path, root)), None)
        if match is not None:
            a.cann_active = match
            break
    a.docker_runtime_installed = system.exists(
        a.install_path + "/Ascend-Docker-Runtime/ascend-docker-runtime"
    )
    a.atb_home = env.get("ATB_HOME_PATH") or None
    a.atb = _atb(system, a.install_path, a.atb_home)
    a.present = bool(
        any(re.match(r"^davinci\d+$", d.name) for d in a.nodes)
        or drv is not None
        or a.driver_source.status == "denied"
        or a.smi.status != "missing"
    )
    return a


#: where the NNAL package puts the Ascend Transformer Boost library (both C++ ABIs)
ATB_LIB = "atb/cxx_abi_*/lib/libatb.so"


def _atb(system: System, base: str, home: str | None) -> list[str]:
    """libatb.so of the NNAL (Ascend Transformer Boost) installs: ``$ATB_HOME_PATH/lib`` (what
    ``nnal/atb/set_env.sh`` sets), else ``<base>/nnal/atb/<version>/atb/cxx_abi_{0,1}/lib``."""
    found: list[str] = []
    if home and home.startswith("/") and system.exists(home.rstrip("/") + "/lib/libatb.so"):
        found.append(home.rstrip("/") + "/lib/libatb.so")
    for pattern in (base + "/nnal/atb/latest/" + ATB_LIB, base + "/nnal/atb/*/" + ATB_LIB):
        for path in system.glob(pattern):
            if path not in found:
                found.append(path)
    return found


def npu_devices(a: Ascend) -> list[int]:
    """The device ids hccn_tool and the runtimes take, one per NPU chip."""
    ids = [n.device if n.device is not None else n.npu for n in a.npus]
    return sorted(set(ids))


def detect_npu_network(a: Ascend, results: dict[str, CmdResult]) -> None:
    """Each NPU's RoCE address, link, health and TLS switch (hccn_tool)."""
    for device in npu_devices(a):
        res = {
            k: results.get(device_command(k, device))
            for k in ("hccn-ip", "hccn-link", "hccn-health", "hccn-tls")
        }
        ip = res["hccn-ip"]
        if ip is None or not ip.recorded:
            continue
        src = _cmd_source(ip)
        net = NpuNet(device, src)
        readers = (
            ("hccn-ip", fabric.parse_hccn_ip, "ip"),
            ("hccn-link", fabric.parse_hccn_link, "link"),
            ("hccn-health", fabric.parse_hccn_health, "health"),
            ("hccn-tls", fabric.parse_hccn_tls, "tls"),
        )
        for key, reader, attr in readers:
            r = res[key]
            if r is None or not r.ok:
                if r is not None and r.recorded and net.source.status == "ok":
                    net.source = _cmd_source(r)
                continue
            try:
                setattr(net, attr, reader(r.stdout))
            except ParseError as exc:
                net.source = Source("unreadable", f"hccn_tool -i {device}: {exc}")
        a.net.append(net)


def _dedupe(installs: list[CannInstall]) -> list[CannInstall]:
    """One entry per install: ``ascend-toolkit/latest`` and the version folder it links to
    are one install (a recording flattens the link)."""
    out: list[CannInstall] = []
    for c in installs:
        same = next(
            (
                o
                for o in out
                if o.version == c.version
                and o.innerversion == c.innerversion
                and o.arch == c.arch
                and o.layout == c.layout
            ),
            None,
        )
        if same is None:
            out.append(c)
    return out


def detect_engine(system: System, results: dict[str, CmdResult]) -> Engine:
    e = Engine()
    text = system.read_text("/etc/docker/daemon.json")
    if text is None:
        e.daemon_json = Source("missing", "/etc/docker/daemon.json not found")
    else:
        try:
            e.daemon_json_runtimes, e.default_runtime = parse.parse_daemon_json(text)
            e.daemon_json = Source("ok")
        except ParseError as exc:
            e.daemon_json = Source("unreadable", f"/etc/docker/daemon.json: {exc}")
    docker, podman = results["docker-version"], results["podman-version"]
    res = docker if docker.found or not podman.found else podman
    e.name = ("docker" if res is docker else "podman") if res.found else None
    e.source = _cmd_source(res)
    if res.found and not res.timeout and res.error is None:
        try:
            e.client_version, e.server_version = parse.parse_engine_version(res.stdout)
        except ParseError as exc:
            if e.source.status == "ok":
                e.source = Source("unreadable", f"{e.name} version: {exc}")
        if e.source.status == "failed" and e.client_version and not e.server_version:
            e.source = Source("failed", res.first_line() or f"{e.name} daemon not reachable")
    if e.name == "docker" and e.server_version:
        rt = results["docker-runtimes"]
        if rt.ok:
            try:
                e.runtimes = sorted(parse.parse_runtimes_json(rt.stdout))
            except ParseError:
                e.runtimes = None
    return e


#: the commands every probe runs side by side
BASE_COMMANDS = (
    "nvidia-smi",
    "nvidia-smi-list",
    "nvidia-smi-query",
    "fabricmanager-status",
    "fabricmanager-version",
    "npu-smi",
    "docker-version",
    "docker-runtimes",
    "podman-version",
    "nvidia-ctk",
    "nvidia-container-runtime",
)
#: what a node of a cluster adds: InfiniBand and the GPU topology
NETWORK_COMMANDS = ("ibstat", "nvidia-smi-topo")


def _run_all(system: System, names: list[str], jobs: int) -> dict[str, CmdResult]:
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {n: pool.submit(system.run, n) for n in names}
        results: dict[str, CmdResult] = {}
        for n, fut in futures.items():
            try:
                results[n] = fut.result()
            except Exception as exc:  # a bug must not hide the rest of the machine
                results[n] = CmdResult(n, [n], error=f"probe error: {exc}")
    return results


def detect(
    system: System, facts: ProbeFacts, prefix: str, jobs: int = 8, network: bool = False
) -> Detection:
    """Everything at once; commands run side by side (each bounded by the system's timeout).
    ``network``: also what comparing the nodes of a cluster needs (InfiniBand, GPU topology,
    each NPU's RoCE port)."""
    names = list(BASE_COMMANDS) + (list(NETWORK_COMMANDS) if network else [])
    results = _run_all(system, names, jobs)
    dev = system.dev()
    errors: list[str] = []

    def guard(what: str, fn: Any, fallback: Any) -> Any:
        try:
            return fn()
        except Exception as exc:
            errors.append(f"{what} detection failed: {type(exc).__name__}: {exc}")
            return fallback

    host = guard("host", lambda: detect_host(system, prefix), Host(disk_for=prefix))
    nvidia = guard("NVIDIA", lambda: detect_nvidia(system, facts, dev, results), Nvidia())
    ascend = guard("Ascend", lambda: detect_ascend(system, facts, dev, results), Ascend())
    engine = guard("container engine", lambda: detect_engine(system, results), Engine())
    if network:
        if nvidia.present:
            guard("interconnect", lambda: detect_interconnect(nvidia, results), None)
        if ascend.npus:
            per_npu = [
                device_command(kind, d)
                for d in npu_devices(ascend)
                for kind in ("hccn-ip", "hccn-link", "hccn-health", "hccn-tls")
            ]
            results.update(_run_all(system, per_npu, jobs))
            guard("NPU network", lambda: detect_npu_network(ascend, results), None)
    return Detection(host, nvidia, ascend, engine, dev is not None, errors)
