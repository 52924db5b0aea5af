"""Where the probe's facts come from: the live machine, a recorded one (``--sysroot``), or the
live machine while it is being recorded (``--record``).

A recorded machine ("sysroot") is a folder laid out like this (format ``airgap-sysroot/1``):

``machine.json``
    ``{"format": "airgap-sysroot/1", "hostname": str, "uname": {"system", "release", "machine"},
    "libc": "glibc 2.35" | null, "cpu_count": int | null,
    "disk": {"path": str, "free_bytes": int, "total_bytes": int} | null, "unreadable": [path, ...]}``
``env.json``
    the environment variables the probe reads (PATH, LD_LIBRARY_PATH, ASCEND_*, *_VISIBLE_DEVICES):
    ``{"NAME": "value"}``; a variable not there is unset.
``dev.list``
    the entries of ``/dev``, one a line: ``NAME TYPE ACCESS`` with TYPE ``c`` (char device), ``b``,
    ``d`` (folder), ``l`` (link) or ``f``, and ACCESS ``rw``, ``r``, ``w`` or ``-`` (what the recording
    user could open it for). ``#`` starts a comment. No dev.list: /dev could not be listed.
``proc/...``, ``sys/...``, ``etc/...``, ``usr/local/Ascend/...``
    copies of the files read, at their path under the folder (each at most 1 MiB). A path listed in
    machine.json ``unreadable`` was there but could not be read (permission denied).
``commands/<name>.json``
    one recorded command: ``{"argv": [...], "rc": int | null, "stdout": str, "stderr": str,
    "timeout": bool, "error": null | "not found" | "permission denied" | str}``.
    No file, or ``"error": "not found"``: the command is not installed (or, for a command a newer
    probe added, was not recorded: the probe then says it cannot tell, never that it failed).
    ``"timeout": true``: it hung and was killed after the probe's timeout. The names are the keys
    of :data:`COMMANDS`, and ``KIND.N`` for a command run once per device
    (:data:`DEVICE_COMMANDS`: ``hccn-ip.3`` is ``hccn_tool -i 3 -ip -g``). ``argv`` is what was
    run, and the probe reads the output by it: an ``nvidia-smi --query-gpu=...`` recorded with
    fewer fields (an older probe, an older driver) is read field by field.

The format stays ``airgap-sysroot/1``: later probes add commands and files, never change the
meaning of one, so every older recording still loads.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import shutil
import signal
import socket
import stat
import subprocess
from dataclasses import dataclass, field
from typing import Any

SYSROOT_FORMAT = "airgap-sysroot/1"
#: the most a recorded file or a command's stdout/stderr may hold
MAX_FILE = 1 << 20
MAX_OUTPUT = 1 << 20
DEFAULT_TIMEOUT = 10.0

#: the fields of the NVIDIA query, newest first: drivers before R510 do not know compute_cap
NVIDIA_FIELDS = (
    "index,name,uuid,driver_version,compute_cap,memory.total,mig.mode.current,mig.mode.pending"
)
NVIDIA_FIELDS_LEGACY = (
    "index,name,uuid,driver_version,memory.total,mig.mode.current,mig.mode.pending"
)
NVIDIA_FIELDS_BASIC = "index,name,uuid,driver_version,memory.total"

#: the commands the probe runs, by the name a recording stores them under. A recording keeps
#: each command's argv: the probe reads a recorded output by the argv it was made with (an older
#: recording asked nvidia-smi for fewer fields)
COMMANDS: dict[str, list[str]] = {
    "nvidia-smi": ["nvidia-smi", "--query-gpu=" + NVIDIA_FIELDS, "--format=csv,noheader,nounits"],
    # drivers before R510 do not know the compute_cap field
    "nvidia-smi-legacy": [
        "nvidia-smi",
        "--query-gpu=" + NVIDIA_FIELDS_LEGACY,
        "--format=csv,noheader,nounits",
    ],
    # drivers before R450 do not know the MIG fields either
    "nvidia-smi-basic": [
        "nvidia-smi",
        "--query-gpu=" + NVIDIA_FIELDS_BASIC,
        "--format=csv,noheader,nounits",
    ],
    "nvidia-smi-list": ["nvidia-smi", "-L"],  # the GPUs and their MIG devices
    "nvidia-smi-query": ["nvidia-smi", "-q"],  # the fabric state (NVSwitch systems)
    "nvidia-smi-topo": ["nvidia-smi", "topo", "-m"],
    "fabricmanager-status": ["systemctl", "is-active", "nvidia-fabricmanager"],
    "fabricmanager-version": ["nv-fabricmanager", "--version"],
    "ibstat": ["ibstat"],
    "nvidia-ctk": ["nvidia-ctk", "--version"],
    "nvidia-container-runtime": ["nvidia-container-runtime", "--version"],
    "npu-smi": ["npu-smi", "info"],
    "docker-version": ["docker", "version", "--format", "{{json .}}"],
    "docker-runtimes": ["docker", "info", "--format", "{{json .Runtimes}}"],
    "podman-version": ["podman", "version", "--format", "{{json .}}"],
}

#: commands run once per NPU: ``hccn-ip.3`` is ``hccn_tool -i 3 -ip -g``
DEVICE_COMMANDS: dict[str, list[str]] = {
    "hccn-ip": ["hccn_tool", "-i", "{device}", "-ip", "-g"],
    "hccn-link": ["hccn_tool", "-i", "{device}", "-link", "-g"],
    "hccn-health": ["hccn_tool", "-i", "{device}", "-net_health", "-g"],
    "hccn-tls": ["hccn_tool", "-i", "{device}", "-tls", "-g"],
}

#: folders searched after PATH: where the tools install themselves outside a user's PATH
TOOL_DIRS: dict[str, tuple[str, ...]] = {
    "hccn_tool": ("/usr/local/Ascend/driver/tools",),
    "npu-smi": ("/usr/local/sbin", "/usr/local/bin"),
    "ibstat": ("/usr/sbin", "/sbin"),
    "nv-fabricmanager": ("/usr/bin", "/usr/sbin"),
    "systemctl": ("/usr/bin", "/bin"),
}


def device_command(kind: str, device: int) -> str:
    """The name a per-device command is run and recorded under (``hccn-ip.3``)."""
    return f"{kind}.{device}"


def command_argv(name: str) -> list[str]:
    """The argv of a command by its name; KeyError for a name the probe does not run."""
    if name in COMMANDS:
        return list(COMMANDS[name])
    kind, _, device = name.partition(".")
    if kind in DEVICE_COMMANDS and device.isdigit() and len(device) <= 5:
        return [a.replace("{device}", str(int(device))) for a in DEVICE_COMMANDS[kind]]
    raise KeyError(name)


def query_fields(argv: list[str]) -> list[str] | None:
    """The fields of an ``nvidia-smi --query-gpu=...`` argv, None when it is not one."""
    for arg in argv[1:]:
        if arg.startswith("--query-gpu="):
            return [f.strip() for f in arg.split("=", 1)[1].split(",") if f.strip()]
    return None


#: the environment variables the probe reads (and a recording keeps)
ENV_VARS = (
    "PATH",
    "LD_LIBRARY_PATH",
    "ASCEND_HOME_PATH",
    "ASCEND_TOOLKIT_HOME",
    "ASCEND_OPP_PATH",
    "ASCEND_AICPU_PATH",
    "ASCEND_RT_VISIBLE_DEVICES",
    "ASCEND_VISIBLE_DEVICES",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "ATB_HOME_PATH",
    "container",
)


@dataclass
class CmdResult:
    """What one command did. ``error`` is set when it could not run at all."""

    name: str
    argv: list[str]
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    timeout: bool = False
    error: str | None = None  # "not found", "permission denied", or another OSError text
    #: False when a recorded machine holds no record of it (an older recording): unknown, which
    #: a check must not read as "not installed" for a command the older probe never ran
    recorded: bool = True

    @property
    def found(self) -> bool:
        return self.error != "not found"

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timeout and self.rc == 0

    def first_line(self) -> str:
        """The first non-empty line of its stderr, else of its stdout (for messages)."""
        for text in (self.stderr, self.stdout):
            for line in text.splitlines():
                line = line.strip().strip("|").strip()
                if line and not set(line) <= set("+-=| "):
                    return line[:200]
        return ""

    def describe(self) -> str:
        """One line on why it did not give an answer."""
        if self.error == "not found":
            return f"{self.argv[0]} not found"
        if self.error:
            return f"{self.argv[0]}: {self.error}"
        if self.timeout:
            return f"{self.argv[0]} did not answer in time (killed)"
        line = self.first_line()
        return f"{self.argv[0]} exited {self.rc}" + (f": {line}" if line else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "argv": self.argv,
            "rc": self.rc,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "timeout": self.timeout,
            "error": self.error,
        }


@dataclass
class DevEntry:
    name: str
    kind: str  # c b d l f
    access: str  # rw r w -

    @property
    def usable(self) -> bool:
        return self.access == "rw"


@dataclass
class Disk:
    path: str
    free_bytes: int
    total_bytes: int


@dataclass
class Uname:
    system: str
    release: str
    machine: str


class System:
    """The interface detection uses. Paths are absolute paths of the probed machine."""

    mode = "live"
    root: str | None = None

    def __init__(self) -> None:
        self.unreadable: list[str] = []

    # files
    def read_text(self, path: str, limit: int = MAX_FILE) -> str | None:
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def glob(self, pattern: str) -> list[str]:
        raise NotImplementedError

    def dev(self) -> list[DevEntry] | None:
        """The entries of /dev, or None when it cannot be listed."""
        raise NotImplementedError

    # machine
    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def uname(self) -> Uname:
        raise NotImplementedError

    def hostname(self) -> str | None:
        raise NotImplementedError

    def libc(self) -> str | None:
        raise NotImplementedError

    def cpu_count(self) -> int | None:
        raise NotImplementedError

    def disk(self, path: str) -> Disk | None:
        raise NotImplementedError

    # commands
    def run(self, name: str) -> CmdResult:
        raise NotImplementedError


def _decode(data: bytes, limit: int) -> str:
    return data[:limit].decode("utf-8", errors="replace")


def _access(path: str) -> str:
    r = os.access(path, os.R_OK)
    w = os.access(path, os.W_OK)
    return ("r" if r else "") + ("w" if w else "") or "-"


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "c"
    if stat.S_ISBLK(mode):
        return "b"
    if stat.S_ISDIR(mode):
        return "d"
    if stat.S_ISLNK(mode):
        return "l"
    return "f"


class LiveSystem(System):
    """This machine."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.timeout = timeout
        self._env = {k: v for k, v in os.environ.items() if k in ENV_VARS}

    def read_text(self, path: str, limit: int = MAX_FILE) -> str | None:
        try:
            with open(path, "rb") as fh:
                return _decode(fh.read(limit), limit)
        except PermissionError:
            self.unreadable.append(path)
            return None
        except OSError:
            return None

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def glob(self, pattern: str) -> list[str]:
        return sorted(glob.glob(pattern))

    def dev(self) -> list[DevEntry] | None:
        try:
            names = sorted(os.listdir("/dev"))
        except OSError:
            return None
        out = []
        for name in names:
            path = os.path.join("/dev", name)
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            out.append(DevEntry(name, _kind(mode), _access(path)))
        return out

    def env(self) -> dict[str, str]:
        return dict(self._env)

    def uname(self) -> Uname:
        u = platform.uname()
        return Uname(u.system, u.release, u.machine)

    def hostname(self) -> str | None:
        try:
            return socket.gethostname() or None
        except OSError:
            return None

    def libc(self) -> str | None:
        try:
            text = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36"
        except (AttributeError, ValueError, OSError):
            text = None
        if text:
            return text
        name, version = platform.libc_ver()
        return f"{name} {version}" if name and version else None

    def cpu_count(self) -> int | None:
        return os.cpu_count()

    def disk(self, path: str) -> Disk | None:
        probe = os.path.abspath(path)
        while not os.path.exists(probe):  # the prefix may not exist yet: its nearest parent
            parent = os.path.dirname(probe)
            if parent == probe:
                return None
            probe = parent
        try:
            usage = shutil.disk_usage(probe)
        except OSError:
            return None
        return Disk(os.path.abspath(path), int(usage.free), int(usage.total))

    def run(self, name: str) -> CmdResult:
        argv = command_argv(name)
        res = CmdResult(name, argv)
        search = [self._env.get("PATH", os.defpath), *TOOL_DIRS.get(argv[0], ())]
        exe = shutil.which(argv[0], path=os.pathsep.join(search))
        if exe is None:
            res.error = "not found"
            return res
        env = dict(os.environ)
        env["LC_ALL"] = "C"
        try:
            proc = subprocess.Popen(
                [exe, *argv[1:]],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,  # so that a hung command's children die with it
            )
        except PermissionError:
            res.error = "permission denied"
            return res
        except OSError as exc:
            res.error = exc.strerror or str(exc)
            return res
        try:
            out, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            res.timeout = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
            try:
                out, err = proc.communicate(timeout=2)
            except subprocess.TimeoutExpired:  # a child that left the group holds the pipes
                out, err = b"", b""
                for pipe in (proc.stdout, proc.stderr):
                    if pipe is not None:
                        pipe.close()
            res.stdout, res.stderr = _decode(out, MAX_OUTPUT), _decode(err, MAX_OUTPUT)
            return res
        res.rc = proc.returncode
        res.stdout, res.stderr = _decode(out, MAX_OUTPUT), _decode(err, MAX_OUTPUT)
        return res


