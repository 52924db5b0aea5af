"""The parsers of real site outputs: nvidia-smi read by the fields it was asked for, -L with MIG
devices, -q (fabric, MIG), Fabric Manager, topo -m, ibstat, hccn_tool, npu-smi's failures and its
A3 / 310P Duo / legacy 910 / wide tables; and Ascend version strings as each file writes them."""

from __future__ import annotations

import json

import pytest

from packager.probe import fabric, parse
from packager.probe.parse import ParseError
from packager.probe.system import command_argv, query_fields
from packager.probe.versions import Version
from tests.probe.util import MACHINES

MIB = 2**20


def recorded(machine: str, command: str) -> str:
    data = json.loads((MACHINES / machine / "commands" / f"{command}.json").read_text())
    out: str = data["stdout"]
    return out


def recorded_argv(machine: str, command: str) -> list[str]:
    argv: list[str] = json.loads((MACHINES / machine / "commands" / f"{command}.json").read_text())[
        "argv"
    ]
    return argv


GARBAGE = ["", "\n\n", "lorem ipsum dolor sit amet", "\x00\x01\x02\ufffd", "{}", "<html>502</html>"]

# ---------------------------------------------------------------- nvidia-smi


def test_the_csv_is_read_by_the_fields_it_was_asked_for() -> None:
    new = parse.parse_nvidia_smi_csv(
        recorded("h200-mig", "nvidia-smi"), query_fields(recorded_argv("h200-mig", "nvidia-smi"))
    )
    assert (new[0].name, new[0].mig_current, new[0].mig_pending) == (
        "NVIDIA H200 NVL",
        "Enabled",
        "Enabled",
    )
    # a recording of an older probe: six fields, no MIG
    old = parse.parse_nvidia_smi_csv(
        recorded("h100x8-driver550", "nvidia-smi"),
        query_fields(recorded_argv("h100x8-driver550", "nvidia-smi")),
    )
    assert len(old) == 8 and old[0].mig_current is None
    # GPUs without MIG print [N/A]
    na = parse.parse_nvidia_smi_csv(
        "0, NVIDIA L40S, GPU-1, 550.54.15, 8.9, 46068, [N/A], [N/A]\n",
        query_fields(command_argv("nvidia-smi")),
    )
    assert na[0].mig_current is None


@pytest.mark.parametrize(
    "line",
    [
        "0, NVIDIA H200, GPU-1, 570.133.20, 9.0, 143771, On, Off",  # not a MIG mode
        "0, NVIDIA H200, GPU-1, 570.133.20, 9.0, 143771, Enabled",  # a field short
    ],
)
def test_csv_with_mig_fields_garbage(line: str) -> None:
    with pytest.raises(ParseError):
        parse.parse_nvidia_smi_csv(line + "\n", query_fields(command_argv("nvidia-smi")))


def test_nvidia_smi_list_with_mig_devices() -> None:
    migs = parse.parse_nvidia_smi_list(recorded("h200-mig", "nvidia-smi-list"))
    assert [(d.gpu, d.index, d.profile, d.memory_bytes) for d in migs[0]] == [
        (0, 0, "3g.71gb", 71 << 30),
        (0, 1, "3g.71gb", 71 << 30),
    ]
    assert migs[0][0].uuid.startswith("MIG-")
    a100 = parse.parse_nvidia_smi_list(
        "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a0d)\n"
        "  MIG 1g.5gb      Device  0: (UUID: MIG-c6d4f1ef-42e4-5de3-91c7-45d71c87eb3f)\n"
        "  MIG 1g.5gb      Device  1: (UUID: MIG-cba663e8-9bed-5b25-b243-5985ef7c9beb)\n"
        "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-3e8b3c31-3d46-5bd2-6b0f-7e5e3e6e12a3)\n"
    )
    assert [d.memory_bytes for d in a100[0]] == [5 << 30, 5 << 30] and a100[1] == []


@pytest.mark.parametrize("text", [*GARBAGE, "No devices were found\n"])
def test_nvidia_smi_list_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse.parse_nvidia_smi_list(text)


