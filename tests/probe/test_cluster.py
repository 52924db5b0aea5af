"""`probe --cluster REPORT...`: the reports of every node compared, the node that differs named.

Each node is a recorded machine probed with a two-node bundle (which makes the probe record the
NPUs' RoCE ports, InfiniBand and the GPU topology); variants edit one node's recording."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from packager.util.schemas import validator
from tests.probe.util import BUNDLES, Run, copy_machine, probe, set_command

A2 = "ascend-910b3x8-2nodes"
HGX = "cuda-h100x8-2nodes"
#: schemas/probe-cluster.schema.json, with the definitions it takes from probe-report
SCHEMA = validator("probe-cluster")


def report(capsys: pytest.CaptureFixture[str], root: Path, bundle: str, out: Path) -> Path:
    run = probe(capsys, "--sysroot", str(root), "--bundle", str(BUNDLES / f"{bundle}.json"),
                "--report", str(out), "--json")  # fmt: skip
    assert run.code in (0, 1, 3), run.err
    return out


def cluster(capsys: pytest.CaptureFixture[str], *reports: Path) -> Run:
    run = probe(capsys, "--cluster", *map(str, reports), "--json")
    assert run.code in (0, 1, 3), run.err
    SCHEMA.validate(run.doc)
    return run


def nodes(tmp_path: Path, names: tuple[str, str]) -> tuple[Path, Path]:
    """Copies of two recorded nodes, to edit."""
    return copy_machine(names[0], tmp_path), copy_machine(names[1], tmp_path)


def reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], roots: tuple[Path, ...], bundle: str
) -> list[Path]:
    return [report(capsys, r, bundle, tmp_path / f"{r.name}.json") for r in roots]


def test_two_atlas_a2_nodes_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    roots = nodes(tmp_path, ("a2-node1", "a2-node2"))
    run = cluster(capsys, *reports(tmp_path, capsys, roots, A2))
    assert run.code == 0, run.out
    assert run.statuses() == {
        "cluster.nodes": "PASS",
        "cluster.bundle": "PASS",
        "cluster.weights": "PASS",
        "cluster.verdicts": "PASS",
        "cluster.driver": "PASS",
        "cluster.firmware": "PASS",
        "cluster.cann": "PASS",
        "cluster.devices": "PASS",
        "cluster.device_ips": "PASS",
        "cluster.links": "PASS",
        "cluster.tls": "PASS",
    }
    assert [n["name"] for n in run.doc["nodes"]] == ["atlas800t-a2-n1", "atlas800t-a2-n2"]
    assert run.check("cluster.device_ips")["reason"] == "16 device IPs, each used once"


def test_two_hgx_nodes_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    roots = nodes(tmp_path, ("hgx-h100-node1", "hgx-h100-node2"))
    run = cluster(capsys, *reports(tmp_path, capsys, roots, HGX))
    assert run.code == 0, run.out
    assert run.check("cluster.infiniband")["reason"] == (
        "active InfiniBand ports 8 x 400 Gb/s on every node (2)"
    )
    assert run.check("cluster.topology")["reason"] == "8 GPUs linked by NV18 on every node (2)"


def _edit_hccn(root: Path, device: int, **out: str) -> None:
    for kind, stdout in out.items():
        set_command(root, f"hccn-{kind}.{device}", stdout=stdout)


def _tls_on(root: Path, devices: Iterable[int]) -> None:
    for d in devices:
        _edit_hccn(
            root,
            d,
            tls=f"dev_id:{d}, tls switch[1](0:disable, 1:enable), tls preconfigured[1]"
            "(0:non-preset, 1:preset), tls alarm time threshold[60]days\n",
        )


def _driver(root: Path, version: str) -> None:
    """Another NPU driver installed and running."""
    info = root / "usr/local/Ascend/driver/version.info"
    info.write_text(info.read_text().replace("Version=24.1.0", f"Version={version}"))
    smi = json.loads((root / "commands/npu-smi.json").read_text())["stdout"]
    set_command(root, "npu-smi", stdout=smi.replace("24.1.0 ", version.ljust(7)))


#: (variant name, edit of node 2, failing check, words of its reason)
A2_VARIANTS = [
    (
        "duplicate-ip",
        lambda r: _edit_hccn(r, 5, ip="ipaddr:192.168.105.1\nnetmask:255.255.255.0\n"),
        "cluster.device_ips",
        "192.168.105.1 on atlas800t-a2-n1 NPU 5 and atlas800t-a2-n2 NPU 5",
    ),
    (
        "link-down",
        lambda r: _edit_hccn(r, 2, link="link status: DOWN\n"),
        "cluster.links",
        "atlas800t-a2-n2 NPU 2 (DOWN)",
    ),
    (
        "net-health",
        lambda r: _edit_hccn(r, 6, health="net health status: Receive timeout\n"),
        "cluster.links",
        "atlas800t-a2-n2 NPU 6 (Receive timeout)",
    ),
    (
        "tls-on-one-node",
        lambda r: _tls_on(r, range(8)),
        "cluster.tls",
        "atlas800t-a2-n1 has TLS off; atlas800t-a2-n2 has TLS on",
    ),
    (
        "tls-mixed-within-a-node",
        lambda r: _tls_on(r, [0]),
        "cluster.tls",
        "on for some NPUs and off for others on atlas800t-a2-n2",
    ),
    (
        "driver-differs",
        lambda r: _driver(r, "24.1.rc3"),
        "cluster.driver",
        "atlas800t-a2-n2 has driver 24.1.rc3",
    ),
]


@pytest.mark.parametrize(
    ("edit", "cid", "words"), [v[1:] for v in A2_VARIANTS], ids=[v[0] for v in A2_VARIANTS]
)
def test_the_node_that_differs_is_named(
    edit: Callable[[Path], None],
    cid: str,
    words: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    roots = nodes(tmp_path, ("a2-node1", "a2-node2"))
    edit(roots[1])
    run = cluster(capsys, *reports(tmp_path, capsys, roots, A2))
    c = run.check(cid)
    assert c["status"] == "FAIL", c
    assert words in c["reason"], c["reason"]
    assert c["remedy"]
    assert run.code == 1


def test_an_infiniband_port_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """mlx5_5 of node 2 unplugged: ibstat shows its port Down / Polling."""
    roots = nodes(tmp_path, ("hgx-h100-node1", "hgx-h100-node2"))
    path = roots[1] / "commands" / "ibstat.json"
    data = json.loads(path.read_text())
    blocks = data["stdout"].split("CA '")
    blocks = [
        b.replace("State: Active", "State: Down").replace("LinkUp", "Polling")
        if b.startswith("mlx5_5'")
        else b
        for b in blocks
    ]
    data["stdout"] = "CA '".join(blocks)
    path.write_text(json.dumps(data))
    run = cluster(capsys, *reports(tmp_path, capsys, roots, HGX))
    ib = run.check("cluster.infiniband")
    assert ib["status"] == "FAIL"
    assert "hgx-h100-22 mlx5_5 port 1 (Down, Polling)" in ib["reason"]


def test_a_different_gpu_topology(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    roots = nodes(tmp_path, ("hgx-h100-node1", "hgx-h100-node2"))
    path = roots[1] / "commands" / "nvidia-smi-topo.json"
    data = json.loads(path.read_text())
    lines = data["stdout"].splitlines()
    cells = lines[3].split("\t")  # GPU2's row
    cells[6] = "NV12"  # GPU2 - GPU5
    lines[3] = "\t".join(cells)
    data["stdout"] = "\n".join(lines) + "\n"
    path.write_text(json.dumps(data))
    run = cluster(capsys, *reports(tmp_path, capsys, roots, HGX))
    topo = run.check("cluster.topology")
    assert topo["status"] == "FAIL"
    assert "hgx-h100-22 differs: GPU2-GPU5 NV12 (others NV18)" in topo["reason"]


def test_a_node_missing_and_another_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roots = nodes(tmp_path, ("a2-node1", "a2-node2"))
    one = report(capsys, roots[0], A2, tmp_path / "one.json")
    other = report(capsys, roots[1], "ascend-910b3x8", tmp_path / "other.json")
    run = cluster(capsys, one, other)
    assert run.check("cluster.bundle")["status"] == "FAIL"
    assert run.check("cluster.weights")["status"] == "FAIL"
    # a report of a node probed without the two-node bundle has no hccn_tool results
    assert run.check("cluster.npu_network")["status"] == "NOT RUN"
    assert "atlas800t-a2-n2" in run.check("cluster.npu_network")["reason"]


def test_three_reports_for_two_nodes_and_the_same_host_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roots = nodes(tmp_path, ("a2-node1", "a2-node2"))
    a, b = reports(tmp_path, capsys, roots, A2)
    run = cluster(capsys, a, b, a)
    assert run.check("cluster.nodes")["status"] == "FAIL"
    assert run.check("cluster.hosts")["reason"] == "the same host twice: atlas800t-a2-n1"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "not JSON"),
        ('{"schema": "something/else"}', "not a probe report"),
        ('{"schema": "airgap/probe-report/v1", "host": 1}', "host must be an object"),
        ("[]", "not a probe report"),
    ],
    ids=["garbage", "other-schema", "bad-shape", "array"],
)
def test_bad_reports_are_input_errors(
    content: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roots = nodes(tmp_path, ("a2-node1", "a2-node2"))
    good = report(capsys, roots[0], A2, tmp_path / "good.json")
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    run = probe(capsys, "--cluster", str(good), str(bad))
    assert run.code == 2
    assert words in run.err and "Traceback" not in run.err
    assert len(run.err.strip().splitlines()) == 1


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = probe(capsys, "--cluster", str(tmp_path / "missing.json"), str(tmp_path / "x.json"))
    assert run.code == 2 and "cannot read" in run.err
    roots = nodes(tmp_path, ("a2-node1", "a2-node2"))
    one = report(capsys, roots[0], A2, tmp_path / "one.json")
    run = probe(capsys, "--cluster", str(one))
    assert run.code == 2 and "at least two nodes" in run.err
    run = probe(capsys, "--cluster", str(one), str(one), "--bundle", str(BUNDLES / f"{A2}.json"))
    assert run.code == 2 and "takes no --bundle" in run.err


def test_text_output_names_each_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    roots = nodes(tmp_path, ("a2-node1", "a2-node2"))
    a, b = reports(tmp_path, capsys, roots, A2)
    run = probe(capsys, "--cluster", str(a), str(b), "--report", str(tmp_path / "cluster.json"))
    assert run.code == 0
    assert "atlas800t-a2-n1" in run.out and "Result: PASS" in run.out
    doc = json.loads((tmp_path / "cluster.json").read_text())
    SCHEMA.validate(doc)