class SysrootSystem(System):
    """A recorded machine: see the module's docstring for the layout."""

    mode = "sysroot"

    def __init__(self, root: str) -> None:
        super().__init__()
        self.base = os.path.abspath(root)
        self.root = self.base
        self._machine = self._load_json("machine.json")
        env = self._load_json("env.json")
        self._env = {str(k): str(v) for k, v in env.items() if isinstance(v, str)}
        bad = self._machine.get("unreadable")
        self._unreadable = {str(p) for p in bad} if isinstance(bad, list) else set()

    def _load_json(self, name: str) -> dict[str, Any]:
        path = os.path.join(self.base, name)
        try:
            with open(path, "rb") as fh:
                data = json.loads(fh.read(MAX_FILE).decode("utf-8", errors="replace"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _host(self, path: str) -> str:
        """The file under the sysroot that stands for ``path`` of the recorded machine."""
        rel = os.path.normpath("/" + path).lstrip("/")
        return os.path.join(self.base, rel)

    def read_text(self, path: str, limit: int = MAX_FILE) -> str | None:
        if os.path.normpath(path) in self._unreadable:
            self.unreadable.append(path)
            return None
        try:
            with open(self._host(path), "rb") as fh:
                return _decode(fh.read(limit), limit)
        except OSError:
            return None

    def exists(self, path: str) -> bool:
        return os.path.normpath(path) in self._unreadable or os.path.exists(self._host(path))

    def glob(self, pattern: str) -> list[str]:
        base = self.base.rstrip("/")
        hits = glob.glob(glob.escape(base) + "/" + pattern.lstrip("/"))
        return sorted("/" + os.path.relpath(h, base) for h in hits)

    def dev(self) -> list[DevEntry] | None:
        text = None
        try:
            with open(os.path.join(self.base, "dev.list"), "rb") as fh:
                text = _decode(fh.read(MAX_FILE), MAX_FILE)
        except OSError:
            return None
        out = []
        for line in text.splitlines():
            parts = line.split("#", 1)[0].split()
            if not parts:
                continue
            kind = parts[1] if len(parts) > 1 else "c"
            access = parts[2] if len(parts) > 2 else "rw"
            out.append(DevEntry(parts[0], kind, access))
        return out

    def env(self) -> dict[str, str]:
        return dict(self._env)

    def uname(self) -> Uname:
        u = self._machine.get("uname")
        u = u if isinstance(u, dict) else {}
        return Uname(
            str(u.get("system") or "Linux"),
            str(u.get("release") or ""),
            str(u.get("machine") or ""),
        )

    def hostname(self) -> str | None:
        h = self._machine.get("hostname")
        return str(h) if isinstance(h, str) else None

    def libc(self) -> str | None:
        v = self._machine.get("libc")
        return str(v) if isinstance(v, str) else None

    def cpu_count(self) -> int | None:
        v = self._machine.get("cpu_count")
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    def disk(self, path: str) -> Disk | None:
        d = self._machine.get("disk")
        if not isinstance(d, dict):
            return None
        try:
            return Disk(str(d.get("path") or path), int(d["free_bytes"]), int(d["total_bytes"]))
        except (KeyError, TypeError, ValueError):
            return None

    def run(self, name: str) -> CmdResult:
        res = CmdResult(name, command_argv(name))
        rec = self._load_json(os.path.join("commands", name + ".json"))
        if not rec:
            res.error = "not found"
            res.recorded = os.path.exists(os.path.join(self.base, "commands", name + ".json"))
            return res
        argv = rec.get("argv")
        if isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv):
            res.argv = [str(a) for a in argv]
        rc = rec.get("rc")
        res.rc = rc if isinstance(rc, int) and not isinstance(rc, bool) else None
        res.stdout = str(rec.get("stdout") or "")[:MAX_OUTPUT]
        res.stderr = str(rec.get("stderr") or "")[:MAX_OUTPUT]
        res.timeout = rec.get("timeout") is True
        err = rec.get("error")
        res.error = str(err) if err else None
        if res.rc is None and res.error is None and not res.timeout:
            res.error = "recorded without an exit status"
        return res


@dataclass
class _Recorded:
    files: dict[str, str] = field(default_factory=dict)
    commands: dict[str, CmdResult] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)  # paths only tested for existence
    dev: list[DevEntry] | None = None
    disk: Disk | None = None


