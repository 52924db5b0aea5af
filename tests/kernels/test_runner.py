"""The site-side runner: marshalling, launch checks and comparison, on a fake libcuda.

There is no GPU here, so ``FakeLibCuda`` stands in for libcuda.so.1 behind the runner's real
``CudaDriver`` (the same ctypes calls: byref'd out-parameters, a void** of kernel parameters).
scripts/gpu-check.sh runs the same code on a real GPU.
"""

from __future__ import annotations

import ast
import ctypes
import io
import math
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from packager.probe import kernel_runner as kr
from packager.probe.npy import NpyArray, from_values
from tests.kernels.fake_cuda import FakeLibCuda
from tests.kernels.support import FIXTURES

PROBE = Path(kr.__file__).parent


def npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


class Files(dict[str, bytes]):
    """``read`` for the runner: install path -> bytes."""

    def __call__(self, path: str) -> bytes:
        try:
            return self[path]
        except KeyError:
            raise FileNotFoundError(path) from None


N = 1000
A = np.linspace(-1, 1, N, dtype=np.float32)
B = np.arange(N, dtype=np.float32) / 7


def vadd_case(
    binary: str = "two.fatbin",
    kind: str = "cuda-fatbin",
    expected: np.ndarray | None = None,
    **tests: Any,
) -> tuple[dict[str, Any], Files]:
    files = Files(
        {
            "/opt/k/bin": (FIXTURES / binary).read_bytes(),
            "/opt/k/a.npy": npy(A),
            "/opt/k/b.npy": npy(B),
            "/opt/k/c.npy": npy(A + B if expected is None else expected),
        }
    )
    kernel = {
        "name": "vadd",
        "kind": kind,
        "path": "/opt/k/bin",
        "entry": "vadd",
        "tests": {
            "inputs": ["/opt/k/a.npy", "/opt/k/b.npy"],
            "expected": ["/opt/k/c.npy"],
            "rtol": 1e-6,
            "atol": 1e-6,
            "grid": [4],
            "block": [256],
            "scalars": [N],
            **tests,
        },
    }
    return kernel, files


def run(
    kernel: dict[str, Any], files: Files, lib: FakeLibCuda | None = None, **kw: Any
) -> tuple[str, str]:
    lib = lib or FakeLibCuda()
    return kr.run_kernel_test(kernel, files, driver=kr.CudaDriver(lib), **kw)


# ----------------------------------------------------------------------------- a whole run


@pytest.mark.parametrize(
    ("binary", "kind"),
    [
        ("two.fatbin", "cuda-fatbin"),
        ("two_lz4.fatbin", "cuda-fatbin"),
        ("sm90.cubin", "cuda-cubin"),
        ("compute80.ptx", "cuda-ptx"),
        ("libvadd.so", "cuda-so"),
    ],
)
def test_pass_on_every_kind_of_binary(binary: str, kind: str) -> None:
    kernel, files = vadd_case(binary, kind)
    lib = FakeLibCuda()
    status, reason = run(kernel, files, lib)
    assert status == "PASS", reason
    assert reason.startswith(
        "vadd on Fake H200 (sm_90): 1 output(s), 1000 values within rtol=1e-06 atol=1e-06"
    )
    assert "\n" not in reason


def test_the_calls_in_order_and_everything_freed() -> None:
    kernel, files = vadd_case()
    lib = FakeLibCuda()
    assert run(kernel, files, lib)[0] == "PASS"
    names = [n for n in lib.names() if n != "cuStreamQuery"]
    assert names[:8] == [
        "cuInit",
        "cuDeviceGetCount",
        "cuDeviceGet",
        "cuDeviceGetName",
        "cuDeviceGetAttribute",
        "cuDeviceGetAttribute",
        "cuDevicePrimaryCtxRetain",
        "cuCtxSetCurrent",
    ]
    assert names[8:11] == ["cuModuleLoadData", "cuModuleGetFunction", "cuMemAlloc_v2"]
    assert (
        names.index("cuLaunchKernel")
        < names.index("cuCtxSynchronize")
        < names.index("cuMemcpyDtoH_v2")
    )
    assert names[-1] == "cuDevicePrimaryCtxRelease_v2" and "cuModuleUnload" in names
    assert sorted(lib.freed) == sorted(lib.memory)  # every allocation freed


