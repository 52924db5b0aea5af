"""Bad input from the machine: a command that hangs, is missing, prints garbage or cannot run;
/dev that cannot be opened or listed; unreadable files. Each is a clear NOT RUN, WARN or FAIL with a
reason, never a traceback. Recorded variants of the fixture machines, and real commands on PATH."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.probe.util import BUNDLES, Run, copy_machine, probe_json, set_command, set_dev

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
