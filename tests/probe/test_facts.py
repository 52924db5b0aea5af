"""The facts the probe reads (exported from facts.yaml) and the payload a bundle embeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import packager.probe
from packager.bundle.probe_payload import facts_json, probe_payload
from packager.compat.facts import load_facts
from packager.compat.probe_facts import export_probe_facts
from packager.probe.chipfacts import FactsError, ProbeFacts
from packager.probe.versions import Version


def pf() -> ProbeFacts:
    return ProbeFacts(export_probe_facts())


def test_export_is_json_and_covers_every_chip() -> None:
    data = export_probe_facts()
    assert json.loads(json.dumps(data)) == data
    assert data["format"] == 1
    assert set(data["chips"]) == set(load_facts().chips)
    h100 = data["chips"]["h100"]
    assert h100["vendor"] == "nvidia" and h100["cc"] == "9.0" and h100["memory_bytes"] == 80 * 10**9
    assert h100["nvidia_smi"] == ["H100"]
    b3 = data["chips"]["ascend910b3"]
    assert b3["vendor"] == "huawei" and b3["cc"] is None and b3["npu_smi"] == ["910B3"]
    assert data["driver_min_for_cuda_major"] == {
        "11": "450.80.02",
        "12": "525.60.13",
        "13": "580.65.06",
    }
    assert data["driver_for_cuda_release"]["versions"]["12.4"] == "550.54.14"
    for chip in data["chips"].values():
        if chip["vendor"] == "nvidia":
            assert chip["nvidia_smi"], chip["name"]  # every NVIDIA chip can be recognised


@pytest.mark.parametrize(
    ("name", "chip"),
    [
        ("NVIDIA H100 80GB HBM3", "h100"),
        ("NVIDIA H100 PCIe", "h100"),
        ("NVIDIA H100 NVL", "h100"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA H200 NVL", "h200"),
        ("NVIDIA GH200 480GB", "gh200"),
        ("NVIDIA A100-SXM4-80GB", "a100"),
        ("NVIDIA A100-PCIE-40GB", "a100"),
        ("NVIDIA A100 80GB PCIe", "a100"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA L40", "l40"),
        ("NVIDIA L4", "l4"),
        ("Tesla T4", "t4"),
        ("Tesla V100-SXM2-32GB", "v100"),
        ("NVIDIA A10G", "a10"),
        ("NVIDIA B200", "b200"),
        ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "rtx-pro-6000"),
        ("NVIDIA GeForce RTX 4090", None),
        ("NVIDIA RTX 6000 Ada Generation", None),
        ("NVIDIA A800-SXM4-80GB", None),
        ("", None),
        ("NVIDIA", None),
    ],
)
def test_nvidia_smi_names(name: str, chip: str | None) -> None:
    assert pf().match_nvidia(name) == chip


@pytest.mark.parametrize(
    ("name", "chip"),
    [
        ("910B3", "ascend910b3"),
        ("910b4", "ascend910b4"),
        ("310P3", "ascend310p3"),
        ("Ascend910", "ascend910c"),
        # the legacy 910 on some drivers: never a 910B1-B4
        ("910B", "ascend910a"),
        ("910ProB", "ascend910a"),
        ("910A", "ascend910a"),
        ("910PremiumA", "ascend910a"),
        ("910B2C", "ascend910b2c"),
        ("910X", None),
    ],
)
def test_npu_smi_names(name: str, chip: str | None) -> None:
    assert pf().match_npu(name) == chip


def test_bundle_chip_spellings() -> None:
    f = pf()
    assert f.resolve("h100") == "h100"
    assert f.resolve("H100") == "h100"
    assert f.resolve("Ascend910B3") == "ascend910b3"
    assert f.resolve("910B3") == "ascend910b3"
    assert f.resolve("nvidia-h100-sxm") == "h100"
    assert f.resolve("mi300x") is None
    # product names: the chip, then form-factor and memory words
    assert f.resolve("H100-SXM5-80GB") == "h100"
    assert f.resolve("NVIDIA A100-PCIe-40GB") == "a100"
    assert f.resolve("H200-SXM-141GB") == "h200"
    assert f.resolve("H100-80GB-turbo") is None


def test_serving_stacks_that_need_nnal() -> None:
    assert {"vllm-ascend", "atb-llm", "mindie-llm"} <= pf().needs_atb


def test_driver_floors() -> None:
    f = pf()
    assert f.driver_min_for_cuda_major[12] == Version.parse("525.60.13")
    assert f.driver_for_cuda_release[Version.parse("12.4")] == Version.parse("550.54.14")
    assert f.driver_for_cuda_release_unsure


@pytest.mark.parametrize(
    "data",
    [
        {"format": 2},
        {"chips": {"x": 3}},
        {"driver_min_for_cuda_major": {"twelve": "1"}},
        {"chips": []},
    ],
)
def test_malformed_facts(data: dict[str, object]) -> None:
    with pytest.raises(FactsError):
        ProbeFacts(data)


def test_payload_is_deterministic_and_complete() -> None:
    a, b = probe_payload(), probe_payload()
    assert a == b
    assert list(a) == sorted(a)
    here = Path(packager.probe.__file__).parent
    assert set(a) == {p.name for p in here.glob("*.py")} | {"facts.json"}
    for name, data in a.items():
        if name.endswith(".py"):
            assert data == (here / name).read_bytes()
    assert json.loads(a["facts.json"]) == export_probe_facts()
    assert a["facts.json"] == facts_json()
    assert "__main__.py" in a and "versions.py" in a
