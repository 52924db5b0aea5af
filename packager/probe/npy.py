"""Read and write .npy files with the standard library only (Python >= 3.8).

Format (numpy's NEP 1): ``\\x93NUMPY``, a major and a minor version byte, the header length
(u16 for 1.0, u32 for 2.0 and 3.0), then the header, a Python dict literal
``{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`` padded with spaces and a newline
(latin-1 for 1.0 and 2.0, utf-8 for 3.0), then the data.

Accepted: numeric dtypes (float16/32/64, int8..int64, uint8..uint64, bool), little- or
big-endian (big-endian data is swapped to little-endian on reading), C order; Fortran order only
where it is the same bytes (at most one dimension above 1). Refused with ``NpyError``: object
arrays (``|O``: those need pickle, which could run code), structured or string dtypes, bad or
oversized headers, and data whose size does not match the header's shape.

Arrays are kept as raw little-endian C-order bytes (what a device copy needs); ``values()``
decodes them into a flat list of Python numbers.
"""

from __future__ import annotations

import ast
import struct
import sys
from array import array
from typing import Any

MAGIC = b"\x93NUMPY"
MAX_HEADER = 1 << 20

#: dtype name -> (itemsize, struct code, array typecode or "" for float16 / bool)
DTYPES = {
    "float16": (2, "e", ""),
    "float32": (4, "f", "f"),
    "float64": (8, "d", "d"),
    "int8": (1, "b", "b"),
    "int16": (2, "h", "h"),
    "int32": (4, "i", "i"),
    "int64": (8, "q", "q"),
    "uint8": (1, "B", "B"),
    "uint16": (2, "H", "H"),
    "uint32": (4, "I", "I"),
    "uint64": (8, "Q", "Q"),
    "bool": (1, "?", ""),
}
_KIND = {"f": "float", "i": "int", "u": "uint", "b": "bool"}
_SWAP = {2: "H", 4: "I", 8: "Q"}


class NpyError(ValueError):
    """Bytes that are not an .npy array this reader accepts."""


class NpyArray:
    """A C-order array as little-endian bytes, with its dtype name and shape."""

    __slots__ = ("data", "dtype", "shape")

    def __init__(self, dtype: str, shape: tuple[int, ...], data: bytes) -> None:
        if dtype not in DTYPES:
            raise NpyError(f"unsupported dtype {dtype!r}")
        size = 1
        for d in shape:
            if not isinstance(d, int) or isinstance(d, bool) or d < 0:
                raise NpyError(f"bad shape {shape!r}")
            size *= d
        if size * DTYPES[dtype][0] != len(data):
            raise NpyError(
                f"shape {shape} of {dtype} needs {size * DTYPES[dtype][0]} bytes of data, got {len(data)}"
            )
        self.dtype = dtype
        self.shape = tuple(shape)
        self.data = bytes(data)

    @property
    def itemsize(self) -> int:
        return DTYPES[self.dtype][0]

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return len(self.data)

    @property
    def is_float(self) -> bool:
        return self.dtype.startswith("float")

    def values(self) -> list[Any]:
        """The elements, flat, in C order, as Python floats, ints or bools."""
        _size, code, typecode = DTYPES[self.dtype]
        if not typecode:
            return list(struct.unpack(f"<{self.size}{code}", self.data))
        a = array(typecode)
        if a.itemsize != DTYPES[self.dtype][0]:  # pragma: no cover - exotic platforms
            return list(struct.unpack(f"<{self.size}{code}", self.data))
        a.frombytes(self.data)
        if sys.byteorder == "big":  # pragma: no cover - no big-endian CI
            a.byteswap()
        return a.tolist()

    def describe(self) -> str:
        return "{} {}".format(self.dtype, "x".join(str(d) for d in self.shape) or "scalar")

    def __repr__(self) -> str:
        return f"NpyArray({self.dtype!r}, {self.shape!r}, <{len(self.data)} bytes>)"


def parse_descr(descr: object) -> tuple[str, bool]:
    """('float32', big_endian) from a descr such as '<f4', '|u1', '>i8'."""
    if not isinstance(descr, str):
        raise NpyError(f"structured dtype {descr!r} is not supported (only plain numeric arrays)")
    if len(descr) < 2:
        raise NpyError(f"bad dtype descr {descr!r}")
    order, kind, size_text = descr[0], descr[1], descr[2:]
    if order not in "<>|=":
        order, kind, size_text = "=", descr[0], descr[1:]
    if kind == "O":
        raise NpyError("object arrays are refused: they are stored with pickle, which can run code")
    if kind not in _KIND or not size_text.isdigit():
        raise NpyError(f"dtype {descr!r} is not supported (only numeric and bool arrays)")
    size = int(size_text)
    name = "bool" if kind == "b" else f"{_KIND[kind]}{size * 8}"
    if name not in DTYPES or (kind == "b" and size != 1):
        raise NpyError(f"dtype {descr!r} is not supported")
    big = order == ">" or (order == "=" and sys.byteorder == "big")
    return name, big and size > 1


