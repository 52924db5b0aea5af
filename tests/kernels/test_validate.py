"""`airgap validate` reads every kernel file that exists: findings AG405..AG419 at the kernel's fields."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from packager.compat.facts import load_facts
from packager.findings import Severity
from packager.kernels.checks import check_kernel
from packager.manifest.model import load_manifest
from tests.kernels.support import FIXTURES, findings, manifest, run, show, text_at

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


def k(path: str = "k/two.fatbin", kind: str = "cuda-fatbin", **more: Any) -> dict[str, Any]:
    return {"name": "vadd", "kind": kind, "path": path, "entry": "vadd", **more}


TWO = {"k/two.fatbin": FIXTURES / "two.fatbin"}


def test_binary_coverage_on_every_chip(tmp_path: Path) -> None:
    path = manifest(tmp_path, [k()], chips=["h100", "a100", "b200", "t4"], files=TWO)
    r = run(path)
    got = {(f.code, f.severity) for f in findings(r, "AG406", "AG407")}
    assert got == {("AG407", WARNING), ("AG406", ERROR)}, show(r)
    (t4,) = findings(r, "AG406")
    assert "t4" in t4.message and "sm_75" in t4.message and t4.json_path == "$.kernels[0].path"
    assert text_at(path, t4).startswith("k/two.fatbin")
    (b200,) = findings(r, "AG407")
    assert "b200" in b200.message and "compute_90" in b200.message
    assert not r.valid


def test_clean_kernel_has_no_findings(tmp_path: Path) -> None:
    r = run(
        manifest(
            tmp_path,
            [k(targets=["sm_80", "sm_90", "compute_90"])],
            chips=["h100", "a100"],
            files=TWO,
        )
    )
    assert [f for f in r.findings if f.code.startswith("AG4")] == [], show(r)
    assert r.valid


def test_binary_replaces_declared_targets_and_warns_when_they_disagree(tmp_path: Path) -> None:
    """targets say sm_80 (compat's AG401 on h100); the binary holds sm_90 too: AG409, no AG401."""
    r = run(manifest(tmp_path, [k(targets=["sm_80"])], chips=["h100"], files=TWO))
    assert not findings(r, "AG401", "AG402"), show(r)
    (f,) = findings(r, "AG409")
    assert f.severity is WARNING and f.json_path == "$.kernels[0].targets"
    assert "not declared: compute_90, sm_90" in f.message
    assert f.hint == "write targets: [compute_90, sm_80, sm_90]"
    assert r.valid


def test_declared_targets_still_checked_when_the_file_is_missing(tmp_path: Path) -> None:
    r = run(manifest(tmp_path, [k(targets=["sm_80"])], chips=["h100"]))
    assert findings(r, "AG401") and findings(r, "AG311")
    assert not findings(r, "AG405", "AG406")


def test_declared_kind_differs_from_the_file(tmp_path: Path) -> None:
    r = run(
        manifest(tmp_path, [k("k/sm90.cubin")], files={"k/sm90.cubin": FIXTURES / "sm90.cubin"})
    )
    (f,) = findings(r, "AG410")
    assert (
        f.severity is WARNING
        and f.hint == "write kind: cuda-cubin"
        and f.json_path == "$.kernels[0].kind"
    )


def test_empty_placeholder_is_not_inspected(tmp_path: Path) -> None:
    r = run(manifest(tmp_path, [k("k/empty.fatbin")], files={"k/empty.fatbin": b""}))
    (f,) = findings(r, "AG412")
    assert f.severity is INFO
    assert not findings(r, "AG405")


def test_missing_entry(tmp_path: Path) -> None:
    path = manifest(tmp_path, [k(entry="rmsnorm")], files=TWO)
    r = run(path)
    (f,) = findings(r, "AG408")
    assert f.severity is ERROR and f.json_path == "$.kernels[0].entry"
    assert "'rmsnorm' is not a kernel" in f.message and "vadd" in f.message
    assert text_at(path, f).startswith("rmsnorm")


def test_missing_entry_that_is_mangled_names_the_symbol(tmp_path: Path) -> None:
    r = run(manifest(tmp_path, [k(entry="axpy")], files=TWO))
    (f,) = findings(r, "AG408")
    assert f.hint is not None and "'_Z4axpyfPKfPfi'" in f.hint and 'extern "C"' in f.hint


def test_mangled_entry_written_in_full_is_found(tmp_path: Path) -> None:
    r = run(manifest(tmp_path, [k(entry="_Z4axpyfPKfPfi")], files=TWO))
    assert not findings(r, "AG408", "AG411"), show(r)


def test_ptx_placeholder_without_kernels_is_not_an_error(tmp_path: Path) -> None:
    """A PTX that defines no kernel (a placeholder other tests use) still counts as compute_90."""
    kern = {"name": "k", "kind": "cuda-ptx", "path": "k.ptx", "targets": ["compute_90"]}
    r = run(manifest(tmp_path, [kern], files={"k.ptx": ".version 8.0\n.target sm_90\n"}))
    assert [(f.code, f.severity) for f in r.findings if f.code.startswith("AG4")] == [
        ("AG407", WARNING)
    ]
    assert r.valid


def test_tests_without_entry(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros(4, np.float32))
    kern = k(tests={"inputs": ["a.npy"], "expected": ["a.npy"]})
    del kern["entry"]
    r = run(manifest(tmp_path, [kern], files=TWO))
    (f,) = findings(r, "AG411")
    assert "names no entry" in f.message


# ----------------------------------------------------------------------------- test vectors


def vectors(tmp: Path, **arrays: np.ndarray) -> None:
    for name, a in arrays.items():
        np.save(tmp / f"{name}.npy", a)


def test_vectors_that_match_the_kernel(tmp_path: Path) -> None:
    x = np.arange(8, dtype=np.float32)
    vectors(tmp_path, a=x, b=x, c=x + x)
    tests = {
        "inputs": ["a.npy", "b.npy"],
        "expected": ["c.npy"],
        "scalars": [8],
        "grid": [1],
        "block": [8],
    }
    r = run(manifest(tmp_path, [k(tests=tests)], files=TWO))
    assert not [f for f in r.findings if f.code.startswith("AG4")], show(r)


def test_vectors_whose_count_does_not_match_the_kernel(tmp_path: Path) -> None:
    x = np.arange(8, dtype=np.float32)
    vectors(tmp_path, a=x, c=x)
    tests = {"inputs": ["a.npy"], "expected": ["c.npy"], "scalars": [8]}
    r = run(manifest(tmp_path, [k(tests=tests)], files=TWO))
    (f,) = findings(r, "AG418")
    assert f.severity is WARNING and "takes 4 parameter(s) of [8, 8, 8, 4] bytes" in f.message
    assert "[8, 8, 4]" in f.message and f.message.endswith(
        "the probe would FAIL this test at the site"
    )
    # the build's check: an error
    m = load_manifest(tmp_path / "manifest.yaml").manifest
    assert m is not None
    check = check_kernel(m.targets[0].kernels[0], [load_facts().chips["h100"]])
    assert [(i.code, i.severity) for i in check.issues] == [("AG418", ERROR)] and not check.ok


def test_vector_with_a_bad_header(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros(6, np.float32))
    raw = (tmp_path / "a.npy").read_bytes().replace(b"(6,)", b"(7,)")
    (tmp_path / "a.npy").write_bytes(raw)
    np.save(tmp_path / "c.npy", np.zeros(6, np.float32))
    tests = {"inputs": ["a.npy", "a.npy"], "expected": ["c.npy"], "scalars": [6]}
    r = run(manifest(tmp_path, [k(tests=tests)], files=TWO))
    fs = findings(r, "AG416")
    assert fs and fs[0].severity is WARNING and fs[0].json_path == "$.kernels[0].tests.inputs[0]"
    assert "(7,)" in fs[0].message and "24 bytes" in fs[0].message


def test_vector_dtypes_that_differ(tmp_path: Path) -> None:
    vectors(tmp_path, a=np.zeros(4, np.float32), c=np.zeros(4, np.float16))
    tests = {"inputs": ["a.npy", "a.npy"], "expected": ["c.npy"], "scalars": [4]}
    r = run(manifest(tmp_path, [k(tests=tests)], files=TWO))
    (f,) = findings(r, "AG419")
    assert f.severity is WARNING and "float16" in f.message and "float32" in f.message


def test_missing_vector_file(tmp_path: Path) -> None:
    vectors(tmp_path, a=np.zeros(4, np.float32))
    tests = {"inputs": ["a.npy", "a.npy"], "expected": ["gone.npy"], "scalars": [4]}
    r = run(manifest(tmp_path, [k(tests=tests)], files=TWO))
    (f,) = findings(r, "AG417")
    assert f.json_path == "$.kernels[0].tests.expected[0]"


# ----------------------------------------------------------------------------- Ascend


def ascend_op(
    tmp: Path, meta: dict[str, Any] | None, rel: str = "op/add_custom.o"
) -> dict[str, Any]:
    binary = tmp / rel
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" + b"ascend kernel" * 8)
    if meta is not None:
        if meta.get("sha256") == "auto":
            meta["sha256"] = hashlib.sha256(binary.read_bytes()).hexdigest()
        binary.with_suffix(".json").write_text(json.dumps(meta))
    return {"name": "add", "kind": "ascend-op", "path": rel}


@pytest.mark.parametrize(
    ("meta", "chip", "code"),
    [
        (
            {"binFileName": "add_custom", "socVersion": "Ascend910B3", "sha256": "auto"},
            "ascend910b3",
            None,
        ),
        ({"socVersion": "Ascend910B"}, "ascend910b4", None),  # the family
        ({"supportInfo": {"soc_version": ["Ascend910B2", "Ascend910B3"]}}, "ascend910b3", None),
        ({"op_info": {"socVersion": "Ascend910A"}}, "ascend910a", None),
        ({"socVersion": "Ascend910B3"}, "ascend310p3", "AG413"),
        ({"socVersion": "Ascend310P3"}, "ascend910c", "AG413"),
        ({"kernelName": "add_custom"}, "ascend910b3", "AG414"),
        (None, "ascend910b3", "AG414"),
        ({"socVersion": "Ascend910B3", "sha256": "00" * 32}, "ascend910b3", "AG415"),
    ],
)
def test_ascend_kernel_metadata(
    tmp_path: Path, meta: dict[str, Any] | None, chip: str, code: str | None
) -> None:
    r = run(manifest(tmp_path, [ascend_op(tmp_path, meta)], vendor="huawei", chips=[chip]))
    got = [f.code for f in r.findings if f.code.startswith("AG41")]
    assert got == ([code] if code else []), show(r)
    if code == "AG413":
        (f,) = findings(r, "AG413")
        assert f.severity is ERROR and chip in f.message and "json key socVersion" in f.message


def test_ascend_metadata_replaces_declared_targets(tmp_path: Path) -> None:
    op = {**ascend_op(tmp_path, {"socVersion": "Ascend910B3"}), "targets": ["Ascend310P3"]}
    r = run(manifest(tmp_path, [op], vendor="huawei", chips=["ascend910b3"]))
    assert not findings(r, "AG401"), show(r)  # the metadata, not the declaration, decides
    (f,) = findings(r, "AG409")
    assert f.severity is WARNING and f.hint == "write targets: [Ascend910B3]"
    r = run(
        manifest(
            tmp_path, [{**op, "targets": ["Ascend910B3"]}], vendor="huawei", chips=["ascend310p3"]
        )
    )
    assert [f.code for f in r.findings if f.code.startswith("AG4")] == ["AG413"], show(r)


def test_ascend_soc_from_the_package_folder(tmp_path: Path) -> None:
    op = ascend_op(
        tmp_path,
        {"binFileName": "add_custom"},
        "op_impl/ai_core/tbe/kernel/ascend910b/add_custom.o",
    )
    r = run(manifest(tmp_path, [op], vendor="huawei", chips=["ascend910b3"]))
    assert not [f for f in r.findings if f.code.startswith("AG41")], show(r)
    r = run(manifest(tmp_path, [op], vendor="huawei", chips=["ascend310p3"]))
    (f,) = findings(r, "AG413")
    assert "folder name ascend910b" in f.message


def test_every_kernel_finding_has_a_place_and_errors_a_hint(tmp_path: Path) -> None:
    path = manifest(
        tmp_path,
        [k(entry="nope", targets=["sm_80"]), k("k/bad.fatbin"), k("k/sm90.cubin")],
        chips=["t4", "b200"],
        files={
            **TWO,
            "k/bad.fatbin": b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
            "k/sm90.cubin": FIXTURES / "sm90.cubin",
        },
    )
    r = run(path)
    assert {"AG405", "AG406", "AG407", "AG408", "AG409", "AG410"} <= {f.code for f in r.findings}, (
        show(r)
    )
    for f in r.findings:
        assert f.location.file == str(path) and f.location.line is not None, f
        if f.severity is ERROR:
            assert f.hint, f
    json.dumps(r.to_json())


# ---------------------------------------------------------------- PTX newer than the target's CUDA

#: (kernel file, chips, the target's stack, AG420 severity or None). The fixtures were built by
#: CUDA 13.0 (BUILD-INFO): their PTX is ISA 9.0, which only a CUDA 13 driver JIT-compiles.
PTX_ISA = [
    ("two.fatbin", ["h100"], {"cuda": "12.8", "driver": ">=570.26"}, WARNING, "cubins-cover"),
    ("two.fatbin", ["b200"], {"cuda": "12.8", "driver": ">=570.26"}, ERROR, "b200-runs-the-ptx"),
    ("compute80.ptx", ["a100"], {"cuda": "12.4", "driver": ">=550.54.14"}, ERROR, "ptx-only"),
    ("two.fatbin", ["b200"], {"cuda": "12.8", "driver": ">=580.65.06"}, None, "driver-jits-it"),
    ("two.fatbin", ["b200"], {"cuda": "13.0", "driver": ">=580.65.06"}, None, "same-toolkit"),
]


@pytest.mark.parametrize(
    ("name", "chips", "stack", "severity"),
    [c[:4] for c in PTX_ISA],
    ids=[c[4] for c in PTX_ISA],
)
def test_ptx_newer_than_the_targets_cuda(
    tmp_path: Path,
    name: str,
    chips: list[str],
    stack: dict[str, str],
    severity: Severity | None,
) -> None:
    kind = "cuda-ptx" if name.endswith(".ptx") else "cuda-fatbin"
    path = manifest(
        tmp_path,
        [k(path=f"k/{name}", kind=kind)],
        chips=chips,
        files={f"k/{name}": FIXTURES / name},
        stack=stack,
    )
    r = run(path)
    got = findings(r, "AG420")
    if severity is None:
        assert got == [], show(r)
        return
    (f,) = got
    assert f.severity is severity, show(r)
    assert "PTX is ISA 9.0 (written by CUDA 13.0)" in f.message
    assert f"target's CUDA {stack['cuda']}" in f.message
    assert f.json_path == "$.kernels[0].path"
    assert f.hint and 'driver ">=580.65.06"' in f.hint
