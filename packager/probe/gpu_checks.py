"""NVIDIA checks that need more than a listing: MIG (CUDA sees MIG devices, not the GPU), the
NVSwitch fabric and its Fabric Manager, and what nvidia-smi's failures mean at a site.

Facts used (public sources):

- MIG: with MIG on, CUDA enumerates only the GPU's MIG devices (NVIDIA MIG user guide, "CUDA
  device enumeration"); ``nvidia-smi -i N -mig 0`` turns it off, effective after a GPU reset
  (``nvidia-smi -i N -r``) or a reboot; ``NVIDIA_VISIBLE_DEVICES=GPU:MIG`` selects a MIG device.
- Fabric Manager: on NVSwitch systems (HGX/DGX A100, H100, H200, B200) CUDA fails with error 802
  (``cudaErrorSystemNotReady``) until ``nvidia-fabricmanager`` has set up the fabric ("Fabric State:
  Completed" in ``nvidia-smi -q``), and Fabric Manager starts only when its version is exactly the
  driver's (Fabric Manager user guide).
"""

from __future__ import annotations

from .bundle import Requirements
from .chipfacts import ProbeFacts
from .detect import Detection, Gpu
from .verdict import (
    FAIL,
    MEMORY_TOLERANCE,
    NOT_RUN,
    PASS,
    WARN,
    Check,
    gb,
    gib,
    mig_gpus,
    ranges,
    usable,
    wanted,
)

#: fabric states that mean "this GPU has no NVSwitch fabric"
NO_FABRIC = ("N/A", "Not Supported", "")


def mig_remedy(gpus: list[Gpu]) -> str:
    ids = ",".join(str(g.index) for g in gpus)
    return (
        f"turn MIG off: nvidia-smi -i {ids} -mig 0 (as root), then reset the GPUs "
        f"(nvidia-smi -i {ids} -r) or reboot; or build a MIG-aware target "
        "(target.accelerator.mig: true) whose model fits one MIG device"
    )


def _mig_summary(gpus: list[Gpu]) -> str:
    """``GPU 0-3 (8 MIG devices: 3g.71gb; the largest 71.0 GiB)``."""
    listed = [m for g in gpus for m in g.mig_devices or []]
    where = f"GPU {ranges([g.index for g in gpus])}"
    if any(g.mig_devices is None for g in gpus):
        return f"{where} (their MIG devices could not be listed)"
    if not listed:
        return f"{where} (no MIG devices created: CUDA sees nothing there)"
    profiles = ", ".join(dict.fromkeys(m.profile for m in listed))
    sizes = [m.memory_bytes for m in listed if m.memory_bytes is not None]
    largest = f"; the largest {gib(max(sizes))}" if sizes else ""
    return f"{where} ({len(listed)} MIG devices: {profiles}{largest})"


