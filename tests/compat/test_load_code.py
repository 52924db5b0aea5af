"""Model files that run code when the model loads: told by content (never by name only), and
never executed: a pickle whose __reduce__ would create a canary file is classified, hashed,
locked and audited, and the canary never appears."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import pytest

from packager.compat.load_code import HEAD_BYTES, check_code_files, code_files, runs_code
from packager.findings import Severity
from tests.support.pickles import evil_pickle


def torch_zip(payload: bytes) -> bytes:
    """The layout torch.save writes since PyTorch 1.6: a zip whose first entry is data.pkl."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/data/0", b"\0" * 64)
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


def legacy_torch(payload: bytes) -> bytes:
    """torch's legacy format: a magic-number pickle, then more pickles and raw storage."""
    return pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + payload + os.urandom(4096)


def safetensors_bytes() -> bytes:
    header = b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'
    return struct.pack("<Q", len(header)) + header + b"\0" * 8


def npz() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("w.npy", b"\x93NUMPY\x01\x00" + b" " * 118)
    return buf.getvalue()


CANARY = Path("/tmp/airgap-canary-never")

CASES = [
    ("legacy pickle .bin", "pytorch_model.bin", evil_pickle(CANARY), "pickle"),
    ("protocol 4 under any name", "weights.data", evil_pickle(CANARY, 4), "pickle"),
    ("protocol 0 .pkl", "x.pkl", evil_pickle(CANARY, 0), "pickle"),
    ("protocol 0 under a data name", "x.data", evil_pickle(CANARY, 0), None),
    ("legacy torch .pt", "model.pt", legacy_torch(evil_pickle(CANARY)), "pickle"),
    ("torch.save zip .pth", "model.pth", torch_zip(evil_pickle(CANARY)), "zip-pickle"),
    ("torch.save zip renamed", "model.safetensors", torch_zip(evil_pickle(CANARY)), "zip-pickle"),
    ("a zip of .npy is data", "arrays.npz", npz(), None),
    ("safetensors", "model.safetensors", safetensors_bytes(), None),
    ("random .bin shard", "part-0001.bin", bytes(range(256)) * 4, None),
    ("python source", "modeling_custom.py", b"import os\n", "python"),
    ("python in a folder", "sub/tokenization.PY", b"", "python"),
    ("auto_map", "config.json", b'{"auto_map": {"AutoModel": "modeling_custom.Model"}}', "auto_map"),
    ("plain config", "config.json", b'{"architectures": ["Bert"]}', None),
    ("config in a folder", "a/config.json", b'{"auto_map": {}}', "auto_map"),
    ("broken config", "config.json", b'{"auto_map": ', None),
    ("auto_map elsewhere is data", "tokenizer_config.json", b'{"auto_map": {}}', None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "data", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_runs_code_by_content(name: str, data: bytes, kind: str | None) -> None:
    assert runs_code(name, data[:HEAD_BYTES], data) == kind
    assert not CANARY.exists()


def test_random_bytes_named_like_pickles_are_not_pickles() -> None:
    rng = __import__("random").Random(7)
    hits = [i for i in range(20000) if runs_code("x.bin", rng.randbytes(64 + i % 700))]
    assert hits == []


def test_a_pickle_longer_than_the_head_is_still_one() -> None:
    big = pickle.dumps([os.urandom(1024) for _ in range(200)], protocol=2)
    assert len(big) > HEAD_BYTES and runs_code("shard.bin", big[:HEAD_BYTES]) == "pickle"


def test_findings_name_each_file_and_digest_and_the_allowed_ones() -> None:
    found = code_files(
        [("a.bin", "a" * 64, 10, "pickle"), ("m.py", "b" * 64, 3, "python"),
         ("w.safetensors", "c" * 64, 9, None)],
        ["b" * 64, "d" * 64],
    )  # fmt: skip
    assert [(f.path, f.allowed) for f in found] == [("a.bin", False), ("m.py", True)]
    got: list[tuple[Severity, str, str, tuple[object, ...], str | None]] = []
    check_code_files(
        lambda *a: got.append(a), found,
        {"b" * 64: ("model", "allow_code", 0), "d" * 64: ("model", "allow_code", 1)}, ("model",),
    )  # fmt: skip
    by_code = {g[1]: g for g in got}
    assert by_code["AG701"][0] is Severity.ERROR and "a" * 64 in by_code["AG701"][2]
    assert "a" * 64 in str(by_code["AG701"][4]) and "allow_code" in str(by_code["AG701"][4])
    assert by_code["AG700"][0] is Severity.INFO and by_code["AG700"][3] == (
        "model",
        "allow_code",
        0,
    )
    assert by_code["AG702"][0] is Severity.WARNING and by_code["AG702"][3] == (
        "model",
        "allow_code",
        1,
    )
