"""Run a kernel's test vectors on the local NVIDIA GPU: stdlib only (ctypes + libcuda), Python >= 3.8.

``run_kernel_test(kernel, read)`` loads the kernel binary through the CUDA driver API
(cuInit, the device's primary context, cuModuleLoadData, cuModuleGetFunction), copies the input
arrays to the device, launches the entry with pointers to the inputs, then to the outputs (one per
expected array, sized and typed like it), then the scalars, waits (bounded by ``timeout``), copies
the outputs back and compares them with the expected arrays the way ``numpy.allclose`` does:
``|out - exp| <= atol + rtol * |exp|``, with NaN equal only to NaN and an infinity only to itself.

It returns ``(status, reason)``: ``("PASS", ...)``, ``("FAIL", ...)`` or ``("NOT RUN", ...)``.
Without libcuda or a device the answer is ``NOT RUN`` with a reason starting "no device:", never
a pass. A test definition that cannot be right (unreadable vectors, a launch geometry no GPU
accepts, parameters that do not match the kernel's) is a FAIL before any device is touched.

Scalars: a JSON integer is passed as int32, a JSON number with a fraction as float32; a string
``"TYPE:VALUE"`` or an object ``{"type": TYPE, "value": VALUE}`` picks the type explicitly
(TYPE one of i8 u8 i16 u16 i32 u32 i64 u64 f32 f64).

Parameters: when the kernel object carries ``"params"`` (the byte size of each kernel parameter,
which the build reads from the binary), or when the image tells (a cubin's ``.nv.info`` or PTX's
``.entry`` list; not an entry this stdlib module cannot decompress), the pointers and scalars
the test passes must match them in number and size, else FAIL before anything is launched.

Kernel kinds: cuda-fatbin, cuda-cubin and cuda-ptx images go to cuModuleLoadData as they are
(PTX gets its terminating NUL); cuda-so is a host library: each fatbin in its .nv_fatbin section
(or found by its magic) is loaded until one holds the entry.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import re
import struct
import time
from collections.abc import Callable
from typing import Any, ClassVar

from .npy import NpyArray, NpyError, read_npy

PASS, FAIL, NOT_RUN = "PASS", "FAIL", "NOT RUN"

CUDA_SUCCESS = 0
CUDA_ERROR_NOT_READY = 600
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76
CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8
STATIC_SHARED_LIMIT = 48 * 1024
MAX_SHARED = 228 * 1024
MAX_BLOCK = (1024, 1024, 64)
MAX_GRID = (2**31 - 1, 65535, 65535)
MAX_THREADS_PER_BLOCK = 1024
POLL_SECONDS = 0.001

_NO_DEVICE_CODES = {
    100: "CUDA_ERROR_NO_DEVICE",
    34: "CUDA_ERROR_STUB_LIBRARY",
    35: "CUDA_ERROR_INSUFFICIENT_DRIVER",
    999: "CUDA_ERROR_UNKNOWN",
    3: "CUDA_ERROR_NOT_INITIALIZED",
    4: "CUDA_ERROR_DEINITIALIZED",
    46: "CUDA_ERROR_DEVICE_UNAVAILABLE",
}

_SCALAR_TYPES: dict[str, Any] = {
    "i8": ctypes.c_int8,
    "u8": ctypes.c_uint8,
    "i16": ctypes.c_int16,
    "u16": ctypes.c_uint16,
    "i32": ctypes.c_int32,
    "u32": ctypes.c_uint32,
    "i64": ctypes.c_int64,
    "u64": ctypes.c_uint64,
    "f32": ctypes.c_float,
    "f64": ctypes.c_double,
}


class TestDefinitionError(ValueError):
    """A kernel test that cannot run as written: its result is FAIL."""


class CudaError(RuntimeError):
    """A CUDA driver call that returned an error."""

    def __init__(self, call: str, code: int, name: str, text: str) -> None:
        super().__init__(f"{call}: {name} ({code}): {text}")
        self.call = call
        self.code = code
        self.name = name


# ----------------------------------------------------------------------------- the test definition


class Scalar:
    """One scalar kernel argument with its C type."""

    __slots__ = ("ctype", "type", "value")

    def __init__(self, type_: str, value: Any) -> None:
        self.type = type_
        self.ctype = _SCALAR_TYPES[type_]
        self.value = value

    @property
    def size(self) -> int:
        return ctypes.sizeof(self.ctype)

    def cvalue(self) -> Any:
        return self.ctype(self.value)

    def __repr__(self) -> str:
        return f"{self.type}:{self.value}"


def parse_scalar(item: Any, index: int) -> Scalar:
    where = f"scalars[{index}]"
    type_ = None
    value = item
    if isinstance(item, dict):
        type_, value = item.get("type"), item.get("value")
    elif isinstance(item, str):
        if ":" not in item:
            raise TestDefinitionError(f"{where}: {item!r} is not TYPE:VALUE")
        type_, text = item.split(":", 1)
        try:
            value = float(text) if type_ in ("f32", "f64") else int(text, 0)
        except ValueError:
            raise TestDefinitionError(f"{where}: {text!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TestDefinitionError(f"{where}: {item!r} is not a number")
    if type_ is None:
        type_ = "i32" if isinstance(value, int) else "f32"
    if type_ not in _SCALAR_TYPES:
        raise TestDefinitionError(
            "{}: unknown type {!r} (one of {})".format(where, type_, " ".join(_SCALAR_TYPES))
        )
    if type_[0] in "iu":
        if isinstance(value, float):
            if not value.is_integer():
                raise TestDefinitionError(f"{where}: {value} is not an integer")
            value = int(value)
        bits = int(type_[1:])
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if type_[0] == "i" else (0, 2**bits - 1)
        if not lo <= value <= hi:
            raise TestDefinitionError(
                f"{where}: {value} does not fit {type_} (write it as i64:{value} or u64:{value})"
            )
    else:
        value = float(value)
    return Scalar(type_, value)


def launch_dims(value: Any, what: str, limits: tuple[int, int, int]) -> tuple[int, int, int]:
    """(x, y, z) from a list of 1 to 3 positive integers, checked against the hardware limits."""
    if value is None:
        value = [1]
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= 3:
        raise TestDefinitionError(f"{what}: {value!r} is not a list of 1 to 3 integers")
    dims = []
    for i, d in enumerate(value):
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise TestDefinitionError(f"{what}[{i}]: {d!r} is not a positive integer")
        if d > limits[i]:
            raise TestDefinitionError(f"{what}[{i}]: {d} is above the CUDA limit {limits[i]}")
        dims.append(d)
    while len(dims) < 3:
        dims.append(1)
    return dims[0], dims[1], dims[2]


class TestPlan:
    """A kernel test definition, checked, with its vectors read."""

    def __init__(
        self,
        name: str,
        kind: str,
        path: str,
        entry: str,
        inputs: list[tuple[str, NpyArray]],
        expected: list[tuple[str, NpyArray]],
        scalars: list[Scalar],
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        shared_mem: int,
        rtol: float,
        atol: float,
    ) -> None:
        self.name = name
        self.kind = kind
        self.path = path
        self.entry = entry
        self.inputs = inputs
        self.expected = expected
        self.scalars = scalars
        self.grid = grid
        self.block = block
        self.shared_mem = shared_mem
        self.rtol = rtol
        self.atol = atol

    def param_sizes(self) -> list[int]:
        """Bytes of each kernel parameter as this plan passes them."""
        return [8] * (len(self.inputs) + len(self.expected)) + [s.size for s in self.scalars]


def plan_test(kernel: dict[str, Any], read: Callable[[str], bytes]) -> TestPlan:
    """Checks the definition and reads the vectors; raises TestDefinitionError."""
    if not isinstance(kernel, dict):
        raise TestDefinitionError("the kernel is not a JSON object")
    name = str(kernel.get("name") or "kernel")
    kind = kernel.get("kind")
    path = kernel.get("path")
    entry = kernel.get("entry")
    tests = kernel.get("tests")
    if not isinstance(path, str) or not path:
        raise TestDefinitionError(f"kernel {name!r} names no path")
    if not isinstance(entry, str) or not entry:
        raise TestDefinitionError(f"kernel {name!r} names no entry (the kernel function to launch)")
    if not isinstance(tests, dict):
        raise TestDefinitionError(f"kernel {name!r} has no tests")
    ins, exps = tests.get("inputs"), tests.get("expected")
    if not isinstance(ins, list) or not isinstance(exps, list) or not exps:
        raise TestDefinitionError(
            "tests need a list of inputs and a non-empty list of expected outputs"
        )
    inputs = [(p, _read_vector(read, p, f"inputs[{i}]")) for i, p in enumerate(ins)]
    expected = [(p, _read_vector(read, p, f"expected[{i}]")) for i, p in enumerate(exps)]
    for label, (p, arr) in [(f"expected[{i}]", e) for i, e in enumerate(expected)]:
        if arr.size == 0:
            raise TestDefinitionError(f"{label} ({p}) holds no values: nothing to compare")
    raw_scalars = tests.get("scalars") or []
    if not isinstance(raw_scalars, list):
        raise TestDefinitionError(f"scalars: {raw_scalars!r} is not a list")
    scalars = [parse_scalar(s, i) for i, s in enumerate(raw_scalars)]
    grid = launch_dims(tests.get("grid"), "grid", MAX_GRID)
    block = launch_dims(tests.get("block"), "block", MAX_BLOCK)
    if block[0] * block[1] * block[2] > MAX_THREADS_PER_BLOCK:
        raise TestDefinitionError(
            f"block {list(block)} has {block[0] * block[1] * block[2]} threads, above the CUDA limit of {MAX_THREADS_PER_BLOCK} per block"
        )
    shared = tests.get("shared_mem", 0) or 0
    if isinstance(shared, bool) or not isinstance(shared, int) or not 0 <= shared <= MAX_SHARED:
        raise TestDefinitionError(
            f"shared_mem: {shared!r} is not a byte count from 0 to {MAX_SHARED}"
        )
    rtol = _tolerance(tests.get("rtol", 1e-5), "rtol")
    atol = _tolerance(tests.get("atol", 1e-8), "atol")
    return TestPlan(
        name,
        str(kind or ""),
        path,
        entry,
        inputs,
        expected,
        scalars,
        grid,
        block,
        shared,
        rtol,
        atol,
    )


def _tolerance(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise TestDefinitionError(f"{what}: {value!r} is not a number >= 0")
    if math.isinf(value):
        raise TestDefinitionError(f"{what}: infinite tolerance accepts anything")
    return float(value)


def _read_vector(read: Callable[[str], bytes], path: Any, label: str) -> NpyArray:
    if not isinstance(path, str) or not path:
        raise TestDefinitionError(f"{label}: {path!r} is not a path")
    try:
        raw = read(path)
    except (OSError, KeyError) as exc:
        raise TestDefinitionError(f"{label} ({path}): cannot read it: {exc}") from None
    try:
        return read_npy(raw, f"{label} ({path})")
    except NpyError as exc:
        raise TestDefinitionError(str(exc)) from None


# ----------------------------------------------------------------------------- what the image takes

_FATBIN_MAGIC = b"\x50\xed\x55\xba"
_PTX_PARAM = re.compile(
    r"\.param\s+(?:\.align\s+\d+\s+)?\.[busf](8|16|32|64)\b[^,)]*?[A-Za-z_$%][\w$%]*\s*(?:\[(\d+)\])?\s*[,)]"
)


def _elf_sections(data: bytes) -> dict[str, tuple[int, int]]:
    """name -> (offset, size) of a little-endian ELF64's sections; {} when it is not one."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return {}
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    if shoff == 0 or shentsize < 64 or shnum > 65535 or shoff + shnum * shentsize > len(data):
        return {}
    raw = []
    for i in range(shnum):
        name, typ, _f, _a, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        raw.append((name, typ, off, size))
    if not 0 < shstrndx < shnum:
        return {}
    _n, _t, soff, ssize = raw[shstrndx]
    if soff + ssize > len(data):
        return {}
    names = data[soff : soff + ssize]
    out = {}
    for name, typ, off, size in raw:
        if typ == 8 or off + size > len(data) or name >= len(names):
            continue
        end = names.find(b"\0", name)
        out[names[name : end if end >= 0 else len(names)].decode("utf-8", "replace")] = (off, size)
    return out


