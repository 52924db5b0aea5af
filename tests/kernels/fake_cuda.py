"""A stand-in for libcuda.so.1 (no GPU here): the driver API functions the runner calls.

Each function takes the same ctypes arguments the real one does (byref'd out-parameters, a
``void**`` of kernel parameters) and records the call. Memory is a dict of bytearrays keyed by
fake device addresses. Modules are inspected with packager.kernels (the real parser) so that
cuModuleGetFunction knows the kernels a real binary defines; launching runs a Python model of the
kernel on the fake memory, reading its arguments through the parameter array as the GPU would.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from typing import Any

from packager.kernels.errors import KernelFormatError
from packager.kernels.inspection import inspect_bytes

Memory = dict[int, bytearray]
#: a kernel model: (memory, args as Python values, grid, block) -> None
Model = Callable[[Memory, list[Any], tuple[int, ...], tuple[int, ...]], None]


def _f32(mem: bytearray, n: int) -> list[float]:
    return list(struct.unpack(f"<{n}f", bytes(mem[: 4 * n])))


def vadd(mem: Memory, args: list[Any], grid: tuple[int, ...], block: tuple[int, ...]) -> None:
    a, b, c, n = args
    threads = grid[0] * block[0]
    count = max(0, min(n, threads, len(mem[a]) // 4, len(mem[b]) // 4, len(mem[c]) // 4))
    x, y = _f32(mem[a], count), _f32(mem[b], count)
    mem[c][: 4 * count] = struct.pack(f"<{count}f", *[p + q for p, q in zip(x, y, strict=True)])


#: the parameter layout the models read: "p" a device pointer, "i" int32, "f" float32
SIGNATURES = {"vadd": "pppi", "scale": "pfi", "_Z4axpyfPKfPfi": "fppi"}
MODELS: dict[str, Model] = {"vadd": vadd}


class FakeLibCuda:
    def __init__(
        self,
        *,
        devices: int = 1,
        cc: tuple[int, int] = (9, 0),
        fail: dict[str, int] | None = None,
        hang: bool = False,
        models: dict[str, Model] | None = None,
    ) -> None:
        self.devices = devices
        self.cc = cc
        self.fail = fail or {}
        self.hang = hang
        self.models = MODELS if models is None else models
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.memory: Memory = {}
        self.freed: list[int] = []
        self.modules: dict[int, tuple[str, ...]] = {}
        self.launches: list[dict[str, Any]] = []
        self._next = 0x7F00_0000_0000

    # --- helpers
    def _rc(self, name: str, *args: Any) -> int:
        self.calls.append((name, args))
        return self.fail.get(name, 0)

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    @staticmethod
    def _out(ref: Any, value: Any) -> None:
        ref._obj.value = value  # a ctypes.byref() argument

    # --- the API
    def cuInit(self, flags: int) -> int:
        return self._rc("cuInit", flags)

    def cuDeviceGetCount(self, pcount: Any) -> int:
        self._out(pcount, self.devices)
        return self._rc("cuDeviceGetCount")

    def cuDeviceGet(self, pdev: Any, ordinal: int) -> int:
        self._out(pdev, ordinal)
        return self._rc("cuDeviceGet", ordinal)

    def cuDeviceGetName(self, buf: Any, size: int, dev: int) -> int:
        ctypes.memmove(buf, b"Fake H200\0", 10)
        return self._rc("cuDeviceGetName", dev)

    def cuDeviceGetAttribute(self, pvalue: Any, attr: int, dev: int) -> int:
        self._out(pvalue, self.cc[0] if attr == 75 else self.cc[1])
        return self._rc("cuDeviceGetAttribute", attr, dev)

    def cuDevicePrimaryCtxRetain(self, pctx: Any, dev: int) -> int:
        self._out(pctx, 0xC0)
        return self._rc("cuDevicePrimaryCtxRetain", dev)

    def cuDevicePrimaryCtxRelease_v2(self, dev: int) -> int:
        return self._rc("cuDevicePrimaryCtxRelease_v2", dev)

    def cuCtxSetCurrent(self, ctx: Any) -> int:
        return self._rc("cuCtxSetCurrent", ctx)

    def cuCtxSynchronize(self) -> int:
        return self._rc("cuCtxSynchronize")

    def cuModuleLoadData(self, pmod: Any, image: bytes) -> int:
        rc = self._rc("cuModuleLoadData", len(image))
        if rc:
            return rc
        try:
            binary = image.startswith((b"\x7fELF", b"\x50\xed\x55\xba"))
            info = inspect_bytes(image if binary else image.rstrip(b"\0"), "image")
        except KernelFormatError:
            return 200  # CUDA_ERROR_INVALID_IMAGE
        handle = 0x1000 + len(self.modules)
        self.modules[handle] = tuple(info.kernels())
        self._out(pmod, handle)
        return 0

    def cuModuleUnload(self, mod: Any) -> int:
        return self._rc("cuModuleUnload", mod.value)

    def cuModuleGetFunction(self, pfn: Any, mod: Any, name: bytes) -> int:
        rc = self._rc("cuModuleGetFunction", name.decode())
        if rc:
            return rc
        if name.decode() not in self.modules.get(mod.value, ()):
            return 500  # CUDA_ERROR_NOT_FOUND
        self._out(pfn, hash(name.decode()) & 0xFFFF_FFFF)
        self._fn_names = {
            **getattr(self, "_fn_names", {}),
            hash(name.decode()) & 0xFFFF_FFFF: name.decode(),
        }
        return 0

    def cuFuncSetAttribute(self, fn: Any, attr: int, value: int) -> int:
        return self._rc("cuFuncSetAttribute", attr, value)

    def cuMemAlloc_v2(self, pptr: Any, size: int) -> int:
        rc = self._rc("cuMemAlloc_v2", size)
        if rc:
            return rc
        addr = self._next
        self._next += (size + 255) // 256 * 256
        self.memory[addr] = bytearray(size)
        self._out(pptr, addr)
        return 0

    def cuMemFree_v2(self, dptr: int) -> int:
        self.freed.append(dptr)
        return self._rc("cuMemFree_v2", dptr)

    def cuMemsetD8_v2(self, dptr: int, value: int, n: int) -> int:
        self.memory[dptr][:n] = bytes([value]) * n
        return self._rc("cuMemsetD8_v2", dptr, value, n)

    def cuMemcpyHtoD_v2(self, dptr: int, src: Any, n: int) -> int:
        self.memory[dptr][:n] = ctypes.string_at(src, n)
        return self._rc("cuMemcpyHtoD_v2", dptr, n)

    def cuMemcpyDtoH_v2(self, dst: Any, dptr: int, n: int) -> int:
        ctypes.memmove(dst, bytes(self.memory[dptr][:n]), n)
        return self._rc("cuMemcpyDtoH_v2", dptr, n)

    def cuLaunchKernel(
        self,
        fn: Any,
        gx: int,
        gy: int,
        gz: int,
        bx: int,
        by: int,
        bz: int,
        shared: int,
        stream: Any,
        params: Any,
        extra: Any,
    ) -> int:
        name = self._fn_names[fn.value]
        sig = SIGNATURES[name]
        args: list[Any] = []
        for i, t in enumerate(sig):
            if i >= len(params):
                return 1  # CUDA_ERROR_INVALID_VALUE: fewer parameters than the kernel takes
            addr = params[i]
            raw = ctypes.string_at(addr, 8 if t == "p" else 4)
            args.append(struct.unpack({"p": "<Q", "i": "<i", "f": "<f"}[t], raw)[0])
        self.launches.append(
            {
                "name": name,
                "grid": (gx, gy, gz),
                "block": (bx, by, bz),
                "shared": shared,
                "args": args,
            }
        )
        rc = self._rc("cuLaunchKernel", name)
        if rc:
            return rc
        model = self.models.get(name)
        if model is not None:
            model(self.memory, args, (gx, gy, gz), (bx, by, bz))
        return 0

    def cuStreamQuery(self, stream: Any) -> int:
        self.calls.append(("cuStreamQuery", ()))
        return 600 if self.hang else self.fail.get("cuStreamQuery", 0)

    def cuGetErrorName(self, code: int, pstr: Any) -> int:
        names = {
            209: b"CUDA_ERROR_NO_BINARY_FOR_GPU",
            2: b"CUDA_ERROR_OUT_OF_MEMORY",
            100: b"CUDA_ERROR_NO_DEVICE",
            700: b"CUDA_ERROR_ILLEGAL_ADDRESS",
            500: b"CUDA_ERROR_NOT_FOUND",
        }
        if code not in names:
            return 1
        self._out(pstr, names[code])
        return 0

    def cuGetErrorString(self, code: int, pstr: Any) -> int:
        self._out(pstr, f"fake error {code}".encode())
        return 0
