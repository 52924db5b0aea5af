"""The serving check's pure parts (JSON paths, expectations, $(NAME)), one golden request against a
real HTTP server on loopback, and what --serve says when it cannot run."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from packager.probe import serve
from packager.probe.serve import (
    PathError,
    container_env,
    expand,
    expect_json,
    json_equal,
    parse_path,
    referenced,
    run_check,
    run_serve,
)
from tests.probe.util import BUNDLES, MACHINES, probe, validator

DOC = {
    "object": "list",
    "data": [{"embedding": [0.5, -0.25, 1], "index": 0}],
    "model": "all-MiniLM-L6-v2",
    "a b": {"c": True},
    "tags": ["x", 1, None],
}

# ---------------------------------------------------------------- JSON paths


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("$", []),
        ("$.data", ["data"]),
        ("$.data[0].embedding[2]", ["data", 0, "embedding", 2]),
        ("$.data[-1]", ["data", -1]),
        ("$['a b'].c", ["a b", "c"]),
        ('$["a b"]', ["a b"]),
        ("$.x-y_z", ["x-y_z"]),
    ],
)
def test_paths_that_are_read(path: str, steps: list[Any]) -> None:
    assert parse_path(path) == steps


@pytest.mark.parametrize(
    "path",
    ["", "data", "$.", "$..data", "$[*]", "$.data[01]", "$.data[0", "$ .data", "$.data\n", "$['a]"],
)
def test_paths_that_are_refused(path: str) -> None:
    with pytest.raises(PathError):
        parse_path(path)


# ---------------------------------------------------------------- expectations


@pytest.mark.parametrize(
    ("path", "kind", "want", "problem"),
    [
        ("$.object", "equals", "list", None),
        ("$.object", "equals", "dict", '$.object is "list", expected "dict"'),
        ("$.data[0].embedding[2]", "equals", 1.0, None),  # 1 == 1.0
        ("$['a b'].c", "equals", 1, "expected 1"),  # true is not 1
        ("$.data[0]", "equals", {"index": 0, "embedding": [0.5, -0.25, 1]}, None),
        ("$.data[0].embedding[0]", "range", [0.4, 0.6], None),
        ("$.data[0].embedding[0]", "range", [0.5, 0.5], None),
        ("$.data[0].embedding[1]", "range", [0, 1], "outside [0, 1]"),
        ("$.object", "range", [0, 1], "not a number"),
        ("$['a b'].c", "range", [0, 2], "not a number"),
        ("$.data[0].embedding", "length", 3, None),
        ("$.data", "length", 2, "has length 1, expected 2"),
        ("$.model", "length", 16, None),
        ("$.data[0].index", "length", 1, "has no length"),
        ("$.model", "contains", "MiniLM", None),
        ("$.model", "contains", "mpnet", "lacks"),
        ("$.tags", "contains", None, None),
        ("$.tags", "contains", "y", "holds no"),
        ("$.data[0].index", "contains", 0, "contains needs a string or a list"),
        ("$.missing", "equals", 1, "$.missing is not in the answer"),
        ("$.data[5]", "length", 1, "not in the answer"),
        ("$.data[0].embedding.x", "equals", 1, "not in the answer"),
        ("data", "equals", 1, "does not start with $"),
    ],
)
def test_expectations(path: str, kind: str, want: Any, problem: str | None) -> None:
    got = expect_json(DOC, path, kind, want)
    if problem is None:
        assert got is None
    else:
        assert got is not None and problem in got


def test_json_equality_keeps_booleans_apart_from_numbers() -> None:
    assert json_equal(1, 1.0)
    assert not json_equal(True, 1)
    assert not json_equal([1], [True])
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})


# ---------------------------------------------------------------- $(NAME), as Kubernetes does


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("--port=$(PORT)", "--port=8000"),
        ("$(HOST):$(PORT)", "0.0.0.0:8000"),
        ("$$(PORT)", "$(PORT)"),
        ("$(UNKNOWN)", "$(UNKNOWN)"),
        ("cost: $$5 and $5", "cost: $5 and $5"),
        ("$(PORT", "$(PORT"),
    ],
)
def test_expansion(text: str, out: str) -> None:
    assert expand(text, {"HOST": "0.0.0.0", "PORT": "8000"}) == out


def test_referenced_names_in_order() -> None:
    assert referenced(["--a $(X) $(Y)", "$(X) $$(Z)"]) == ["X", "Y"]


def test_container_env_sees_the_address_and_earlier_variables() -> None:
    spec = {
        "env": {"A_URL": "http://$(AIRGAP_SERVE_HOST):$(AIRGAP_SERVE_PORT)", "B": "$(A_URL)/v1"}
    }
    env = container_env(spec, "127.0.0.1", 9000)
    assert env["A_URL"] == "http://127.0.0.1:9000"
    assert env["B"] == "http://127.0.0.1:9000/v1"
    assert env["AIRGAP_SERVE_HOST"] == "127.0.0.1" and env["AIRGAP_SERVE_PORT"] == "9000"


def test_the_address_variables_cannot_be_overridden() -> None:
    env = container_env({"env": {"AIRGAP_SERVE_PORT": "1"}}, "0.0.0.0", 8000)
    assert env["AIRGAP_SERVE_PORT"] == "8000"


# ---------------------------------------------------------------- one check, a real server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(0.3)
        if self.path == "/text":
            self._send(200, b"not json", "text/plain")
            return
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://192.0.2.1/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send(200, json.dumps(DOC).encode())

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n))
        status = 200 if isinstance(body.get("input"), str) else 400
        self._send(
            status, json.dumps({"echo": body, "ctype": self.headers["Content-Type"]}).encode()
        )


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def check(**kw: Any) -> dict[str, Any]:
    return {"name": "c", "method": "GET", "path": "/", "status": 200, "json": [], **kw}


def exp(path: str, kind: str, value: Any) -> dict[str, Any]:
    return {"path": path, "kind": kind, "value": value}


@pytest.mark.parametrize(
    ("spec", "status", "words"),
    [
        (check(json=[exp("$.object", "equals", "list")]), "PASS", "1 JSON expectation(s) met"),
        (check(json=[exp("$.object", "equals", "dict")]), "FAIL", 'expected "dict"'),
        (check(status=201), "FAIL", "HTTP 200, expected 201"),
        (check(path="/slow", latency_ms=50), "FAIL", "over the 50 ms budget"),
        (check(path="/slow", latency_ms=5000), "PASS", "(budget 5000 ms)"),
        (check(path="/text", json=[exp("$.a", "equals", 1)]), "FAIL", "not JSON"),
        (check(path="/redirect", status=302), "PASS", "HTTP 302"),
        (
            check(
                method="POST",
                path="/e",
                body={"input": "hi"},
                json=[
                    exp("$.echo.input", "equals", "hi"),
                    exp("$.ctype", "equals", "application/json"),
                ],
            ),
            "PASS",
            "2 JSON expectation(s)",
        ),
        (check(method="POST", path="/e", body={"input": 1}, status=400), "PASS", "HTTP 400"),
        (
            check(json=[exp("$.x", "equals", 1), exp("$.y", "equals", 1), exp("$.z", "equals", 1)]),
            "FAIL",
            "(+1 more)",
        ),
    ],
)
def test_one_golden_request(base: str, spec: dict[str, Any], status: str, words: str) -> None:
    result = run_check(serve._opener(), base, spec)
    assert result.status == status, result.reason
    assert words in result.reason
    assert result.latency_ms is not None and result.latency_ms >= 0


def test_a_proxy_in_the_environment_is_not_used(base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert run_check(serve._opener(), base, check()).status == "PASS"


def test_nothing_listening_fails_the_check() -> None:
    port = serve.free_port()
    result = run_check(serve._opener(), f"http://127.0.0.1:{port}", check(name="gone"))
    assert result.status == "FAIL" and "no answer" in result.reason


# ---------------------------------------------------------------- when it cannot run

SPEC = {
    "image": "serving",
    "command": [],
    "args": None,
    "env": {},
    "port": 8000,
    "weights": "/weights",
    "readiness": {"path": "/health", "status": 200, "timeout_s": 5},
    "checks": [check()],
    "device_resource": None,
}
IMAGES = [
    {
        "ref": "airgap.local/minilm-server:1",
        "role": "serving",
        "config_digest": "sha256:" + "0" * 64,
    }
]
CPU = {"accelerator": {"vendor": "none"}}


def test_no_serve_section_is_not_run(tmp_path: Path) -> None:
    r = run_serve({}, CPU, IMAGES, str(tmp_path))
    assert r.status == "NOT RUN" and "no serve section" in r.reason


def test_an_image_the_bundle_lacks_is_named(tmp_path: Path) -> None:
    r = run_serve({**SPEC, "image": "sidecar"}, CPU, IMAGES, str(tmp_path))
    assert r.status == "NOT RUN" and "'sidecar'" in r.reason and "minilm-server" in r.reason


def test_without_an_engine_cli_it_is_not_run(tmp_path: Path) -> None:
    r = run_serve(SPEC, CPU, IMAGES, str(tmp_path), engine=str(tmp_path / "no-docker"))
    assert r.status == "NOT RUN" and "is not installed" in r.reason
    assert r.container is None and r.removed is None


def test_an_engine_that_does_not_answer_is_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    r = run_serve(SPEC, CPU, IMAGES, str(tmp_path), engine=docker, timeout=20)
    assert r.status == "NOT RUN" and "does not answer" in r.reason


# ---------------------------------------------------------------- the probe's command line


def installed_prefix(tmp_path: Path, serve_spec: dict[str, Any] | None) -> Path:
    doc = json.loads((BUNDLES / "cuda-h100x8.json").read_text())
    doc["serve"] = serve_spec
    meta = tmp_path / "site" / "bundles" / "b" / "1.0.0" / ".airgap"
    meta.mkdir(parents=True)
    (meta / "bundle.json").write_text(json.dumps(doc))
    os.symlink("1.0.0", tmp_path / "site" / "bundles" / "b" / "current")
    return tmp_path / "site"


def test_serve_needs_an_installed_bundle(capsys: pytest.CaptureFixture[str]) -> None:
    run = probe(capsys, "--bundle", str(BUNDLES / "cuda-h100x8.json"), "--serve", "--json")
    assert run.code == 2 and "--serve needs --installed" in run.err


@pytest.mark.parametrize(
    ("serve_spec", "words"),
    [
        (None, "no serve section"),
        (SPEC, "a recorded machine"),
    ],
)
def test_serve_on_a_recorded_machine_or_without_a_section_is_not_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], serve_spec: Any, words: str
) -> None:
    prefix = installed_prefix(tmp_path, serve_spec)
    run = probe(
        capsys, "--installed", "b", "--prefix", str(prefix), "--serve", "--json",
        "--sysroot", str(MACHINES / "h100x8-driver550"),
    )  # fmt: skip
    assert run.code in (1, 3)
    row = run.check("serve")
    assert row["status"] == "NOT RUN" and words in row["reason"]
    assert run.doc["serve"]["status"] == "NOT RUN"
    assert list(validator().iter_errors(run.doc)) == []


def test_without_serve_the_report_has_no_serve_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = installed_prefix(tmp_path, SPEC)
    run = probe(
        capsys, "--installed", "b", "--prefix", str(prefix), "--json",
        "--sysroot", str(MACHINES / "h100x8-driver550"),
    )  # fmt: skip
    assert "serve" not in run.doc
    assert all(c["id"] != "serve" for c in run.doc["checks"])


def test_the_engine_must_be_docker_or_podman(capsys: pytest.CaptureFixture[str]) -> None:
    run = probe(capsys, "--serve", "--engine", "containerd")
    assert run.code == 2 and "invalid choice" in run.err
