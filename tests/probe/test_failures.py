"""Bad input from the machine: a command that hangs, is missing, prints garbage or cannot run;
/dev that cannot be opened or listed; unreadable files. Each is a clear NOT RUN, WARN or FAIL with a
reason, never a traceback. Recorded variants of the fixture machines, and real commands on PATH."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.probe.util import (
    BUNDLES,
    MACHINES,
    Run,
    copy_machine,
    probe_json,
    set_command,
    set_dev,
)

H100 = "h100x8-driver550"
A2 = "ascend910b3x8-cann80"


def run_variant(capsys: pytest.CaptureFixture[str], root: Path, bundle: str | None = None) -> Run:
    args = ["--sysroot", str(root)]
    args += ["--bundle", str(BUNDLES / f"{bundle}.json")] if bundle else ["--no-bundle"]
    run = probe_json(capsys, *args)
    assert "Traceback" not in run.err
    assert not [c for c in run.doc["checks"] if c["id"] == "probe.error"], run.doc["checks"]
    return run


# ---------------------------------------------------------------- nvidia-smi


@pytest.mark.parametrize(
    ("fields", "status", "words", "code"),
    [
        ({"timeout": True, "rc": None}, "FAIL", "did not answer in time", 1),
        ({"stdout": "lorem ipsum\n"}, "NOT RUN", "cannot read", 3),
        ({"stdout": "\x00\x01garbage, , ,\n"}, "NOT RUN", "cannot read", 3),
        (
            {
                "rc": 18,
                "stdout": "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 550.127\n",
            },
            "FAIL",
            "Driver/library version mismatch",
            1,
        ),
        (
            {
                "rc": 9,
                "stdout": "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n\n",
            },
            "FAIL",
            "couldn't communicate",
            1,
        ),
        (
            {"rc": 4, "stdout": "Failed to initialize NVML: Insufficient Permissions\n"},
            "FAIL",
            "Insufficient Permissions",
            1,
        ),
        ({"rc": 6, "stdout": "No devices were found\n"}, "FAIL", "No devices were found", 1),
        ({"rc": None, "error": "permission denied"}, "FAIL", "permission denied", 1),
        ({"remove": True}, "WARN", "not installed", 3),
    ],
    ids=[
        "hang",
        "garbage",
        "binary-garbage",
        "mismatch",
        "no-driver",
        "no-permission",
        "no-devices",
        "exec-denied",
        "missing",
    ],
)
def test_nvidia_smi_misbehaves(
    fields: dict[str, object],
    status: str,
    words: str,
    code: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = copy_machine(H100, tmp_path)
    set_command(root, "nvidia-smi", **fields)
    run = run_variant(capsys, root)
    smi = run.check("nvidia.smi")
    assert smi["status"] == status
    assert words in smi["reason"]
    assert smi["remedy"]
    assert run.code == code
    # with a bundle: the GPUs cannot be listed, so the requirement fails, and says why
    run = run_variant(capsys, root, "cuda-h100x8")
    vendor = run.check("accelerator.vendor")
    assert vendor["status"] == "FAIL"
    assert vendor["remedy"]
    assert run.check("accelerator.count")["status"] == "NOT RUN"
    # the driver is still known from the kernel module
    assert run.check("nvidia.driver")["status"] == "PASS"
    assert run.code == 1


def test_driver_mismatch_between_module_and_nvidia_smi(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_machine(H100, tmp_path)
    (root / "proc/driver/nvidia/version").write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.127.05  Tue Oct  8 03:22:07 UTC 2024\n"
    )
    run = run_variant(capsys, root)
    assert run.check("nvidia.driver_match")["status"] == "WARN"
    assert run.code == 3


def test_unknown_gpu_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_machine(H100, tmp_path)
    set_command(
        root,
        "nvidia-smi",
        stdout="0, NVIDIA RTX 6000 Ada Generation, GPU-1, 550.54.15, 8.9, 49140\n",
    )
    set_dev(root, {f"nvidia{i}": None for i in range(1, 8)})
    run = run_variant(capsys, root, "cuda-h100x8")
    chips = run.check("accelerator.chips")
    assert chips["status"] == "FAIL"
    assert "'NVIDIA RTX 6000 Ada Generation' (a chip airgap does not know)" in chips["reason"]
    assert run.doc["nvidia"]["gpus"][0]["chip"] is None


# ---------------------------------------------------------------- /dev


def test_permission_denied_on_dev_nvidia(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_machine(H100, tmp_path)
    set_dev(root, {"nvidia0": "-", "nvidiactl": "r"})
    run = run_variant(capsys, root)
    dev = run.check("nvidia.devices")
    assert dev["status"] == "FAIL"
    assert dev["reason"] == "permission denied on /dev/nvidia0, /dev/nvidiactl"
    assert "root" in dev["remedy"]
    assert run.code == 1


def test_missing_nvidia_uvm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_machine(H100, tmp_path)
    set_dev(root, {"nvidia-uvm": None, "nvidia-uvm-tools": None})
    run = run_variant(capsys, root)
    assert run.check("nvidia.devices")["status"] == "WARN"
    assert "nvidia-uvm" in run.check("nvidia.devices")["remedy"]


def test_permission_denied_on_dev_davinci(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_machine(A2, tmp_path)
    set_dev(root, {"davinci_manager": "-", "davinci3": "-"})
    run = run_variant(capsys, root)
    dev = run.check("ascend.devices")
    assert dev["status"] == "FAIL"
    assert dev["reason"] == "permission denied on /dev/davinci3, /dev/davinci_manager"
    assert "HwHiAiUser" in dev["remedy"]


def test_missing_davinci_manager(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_machine(A2, tmp_path)
    set_dev(root, {"davinci_manager": None, "hisi_hdc": None})
    run = run_variant(capsys, root)
    assert run.check("ascend.devices")["reason"] == "/dev/davinci_manager, /dev/hisi_hdc missing"


def test_dev_that_cannot_be_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_machine(A2, tmp_path)
    (root / "dev.list").unlink()
    run = run_variant(capsys, root)
    assert run.check("ascend.devices") == {
        "id": "ascend.devices",
        "title": "Ascend device nodes",
        "status": "NOT RUN",
        "reason": "cannot list /dev",
        "remedy": None,
    }
    assert run.code == 3


# ---------------------------------------------------------------- npu-smi and Ascend files


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"timeout": True, "rc": None}, "FAIL", "did not answer in time"),
        ({"stdout": "Segmentation fault\n"}, "NOT RUN", "cannot read"),
        (
            {"rc": 255, "stdout": "", "stderr": "dcmi module initialize failed. ret is -8005\n"},
            "FAIL",
            "-8005",
        ),
        (
            {
                "rc": 1,
                "stdout": "",
                "stderr": "npu-smi: error while loading shared libraries: libdrvdsmi_host.so: cannot open shared object file: No such file or directory\n",
            },
            "FAIL",
            "libdrvdsmi_host.so",
        ),
        ({"remove": True}, "WARN", "not installed"),
    ],
    ids=["hang", "garbage", "dcmi-on-stderr", "broken-install", "missing"],
)
def test_npu_smi_misbehaves(
    fields: dict[str, object],
    status: str,
    words: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = copy_machine(A2, tmp_path)
    set_command(root, "npu-smi", **fields)
    run = run_variant(capsys, root, "ascend-910b3x8")
    smi = run.check("ascend.smi")
    assert smi["status"] == status
    assert words in smi["reason"]
    assert run.check("accelerator.vendor")["status"] == "FAIL"


@pytest.mark.parametrize(
    ("health", "status"), [("Warning", "WARN"), ("Alarm", "FAIL"), ("Critical", "FAIL")]
)
def test_npu_health(
    health: str, status: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_machine(A2, tmp_path)
    path = root / "commands" / "npu-smi.json"
    data = json.loads(path.read_text())
    data["stdout"] = data["stdout"].replace(
        "| 5     910B3               | OK            |",
        f"| 5     910B3               | {health:<14}|",
    )
    path.write_text(json.dumps(data))
    run = run_variant(capsys, root)
    check = run.check("ascend.health")
    assert check["status"] == status
    assert f"NPU 5: {health}" in check["reason"]


def test_driver_version_info_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_machine(A2, tmp_path)
    machine = json.loads((root / "machine.json").read_text())
    machine["unreadable"] = ["/usr/local/Ascend/driver/version.info"]
    (root / "machine.json").write_text(json.dumps(machine))
    run = run_variant(capsys, root, "ascend-910b3x8")
    assert run.doc["ascend"]["driver"]["source"]["status"] == "denied"
    # the driver version still comes from npu-smi's header
    assert run.check("ascend.driver")["status"] == "PASS"


def test_garbage_version_info_and_daemon_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_machine(A2, tmp_path)
    (root / "usr/local/Ascend/firmware/version.info").write_bytes(b"\x7fELF\x02\x01\x01garbage")
    (root / "etc/docker/daemon.json").write_text("{ not json")
    run = run_variant(capsys, root, "ascend-910b3x8")
    assert run.doc["ascend"]["firmware"]["source"]["status"] == "unreadable"
    assert run.check("ascend.firmware")["status"] == "NOT RUN"
    assert run.check("ascend.firmware_range")["status"] == "NOT RUN"
    assert run.doc["engine"]["daemon_json"]["status"] == "unreadable"


def test_cann_environment_not_set_picks_latest_and_names_the_right_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_machine("ascend910b4-cann85", tmp_path)
    (root / "env.json").write_text(json.dumps({"PATH": "/usr/bin:/bin"}))
    run = run_variant(capsys, root, "ascend-910b4x8-cann85")
    cann = run.check("ascend.cann")
    assert cann["status"] == "FAIL"
    assert "8.5.0 at /usr/local/Ascend/cann-8.5.0 satisfies >=8.5.0" in cann["reason"]
    assert cann["remedy"] == "source /usr/local/Ascend/cann-8.5.0/set_env.sh"
    env = run.check("ascend.env")
    assert env["status"] == "WARN"
    assert env["remedy"] == "source /usr/local/Ascend/ascend-toolkit/set_env.sh"


def test_cann_missing_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_machine(A2, tmp_path)
    import shutil

    shutil.rmtree(root / "usr/local/Ascend/ascend-toolkit")
    run = run_variant(capsys, root, "ascend-910b3x8")
    assert run.check("ascend.cann")["status"] == "WARN"
    assert "ascend.env" not in run.statuses()


def test_cann_not_in_the_drivers_compatible_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_machine(A2, tmp_path)
    info = root / "usr/local/Ascend/driver/version.info"
    info.write_text(info.read_text().replace(",[V100R001C20]", ""))
    run = run_variant(capsys, root, "ascend-910b3x8")
    assert run.check("ascend.cann_driver")["status"] == "WARN"


def test_docker_daemon_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_machine(H100, tmp_path)
    set_command(
        root,
        "docker-version",
        rc=1,
        stdout='{"Client":{"Version":"26.1.3","ApiVersion":"1.45"},"Server":null}\n',
        stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n",
    )
    set_command(
        root,
        "docker-runtimes",
        rc=1,
        stdout="null\n",
        stderr="Cannot connect to the Docker daemon\n",
    )
    run = run_variant(capsys, root, "cuda-h100x4-images")
    engine = run.check("engine")
    assert engine["status"] == "WARN"
    assert "Cannot connect to the Docker daemon" in engine["reason"]
    assert engine["remedy"] == "start the docker daemon (systemctl start docker)"
    assert run.doc["engine"]["client_version"] == "26.1.3"
    # daemon.json still registers the nvidia runtime
    assert run.check("nvidia.container")["status"] == "PASS"


def test_corrupt_command_record_reads_as_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_machine(H100, tmp_path)
    (root / "commands" / "docker-version.json").write_text("{{{")
    run = run_variant(capsys, root)
    assert run.doc["engine"]["name"] is None


# ---------------------------------------------------------------- real commands on PATH


def fake_bin(tmp_path: Path, scripts: dict[str, str]) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, body in scripts.items():
        f = folder / name
        f.write_text("#!/bin/sh\n" + body + "\n")
        f.chmod(f.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def test_live_command_that_hangs_is_killed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # nvidia-smi hangs, and a child of it keeps the pipes open
    folder = fake_bin(tmp_path, {"nvidia-smi": "/bin/sleep 300 &\n/bin/sleep 300"})
    monkeypatch.setenv("PATH", str(folder))
    run = probe_json(capsys, "--timeout", "0.5", "--no-bundle")
    smi = run.doc["nvidia"]["nvidia_smi"]
    assert smi["status"] == "timeout"
    assert smi["message"] == "nvidia-smi did not answer in time (killed)"
    assert run.check("nvidia.smi")["status"] == "FAIL"
    assert run.doc["ascend"]["npu_smi"]["status"] == "missing"
    assert run.doc["engine"]["name"] is None  # no docker on this PATH


def test_live_garbage_and_broken_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = fake_bin(
        tmp_path,
        {
            "nvidia-smi": "echo 'lorem ipsum'",
            "npu-smi": "echo 'dcmi module initialize failed. ret is -8005'; exit 255",
            "docker": "echo '<html>' ; exit 0",
        },
    )
    (folder / "nvidia-ctk").write_text("#!/nonexistent/interpreter\n")
    (folder / "nvidia-ctk").chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    run = probe_json(capsys, "--no-bundle")
    assert run.doc["nvidia"]["nvidia_smi"]["status"] == "unreadable"
    assert run.check("nvidia.smi")["status"] == "NOT RUN"
    assert run.check("ascend.smi")["status"] == "FAIL"
    assert "-8005" in run.check("ascend.smi")["reason"]
    assert run.doc["engine"]["status"]["status"] == "unreadable"
    assert run.doc["nvidia"]["container_toolkit"]["nvidia_ctk"] is None
    assert run.code == 1


def test_live_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from packager.probe.system import LiveSystem

    f = tmp_path / "secret"
    f.write_text("x")
    f.chmod(0)
    live = LiveSystem()
    if os.geteuid() == 0:  # root reads anything: check the branch through a directory instead
        assert live.read_text(str(tmp_path)) is None
    else:
        assert live.read_text(str(f)) is None
        assert str(f) in live.unreadable


# ---------------------------------------------------------------- MIG, Fabric Manager, NNAL


def write_bundle(tmp_path: Path, base: str, **accelerator: object) -> str:
    """A copy of a fixture bundle with its accelerator changed."""
    doc = json.loads((BUNDLES / f"{base}.json").read_text())
    doc["target"]["accelerator"].update(accelerator)
    path = tmp_path / f"{base}-edited.json"
    path.write_text(json.dumps(doc))
    return str(path)


def run_bundle(capsys: pytest.CaptureFixture[str], root: Path, bundle: str) -> Run:
    run = probe_json(capsys, "--sysroot", str(root), "--bundle", bundle)
    assert "Traceback" not in run.err
    return run


def mig_on(root: Path, gpus: list[int], profiles: list[str] | None) -> None:
    """Turn MIG on for ``gpus`` in a recording: the query's MIG fields and nvidia-smi -L."""
    data = json.loads((root / "commands" / "nvidia-smi.json").read_text())
    rows = []
    for line in data["stdout"].splitlines():
        cells = line.split(", ")
        if int(cells[0]) in gpus:
            cells[-2:] = ["Enabled", "Enabled"]
        rows.append(", ".join(cells))
    set_command(root, "nvidia-smi", stdout="\n".join(rows) + "\n")
    if profiles is None:
        (root / "commands" / "nvidia-smi-list.json").unlink()
        return
    listing = json.loads((root / "commands" / "nvidia-smi-list.json").read_text())["stdout"]
    out = []
    for line in listing.splitlines():
        out.append(line)
        idx = int(line.split(":")[0].split()[1])
        if idx in gpus:
            for i, p in enumerate(profiles):
                out.append(
                    f"  MIG {p:<11} Device {i:>2}: (UUID: MIG-{idx}{i}aa0b1c-0000-5000-8000-000000000000)"
                )
    set_command(root, "nvidia-smi-list", stdout="\n".join(out) + "\n")


