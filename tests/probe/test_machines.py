"""Every recorded machine x a few bundles: the check statuses and the exit code, table-driven.

Each report is also validated against schemas/probe-report.schema.json.
"""

from __future__ import annotations

import pytest

from tests.probe.util import BUNDLES, MACHINES, probe_json

ALL_MACHINES = sorted(p.name for p in MACHINES.iterdir() if p.is_dir())
ALL_BUNDLES = sorted(p.stem for p in BUNDLES.glob("*.json"))

#: (machine, bundle or None, {check id: status}, exit code). The statuses listed must match; a
#: check given as None must be absent.
CASES: list[tuple[str, str | None, dict[str, str | None], int]] = [
    # ---- no bundle: the health of what is there
    ("h100x8-driver550", None, {"nvidia.smi": "PASS", "nvidia.devices": "PASS"}, 0),
    ("h200-open580", None, {"nvidia.smi": "PASS", "nvidia.devices": "PASS"}, 0),
    ("a100-driver470", None, {"nvidia.smi": "PASS", "nvidia.devices": "PASS"}, 0),
    ("l40s-driver535", None, {"nvidia.smi": "PASS"}, 0),
    ("mixed-h100-a100", None, {"nvidia.smi": "PASS", "nvidia.driver_match": None}, 0),
    (
        "ascend910b3x8-cann80",
        None,
        {
            "ascend.smi": "PASS",
            "ascend.devices": "PASS",
            "ascend.firmware_range": "PASS",
            "ascend.cann_driver": "PASS",
        },
        0,
    ),
    ("ascend910b4-cann85", None, {"ascend.smi": "PASS", "ascend.firmware_range": "PASS"}, 0),
    ("ascend310p3-duo", None, {"ascend.smi": "PASS", "ascend.devices": "PASS"}, 0),
    ("ascend-broken-driver", None, {"ascend.smi": "FAIL", "ascend.devices": "PASS"}, 1),
    ("ascend-firmware-mismatch", None, {"ascend.firmware_range": "FAIL", "ascend.smi": "PASS"}, 1),
    ("no-accelerator", None, {"nvidia.smi": None, "ascend.smi": None}, 0),
    # ---- NVIDIA bundles
    (
        "h100x8-driver550",
        "cuda-h100x8",
        {
            "host.platform": "PASS",
            "accelerator.vendor": "PASS",
            "accelerator.chips": "PASS",
            "accelerator.count": "PASS",
            "accelerator.memory": "PASS",
            "nvidia.driver": "PASS",
            "nvidia.cuda": "PASS",
            "host.disk": "PASS",
            "host.memory": "PASS",
            "kernels": None,
            "smoke": None,
            "engine": None,
        },
        0,
    ),
    (
        "h100x8-driver550",
        "cuda-h100x4-images",
        {
            "kernels": "NOT RUN",
            "smoke": "NOT RUN",
            "nvidia.container": "PASS",
            "engine": "PASS",
            "accelerator.count": "PASS",
        },
        3,
    ),
    (
        "mixed-h100-a100",
        "cuda-h100x4-images",
        {"accelerator.chips": "PASS", "accelerator.count": "PASS", "nvidia.cuda": "PASS"},
        3,
    ),
    (
        "mixed-h100-a100",
        "cuda-h100x8",
        {"accelerator.chips": "PASS", "accelerator.count": "FAIL"},
        1,
    ),
    (
        "mixed-h100-a100",
        "cuda-a100x4",
        {"accelerator.chips": "PASS", "accelerator.count": "PASS"},
        0,
    ),
    (
        "a100-driver470",
        "cuda-a100x4",
        {"nvidia.cuda": "FAIL", "accelerator.memory": "WARN", "accelerator.chips": "PASS"},
        1,
    ),
    (
        "a100-driver470",
        "cuda-h100x8",
        {"accelerator.chips": "FAIL", "accelerator.count": "FAIL", "nvidia.driver": "FAIL"},
        1,
    ),
    ("l40s-driver535", "cuda-l40sx2", {"nvidia.cuda": "WARN", "host.disk": "FAIL"}, 1),
    (
        "h200-open580",
        "cuda-h200x4-cuda13",
        {"nvidia.driver": "PASS", "nvidia.cuda": "PASS", "host.memory": "WARN"},
        3,
    ),
    (
        "h100x8-driver550",
        "cuda-h200x4-cuda13",
        {"accelerator.chips": "FAIL", "nvidia.driver": "FAIL", "nvidia.cuda": "FAIL"},
        1,
    ),
    (
        "no-accelerator",
        "cuda-h100x8",
        {"accelerator.vendor": "FAIL", "accelerator.chips": "NOT RUN"},
        1,
    ),
    (
        "h100x8-driver550",
        "ascend-910b3x8",
        {"host.platform": "FAIL", "accelerator.vendor": "FAIL"},
        1,
    ),
    # ---- Ascend bundles
    (
        "ascend910b3x8-cann80",
        "ascend-910b3x8",
        {
            "host.platform": "PASS",
            "accelerator.vendor": "PASS",
            "ascend.smi": "PASS",
            "ascend.devices": "PASS",
            "ascend.firmware_range": "PASS",
            "accelerator.chips": "PASS",
            "accelerator.count": "PASS",
            "accelerator.memory": "PASS",
            "ascend.driver": "PASS",
            "ascend.firmware": "PASS",
            "ascend.cann": "PASS",
            "ascend.cann_driver": "PASS",
            "ascend.env": "PASS",
        },
        0,
    ),
    (
        "ascend910b3x8-cann80",
        "ascend-910b4x8-cann85",
        {"accelerator.chips": "FAIL", "ascend.cann": "FAIL", "ascend.driver": "FAIL"},
        1,
    ),
    (
        "ascend910b4-cann85",
        "ascend-910b4x8-cann85",
        {"ascend.cann": "PASS", "ascend.driver": "PASS", "ascend.env": "PASS"},
        0,
    ),
    (
        "ascend910b4-cann85",
        "ascend-910b3x8",
        {"accelerator.chips": "FAIL", "ascend.cann": "PASS", "ascend.firmware": "PASS"},
        1,
    ),
    (
        "ascend310p3-duo",
        "ascend-310p3x4",
        {
            "accelerator.count": "PASS",
            "accelerator.memory": "PASS",
            "ascend.env": "WARN",
            "ascend.container": "WARN",
            "engine": "PASS",
        },
        3,
    ),
    (
        "ascend-broken-driver",
        "ascend-910b3x8",
        {
            "accelerator.vendor": "FAIL",
            "ascend.smi": "FAIL",
            "accelerator.chips": "NOT RUN",
            "ascend.driver": "PASS",
        },
        1,
    ),
    (
        "ascend-firmware-mismatch",
        "ascend-910b3x8",
        {
            "ascend.firmware_range": "FAIL",
            "ascend.firmware": "FAIL",
            "ascend.cann": "FAIL",
            "ascend.driver": "PASS",
        },
        1,
    ),
    (
        "ascend910b3x8-cann80",
        "cuda-h100x8",
        {"host.platform": "FAIL", "accelerator.vendor": "FAIL"},
        1,
    ),
    # ---- no accelerator
    ("no-accelerator", "cpu-amd64", {"host.platform": "PASS", "accelerator.vendor": "PASS"}, 0),
    ("ascend910b3x8-cann80", "cpu-amd64", {"host.platform": "FAIL", "ascend.smi": None}, 1),
]


