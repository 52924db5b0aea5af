"""The checks: each PASS, WARN, FAIL or NOT RUN with a one-line reason and, where something can be
done, a remedy ("install driver >= 550.54.14 (found 535.104.05)").

Without a bundle only the health of what was found is checked (a driver that answers, device nodes
that can be opened, firmware inside the driver's range). With a bundle, its requirements are checked
too, and the health checks are those of the bundle's vendor.
"""

from __future__ import annotations

import re

from .bundle import Requirements
from .chipfacts import ProbeFacts
from .detect import Ascend, CannInstall, Detection, Nvidia, Source
from .gpu_checks import check_fabric, check_mig, mig_remedy, smi_failure
from .npu_checks import check_atb, missing_npus, missing_npus_remedy, npu_smi_failure
from .verdict import (
    FAIL,
    MEMORY_TOLERANCE,
    NOT_RUN,
    PASS,
    STATUSES,
    WARN,
    Check,
    Device,
    describe_group,
    devices,
    exit_code,
    gb,
    gib,
    mig_gpus,
    need_text,
    ranges,
    usable,
    version_of,
    visible_var,
    wanted,
    worst,
)
from .versions import Constraint, Version

# ---------------------------------------------------------------- requirement checks


def check_platform(det: Detection, req: Requirements) -> Check | None:
    if not req.platform:
        return None
    title = "platform"
    host = det.host.platform
    if host is None:
        return Check(
            "host.platform",
            title,
            NOT_RUN,
            f"unknown host architecture {det.host.arch!r}; the bundle is for {req.platform}",
        )
    if host == req.platform:
        return Check(
            "host.platform", title, PASS, f"{req.platform} matches this host ({det.host.arch})"
        )
    return Check(
        "host.platform",
        title,
        FAIL,
        f"the bundle is for {req.platform}, this host is {host} ({det.host.arch})",
        f"use a bundle built for {host} (a manifest target with platform: {host})",
    )


def _no_listing_remedy(src: Source, tool: str) -> str:
    if src.status == "missing":
        if tool == "nvidia-smi":
            return "install the NVIDIA driver (nvidia-smi comes with it)"
        return "install the Ascend NPU driver (npu-smi comes with it)"
    if src.status == "timeout":
        return f"{tool} hangs: check dmesg for device errors, then reset the device or reboot"
    if src.status == "unreadable":
        return "send `airgap probe --record DIR` of this machine to the bundle's publisher"
    if src.status == "denied":
        return f"run the probe as root, or as a user allowed to run {tool}"
    return f"repair the driver until `{tool}{' info' if tool == 'npu-smi' else ''}` lists the devices (see dmesg)"


def _listing_remedy(det: Detection, vendor: str, tool: str) -> str:
    """What to do when the vendor's tool lists no device: the remedy for the kind of failure."""
    if vendor == "nvidia":
        nv = det.nvidia
        if nv.smi.status == "failed" and nv.smi_error is not None:
            return smi_failure(nv.smi.message, nv.smi_error, det.host.container)[1]
        return _no_listing_remedy(nv.smi, tool)
    if det.ascend.smi.status == "failed":
        return npu_smi_failure(det)[2]
    return _no_listing_remedy(det.ascend.smi, tool)


def check_vendor(det: Detection, req: Requirements) -> Check | None:
    v = req.vendor
    if v is None:
        return None
    title = "accelerator"
    if v == "none":
        return Check("accelerator.vendor", title, PASS, "the bundle needs no accelerator")
    if v == "nvidia":
        info: Nvidia | Ascend = det.nvidia
        found = len(det.nvidia.gpus)
        what, tool, other = "NVIDIA GPU", "nvidia-smi", det.ascend.present
    else:
        info = det.ascend
        found = len(det.ascend.npus)
        what, tool, other = "Ascend NPU", "npu-smi", det.nvidia.present
    if found:
        return Check(
            "accelerator.vendor", title, PASS, f"{found} {what}{'s' if found > 1 else ''} ({tool})"
        )
    if info.present:
        return Check(
            "accelerator.vendor",
            title,
            FAIL,
            f"no {what} could be listed: {info.smi.message or info.smi.status}",
            _listing_remedy(det, v, tool),
        )
    hint = (
        f"this host has {'Ascend NPUs' if v == 'nvidia' else 'NVIDIA GPUs'}: use the bundle built for it"
        if other
        else f"run on a host with {what}s, or use a bundle for this host's hardware"
    )
    return Check("accelerator.vendor", title, FAIL, f"no {what} on this host", hint)


