"""Running fuzz cases: in process through the real CLI entry, in worker processes, with a per-case
timeout, a canary between batches and a report of every distinct failure.

A case's outcome is one of:

* ``OK``: exit 0, 1, 2 or 3 with a message, nothing else below;
* ``INTERNAL``: an exception escaped ``packager.cli.app.main`` (workers run with AIRGAP_DEBUG=1 so
  that it does, with its traceback), exit 70, or "Traceback"/"internal error" in the output;
* ``HANG``: no answer within the timeout (the worker is killed and replaced);
* ``ACCEPTED``: a command that judges (verify, audit) said yes to a document whose data changed;
* ``DAMAGED``: a command changed or deleted a file it must not touch (sign's bystanders, a
  read-only command's inputs);
* ``ESCAPE``: a control character reached the terminal unescaped: a byte below 0x20 other than
  newline and tab, DEL, a C1 control (U+0080-U+009F) or a bidi control (U+202A-U+202E,
  U+2066-U+2069) on stdout or stderr;
* ``SILENT``: a non-zero exit with nothing said.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import multiprocessing.connection
import os
import random
import re
import resource
import shutil
import signal
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tests.support.fuzz.targets import KINDS, Context, Fixtures, Prepared, build_fixtures, snapshot

REPO = Path(__file__).resolve().parents[3]
PACKAGE = REPO / "packager"
FAILURES = ("INTERNAL", "HANG", "ACCEPTED", "DAMAGED", "ESCAPE", "SILENT")
#: the environment every case runs in (besides the workspace-dependent entries)
ENVIRONMENT = {
    "AIRGAP_DEBUG": "1",  # main() re-raises: the harness sees the exception and its traceback
    "COLUMNS": "200",
    "NO_COLOR": "1",
    "DOCKER_HOST": "unix:///nonexistent/airgap-fuzz.sock",  # lock --offline asks no engine
}


@dataclass(frozen=True, order=True)
class CaseId:
    kind: str
    seed: int
    number: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.seed}:{self.number}"

    @classmethod
    def parse(cls, text: str) -> CaseId:
        kind, seed, number = text.rsplit(":", 2)
        if kind not in KINDS:
            raise ValueError(f"unknown document kind {kind!r} (known: {', '.join(KINDS)})")
        return cls(kind, int(seed), int(number))

    def rng(self) -> random.Random:
        return random.Random(str(self))


@dataclass
class Outcome:
    case: CaseId
    label: str
    document: str
    status: str
    exit_code: int | None
    seconds: float
    site: str | None = None  # INTERNAL: file:line of the innermost packager frame
    error: str | None = None  # what went wrong, one line
    ops: tuple[str, ...] = ()


# --------------------------------------------------------------------------- one CLI call


@dataclass
class CliRun:
    code: int
    stdout: bytes
    stderr: bytes
    crash: BaseException | None


_probe_crashes: list[BaseException] = []


def _record_probe_crashes() -> None:
    """The probe turns a bug into "internal error" and exit 2 itself; keep its exception so the
    report can name the line (the probe's behaviour is unchanged: the wrapper re-raises)."""
    import packager.probe.cli as probe_cli
    from packager.probe.bundle import BundleError

    original = probe_cli._run
    if getattr(original, "fuzz_wrapped", False):
        return

    def recording(*args: Any, **kwargs: Any) -> int:
        try:
            return original(*args, **kwargs)
        except (probe_cli.UsageError, BundleError, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            _probe_crashes.append(exc)
            raise

    recording.fuzz_wrapped = True  # type: ignore[attr-defined]
    probe_cli._run = recording


def invoke(argv: Sequence[str]) -> CliRun:
    """``airgap ARGV`` through ``packager.cli.app.main``, stdout and stderr captured as the
    bytes a terminal or pipe would get (UTF-8, strict: what cannot be encoded raises)."""
    from packager.cli.app import main

    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="strict", write_through=True)
    crash: BaseException | None = None
    _probe_crashes.clear()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        except Exception as exc:
            crash, code = exc, 70
    for stream in (out, err):
        with contextlib.suppress(Exception):
            stream.flush()
        stream.detach()
    if crash is None and _probe_crashes:
        crash = _probe_crashes[-1]
    return CliRun(code, out_bytes.getvalue(), err_bytes.getvalue(), crash)


def crash_site(exc: BaseException) -> tuple[str, str]:
    """(``packager/x.py:LINE`` of the innermost packager frame, ``Type: message``)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(PACKAGE)]
    frame = ours[-1] if ours else frames[-1] if frames else None
    if frame is None:
        site = "?"
    else:
        path = Path(frame.filename).resolve()
        site = f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:{frame.lineno}"
    message = str(exc).splitlines()[0] if str(exc) else ""
    return site, f"{type(exc).__name__}: {message[:160]}"


_C0 = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")
_WIDE = re.compile("[\x80-\x9f\u202a-\u202e\u2066-\u2069]")


def unsafe_output(name: str, data: bytes) -> str | None:
    """Where ``data`` (a captured stream) holds a control character, described; else None."""
    m = _C0.search(data)
    if m is not None:
        start = data.rfind(b"\n", 0, m.start()) + 1
        context = data[start : m.start()].decode("utf-8", "replace")[-50:]
        return f"{name}: {m.group()!r} after {context!r}"
    text = data.decode("utf-8", "replace")
    t = _WIDE.search(text)
    if t is not None:
        start = text.rfind("\n", 0, t.start()) + 1
        return f"{name}: {t.group()!r} after {text[start : t.start()][-50:]!r}"
    return None


def classify(prep: Prepared, run: CliRun, damage: str | None) -> tuple[str, str | None, str | None]:
    """(status, crash site, detail) of one case."""
    both = run.stdout + run.stderr
    if run.crash is not None:
        site, error = crash_site(run.crash)
        return "INTERNAL", site, error
    if run.code == 70 or b"Traceback (most recent call last)" in both or b"internal error" in both:
        line = next((ln for ln in both.splitlines() if b"internal error" in ln), both[-200:])
        return "INTERNAL", f"exit {run.code}", line.decode("utf-8", "replace")[:200]
    if run.code not in (0, 1, 2, 3):
        return "INTERNAL", f"exit {run.code}", f"exit status {run.code}"
    if damage is not None:
        return "DAMAGED", None, damage
    if prep.judged and prep.changed and run.code == 0:
        return "ACCEPTED", None, f"{prep.label} exit 0 on a changed {prep.document}"
    for name, data in (("stdout", run.stdout), ("stderr", run.stderr)):
        escape = unsafe_output(name, data)
        if escape is not None:
            return "ESCAPE", None, escape
    if run.code != 0 and not both.strip():
        return "SILENT", None, f"exit {run.code} and no output"
    return "OK", None, None


# --------------------------------------------------------------------------- one case


def worker_environment(work: Path) -> dict[str, str]:
    from tests.support.fuzz.targets import PASSPHRASE

    return {
        **ENVIRONMENT,
        "AIRGAP_KEY_PASSPHRASE": PASSPHRASE,
        "AIRGAP_CACHE_DIR": str(work / "cache"),
        "HF_HOME": str(work / "hf"),
        "HOME": str(work / "home"),
    }


def setup_process(work: Path) -> None:
    """A worker's (or a replay's) process: the environment, no core files, bounded memory and
    file sizes (a runaway case fails with MemoryError or EFBIG instead of filling the machine)."""
    work.mkdir(parents=True, exist_ok=True)
    os.environ.update(worker_environment(work))
    os.chdir(work)
    for limit, value in (
        (resource.RLIMIT_AS, 4 * 2**30),
        (resource.RLIMIT_FSIZE, 2**30),
        (resource.RLIMIT_CORE, 0),
    ):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(limit, (value, value))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _record_probe_crashes()


@dataclass
class CaseResult:
    outcome: Outcome
    prep: Prepared
    run: CliRun


def run_case(
    ctx: Context,
    case: CaseId,
    work: Path,
    *,
    keep: bool = False,
    on_start: Callable[[Prepared], None] | None = None,
) -> CaseResult:
    prepare, _ = KINDS[case.kind]
    ws = work / f"case-{case.number}"
    shutil.rmtree(ws, ignore_errors=True)
    ws.mkdir(parents=True)
    try:
        prep = prepare(ctx, case.rng(), case.number, ws)
        if on_start is not None:
            on_start(prep)
        t0 = time.perf_counter()
        run = invoke(prep.argv)
        seconds = time.perf_counter() - t0
        damage = prep.guard(run.code) if prep.guard is not None else None
        status, site, detail = classify(prep, run, damage)
        outcome = Outcome(
            case,
            prep.label,
            prep.document,
            status,
            run.code,
            seconds,
            site,
            detail,
            prep.mutant.ops,
        )
        return CaseResult(outcome, prep, run)
    finally:
        if not keep:
            shutil.rmtree(ws, ignore_errors=True)


def canary(ctx: Context) -> str | None:
    """The untouched inputs still verify, audit and validate; else what broke."""
    fx = ctx.fx
    checks = [
        ["verify", str(fx.tar), "--key", str(fx.pub)],
        ["verify", str(fx.layout), "--key", str(fx.pub)],
        ["verify", str(fx.index), "--key", str(fx.pub)],
        ["verify", str(fx.tar), "--trust", str(fx.policy)],
        ["audit", "--site", str(fx.prefix)],
        ["validate", str(fx.manifests[0])],
    ]
    for argv in checks:
        run = invoke(argv)
        if run.code != 0:
            said = (run.stdout + run.stderr).decode("utf-8", "replace").strip()[-300:]
            return f"canary `airgap {' '.join(argv)}` exit {run.code}: {said}"
    return None


# --------------------------------------------------------------------------- workers


def _worker(conn: Connection, fixtures: Fixtures, work: Path, canary_every: int) -> None:
    setup_process(work)
    ctx = Context(fixtures)
    conn.send(("ready",))
    done = 0
    while True:
        case = conn.recv()
        if case is None:
            return
        try:
            result = run_case(
                ctx, case, work, on_start=lambda p: conn.send(("start", p.label, p.document))
            )
            done += 1
            broken = canary(ctx) if done % canary_every == 0 else None
            conn.send(("done", result.outcome, broken))
        except Exception:
            conn.send(("error", f"case {case}: {traceback.format_exc()}"))
            return


class _Worker:
    def __init__(self, mp: Any, n: int, fixtures: Fixtures, work: Path, canary_every: int) -> None:
        self.conn, child = mp.Pipe()
        self.proc = mp.Process(
            target=_worker, args=(child, fixtures, work / f"w{n}", canary_every), daemon=True
        )
        self.proc.start()
        child.close()
        self.ready = False
        self.case: CaseId | None = None
        self.started = 0.0
        self.label = self.document = "?"

    def send(self, case: CaseId) -> None:
        self.case, self.started = case, time.monotonic()
        self.label = self.document = "?"
        self.conn.send(case)

    def stop(self, *, kill: bool = False) -> None:
        if kill:
            self.proc.kill()
        else:
            with contextlib.suppress(OSError, BrokenPipeError):
                self.conn.send(None)
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


@dataclass
class Summary:
    outcomes: list[Outcome]
    canary_failures: list[str]
    fixtures_damaged: list[str]
    seconds: float
    kinds: list[str] = field(default_factory=list)

    def count(self, status: str, kind: str | None = None) -> int:
        return sum(1 for o in self.outcomes if o.status == status and kind in (None, o.case.kind))

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != "OK"]

    def sites(self, kind: str | None = None) -> dict[str, list[Outcome]]:
        """INTERNAL outcomes by crash site (hangs by command), first case first."""
        out: dict[str, list[Outcome]] = {}
        for o in sorted(self.outcomes, key=lambda o: o.case):
            if o.status in ("INTERNAL", "HANG") and kind in (None, o.case.kind):
                key = o.site or f"hang in {o.label}"
                out.setdefault(key, []).append(o)
        return out

    def groups(self) -> dict[tuple[str, str, str, str], list[Outcome]]:
        """ACCEPTED, DAMAGED, ESCAPE and SILENT outcomes by (status, kind, command, what)."""
        out: dict[tuple[str, str, str, str], list[Outcome]] = {}
        for o in sorted(self.outcomes, key=lambda o: o.case):
            if o.status in ("ACCEPTED", "DAMAGED", "ESCAPE", "SILENT"):
                what = (o.error or "").split(" after ")[0] if o.status == "ESCAPE" else ""
                out.setdefault((o.status, o.case.kind, o.label, what), []).append(o)
        return out

    def table(self) -> str:
        head = f"{'target':<18} {'cases':>6} {'internal':>8} {'hangs':>5} {'accepted':>8} {'damaged':>7} {'escapes':>7} {'silent':>6} {'sites':>5} {'s/case':>7}"
        rows = [head, "-" * len(head)]
        for kind in self.kinds:
            mine = [o for o in self.outcomes if o.case.kind == kind]
            per = sum(o.seconds for o in mine) / len(mine) if mine else 0.0
            rows.append(
                f"{kind:<18} {len(mine):>6} {self.count('INTERNAL', kind):>8} "
                f"{self.count('HANG', kind):>5} {self.count('ACCEPTED', kind):>8} "
                f"{self.count('DAMAGED', kind):>7} {self.count('ESCAPE', kind):>7} "
                f"{self.count('SILENT', kind):>6} {len(self.sites(kind)):>5} {per:>7.3f}"
            )
        rows.append(
            f"{'all':<18} {len(self.outcomes):>6} {self.count('INTERNAL'):>8} "
            f"{self.count('HANG'):>5} {self.count('ACCEPTED'):>8} {self.count('DAMAGED'):>7} "
            f"{self.count('ESCAPE'):>7} {self.count('SILENT'):>6} {len(self.sites()):>5}"
        )
        return "\n".join(rows)

    def report(self, replay: Callable[[CaseId], str]) -> str:
        lines = [self.table(), ""]
        sites = self.sites()
        if sites:
            lines.append(f"distinct crash sites ({len(sites)}):")
            for site, outs in sorted(sites.items(), key=lambda kv: -len(kv[1])):
                first = outs[0]
                where = sorted({f"{o.case.kind}/{o.label}" for o in outs})
                lines.append(f"  {site}  x{len(outs)}  {first.error}")
                lines.append(f"      in: {', '.join(where[:6])}{' ...' if len(where) > 6 else ''}")
                lines.append(f"      ops: {'; '.join(first.ops)[:300]}")
                lines.append(f"      replay: {replay(first.case)}")
        groups = self.groups()
        if groups:
            lines.append(f"other failures ({len(groups)} groups):")
            for (status, kind, label, _), outs in groups.items():
                first = outs[0]
                lines.append(f"  {status} {kind}/{label}: x{len(outs)}  {first.error}")
                lines.append(f"      ops: {'; '.join(first.ops)[:300]}")
                lines.append(f"      replay: {replay(first.case)}")
        for failure in self.canary_failures + self.fixtures_damaged:
            lines.append(f"CANARY: {failure}")
        lines.append(f"{len(self.outcomes)} cases in {self.seconds:.1f} s")
        return "\n".join(lines)


def plan(total: int, seed: int, kinds: Sequence[str]) -> list[CaseId]:
    """``total`` cases over ``kinds`` (by their weights), interleaved so that a short run sees
    every kind."""
    from tests.support.fuzz.targets import shares

    per = shares(total, kinds)
    queues = [[CaseId(k, seed, n) for n in range(per[k])] for k in kinds]
    out: list[CaseId] = []
    while any(queues):
        for q in queues:
            take = max(1, len(q) * 1000 // max(1, total))
            out.extend(q[:take])
            del q[:take]
    return out


def run_fuzz(
    cases: Iterable[CaseId],
    *,
    workers: int = 2,
    timeout: float = 10.0,
    canary_every: int = 100,
    work: Path | None = None,
    progress: Callable[[int, Outcome], None] | None = None,
) -> Summary:
    """Run ``cases`` in ``workers`` processes (spawned: no state shared with the caller)."""
    cases = list(cases)
    kinds = list(dict.fromkeys(c.kind for c in cases))
    root = Path(work) if work is not None else Path(tempfile.mkdtemp(prefix="airgap-fuzz-"))
    t0 = time.monotonic()
    fixtures = build_fixtures(root / "fixtures")
    before = snapshot(fixtures.root)
    mp = multiprocessing.get_context("spawn")
    pending = deque(cases)
    outcomes: list[Outcome] = []
    canary_failures: list[str] = []
    generation = 0

    def spawn() -> _Worker:
        nonlocal generation
        generation += 1
        return _Worker(mp, generation, fixtures, root, canary_every)

    pool = [spawn() for _ in range(max(1, workers))]
    try:
        while pending or any(w.case is not None for w in pool):
            if canary_failures:
                break
            for w in pool:
                if w.ready and w.case is None and pending:
                    w.send(pending.popleft())
            busy = [w for w in pool if w.case is not None]
            waiting = [w for w in pool if not w.ready]
            now = time.monotonic()
            wait = min([w.started + timeout - now for w in busy] + [timeout])
            ready = multiprocessing.connection.wait(
                [w.conn for w in busy + waiting], timeout=max(0.0, wait)
            )
            for i, w in enumerate(pool):
                if w.conn in ready:
                    try:
                        msg = w.conn.recv()
                    except (EOFError, OSError):
                        msg = ("died",)
                    if msg[0] == "ready":
                        w.ready = True
                        continue
                    if msg[0] == "start":
                        w.label, w.document = msg[1], msg[2]
                        continue
                    if msg[0] == "error":
                        raise RuntimeError(f"fuzz harness error: {msg[1]}")
                    case = w.case
                    if case is None:
                        raise RuntimeError("a fuzz worker died before its first case")
                    if msg[0] == "done":
                        outcome, broken = msg[1], msg[2]
                        outcomes.append(outcome)
                        if broken:
                            canary_failures.append(f"after {case}: {broken}")
                        w.case = None
                        if progress is not None:
                            progress(len(outcomes), outcome)
                        continue
                    w.proc.join(5)
                    outcomes.append(
                        Outcome(case, w.label, w.document, "INTERNAL", w.proc.exitcode, 0.0,
                                f"worker died (exit code {w.proc.exitcode})", "the process died")
                    )  # fmt: skip
                    w.stop(kill=True)
                    pool[i] = spawn()
                elif w.case is not None and time.monotonic() >= w.started + timeout:
                    case = w.case
                    w.stop(kill=True)
                    outcomes.append(
                        Outcome(
                            case,
                            w.label,
                            w.document,
                            "HANG",
                            None,
                            timeout,
                            None,
                            f"no answer in {timeout:g} s",
                        )
                    )
                    pool[i] = spawn()
    finally:
        for w in pool:
            w.stop()
    after = snapshot(fixtures.root)
    damaged = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    fixtures_damaged = [f"fixture {k} changed" for k in damaged if not _volatile(k)]
    outcomes.sort(key=lambda o: o.case)
    if work is None:
        shutil.rmtree(root, ignore_errors=True)
    return Summary(outcomes, canary_failures, fixtures_damaged, time.monotonic() - t0, kinds)


def _volatile(rel: str) -> bool:
    """Fixture files the canary itself may touch: the prefix's lock file."""
    return rel.endswith(".airgap.lock")


