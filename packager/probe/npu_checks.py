"""Ascend checks that need more than a listing: what a failed npu-smi means (the driver, a busy
device, a container without the devices, permissions), NPUs the driver does not list, and the NNAL
(Ascend Transformer Boost) library that vLLM-Ascend and MindIE load.

npu-smi's DCMI return codes (Ascend npu-smi and DCMI API references): ``-8005`` the DCMI library
could not initialize (driver not loaded, or the device files or driver folder not reachable from
a container, or not allowed); ``-8020`` the device is used (by another process or container).
"""

from __future__ import annotations

import re

from .bundle import Requirements
from .chipfacts import ProbeFacts
from .detect import Detection, npu_devices
from .verdict import FAIL, PASS, WARN, Check, ranges

ASCEND_NODES = ("davinci_manager", "devmm_svm", "hisi_hdc")
CONTAINER_DEVICES = (
    "--device /dev/davinciN --device /dev/davinci_manager --device /dev/devmm_svm "
    "--device /dev/hisi_hdc -v /usr/local/Ascend/driver:/usr/local/Ascend/driver:ro "
    "-v /usr/local/sbin/npu-smi:/usr/local/sbin/npu-smi"
)


def _nodes(det: Detection) -> tuple[list[int], list[str], list[str]]:
    """(/dev/davinciN indices, manager nodes missing, nodes this user cannot open)."""
    nodes = {d.name: d for d in det.ascend.nodes}
    chips = sorted(int(n[7:]) for n in nodes if re.fullmatch(r"davinci\d+", n))
    missing = [n for n in ASCEND_NODES if n not in nodes]
    denied = [f"/dev/{n}" for n, d in sorted(nodes.items()) if d.kind == "c" and not d.usable]
    return chips, missing, denied


def npu_smi_failure(det: Detection) -> tuple[str, str, str]:
    """(the class of npu-smi's failure, the reason, the remedy)."""
    a = det.ascend
    err = a.smi_error
    said = a.smi.message
    inside = det.host.container is not None
    chips, missing, denied = _nodes(det)
    if err is not None and err.kind == "busy":
        return (
            "device busy",
            f"{said} (device busy: another process or container holds the NPUs)",
            "find what holds them: on the host, fuser -v /dev/davinci* and docker ps; stop it, "
            "or give this deployment other NPUs (ASCEND_VISIBLE_DEVICES)",
        )
    if denied and det.dev_listed:
        return (
            "permission",
            f"{said} (no permission on {', '.join(denied[:3])}{' ...' if len(denied) > 3 else ''})",
            "run as root, or as a member of the driver's group (HwHiAiUser)",
        )
    if inside:
        if det.dev_listed and (not chips or missing):
            gone = "/dev/davinciN" if not chips else ", ".join(f"/dev/{n}" for n in missing)
            return (
                "not mapped into the container",
                f"{said} (not mapped into this container: {gone} missing)",
                "start the container with the Ascend runtime (--runtime ascend -e "
                f"ASCEND_VISIBLE_DEVICES=0-7), or with {CONTAINER_DEVICES}",
            )
        if err is not None and err.kind == "libraries":
            return (
                "not mapped into the container",
                f"{said} (the driver's libraries are not mounted into this container)",
                "mount /usr/local/Ascend/driver read-only into the container (the Ascend runtime "
                "does it)",
            )
        return (
            "device busy or not mapped",
            f"{said} (inside a container: the NPUs are held by another container, or the driver "
            "is not mounted into this one)",
            "check that no other container holds these NPUs (each NPU serves one container at a "
            "time: docker ps on the host), and that /usr/local/Ascend/driver is mounted into this "
            "one",
        )
    if err is not None and err.kind == "libraries":
        return (
            "driver",
            f"{said} (npu-smi cannot load the driver's libraries)",
            "reinstall the NPU driver, or add /usr/local/Ascend/driver/lib64 to LD_LIBRARY_PATH",
        )
    if det.dev_listed and not chips:
        return (
            "driver not loaded",
            f"{said} (driver not loaded: no /dev/davinciN)",
            "load the driver: reinstall the NPU driver (Ascend-hdk-*-npu-driver_*.run --full) and "
            "its firmware, reboot; see dmesg",
        )
    return (
        "driver",
        f"{said} (the NPU driver does not answer)",
        "repair the driver: reinstall the NPU driver and the firmware that matches it, reboot; "
        "see dmesg and /var/log/ascend_seclog",
    )


def missing_npus(det: Detection) -> list[int]:
    """Device ids that have a /dev/davinciN node, or fall in a gap of the listed ids, but that
    npu-smi does not list (a card that dropped off the bus)."""
    listed = set(npu_devices(det.ascend))
    if not listed:
        return []
    chips, _missing, _denied = _nodes(det)
    span = set(range(max(listed) + 1)) if max(listed) < 64 else set()
    return sorted((span | set(chips)) - listed)


def missing_npus_remedy(ids: list[int], count: int) -> str:
    return (
        f"NPU {ranges(ids)} is not listed by npu-smi: check that it is on the PCI bus "
        "(lspci -d 19e5:), its health (npu-smi info -t health -i N) and dmesg; a card that "
        f"dropped off needs a reboot or a reseat; or rebuild the bundle with count: {count}"
    )


def check_atb(det: Detection, req: Requirements, facts: ProbeFacts) -> Check | None:
    """NNAL's libatb.so on the host, when the bundle runs a serving stack that loads it from the
    host's Python (its wheels); an image carries its own."""
    if req.vendor != "huawei":
        return None
    needs = [w for w in req.wheels if w in facts.needs_atb]
    if not needs:
        return None
    cid, title = "ascend.atb", "NNAL (ATB)"
    a = det.ascend
    what = ", ".join(needs)
    if not a.atb:
        return Check(
            cid,
            title,
            FAIL,
            f"the bundle's {what} loads the Ascend Transformer Boost library (libatb.so), and no "
            f"NNAL install has it (looked under {a.install_path}/nnal/atb and $ATB_HOME_PATH)",
            "install Ascend-cann-nnal of the CANN version in use "
            "(Ascend-cann-nnal_<version>_linux-<arch>.run --install), then source "
            f"{a.install_path}/nnal/atb/set_env.sh",
        )
    home = det.ascend.atb_home
    if not home:
        return Check(
            cid,
            title,
            WARN,
            f"NNAL is installed ({a.atb[0]}) but its environment is not set (ATB_HOME_PATH unset)",
            f"source {a.install_path}/nnal/atb/set_env.sh",
        )
    return Check(cid, title, PASS, f"libatb.so for {what}: {a.atb[0]} (ATB_HOME_PATH={home})")