#: (GPUs with MIG on, their MIG profiles (None: -L not recorded), bundle edits, MIG status,
#: count status, words of the MIG check's reason)
MIG_CASES = [
    ([0, 1], ["3g.90gb", "3g.90gb"], {"count": 6}, "WARN", "PASS", "6 whole b200 GPUs remain"),
    ([0, 1], ["3g.90gb", "3g.90gb"], {"count": 8}, "FAIL", "FAIL", "6 whole GPUs for the bundle's 8"),
    ([0], None, {"count": 8}, "FAIL", "FAIL", "their MIG devices could not be listed"),
    ([0], [], {"count": 1, "mig": True}, "WARN", "PASS", "7 whole b200 GPUs remain"),
    # 56 MIG devices CUDA can open (the count), none large enough (MIG and memory FAIL)
    ([*range(8)], ["1g.23gb"] * 7, {"count": 8, "mig": True, "memory_bytes": 40 * 10**9},
     "FAIL", "PASS", "0 whole GPUs and 0 MIG devices that fit"),
    ([*range(8)], ["2g.45gb"] * 3, {"count": 16, "mig": True, "memory_bytes": 40 * 10**9},
     "WARN", "PASS", "24 fit"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("gpus", "profiles", "edit", "mig", "count", "words"),
    MIG_CASES,
    ids=["enough-whole", "too-few-whole", "not-listed", "none-created", "too-small", "mig-aware"],
)
def test_mig_on_an_hgx(
    gpus: list[int],
    profiles: list[str] | None,
    edit: dict[str, object],
    mig: str,
    count: str,
    words: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = copy_machine("hgx-b200x8-fm-ok", tmp_path)
    mig_on(root, gpus, profiles)
    run = run_bundle(capsys, root, write_bundle(tmp_path, "cuda-b200x8", **edit))
    check = run.check("nvidia.mig")
    assert (check["status"], run.check("accelerator.count")["status"]) == (mig, count), check
    assert words in check["reason"]
    assert check["remedy"]


def test_mig_pending_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_machine("hgx-b200x8-fm-ok", tmp_path)
    data = json.loads((root / "commands" / "nvidia-smi.json").read_text())
    stdout = data["stdout"].replace("Disabled, Disabled\n", "Disabled, Enabled\n", 1)
    set_command(root, "nvidia-smi", stdout=stdout)
    run = run_bundle(capsys, root, str(BUNDLES / "cuda-b200x8.json"))
    mig = run.check("nvidia.mig")
    assert mig["status"] == "WARN" and "at the next GPU reset" in mig["reason"]
    assert mig["remedy"] == "undo it before the next reboot: nvidia-smi -i 0 -mig 0"
    assert run.check("accelerator.count")["status"] == "PASS"


#: (edit of hgx-b200x8-fm-ok, fabric status, words)
FABRIC_CASES = [
    ("log-mismatch-only", "FAIL", "Fabric Manager's log says its version is not the driver's"),
    ("in-progress-while-active", "FAIL", "the fabric of GPU 0-7 is not set up"),
    ("container-no-systemctl", "PASS", "fabric set up (Completed) on 8 GPUs"),
    ("nothing-readable", "NOT RUN", "neither the fabric state"),
]


def edit_fabric(root: Path, case: str) -> None:
    if case == "log-mismatch-only":
        set_command(root, "fabricmanager-version", remove=True)
        set_command(root, "fabricmanager-status", rc=3, stdout="failed\n")
        log = (MACHINES / "hgx-h200x8-fm-mismatch" / "var/log/fabricmanager.log").read_text()
        (root / "var/log").mkdir(parents=True)
        (root / "var/log/fabricmanager.log").write_text(log)
    q = json.loads((root / "commands" / "nvidia-smi-query.json").read_text())["stdout"]
    if case == "in-progress-while-active":
        set_command(root, "nvidia-smi-query", stdout=q.replace(": Completed", ": In Progress"))
    if case == "container-no-systemctl":
        set_command(
            root,
            "fabricmanager-status",
            rc=1,
            stdout="System has not been booted with systemd as init system (PID 1). Can't operate.\n"
            "Failed to connect to bus: Host is down\n",
        )
    if case == "nothing-readable":
        set_command(root, "nvidia-smi-query", remove=True)
        set_command(root, "fabricmanager-status", remove=True)
        set_command(root, "fabricmanager-version", remove=True)
        lines = (root / "dev.list").read_text() + "nvidia-nvswitch0 c rw\nnvidia-nvswitchctl c rw\n"
        (root / "dev.list").write_text(lines)


@pytest.mark.parametrize(
    ("case", "status", "words"), FABRIC_CASES, ids=[c[0] for c in FABRIC_CASES]
)
def test_fabric_manager_variants(
    case: str, status: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_machine("hgx-b200x8-fm-ok", tmp_path)
    edit_fabric(root, case)
    run = run_bundle(capsys, root, str(BUNDLES / "cuda-b200x8.json"))
    fabric = run.check("nvidia.fabric")
    assert fabric["status"] == status, fabric
    assert words in fabric["reason"]


def test_an_older_recording_gets_no_fabric_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    """No -q, no service state, no NVSwitch node: nothing says there is a fabric."""
    run = probe_json(capsys, "--sysroot", str(MACHINES / H100), "--no-bundle")
    assert "nvidia.fabric" not in run.statuses()
    assert run.doc["nvidia"]["fabric"]["query"]["status"] == "not-run"


def test_installed_driver_newer_than_the_running_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_machine(H100, tmp_path)
    lib = root / "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.127.05"
    lib.parent.mkdir(parents=True)
    lib.write_text("(present on the recorded machine; not copied)\n")
    run = run_variant(capsys, root, "cuda-h100x8")
    match = run.check("nvidia.driver_match")
    assert match["status"] == "WARN"
    assert match["reason"].startswith("driver 550.127.05 is installed, 550.54.15 is running")
    assert run.check("nvidia.driver")["reason"] == "driver 550.54.15 satisfies >=550"


#: (edit of a2-npu-busy's npu-smi and /dev, the kind of failure in the reason, remedy words)
NPU_FAILURES = [
    ("host-8005-no-davinci", "driver not loaded: no /dev/davinciN", "reinstall the NPU driver"),
    ("host-8005-with-davinci", "the NPU driver does not answer", "repair the driver"),
    ("8005-no-permission", "no permission on /dev/davinci_manager", "HwHiAiUser"),
    ("container-8005-all-mapped", "held by another container", "each NPU serves one container"),
]


@pytest.mark.parametrize(
    ("case", "kind", "remedy"), [c[:3] for c in NPU_FAILURES], ids=[c[0] for c in NPU_FAILURES]
)
def test_npu_smi_failures_by_cause(
    case: str, kind: str, remedy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_machine("a2-npu-busy", tmp_path)
    set_command(root, "npu-smi", rc=255, stdout="dcmi module initialize failed. ret is -8005\n")
    if case == "host-8005-no-davinci":
        set_dev(root, {f"davinci{i}": None for i in range(8)})
    if case == "8005-no-permission":
        set_dev(root, {"davinci_manager": "-"})
    if case == "container-8005-all-mapped":
        (root / ".dockerenv").write_text("")
    run = run_variant(capsys, root, "ascend-910b3x8")
    smi = run.check("ascend.smi")
    assert smi["status"] == "FAIL"
    assert smi["reason"].startswith("npu-smi: dcmi module initialize failed. ret is -8005 (")
    assert kind in smi["reason"]
    assert remedy in smi["remedy"]


@pytest.mark.parametrize(
    ("edit", "status", "words"),
    [("no-nnal", "FAIL", "no NNAL install has it"), ("not-sourced", "WARN", "ATB_HOME_PATH unset")],
)
def test_nnal_missing_or_not_sourced(
    edit: str, status: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    root = copy_machine("a2-vllm-nnal", tmp_path)
    env = json.loads((root / "env.json").read_text())
    env.pop("ATB_HOME_PATH")
    (root / "env.json").write_text(json.dumps(env))
    if edit == "no-nnal":
        shutil.rmtree(root / "usr/local/Ascend/nnal")
    run = run_variant(capsys, root, "ascend-910b3x8-vllm")
    atb = run.check("ascend.atb")
    assert atb["status"] == status and words in atb["reason"]
    assert "nnal/atb/set_env.sh" in atb["remedy"]


@pytest.mark.parametrize("name", ["910ProB", "910B", "910A", "910ProA", "910PremiumA"])
def test_legacy_910_names(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_machine("atlas800-9000-legacy-910b", tmp_path)
    data = json.loads((root / "commands" / "npu-smi.json").read_text())
    set_command(root, "npu-smi", stdout=data["stdout"].replace("910B   ", f"{name:<7}"))
    run = run_variant(capsys, root, "ascend-910ax8")
    assert {n["name"] for n in run.doc["ascend"]["npus"]} == {name}
    assert {n["chip"] for n in run.doc["ascend"]["npus"]} == {"ascend910a"}
    assert run.check("accelerator.chips")["status"] == "PASS"
