"""The chips of compat-facts.md as data (packager/compat/facts.yaml, facts.py)."""

from __future__ import annotations

import pytest

from packager.compat.facts import load_facts, normalize_chip_name, resolve_chip
from packager.compat.versions import Version

#: chip id -> (vendor, compute capability or None): the tables of compat-facts.md
CHIPS: dict[str, tuple[str, str | None]] = {
    "t4": ("nvidia", "7.5"),
    "v100": ("nvidia", "7.0"),
    "a10": ("nvidia", "8.6"),
    "a30": ("nvidia", "8.0"),
    "a40": ("nvidia", "8.6"),
    "a100": ("nvidia", "8.0"),
    "l4": ("nvidia", "8.9"),
    "l40": ("nvidia", "8.9"),
    "l40s": ("nvidia", "8.9"),
    "h100": ("nvidia", "9.0"),
    "h200": ("nvidia", "9.0"),
    "gh200": ("nvidia", "9.0"),
    "b200": ("nvidia", "10.0"),
    "b300": ("nvidia", "10.3"),
    "rtx-pro-6000": ("nvidia", "12.0"),
    "ascend910a": ("huawei", None),
    "ascend910b1": ("huawei", None),
    "ascend910b2": ("huawei", None),
    "ascend910b2c": ("huawei", None),
    "ascend910b3": ("huawei", None),
    "ascend910b4": ("huawei", None),
    "ascend910c": ("huawei", None),
    "ascend310p3": ("huawei", None),
    "ascend310b1": ("huawei", None),
}


@pytest.mark.parametrize(
    ("chip_id", "vendor", "cc"), [(k, *v) for k, v in CHIPS.items()], ids=list(CHIPS)
)
def test_chip_exists_with_vendor_and_cc(chip_id: str, vendor: str, cc: str | None) -> None:
    chip = load_facts().chips[chip_id]
    assert chip.id == chip_id
    assert chip.vendor == vendor
    if cc is None:
        assert chip.cc is None
    else:
        assert chip.cc == Version.parse(cc)
    assert chip.memory_bytes > 0
    assert chip.platforms
    assert set(chip.platforms) <= {"linux/amd64", "linux/arm64"}


def test_no_chip_beyond_compat_facts() -> None:
    assert set(load_facts().chips) == set(CHIPS)


def test_chip_ids_by_vendor() -> None:
    facts = load_facts()
    assert set(facts.chip_ids("nvidia")) == {k for k, v in CHIPS.items() if v[0] == "nvidia"}
    assert set(facts.chip_ids("huawei")) == {k for k, v in CHIPS.items() if v[0] == "huawei"}
    assert facts.chip_ids("none") == []


#: Ascend bf16 (torch_npu IsBF16Supported: SocVersion >= Ascend910B1): (bf16, unsure)
ASCEND_BF16 = {
    "ascend910a": (False, False),
    "ascend910b1": (True, False),
    "ascend910b2": (True, False),
    "ascend910b2c": (True, False),
    "ascend910b3": (True, False),
    "ascend910b4": (True, False),
    "ascend910c": (True, False),
    "ascend310p3": (False, False),
    "ascend310b1": (False, True),  # (unsure) in compat-facts.md
}


@pytest.mark.parametrize(
    ("chip_id", "bf16", "unsure"), [(k, *v) for k, v in ASCEND_BF16.items()], ids=list(ASCEND_BF16)
)
def test_ascend_bf16(chip_id: str, bf16: bool, unsure: bool) -> None:
    chip = load_facts().chips[chip_id]
    assert chip.bf16 is bf16
    assert chip.bf16_unsure is unsure


@pytest.mark.parametrize(
    ("chip_id", "soc"),
    [("ascend910b3", "Ascend910B3"), ("ascend310p3", "Ascend310P3"),
     ("ascend910c", "Ascend910_9391"), ("ascend910a", "Ascend910A")],
    ids=["910b3", "310p3", "910c-a3", "910a"],
)  # fmt: skip
def test_ascend_soc_names(chip_id: str, soc: str) -> None:
    assert soc in load_facts().chips[chip_id].soc