def test_nvidia_smi_query_fabric_and_mig() -> None:
    q = fabric.parse_nvidia_smi_query(recorded("hgx-h200x8-fm-mismatch", "nvidia-smi-query"))
    assert (q.driver, q.cuda, len(q.gpus)) == ("570.133.20", "12.8", 8)
    assert q.gpus[0].bus_id == "00000000:18:00.0"
    assert (q.gpus[0].fabric_state, q.gpus[0].fabric_status) == ("In Progress", "N/A")
    ok = fabric.parse_nvidia_smi_query(recorded("hgx-b200x8-fm-ok", "nvidia-smi-query"))
    assert {(g.product, g.fabric_state, g.fabric_status) for g in ok.gpus} == {
        ("NVIDIA B200", "Completed", "Success")
    }
    mig = fabric.parse_nvidia_smi_query(recorded("h200-mig", "nvidia-smi-query"))
    assert (mig.gpus[0].mig_current, mig.gpus[0].mig_pending) == ("Enabled", "Enabled")


@pytest.mark.parametrize("text", [*GARBAGE, "Failed to initialize NVML: Unknown Error\n"])
def test_nvidia_smi_query_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        fabric.parse_nvidia_smi_query(text)


def test_fabric_manager_version_and_log() -> None:
    assert (
        fabric.parse_fabricmanager_version("Fabric Manager version is : 550.90.07\n") == "550.90.07"
    )
    with pytest.raises(ParseError):
        fabric.parse_fabricmanager_version("nv-fabricmanager: command not found")
    log = (MACHINES / "hgx-h200x8-fm-mismatch" / "var/log/fabricmanager.log").read_text()
    m = fabric.fabricmanager_log_mismatch(log)
    assert m is not None and (m.fm_version, m.driver_version) == ("570.124.06", "570.133.20")
    assert fabric.fabricmanager_log_mismatch(log.split("[ERROR]")[0]) is None


def test_topology_matrix_and_nics() -> None:
    t = fabric.parse_nvidia_smi_topo(recorded("hgx-h100-node1", "nvidia-smi-topo"))
    assert t.gpus == [f"GPU{i}" for i in range(8)]
    assert t.nics["NIC0"] == "mlx5_0" and len(t.nics) == 10
    m = t.gpu_matrix()
    assert m[0][0] == "X" and {m[i][j] for i in range(8) for j in range(8) if i != j} == {"NV18"}
    assert t.nearest_nic() == {f"GPU{i}": "PIX" for i in range(8)}


@pytest.mark.parametrize("text", [*GARBAGE, "\tGPU0\nGARBAGE\n"])
def test_topology_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        fabric.parse_nvidia_smi_topo(text)


def test_ibstat_ports() -> None:
    ports = fabric.parse_ibstat(recorded("hgx-h100-node1", "ibstat"))
    ib = [p for p in ports if p.link_layer == "InfiniBand"]
    assert len(ib) == 8 and {(p.state, p.physical, p.rate) for p in ib} == {
        ("Active", "LinkUp", "400")
    }
    assert [p.ca for p in ports if p.link_layer == "Ethernet"] == ["mlx5_8", "mlx5_9"]


@pytest.mark.parametrize("text", [*GARBAGE, "ibstat: command not found\n"])
def test_ibstat_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        fabric.parse_ibstat(text)


def test_hccn_tool() -> None:
    assert fabric.parse_hccn_ip(recorded("a2-node1", "hccn-ip.3")) == "192.168.103.1"
    assert fabric.parse_hccn_ip("ipaddr:\nnetmask:\n") is None
    assert fabric.parse_hccn_link(recorded("a2-node1", "hccn-link.3")) == "UP"
    assert fabric.parse_hccn_link("link status: DOWN\n") == "DOWN"
    assert fabric.parse_hccn_health(recorded("a2-node1", "hccn-health.3")) == "Success"
    assert fabric.parse_hccn_tls(recorded("a2-node1", "hccn-tls.3")) is False
    assert fabric.parse_hccn_tls("dev_id:0, tls switch[1](0:disable, 1:enable)\n") is True


@pytest.mark.parametrize(
    ("reader", "text"),
    [
        (fabric.parse_hccn_ip, "ipaddr:999.1\n"),
        (fabric.parse_hccn_ip, "Command execution failed\n"),
        (fabric.parse_hccn_link, "garbage"),
        (fabric.parse_hccn_health, ""),
        (fabric.parse_hccn_tls, "tls switch[on]"),
    ],
    ids=["bad-address", "failed", "link", "health", "tls"],
)
def test_hccn_tool_garbage(reader: object, text: str) -> None:
    with pytest.raises(ParseError):
        reader(text)  # type: ignore[operator]


