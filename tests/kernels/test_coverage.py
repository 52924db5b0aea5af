"""Coverage read from real binaries, one case per (binary, chip): NATIVE / PTX JIT / NONE.

The binaries are compiled with nvcc for this session when it is here, and the committed fixtures
(built from the same source by tests/fixtures/kernels/build.sh) run the same table always. Each
rule of compat-facts.md ("Kernel binaries") has a case for h100, h200, a100, l40s, b200 and t4:
a cubin runs only within its major version, at or above its minor (sm_80 on 8.0 and 8.9, not on
9.0); sm_90a only on 9.0; PTX compute_XY on any compute capability >= X.Y.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from packager.compat.cuda import Coverage
from packager.compat.facts import Chip
from packager.findings import Severity
from packager.kernels.checks import check_kernel
from packager.manifest.model import Kernel
from tests.kernels.support import FIXTURES

N, J, X = Coverage.NATIVE, Coverage.PTX_JIT, Coverage.NONE
CHIPS = ("h100", "h200", "a100", "l40s", "b200", "t4")

# binary file, manifest kind, what it holds, coverage on h100 h200 a100 l40s b200 t4
# fmt: off
TABLE: dict[str, tuple[str, str, list[str], tuple[Coverage, ...]]] = {
    "sm_80-only":     ("sm80.cubin", "cuda-cubin", ["sm_80"], (X, X, N, N, X, X)),
    "sm_90-only":     ("sm90.cubin", "cuda-cubin", ["sm_90"], (N, N, X, X, X, X)),
    "ptx-compute_80": ("compute80.ptx", "cuda-ptx", ["compute_80"], (J, J, J, J, J, X)),
    "sm_90a":         ("sm90a.cubin", "cuda-cubin", ["sm_90a"], (N, N, X, X, X, X)),
    "two-cubins+ptx": ("two.fatbin", "cuda-fatbin", ["sm_80", "sm_90", "compute_90"], (N, N, N, N, J, X)),
    "two-lz4":        ("two_lz4.fatbin", "cuda-fatbin", ["sm_80", "sm_90", "compute_90"], (N, N, N, N, J, X)),
    "fatbin-in-.so":  ("libvadd.so", "cuda-so", ["sm_80", "sm_90", "compute_90"], (N, N, N, N, J, X)),
}
# fmt: on
CASES = [pytest.param(key, chip, id=f"{key}-on-{chip}") for key in TABLE for chip in CHIPS]
EXPECTED_CODE = {N: None, J: ("AG407", Severity.WARNING), X: ("AG406", Severity.ERROR)}


def kernel(path: Path, kind: str, entry: str | None = "vadd") -> Kernel:
    return Kernel("vadd", kind, path, None, entry, (), None, ("kernels", 0))


def _case(folder: Path, key: str, chip_id: str, chips: dict[str, Chip]) -> None:
    file, kind, holds, want = TABLE[key]
    chip = chips[chip_id]
    check = check_kernel(kernel(folder / file, kind), [chip])
    assert check.inspected, check.issues
    assert list(check.archs) == holds
    expected = want[CHIPS.index(chip_id)]
    assert check.coverage(chip_id) is expected, check.to_json()
    codes = [(i.code, i.severity) for i in check.issues]
    if EXPECTED_CODE[expected] is None:
        assert codes == [], check.issues
        return
    assert codes == [EXPECTED_CODE[expected]], check.issues
    (issue,) = check.issues
    assert chip_id in issue.message and ", ".join(holds) in issue.message  # the chip, what it has
    sm = f"{chip.cc.release[0]}{chip.cc.release[1]}" if chip.cc else ""
    assert f"sm_{sm}" in (issue.message + (issue.hint or ""))  # what it needs


@pytest.mark.parametrize(("key", "chip_id"), CASES)
def test_coverage_committed_fixtures(key: str, chip_id: str, chips: dict[str, Chip]) -> None:
    _case(FIXTURES, key, chip_id, chips)


@pytest.mark.parametrize(("key", "chip_id"), CASES)
def test_coverage_nvcc_built(
    nvcc_bins: Path, key: str, chip_id: str, chips: dict[str, Chip]
) -> None:
    _case(nvcc_bins, key, chip_id, chips)


# fmt: off
EXTRA: dict[str, tuple[str, str, list[str], tuple[Coverage, ...]]] = {
    "default-compression":  ("two_default.fatbin", "cuda-fatbin", ["sm_80", "sm_90", "compute_90"], (N, N, N, N, J, X)),
    "uncompressed":         ("two_raw.fatbin", "cuda-fatbin", ["sm_80", "sm_90", "compute_90"], (N, N, N, N, J, X)),
    "sm_80-fatbin":         ("sm80.fatbin", "cuda-fatbin", ["sm_80", "compute_80"], (J, J, N, N, J, X)),
    "sm_90a-fatbin":        ("sm90a.fatbin", "cuda-fatbin", ["sm_90a", "compute_90a"], (N, N, X, X, X, X)),
    "cudart-static-.so":    ("libvadd_cudart.so", "cuda-so", ["sm_80", "sm_90", "compute_90"], (N, N, N, N, J, X)),
}
# fmt: on


@pytest.mark.parametrize(
    ("key", "chip_id"), [pytest.param(k, c, id=f"{k}-on-{c}") for k in EXTRA for c in CHIPS]
)
def test_coverage_more_nvcc_variants(
    nvcc_bins: Path, key: str, chip_id: str, chips: dict[str, Chip]
) -> None:
    file, kind, holds, want = EXTRA[key]
    check = check_kernel(kernel(nvcc_bins / file, kind), [chips[chip_id]])
    assert check.inspected, check.issues
    assert list(check.archs) == holds
    assert check.coverage(chip_id) is want[CHIPS.index(chip_id)]


def test_every_chip_at_once_names_each_failing_chip(chips: dict[str, Chip]) -> None:
    check = check_kernel(kernel(FIXTURES / "sm80.cubin", "cuda-cubin"), [chips[c] for c in CHIPS])
    failing = sorted(i.message.split(" runs on ")[1].split(" ")[0] for i in check.issues)
    assert failing == sorted(["h100", "h200", "b200", "t4"])
    assert {c.chip: c.coverage for c in check.chips} == dict(
        zip(CHIPS, TABLE["sm_80-only"][3], strict=True)
    )


def test_coverage_counts_only_images_holding_the_entry(
    nvcc_bins: Path, chips: dict[str, Chip]
) -> None:
    """The static-runtime .so holds a second fatbin (the runtime's, no kernels of ours)."""
    check = check_kernel(kernel(nvcc_bins / "libvadd_cudart.so", "cuda-so"), [chips["h100"]])
    assert check.info is not None and len(check.info.containers) == 2
    assert check.entry_found is True
    assert check.coverage("h100") is N


def test_family_ptx_stays_in_its_family(chips: dict[str, Chip]) -> None:
    from packager.compat.cuda import CudaArch
    from packager.kernels.checks import chip_coverage

    ptx_100f = CudaArch.parse("compute_100f")
    assert chip_coverage([ptx_100f], chips["b200"]).coverage is J
    assert chip_coverage([ptx_100f], chips["b300"]).coverage is J
    assert chip_coverage([ptx_100f], chips["rtx-pro-6000"]).coverage is X
