#!/usr/bin/env python3
"""A small OpenAI-compatible embeddings server for BERT sentence encoders, numpy only.

It is airgap's reference server: `airgap probe --serve` and `airgap deploy render` are tested
against it on a CPU, in an image built from Debian packages (scripts/serving/build-image.sh).
It runs all-MiniLM-L6-v2 (and any BERT encoder laid out the same way) from the installed files
alone: ``model.safetensors`` (F32, F16 or BF16 tensors), ``config.json`` (the BERT sizes) and
``tokenizer.json`` (the WordPiece vocabulary and the BertNormalizer settings). What it computes:

- tokenization as Hugging Face ``tokenizers`` does it for BERT: BertNormalizer (clean text,
  pad CJK characters, strip accents when lower-casing, lower-case), BertPreTokenizer (split on
  white space and punctuation), WordPiece (greedy longest match, ``##`` continuations, a word of
  more than ``max_input_chars_per_word`` characters or with no match is ``[UNK]``), then
  ``[CLS] ... [SEP]``, truncated to ``max_seq_length`` (sentence_bert_config.json, else 512);
- the BERT encoder forward pass: word + position + token type embeddings, LayerNorm, then per
  layer self-attention with the padding mask, residual + LayerNorm, GELU (erf) feed-forward,
  residual + LayerNorm;
- the pooling that 1_Pooling/config.json names (mean by default; also cls and max), and L2
  normalization when modules.json lists a Normalize module (or no modules.json is there).

HTTP (``http.server``, one thread per connection, one forward pass at a time):

- ``GET /health``: 503 ``{"status": "loading"}`` until the weights are loaded, then 200
  ``{"status": "ok"}``; the port is open from the start, so readiness is observable;
- ``GET /v1/models``: the one model;
- ``POST /v1/embeddings``: ``{"input": str | [str], "model": str?, "encoding_format": "float"?}``
  -> ``{"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [...]}],
  "model": ..., "usage": {"prompt_tokens": n, "total_tokens": n}}``;
- errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}`` with 400, 404,
  405, 413 or 503.

``--embed TEXT ...`` prints the embeddings as JSON lines instead of serving (for tests).
Standard library and numpy only; Python >= 3.9.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import signal
import struct
import sys
import threading
import time
import unicodedata
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

MAX_BODY = 1 << 20  # bytes of one request
MAX_INPUTS = 128  # texts in one request
MAX_TEXT_CHARS = 20000  # characters of one text
BATCH = 16  # texts per forward pass, at most
#: a forward pass holds batch x length^2 attention scores per head: this bounds its memory
BATCH_ATTENTION = 2 * 256 * 256


class ModelError(Exception):
    """The model folder cannot be used: one line that says what and where."""


# ---------------------------------------------------------------------------- safetensors

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file, as float32 (integers keep their type).

    The file is mapped, not read: F32 tensors are views of the mapping (read-only, shared with
    the page cache), so the weights cost their size once."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) != 8:
                raise ModelError(f"{path}: too short for a safetensors file")
            (n,) = struct.unpack("<Q", head)
            if n > min(size - 8, 100 << 20):
                raise ModelError(f"{path}: header length {n} is out of range")
            header = json.loads(fh.read(n).decode("utf-8"))
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size > 8 + n else b""
            data = memoryview(mapped)[8 + n :]
    except OSError as exc:
        raise ModelError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ModelError(f"{path}: the header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ModelError(f"{path}: the header is not a JSON object")
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise ModelError(f"{path}: tensor {name!r} has no dtype/shape/data_offsets") from None
        if not (0 <= start <= end <= len(data)):
            raise ModelError(f"{path}: tensor {name!r} lies outside the file")
        raw = data[start:end]
        if dtype == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dtype in _DTYPES:
            arr = np.frombuffer(raw, dtype=np.dtype(_DTYPES[dtype]).newbyteorder("<"))
        else:
            raise ModelError(f"{path}: tensor {name!r} has unsupported dtype {dtype}")
        count = int(np.prod(shape)) if shape else 1
        if arr.size != count:
            raise ModelError(f"{path}: tensor {name!r} holds {arr.size} values, shape says {count}")
        arr = arr.reshape(shape)
        out[name] = arr.astype(np.float32, copy=False) if arr.dtype.kind == "f" else arr
    return out


# ---------------------------------------------------------------------------- tokenizer


def _is_whitespace(c: str) -> bool:
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def _is_control(c: str) -> bool:
    return c not in "\t\n\r" and unicodedata.category(c).startswith("C")


def _is_punctuation(c: str) -> bool:
    o = ord(c)
    if 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def _is_cjk(c: str) -> bool:
    o = ord(c)
    return (
        0x4E00 <= o <= 0x9FFF
        or 0x3400 <= o <= 0x4DBF
        or 0x20000 <= o <= 0x2A6DF
        or 0x2A700 <= o <= 0x2B73F
        or 0x2B740 <= o <= 0x2B81F
        or 0x2B820 <= o <= 0x2CEAF
        or 0xF900 <= o <= 0xFAFF
        or 0x2F800 <= o <= 0x2FA1F
    )


class WordPiece:
    """BertNormalizer + BertPreTokenizer + WordPiece, from a tokenizer.json."""

    def __init__(self, doc: dict[str, Any], max_length: int) -> None:
        model = doc.get("model") or {}
        if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
            raise ModelError("tokenizer.json: not a WordPiece tokenizer")
        self.vocab: dict[str, int] = model["vocab"]
        self.unk = model.get("unk_token", "[UNK]")
        self.prefix = model.get("continuing_subword_prefix", "##")
        self.max_chars = int(model.get("max_input_chars_per_word", 100))
        norm = doc.get("normalizer") or {}
        self.clean_text = bool(norm.get("clean_text", True))
        self.chinese = bool(norm.get("handle_chinese_chars", True))
        self.lowercase = bool(norm.get("lowercase", True))
        strip = norm.get("strip_accents")
        self.strip_accents = self.lowercase if strip is None else bool(strip)
        for token in ("[CLS]", "[SEP]", self.unk):
            if token not in self.vocab:
                raise ModelError(f"tokenizer.json: the vocabulary has no {token}")
        self.cls, self.sep = self.vocab["[CLS]"], self.vocab["[SEP]"]
        self.unk_id = self.vocab[self.unk]
        self.max_length = max_length

    def normalize(self, text: str) -> str:
        out = []
        for c in text:
            if self.clean_text:
                if c == "\x00" or c == "\ufffd" or _is_control(c):
                    continue
                if _is_whitespace(c):
                    c = " "
            if self.chinese and _is_cjk(c):
                out.append(f" {c} ")
            else:
                out.append(c)
        s = "".join(out)
        if self.strip_accents:
            s = "".join(c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c) != "Mn")
        if self.lowercase:
            s = s.lower()
        return s

    @staticmethod
    def pre_tokenize(text: str) -> list[str]:
        words: list[str] = []
        current: list[str] = []
        for c in text:
            if _is_whitespace(c):
                if current:
                    words.append("".join(current))
                    current = []
            elif _is_punctuation(c):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(c)
            else:
                current.append(c)
        if current:
            words.append("".join(current))
        return words

    def word_ids(self, word: str) -> list[int]:
        if len(word) > self.max_chars:
            return [self.unk_id]
        ids: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end]
                if start > 0:
                    piece = self.prefix + piece
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            ids.append(found)
            start = end
        return ids

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in self.pre_tokenize(self.normalize(text)):
            ids.extend(self.word_ids(word))
        return [self.cls, *ids[: self.max_length - 2], self.sep]


# ---------------------------------------------------------------------------- the encoder


def _erf(x: np.ndarray) -> np.ndarray:
    """erf, Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7)."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0))))).astype(np.float32)
    return out


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