# ---------------------------------------------------------------- npu-smi


#: what npu-smi printed -> (the line that says it, the DCMI code, the kind)
NPU_ERRORS = [
    (
        "DrvMngGetConsoleLogLevel failed. (g_conLogLevel=3)\n"
        "dcmi model initialized failed, because the device is used. ret is -8020\n",
        ("dcmi model initialized failed, because the device is used. ret is -8020", -8020, "busy"),
    ),
    (
        "dcmi module initialize failed. ret is -8005\n",
        ("dcmi module initialize failed. ret is -8005", -8005, "dcmi"),
    ),
    (
        "npu-smi: error while loading shared libraries: libdrvdsmi_host.so: cannot open shared "
        "object file: No such file or directory\n",
        (
            "npu-smi: error while loading shared libraries: libdrvdsmi_host.so: cannot open "
            "shared object file: No such file or directory",
            None,
            "libraries",
        ),
    ),
    ("bash: /usr/local/sbin/npu-smi: Permission denied\n", (None, None, "permission")),
]


@pytest.mark.parametrize(("text", "want"), NPU_ERRORS, ids=["8020", "8005", "libraries", "perm"])
def test_npu_smi_failures_by_kind(text: str, want: tuple[str | None, int | None, str]) -> None:
    err = parse.npu_smi_error(text)
    assert err is not None
    line, code, kind = want
    assert (err.code, err.kind) == (code, kind)
    if line is not None:
        assert err.line == line
    assert "DrvMngGetConsoleLogLevel" not in err.line


def test_a_table_is_not_a_failure() -> None:
    assert parse.npu_smi_error(recorded("ascend910b3x8-cann80", "npu-smi")) is None


def test_npu_smi_a3_phy_id() -> None:
    info = parse.parse_npu_smi_info(recorded("a3-910c-16chips", "npu-smi"))
    assert info.driver_version == "25.0.rc1.1"
    assert len(info.chips) == 16
    assert [(c.npu, c.chip, c.device) for c in info.chips[:4]] == [
        (0, 0, 0),
        (0, 1, 1),
        (1, 0, 2),
        (1, 1, 3),
    ]
    assert {c.name for c in info.chips} == {"Ascend910"}
    assert {c.memory_bytes for c in info.chips} == {65536 * MIB} and info.chips[0].hbm


def test_npu_smi_310p_duo_numbered_32768() -> None:
    info = parse.parse_npu_smi_info(recorded("atlas300i-duo-npu32768", "npu-smi"))
    assert [(c.npu, c.chip, c.device) for c in info.chips] == [
        (32768, 0, 0),
        (32768, 1, 1),
        (32769, 0, 2),
        (32769, 1, 3),
    ]


def test_npu_smi_legacy_910_reads_hbm_not_ddr() -> None:
    info = parse.parse_npu_smi_info(recorded("atlas800-9000-legacy-910b", "npu-smi"))
    assert {c.name for c in info.chips} == {"910B"}
    assert {c.memory_bytes for c in info.chips} == {32768 * MIB}


def test_npu_smi_wide_table() -> None:
    info = parse.parse_npu_smi_info(recorded("a2-npu-smi-26-wide", "npu-smi"))
    assert info.driver_version == "26.0.rc1"
    assert [(c.npu, c.device, c.bus_id) for c in info.chips][:2] == [
        (0, 0, "0000:C1:00.0"),
        (1, 1, "0000:01:00.0"),
    ]
    assert info.chips[0].memory_used_bytes == 3396 * MIB


# ---------------------------------------------------------------- Ascend version strings