#: text a manifest may hold -> chip id it means (alias_used=True)
ALIASES = [
    ("H100", "h100", "upper-case"),
    ("NVIDIA H100", "h100", "vendor-prefix"),
    ("nvidia-h100", "h100", "vendor-prefix-dash"),
    ("H100 SXM", "h100", "variant-sxm"),
    ("H100-PCIe", "h100", "variant-pcie"),
    ("H200 NVL", "h200", "variant-nvl"),
    ("A100 SXM", "a100", "a100-sxm"),
    ("L40S", "l40s", "l40s-upper"),
    ("RTX PRO 6000", "rtx-pro-6000", "rtx-pro-spaces"),
    ("rtx_pro_6000", "rtx-pro-6000", "rtx-pro-underscores"),
    ("RTX PRO 6000 Blackwell", "rtx-pro-6000", "rtx-pro-full-name"),
    ("910B3", "ascend910b3", "npu-smi-name"),
    ("910b3", "ascend910b3", "npu-smi-name-lower"),
    ("Ascend910B3", "ascend910b3", "soc-name"),
    ("ascend-910b3", "ascend910b3", "dashed-id"),
    ("Ascend 910B3", "ascend910b3", "spaced"),
    ("Huawei Ascend 910B3", "ascend910b3", "huawei-prefix"),
    ("310P3", "ascend310p3", "310p3"),
    ("910B2C", "ascend910b2c", "910b2c"),
    ("910A", "ascend910a", "910a"),
    ("A3", "ascend910c", "a3-family"),
    ("910C", "ascend910c", "910c"),
]


@pytest.mark.parametrize(("text", "chip_id"), [c[:2] for c in ALIASES], ids=[c[2] for c in ALIASES])
def test_alias_resolves(text: str, chip_id: str) -> None:
    chip, alias_used = resolve_chip(load_facts(), text)
    assert chip is not None
    assert chip.id == chip_id
    assert alias_used is True


@pytest.mark.parametrize("chip_id", list(CHIPS))
def test_exact_id_is_not_an_alias(chip_id: str) -> None:
    chip, alias_used = resolve_chip(load_facts(), chip_id)
    assert chip is not None
    assert chip.id == chip_id
    assert alias_used is False


UNKNOWN = [
    ("h10", "truncated"),
    ("ascend910b5", "no-such-910b"),
    ("h300", "future-chip"),
    ("910b", "ambiguous-family"),
    ("nvidia", "vendor-only"),
    ("huawei", "huawei-only"),
    ("", "empty"),
    ("ascend", "ascend-only"),
    ("a100x", "suffix"),
]


@pytest.mark.parametrize("text", [c[0] for c in UNKNOWN], ids=[c[1] for c in UNKNOWN])
def test_unknown_chip(text: str) -> None:
    assert resolve_chip(load_facts(), text) == (None, False)


def test_every_alias_points_at_a_chip() -> None:
    facts = load_facts()
    for alias, chip_id in facts.aliases.items():
        assert chip_id in facts.chips, alias
        assert alias == normalize_chip_name(alias), alias


@pytest.mark.parametrize(
    ("text", "normal"),
    [("NVIDIA H100", "h100"), ("ascend-910b3", "ascend910b3"), ("RTX_PRO 6000", "rtxpro6000"),
     ("nvidia", "nvidia"), ("  H100  ", "h100")],
    ids=["vendor", "dash", "mixed-separators", "vendor-alone-kept", "spaces"],
)  # fmt: skip
def test_normalize_chip_name(text: str, normal: str) -> None:
    assert normalize_chip_name(text) == normal


# ----------------------------------------------------------------------------- stack facts


@pytest.mark.parametrize(
    ("precision", "cc"),
    [("bf16", "8.0"), ("fp8", "8.9"), ("fp8_e4m3", "8.9"), ("fp8_e5m2", "8.9"), ("tf32", "8.0")],
    ids=["bf16", "fp8", "fp8-e4m3", "fp8-e5m2", "tf32"],
)
def test_precision_min_cc(precision: str, cc: str) -> None:
    assert load_facts().precision_min_cc[precision] == Version.parse(cc)


@pytest.mark.parametrize(
    ("cc", "cuda"),
    [("8.0", "11.0"), ("8.6", "11.1"), ("8.9", "11.8"), ("9.0", "11.8"), ("10.0", "12.8"),
     ("12.0", "12.8")],
    ids=["cc8.0", "cc8.6", "cc8.9", "cc9.0", "cc10.0", "cc12.0"],
)  # fmt: skip
def test_cuda_min_for_cc(cc: str, cuda: str) -> None:
    fact = load_facts().cuda_min_for_cc[Version.parse(cc)]
    assert fact.value == Version.parse(cuda)
    assert fact.unsure is False


