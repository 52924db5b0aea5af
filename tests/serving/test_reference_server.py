"""The reference server (scripts/serving/minilm_server.py): numpy's all-MiniLM-L6-v2 against
sentence-transformers' own output, its tokenizer, and its OpenAI-compatible HTTP API.

The model runs in a server process of its own (as it does in its container); this process loads
only the tokenizer, so that it stays small for the tests that run after it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from packager.probe.serve import free_port
from tests.support.services import minilm_model_dir, require
from tests.support.serving import SERVING, reference, server_module

Address = tuple[str, int]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return require(minilm_model_dir)


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path) -> Any:
    mod = server_module()
    return mod.WordPiece(json.loads((model_dir / "tokenizer.json").read_text()), 256)


def request(
    address: Address, method: str, path: str, body: bytes | None = None, **headers: str
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(*address, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[Address]:
    """The server process on a free loopback port, once it answers /health with 200."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVING / "minilm_server.py"), "--model", str(model_dir),
         "--host", "127.0.0.1", "--port", str(port)],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    address = ("127.0.0.1", port)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if request(address, "GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "not ready in 120 s"
            time.sleep(0.1)
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def embed(server: Address, texts: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
    status, doc = request(server, "POST", "/v1/embeddings", json.dumps({"input": texts}).encode())
    assert status == 200, doc
    return np.array([d["embedding"] for d in doc["data"]], dtype=np.float64), doc


def test_the_reference_file_says_how_it_was_made(model_dir: Path) -> None:
    ref = reference()
    assert ref["made_with"]["sentence_transformers"] == "6.0.1"
    assert ref["made_with"]["torch"].startswith("2.13.0")
    sha = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    assert ref["model_safetensors_sha256"] == sha, "the reference was made from other weights"
    assert len(ref["items"]) >= 5


def test_embeddings_match_sentence_transformers_to_1e_4_cosine(
    server: Address, tokenizer: Any
) -> None:
    items = reference()["items"]
    vectors, doc = embed(server, [i["text"] for i in items])
    for item, got in zip(items, vectors):
        want = np.array(item["embedding"], dtype=np.float64)
        cos = float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))
        assert cos > 1 - 1e-4, (item["text"][:40], cos)
        assert abs(float(np.linalg.norm(got)) - 1.0) < 1e-5  # normalized, as modules.json says
        assert len(tokenizer.encode(item["text"])) == item["tokens"]
    assert doc["usage"]["prompt_tokens"] == sum(i["tokens"] for i in items)


def test_a_batch_gives_what_one_by_one_gives(server: Address) -> None:
    texts = [i["text"] for i in reference()["items"][:4]]
    together, _ = embed(server, texts)
    for text, row in zip(texts, together):
        alone, _ = embed(server, [text])
        assert np.allclose(alone[0], row, atol=1e-5)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Hello, world!", ["[CLS]", "hello", ",", "world", "!", "[SEP]"]),
        ("Café naïve", ["[CLS]", "cafe", "naive", "[SEP]"]),
        ("北京", ["[CLS]", "北", "京", "[SEP]"]),
        ("tab\tnew\nline", ["[CLS]", "tab", "new", "line", "[SEP]"]),
        ("control\x00\x07chars", ["[CLS]", "control", "##cha", "##rs", "[SEP]"]),
        ("unaffable", ["[CLS]", "una", "##ffa", "##ble", "[SEP]"]),
        ("x" * 101, ["[CLS]", "[UNK]", "[SEP]"]),
        ("", ["[CLS]", "[SEP]"]),
    ],
)
def test_wordpiece(tokenizer: Any, text: str, tokens: list[str]) -> None:
    vocab = {i: t for t, i in tokenizer.vocab.items()}
    assert [vocab[i] for i in tokenizer.encode(text)] == tokens


def test_long_text_is_cut_at_max_seq_length(tokenizer: Any) -> None:
    ids = tokenizer.encode("word " * 1000)
    assert len(ids) == 256 and ids[-1] == tokenizer.sep


# ---------------------------------------------------------------- bad model folders


