"""Which CUDA code runs on which chip (compat-facts.md, "Kernel binaries"; packager/compat/cuda.py).

- a cubin for sm_XY runs only on compute capability X.y with y >= Y, same major:
  sm_80 runs on 8.6 and 8.9, NOT on 9.0;
- PTX for compute_XY is JIT-compiled by the driver on any compute capability >= X.Y;
- arch-specific targets (sm_90a) run on exactly that compute capability.

The chips' compute capabilities come from facts.yaml, never from this file.
"""

from __future__ import annotations

import pytest

from packager.compat.cuda import Coverage, CudaArch, coverage, sm_name
from packager.compat.facts import load_facts
from packager.compat.versions import Version

NATIVE, PTX, NONE = Coverage.NATIVE, Coverage.PTX_JIT, Coverage.NONE

CHIPS = ("h100", "h200", "a100", "l40s", "b200", "t4")

#: what a kernel holds -> the coverage on each chip (cc 9.0, 9.0, 8.0, 8.9, 10.0, 7.5)
COVERAGE: dict[str, tuple[tuple[str, ...], dict[str, Coverage]]] = {
    "sm_80-only": (
        ("sm_80",),
        {"h100": NONE, "h200": NONE, "a100": NATIVE, "l40s": NATIVE, "b200": NONE, "t4": NONE},
    ),
    "sm_90-only": (
        ("sm_90",),
        {"h100": NATIVE, "h200": NATIVE, "a100": NONE, "l40s": NONE, "b200": NONE, "t4": NONE},
    ),
    "compute_80-ptx-only": (
        ("compute_80",),
        {"h100": PTX, "h200": PTX, "a100": PTX, "l40s": PTX, "b200": PTX, "t4": NONE},
    ),
    "sm_90a": (
        ("sm_90a",),
        {"h100": NATIVE, "h200": NATIVE, "a100": NONE, "l40s": NONE, "b200": NONE, "t4": NONE},
    ),
    "compute_90a": (
        ("compute_90a",),
        {"h100": PTX, "h200": PTX, "a100": NONE, "l40s": NONE, "b200": NONE, "t4": NONE},
    ),
    "sm_80+sm_90+compute_90": (
        ("sm_80", "sm_90", "compute_90"),
        {"h100": NATIVE, "h200": NATIVE, "a100": NATIVE, "l40s": NATIVE, "b200": PTX, "t4": NONE},
    ),
    "sm_86": (
        ("sm_86",),
        {"h100": NONE, "h200": NONE, "a100": NONE, "l40s": NATIVE, "b200": NONE, "t4": NONE},
    ),
    "sm_89": (
        ("sm_89",),
        {"h100": NONE, "h200": NONE, "a100": NONE, "l40s": NATIVE, "b200": NONE, "t4": NONE},
    ),
    "sm_75": (
        ("sm_75",),
        {"h100": NONE, "h200": NONE, "a100": NONE, "l40s": NONE, "b200": NONE, "t4": NATIVE},
    ),
    "sm_80+compute_75": (
        ("sm_80", "compute_75"),
        {"h100": PTX, "h200": PTX, "a100": NATIVE, "l40s": NATIVE, "b200": PTX, "t4": PTX},
    ),
    "sm_100": (
        ("sm_100",),
        {"h100": NONE, "h200": NONE, "a100": NONE, "l40s": NONE, "b200": NATIVE, "t4": NONE},
    ),
    "sm_100a": (
        ("sm_100a",),
        {"h100": NONE, "h200": NONE, "a100": NONE, "l40s": NONE, "b200": NATIVE, "t4": NONE},
    ),
    "compute_100": (
        ("compute_100",),
        {"h100": NONE, "h200": NONE, "a100": NONE, "l40s": NONE, "b200": PTX, "t4": NONE},
    ),
    "sm_90a+compute_80": (
        ("sm_90a", "compute_80"),
        {"h100": NATIVE, "h200": NATIVE, "a100": PTX, "l40s": PTX, "b200": PTX, "t4": NONE},
    ),
    "nothing": (
        (),
        {"h100": NONE, "h200": NONE, "a100": NONE, "l40s": NONE, "b200": NONE, "t4": NONE},
    ),
}

CASES = [
    pytest.param(targets, chip, table[chip], id=f"{name}@{chip}")
    for name, (targets, table) in COVERAGE.items()
    for chip in CHIPS
]


@pytest.mark.parametrize(("targets", "chip", "expected"), CASES)
def test_coverage(targets: tuple[str, ...], chip: str, expected: Coverage) -> None:
    cc = load_facts().chips[chip].cc
    assert cc is not None
    assert coverage([CudaArch.parse(t) for t in targets], cc) is expected


def test_every_table_names_every_chip() -> None:
    for name, (_targets, table) in COVERAGE.items():
        assert set(table) == set(CHIPS), name