def check_chips(det: Detection, req: Requirements, facts: ProbeFacts) -> Check | None:
    if not req.chips or req.vendor in (None, "none"):
        return None
    title = "chips"
    devs = devices(det, req.vendor or "")
    want = wanted(req, facts)
    if not devs:
        return Check("accelerator.chips", title, NOT_RUN, "no devices were listed")
    if not facts.loaded:
        return Check(
            "accelerator.chips",
            title,
            NOT_RUN,
            "no chip facts (facts.json is missing beside the probe)",
            "run the probe shipped inside the bundle, or `airgap probe`",
        )
    good = [d for d in devs if d.chip in want]
    bad = [d for d in devs if d.chip not in want]
    names = ", ".join(want)
    if not bad:
        return Check(
            "accelerator.chips",
            title,
            PASS,
            f"all {len(devs)} devices are {names} ({devs[0].name})"
            if len(devs) > 1
            else f"the device is {names} ({devs[0].name})",
        )
    if good:
        kind = good[0].label.split()[0]
        return Check(
            "accelerator.chips",
            title,
            PASS,
            f"{len(good)} of {len(devs)} devices are {names} ({kind} {ranges([d.index for d in good])}); "
            f"not in the bundle's chips: {describe_group(bad)}",
            f"expose only the matching devices: {visible_var(req.vendor or '')}="
            + ",".join(str(d.index) for d in good),
        )
    found = sorted({d.chip or d.name for d in devs})
    return Check(
        "accelerator.chips",
        title,
        FAIL,
        f"no device is {names}: {describe_group(bad)}",
        f"use a bundle built for {', '.join(found)}, or run on {names}",
    )


def check_count(det: Detection, req: Requirements, facts: ProbeFacts) -> Check | None:
    if req.count is None or req.vendor in (None, "none"):
        return None
    cid, title = "accelerator.count", "device count"
    if not devices(det, req.vendor or ""):
        return Check(cid, title, NOT_RUN, "no devices were listed")
    if req.chips and not facts.loaded:
        return Check(cid, title, NOT_RUN, "no chip facts to tell the devices apart")
    good = usable(det, req, facts)
    migs = mig_gpus(det, req, facts)
    what = ", ".join(wanted(req, facts)) or "devices"
    n = len(good)
    plural = "s" if n != 1 else ""
    if migs and not req.mig:
        have = (
            f"{n} whole {what} GPU{plural} CUDA can use (MIG is on for GPU "
            f"{ranges([g.index for g in migs])}: CUDA sees MIG devices there)"
        )
    elif migs:
        have = f"{n} {what} device{plural} CUDA can use (whole GPUs and MIG devices)"
    else:
        have = f"{n} {what} device{plural}"
    missing = missing_npus(det) if req.vendor == "huawei" else []
    if missing:
        have += f"; NPU {ranges(missing)} not listed by npu-smi"
    if n >= req.count:
        return Check(cid, title, PASS, f"{have}, the bundle needs {req.count}")
    if migs:
        remedy = mig_remedy(migs)
    elif missing:
        remedy = missing_npus_remedy(missing, n)
    else:
        remedy = f"run on a host with {req.count} x {what}, or rebuild the bundle with count: {n}"
    return Check(cid, title, FAIL, f"{have}, the bundle needs {req.count}", remedy)


