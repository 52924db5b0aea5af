"""Recorded machines of real site conditions (issues "site truth" and "Fabric Manager"): MIG,
NVSwitch systems without a working Fabric Manager, beta and patch drivers, the A3 and 310P Duo
tables, the legacy 910's names, an NPU gone from the bus, busy and unmapped devices, a driver
update waiting for a reboot, NNAL. Each row: the verdict a site gets, and the one the probe gave
before these machines were recorded (in the comment), table-driven.

The detected chips, counts and versions must equal what the recorded tools printed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.probe.util import BUNDLES, MACHINES, Run, probe_json

#: (machine, bundle or None, {check id: status or None for absent}, exit code)
CASES: list[tuple[str, str | None, dict[str, str | None], int]] = [
    # MIG on the only H200 (before: PASS, the probe saw a whole 141 GB H200)
    ("h200-mig", None, {"nvidia.smi": "PASS", "nvidia.mig": None}, 0),
    (
        "h200-mig",
        "cuda-h200x1",
        {"accelerator.chips": "PASS", "accelerator.count": "FAIL", "nvidia.mig": "FAIL"},
        1,
    ),
    # a MIG-aware target that fits a 3g.71gb MIG device (before: PASS)
    (
        "h200-mig",
        "cuda-h200x1-mig",
        {"accelerator.count": "PASS", "nvidia.mig": "WARN", "accelerator.memory": "PASS"},
        3,
    ),
    # NVSwitch systems (before: PASS on all of them)
    ("hgx-h100x8-fm-stopped", None, {"nvidia.smi": "PASS", "nvidia.fabric": "FAIL"}, 1),
    (
        "hgx-h100x8-fm-stopped",
        "cuda-h100x8",
        {"accelerator.count": "PASS", "nvidia.driver": "PASS", "nvidia.fabric": "FAIL"},
        1,
    ),
    ("hgx-h200x8-fm-mismatch", "cuda-h200x8", {"nvidia.fabric": "FAIL"}, 1),
    ("dgx-a100x8-fm-stopped", "cuda-a100x8", {"nvidia.fabric": "FAIL"}, 1),
    (
        "hgx-b200x8-fm-ok",
        "cuda-b200x8",
        {"nvidia.fabric": "PASS", "accelerator.count": "PASS", "nvidia.cuda": "PASS"},
        0,
    ),
    # nvidia-smi failures, with the remedy of their kind (before: FAIL with a generic remedy)
    (
        "gpu-driver-update-no-reboot",
        "cuda-h100x8",
        {"nvidia.smi": "FAIL", "accelerator.vendor": "FAIL", "nvidia.driver": "PASS"},
        1,
    ),
    ("container-gpus-not-passed", "cuda-h100x8", {"nvidia.smi": "FAIL"}, 1),
    # versions Huawei's trains write (before: NOT RUN, "cannot read the driver version")
    ("a2-beta-driver", "ascend-910b3x8", {"ascend.driver": "FAIL", "ascend.cann": "FAIL"}, 1),
    ("a2-beta-driver", "ascend-910b3x8-rc1", {"ascend.driver": "PASS", "ascend.cann": "PASS"}, 0),
    (
        "a2-hdk-rc2-patch",
        "ascend-910b4x8-rc2",
        {"ascend.driver": "PASS", "ascend.firmware": "PASS", "accelerator.memory": "PASS"},
        0,
    ),
    (
        "a3-910c-16chips",
        "ascend-910cx16",
        {
            "accelerator.chips": "PASS",
            "accelerator.count": "PASS",
            "ascend.driver": "PASS",
            "ascend.cann": "PASS",
            "ascend.devices": "PASS",
        },
        0,
    ),
    # the 310P Duo numbered 32768 (before: WARN too; checked, not changed)
    (
        "atlas300i-duo-npu32768",
        "ascend-310p3x4",
        {"accelerator.count": "PASS", "ascend.driver": "PASS", "ascend.container": "WARN"},
        3,
    ),
    # the legacy 910 printing "910B" (before: FAIL, an unknown chip)
    ("atlas800-9000-legacy-910b", "ascend-910ax8", {"accelerator.chips": "PASS"}, 0),
    ("atlas800-9000-legacy-910b", "ascend-910b3x8", {"accelerator.chips": "FAIL"}, 1),
    # NPU 3 gone from the bus (before: FAIL without naming it)
    ("a2-7of8-npus", "ascend-910b3x8", {"accelerator.count": "FAIL", "ascend.devices": "WARN"}, 1),
    # npu-smi failures (before: the noise line and "repair the driver"; the driver's fault)
    ("a2-npu-busy", "ascend-910b3x8", {"ascend.smi": "FAIL", "accelerator.vendor": "FAIL"}, 1),
    ("a2-container-not-mapped", "ascend-910b3x8", {"ascend.smi": "FAIL"}, 1),
    # installed 24.1.0, running 24.1.rc3 (before: WARN, judged on the installed 24.1.0)
    (
        "a2-driver-reboot-pending",
        "ascend-910b3x8-hdk241",
        {"ascend.driver": "FAIL", "ascend.driver_match": "WARN"},
        1,
    ),
    ("a2-npu-smi-26-wide", "ascend-910b2x8-cann85", {"accelerator.count": "PASS"}, 0),
    ("a2-vllm-nnal", "ascend-910b3x8-vllm", {"ascend.atb": "PASS", "ascend.cann": "PASS"}, 0),
    # one node of two (before: PASS; a node cannot vouch for the cluster)
    ("a2-node1", "ascend-910b3x8-2nodes", {"cluster.nodes": "NOT RUN"}, 3),
    (
        "hgx-h100-node1",
        "cuda-h100x8-2nodes",
        {"cluster.nodes": "NOT RUN", "nvidia.fabric": "PASS"},
        3,
    ),
]


def _id(case: tuple[str, str | None, dict[str, str | None], int]) -> str:
    return f"{case[0]}+{case[1] or 'no-bundle'}"


def run_case(capsys: pytest.CaptureFixture[str], machine: str, bundle: str | None) -> Run:
    args = ["--sysroot", str(MACHINES / machine)]
    args += ["--bundle", str(BUNDLES / f"{bundle}.json")] if bundle else ["--no-bundle"]
    run = probe_json(capsys, *args)
    assert "Traceback" not in run.err
    assert not [c for c in run.doc["checks"] if c["id"] == "probe.error"], run.doc["checks"]
    return run


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_verdicts(
    case: tuple[str, str | None, dict[str, str | None], int], capsys: pytest.CaptureFixture[str]
) -> None:
    machine, bundle, want, code = case
    run = run_case(capsys, machine, bundle)
    got = run.statuses()
    for cid, status in want.items():
        if status is None:
            assert cid not in got, f"{cid} should not be checked: {got}"
        else:
            assert got.get(cid) == status, f"{cid}: {run.check(cid) if cid in got else 'absent'}"
    assert run.code == code, got
    for c in run.doc["checks"]:
        if c["status"] in ("FAIL", "WARN"):
            assert c["remedy"], f"{c['id']} {c['status']} without a remedy"


def check(
    capsys: pytest.CaptureFixture[str], machine: str, bundle: str | None, cid: str
) -> dict[str, Any]:
    return run_case(capsys, machine, bundle).check(cid)


# ---------------------------------------------------------------- MIG


def test_mig_is_seen_and_named(capsys: pytest.CaptureFixture[str]) -> None:
    run = run_case(capsys, "h200-mig", "cuda-h200x1")
    (gpu,) = run.doc["nvidia"]["gpus"]
    assert gpu["chip"] == "h200" and gpu["memory_bytes"] == 143771 * 2**20
    assert gpu["mig"]["current"] == "Enabled" and gpu["mig"]["pending"] == "Enabled"
    assert [(d["index"], d["profile"], d["memory_bytes"]) for d in gpu["mig"]["devices"]] == [
        (0, "3g.71gb", 71 * 2**30),
        (1, "3g.71gb", 71 * 2**30),
    ]
    mig = run.check("nvidia.mig")
    assert "MIG is on for GPU 0 (2 MIG devices: 3g.71gb; the largest 71.0 GiB)" in mig["reason"]
    assert "0 whole GPUs for the bundle's 1" in mig["reason"]
    assert mig["remedy"].startswith("turn MIG off: nvidia-smi -i 0 -mig 0 (as root)")
    assert "target.accelerator.mig: true" in mig["remedy"]


def test_a_mig_aware_target_runs_on_a_mig_device(capsys: pytest.CaptureFixture[str]) -> None:
    mig = check(capsys, "h200-mig", "cuda-h200x1-mig", "nvidia.mig")
    assert "2 fit (the bundle needs 40 GB per device)" in mig["reason"]
    assert mig["remedy"] == "expose them: NVIDIA_VISIBLE_DEVICES=0:0"


# ---------------------------------------------------------------- Fabric Manager


def test_fabric_manager_not_running(capsys: pytest.CaptureFixture[str]) -> None:
    run = run_case(capsys, "hgx-h100x8-fm-stopped", "cuda-h100x8")
    fm = run.check("nvidia.fabric")
    assert fm["reason"].startswith("4 NVSwitches: nvidia-fabricmanager is inactive")
    assert "error 802" in fm["reason"]
    assert fm["remedy"].startswith("systemctl enable --now nvidia-fabricmanager")
    fabric = run.doc["nvidia"]["fabric"]
    assert fabric["nvswitches"] == 4 and fabric["service"] == "inactive"
    assert fabric["version"] == "550.90.07"
    assert {g["fabric"]["state"] for g in run.doc["nvidia"]["gpus"]} == {"In Progress"}


def test_fabric_manager_of_another_version(capsys: pytest.CaptureFixture[str]) -> None:
    fm = check(capsys, "hgx-h200x8-fm-mismatch", "cuda-h200x8", "nvidia.fabric")
    assert "Fabric Manager 570.124.06 is not the driver's version 570.133.20" in fm["reason"]
    assert "nvidia-fabricmanager-570=570.133.20-1" in fm["remedy"]
    assert "the bundle can carry the package" in fm["remedy"]


def test_fabric_on_an_ampere_dgx_is_told_by_the_nvswitch_nodes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = run_case(capsys, "dgx-a100x8-fm-stopped", "cuda-a100x8")
    assert {g["fabric"]["state"] for g in run.doc["nvidia"]["gpus"]} == {"N/A"}
    assert run.check("nvidia.fabric")["reason"].startswith("6 NVSwitches:")


def test_fabric_set_up(capsys: pytest.CaptureFixture[str]) -> None:
    fm = check(capsys, "hgx-b200x8-fm-ok", "cuda-b200x8", "nvidia.fabric")
    assert fm["reason"] == (
        "an NVSwitch fabric: Fabric Manager 570.133.20 active, fabric set up (Completed) on 8 GPUs"
    )


# ---------------------------------------------------------------- nvidia-smi's failures


def test_driver_library_mismatch_names_both_versions(capsys: pytest.CaptureFixture[str]) -> None:
    run = run_case(capsys, "gpu-driver-update-no-reboot", "cuda-h100x8")
    smi = run.check("nvidia.smi")
    assert "Driver/library version mismatch" in smi["reason"]
    assert "running kernel module 550.90.07, installed 550.127.05" in smi["reason"]
    assert smi["remedy"].startswith("reboot")
    assert run.doc["nvidia"]["driver"]["installed"] == "550.127.05"
    assert run.doc["nvidia"]["nvidia_smi"]["error"] == "mismatch"
    assert run.check("accelerator.vendor")["remedy"].startswith("reboot")


def test_no_gpu_in_a_container(capsys: pytest.CaptureFixture[str]) -> None:
    run = run_case(capsys, "container-gpus-not-passed", "cuda-h100x8")
    assert run.doc["host"]["container"] == "docker"
    smi = run.check("nvidia.smi")
    assert smi["reason"] == (
        "nvidia-smi exited 6: No devices were found (no GPU mapped into this container)"
    )
    assert "--gpus all" in smi["remedy"]


# ---------------------------------------------------------------- Ascend versions and tables


@pytest.mark.parametrize(
    ("machine", "driver", "firmware", "cann"),
    [
        ("a2-beta-driver", "24.1.rc1.b030", "7.1.0.6.220", "8.0.RC1"),
        ("a2-hdk-rc2-patch", "24.1.rc2.2", "7.3.0.1.231", "8.0.RC2"),
        ("a3-910c-16chips", "25.0.rc1.1", "7.7.0.1.231", "8.2.RC1.alpha001"),
        ("atlas300i-duo-npu32768", "24.1.rc3", "7.5.0.1.129", "8.0.RC3"),
        ("atlas800-9000-legacy-910b", "23.0.3", "7.1.0.3.220", "7.0.0"),
        ("a2-npu-smi-26-wide", "26.0.rc1", "7.9.0.1.101", "8.5.0"),
    ],
)
def test_versions_are_what_the_tools_printed(
    machine: str, driver: str, firmware: str, cann: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a = run_case(capsys, machine, None).doc["ascend"]
    assert a["npu_smi"]["version"] == driver
    assert a["driver"]["version"] == driver
    assert a["firmware"]["version"] == firmware
    assert [c["version"] for c in a["cann"]["installs"]] == [cann]


#: machine -> [(npu, chip index, device, name, chip id, memory MiB)] as npu-smi printed them
TABLES = {
    "a3-910c-16chips": [
        (n, c, 2 * n + c, "Ascend910", "ascend910c", 65536) for n in range(8) for c in range(2)
    ],
    "atlas300i-duo-npu32768": [
        (32768, 0, 0, "310P3", "ascend310p3", 21527),
        (32768, 1, 1, "310P3", "ascend310p3", 21527),
        (32769, 0, 2, "310P3", "ascend310p3", 21527),
        (32769, 1, 3, "310P3", "ascend310p3", 21527),
    ],
    "atlas800-9000-legacy-910b": [(n, 0, None, "910B", "ascend910a", 32768) for n in range(8)],
    "a2-7of8-npus": [(n, 0, None, "910B3", "ascend910b3", 65536) for n in range(8) if n != 3],
    "a2-npu-smi-26-wide": [(n, 0, n, "910B2", "ascend910b2", 65536) for n in range(8)],
}


@pytest.mark.parametrize("machine", sorted(TABLES))
def test_chips_and_counts_are_what_npu_smi_printed(
    machine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    npus = run_case(capsys, machine, None).doc["ascend"]["npus"]
    got = [
        (n["npu"], n["chip_index"], n["device"], n["name"], n["chip"], n["memory_bytes"] >> 20)
        for n in npus
    ]
    assert got == TABLES[machine]


def test_the_legacy_910_is_never_a_910b(capsys: pytest.CaptureFixture[str]) -> None:
    chips = check(capsys, "atlas800-9000-legacy-910b", "ascend-910b3x8", "accelerator.chips")
    assert chips["reason"] == "no device is ascend910b3: NPU 0-7 are ascend910a (910B)"


def test_an_npu_gone_from_the_bus_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    count = check(capsys, "a2-7of8-npus", "ascend-910b3x8", "accelerator.count")
    assert count["reason"] == (
        "7 ascend910b3 devices; NPU 3 not listed by npu-smi, the bundle needs 8"
    )
    assert count["remedy"].startswith(
        "NPU 3 is not listed by npu-smi: check that it is on the PCI bus"
    )


# ---------------------------------------------------------------- npu-smi's failures


def test_a_busy_npu_is_reported_by_what_npu_smi_said(capsys: pytest.CaptureFixture[str]) -> None:
    run = run_case(capsys, "a2-npu-busy", "ascend-910b3x8")
    smi = run.check("ascend.smi")
    assert "DrvMngGetConsoleLogLevel" not in smi["reason"]
    assert smi["reason"] == (
        "npu-smi: dcmi model initialized failed, because the device is used. ret is -8020 "
        "(device busy: another process or container holds the NPUs)"
    )
    assert "repair the driver" not in smi["remedy"]
    assert smi["remedy"].startswith("find what holds them")
    assert run.doc["ascend"]["npu_smi"]["error"] == {
        "line": "dcmi model initialized failed, because the device is used. ret is -8020",
        "code": -8020,
        "kind": "busy",
    }
    assert run.check("accelerator.vendor")["remedy"] == smi["remedy"]


def test_8005_in_a_container_without_the_devices(capsys: pytest.CaptureFixture[str]) -> None:
    smi = check(capsys, "a2-container-not-mapped", "ascend-910b3x8", "ascend.smi")
    assert "not mapped into this container" in smi["reason"]
    assert "/dev/davinci_manager, /dev/devmm_svm, /dev/hisi_hdc missing" in smi["reason"]
    assert "--runtime ascend" in smi["remedy"] and "--device /dev/davinci_manager" in smi["remedy"]


# ---------------------------------------------------------------- running vs installed


def test_requirements_are_judged_on_the_running_driver(capsys: pytest.CaptureFixture[str]) -> None:
    run = run_case(capsys, "a2-driver-reboot-pending", "ascend-910b3x8-hdk241")
    assert run.check("ascend.driver")["reason"] == (
        "Ascend NPU driver 24.1.rc3 does not satisfy >=24.1.0"
    )
    match = run.check("ascend.driver_match")
    assert "24.1.0 is installed" in match["reason"] and "24.1.rc3 is running" in match["reason"]
    assert "reboot is pending" in match["reason"]


def test_nnal_found(capsys: pytest.CaptureFixture[str]) -> None:
    run = run_case(capsys, "a2-vllm-nnal", "ascend-910b3x8-vllm")
    atb = run.check("ascend.atb")
    assert "vllm-ascend" in atb["reason"]
    assert run.doc["ascend"]["atb"]["home"] == "/usr/local/Ascend/nnal/atb/latest/atb/cxx_abi_0"
    assert (
        "/usr/local/Ascend/nnal/atb/latest/atb/cxx_abi_0/lib/libatb.so"
        in (run.doc["ascend"]["atb"]["libraries"])
    )