def test_cuda_13_dropped_below_sm75() -> None:
    assert load_facts().cuda_min_cc[13] == Version.parse("7.5")


@pytest.mark.parametrize(
    ("major", "driver"),
    [(11, "450.80.02"), (12, "525.60.13"), (13, "580.65.06")],
    ids=["cuda11", "cuda12", "cuda13"],
)
def test_driver_min_for_cuda_major(major: int, driver: str) -> None:
    assert load_facts().driver_min_for_cuda_major[major] == Version.parse(driver)


def test_driver_per_cuda_release_is_unsure() -> None:
    facts = load_facts()
    assert facts.driver_for_cuda_release[Version.parse("12.4")] == Version.parse("550.54.14")
    assert facts.driver_for_cuda_release_unsure is True


TORCH_NPU = {
    "7.0.0": ["2.1.0", "2.0.1.post1", "1.11.0.post8"],
    "8.0.RC1": ["2.2.0", "2.1.0.post4", "1.11.0.post11"],
    "8.0.RC2": ["2.3.1", "2.2.0.post2", "2.1.0.post6", "1.11.0.post14"],
    "8.0.RC3": ["2.4.0", "2.3.1.post2", "2.1.0.post8"],
    "8.0.0": ["2.4.0.post2", "2.3.1.post4", "2.1.0.post10"],
    "8.1.RC1": ["2.5.1", "2.4.0.post4", "2.3.1.post6", "2.1.0.post12"],
    "8.2.RC1": ["2.6.0", "2.5.1.post1", "2.1.0.post13"],
    "8.3.RC1": ["2.8.0", "2.7.1", "2.6.0.post3", "2.1.0.post17"],
    "8.5.0": ["2.9.0", "2.8.0.post2", "2.7.1.post2", "2.6.0.post5"],
    "9.0.0": ["2.9.0.post2", "2.8.0.post4", "2.7.1.post4"],
}


@pytest.mark.parametrize(("cann", "npu"), list(TORCH_NPU.items()), ids=list(TORCH_NPU))
def test_torch_npu_for_cann(cann: str, npu: list[str]) -> None:
    got = load_facts().torch_npu_for_cann[Version.parse(cann)]
    assert [str(v) for v in got] == npu


@pytest.mark.parametrize(
    ("tag", "chips"),
    [("800I-A2", {"ascend910b1", "ascend910b2", "ascend910b2c", "ascend910b3", "ascend910b4"}),
     ("300I-Duo", {"ascend310p3"}), ("800I-A3", {"ascend910c"})],
    ids=["800I-A2", "300I-Duo", "800I-A3"],
)  # fmt: skip
def test_mindie_hardware(tag: str, chips: set[str]) -> None:
    assert set(load_facts().mindie_hardware[tag]) == chips


#: chip -> (first CANN that supports it, below which no CANN can know it)
CANN_MIN = {
    "ascend910a": ("3.3.0", None),
    "ascend910b1": ("7.0.RC1", "6.3.RC1"),
    "ascend910b2": ("7.0.RC1", "6.3.RC1"),
    "ascend910b2c": ("7.0.RC1", "6.3.RC1"),
    "ascend910b3": ("7.0.RC1", "6.3.RC1"),
    "ascend910b4": ("7.0.RC1", "6.3.RC1"),
    "ascend910c": ("8.0.0", "8.0.RC2"),
    "ascend310p3": ("5.1.RC1", "5.0.2"),
}


@pytest.mark.parametrize(("chip", "floor"), list(CANN_MIN.items()), ids=list(CANN_MIN))
def test_cann_min_per_chip(chip: str, floor: tuple[str, str | None]) -> None:
    got = load_facts().cann_min[chip]
    assert str(got.version) == floor[0]
    assert (str(got.error_below) if got.error_below else None) == floor[1]
    assert got.version in load_facts().cann_releases


def test_cann_hdk_pairs_are_unsure_and_ordered() -> None:
    facts = load_facts()
    assert facts.cann_hdk_unsure is True
    assert facts.cann_hdk[Version.parse("8.0.0")].driver == Version.parse("24.1.0")
    pairs = sorted(facts.cann_hdk.items())
    drivers = [h.driver for _, h in pairs]
    assert drivers == sorted(drivers)  # a newer CANN never comes with an older HDK
    assert all(c in facts.cann_releases for c, _ in pairs)