def check_memory(det: Detection, req: Requirements, facts: ProbeFacts) -> Check | None:
    if req.vendor in (None, "none"):
        return None
    # a MIG device has a share of its GPU's memory: only an explicit size says what it needs
    good = [d for d in usable(det, req, facts) if d.mig is None or req.memory_bytes is not None]
    if not good:
        return None
    title = "device memory"
    explicit = req.memory_bytes is not None
    unknown = [d for d in good if d.memory_bytes is None]
    short: list[tuple[Device, int]] = []
    for d in good:
        need = req.memory_bytes
        if need is None and d.chip in facts.chips:
            need = facts.chips[d.chip].memory_bytes
        if need is None or d.memory_bytes is None:
            continue
        if d.memory_bytes < need * MEMORY_TOLERANCE:
            short.append((d, need))
    if len(unknown) == len(good):
        return Check("accelerator.memory", title, NOT_RUN, "the tools reported no device memory")
    if short:
        d, need = short[0]
        kind = d.label.split()[0]
        idx = ranges([s[0].index for s in short])
        what = "MIG device" if d.mig else "device"
        if explicit:
            return Check(
                "accelerator.memory",
                title,
                FAIL,
                f"{kind} {idx}: {gib(d.memory_bytes)} per {what}, the bundle needs {gb(need)}",
                f"run on devices with {gb(need)} or more",
            )
        return Check(
            "accelerator.memory",
            title,
            WARN,
            f"{kind} {idx}: {gib(d.memory_bytes)} per device, under {d.chip}'s usual {gb(need)} "
            "(the bundle names no memory size)",
            "check that the model fits, or set target.accelerator.memory in the manifest",
        )
    least = min(d.memory_bytes for d in good if d.memory_bytes is not None)
    if req.memory_bytes is None:
        basis = "as usual for the chip"
    elif least >= req.memory_bytes:
        basis = f"the bundle needs {gb(req.memory_bytes)}"
    else:
        basis = (
            f"the bundle needs {gb(req.memory_bytes)}: tools report a few percent "
            "under the nominal size"
        )
    return Check("accelerator.memory", title, PASS, f"{gib(least)} per device ({basis})")


def _driver_check(
    cid: str, title: str, found: str | None, constraint: Constraint, what: str, present: bool
) -> Check:
    if found is None:
        if not present:
            return Check(
                cid, title, FAIL, f"no {what} found", f"install {what} {need_text(constraint)}"
            )
        return Check(cid, title, NOT_RUN, f"cannot tell the {what} version")
    v = version_of(found)
    if v is None:
        return Check(cid, title, NOT_RUN, f"cannot read the {what} version {found!r}")
    if constraint.admits(v):
        return Check(cid, title, PASS, f"{what} {found} satisfies {constraint}")
    return Check(
        cid,
        title,
        FAIL,
        f"{what} {found} does not satisfy {constraint}",
        f"install {what} {need_text(constraint)} (found {found})",
    )


def check_nvidia_driver(det: Detection, req: Requirements) -> Check | None:
    if req.vendor != "nvidia" or req.driver is None:
        return None
    return _driver_check(
        "nvidia.driver",
        "NVIDIA driver",
        det.nvidia.driver,
        req.driver,
        "driver",
        det.nvidia.present,
    )


def check_cuda(det: Detection, req: Requirements, facts: ProbeFacts) -> Check | None:
    if req.vendor != "nvidia" or req.cuda is None:
        return None
    cid, title = "nvidia.cuda", "CUDA vs driver"
    cuda = req.cuda.lower_bound()
    if cuda is None:
        return Check(cid, title, NOT_RUN, f"CUDA {req.cuda} names no lowest release to check")
    floor = facts.driver_min_for_cuda_major.get(cuda.major)
    if floor is None:
        return Check(cid, title, NOT_RUN, f"no driver facts for CUDA {cuda.major}.x")
    release = next(
        (d for r, d in facts.driver_for_cuda_release.items() if r.release[:2] == cuda.release[:2]),
        None,
    )
    found = det.nvidia.driver
    drv = version_of(found)
    if drv is None:
        if not det.nvidia.present:
            return Check(
                cid,
                title,
                FAIL,
                f"no NVIDIA driver for CUDA {cuda}",
                f"install driver >= {release or floor}",
            )
        return Check(cid, title, NOT_RUN, "cannot tell the driver version")
    best = release or floor
    if drv < floor:
        return Check(
            cid,
            title,
            FAIL,
            f"driver {found} is older than CUDA {cuda.major}.x's minimum {floor} (minor-version compatibility)",
            f"install driver >= {best} (found {found})",
        )
    if release is not None and drv < release:
        return Check(
            cid,
            title,
            WARN,
            f"driver {found} runs CUDA {cuda} by minor-version compatibility only "
            f"(no PTX JIT of {cuda} code, some features missing; CUDA {cuda} ships with {release})",
            f"install driver >= {release} (found {found})",
        )
    return Check(cid, title, PASS, f"driver {found} runs CUDA {cuda} (needs >= {best})")


def check_ascend_driver(det: Detection, req: Requirements) -> Check | None:
    if req.vendor != "huawei" or req.driver is None:
        return None
    a = det.ascend
    # the running driver (npu-smi) over the installed one (version.info): they differ until the
    # reboot after an update, and programs run on the running one
    return _driver_check(
        "ascend.driver",
        "Ascend driver",
        a.smi_version or a.driver_version,
        req.driver,
        "Ascend NPU driver",
        a.present,
    )