def cubin_param_sizes(cubin: bytes, entry: str) -> list[int] | None:
    """Parameter sizes of ``entry`` from the cubin's .nv.info.<entry> (EIATTR_KPARAM_INFO)."""
    sec = _elf_sections(cubin).get(".nv.info." + entry)
    if sec is None:
        return None
    raw = cubin[sec[0] : sec[0] + sec[1]]
    found = {}
    pos = 0
    while pos + 4 <= len(raw):
        fmt, attr = raw[pos], raw[pos + 1]
        (val,) = struct.unpack_from("<H", raw, pos + 2)
        pos += 4
        if fmt == 4:
            if attr == 0x17 and val >= 12 and pos + 12 <= len(raw):
                _i, ordinal, _o, bits = struct.unpack_from("<IHHI", raw, pos)
                found[ordinal] = bits >> 18
            pos += val
        elif fmt not in (1, 2, 3):
            return None
    if not found or sorted(found) != list(range(len(found))):
        return [] if not found else None
    return [found[i] for i in range(len(found))]


def ptx_param_sizes(ptx: bytes, entry: str) -> list[int] | None:
    text = ptx.rstrip(b"\0").decode("utf-8", "replace")
    m = re.search(r"\.entry\s+" + re.escape(entry) + r"\s*\(", text)
    if m is None:
        return None
    end = text.find(")", m.end())
    if end < 0:
        return None
    body = text[m.end() : end + 1]
    sizes = []
    for p in _PTX_PARAM.finditer(body):
        size = int(p.group(1)) // 8
        sizes.append(size * int(p.group(2)) if p.group(2) else size)
    if body.count(".param") != len(sizes):
        return None
    return sizes


