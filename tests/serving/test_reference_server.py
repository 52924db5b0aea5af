"""The reference server (scripts/serving/minilm_server.py): numpy's all-MiniLM-L6-v2 against
sentence-transformers' own output, its tokenizer, and its OpenAI-compatible HTTP API."""

from __future__ import annotations

import http.client
import json
import shutil
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.services import minilm_model_dir, require
from tests.support.serving import reference, server_module


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return require(minilm_model_dir)


@pytest.fixture(scope="module")
def encoder(model_dir: Path) -> Any:
    return server_module().Encoder(str(model_dir))


def test_the_reference_file_says_how_it_was_made(model_dir: Path) -> None:
    import hashlib

    ref = reference()
    assert ref["made_with"]["sentence_transformers"] == "6.0.1"
    assert ref["made_with"]["torch"].startswith("2.13.0")
    sha = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    assert ref["model_safetensors_sha256"] == sha, "the reference was made from other weights"
    assert len(ref["items"]) >= 5


def test_embeddings_match_sentence_transformers_to_1e_4_cosine(encoder: Any) -> None:
    items = reference()["items"]
    vectors, _tokens = encoder.embed([i["text"] for i in items])
    for item, got in zip(items, vectors):
        want = np.array(item["embedding"], dtype=np.float64)
        cos = float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))
        assert cos > 1 - 1e-4, (item["text"][:40], cos)
        assert abs(float(np.linalg.norm(got)) - 1.0) < 1e-5  # normalized, as modules.json says
        assert len(encoder.tokenizer.encode(item["text"])) == item["tokens"]


def test_a_batch_gives_what_one_by_one_gives(encoder: Any) -> None:
    texts = [i["text"] for i in reference()["items"][:4]]
    together, _ = encoder.embed(texts)
    for text, row in zip(texts, together):
        alone, _ = encoder.embed([text])
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
def test_wordpiece(encoder: Any, text: str, tokens: list[str]) -> None:
    vocab = {i: t for t, i in encoder.tokenizer.vocab.items()}
    assert [vocab[i] for i in encoder.tokenizer.encode(text)] == tokens


def test_long_text_is_cut_at_max_seq_length(encoder: Any) -> None:
    ids = encoder.tokenizer.encode("word " * 1000)
    assert len(ids) == 256 and ids[-1] == encoder.tokenizer.sep


# ---------------------------------------------------------------- bad model folders


def broken(tmp_path: Path, model_dir: Path, how: str) -> Path:
    d = tmp_path / how
    shutil.copytree(model_dir, d)
    st = d / "model.safetensors"
    if how == "no-config":
        (d / "config.json").unlink()
    elif how == "config-not-json":
        (d / "config.json").write_text("{")
    elif how == "short":
        st.write_bytes(b"\x01\x02")
    elif how == "huge-header":
        st.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    elif how == "not-bert":
        header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
        st.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0\0\0")
    elif how == "outside":
        header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
        st.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0\0\0")
    elif how == "no-vocab":
        (d / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
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


# ---------------------------------------------------------------- HTTP


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[tuple[str, int]]:
    mod = server_module()
    state = mod._State("all-MiniLM-L6-v2")
    httpd = mod.ThreadingHTTPServer(("127.0.0.1", 0), mod.make_handler(state))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    host, port = "127.0.0.1", httpd.server_address[1]
    try:
        status, body = request(host, port, "GET", "/health")
        assert (status, body) == (503, {"status": "loading"})  # not loaded yet: not ready
        state.encoder = mod.Encoder(str(model_dir))
        yield host, port
    finally:
        httpd.shutdown()
        httpd.server_close()


def request(
    host: str, port: int, method: str, path: str, body: bytes | None = None, **headers: str
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


def test_health_and_models(server: tuple[str, int]) -> None:
    assert request(*server, "GET", "/health") == (200, {"status": "ok"})
    status, doc = request(*server, "GET", "/v1/models")
    assert status == 200 and doc["data"][0]["id"] == "all-MiniLM-L6-v2"


def test_embeddings_in_openai_shape(server: tuple[str, int]) -> None:
    items = reference()["items"][:2]
    body = json.dumps({"model": "m", "input": [i["text"] for i in items]}).encode()
    status, doc = request(*server, "POST", "/v1/embeddings", body)
    assert status == 200
    assert doc["object"] == "list" and doc["model"] == "m"
    assert [d["index"] for d in doc["data"]] == [0, 1]
    assert doc["usage"] == {"prompt_tokens": 18, "total_tokens": 18}
    for d, item in zip(doc["data"], items):
        got, want = np.array(d["embedding"]), np.array(item["embedding"])
        assert got.shape == (384,)
        assert float(got @ want) > 1 - 1e-4
    status, one = request(*server, "POST", "/v1/embeddings", json.dumps({"input": "x"}).encode())
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
    server: tuple[str, int], method: str, path: str, body: bytes | None, status: int, words: str
) -> None:
    got, doc = request(*server, method, path, body)
    assert got == status
    assert words in doc["error"]["message"]
    assert doc["error"]["type"] in ("invalid_request_error", "not_found_error")


def test_a_body_too_large_is_refused_before_it_is_read(server: tuple[str, int]) -> None:
    got, doc = request(*server, "POST", "/v1/embeddings", b"{}", **{"Content-Length": str(2 << 20)})
    assert got == 413 and "at most" in doc["error"]["message"]


def test_the_server_process_starts_answers_and_stops_on_sigterm(
    model_dir: Path, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys

    from packager.probe.serve import free_port

    port = free_port()
    script = Path(server_module().__file__)  # type: ignore[arg-type]
    proc = subprocess.Popen(
        [sys.executable, str(script), "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if request("127.0.0.1", port, "GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "not ready in 60 s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_model_that_cannot_load_ends_the_server(tmp_path: Path, model_dir: Path) -> None:
    import subprocess
    import sys

    script = Path(server_module().__file__)  # type: ignore[arg-type]
    r = subprocess.run(
        [sys.executable, str(script), "--model", str(tmp_path), "--host", "127.0.0.1", "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 1
    assert "error:" in r.stderr and "config.json" in r.stderr