def check_ascend_firmware(det: Detection, req: Requirements) -> Check | None:
    if req.vendor != "huawei" or req.firmware is None:
        return None
    return _driver_check(
        "ascend.firmware",
        "Ascend firmware",
        det.ascend.firmware_version,
        req.firmware,
        "Ascend NPU firmware",
        det.ascend.present,
    )


def _set_env(c: CannInstall) -> str:
    parts = c.path.rstrip("/").split("/")
    if c.layout == "ascend-toolkit" and len(parts) > 1 and parts[-2] == "ascend-toolkit":
        return "/".join(parts[:-1]) + "/set_env.sh"
    return c.path.rstrip("/") + "/set_env.sh"


def default_cann(a: Ascend) -> CannInstall | None:
    """The CANN processes get: the one the environment points at, else ``ascend-toolkit/latest``,
    else the newest install."""
    if a.cann_active is not None:
        return a.cann_active
    for c in a.cann:
        if c.path.rstrip("/").endswith("/ascend-toolkit/latest"):
            return c
    known = [c for c in a.cann if version_of(c.version) is not None]
    if known:
        return max(known, key=lambda c: version_of(c.version) or Version.parse("0"))
    return a.cann[0] if a.cann else None


def check_cann(det: Detection, req: Requirements) -> Check | None:
    if req.vendor != "huawei" or req.cann is None:
        return None
    cid, title = "ascend.cann", "CANN toolkit"
    a = det.ascend
    if not a.cann:
        return Check(
            cid,
            title,
            WARN,
            f"no CANN toolkit on this host, the bundle needs {req.cann} "
            "(fine when only the serving image runs CANN)",
            f"install Ascend-cann-toolkit {need_text(req.cann)} and source its set_env.sh",
        )
    use = default_cann(a)
    assert use is not None
    v = version_of(use.version)
    if v is None:
        return Check(cid, title, NOT_RUN, f"cannot read the CANN version at {use.path}")
    if req.cann.admits(v):
        return Check(cid, title, PASS, f"CANN {use.version} ({use.path}) satisfies {req.cann}")
    other = next(
        (
            c
            for c in a.cann
            if c is not use
            and version_of(c.version)
            and req.cann.admits(version_of(c.version) or v)
        ),
        None,
    )
    if other is not None:
        return Check(
            cid,
            title,
            FAIL,
            f"the CANN in use is {use.version} ({use.path}); {other.version} at {other.path} "
            f"satisfies {req.cann}",
            f"source {_set_env(other)}",
        )
    return Check(
        cid,
        title,
        FAIL,
        f"CANN {use.version} ({use.path}) does not satisfy {req.cann}",
        f"install Ascend-cann-toolkit {need_text(req.cann)} (found {use.version})",
    )


def check_ascend_env(det: Detection, req: Requirements) -> Check | None:
    a = det.ascend
    if req.vendor != "huawei" or not a.cann:
        return None
    cid, title = "ascend.env", "CANN environment"
    home = a.env.get("ASCEND_TOOLKIT_HOME") or a.env.get("ASCEND_HOME_PATH")
    use = default_cann(a)
    assert use is not None
    if not home:
        return Check(
            cid,
            title,
            WARN,
            "CANN is installed but its environment is not set (ASCEND_HOME_PATH, ASCEND_TOOLKIT_HOME unset)",
            f"source {_set_env(use)}",
        )
    if a.cann_active is None:
        return Check(
            cid,
            title,
            WARN,
            f"ASCEND_TOOLKIT_HOME/ASCEND_HOME_PATH point at {home}, which holds no CANN install",
            f"source {_set_env(use)}",
        )
    lib = a.install_path.rstrip("/") + "/driver/lib64"
    ld = a.env.get("LD_LIBRARY_PATH") or ""
    if lib not in ld:
        return Check(
            cid,
            title,
            WARN,
            f"LD_LIBRARY_PATH lacks the driver's libraries ({lib})",
            f"source {_set_env(a.cann_active)}",
        )
    return Check(cid, title, PASS, f"set_env.sh is sourced (ASCEND_HOME_PATH={home})")