def _id(case: tuple[str, str | None, dict[str, str | None], int]) -> str:
    return f"{case[0]}+{case[1] or 'no-bundle'}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_machine_x_bundle(
    case: tuple[str, str | None, dict[str, str | None], int], capsys: pytest.CaptureFixture[str]
) -> None:
    machine, bundle, want, code = case
    args = ["--sysroot", str(MACHINES / machine)]
    args += ["--bundle", str(BUNDLES / f"{bundle}.json")] if bundle else ["--no-bundle"]
    run = probe_json(capsys, *args)
    got = run.statuses()
    for cid, status in want.items():
        if status is None:
            assert cid not in got, f"{cid} should not be checked: {got}"
        else:
            assert got.get(cid) == status, f"{cid}: {run.check(cid) if cid in got else 'absent'}"
    assert run.code == code, got
    assert run.doc["summary"]["exit_code"] == code
    for c in run.doc["checks"]:
        assert "\n" not in c["reason"] and c["reason"].strip()
        if c["status"] in ("FAIL", "WARN") and c["id"] != "probe.error":
            assert c["remedy"], f"{c['id']} {c['status']} without a remedy"


@pytest.mark.parametrize("bundle", [None, *ALL_BUNDLES])
@pytest.mark.parametrize("machine", ALL_MACHINES)
def test_every_report_is_schema_valid(
    machine: str, bundle: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--sysroot", str(MACHINES / machine)]
    args += ["--bundle", str(BUNDLES / f"{bundle}.json")] if bundle else ["--no-bundle"]
    run = probe_json(capsys, *args)  # validates
    assert run.doc["source"] == {"mode": "sysroot", "sysroot": str(MACHINES / machine)}
    assert not [c for c in run.doc["checks"] if c["id"] == "probe.error"]


def test_every_required_fixture_machine_is_there() -> None:
    assert set(ALL_MACHINES) >= {
        "h100x8-driver550",
        "h200-open580",
        "a100-driver470",
        "l40s-driver535",
        "mixed-h100-a100",
        "ascend910b3x8-cann80",
        "ascend910b4-cann85",
        "ascend310p3-duo",
        "ascend-broken-driver",
        "ascend-firmware-mismatch",
        "no-accelerator",
        # real site conditions (test_site_truth.py)
        "h200-mig",
        "hgx-h100x8-fm-stopped",
        "hgx-h200x8-fm-mismatch",
        "hgx-b200x8-fm-ok",
        "dgx-a100x8-fm-stopped",
        "gpu-driver-update-no-reboot",
        "container-gpus-not-passed",
        "hgx-h100-node1",
        "hgx-h100-node2",
        "a2-beta-driver",
        "a2-hdk-rc2-patch",
        "a3-910c-16chips",
        "atlas300i-duo-npu32768",
        "atlas800-9000-legacy-910b",
        "a2-7of8-npus",
        "a2-npu-busy",
        "a2-container-not-mapped",
        "a2-driver-reboot-pending",
        "a2-npu-smi-26-wide",
        "a2-vllm-nnal",
        "a2-node1",
        "a2-node2",
    }


# ---------------------------------------------------------------- what each machine shows


def test_h100_detection(capsys: pytest.CaptureFixture[str]) -> None:
    doc = probe_json(capsys, "--sysroot", str(MACHINES / "h100x8-driver550")).doc
    assert doc["host"]["os"] == {"id": "ubuntu", "version": "22.04", "name": "Ubuntu 22.04.4 LTS"}
    assert doc["host"]["platform"] == "linux/amd64"
    assert doc["host"]["libc"] == {"name": "glibc", "version": "2.35"}
    assert doc["host"]["cpu"] == {"model": "Intel(R) Xeon(R) Platinum 8480+", "count": 224}
    assert doc["host"]["memory"]["total_bytes"] == 2113389804 * 1024
    nv = doc["nvidia"]
    assert nv["driver"] == {
        "version": "550.54.15",
        "module_version": "550.54.15",
        "module": "proprietary",
        "installed": None,  # an older recording: no libnvidia-ml.so listed
    }
    assert [g["chip"] for g in nv["gpus"]] == ["h100"] * 8
    assert nv["gpus"][0]["memory_bytes"] == 81559 * 2**20
    assert nv["gpus"][0]["compute_cap"] == "9.0"
    assert nv["container_toolkit"]["nvidia_ctk"] == "1.15.0"
    assert nv["container_toolkit"]["nvidia_container_runtime"] == "1.15.0"
    assert doc["engine"]["server_version"] == "26.1.3"
    assert "nvidia" in doc["engine"]["runtimes"]
    assert doc["engine"]["daemon_json"]["runtimes"] == ["nvidia"]
    assert doc["ascend"]["present"] is False


def test_h200_open_kernel_module(capsys: pytest.CaptureFixture[str]) -> None:
    doc = probe_json(capsys, "--sysroot", str(MACHINES / "h200-open580")).doc
    assert doc["nvidia"]["driver"]["module"] == "open"
    assert doc["nvidia"]["driver"]["version"] == "580.65.06"
    assert doc["nvidia"]["container_toolkit"]["cdi_specs"] == ["/etc/cdi/nvidia.yaml"]


def test_a100_driver_470_falls_back_to_the_legacy_query(capsys: pytest.CaptureFixture[str]) -> None:
    run = probe_json(
        capsys,
        "--sysroot",
        str(MACHINES / "a100-driver470"),
        "--bundle",
        str(BUNDLES / "cuda-a100x4.json"),
    )
    gpus = run.doc["nvidia"]["gpus"]
    assert [g["compute_cap"] for g in gpus] == ["8.0"] * 4  # from the chip facts
    assert run.check("nvidia.cuda")["remedy"] == "install driver >= 550.54.14 (found 470.182.03)"
    assert "525.60.13" in run.check("nvidia.cuda")["reason"]


def test_mixed_host_names_the_devices_that_do_not_match(capsys: pytest.CaptureFixture[str]) -> None:
    run = probe_json(
        capsys,
        "--sysroot",
        str(MACHINES / "mixed-h100-a100"),
        "--bundle",
        str(BUNDLES / "cuda-h100x4-images.json"),
    )
    chips = run.check("accelerator.chips")
    assert "4 of 8 devices are h100 (GPU 0-3)" in chips["reason"]
    assert "GPU 4-7 are a100 (NVIDIA A100 80GB PCIe)" in chips["reason"]
    assert chips["remedy"] == "expose only the matching devices: NVIDIA_VISIBLE_DEVICES=0,1,2,3"
    run = probe_json(
        capsys,
        "--sysroot",
        str(MACHINES / "mixed-h100-a100"),
        "--bundle",
        str(BUNDLES / "cuda-a100x4.json"),
    )
    assert run.check("accelerator.chips")["remedy"].endswith("NVIDIA_VISIBLE_DEVICES=4,5,6,7")


def test_l40s_minor_version_compatibility(capsys: pytest.CaptureFixture[str]) -> None:
    run = probe_json(
        capsys,
        "--sysroot",
        str(MACHINES / "l40s-driver535"),
        "--bundle",
        str(BUNDLES / "cuda-l40sx2.json"),
    )
    cuda = run.check("nvidia.cuda")
    assert cuda["remedy"] == "install driver >= 550.54.14 (found 535.183.01)"
    assert "minor-version compatibility" in cuda["reason"]
    assert run.doc["engine"]["name"] is None  # no docker on this one


def test_ascend_old_layout(capsys: pytest.CaptureFixture[str]) -> None:
    doc = probe_json(capsys, "--sysroot", str(MACHINES / "ascend910b3x8-cann80")).doc
    a = doc["ascend"]
    assert doc["host"]["cpu"]["model"] == "HiSilicon Kunpeng-920"
    assert doc["host"]["platform"] == "linux/arm64"
    assert a["npu_smi"]["version"] == "24.1.0"
    assert len(a["npus"]) == 8
    assert {n["chip"] for n in a["npus"]} == {"ascend910b3"}
    assert a["npus"][0]["memory_bytes"] == 65536 * 2**20
    assert a["npus"][0]["memory_used_bytes"] == 3396 * 2**20
    assert a["npus"][0]["bus_id"] == "0000:C1:00.0"
    assert a["npus"][0]["hbm"] is True
    assert a["driver"]["version"] == "24.1.0"
    assert a["driver"]["compatible_firmware"] == ["7.0.0", "7.5.99"]
    assert a["firmware"]["version"] == "7.5.0.3.220"
    active = a["cann"]["active"]
    assert active["version"] == "8.0.0"
    assert active["layout"] == "ascend-toolkit"
    assert active["path"] == "/usr/local/Ascend/ascend-toolkit/latest"
    assert a["env"]["ASCEND_TOOLKIT_HOME"] == "/usr/local/Ascend/ascend-toolkit/latest"
    assert a["docker_runtime_installed"] is True
    assert "ascend" in doc["engine"]["runtimes"]
    assert doc["engine"]["daemon_json"]["default_runtime"] == "ascend"


def test_ascend_new_layout_and_the_environment_picks_the_cann(
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = probe_json(capsys, "--sysroot", str(MACHINES / "ascend910b4-cann85")).doc
    cann = doc["ascend"]["cann"]
    assert cann["active"]["version"] == "8.5.0"
    assert cann["active"]["layout"] == "cann"
    assert cann["active"]["path"] == "/usr/local/Ascend/cann-8.5.0"
    assert sorted(c["version"] for c in cann["installs"]) == ["8.0.RC3", "8.5.0"]
    assert {n["chip"] for n in doc["ascend"]["npus"]} == {"ascend910b4"}


def test_ascend_310p_rows(capsys: pytest.CaptureFixture[str]) -> None:
    doc = probe_json(capsys, "--sysroot", str(MACHINES / "ascend310p3-duo")).doc
    npus = doc["ascend"]["npus"]
    assert [(n["npu"], n["chip_index"], n["device"]) for n in npus] == [
        (1, 0, 0),
        (1, 1, 1),
        (2, 0, 2),
        (2, 1, 3),
    ]
    assert {n["chip"] for n in npus} == {"ascend310p3"}
    assert npus[0]["memory_bytes"] == 21534 * 2**20
    assert npus[0]["hbm"] is False
    assert doc["ascend"]["cann"]["active"] is None  # set_env.sh not sourced
    assert doc["ascend"]["cann"]["installs"][0]["arch"] == "x86_64"


def test_broken_npu_driver_message(capsys: pytest.CaptureFixture[str]) -> None:
    run = probe_json(capsys, "--sysroot", str(MACHINES / "ascend-broken-driver"))
    smi = run.check("ascend.smi")
    assert "dcmi module initialize failed. ret is -8005" in smi["reason"]
    assert run.doc["ascend"]["npus"] == []


def test_firmware_outside_the_drivers_range(capsys: pytest.CaptureFixture[str]) -> None:
    run = probe_json(capsys, "--sysroot", str(MACHINES / "ascend-firmware-mismatch"))
    fw = run.check("ascend.firmware_range")
    assert fw["reason"] == (
        "firmware 7.1.0.3.220 is outside driver 24.1.rc2's compatible range [7.3.0, 7.5.99]"
    )
    assert "firmware" in fw["remedy"]