def fatbin_images(fatbin: bytes) -> list[tuple[int, bytes]]:
    """(kind, payload) of the fatbin's uncompressed entries (1 PTX, 2 ELF)."""
    out: list[tuple[int, bytes]] = []
    if len(fatbin) < 16 or fatbin[:4] != _FATBIN_MAGIC:
        return out
    hsize, fsize = struct.unpack_from("<HQ", fatbin, 6)
    end = min(hsize + fsize, len(fatbin))
    pos = hsize
    while pos + 64 <= end:
        kind, _v, ehsize, psize = struct.unpack_from("<HHIQ", fatbin, pos)
        flags = struct.unpack_from("<Q", fatbin, pos + 40)[0]
        if ehsize < 64 or pos + ehsize + psize > end:
            break
        if not flags & 0x1A000:  # not compressed
            out.append((kind, fatbin[pos + ehsize : pos + ehsize + psize]))
        pos += ehsize + psize
    return out


def image_param_sizes(image: bytes, entry: str) -> list[int] | None:
    """What the image says ``entry`` takes, when it says (None: it cannot be told)."""
    if image[:4] == b"\x7fELF":
        return cubin_param_sizes(image, entry)
    if image[:4] == _FATBIN_MAGIC:
        for kind, payload in fatbin_images(image):
            sizes = (
                cubin_param_sizes(payload, entry) if kind == 2 else ptx_param_sizes(payload, entry)
            )
            if sizes is not None:
                return sizes
        return None
    return ptx_param_sizes(image, entry)