def check_container_runtime(det: Detection, req: Requirements) -> Check | None:
    if req.vendor not in ("nvidia", "huawei") or not req.images:
        return None
    runtimes = det.engine.all_runtimes()
    if req.vendor == "nvidia":
        cid, title = "nvidia.container", "GPU containers"
        nv = det.nvidia
        if "nvidia" in runtimes:
            return Check(cid, title, PASS, "docker has the nvidia runtime")
        if nv.nvidia_ctk or nv.container_runtime:
            ver = nv.nvidia_ctk or nv.container_runtime
            return Check(
                cid, title, PASS, f"nvidia-container-toolkit {ver} (docker run --gpus all)"
            )
        if nv.cdi_specs:
            return Check(
                cid, title, PASS, f"CDI spec {nv.cdi_specs[0]} (--device nvidia.com/gpu=all)"
            )
        return Check(
            cid,
            title,
            WARN,
            "nvidia-container-toolkit not found: containers will not see the GPUs",
            "install nvidia-container-toolkit, then `nvidia-ctk runtime configure --runtime=docker` "
            "and restart docker",
        )
    cid, title = "ascend.container", "NPU containers"
    if "ascend" in runtimes:
        return Check(cid, title, PASS, "docker has the ascend runtime (ascend-docker-runtime)")
    if det.ascend.docker_runtime_installed:
        return Check(
            cid,
            title,
            WARN,
            "ascend-docker-runtime is installed but docker does not list the ascend runtime",
            "add the ascend runtime to /etc/docker/daemon.json (its installer does) and restart docker",
        )
    return Check(
        cid,
        title,
        WARN,
        "ascend-docker-runtime not found: containers will not see the NPUs "
        "(or pass /dev/davinci* and the driver folders by hand)",
        "install Ascend-docker-runtime and restart docker",
    )


def check_engine(det: Detection, req: Requirements) -> Check | None:
    if not req.images:
        return None
    cid, title = "engine", "container engine"
    e = det.engine
    if e.name is None:
        return Check(
            cid,
            title,
            WARN,
            "no container engine (docker, podman) found: the bundle's images cannot run here",
            "install docker (or load the images into the site registry)",
        )
    if e.server_version:
        return Check(cid, title, PASS, f"{e.name} {e.server_version}")
    msg = e.source.message or e.source.status
    return Check(
        cid,
        title,
        WARN,
        f"{e.name} cannot run containers now: {msg}",
        f"start the {e.name} daemon (systemctl start {e.name})" if e.name == "docker" else None,
    )


def check_disk(det: Detection, req: Requirements) -> Check | None:
    if req.install_bytes is None:
        return None
    cid, title = "host.disk", "disk space"
    d = det.host.disk
    if d is None:
        return Check(cid, title, NOT_RUN, f"cannot tell the free space at {det.host.disk_for}")
    if d.free_bytes >= req.install_bytes:
        return Check(
            cid,
            title,
            PASS,
            f"{gib(d.free_bytes)} free at {d.path}, the install writes {gib(req.install_bytes)}",
        )
    return Check(
        cid,
        title,
        FAIL,
        f"{gib(d.free_bytes)} free at {d.path}, the install writes {gib(req.install_bytes)}",
        f"free {gib(req.install_bytes - d.free_bytes)} more at {d.path}, or install with another --prefix",
    )


def check_host_memory(det: Detection, req: Requirements) -> Check | None:
    if req.weights_bytes is None:
        return None
    cid, title = "host.memory", "host memory"
    mem = det.host.memory_bytes
    if mem is None:
        return Check(cid, title, NOT_RUN, "cannot read the host memory (/proc/meminfo)")
    if mem >= req.weights_bytes:
        return Check(
            cid, title, PASS, f"{gib(mem)} of host memory, the weights are {gib(req.weights_bytes)}"
        )
    return Check(
        cid,
        title,
        WARN,
        f"{gib(mem)} of host memory is less than the weights ({gib(req.weights_bytes)}): "
        "loading them may be slow or fail",
        "load the weights with memory mapping, or use a host with more memory",
    )


# ---------------------------------------------------------------- health checks