def test_parameter_array_inputs_then_outputs_then_scalars() -> None:
    kernel, files = vadd_case()
    lib = FakeLibCuda()
    run(kernel, files, lib)
    (launch,) = lib.launches
    a, b, c, n = launch["args"]
    allocs = [args[0] for name, args in lib.calls if name == "cuMemAlloc_v2"]
    assert allocs == [4 * N, 4 * N, 4 * N]
    assert list(lib.memory) == [a, b, c]  # allocated in this order: inputs, then the output
    assert n == N
    assert (launch["grid"], launch["block"], launch["shared"]) == ((4, 1, 1), (256, 1, 1), 0)
    memsets = [args for name, args in lib.calls if name == "cuMemsetD8_v2"]
    assert memsets == [(c, 0, 4 * N)]  # the output starts zeroed


def test_pack_params_points_at_each_value() -> None:
    scalars = [
        kr.parse_scalar(7, 0),
        kr.parse_scalar(0.5, 1),
        kr.parse_scalar("i64:-3", 2),
        kr.parse_scalar({"type": "u8", "value": 255}, 3),
        kr.parse_scalar("f64:2.5", 4),
    ]
    arr, keep = kr.pack_params([0x1000, 0xFFFF_FFFF_0000], scalars)
    assert len(arr) == 7 and len(keep) == 7
    read = [
        ctypes.c_uint64.from_address(arr[0]).value,
        ctypes.c_uint64.from_address(arr[1]).value,
        ctypes.c_int32.from_address(arr[2]).value,
        ctypes.c_float.from_address(arr[3]).value,
        ctypes.c_int64.from_address(arr[4]).value,
        ctypes.c_uint8.from_address(arr[5]).value,
        ctypes.c_double.from_address(arr[6]).value,
    ]
    assert read == [0x1000, 0xFFFF_FFFF_0000, 7, 0.5, -3, 255, 2.5]
    assert [s.size for s in scalars] == [4, 4, 8, 1, 8]


def test_dynamic_shared_memory_above_48k_is_opted_in() -> None:
    kernel, files = vadd_case(shared_mem=64 * 1024)
    lib = FakeLibCuda()
    assert run(kernel, files, lib)[0] == "PASS"
    assert ("cuFuncSetAttribute", (8, 64 * 1024)) in lib.calls
    assert lib.launches[0]["shared"] == 64 * 1024


# ----------------------------------------------------------------------------- FAIL


def test_wrong_values_fail_naming_the_first() -> None:
    wrong = A + B
    wrong[17] += 1
    kernel, files = vadd_case(expected=wrong)
    status, reason = run(kernel, files)
    assert status == "FAIL"
    assert "output 0 (/opt/k/c.npy): 1 of 1000 values differ; first at [17]" in reason


def test_kernel_that_covers_too_few_threads_fails() -> None:
    kernel, files = vadd_case(grid=[1], block=[128])
    status, reason = run(kernel, files)
    assert status == "FAIL" and "872 of 1000 values differ; first at [128]: got 0.0" in reason


def test_no_binary_for_this_gpu() -> None:
    kernel, files = vadd_case()
    status, reason = run(kernel, files, FakeLibCuda(fail={"cuModuleLoadData": 209}))
    assert status == "FAIL"
    assert "on Fake H200 (sm_90): cuModuleLoadData: CUDA_ERROR_NO_BINARY_FOR_GPU (209)" in reason


def test_launch_error_fails_and_frees() -> None:
    kernel, files = vadd_case()
    lib = FakeLibCuda(fail={"cuLaunchKernel": 700})
    status, reason = run(kernel, files, lib)
    assert status == "FAIL" and "cuLaunchKernel: CUDA_ERROR_ILLEGAL_ADDRESS (700)" in reason
    assert len(lib.freed) == 3


def test_entry_not_in_the_module() -> None:
    kernel, files = vadd_case()
    kernel["entry"] = "rmsnorm"
    status, reason = run(kernel, files)
    assert status == "FAIL" and "cuModuleGetFunction: CUDA_ERROR_NOT_FOUND" in reason


