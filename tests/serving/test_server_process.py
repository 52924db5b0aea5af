"""The reference server as a process: it stops on SIGTERM (it is PID 1 in its container), and a
model folder it cannot load ends it with one line."""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from packager.probe.serve import free_port
from tests.support.services import minilm_model_dir, require
from tests.support.serving import SERVING

SCRIPT = SERVING / "minilm_server.py"


def health(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status
    finally:
        conn.close()


def test_the_server_stops_on_sigterm() -> None:
    model_dir = require(minilm_model_dir)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if health(port) == 200:
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


def test_a_model_that_cannot_load_ends_the_server(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", str(tmp_path), "--host", "127.0.0.1", "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 1
    assert "error:" in r.stderr and "config.json" in r.stderr


@pytest.mark.parametrize("args", [["--embed"], ["--port", "x"]])
def test_usage_errors(args: list[str]) -> None:
    r = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and "usage:" in r.stderr