def test_every_fact_section_names_its_source() -> None:
    from importlib import resources

    import yaml

    raw = yaml.safe_load(resources.files("packager.compat").joinpath("facts.yaml").read_text())
    hw = raw["huawei"]
    for key in ("cann_min", "cann_hdk", "precision_unsupported", "serving_images"):
        assert hw[key]["source"], key
    assert raw["nvidia"]["source"] and hw["source"]


def test_fp8_is_unsupported_on_every_ascend_chip() -> None:
    facts = load_facts()
    (gap,) = facts.precision_unsupported
    assert gap.precisions == {"fp8", "fp8_e4m3", "fp8_e5m2"}
    assert gap.chips == set(facts.chip_ids("huawei"))
    assert "W8A8" in gap.hint and "msModelSlim" in gap.hint


@pytest.mark.parametrize(
    ("release", "isa"),
    [("11.8", "7.8"), ("12.4", "8.4"), ("12.6", "8.5"), ("12.8", "8.7"), ("13.0", "9.0")],
)
def test_ptx_isa_for_cuda(release: str, isa: str) -> None:
    assert load_facts().ptx_isa_for_cuda[Version.parse(release)] == Version.parse(isa)


@pytest.mark.parametrize(
    ("ref", "family", "version", "hardware", "chips"),
    [
        ("swr.cn-south-1.myhuaweicloud.com/ascendhub/mindie:2.1.RC1-800I-A2-py311-openeuler24.03-lts",
         "mindie", "2.1.RC1", "800I-A2", {"ascend910b1", "ascend910b2", "ascend910b2c", "ascend910b3", "ascend910b4"}),
        ("swr.cn-south-1.myhuaweicloud.com/ascendhub/mindie:2.1.RC1-A3-py311-openeuler24.03-lts",
         "mindie", "2.1.RC1", "A3", {"ascend910c"}),
        ("registry.local:5000/ascendhub/mindie:1.0.0-300I-Duo-py311-openeuler24.03-lts@sha256:" + "a" * 64,
         "mindie", "1.0.0", "300I-Duo", {"ascend310p3"}),
        ("quay.io/ascend/vllm-ascend:v0.9.1", "vllm-ascend", "v0.9.1", "",
         {"ascend910b1", "ascend910b2", "ascend910b2c", "ascend910b3", "ascend910b4"}),
        ("quay.io/ascend/vllm-ascend:v0.10.0rc1-a3-openeuler", "vllm-ascend", "v0.10.0rc1", "a3", {"ascend910c"}),
        ("quay.io/ascend/vllm-ascend:v0.9.1-310p", "vllm-ascend", "v0.9.1", "310p", {"ascend310p3"}),
    ],
    ids=["mindie-a2", "mindie-a3", "mindie-duo-digest", "vllm-a2", "vllm-a3", "vllm-310p"],
)  # fmt: skip
def test_serving_image_tags(
    ref: str, family: str, version: str, hardware: str, chips: set[str]
) -> None:
    from packager.compat.ascend import serving_image

    tag = serving_image(load_facts(), ref)
    assert tag is not None
    assert (tag.family.name, tag.version, tag.hardware) == (family, version, hardware)
    assert set(tag.family.hardware[tag.hardware]) == chips


@pytest.mark.parametrize(
    "ref",
    ["docker.io/vllm/vllm-openai:v0.6.3", "mindie", "ascendhub/mindie:latest",
     "ascendhub/mindie:2.1.RC1-900X-py311"],
)  # fmt: skip
def test_other_images_are_not_serving_tags(ref: str) -> None:
    from packager.compat.ascend import serving_image

    assert serving_image(load_facts(), ref) is None


@pytest.mark.parametrize(
    ("name", "chip"),
    [("H100-SXM5-80GB", "h100"), ("A100-SXM4-40GB", "a100"), ("NVIDIA H200-SXM-141GB", "h200"),
     ("L40S-48GB", "l40s"), ("910ProB", "ascend910a"), ("Ascend910_93", "ascend910c")],
)  # fmt: skip
def test_product_names_resolve(name: str, chip: str) -> None:
    found, alias = resolve_chip(load_facts(), name)
    assert found is not None and found.id == chip and alias