# --------------------------------------------------------------------------- replaying one case


def _shown(data: bytes, limit: int = 4000) -> str:
    text = data.decode("utf-8", "backslashreplace")
    text = "".join(
        c if c in "\n\t" or (c >= " " and not _WIDE.match(c) and c != "\x7f") else repr(c)[1:-1]
        for c in text
    )
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def replay(case: CaseId, *, work: Path | None = None, keep: bool = False) -> str:
    """Run one case alone, in this process, and describe everything about it."""
    root = Path(work) if work is not None else Path(tempfile.mkdtemp(prefix="airgap-fuzz-replay-"))
    fixtures = build_fixtures(root / "fixtures")
    setup_process(root / "w")
    result = run_case(Context(fixtures), case, root / "w", keep=keep)
    o, run, prep = result.outcome, result.run, result.prep
    lines = [
        f"case {case}: {o.status} (exit {o.exit_code}, {o.seconds:.2f} s)",
        f"document: {prep.document}",
        f"command: airgap {' '.join(prep.argv)}",
        "mutations: " + "; ".join(o.ops),
    ]
    if o.status != "OK":
        lines.append(f"what: {o.site + ' ' if o.site else ''}{o.error}")
    lines += ["--- stdout", _shown(run.stdout), "--- stderr", _shown(run.stderr)]
    if run.crash is not None:
        lines += [
            "--- traceback",
            *traceback.format_exception(type(run.crash), run.crash, run.crash.__traceback__),
        ]
    if keep:
        lines.append(
            f"kept: {root} (the mutated files: {', '.join(map(str, prep.replay_files.values()))})"
        )
    else:
        shutil.rmtree(root, ignore_errors=True)
    return "\n".join(line.rstrip("\n") for line in lines)