def health_nvidia(det: Detection) -> list[Check]:
    nv = det.nvidia
    if not nv.present:
        return []
    out: list[Check] = []
    title = "nvidia-smi"
    loaded = bool(nv.module_version or any(re.match(r"^nvidia\d+$", d.name) for d in nv.nodes))
    module = f", {nv.module_flavor} kernel module" if nv.module_flavor else ""
    s = nv.smi
    if s.status == "ok":
        n = len(nv.gpus)
        out.append(
            Check(
                "nvidia.smi",
                title,
                PASS,
                f"{n} GPU{'s' if n != 1 else ''}, driver {nv.driver}{module}",
            )
        )
    elif s.status == "missing":
        out.append(
            Check(
                "nvidia.smi",
                title,
                WARN,
                "an NVIDIA driver is loaded but nvidia-smi is not installed: the GPUs cannot be listed",
                "install the driver's utilities (nvidia-smi)",
            )
        )
    elif s.status == "timeout":
        out.append(Check("nvidia.smi", title, FAIL, s.message, _no_listing_remedy(s, "nvidia-smi")))
    elif s.status == "unreadable":
        out.append(
            Check("nvidia.smi", title, NOT_RUN, s.message, _no_listing_remedy(s, "nvidia-smi"))
        )
    elif not loaded and s.status == "failed":
        out.append(
            Check(
                "nvidia.smi",
                title,
                WARN,
                f"nvidia-smi is installed but no NVIDIA driver is loaded: {s.message}",
                "load the driver (modprobe nvidia) if this host has NVIDIA GPUs",
            )
        )
    else:
        message = s.message
        if nv.smi_error == "mismatch" and nv.module_version and nv.installed:
            message += f" (running kernel module {nv.module_version}, installed {nv.installed})"
        reason, remedy = smi_failure(message, nv.smi_error, det.host.container)
        out.append(Check("nvidia.smi", title, FAIL, reason, remedy))
    if nv.module_version and nv.gpus and nv.driver and nv.driver != nv.module_version:
        out.append(
            Check(
                "nvidia.driver_match",
                "NVIDIA driver versions",
                WARN,
                f"kernel module {nv.module_version} but nvidia-smi reports {nv.driver}",
                "reboot (or reload the nvidia kernel modules) after the driver update",
            )
        )
    elif nv.installed and nv.gpus and nv.driver and nv.installed != nv.driver:
        out.append(
            Check(
                "nvidia.driver_match",
                "NVIDIA driver versions",
                WARN,
                f"driver {nv.installed} is installed, {nv.driver} is running: a reboot is pending "
                f"(requirements are judged on the running {nv.driver})",
                f"reboot to run driver {nv.installed}",
            )
        )
    if loaded or nv.gpus:
        out.append(_nodes_nvidia(det))
    fabric = check_fabric(det)
    if fabric is not None:
        out.append(fabric)
    return out


def _nodes_nvidia(det: Detection) -> Check:
    cid, title = "nvidia.devices", "NVIDIA device nodes"
    if not det.dev_listed:
        return Check(cid, title, NOT_RUN, "cannot list /dev")
    nodes = {d.name: d for d in det.nvidia.nodes}
    gpus = sorted(int(n[6:]) for n in nodes if re.match(r"^nvidia\d+$", n))
    needed = [f"nvidia{i}" for i in gpus] + ["nvidiactl", "nvidia-uvm"]
    denied = [
        f"/dev/{n}" for n in needed if n in nodes and nodes[n].kind == "c" and not nodes[n].usable
    ]
    if denied:
        return Check(
            cid,
            title,
            FAIL,
            f"permission denied on {', '.join(denied[:4])}{' ...' if len(denied) > 4 else ''}",
            "run as root, or give this user access to /dev/nvidia* (the video group, udev rules)",
        )
    if not gpus or "nvidiactl" not in nodes:
        missing = "/dev/nvidia0..N" if not gpus else "/dev/nvidiactl"
        return Check(
            cid,
            title,
            FAIL,
            f"{missing} missing: the driver did not create its device nodes",
            "load the driver (nvidia-modprobe -c=0, or modprobe nvidia) and check dmesg",
        )
    if "nvidia-uvm" not in nodes:
        return Check(
            cid,
            title,
            WARN,
            "/dev/nvidia-uvm missing: CUDA programs cannot start",
            "load nvidia-uvm (nvidia-modprobe -u -c=0, or modprobe nvidia-uvm)",
        )
    listed = len(det.nvidia.gpus)
    if listed and len(gpus) < listed:
        return Check(
            cid,
            title,
            WARN,
            f"{len(gpus)} /dev/nvidiaN nodes for {listed} GPUs",
            "load the driver for every GPU (nvidia-modprobe -c=N)",
        )
    return Check(
        cid,
        title,
        PASS,
        f"/dev/nvidia{ranges(gpus)}, nvidiactl and nvidia-uvm present and usable",
    )