class Encoder:
    """A BERT sentence encoder: tokens -> pooled (and normalized) embeddings."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        config = _read_json(os.path.join(folder, "config.json"))
        try:
            self.hidden = int(config["hidden_size"])
            self.heads = int(config["num_attention_heads"])
            self.layers = int(config["num_hidden_layers"])
            self.eps = float(config.get("layer_norm_eps", 1e-12))
            self.max_positions = int(config.get("max_position_embeddings", 512))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{folder}/config.json: no usable BERT sizes ({exc})") from None
        if config.get("hidden_act", "gelu") != "gelu":
            raise ModelError(f"{folder}/config.json: hidden_act {config.get('hidden_act')!r}")
        st_config = _read_json(os.path.join(folder, "sentence_bert_config.json"), missing={})
        max_length = int(st_config.get("max_seq_length", self.max_positions))
        self.tokenizer = WordPiece(
            _read_json(os.path.join(folder, "tokenizer.json")), min(max_length, self.max_positions)
        )
        pooling = _read_json(os.path.join(folder, "1_Pooling", "config.json"), missing={})
        self.pooling = (
            "cls"
            if pooling.get("pooling_mode_cls_token")
            else "max"
            if pooling.get("pooling_mode_max_tokens")
            else "mean"
        )
        modules = _read_json(os.path.join(folder, "modules.json"), missing=None)
        self.normalize = modules is None or any(
            isinstance(m, dict) and str(m.get("type", "")).endswith("Normalize") for m in modules
        )
        self.w = self._weights(read_safetensors(os.path.join(folder, "model.safetensors")))
        self.dimensions = self.hidden

    def _weights(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in tensors else ""
        need = [
            "embeddings.word_embeddings.weight",
            "embeddings.position_embeddings.weight",
            "embeddings.token_type_embeddings.weight",
            "embeddings.LayerNorm.weight",
            "embeddings.LayerNorm.bias",
        ]
        for i in range(self.layers):
            for part in (
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
                "attention.output.LayerNorm",
                "intermediate.dense",
                "output.dense",
                "output.LayerNorm",
            ):
                need += [f"encoder.layer.{i}.{part}.weight", f"encoder.layer.{i}.{part}.bias"]
        missing = [n for n in need if prefix + n not in tensors]
        if missing:
            raise ModelError(
                f"{self.folder}/model.safetensors: not a BERT encoder ({len(missing)} tensors "
                f"missing, e.g. {missing[0]})"
            )
        # nn.Linear keeps (out, in): the forward pass multiplies by the transposed view, no copy
        w = {n: tensors[prefix + n].astype(np.float32, copy=False) for n in need}
        if w["embeddings.word_embeddings.weight"].shape[1] != self.hidden:
            raise ModelError(f"{self.folder}: embedding width differs from hidden_size")
        return w

    def forward(self, batch: list[list[int]]) -> np.ndarray:
        w = self.w
        n = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), n), dtype=np.int64)
        mask = np.zeros((len(batch), n), dtype=np.float32)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(n)][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        head = self.hidden // self.heads
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(head))
        b, t = x.shape[0], x.shape[1]
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
                out: np.ndarray = v @ w[p + name + ".weight"].T + w[p + name + ".bias"]
                return out

            def split(v: np.ndarray) -> np.ndarray:
                return v.reshape(b, t, self.heads, head).transpose(0, 2, 1, 3)

            q = split(lin(x, "attention.self.query"))
            k = split(lin(x, "attention.self.key"))
            v = split(lin(x, "attention.self.value"))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = scores - scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, t, self.hidden)
            x = _layer_norm(
                lin(ctx, "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            inner = _gelu(lin(x, "intermediate.dense"))
            x = _layer_norm(
                lin(inner, "output.dense") + x,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
                self.eps,
            )
        if self.pooling == "cls":
            pooled = x[:, 0, :]
        elif self.pooling == "max":
            pooled = np.where(mask[:, :, None] > 0, x, np.float32(-1e9)).max(axis=1)
        else:
            pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(
                mask.sum(axis=1, keepdims=True), 1e-9
            )
        if self.normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        result: np.ndarray = pooled.astype(np.float32)
        return result

    def embed(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """(one row per text, the number of tokens)."""
        encoded = [self.tokenizer.encode(t) for t in texts]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        chunk: list[int] = []
        for i in order:  # shortest first: a batch's longest text is the one just added
            longest = len(encoded[i])
            if chunk and (len(chunk) == BATCH or (len(chunk) + 1) * longest**2 > BATCH_ATTENTION):
                self._run(encoded, chunk, out)
                chunk = []
            chunk.append(i)
        if chunk:
            self._run(encoded, chunk, out)
        return out, sum(len(e) for e in encoded)

    def _run(self, encoded: list[list[int]], chunk: list[int], out: np.ndarray) -> None:
        for i, row in zip(chunk, self.forward([encoded[i] for i in chunk])):
            out[i] = row


def _read_json(path: str, missing: Any = ...) -> Any:
    if missing is not ... and not os.path.exists(path):
        return missing
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as exc:
        raise ModelError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ModelError(f"{path}: not JSON ({exc})") from None


# ---------------------------------------------------------------------------- HTTP


class _State:
    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self.encoder: Encoder | None = None
        self.lock = threading.Lock()
        self.started = time.time()


def _error(status: int, message: str, kind: str, param: str | None = None) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message, "type": kind, "param": param, "code": None}}


def _inputs(body: Any) -> list[str] | tuple[int, dict[str, Any]]:
    if not isinstance(body, dict):
        return _error(400, "the request body must be a JSON object", "invalid_request_error")
    value = body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        return _error(
            400, "'input' must be a string or a non-empty list of strings", "invalid_request_error", "input"
        )
    if len(texts) > MAX_INPUTS:
        return _error(400, f"at most {MAX_INPUTS} inputs per request", "invalid_request_error", "input")
    if any(len(t) > MAX_TEXT_CHARS for t in texts):
        return _error(400, f"an input is longer than {MAX_TEXT_CHARS} characters", "invalid_request_error", "input")
    fmt = body.get("encoding_format", "float")
    if fmt != "float":
        return _error(400, "only encoding_format 'float' is supported", "invalid_request_error", "encoding_format")
    return texts


def make_handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "airgap-minilm/1"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

        def _send(self, status: int, doc: dict[str, Any]) -> None:
            data = json.dumps(doc, separators=(",", ":")).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health":
                if state.encoder is None:
                    self._send(503, {"status": "loading"})
                else:
                    self._send(200, {"status": "ok"})
            elif path == "/v1/models":
                self._send(
                    200,
                    {
                        "object": "list",
                        "data": [
                            {
                                "id": state.model_name,
                                "object": "model",
                                "created": int(state.started),
                                "owned_by": "airgap",
                            }
                        ],
                    },
                )
            elif path == "/v1/embeddings":
                self._send(*_error(405, "use POST", "invalid_request_error"))
            else:
                self._send(*_error(404, f"no route {path}", "not_found_error"))

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            try:
                length = int(self.headers.get("Content-Length") or "0")
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                self.close_connection = True
                self._send(*_error(413, f"the body must be at most {MAX_BODY} bytes", "invalid_request_error"))
                return
            raw = self.rfile.read(length)
            if path != "/v1/embeddings":
                self._send(*_error(404, f"no route {path}", "not_found_error"))
                return
            if state.encoder is None:
                self._send(*_error(503, "the model is still loading", "server_error"))
                return
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                self._send(*_error(400, f"the body is not JSON: {exc}", "invalid_request_error"))
                return
            texts = _inputs(body)
            if isinstance(texts, tuple):
                self._send(*texts)
                return
            with state.lock:
                vectors, tokens = state.encoder.embed(texts)
            self._send(
                200,
                {
                    "object": "list",
                    "data": [
                        {"object": "embedding", "index": i, "embedding": [float(x) for x in row]}
                        for i, row in enumerate(vectors)
                    ],
                    "model": body.get("model") or state.model_name,
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                },
            )

    return Handler


def serve(folder: str, host: str, port: int, model_name: str) -> int:
    state = _State(model_name)
    server = ThreadingHTTPServer((host, port), make_handler(state))
    server.daemon_threads = True
    failed: list[str] = []

    def load() -> None:
        t0 = time.monotonic()
        try:
            state.encoder = Encoder(folder)
        except ModelError as exc:
            failed.append(str(exc))
            server.shutdown()
            return
        sys.stderr.write(f"model {model_name} loaded from {folder} in {time.monotonic() - t0:.2f} s\n")
        sys.stderr.flush()

    def stop(signum: int, frame: Any) -> None:  # PID 1 in a container: SIGTERM ends it
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    sys.stderr.write(f"listening on {host}:{port}\n")
    sys.stderr.flush()
    threading.Thread(target=load, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    if failed:
        sys.stderr.write(f"error: {failed[0]}\n")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--model", default=os.environ.get("MODEL_DIR", "/weights"), help="model folder")
    p.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p.add_argument("--model-name", default=os.environ.get("MODEL_NAME", "all-MiniLM-L6-v2"))
    p.add_argument("--embed", nargs="+", metavar="TEXT", help="print embeddings and exit")
    args = p.parse_args(argv)
    if args.embed:
        try:
            vectors, _ = Encoder(args.model).embed(list(args.embed))
        except ModelError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 1
        for row in vectors:
            sys.stdout.write(json.dumps([float(x) for x in row]) + "\n")
        return 0
    return serve(args.model, args.host, args.port, args.model_name)


if __name__ == "__main__":
    sys.exit(main())