def check_mig(det: Detection, req: Requirements, facts: ProbeFacts) -> Check | None:
    """MIG on a GPU of the bundle's chips: FAIL unless enough whole GPUs remain, or the target
    may run on a MIG device and one fits it (then WARN)."""
    if req.vendor != "nvidia":
        return None
    cid, title = "nvidia.mig", "MIG"
    on = mig_gpus(det, req, facts)
    want = set(wanted(req, facts))
    pending = [
        g
        for g in det.nvidia.gpus
        if (not want or g.chip in want) and g.mig and g.mig_pending and g.mig_pending != g.mig
    ]
    if not on and not pending:
        return None
    if not on:
        ids = ",".join(str(g.index) for g in pending)
        return Check(
            cid,
            title,
            WARN,
            f"MIG turns on for GPU {ranges([g.index for g in pending])} at the next GPU reset or "
            "reboot (pending): CUDA will then see only MIG devices there",
            f"undo it before the next reboot: nvidia-smi -i {ids} -mig 0",
        )
    need = req.count or 1
    devs = usable(det, req, facts)
    whole = [d for d in devs if d.mig is None]
    what = ", ".join(wanted(req, facts)) or "GPU"
    summary = _mig_summary(on)
    if not req.mig:
        if len(whole) >= need:
            return Check(
                cid,
                title,
                WARN,
                f"MIG is on for {summary}: CUDA sees MIG devices there, not whole GPUs; "
                f"{len(whole)} whole {what} GPUs remain for the bundle's {need}",
                "expose only the whole GPUs: NVIDIA_VISIBLE_DEVICES="
                + ",".join(d.visible for d in whole),
            )
        return Check(
            cid,
            title,
            FAIL,
            f"MIG is on for {summary}: CUDA sees only MIG devices there, not whole {what} GPUs; "
            f"{len(whole)} whole GPU{'s' if len(whole) != 1 else ''} for the bundle's {need}",
            mig_remedy(on),
        )
    slices = [d for d in devs if d.mig is not None]
    if req.memory_bytes is None:
        fit = slices
        basis = "the bundle names no memory size"
    else:
        fit = [
            d
            for d in slices
            if d.memory_bytes is not None and d.memory_bytes >= req.memory_bytes * MEMORY_TOLERANCE
        ]
        basis = f"the bundle needs {gb(req.memory_bytes)} per device"
    if len(whole) + len(fit) >= need:
        pick = (whole + fit)[:need]
        on_mig = any(d.mig is not None for d in pick)
        return Check(
            cid,
            title,
            WARN,
            f"MIG is on for {summary}; the target may run on a MIG device and {len(fit)} fit "
            f"({basis}): "
            + (
                "it runs on MIG devices, with their share of the GPU's compute"
                if on_mig
                else f"{len(whole)} whole {what} GPUs remain for the bundle's {need}"
            ),
            "expose them: NVIDIA_VISIBLE_DEVICES=" + ",".join(d.visible for d in pick),
        )
    return Check(
        cid,
        title,
        FAIL,
        f"MIG is on for {summary}: {len(whole)} whole GPUs and {len(fit)} MIG devices that fit "
        f"({basis}), the bundle needs {need}",
        mig_remedy(on),
    )


# ---------------------------------------------------------------- Fabric Manager


def _fabric_gpus(det: Detection) -> list[Gpu]:
    return [g for g in det.nvidia.gpus if (g.fabric_state or "") not in NO_FABRIC]


def fm_remedy(driver: str | None) -> str:
    if not driver:
        return "install nvidia-fabricmanager of exactly the driver's version and start it"
    branch = driver.split(".")[0]
    return (
        f"install Fabric Manager {driver}, exactly the driver's version (Ubuntu: "
        f"apt install nvidia-fabricmanager-{branch}={driver}-1; RHEL: "
        f"dnf install nvidia-fabric-manager-{driver}-1; the bundle can carry the package in "
        "runtime.files), then systemctl restart nvidia-fabricmanager"
    )