def host_fatbins(data: bytes) -> list[bytes]:
    """The fatbins a host ELF object or shared library embeds (.nv_fatbin, else by magic)."""
    secs = _elf_sections(data)
    regions = [secs[n] for n in (".nv_fatbin", "__nv_relfatbin") if n in secs]
    if not regions:
        regions = [(0, len(data))]
    out = []
    for start, size in regions:
        end = start + size
        pos = data.find(_FATBIN_MAGIC, start, end)
        while pos >= 0:
            if pos % 8 == 0 and pos + 16 <= end:
                hsize, fsize = struct.unpack_from("<HQ", data, pos + 6)
                if 16 <= hsize <= 4096 and pos + hsize + fsize <= end:
                    out.append(data[pos : pos + hsize + fsize])
                    pos = data.find(_FATBIN_MAGIC, pos + hsize + fsize, end)
                    continue
            pos = data.find(_FATBIN_MAGIC, pos + 1, end)
    return out


def module_images(kind: str, data: bytes) -> list[bytes]:
    """What to hand cuModuleLoadData, in the order to try."""
    if kind == "cuda-so" or (
        data[:4] == b"\x7fELF" and len(data) > 20 and data[18:20] != b"\xbe\x00"
    ):
        return host_fatbins(data)
    if kind == "cuda-ptx" or (data[:4] not in (b"\x7fELF", _FATBIN_MAGIC)):
        return [data if data.endswith(b"\0") else data + b"\0"]
    return [data]