#: compute capabilities the chips in the table are meant to have (compat-facts.md)
@pytest.mark.parametrize(
    ("chip", "cc"),
    [("h100", "9.0"), ("h200", "9.0"), ("a100", "8.0"), ("l40s", "8.9"), ("b200", "10.0"),
     ("t4", "7.5")],
    ids=list(CHIPS),
)  # fmt: skip
def test_chip_cc_used_above(chip: str, cc: str) -> None:
    assert load_facts().chips[chip].cc == Version.parse(cc)


#: (target, compute capability, runs)
RUNS_ON = [
    ("sm_80", "8.0", True, "cubin-same-cc"),
    ("sm_80", "8.6", True, "cubin-newer-minor"),
    ("sm_80", "8.9", True, "cubin-ada"),
    ("sm_80", "9.0", False, "cubin-not-next-major"),
    ("sm_86", "8.0", False, "cubin-not-older-minor"),
    ("sm_90", "9.0", True, "sm90-hopper"),
    ("sm_90", "10.0", False, "sm90-not-blackwell"),
    ("sm_100", "10.3", True, "sm100-b300"),
    ("sm_120", "12.0", True, "sm120-rtx-pro"),
    ("sm_100", "12.0", False, "sm100-not-cc12"),
    ("compute_80", "9.0", True, "ptx-newer-major"),
    ("compute_80", "10.0", True, "ptx-blackwell"),
    ("compute_80", "12.0", True, "ptx-cc12"),
    ("compute_80", "7.5", False, "ptx-not-older"),
    ("compute_90", "8.9", False, "ptx-not-older-minor"),
    ("sm_90a", "9.0", True, "arch-specific-exact"),
    ("sm_90a", "9.1", False, "arch-specific-not-newer-minor"),
    ("sm_90a", "10.0", False, "arch-specific-not-newer-major"),
    ("sm_100a", "10.3", False, "arch-specific-b200-not-b300"),
    ("compute_90a", "10.0", False, "arch-specific-ptx-exact-only"),
    ("sm_90", "9", True, "cc-without-minor"),
]


@pytest.mark.parametrize(
    ("target", "cc", "runs"), [c[:3] for c in RUNS_ON], ids=[c[3] for c in RUNS_ON]
)
def test_runs_on(target: str, cc: str, runs: bool) -> None:
    assert CudaArch.parse(target).runs_on(Version.parse(cc)) is runs


PARSE = [
    ("sm_90", False, 9, 0, "", "sm_90"),
    ("sm_80", False, 8, 0, "", "sm_80"),
    ("compute_80", True, 8, 0, "", "compute_80"),
    ("sm_90a", False, 9, 0, "a", "sm_90a"),
    ("compute_90a", True, 9, 0, "a", "compute_90a"),
    ("sm_100", False, 10, 0, "", "sm_100"),
    ("sm_100f", False, 10, 0, "f", "sm_100f"),
    ("sm_120", False, 12, 0, "", "sm_120"),
    ("sm_86", False, 8, 6, "", "sm_86"),
    ("SM_90", False, 9, 0, "", "sm_90"),
    (" sm_75 ", False, 7, 5, "", "sm_75"),
]


@pytest.mark.parametrize(
    ("text", "ptx", "major", "minor", "suffix", "shown"),
    PARSE,
    ids=[c[0].strip() + ("-upper" if c[0].isupper() else "") for c in PARSE],
)
def test_parse(text: str, ptx: bool, major: int, minor: int, suffix: str, shown: str) -> None:
    arch = CudaArch.parse(text)
    assert (arch.ptx, arch.major, arch.minor, arch.suffix) == (ptx, major, minor, suffix)
    assert str(arch) == shown


BAD_TARGETS = [
    ("sm9", "no-underscore"),
    ("sm_9", "one-digit"),
    ("sm_", "no-number"),
    ("sm90", "missing-underscore"),
    ("sm_90x", "unknown-suffix"),
    ("sm_90aa", "double-suffix"),
    ("compute90", "ptx-missing-underscore"),
    ("arch=compute_90", "nvcc-flag"),
    ("9.0", "compute-capability"),
    ("Ascend910B3", "ascend-soc"),
    ("", "empty"),
    ("sm_9.0", "dotted"),
]


@pytest.mark.parametrize("text", [c[0] for c in BAD_TARGETS], ids=[c[1] for c in BAD_TARGETS])
def test_bad_targets_raise(text: str) -> None:
    with pytest.raises(ValueError, match="not a CUDA target"):
        CudaArch.parse(text)


def test_lto_ir_is_not_a_runnable_target() -> None:
    # LTO-IR is neither SASS nor PTX: the device cannot run it
    with pytest.raises(ValueError, match="not a CUDA target"):
        CudaArch.parse("lto_90")


@pytest.mark.parametrize(
    ("cc", "name"),
    [("9.0", "sm_90"), ("8.9", "sm_89"), ("10.0", "sm_100"), ("12.0", "sm_120"), ("9", "sm_90")],
    ids=["hopper", "ada", "blackwell", "cc12", "no-minor"],
)
def test_sm_name(cc: str, name: str) -> None:
    assert sm_name(Version.parse(cc)) == name
