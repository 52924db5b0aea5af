"""packager.probe.npy against numpy: files numpy writes read back equal, and numpy reads ours."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from packager.probe.npy import NpyArray, NpyError, from_values, read_npy, write_npy

DTYPES = ["<f2", "<f4", "<f8", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "|b1"]


def numpy_bytes(a: np.ndarray, version: tuple[int, int] | None = None) -> bytes:
    buf = io.BytesIO()
    if version is None:
        np.save(buf, a)
    else:
        np.lib.format.write_array(buf, a, version=version)
    return buf.getvalue()


def sample(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(0)
    n = int(np.prod(shape))
    if dtype.endswith("b1"):
        return (rng.integers(0, 2, n) == 1).reshape(shape)
    if "f" in dtype:
        return rng.normal(size=n).astype(dtype).reshape(shape)
    info = np.iinfo(np.dtype(dtype))
    return rng.integers(info.min, info.max, n, dtype=np.dtype(dtype), endpoint=True).reshape(shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 5), (0,), ()])
def test_reads_what_numpy_writes(dtype: str, shape: tuple[int, ...]) -> None:
    a = sample(dtype, shape)
    arr = read_npy(numpy_bytes(a), "a.npy")
    assert arr.shape == shape and arr.dtype == np.dtype(dtype).name
    assert arr.values() == a.ravel().tolist()
    assert arr.data == a.astype(np.dtype(dtype).newbyteorder("<")).tobytes()


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_header_versions(version: tuple[int, int]) -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    arr = read_npy(numpy_bytes(a, version))
    assert arr.shape == (3, 4) and arr.values() == a.ravel().tolist()


@pytest.mark.parametrize("dtype", [">f4", ">i8", ">f2", ">u2"])
def test_big_endian_is_swapped(dtype: str) -> None:
    a = np.arange(6).astype(dtype)
    arr = read_npy(numpy_bytes(a))
    assert arr.values() == a.tolist()
    assert arr.data == a.astype(np.dtype(dtype).newbyteorder("<")).tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_reads_what_we_write(dtype: str) -> None:
    a = sample(dtype, (4, 3))
    arr = NpyArray(np.dtype(dtype).name, a.shape, a.tobytes())
    back = np.load(io.BytesIO(write_npy(arr)))
    assert back.dtype == a.dtype and back.shape == a.shape and (back == a).all()
    assert read_npy(write_npy(arr)).values() == a.ravel().tolist()


def test_header_is_64_byte_aligned_and_1d_shape_has_its_comma() -> None:
    raw = write_npy(from_values([1.0, 2.0], "float32"))
    hlen = int.from_bytes(raw[8:10], "little")
    assert (10 + hlen) % 64 == 0 and b"(2,)" in raw
    assert np.load(io.BytesIO(raw)).tolist() == [1.0, 2.0]


def test_nan_and_inf_round_trip() -> None:
    a = np.array([math.nan, math.inf, -math.inf, -0.0], np.float32)
    v = read_npy(numpy_bytes(a)).values()
    assert math.isnan(v[0]) and v[1:3] == [math.inf, -math.inf] and math.copysign(1, v[3]) == -1


def test_fortran_order() -> None:
    assert read_npy(numpy_bytes(np.asfortranarray(np.arange(5.0)))).values() == [0, 1, 2, 3, 4]
    col = np.asfortranarray(np.arange(4.0).reshape(4, 1))
    assert read_npy(numpy_bytes(col)).shape == (4, 1)  # one dimension > 1: the same bytes
    with pytest.raises(NpyError, match="Fortran-order"):
        read_npy(numpy_bytes(np.asfortranarray(np.arange(6.0).reshape(2, 3))), "f.npy")


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (
            lambda: numpy_bytes(np.array([{"a": 1}, None], dtype=object)),
            "object arrays are refused",
        ),
        (lambda: numpy_bytes(np.zeros(2, dtype=[("x", "<f4"), ("y", "<i4")])), "structured dtype"),
        (lambda: numpy_bytes(np.array(["ab", "c"])), "not supported"),
        (lambda: numpy_bytes(np.zeros(2, np.complex64)), "not supported"),
        (lambda: b"NUMPY" + b"\0" * 20, "no \\\\x93NUMPY magic"),
        (
            lambda: numpy_bytes(np.zeros(3, np.float32))[:-4],
            "header says shape \\(3,\\) of float32 \\(12 bytes of data\\) but the file holds 8",
        ),
        (lambda: numpy_bytes(np.zeros(3, np.float32)) + b"\0" * 4, "the file holds 16"),
        (
            lambda: numpy_bytes(np.zeros(3, np.float32)).replace(b"'shape'", b"'shapo'"),
            "exactly descr",
        ),
        (lambda: numpy_bytes(np.zeros(3, np.float32)).replace(b"(3,)", b"(-3,)"), "bad shape"),
        (
            lambda: numpy_bytes(np.zeros(3, np.float32)).replace(b"{'descr'", b"__import__('os')#"),
            "not a Python dict literal",
        ),
        (lambda: numpy_bytes(np.zeros(3, np.float32))[:9], "truncated|magic"),
        (lambda: b"\x93NUMPY\x09\x00" + b"\0" * 10, "unsupported .npy format version 9.0"),
    ],
)
def test_refused(make: object, says: str) -> None:
    raw = make()  # type: ignore[operator]
    with pytest.raises(NpyError, match=says) as exc:
        read_npy(raw, "x.npy")
    assert str(exc.value).startswith("x.npy: ")


def test_from_values_checks_ranges_and_shapes() -> None:
    with pytest.raises(NpyError, match="do not fit int8"):
        from_values([300], "int8")
    with pytest.raises(NpyError, match="needs 24 bytes"):
        from_values([1.0, 2.0], "float32", (2, 3))
    assert from_values([1, 2, 3, 4], "int16", (2, 2)).describe() == "int16 2x2"