# ----------------------------------------------------------------------------- comparison


def compare(got: NpyArray, want: NpyArray, rtol: float, atol: float) -> tuple[int, str]:
    """(mismatches, a one-line account); numpy.allclose semantics, NaN equal to NaN."""
    g, w = got.values(), want.values()
    if len(g) != len(w):
        return max(len(g), len(w)), f"{len(g)} values, expected {len(w)}"
    bad = 0
    first = ""
    max_err = 0.0
    for i, (a, b) in enumerate(zip(g, w)):  # noqa: B905 - equal lengths, checked; strict= is 3.10+
        ok, err = _close(a, b, rtol, atol)
        if err > max_err:
            max_err = err
        if not ok:
            bad += 1
            if not first:
                first = f"first at {_index(i, want.shape)}: got {a!r}, expected {b!r} (tolerance {atol + rtol * abs(b) if _finite(b) else 0.0:.3g})"
    if bad:
        return bad, f"{bad} of {len(w)} values differ; {first}"
    return 0, f"max abs error {max_err:.3g}"


def _finite(x: Any) -> bool:
    return not isinstance(x, float) or math.isfinite(x)


def _close(a: Any, b: Any, rtol: float, atol: float) -> tuple[bool, float]:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b, 0.0 if a == b else 1.0
    fa, fb = float(a), float(b)
    if math.isnan(fa) or math.isnan(fb):
        return math.isnan(fa) and math.isnan(fb), 0.0
    if math.isinf(fa) or math.isinf(fb):
        return fa == fb, 0.0
    err = abs(fa - fb)
    return err <= atol + rtol * abs(fb), err


def _index(flat: int, shape: tuple[int, ...]) -> str:
    if len(shape) <= 1:
        return f"[{flat}]"
    idx = []
    for d in reversed(shape):
        idx.append(flat % d)
        flat //= d
    return "[{}]".format(", ".join(str(i) for i in reversed(idx)))


# ----------------------------------------------------------------------------- the driver


def load_libcuda() -> Any:
    """libcuda.so.1 through ctypes; raises OSError when there is no NVIDIA driver."""
    names = ["libcuda.so.1", "libcuda.so"] if os.name != "nt" else ["nvcuda.dll"]
    first = None
    for n in names:
        try:
            return ctypes.CDLL(n)
        except OSError as exc:
            first = first or exc
    raise OSError(f"cannot load {names[0]}: {first}")