def test_hung_kernel_times_out() -> None:
    kernel, files = vadd_case()
    lib = FakeLibCuda(hang=True)
    status, reason = run(kernel, files, lib, timeout=0.05)
    assert status == "FAIL" and "did not finish within 0.05 s" in reason
    assert lib.freed == []  # a hung context is left to process exit


@pytest.mark.parametrize(
    ("tests", "says"),
    [
        ({"grid": [0]}, "grid[0]: 0 is not a positive integer"),
        ({"grid": [1, 1, 1, 1]}, "grid: [1, 1, 1, 1] is not a list of 1 to 3 integers"),
        ({"grid": [1, 70000]}, "grid[1]: 70000 is above the CUDA limit 65535"),
        ({"block": [1024, 2]}, "block [1024, 2, 1] has 2048 threads, above the CUDA limit of 1024"),
        ({"block": [1, 1, 65]}, "block[2]: 65 is above the CUDA limit 64"),
        ({"block": [2.5]}, "block[0]: 2.5 is not a positive integer"),
        ({"shared_mem": -1}, "shared_mem"),
        ({"rtol": -1}, "rtol: -1 is not a number >= 0"),
        ({"atol": math.inf}, "infinite tolerance"),
        ({"scalars": ["n:5"]}, "unknown type 'n'"),
        ({"scalars": [1.5e10]}, None),  # a float: float32, fine for the definition
        ({"scalars": [2**31]}, "does not fit i32 (write it as i64:2147483648"),
        ({"scalars": [True]}, "is not a number"),
        ({"scalars": ["i32:x"]}, "'x' is not a number"),
        ({"expected": []}, "non-empty list of expected"),
    ],
)
def test_launch_definition_checked_before_any_device(
    tests: dict[str, Any], says: str | None
) -> None:
    kernel, files = vadd_case()
    kernel["tests"].update(tests)
    lib = FakeLibCuda()
    status, reason = run(kernel, files, lib)
    if says is None:
        assert "test definition" not in reason
        return
    assert (status, reason.split(": ", 1)[0]) == ("FAIL", "test definition"), reason
    assert says in reason
    assert lib.calls == []  # nothing touched the driver


# ----------------------------------------------------------------------------- vectors


def test_mismatched_vector_size_is_a_fail() -> None:
    kernel, files = vadd_case()
    raw = files["/opt/k/b.npy"].replace(b"(1000,)", b"(999,) ")  # the header keeps its length
    files["/opt/k/b.npy"] = raw
    status, reason = run(kernel, files)
    assert status == "FAIL"
    assert (
        "inputs[1] (/opt/k/b.npy): header says shape (999,) of float32 (3996 bytes of data) but the file holds 4000"
        in reason
    )


def test_parameters_that_do_not_match_the_kernel() -> None:
    """vadd takes (ptr, ptr, ptr, int): one input too few is caught from the cubin's .nv.info."""
    kernel, files = vadd_case("sm90.cubin", "cuda-cubin")
    kernel["tests"]["inputs"] = ["/opt/k/a.npy"]
    lib = FakeLibCuda()
    status, reason = run(kernel, files, lib)
    assert status == "FAIL" and lib.calls == []
    assert "vadd takes 4 parameter(s) of [8, 8, 8, 4] bytes; the test passes [8, 8, 4]" in reason


@pytest.mark.parametrize(
    ("binary", "kind"), [("sm90.cubin", "cuda-cubin"), ("compute80.ptx", "cuda-ptx")]
)
def test_scalar_of_the_wrong_size(binary: str, kind: str) -> None:
    kernel, files = vadd_case(binary, kind, scalars=["i64:1000"])
    status, reason = run(kernel, files)
    assert (
        status == "FAIL"
        and "takes 4 parameter(s) of [8, 8, 8, 4] bytes; the test passes [8, 8, 8, 8]" in reason
    )