class RecordingSystem(LiveSystem):
    """This machine, keeping every file read, /dev listing and command run, to :meth:`save`."""

    mode = "live"

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(timeout)
        self.rec = _Recorded()

    def read_text(self, path: str, limit: int = MAX_FILE) -> str | None:
        text = super().read_text(path, limit)
        if text is not None:
            self.rec.files[os.path.normpath(path)] = text
        return text

    def exists(self, path: str) -> bool:
        found = super().exists(path)
        if found:
            self.rec.present.add(os.path.normpath(path))
        return found

    def glob(self, pattern: str) -> list[str]:
        hits = super().glob(pattern)
        self.rec.present.update(os.path.normpath(h) for h in hits if os.path.isfile(h))
        return hits

    def dev(self) -> list[DevEntry] | None:
        self.rec.dev = super().dev()
        return self.rec.dev

    def disk(self, path: str) -> Disk | None:
        self.rec.disk = super().disk(path)
        return self.rec.disk

    def run(self, name: str) -> CmdResult:
        res = super().run(name)
        self.rec.commands[name] = res
        return res

    def save(self, folder: str) -> None:
        """Write the recording (the layout of :class:`SysrootSystem`) into ``folder``."""
        os.makedirs(folder, exist_ok=True)
        u = self.uname()
        machine = {
            "format": SYSROOT_FORMAT,
            "hostname": self.hostname(),
            "uname": {"system": u.system, "release": u.release, "machine": u.machine},
            "libc": self.libc(),
            "cpu_count": self.cpu_count(),
            "disk": None
            if self.rec.disk is None
            else {
                "path": self.rec.disk.path,
                "free_bytes": self.rec.disk.free_bytes,
                "total_bytes": self.rec.disk.total_bytes,
            },
            "unreadable": sorted(set(self.unreadable)),
        }
        _write(os.path.join(folder, "machine.json"), _dumps(machine))
        _write(os.path.join(folder, "env.json"), _dumps(self.env()))
        if self.rec.dev is not None:
            lines = ["# airgap dev.list: NAME TYPE ACCESS"]
            lines += [f"{d.name} {d.kind} {d.access}" for d in self.rec.dev]
            _write(os.path.join(folder, "dev.list"), "\n".join(lines) + "\n")
        for path, text in sorted(self.rec.files.items()):
            rel = os.path.normpath("/" + path).lstrip("/")
            if rel and not rel.startswith(".."):
                _write(os.path.join(folder, rel), text)
        for path in sorted(self.rec.present - set(self.rec.files)):
            rel = os.path.normpath("/" + path).lstrip("/")
            if rel and not rel.startswith("..") and not os.path.exists(os.path.join(folder, rel)):
                # a file the probe only looks for (a runtime's binary): its presence, not its bytes
                _write(os.path.join(folder, rel), "(present on the recorded machine; not copied)\n")
        for name, res in sorted(self.rec.commands.items()):
            _write(os.path.join(folder, "commands", name + ".json"), _dumps(res.to_json()))


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