class CudaDriver:
    """The CUDA driver API calls the runner makes, over ``lib`` (libcuda or a test double)."""

    _SIGNATURES: ClassVar[dict[str, list[Any]]] = {
        "cuInit": [ctypes.c_uint],
        "cuDriverGetVersion": [ctypes.c_void_p],
        "cuDeviceGetCount": [ctypes.c_void_p],
        "cuDeviceGet": [ctypes.c_void_p, ctypes.c_int],
        "cuDeviceGetName": [ctypes.c_char_p, ctypes.c_int, ctypes.c_int],
        "cuDeviceGetAttribute": [ctypes.c_void_p, ctypes.c_int, ctypes.c_int],
        "cuDevicePrimaryCtxRetain": [ctypes.c_void_p, ctypes.c_int],
        "cuDevicePrimaryCtxRelease_v2": [ctypes.c_int],
        "cuCtxSetCurrent": [ctypes.c_void_p],
        "cuCtxSynchronize": [],
        "cuModuleLoadData": [ctypes.c_void_p, ctypes.c_char_p],
        "cuModuleUnload": [ctypes.c_void_p],
        "cuModuleGetFunction": [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p],
        "cuFuncSetAttribute": [ctypes.c_void_p, ctypes.c_int, ctypes.c_int],
        "cuMemAlloc_v2": [ctypes.c_void_p, ctypes.c_size_t],
        "cuMemFree_v2": [ctypes.c_uint64],
        "cuMemsetD8_v2": [ctypes.c_uint64, ctypes.c_ubyte, ctypes.c_size_t],
        "cuMemcpyHtoD_v2": [ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t],
        "cuMemcpyDtoH_v2": [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_size_t],
        "cuLaunchKernel": [ctypes.c_void_p]
        + [ctypes.c_uint] * 7
        + [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p],
        "cuStreamQuery": [ctypes.c_void_p],
        "cuGetErrorName": [ctypes.c_int, ctypes.c_void_p],
        "cuGetErrorString": [ctypes.c_int, ctypes.c_void_p],
    }

    def __init__(self, lib: Any) -> None:
        self.lib = lib
        for name, argtypes in self._SIGNATURES.items():
            fn = getattr(lib, name, None)
            if fn is None and name.endswith("_v2"):
                fn = getattr(lib, name[:-3], None)
            if fn is None:
                continue
            try:
                fn.argtypes = argtypes
                fn.restype = ctypes.c_int
            except (AttributeError, TypeError):  # pragma: no cover - a test double
                pass

    def _fn(self, name: str) -> Any:
        fn = getattr(self.lib, name, None)
        if fn is None and name.endswith("_v2"):
            fn = getattr(self.lib, name[:-3], None)
        if fn is None:
            raise CudaError(name, -1, "MISSING", f"libcuda has no {name}")
        return fn

    def call(self, name: str, *args: Any) -> None:
        rc = int(self._fn(name)(*args))
        if rc != CUDA_SUCCESS:
            raise CudaError(name, rc, self.error_name(rc), self.error_string(rc))

    def error_name(self, code: int) -> str:
        return self._text("cuGetErrorName", code) or _NO_DEVICE_CODES.get(code, "CUDA error")

    def error_string(self, code: int) -> str:
        return self._text("cuGetErrorString", code) or f"error {code}"

    def _text(self, fn_name: str, code: int) -> str:
        fn = getattr(self.lib, fn_name, None)
        if fn is None:
            return ""
        out = ctypes.c_char_p()
        try:
            if int(fn(code, ctypes.byref(out))) != CUDA_SUCCESS or not out.value:
                return ""
        except (ctypes.ArgumentError, TypeError):  # pragma: no cover
            return ""
        return out.value.decode("utf-8", "replace")

    # --- the calls, each raising CudaError
    def init(self) -> None:
        self.call("cuInit", 0)

    def device_count(self) -> int:
        n = ctypes.c_int(0)
        self.call("cuDeviceGetCount", ctypes.byref(n))
        return n.value

    def device(self, ordinal: int) -> int:
        d = ctypes.c_int(0)
        self.call("cuDeviceGet", ctypes.byref(d), ordinal)
        return d.value

    def device_name(self, dev: int) -> str:
        buf = ctypes.create_string_buffer(256)
        try:
            self.call("cuDeviceGetName", buf, 256, dev)
        except CudaError:
            return f"device {dev}"
        return buf.value.decode("utf-8", "replace")

    def compute_capability(self, dev: int) -> tuple[int, int]:
        major, minor = ctypes.c_int(0), ctypes.c_int(0)
        self.call(
            "cuDeviceGetAttribute",
            ctypes.byref(major),
            CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
            dev,
        )
        self.call(
            "cuDeviceGetAttribute",
            ctypes.byref(minor),
            CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
            dev,
        )
        return major.value, minor.value

    def retain_primary_context(self, dev: int) -> int:
        ctx = ctypes.c_void_p()
        self.call("cuDevicePrimaryCtxRetain", ctypes.byref(ctx), dev)
        self.call("cuCtxSetCurrent", ctx)
        return ctx.value or 0

    def release_primary_context(self, dev: int) -> None:
        self.call("cuDevicePrimaryCtxRelease_v2", dev)

    def load_module(self, image: bytes) -> int:
        mod = ctypes.c_void_p()
        self.call("cuModuleLoadData", ctypes.byref(mod), image)
        return mod.value or 0

    def unload_module(self, mod: int) -> None:
        self.call("cuModuleUnload", ctypes.c_void_p(mod))

    def function(self, mod: int, name: str) -> int:
        fn = ctypes.c_void_p()
        self.call(
            "cuModuleGetFunction", ctypes.byref(fn), ctypes.c_void_p(mod), name.encode("utf-8")
        )
        return fn.value or 0

    def set_max_dynamic_shared(self, fn: int, nbytes: int) -> None:
        self.call(
            "cuFuncSetAttribute",
            ctypes.c_void_p(fn),
            CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            nbytes,
        )

    def alloc(self, nbytes: int) -> int:
        ptr = ctypes.c_uint64(0)
        self.call("cuMemAlloc_v2", ctypes.byref(ptr), max(nbytes, 1))
        return ptr.value

    def free(self, dptr: int) -> None:
        self.call("cuMemFree_v2", dptr)

    def memset(self, dptr: int, nbytes: int) -> None:
        if nbytes:
            self.call("cuMemsetD8_v2", dptr, 0, nbytes)

    def copy_to_device(self, dptr: int, data: bytes) -> None:
        if data:
            buf = ctypes.create_string_buffer(data, len(data))
            self.call("cuMemcpyHtoD_v2", dptr, buf, len(data))

    def copy_from_device(self, dptr: int, nbytes: int) -> bytes:
        if not nbytes:
            return b""
        buf = ctypes.create_string_buffer(nbytes)
        self.call("cuMemcpyDtoH_v2", buf, dptr, nbytes)
        return buf.raw[:nbytes]

    def launch(
        self,
        fn: int,
        grid: tuple[int, int, int],
        block: tuple[int, int, int],
        shared: int,
        params: Any,
    ) -> None:
        self.call(
            "cuLaunchKernel",
            ctypes.c_void_p(fn),
            grid[0],
            grid[1],
            grid[2],
            block[0],
            block[1],
            block[2],
            shared,
            None,
            params,
            None,
        )

    def done(self) -> bool:
        """Whether the default stream's work has finished (cuStreamQuery)."""
        rc = int(self._fn("cuStreamQuery")(None))
        if rc == CUDA_ERROR_NOT_READY:
            return False
        if rc != CUDA_SUCCESS:
            raise CudaError("cuStreamQuery", rc, self.error_name(rc), self.error_string(rc))
        return True

    def synchronize(self) -> None:
        self.call("cuCtxSynchronize")