@pytest.mark.parametrize("binary", ["two.fatbin", "two_lz4.fatbin", "libvadd.so"])
def test_compressed_images_use_the_parameters_the_build_recorded(binary: str) -> None:
    """Every entry compressed: the stdlib runner cannot read the signature, the build's record can."""
    kind = "cuda-so" if binary.endswith(".so") else "cuda-fatbin"
    kernel, files = vadd_case(binary, kind, scalars=["i64:1000"])
    assert run(kernel, files)[0] == "PASS"  # nothing to check against: the GPU would run it
    kernel["params"] = [8, 8, 8, 4]
    status, reason = run(kernel, files)
    assert status == "FAIL" and "the test passes [8, 8, 8, 8]" in reason
    kernel["tests"]["scalars"] = [1000]
    assert run(kernel, files)[0] == "PASS"


def test_expected_dtype_unlike_the_inputs_fails_with_a_note() -> None:
    kernel, files = vadd_case(expected=(A + B).astype(np.float16))
    status, reason = run(kernel, files)
    assert status == "FAIL"
    assert "note: expected is float16 but the inputs are float32" in reason


def test_empty_expected_array_is_refused() -> None:
    kernel, files = vadd_case(expected=np.zeros(0, np.float32))
    status, reason = run(kernel, files)
    assert status == "FAIL" and "holds no values" in reason


def test_missing_vector_file() -> None:
    kernel, files = vadd_case()
    del files["/opt/k/b.npy"]
    status, reason = run(kernel, files)
    assert status == "FAIL" and "inputs[1] (/opt/k/b.npy): cannot read it" in reason


# ----------------------------------------------------------------------------- comparison


def arr(values: list[Any], dtype: str = "float32") -> NpyArray:
    return from_values(values, dtype)


@pytest.mark.parametrize(
    ("got", "want", "rtol", "atol", "bad"),
    [
        ([1.0, 2.0], [1.0, 2.0], 0.0, 0.0, 0),
        ([1.0009], [1.0], 1e-3, 0.0, 0),  # |d| <= rtol * |want|
        ([1.0011], [1.0], 1e-3, 0.0, 1),
        ([0.0], [1e-9], 0.0, 1e-8, 0),
        ([math.nan], [math.nan], 0.0, 0.0, 0),  # NaN equals NaN
        ([math.nan], [1.0], 1.0, 1.0, 1),
        ([1.0], [math.nan], 1.0, 1.0, 1),
        ([math.inf], [math.inf], 0.0, 0.0, 0),
        ([math.inf], [-math.inf], 1.0, 1.0, 1),
        ([1e38], [math.inf], 1.0, 1.0, 1),
        ([-2.0], [2.0], 0.5, 0.0, 1),
    ],
)
def test_allclose_semantics(
    got: list[float], want: list[float], rtol: float, atol: float, bad: int
) -> None:
    n, _text = kr.compare(arr(got), arr(want), rtol, atol)
    assert n == bad
    assert bool(
        np.allclose(
            np.array(got, np.float32), np.array(want, np.float32), rtol, atol, equal_nan=True
        )
    ) == (bad == 0)


def test_integer_and_bool_outputs() -> None:
    assert kr.compare(arr([1, 2, 3], "int32"), arr([1, 2, 4], "int32"), 0, 0)[0] == 1
    assert kr.compare(arr([True, False], "bool"), arr([True, False], "bool"), 0, 0)[0] == 0
    text = kr.compare(
        arr([0, 0, 0, 0], "int32"), NpyArray("int32", (2, 2), struct.pack("<4i", 0, 0, 0, 5)), 0, 0
    )[1]
    assert "first at [1, 1]: got 0, expected 5" in text


# ----------------------------------------------------------------------------- no device


def test_no_libcuda_is_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> Any:
        raise OSError("cannot load libcuda.so.1: libcuda.so.1: cannot open shared object file")

    monkeypatch.setattr(kr, "load_libcuda", missing)
    kernel, files = vadd_case()
    status, reason = kr.run_kernel_test(kernel, files)
    assert status == "NOT RUN" and reason.startswith("no device: cannot load libcuda.so.1")


