"""packager.cli.entry: `airgap verify` on the short path, everything else through typer."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from packager.cli.entry import ONE_SHOT_GC, VerifyArgs, parse_verify, tune_collector
from tests.support.cli import REPO
from tests.support.golden import build_golden, write_public_key


@pytest.mark.parametrize(
    ("argv", "parsed"),
    [
        (["verify", "b.tar", "--key", "k.pem"], VerifyArgs(Path("b.tar"), None, [Path("k.pem")], False)),
        (["verify", "--key=a", "--key", "b", "x", "--json"],
         VerifyArgs(Path("x"), None, [Path("a"), Path("b")], True)),
        (["verify", "x", "--trust", "p.json"], VerifyArgs(Path("x"), Path("p.json"), [], False)),
        (["verify", "x", "--trust=p", "--key", "k"], VerifyArgs(Path("x"), Path("p"), [Path("k")], False)),
        # everything else is the typer app's: help, usage errors, other options
        (["verify"], None),
        (["verify", "x"], None),  # no key: typer's message
        (["verify", "-h"], None),
        (["verify", "x", "--help"], None),
        (["verify", "x", "--key"], None),
        (["verify", "x", "--key", "--json"], None),
        (["verify", "x", "--key="], None),
        (["verify", "x", "y", "--key", "k"], None),
        (["verify", "x", "--trust", "a", "--trust", "b"], None),
        (["verify", "x", "--keys", "k"], None),
        (["verify", "x", "--key", "k", "--verbose"], None),
        (["inspect", "x"], None),
        ([], None),
    ],
)  # fmt: skip
def test_what_takes_the_short_path(argv: list[str], parsed: VerifyArgs | None) -> None:
    assert parse_verify(argv) == parsed


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from packager.cli.%s import main; main(sys.argv[1:])"
    return subprocess.run(
        [sys.executable, "-c", code % args[0], *args[1:]],
        capture_output=True, text=True, cwd=REPO, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "COLUMNS": "200", "NO_COLOR": "1"},
    )  # fmt: skip


@pytest.mark.parametrize("tamper", [False, True])
def test_the_short_path_answers_as_the_typer_app_does(tmp_path: Path, tamper: bool) -> None:
    (tar,) = build_golden(tmp_path / "out")
    pub = write_public_key(tmp_path)
    if tamper:
        data = bytearray(tar.read_bytes())
        data[-20000] ^= 1  # inside the last blob's data
        tar.write_bytes(bytes(data))
    docs = []
    for module in ("entry", "app"):
        r = _run(module, "verify", str(tar), "--key", str(pub), "--json")
        assert r.returncode == (1 if tamper else 0), r.stderr
        doc = json.loads(r.stdout)
        doc.pop("seconds")
        docs.append(doc)
    assert docs[0] == docs[1]
    short = _run("entry", "verify", str(tar), "--key", str(pub))
    full = _run("app", "verify", str(tar), "--key", str(pub))
    assert short.returncode == full.returncode
    strip = [line.rsplit(" in ", 1)[0] for line in short.stdout.splitlines()]
    assert strip == [line.rsplit(" in ", 1)[0] for line in full.stdout.splitlines()]


def test_an_error_on_the_short_path_is_a_message(tmp_path: Path) -> None:
    r = _run("entry", "verify", str(tmp_path / "none.tar"), "--key", str(tmp_path / "k.pem"))
    assert r.returncode == 2 and "error:" in r.stderr and "Traceback" not in r.stderr
    r = _run("entry", "verify", str(tmp_path / "none.tar"), "--key", "k", "--json")
    assert r.returncode == 2 and json.loads(r.stdout)["ok"] is False


def test_a_json_run_loads_no_rich_and_a_terminal_run_prints_through_it() -> None:
    # rich is a tenth of a scripted install's start-up: only output for people loads it
    probe = (
        "import sys\n"
        "from packager.cli import app, render\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'rich'], 'rich at import'\n"
        "render.stderr.print('x\\x1b[2Jy')\n"
        "assert 'rich.console' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "x\\x1b[2Jy\n"  # made on first use, and still a safe console


@pytest.mark.parametrize(
    ("argv", "rare"),
    [
        (["verify", "b.tar", "--key", "k.pem"], True),
        (["lock", "m.yaml"], True),
        (["install", "b.tar", "--prefix", "p"], True),
        ([], True),
        (["serve", "--prefix", "p"], False),  # runs for days: the default thresholds
    ],
)  # fmt: skip
def test_a_command_that_runs_once_collects_cycles_rarely(argv: list[str], rare: bool) -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        tune_collector(argv)
        assert gc.get_threshold() == (ONE_SHOT_GC if rare else (700, 10, 10))
    finally:
        gc.set_threshold(*before)