def pack_params(pointers: list[int], scalars: list[Scalar]) -> tuple[Any, list[Any]]:
    """The ``void**`` cuLaunchKernel takes: one pointer per argument, to a copy of its value.

    Device pointers come first (inputs, then outputs) as 64-bit CUdeviceptr values, then the
    scalars in their C types. Returns the array and the values it points into (keep them alive).
    """
    values: list[Any] = [ctypes.c_uint64(p) for p in pointers] + [s.cvalue() for s in scalars]
    array_type = ctypes.c_void_p * max(len(values), 1)
    arr = array_type(*[ctypes.addressof(v) for v in values])
    return arr, values


# ----------------------------------------------------------------------------- running


def run_kernel_test(
    kernel: dict[str, Any],
    read: Callable[[str], bytes],
    timeout: float = 60.0,
    *,
    driver: Any = None,
    device: int = 0,
) -> tuple[str, str]:
    """Runs the kernel's test vectors on the device; returns (PASS | FAIL | NOT RUN, reason).

    ``driver`` replaces the CUDA driver (a ``CudaDriver`` over libcuda by default) for tests.
    """
    kind = str(kernel.get("kind") or "") if isinstance(kernel, dict) else ""
    if kind == "ascend-op":
        return (
            NOT_RUN,
            "Ascend kernels: this probe runs CUDA kernels only (AscendCL runner not implemented)",
        )
    if kind and not kind.startswith("cuda-"):
        return FAIL, f"unknown kernel kind {kind!r}"
    try:
        plan = plan_test(kernel, read)
    except TestDefinitionError as exc:
        return FAIL, f"test definition: {exc}"
    try:
        binary = read(plan.path)
    except (OSError, KeyError) as exc:
        return FAIL, f"cannot read the kernel binary {plan.path}: {exc}"
    images = module_images(plan.kind, binary)
    if not images:
        return FAIL, f"{plan.path}: no CUDA fatbin found in this host library"
    sizes = kernel.get("params")  # recorded at build time, when it could read the binary
    if sizes is not None and (
        not isinstance(sizes, list) or not all(isinstance(x, int) and x > 0 for x in sizes)
    ):
        return FAIL, f"test definition: params: {sizes!r} is not a list of byte sizes"
    for image in images if sizes is None else []:
        sizes = image_param_sizes(image, plan.entry)
        if sizes is not None:
            break
    if sizes is not None and sizes != plan.param_sizes():
        return (
            FAIL,
            "{} takes {} parameter(s) of {} bytes; the test passes {} ({} input(s), {} output(s), scalars {})".format(
                plan.entry,
                len(sizes),
                sizes,
                plan.param_sizes(),
                len(plan.inputs),
                len(plan.expected),
                plan.scalars or "none",
            ),
        )
    if driver is None:
        try:
            driver = CudaDriver(load_libcuda())
        except OSError as exc:
            return NOT_RUN, f"no device: {exc} (no NVIDIA driver on this host)"
    try:
        driver.init()
        count = driver.device_count()
    except CudaError as exc:
        return NOT_RUN, f"no device: {exc}"
    if count <= device:
        return NOT_RUN, f"no device: the driver sees {count} CUDA device(s)"
    try:
        return _run(driver, plan, images, timeout, device)
    except CudaError as exc:
        return FAIL, f"{plan.entry}: {exc}"