def test_this_machine_has_no_device() -> None:
    """The real path: this machine has no NVIDIA driver, so the answer is NOT RUN."""
    kernel, files = vadd_case()
    status, reason = kr.run_kernel_test(kernel, files)
    assert status == "NOT RUN" and reason.startswith("no device:")


@pytest.mark.parametrize(("fail", "devices"), [({"cuInit": 100}, 1), ({}, 0), ({"cuInit": 35}, 1)])
def test_driver_without_a_device_is_not_run(fail: dict[str, int], devices: int) -> None:
    kernel, files = vadd_case()
    status, reason = run(kernel, files, FakeLibCuda(fail=fail, devices=devices))
    assert status == "NOT RUN" and reason.startswith("no device:")


def test_ascend_kernels_are_not_run() -> None:
    status, reason = kr.run_kernel_test({"kind": "ascend-op"}, Files())
    assert status == "NOT RUN" and "CUDA kernels only" in reason


# ----------------------------------------------------------------------------- stdlib, Python 3.8


@pytest.mark.parametrize("module", ["kernel_runner.py", "npy.py"])
def test_probe_modules_are_stdlib_only_and_python_3_8(module: str) -> None:
    source = (PROBE / module).read_text()
    tree = ast.parse(source, feature_version=(3, 8))
    assert "from __future__ import annotations" in source
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] in sys.stdlib_module_names, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            assert node.module is not None and node.module.split(".")[0] in sys.stdlib_module_names
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "zip":
            assert not any(k.arg == "strict" for k in node.keywords), "zip(strict=) is 3.10+"
        elif isinstance(node, ast.Attribute):
            assert node.attr not in {
                "removeprefix",
                "removesuffix",
                "is_relative_to",
                "randbytes",
            }, node.attr
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            # X | Y outside annotations would be evaluated at run time (a TypeError on 3.8 for types)
            for side in (node.left, node.right):
                assert not (
                    isinstance(side, ast.Name)
                    and side.id in {"int", "str", "float", "bytes", "None"}
                )


# ----------------------------------------------------------------------------- at the C ABI


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler for the libcuda stand-in")
    out = tmp_path_factory.mktemp("shim") / "libcuda_shim.so"
    src = Path(__file__).with_name("libcuda_shim.c")
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(out), str(src)], check=True)
    return ctypes.CDLL(str(out))


@pytest.mark.parametrize(
    ("binary", "kind"),
    [
        ("two.fatbin", "cuda-fatbin"),
        ("sm80.cubin", "cuda-cubin"),
        ("compute80.ptx", "cuda-ptx"),
        ("libvadd.so", "cuda-so"),
    ],
)
def test_real_ctypes_path_through_a_c_libcuda(
    shim: ctypes.CDLL, monkeypatch: pytest.MonkeyPatch, binary: str, kind: str
) -> None:
    """The default path (load_libcuda -> CudaDriver) over a C library with CUDA's signatures."""
    monkeypatch.setattr(kr, "load_libcuda", lambda: shim)
    before = shim.shim_launches()
    kernel, files = vadd_case(binary, kind, shared_mem=50_000)
    status, reason = kr.run_kernel_test(kernel, files)
    assert status == "PASS", reason
    assert reason.startswith("vadd on Shim GPU (sm_90): 1 output(s), 1000 values")
    assert shim.shim_launches() == before + 1 and shim.shim_allocations() == 0
    wrong = A + B
    wrong[3] = 0
    kernel, files = vadd_case(binary, kind, expected=wrong)
    status, reason = kr.run_kernel_test(kernel, files)
    assert status == "FAIL" and "first at [3]" in reason


def test_c_libcuda_errors_come_back_named(
    shim: ctypes.CDLL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kr, "load_libcuda", lambda: shim)
    kernel, files = vadd_case()
    kernel["entry"] = "scale"
    kernel["tests"]["scalars"] = [1000]
    kernel["tests"]["inputs"] = ["/opt/k/a.npy"]
    kernel["params"] = [8, 8, 4]
    status, reason = kr.run_kernel_test(kernel, files)
    assert (
        status == "FAIL" and "cuModuleGetFunction: CUDA_ERROR_NOT_FOUND (500): shim error" in reason
    )
    assert shim.shim_allocations() == 0
