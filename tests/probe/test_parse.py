"""The parsers, one format at a time, with the garbage each must refuse with a ParseError."""

from __future__ import annotations

import json

import pytest

from packager.probe import parse
from packager.probe.parse import ParseError
from packager.probe.versions import Version
from tests.probe.util import MACHINES

MIB = 2**20


def recorded(machine: str, command: str) -> str:
    data = json.loads((MACHINES / machine / "commands" / f"{command}.json").read_text())
    out: str = data["stdout"]
    return out


GARBAGE = ["", "\n\n", "lorem ipsum dolor sit amet", "\x00\x01\x02\ufffd", "{}", "<html>502</html>"]

# ---------------------------------------------------------------- key=value


def test_kv_os_release_with_quotes_and_comments() -> None:
    kv = parse.parse_kv(
        "# comment\nNAME=\"openEuler\"\nVERSION_ID='22.03'\nID=openEuler\n\nbad line\n"
    )
    assert kv == {"NAME": "openEuler", "VERSION_ID": "22.03", "ID": "openEuler"}


@pytest.mark.parametrize("text", ["", "no equals here", "=value only\n", "# only=comment"])
def test_kv_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse.parse_kv(text)


def test_bracket_list_and_firmware_range() -> None:
    assert parse.parse_bracket_list("[V100R001C15],[V100R001C17]") == ["V100R001C15", "V100R001C17"]
    assert parse.parse_bracket_list("nothing") == []
    lo, hi = parse.parse_fw_range("[7.0.0,7.5.99]")
    assert (lo, hi) == (Version.parse("7.0.0"), Version.parse("7.5.99"))
    assert lo <= Version.parse("7.5.0.1.129") <= hi


@pytest.mark.parametrize("text", ["7.0.0,7.5.99", "[7.0.0]", "[a,b]", "[7.0.0,7.5.99", ""])
def test_firmware_range_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse.parse_fw_range(text)


# ---------------------------------------------------------------- host


def test_meminfo() -> None:
    mem = parse.parse_meminfo(
        "MemTotal:       16384 kB\nMemAvailable:    8192 kB\nHugePages_Total:       0\n"
    )
    assert mem["MemTotal"] == 16384 * 1024
    assert mem["MemAvailable"] == 8192 * 1024
    assert mem["HugePages_Total"] == 0


@pytest.mark.parametrize("text", [*GARBAGE, "MemFree: 12 kB\n", "MemTotal: lots\n"])
def test_meminfo_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse.parse_meminfo(text)


def test_cpuinfo_x86_and_arm() -> None:
    x86 = (MACHINES / "h100x8-driver550" / "proc" / "cpuinfo").read_text()
    assert parse.parse_cpuinfo(x86) == parse.CpuInfo("Intel(R) Xeon(R) Platinum 8480+", 2)
    arm = (MACHINES / "ascend910b3x8-cann80" / "proc" / "cpuinfo").read_text()
    assert parse.parse_cpuinfo(arm).model == "HiSilicon Kunpeng-920"
    odd = parse.parse_cpuinfo("processor\t: 0\nCPU implementer\t: 0x99\nCPU part\t: 0x123\n")
    assert odd.model == "Arm implementer 0x99 part 0x123"


@pytest.mark.parametrize("text", GARBAGE)
def test_cpuinfo_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse.parse_cpuinfo(text)


# ---------------------------------------------------------------- NVIDIA


def test_nvidia_smi_csv() -> None:
    gpus = parse.parse_nvidia_smi_csv(recorded("mixed-h100-a100", "nvidia-smi"))
    assert len(gpus) == 8
    assert gpus[0].index == 0
    assert gpus[0].name == "NVIDIA H100 PCIe"
    assert gpus[0].uuid is not None and gpus[0].uuid.startswith("GPU-")
    assert gpus[0].driver == "550.90.07"
    assert gpus[0].compute_cap == "9.0"
    assert gpus[0].memory_bytes == 81559 * MIB
    assert gpus[7].name == "NVIDIA A100 80GB PCIe"


def test_nvidia_smi_csv_legacy_and_not_available_values() -> None:
    gpus = parse.parse_nvidia_smi_csv(
        recorded("a100-driver470", "nvidia-smi-legacy"), with_cc=False
    )
    assert [g.compute_cap for g in gpus] == [None] * 4
    assert gpus[0].name == "NVIDIA A100-SXM4-40GB"
    na = parse.parse_nvidia_smi_csv("0, Tesla T4, [N/A], 535.104.05, 7.5, [N/A]\n")
    assert (na[0].uuid, na[0].memory_bytes, na[0].name) == (None, None, "Tesla T4")


@pytest.mark.parametrize(
    "text",
    [
        *GARBAGE,
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
        "No devices were found",
        "0, NVIDIA H100, GPU-x, 550.54.15, 9.0",  # a field short
        "x, NVIDIA H100, GPU-x, 550.54.15, 9.0, 81559",  # index not a number
        "0, NVIDIA H100, GPU-x, five-fifty, 9.0, 81559",  # driver not a version
        "0, NVIDIA H100, GPU-x, 550.54.15, nine, 81559",  # cc not a cc
        "0, NVIDIA H100, GPU-x, 550.54.15, 9.0, 80GB",  # memory with units
        "index, name, uuid, driver_version, compute_cap, memory.total [MiB]",  # a header
    ],
)
def test_nvidia_smi_csv_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse.parse_nvidia_smi_csv(text)