def _run(
    driver: Any, plan: TestPlan, images: list[bytes], timeout: float, device: int
) -> tuple[str, str]:
    dev = driver.device(device)
    name = driver.device_name(dev)
    major, minor = driver.compute_capability(dev)
    where = f"{name} (sm_{major}{minor})"
    driver.retain_primary_context(dev)
    allocations: list[int] = []
    module = 0
    hung = False
    try:
        fn = 0
        last: CudaError | None = None
        for image in images:
            try:
                module = driver.load_module(image)
            except CudaError as exc:
                last = exc
                continue
            try:
                fn = driver.function(module, plan.entry)
                break
            except CudaError as exc:
                last = exc
                driver.unload_module(module)
                module = 0
        if not fn:
            assert last is not None
            return FAIL, f"on {where}: {last}"
        if plan.shared_mem > STATIC_SHARED_LIMIT:
            driver.set_max_dynamic_shared(fn, plan.shared_mem)
        pointers = []
        for _path, arr in plan.inputs:
            ptr = driver.alloc(arr.nbytes)
            allocations.append(ptr)
            driver.copy_to_device(ptr, arr.data)
            pointers.append(ptr)
        outputs = []
        for _path, arr in plan.expected:
            ptr = driver.alloc(arr.nbytes)
            allocations.append(ptr)
            driver.memset(ptr, arr.nbytes)
            pointers.append(ptr)
            outputs.append(ptr)
        params, keep = pack_params(pointers, plan.scalars)
        start = time.monotonic()
        driver.launch(fn, plan.grid, plan.block, plan.shared_mem, params)
        while not driver.done():
            if time.monotonic() - start > timeout:
                hung = True
                return FAIL, f"{plan.entry} on {where}: did not finish within {timeout:g} s"
            time.sleep(POLL_SECONDS)
        driver.synchronize()
        del keep
        failures = []
        worst = ""
        for i, ((path, want), ptr) in enumerate(zip(plan.expected, outputs)):  # noqa: B905 - one output per expected; 3.8
            got = NpyArray(want.dtype, want.shape, driver.copy_from_device(ptr, want.nbytes))
            bad, text = compare(got, want, plan.rtol, plan.atol)
            if bad:
                failures.append(f"output {i} ({path}): {text}{_dtype_hint(plan, want)}")
            else:
                worst = text
        if failures:
            return FAIL, "{} on {}: {}".format(plan.entry, where, "; ".join(failures))
        total = sum(arr.size for _p, arr in plan.expected)
        return (
            PASS,
            f"{plan.entry} on {where}: {len(plan.expected)} output(s), {total} values within rtol={plan.rtol:g} atol={plan.atol:g} ({worst})",
        )
    finally:
        if not hung:  # a hung kernel keeps its context busy: leave it to process exit
            for ptr in allocations:
                with contextlib.suppress(CudaError):
                    driver.free(ptr)
            if module:
                with contextlib.suppress(CudaError):
                    driver.unload_module(module)
            with contextlib.suppress(CudaError):
                driver.release_primary_context(dev)


def _dtype_hint(plan: TestPlan, want: NpyArray) -> str:
    """A note when the expected array's dtype or size looks unlike the inputs'."""
    if not plan.inputs:
        return ""
    dtypes = sorted({arr.dtype for _p, arr in plan.inputs})
    if want.is_float and all(arr.is_float for _p, arr in plan.inputs) and want.dtype not in dtypes:
        return " (note: expected is {} but the inputs are {}: check the vectors' dtypes)".format(
            want.dtype, "/".join(dtypes)
        )
    return ""
