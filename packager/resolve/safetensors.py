"""safetensors headers: 8-byte little-endian length, then JSON {name: {dtype, shape, data_offsets}}.

Only the header is read (bounded); tensor data is never loaded.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from packager.errors import ResolveError

#: the format's own limit on the header (safetensors refuses larger ones)
MAX_HEADER_BYTES = 100 * 1024 * 1024

DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


@dataclass(frozen=True)
class Header:
    tensors: int
    dtypes: dict[str, int]  # dtype -> parameter (element) count
    metadata: dict[str, str]

    @property
    def parameters(self) -> int:
        return sum(self.dtypes.values())


def read_header(path: Path) -> Header:
    """Parse and check a safetensors header; raise ResolveError naming the file and the flaw."""

    def bad(why: str) -> ResolveError:
        return ResolveError(
            f"{path}: not a valid safetensors file: {why}",
            hint="the file may be truncated or of another format; check model.format",
        )

    size = os.stat(path).st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise bad("shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES:
            raise bad(f"header length {n} exceeds the {MAX_HEADER_BYTES} byte limit")
        if 8 + n > size:
            raise bad(f"header length {n} runs past the end of the file ({size} bytes)")
        raw = fh.read(n)
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"header is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise bad("header is not a JSON object")
    data_len = size - 8 - n
    dtypes: dict[str, int] = {}
    tensors = 0
    metadata: dict[str, str] = {}
    for name, info in doc.items():
        if name == "__metadata__":
            if isinstance(info, dict):
                metadata = {str(k): str(v) for k, v in info.items()}
            continue
        if not isinstance(info, dict):
            raise bad(f"tensor {name!r} is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in DTYPE_BYTES:
            raise bad(f"tensor {name!r} has unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise bad(f"tensor {name!r} has an invalid shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_len
        ):
            raise bad(f"tensor {name!r} has data offsets {offsets!r} outside the data")
        count = math.prod(shape)
        if offsets[1] - offsets[0] != count * DTYPE_BYTES[dtype]:
            raise bad(f"tensor {name!r}: {count} x {dtype} does not fill its data range")
        dtypes[dtype] = dtypes.get(dtype, 0) + count
        tensors += 1
    return Header(tensors, dtypes, metadata)


#: the dtypes a declared precision should show in the weights (floating-point parameters)
PRECISION_DTYPES = {
    "fp32": {"F32"},
    "tf32": {"F32"},
    "fp16": {"F16"},
    "bf16": {"BF16"},
    "fp8": {"F8_E4M3", "F8_E5M2"},
    "fp8_e4m3": {"F8_E4M3"},
    "fp8_e5m2": {"F8_E5M2"},
}
FLOAT_DTYPES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}


def dominant_float_dtype(dtypes: dict[str, int]) -> str | None:
    """The floating-point dtype holding most parameters (integer buffers such as position ids
    and quantized packs do not say what precision a model is)."""
    floats = {d: n for d, n in dtypes.items() if d in FLOAT_DTYPES}
    if not floats:
        return None
    return max(sorted(floats), key=lambda d: floats[d])