def test_proc_driver_nvidia_version() -> None:
    prop = parse.parse_nvidia_proc_version(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.135  Tue Nov 19 22:32:16 UTC 2024\n"
        "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
    )
    assert (prop.version, prop.flavor, prop.arch) == ("550.135", "proprietary", "x86_64")
    open_ = parse.parse_nvidia_proc_version(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build  "
        "(dvs-builder@U16-I3-B03-4-3)  Sun Jul 27 06:54:38 UTC 2025\n"
    )
    assert (open_.version, open_.flavor, open_.arch) == ("580.65.06", "open", "x86_64")
    arm = parse.parse_nvidia_proc_version(
        "NVRM version: NVIDIA UNIX aarch64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
    )
    assert (arm.flavor, arm.arch) == ("proprietary", "aarch64")


@pytest.mark.parametrize(
    "text", [*GARBAGE, "NVRM version: something else 1.2.3", "GCC version: 12"]
)
def test_proc_driver_nvidia_version_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse.parse_nvidia_proc_version(text)


def test_tool_version() -> None:
    assert (
        parse.parse_tool_version("NVIDIA Container Toolkit CLI version 1.17.3\ncommit: abc\n")
        == "1.17.3"
    )
    assert (
        parse.parse_tool_version("NVIDIA Container Runtime version 1.14.0-rc.2\n") == "1.14.0-rc.2"
    )
    assert parse.parse_tool_version("garbage") is None


# ---------------------------------------------------------------- Ascend


def test_npu_smi_910b_pairs() -> None:
    info = parse.parse_npu_smi_info(recorded("ascend910b3x8-cann80", "npu-smi"))
    assert (info.tool_version, info.driver_version) == ("24.1.0", "24.1.0")
    assert len(info.chips) == 8
    c = info.chips[3]
    assert (c.npu, c.chip, c.name, c.health, c.device) == (3, 0, "910B3", "OK", None)
    assert c.bus_id == "0000:02:00.0"
    assert c.memory_bytes == 65536 * MIB and c.hbm


def test_npu_smi_310p_layout() -> None:
    info = parse.parse_npu_smi_info(recorded("ascend310p3-duo", "npu-smi"))
    assert info.driver_version == "23.0.0"
    assert [(c.npu, c.chip, c.device) for c in info.chips] == [
        (1, 0, 0),
        (1, 1, 1),
        (2, 0, 2),
        (2, 1, 3),
    ]
    assert {c.memory_bytes for c in info.chips} == {21534 * MIB}
    assert not info.chips[0].hbm


def test_npu_smi_health_column() -> None:
    text = recorded("ascend910b3x8-cann80", "npu-smi").replace(
        "| 2     910B3               | OK            |",
        "| 2     910B3               | Warning       |",
    )
    info = parse.parse_npu_smi_info(text)
    assert [c.health for c in info.chips][:3] == ["OK", "OK", "Warning"]


@pytest.mark.parametrize(
    "text",
    [
        *GARBAGE,
        "dcmi module initialize failed. ret is -8005\n",
        "-bash: npu-smi: command not found\n",
        "| npu-smi 24.1.0   Version: 24.1.0 |\n",  # a header and no table
        "+----+\n| npu-smi 24.1.0   Version: 24.1.0 |\n+----+\n| NPU Name | Health | Power |\n"
        "| Chip | Bus-Id | AICore |\n+====+\n| zzz | ??? | !!! |\n",  # a row that is neither
    ],
)
def test_npu_smi_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse.parse_npu_smi_info(text)


def test_version_cfg() -> None:
    assert parse.parse_version_cfg("runtime_running_version=[7.6.0.1.220:8.0.0]\n") == "8.0.0"
    cfg = "# version: 1.0\ncompiler_running_version=[7.5.0.3.220:8.0.RC3]\ntoolkit_running_version=[7.5.0.3.220:8.0.RC3]\n"
    assert parse.parse_version_cfg(cfg) == "8.0.RC3"
    assert parse.parse_version_cfg("garbage") is None
    assert parse.parse_version_cfg("runtime_running_version=[nothing]") is None


# ---------------------------------------------------------------- containers


def test_daemon_json() -> None:
    text = (MACHINES / "ascend910b3x8-cann80" / "etc" / "docker" / "daemon.json").read_text()
    assert parse.parse_daemon_json(text) == (["ascend"], "ascend")
    assert parse.parse_daemon_json("{}") == ([], None)
    assert parse.parse_daemon_json('{"runtimes": []}') == ([], None)


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", "runtimes: nvidia"])
def test_daemon_json_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse.parse_daemon_json(text)


def test_runtimes_json() -> None:
    text = '{"io.containerd.runc.v2":{"path":"runc","status":{"org.opencontainers.runtime-spec.features":"{}"}},"nvidia":{"path":"nvidia-container-runtime"}}'
    assert parse.parse_runtimes_json(text) == {
        "io.containerd.runc.v2": "runc",
        "nvidia": "nvidia-container-runtime",
    }


@pytest.mark.parametrize("text", ["", "null", "[]", "Cannot connect to the Docker daemon", "{"])
def test_runtimes_json_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse.parse_runtimes_json(text)


def test_engine_version() -> None:
    assert parse.parse_engine_version(recorded("h100x8-driver550", "docker-version")) == (
        "26.1.3",
        "26.1.3",
    )
    # what docker 28 really prints when its daemon is down (taken from this machine)
    down = '{"Client":{"Version":"28.2.2","ApiVersion":"1.50","DefaultAPIVersion":"1.50","GitCommit":"e6534b4","GoVersion":"go1.24.3","Os":"linux","Arch":"amd64","BuildTime":"Fri May 30 12:07:14 2025","Context":"default"},"Server":null}\n'
    assert parse.parse_engine_version(down) == ("28.2.2", None)


@pytest.mark.parametrize(
    "text", ["", "Docker version 24.0.7, build afdd53b", "{}", "[]", '{"Client": 3}']
)
def test_engine_version_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse.parse_engine_version(text)