def health_ascend(det: Detection) -> list[Check]:
    a = det.ascend
    if not a.present:
        return []
    out: list[Check] = []
    title = "npu-smi"
    s = a.smi
    if s.status == "ok":
        n = len(a.npus)
        out.append(
            Check(
                "ascend.smi",
                title,
                PASS,
                f"{n} NPU chip{'s' if n != 1 else ''}, driver {a.smi_version or a.driver_version}",
            )
        )
        bad = [n for n in a.npus if n.health.upper() != "OK"]
        if bad:
            severe = [n for n in bad if n.health.upper() not in ("WARNING",)]
            label = ", ".join(f"NPU {n.npu}: {n.health}" for n in bad[:4])
            out.append(
                Check(
                    "ascend.health",
                    "NPU health",
                    FAIL if severe else WARN,
                    f"npu-smi reports {label}",
                    "see `npu-smi info -t health -i N` and the device log (msnpureport)",
                )
            )
    elif s.status == "missing":
        out.append(
            Check(
                "ascend.smi",
                title,
                WARN,
                "an Ascend NPU driver is present but npu-smi is not installed: "
                "the NPUs cannot be listed",
                "install the Ascend NPU driver (npu-smi comes with it)",
            )
        )
    elif s.status == "unreadable":
        out.append(Check("ascend.smi", title, NOT_RUN, s.message, _no_listing_remedy(s, "npu-smi")))
    elif s.status == "failed" and (a.smi_error is not None or s.message):
        _kind, reason, remedy = npu_smi_failure(det)
        out.append(Check("ascend.smi", title, FAIL, reason, remedy))
    else:
        out.append(Check("ascend.smi", title, FAIL, s.message, _no_listing_remedy(s, "npu-smi")))
    if a.driver_version and a.smi_version and not _same_version(a.driver_version, a.smi_version):
        out.append(
            Check(
                "ascend.driver_match",
                "Ascend driver versions",
                WARN,
                f"driver {a.driver_version} is installed (driver/version.info), {a.smi_version} "
                f"is running (npu-smi): a reboot is pending (requirements are judged on the "
                f"running {a.smi_version})",
                f"reboot to run driver {a.driver_version}, or reinstall it if the install failed",
            )
        )
    out.append(_nodes_ascend(det))
    fw = _firmware_range(a)
    if fw is not None:
        out.append(fw)
    return out


def _same_version(a: str, b: str) -> bool:
    va, vb = version_of(a), version_of(b)
    return va == vb if va is not None and vb is not None else a == b


def _nodes_ascend(det: Detection) -> Check:
    cid, title = "ascend.devices", "Ascend device nodes"
    if not det.dev_listed:
        return Check(cid, title, NOT_RUN, "cannot list /dev")
    nodes = {d.name: d for d in det.ascend.nodes}
    chips = sorted(int(n[7:]) for n in nodes if re.match(r"^davinci\d+$", n))
    if not chips:
        return Check(
            cid,
            title,
            FAIL,
            "no /dev/davinciN: the NPU driver created no device nodes",
            "reinstall the NPU driver and reboot; see dmesg",
        )
    missing = [f"/dev/{n}" for n in ("davinci_manager", "devmm_svm", "hisi_hdc") if n not in nodes]
    if missing:
        return Check(
            cid,
            title,
            FAIL,
            f"{', '.join(missing)} missing",
            "reinstall the NPU driver and reboot; see dmesg",
        )
    wanted = [f"davinci{i}" for i in chips] + ["davinci_manager", "devmm_svm", "hisi_hdc"]
    denied = [f"/dev/{n}" for n in wanted if nodes[n].kind == "c" and not nodes[n].usable]
    if denied:
        return Check(
            cid,
            title,
            FAIL,
            f"permission denied on {', '.join(denied[:4])}{' ...' if len(denied) > 4 else ''}",
            "run as root, or as a member of the driver's group (HwHiAiUser)",
        )
    listed = len(det.ascend.npus)
    if listed and len(chips) != listed:
        return Check(
            cid,
            title,
            WARN,
            f"{len(chips)} /dev/davinciN nodes for {listed} NPU chips listed by npu-smi",
            "reinstall the NPU driver and reboot",
        )
    return Check(
        cid,
        title,
        PASS,
        f"/dev/davinci{ranges(chips)}, davinci_manager, devmm_svm and hisi_hdc present and usable",
    )


