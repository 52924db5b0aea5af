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

from . import parse
from .chipfacts import ProbeFacts
from .parse import ParseError
from .system import CmdResult, DevEntry, Disk, System
from .versions import Version, VersionError

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


def _version(text: str | None) -> Version | None:
    if not text:
        return None
    try:
        return Version.parse(text)
    except VersionError:
        return None


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

    def to_json(self) -> dict[str, Any]:
        return {
            "hostname": self.hostname,
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

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "chip": self.chip,
            "uuid": self.uuid,
            "compute_cap": self.compute_cap,
            "memory_bytes": self.memory_bytes,
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

    def to_json(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "nvidia_smi": self.smi.to_json(),
            "driver": {
                "version": self.driver,
                "module_version": self.module_version,
                "module": self.module_flavor,
            },
            "gpus": [g.to_json() for g in self.gpus],
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

    def to_json(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "npu_smi": dict(self.smi.to_json(), version=self.smi_version),
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
    return h


_CC_FIELD = re.compile(r"compute_cap.*not a valid field", re.IGNORECASE | re.DOTALL)


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
    smi = results["nvidia-smi"]
    with_cc = True
    if smi.found and not smi.ok and not smi.timeout and _CC_FIELD.search(smi.stdout + smi.stderr):
        smi, with_cc = system.run("nvidia-smi-legacy"), False  # a driver older than R510
    nv.smi = _cmd_source(smi)
    if nv.smi.status == "ok":
        try:
            rows = parse.parse_nvidia_smi_csv(smi.stdout, with_cc=with_cc)
        except ParseError as exc:
            nv.smi = Source("unreadable", f"nvidia-smi printed what the probe cannot read: {exc}")
        else:
            for r in rows:
                chip = facts.match_nvidia(r.name)
                cc = r.compute_cap
                if cc is None and chip is not None:
                    cc = facts.chips[chip].cc
                nv.gpus.append(Gpu(r.index, r.name, chip, r.uuid, cc, r.memory_bytes))
            nv.driver = next((r.driver for r in rows if r.driver), None)
    if nv.driver is None:
        nv.driver = nv.module_version
    nv.present = bool(
        proc is not None or nv.module_version or nv.nodes or nv.gpus or nv.smi.status != "missing"
    )
    ctk, ncr = results["nvidia-ctk"], results["nvidia-container-runtime"]
    if ctk.ok:
        nv.nvidia_ctk = parse.parse_tool_version(ctk.stdout + ctk.stderr) or "unknown"
    if ncr.ok:
        nv.container_runtime = parse.parse_tool_version(ncr.stdout + ncr.stderr) or "unknown"
    for spec in ("/etc/cdi/nvidia.yaml", "/etc/cdi/nvidia.json", "/var/run/cdi/nvidia.yaml"):
        if system.exists(spec):
            nv.cdi_specs.append(spec)
    return nv


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
    if "dcmi module initialize failed" in text.lower():
        a.smi = Source("failed", "npu-smi: " + _line_with(text, "dcmi module initialize failed"))
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
    a.present = bool(
        any(re.match(r"^davinci\d+$", d.name) for d in a.nodes)
        or drv is not None
        or a.driver_source.status == "denied"
        or a.smi.status != "missing"
    )
    return a


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


def _line_with(text: str, needle: str) -> str:
    for line in text.splitlines():
        if needle in line.lower():
            return line.strip()[:200]
    return needle


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


def detect(system: System, facts: ProbeFacts, prefix: str, jobs: int = 8) -> Detection:
    """Everything at once; commands run side by side (each bounded by the system's timeout)."""
    names = [
        "nvidia-smi",
        "npu-smi",
        "docker-version",
        "docker-runtimes",
        "podman-version",
        "nvidia-ctk",
        "nvidia-container-runtime",
    ]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {n: pool.submit(system.run, n) for n in names}
        results: dict[str, CmdResult] = {}
        for n, fut in futures.items():
            try:
                results[n] = fut.result()
            except Exception as exc:  # a bug must not hide the rest of the machine
                results[n] = CmdResult(n, [n], error=f"probe error: {exc}")
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
    return Detection(host, nvidia, ascend, engine, dev is not None, errors)