def check_fabric(det: Detection) -> Check | None:
    """On an NVSwitch system: Fabric Manager running, of the driver's version, and the fabric of
    every GPU set up. ``nvidia-smi`` lists healthy GPUs either way; CUDA fails with 802."""
    nv = det.nvidia
    fm = nv.fabric
    fabric_gpus = _fabric_gpus(det)
    if not fm.nvswitches and not fabric_gpus:
        return None
    cid, title = "nvidia.fabric", "NVSwitch fabric"
    drv = nv.driver
    where = (
        f"{fm.nvswitches} NVSwitch{'es' if fm.nvswitches != 1 else ''}"
        if fm.nvswitches
        else "an NVSwitch fabric"
    )
    error802 = "CUDA fails with error 802 (system not yet initialized) until it is"
    if fm.version and drv and fm.version != drv:
        return Check(
            cid,
            title,
            FAIL,
            f"{where}: Fabric Manager {fm.version} is not the driver's version {drv}, so it does "
            f"not set up the fabric; {error802}",
            fm_remedy(drv),
        )
    if fm.log_mismatch is not None:
        return Check(
            cid,
            title,
            FAIL,
            f"{where}: Fabric Manager's log says its version is not the driver's "
            f"({fm.log_mismatch.line}); {error802}",
            fm_remedy(drv),
        )
    if fm.service in ("inactive", "failed"):
        return Check(
            cid,
            title,
            FAIL,
            f"{where}: nvidia-fabricmanager is {fm.service}; {error802}",
            "systemctl enable --now nvidia-fabricmanager (see journalctl -u nvidia-fabricmanager "
            "and /var/log/fabricmanager.log if it does not stay up)",
        )
    waiting = [g for g in fabric_gpus if g.fabric_state != "Completed"]
    if waiting:
        states = ", ".join(dict.fromkeys(f"{g.fabric_state}" for g in waiting))
        return Check(
            cid,
            title,
            FAIL,
            f"{where}: the fabric of GPU {ranges([g.index for g in waiting])} is not set up "
            f"(nvidia-smi -q Fabric State: {states}); {error802}",
            "start Fabric Manager (systemctl start nvidia-fabricmanager) and wait until "
            "nvidia-smi -q shows Fabric State: Completed; if it is running, see "
            "/var/log/fabricmanager.log",
        )
    if fabric_gpus and fm.service in ("active", None):
        running = f"Fabric Manager {fm.version or '(version unknown)'}" + (
            " active" if fm.service == "active" else ""
        )
        return Check(
            cid,
            title,
            PASS,
            f"{where}: {running}, fabric set up (Completed) on {len(fabric_gpus)} GPUs",
        )
    if fm.service == "active":
        return Check(
            cid,
            title,
            PASS,
            f"{where}: nvidia-fabricmanager {fm.version or ''} active".replace("  ", " "),
        )
    return Check(
        cid,
        title,
        NOT_RUN,
        f"{where}, but neither the fabric state (nvidia-smi -q) nor Fabric Manager's service "
        "could be read",
        "check systemctl status nvidia-fabricmanager and nvidia-smi -q | grep -A2 Fabric",
    )


# ---------------------------------------------------------------- nvidia-smi's failures


def smi_failure(message: str, kind: str | None, container: str | None) -> tuple[str, str]:
    """A failed nvidia-smi: (the reason, with what kind of failure it is; the remedy for it)."""
    inside = container is not None
    if kind == "mismatch":
        if inside:
            return (
                f"{message} (the driver libraries in this container are not the host's kernel "
                "module)",
                "start the container with the NVIDIA runtime (--gpus all), which mounts the "
                "host's driver libraries, instead of installing a driver inside the image",
            )
        return (
            f"{message} (driver/library mismatch: a driver update waits for a reboot)",
            "reboot, or unload and reload the NVIDIA modules (rmmod nvidia_uvm nvidia_drm "
            "nvidia_modeset nvidia; modprobe nvidia)",
        )
    if kind == "no-driver":
        if inside:
            return (
                f"{message} (driver not reachable from this container)",
                "start the container with --gpus all (nvidia-container-toolkit) or "
                "--runtime=nvidia, so that /dev/nvidiactl and the driver are mapped in",
            )
        return (
            f"{message} (driver not loaded)",
            "load the driver (modprobe nvidia); after a kernel update install the driver for the "
            "running kernel (DKMS needs its headers); see dmesg",
        )
    if kind == "no-devices":
        if inside:
            return (
                f"{message} (no GPU mapped into this container)",
                "start the container with --gpus all, or NVIDIA_VISIBLE_DEVICES naming the GPUs",
            )
        return (
            f"{message} (the driver sees no GPU)",
            "check lspci | grep -i nvidia and dmesg (a GPU that fell off the bus, RmInitAdapter "
            "failed); reseat or reboot",
        )
    if kind == "permission":
        return (
            f"{message} (permission)",
            "run as root, or give this user access to /dev/nvidia* (the video group, udev rules)",
        )
    return message, "check the driver: `nvidia-smi` must list the GPUs (see dmesg)"