def _firmware_range(a: Ascend) -> Check | None:
    cid, title = "ascend.firmware_range", "firmware vs driver"
    if a.driver_version is None:
        return None
    if a.firmware_version is None:
        msg = a.firmware_source.message or "firmware version unknown"
        return Check(cid, title, NOT_RUN, f"cannot read the firmware version: {msg}")
    if a.firmware_range is None:
        return Check(
            cid,
            title,
            NOT_RUN,
            f"driver {a.driver_version}'s version.info names no compatible firmware range",
        )
    fw, lo, hi = (
        version_of(a.firmware_version),
        version_of(a.firmware_range[0]),
        version_of(a.firmware_range[1]),
    )
    if fw is None or lo is None or hi is None:
        return Check(cid, title, NOT_RUN, f"cannot read firmware version {a.firmware_version!r}")
    rng = f"[{a.firmware_range[0]}, {a.firmware_range[1]}]"
    if lo <= fw <= hi:
        return Check(
            cid,
            title,
            PASS,
            f"firmware {a.firmware_version} is within driver {a.driver_version}'s compatible range {rng}",
        )
    return Check(
        cid,
        title,
        FAIL,
        f"firmware {a.firmware_version} is outside driver {a.driver_version}'s compatible range {rng}",
        f"install the firmware released with driver {a.driver_version} (Ascend-hdk npu-firmware), then reboot",
    )


def check_cann_driver(det: Detection) -> Check | None:
    """CANN's release line (innerversion ``V100R001C19...``) among the driver's ``compatible_version``.
    The meaning of that list is not documented publicly in detail: a mismatch is a WARN."""
    a = det.ascend
    use = default_cann(a) if a.cann else None
    if use is None or not use.innerversion or not a.driver_compatible or not a.driver_version:
        return None
    m = re.match(r"^(V\d+R\d+C\d+)", use.innerversion)
    if not m:
        return None
    line = m.group(1)
    cid, title = "ascend.cann_driver", "CANN vs driver"
    if line in a.driver_compatible:
        return Check(
            cid,
            title,
            PASS,
            f"CANN {use.version} ({line}) is in driver {a.driver_version}'s compatible versions",
        )
    return Check(
        cid,
        title,
        WARN,
        f"CANN {use.version} ({line}) is not in driver {a.driver_version}'s compatible versions "
        f"({', '.join(a.driver_compatible)})",
        f"install the NPU driver released with CANN {use.version} (see Ascend's version compatibility table)",
    )


# ---------------------------------------------------------------- all


def run_checks(det: Detection, req: Requirements | None, facts: ProbeFacts) -> list[Check]:
    checks: list[Check | None] = []
    checks += [
        Check(
            "probe.error",
            "probe",
            NOT_RUN,
            err,
            "send `airgap probe --record DIR` to the publisher",
        )
        for err in det.errors
    ]
    if req is None:
        checks += health_nvidia(det)
        checks += health_ascend(det)
        if det.ascend.present:
            checks.append(check_cann_driver(det))
        return [c for c in checks if c is not None]
    checks.append(check_platform(det, req))
    checks.append(check_vendor(det, req))
    if req.vendor in ("nvidia", None):
        checks += health_nvidia(det)
    if req.vendor in ("huawei", None):
        checks += health_ascend(det)
    checks += [
        check_chips(det, req, facts),
        check_count(det, req, facts),
        check_mig(det, req, facts),
        check_memory(det, req, facts),
        check_nvidia_driver(det, req),
        check_cuda(det, req, facts),
        check_ascend_driver(det, req),
        check_ascend_firmware(det, req),
        check_cann(det, req),
        check_cann_driver(det) if req.vendor == "huawei" else None,
        check_ascend_env(det, req),
        check_atb(det, req, facts),
        check_container_runtime(det, req),
        check_engine(det, req),
        check_disk(det, req),
        check_host_memory(det, req),
        check_nodes(req),
    ]
    return [c for c in checks if c is not None]


def check_nodes(req: Requirements) -> Check | None:
    """A bundle for several hosts: one probe sees one of them."""
    if req.nodes <= 1:
        return None
    return Check(
        "cluster.nodes",
        "nodes",
        NOT_RUN,
        f"the bundle spans {req.nodes} nodes; this probe sees one of them",
        "probe every node with --report FILE, then compare them: "
        "airgap probe --cluster NODE1.json NODE2.json ...",
    )


__all__ = [
    "FAIL",
    "NOT_RUN",
    "PASS",
    "STATUSES",
    "WARN",
    "Check",
    "exit_code",
    "run_checks",
    "worst",
]