#: (where the string is, how the probe reads it, the version it reads) in the order of
#: Huawei's release trains, oldest first. Both CANN layouts: ascend-toolkit/<ver> (install.info
#: and version.cfg) and cann-<ver> (8.5 and later).
ASCEND_VERSIONS = [
    (
        "npu-smi",
        "| npu-smi 24.1.rc1.b030            Version: 24.1.rc1.b030                   |",
        "24.1.rc1.b030",
    ),
    (
        "npu-smi",
        "| npu-smi 24.1.rc1                 Version: 24.1.rc1                        |",
        "24.1.rc1",
    ),
    ("version.info", "Version=24.1.rc2\npackage_version=24.1.rc2\n", "24.1.rc2"),
    (
        "npu-smi",
        "| npu-smi 24.1.rc2.2               Version: 24.1.rc2.2                      |",
        "24.1.rc2.2",
    ),
    ("version.info", "Version=24.1.rc3\n", "24.1.rc3"),
    ("version.info", "Version=24.1.0\n", "24.1.0"),
    (
        "npu-smi",
        "| npu-smi 25.0.rc1                 Version: 25.0.rc1                        |",
        "25.0.rc1",
    ),
    (
        "npu-smi",
        "| npu-smi 25.0.rc1.1               Version: 25.0.rc1.1                      |",
        "25.0.rc1.1",
    ),
    ("version.info", "Version=25.2.0\n", "25.2.0"),
]
CANN_VERSIONS = [
    ("install.info", "package_name=Ascend-cann-toolkit\nversion=8.0.RC1\n", "8.0.RC1"),
    ("version.cfg", "runtime_running_version=[7.3.0.1.231:8.0.RC2]\n", "8.0.RC2"),
    ("install.info", "package_name=Ascend-cann-toolkit\nversion=8.0.RC3\n", "8.0.RC3"),
    ("version.cfg", "toolkit_running_version=[7.6.0.1.220:8.0.0]\n", "8.0.0"),
    ("install.info", "version=8.1.RC1.beta1\n", "8.1.RC1.beta1"),
    ("install.info", "version=8.1.RC1\n", "8.1.RC1"),
    (
        "version.cfg",
        "runtime_running_version=[7.7.T10.0.B057:8.2.RC1.alpha001]\n",
        "8.2.RC1.alpha001",
    ),
    (
        "version.cfg",
        "runtime_running_version=[7.7.T10.0.B099:8.2.RC1.alpha003]\n",
        "8.2.RC1.alpha003",
    ),
    ("install.info", "version=8.2.RC1\n", "8.2.RC1"),
    ("cann-8.5.0/version.cfg", "runtime_running_version=[7.8.0.2.212:8.5.0]\n", "8.5.0"),
]


def _read(where: str, text: str) -> str | None:
    if where == "npu-smi":
        head = "+" + "-" * 80 + "+\n" + text + "\n"
        try:
            return parse.parse_npu_smi_info(head).driver_version
        except ParseError:  # a header without a table: read the header as the probe does
            import re

            m = re.search(r"npu-smi\s+(\S+)\s+Version:\s*(\S+)", text)
            return m.group(2) if m else None
    if where.endswith("version.cfg"):
        return parse.parse_version_cfg(text)
    kv = parse.parse_kv(text)
    return kv.get("Version") or kv.get("version")


@pytest.mark.parametrize("table", [ASCEND_VERSIONS, CANN_VERSIONS], ids=["driver", "cann"])
def test_real_ascend_version_strings_read_and_order(table: list[tuple[str, str, str]]) -> None:
    read = [_read(where, text) for where, text, _ in table]
    assert read == [want for _, _, want in table]
    versions = [Version.parse(v) for v in read if v]
    assert versions == sorted(versions), [str(v) for v in sorted(versions)]
    for lower, higher in zip(versions, versions[1:]):
        assert lower < higher, (str(lower), str(higher))


def test_every_recorded_ascend_version_parses() -> None:
    """No recorded machine holds a driver, firmware or CANN version the probe cannot read."""
    for machine in sorted(p for p in MACHINES.iterdir() if p.is_dir()):
        for rel in (
            "usr/local/Ascend/driver/version.info",
            "usr/local/Ascend/firmware/version.info",
        ):
            f = machine / rel
            if f.is_file():
                try:
                    kv = parse.parse_kv(f.read_text(errors="replace"))
                except ParseError:
                    continue
                Version.parse(kv["Version"])
        for info in machine.glob("usr/local/Ascend/**/ascend_toolkit_install.info"):
            Version.parse(parse.parse_kv(info.read_text())["version"])
        for cfg in machine.glob("usr/local/Ascend/**/version.cfg"):
            v = parse.parse_version_cfg(cfg.read_text())
            assert v is not None
            Version.parse(v)