def broken(tmp_path: Path, model_dir: Path, how: str) -> Path:
    d = tmp_path / how
    # symbolic links, not hard links: a hard link (and its removal) changes the shared files'
    # ctime, which other tests' stat caches read; replace a file, never write into one
    for src in model_dir.rglob("*"):
        if src.is_file():
            dest = d / src.relative_to(model_dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(src)

    def replace(name: str, data: bytes) -> None:
        (d / name).unlink()
        (d / name).write_bytes(data)

    if how == "no-config":
        (d / "config.json").unlink()
    elif how == "config-not-json":
        replace("config.json", b"{")
    elif how == "short":
        replace("model.safetensors", b"\x01\x02")
    elif how == "huge-header":
        replace("model.safetensors", struct.pack("<Q", 1 << 40) + b"{}")
    elif how == "not-bert":
        header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
        replace("model.safetensors", struct.pack("<Q", len(header)) + header + b"\0\0\0\0")
    elif how == "outside":
        header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
        replace("model.safetensors", struct.pack("<Q", len(header)) + header + b"\0\0\0\0")
    elif how == "no-vocab":
        replace("tokenizer.json", b'{"model": {"type": "BPE"}}')
    return d


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("no-config", "config.json"),
        ("config-not-json", "not JSON"),
        ("short", "too short"),
        ("huge-header", "out of range"),
        ("not-bert", "not a BERT encoder"),
        ("outside", "outside the file"),
        ("no-vocab", "not a WordPiece tokenizer"),
    ],
)
def test_a_bad_model_folder_is_one_clear_error(
    tmp_path: Path, model_dir: Path, how: str, words: str
) -> None:
    mod = server_module()
    with pytest.raises(mod.ModelError) as exc:
        mod.Encoder(str(broken(tmp_path, model_dir, how)))
    assert words in str(exc.value)
    assert (model_dir / "config.json").is_file()  # the package's files are untouched


# ---------------------------------------------------------------- HTTP


def test_not_ready_while_loading() -> None:
    mod = server_module()
    httpd = mod.ThreadingHTTPServer(("127.0.0.1", 0), mod.make_handler(mod._State("m")))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        address = ("127.0.0.1", httpd.server_address[1])
        assert request(address, "GET", "/health") == (503, {"status": "loading"})
        status, doc = request(address, "POST", "/v1/embeddings", b'{"input": "x"}')
        assert status == 503 and "loading" in doc["error"]["message"]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_health_and_models(server: Address) -> None:
    assert request(server, "GET", "/health") == (200, {"status": "ok"})
    status, doc = request(server, "GET", "/v1/models")
    assert status == 200 and doc["data"][0]["id"] == "all-MiniLM-L6-v2"


def test_embeddings_in_openai_shape(server: Address) -> None:
    items = reference()["items"][:2]
    body = json.dumps({"model": "m", "input": [i["text"] for i in items]}).encode()
    status, doc = request(server, "POST", "/v1/embeddings", body)
    assert status == 200
    assert doc["object"] == "list" and doc["model"] == "m"
    assert [d["index"] for d in doc["data"]] == [0, 1]
    assert doc["usage"] == {"prompt_tokens": 18, "total_tokens": 18}
    assert all(d["object"] == "embedding" and len(d["embedding"]) == 384 for d in doc["data"])
    status, one = request(server, "POST", "/v1/embeddings", json.dumps({"input": "x"}).encode())
    assert status == 200 and len(one["data"]) == 1 and one["model"] == "all-MiniLM-L6-v2"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("POST", "/v1/embeddings", b"{", 400, "not JSON"),
        ("POST", "/v1/embeddings", b"[]", 400, "JSON object"),
        ("POST", "/v1/embeddings", b'{"input": 42}', 400, "'input'"),
        ("POST", "/v1/embeddings", b'{"input": []}', 400, "'input'"),
        ("POST", "/v1/embeddings", b'{"input": ["a", 1]}', 400, "'input'"),
        ("POST", "/v1/embeddings", json.dumps({"input": ["a"] * 129}).encode(), 400, "at most 128"),
        ("POST", "/v1/embeddings", b'{"input": "a", "encoding_format": "base64"}', 400, "float"),
        ("POST", "/v1/embeddings", b"\xff", 400, "not JSON"),
        ("POST", "/v1/chat/completions", b"{}", 404, "no route"),
        ("GET", "/v1/embeddings", None, 405, "POST"),
        ("GET", "/nope", None, 404, "no route"),
    ],
)
def test_bad_requests_get_openai_errors(
    server: Address, method: str, path: str, body: bytes | None, status: int, words: str
) -> None:
    got, doc = request(server, method, path, body)
    assert got == status
    assert words in doc["error"]["message"]
    assert doc["error"]["type"] in ("invalid_request_error", "not_found_error")


def test_a_body_too_large_is_refused_before_it_is_read(server: Address) -> None:
    got, doc = request(server, "POST", "/v1/embeddings", b"{}", **{"Content-Length": str(2 << 20)})
    assert got == 413 and "at most" in doc["error"]["message"]