def read_npy(raw: bytes, name: str = "array") -> NpyArray:
    """Parses .npy bytes; raises NpyError naming ``name`` and what was wrong."""
    try:
        return _read(raw)
    except NpyError as exc:
        raise NpyError(f"{name}: {exc}") from None


def _read(raw: bytes) -> NpyArray:
    if len(raw) < 10 or raw[:6] != MAGIC:
        raise NpyError("not an .npy file (no \\x93NUMPY magic)")
    major, minor = raw[6], raw[7]
    if major == 1:
        (hlen,) = struct.unpack_from("<H", raw, 8)
        start = 10
    elif major in (2, 3):
        if len(raw) < 12:
            raise NpyError("truncated .npy header")
        (hlen,) = struct.unpack_from("<I", raw, 8)
        start = 12
    else:
        raise NpyError(f"unsupported .npy format version {major}.{minor}")
    if hlen > MAX_HEADER:
        raise NpyError(f"header of {hlen} bytes is too large")
    if start + hlen > len(raw):
        raise NpyError("truncated .npy header")
    try:
        text = raw[start : start + hlen].decode("utf-8" if major == 3 else "latin-1")
    except UnicodeDecodeError:
        raise NpyError("header is not valid text") from None
    try:
        header = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise NpyError(f"header is not a Python dict literal: {text[:80]!r}") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise NpyError(f"header must have exactly descr, fortran_order and shape: {text[:80]!r}")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise NpyError(f"bad shape {shape!r}")
    if not isinstance(header["fortran_order"], bool):
        raise NpyError("bad fortran_order {!r}".format(header["fortran_order"]))
    dtype, big = parse_descr(header["descr"])
    if header["fortran_order"] and sum(1 for d in shape if d > 1) > 1:
        raise NpyError(
            "Fortran-order arrays are not supported: save with numpy.ascontiguousarray(a)"
        )
    itemsize = DTYPES[dtype][0]
    count = 1
    for d in shape:
        count *= d
    data = raw[start + hlen :]
    if len(data) != count * itemsize:
        raise NpyError(
            f"header says shape {shape} of {dtype} ({count * itemsize} bytes of data) but the file holds {len(data)} bytes"
        )
    if big:
        a = array(_SWAP[itemsize])
        a.frombytes(data)
        a.byteswap()
        data = a.tobytes()
    return NpyArray(dtype, shape, data)


def _descr(dtype: str) -> str:
    size = DTYPES[dtype][0]
    if dtype == "bool":
        return "|b1"
    kind = {"float": "f", "int": "i", "uint": "u"}[dtype.rstrip("0123456789")]
    return "{}{}{}".format("|" if size == 1 else "<", kind, size)


def write_npy(arr: NpyArray) -> bytes:
    """The .npy bytes of ``arr`` (format 1.0, or 2.0 when the header needs it)."""
    shape = arr.shape
    shape_text = (
        f"({shape[0]},)" if len(shape) == 1 else "({})".format(", ".join(str(d) for d in shape))
    )
    header = f"{{'descr': '{_descr(arr.dtype)}', 'fortran_order': False, 'shape': {shape_text}, }}"
    for version, lenfmt in ((1, "<H"), (2, "<I")):
        prefix = 6 + 2 + struct.calcsize(lenfmt)
        total = prefix + len(header) + 1
        pad = (-total) % 64
        hlen = len(header) + pad + 1
        if version == 1 and hlen > 0xFFFF:
            continue
        return (
            MAGIC
            + bytes([version, 0])
            + struct.pack(lenfmt, hlen)
            + (header + " " * pad + "\n").encode("latin-1")
            + arr.data
        )
    raise NpyError("header too large")  # pragma: no cover


def from_values(values: list[Any], dtype: str, shape: tuple[int, ...] | None = None) -> NpyArray:
    """An array of ``dtype`` from a flat list of numbers (shape defaults to 1-D)."""
    if dtype not in DTYPES:
        raise NpyError(f"unsupported dtype {dtype!r}")
    _size, code, _tc = DTYPES[dtype]
    try:
        data = struct.pack(f"<{len(values)}{code}", *values)
    except (struct.error, OverflowError, TypeError) as exc:
        raise NpyError(f"values do not fit {dtype}: {exc}") from None
    return NpyArray(dtype, (len(values),) if shape is None else tuple(shape), data)
