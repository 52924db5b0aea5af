"""The serving check: does the installed model answer? (``airgap probe --installed NAME --serve``)

Standard library only, Python >= 3.8 (it ships inside every bundle). :func:`run_serve` starts the
bundle's serving container with the engine's CLI (``docker`` or ``podman``), waits until its
readiness path answers, sends the golden requests of bundle.json's ``serve`` section, and stops and
removes the container whatever happens (a check that fails, a timeout, Ctrl-C or SIGTERM).

The container gets:

- the installed weights read-only at ``serve.weights`` (``-v DIR:/weights:ro``);
- the target's device flags, as the smoke test uses them (:func:`packager.probe.smoke.device_flags`:
  ``--gpus all`` or the nvidia runtime; the ascend runtime, or ``/dev/davinci*``,
  ``davinci_manager``, ``devmm_svm``, ``hisi_hdc`` and the driver mounts). Podman takes NVIDIA GPUs
  through CDI (``--device nvidia.com/gpu=all``) when a CDI spec is installed;
- ``serve.env`` plus ``AIRGAP_SERVE_HOST`` and ``AIRGAP_SERVE_PORT``: where the server must listen.
  ``$(NAME)`` in ``command``, ``args`` and env values is replaced by those values (Kubernetes'
  rule; ``$$`` is a literal ``$``; an unknown name stays as written);
- a network that keeps every byte on loopback. ``publish``: the container's port published on
  ``127.0.0.1:<a free port>`` only (the server listens on 0.0.0.0 inside its own network
  namespace). ``host``: for engines that cannot publish (a Docker engine run with
  ``--bridge=none``, which has no ``bridge`` network): the host's network, with
  ``AIRGAP_SERVE_HOST=127.0.0.1`` so that a server that takes ``$(AIRGAP_SERVE_HOST)`` listens on
  loopback only. ``auto`` (the default) picks ``publish`` when the engine has a bridge network.

Requests go to ``http://127.0.0.1:PORT`` through a urllib opener without proxies (an
``HTTP_PROXY`` in the environment is ignored), so no traffic leaves loopback.

Answers: ``PASS`` / ``FAIL`` / ``NOT RUN`` for the server (ready or not, and how long it took) and
one per check (status, JSON expectations, latency against its budget), as :class:`ServeReport`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from .smoke import (
    FAIL,
    NOT_RUN,
    PASS,
    _call,
    _last_line,
    device_flags,
    docker_info,
    find_image,
    run_reference,
)

#: seconds for `ENGINE rm -f` and each `ENGINE inspect` while waiting
CLEANUP_TIMEOUT = 30.0
#: seconds between readiness polls
POLL_INTERVAL = 0.25
#: the longest one check request may take when it has no latency budget
REQUEST_TIMEOUT = 120.0
#: bytes of an answer that are read, at most
MAX_ANSWER = 64 << 20
HOST_VAR = "AIRGAP_SERVE_HOST"
PORT_VAR = "AIRGAP_SERVE_PORT"
DEFAULT_WEIGHTS_MOUNT = "/weights"
NETWORKS = ("auto", "publish", "host")
ENGINES = ("docker", "podman")
_CDI_SPECS = ("/etc/cdi", "/var/run/cdi")

# ---------------------------------------------------------------------------- JSON paths

_STEP = re.compile(
    r"\.([A-Za-z_][A-Za-z0-9_\-]*)|\[(0|-?[1-9][0-9]*)\]|\['([^'\\]*)'\]|\[\"([^\"\\]*)\"\]"
)

Step = Union[str, int]


class PathError(ValueError):
    """A JSON path this module does not read."""


def parse_path(text: str) -> list[Step]:
    """``$.data[0]['a b']`` -> ``["data", 0, "a b"]``; PathError for anything else."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise PathError(f"{text!r} does not start with $")
    steps: list[Step] = []
    pos = 1
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            raise PathError(
                f"{text!r}: cannot read {text[pos:]!r} (steps are .name, [N] or ['name'])"
            )
        name, index, quoted1, quoted2 = m.groups()
        if index is not None:
            steps.append(int(index))
        else:
            steps.append(next(s for s in (name, quoted1, quoted2) if s is not None))
        pos = m.end()
    return steps


_MISSING = object()


def lookup(doc: Any, steps: list[Step]) -> Any:
    """The value at ``steps`` in ``doc``, or ``_MISSING``."""
    node = doc
    for step in steps:
        if isinstance(step, int):
            if not isinstance(node, list) or not -len(node) <= step < len(node):
                return _MISSING
            node = node[step]
        else:
            if not isinstance(node, dict) or step not in node:
                return _MISSING
            node = node[step]
    return node


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _positive(v: Any) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
        return float(v)
    return None


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1."""
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if type(a) is not type(b) and not (_is_number(a) and _is_number(b)):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def expect_json(doc: Any, path: str, kind: str, want: Any) -> str | None:
    """None when the answer meets the expectation, else why not (one line)."""
    try:
        steps = parse_path(path)
    except PathError as exc:
        return str(exc)
    got = lookup(doc, steps)
    if got is _MISSING:
        return f"{path} is not in the answer"
    if kind == "equals":
        return (
            None if json_equal(got, want) else f"{path} is {_short(got)}, expected {_short(want)}"
        )
    if kind == "range":
        lo, hi = want
        if not _is_number(got):
            return f"{path} is {_short(got)}, not a number"
        return None if lo <= got <= hi else f"{path} is {got!r}, outside [{lo}, {hi}]"
    if kind == "length":
        if not isinstance(got, (list, str, dict)):
            return f"{path} is {_short(got)}, which has no length"
        return None if len(got) == want else f"{path} has length {len(got)}, expected {want}"
    if kind == "contains":
        if isinstance(got, str) and isinstance(want, str):
            return None if want in got else f"{path} is {_short(got)}, which lacks {_short(want)}"
        if isinstance(got, list):
            ok = any(json_equal(x, want) for x in got)
            return None if ok else f"{path} holds no {_short(want)}"
        return f"{path} is {_short(got)}: contains needs a string or a list"
    return f"unknown expectation {kind!r}"


# ---------------------------------------------------------------------------- $(VAR)

_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(text: str, values: dict[str, str]) -> str:
    """Kubernetes' ``$(NAME)`` expansion: known names replaced, ``$$`` -> ``$``, others kept."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return values[name] if name in values else m.group(0)

    return _VAR.sub(sub, text)


def referenced(texts: list[str]) -> list[str]:
    """The ``$(NAME)`` names used in ``texts``."""
    out: list[str] = []
    for t in texts:
        for m in _VAR.finditer(t):
            if m.group(1) and m.group(1) not in out:
                out.append(m.group(1))
    return out


def container_env(spec: dict[str, Any], host: str, port: int) -> dict[str, str]:
    """The container's environment: serve.env expanded, with AIRGAP_SERVE_HOST/PORT."""
    base = {HOST_VAR: host, PORT_VAR: str(port)}
    env: dict[str, str] = {}
    raw = spec.get("env") or {}
    for key in sorted(raw):
        # as Kubernetes does: a value sees the variables defined before it, and the two given
        env[key] = expand(str(raw[key]), {**base, **env})
    env.update(base)
    return env


# ---------------------------------------------------------------------------- results


@dataclass
class CheckResult:
    name: str
    status: str
    reason: str
    http_status: int | None = None
    latency_ms: float | None = None
    budget_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "http_status": self.http_status,
            "latency_ms": round(self.latency_ms, 1) if self.latency_ms is not None else None,
            "budget_ms": self.budget_ms,
        }


@dataclass
class ServeReport:
    status: str
    reason: str
    engine: str | None = None
    image: str | None = None
    network: str | None = None
    url: str | None = None
    container: str | None = None
    time_to_ready_s: float | None = None
    checks: list[CheckResult] = field(default_factory=list)
    removed: bool | None = None
    logs: str | None = None  # the container's last lines, when it failed

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "engine": self.engine,
            "image": self.image,
            "network": self.network,
            "url": self.url,
            "container": self.container,
            "time_to_ready_s": (
                round(self.time_to_ready_s, 3) if self.time_to_ready_s is not None else None
            ),
            "checks": [c.to_json() for c in self.checks],
            "removed": self.removed,
            "logs": self.logs,
        }


# ---------------------------------------------------------------------------- HTTP


def _opener() -> urllib.request.OpenerDirector:
    """urllib without proxies and without following redirects off loopback."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())


def http(
    opener: urllib.request.OpenerDirector,
    method: str,
    url: str,
    body: bytes | None,
    timeout: float,
) -> tuple[int | None, bytes, str]:
    """(status, body, error): status None when nothing answered."""
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    req.add_header("Accept", "application/json")
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.read(MAX_ANSWER), ""
    except urllib.error.HTTPError as exc:
        try:
            data = exc.read(MAX_ANSWER)
        except OSError:
            data = b""
        return exc.code, data, ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, b"", str(reason) or type(exc).__name__
    except Exception as exc:  # http.client's RemoteDisconnected, IncompleteRead, ...
        return None, b"", f"{type(exc).__name__}: {exc}"


def run_check(
    opener: urllib.request.OpenerDirector, base: str, check: dict[str, Any]
) -> CheckResult:
    """One golden request against ``base`` (``http://127.0.0.1:PORT``)."""
    name = str(check.get("name") or "?")
    method = str(check.get("method") or "GET")
    raw_budget = check.get("latency_ms")
    positive = _positive(raw_budget)
    budget = int(positive) if positive is not None else None
    body = None
    if check.get("body") is not None or check.get("has_body"):
        body = json.dumps(check.get("body")).encode("utf-8")
    timeout = max(REQUEST_TIMEOUT, 3 * budget / 1000.0) if budget else REQUEST_TIMEOUT
    started = time.monotonic()
    status, data, err = http(opener, method, base + str(check.get("path") or "/"), body, timeout)
    latency = (time.monotonic() - started) * 1000.0
    where = f"{method} {check.get('path')}"
    if status is None:
        return CheckResult(name, FAIL, f"{where}: no answer ({err})", None, latency, budget)
    problems: list[str] = []
    want_status = check.get("status", 200)
    if status != want_status:
        problems.append(f"HTTP {status}, expected {want_status}")
    expectations = check.get("json") or []
    if expectations:
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            doc = _MISSING
            problems.append(f"the answer is not JSON ({len(data)} bytes)")
        if doc is not _MISSING:
            for e in expectations:
                why = expect_json(doc, str(e.get("path")), str(e.get("kind")), e.get("value"))
                if why is not None:
                    problems.append(why)
    if budget is not None and latency > budget:
        problems.append(f"took {latency:.0f} ms, over the {budget} ms budget")
    timing = f"{latency:.0f} ms" + (f" (budget {budget} ms)" if budget is not None else "")
    if problems:
        more = f" (+{len(problems) - 2} more)" if len(problems) > 2 else ""
        return CheckResult(
            name,
            FAIL,
            f"{where}: {'; '.join(problems[:2])}{more}; {timing}",
            status,
            latency,
            budget,
        )
    said = f", {len(expectations)} JSON expectation(s) met" if expectations else ""
    return CheckResult(
        name, PASS, f"{where}: HTTP {status}{said} in {timing}", status, latency, budget
    )


# ---------------------------------------------------------------------------- the engine


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _runtimes(info: dict[str, Any]) -> dict[str, Any]:
    rts = info.get("Runtimes")
    return rts if isinstance(rts, dict) else {}


def _has_bridge(exe: str, engine: str, timeout: float) -> bool:
    if engine == "podman":
        return True  # rootful (CNI / netavark) and rootless (slirp4netns / pasta) both publish
    code, _out, _err = _call([exe, "network", "inspect", "bridge"], timeout)
    return code == 0


def _devices(
    engine: str, target: dict[str, Any], info: dict[str, Any], dev: str
) -> tuple[list[str] | None, str]:
    vendor = ((target.get("accelerator") or {}) if isinstance(target, dict) else {}).get("vendor")
    if engine == "podman" and vendor == "nvidia":
        flags, how = device_flags(target, {}, dev=dev, which=lambda _name: None)
        if flags is None and "toolkit" not in how:
            return None, how  # no GPU at all
        if any(
            os.path.isdir(d) and any(n.startswith("nvidia") for n in os.listdir(d))
            for d in _CDI_SPECS
        ):
            return ["--device", "nvidia.com/gpu=all"], "CDI nvidia.com/gpu=all"
        return None, (
            "no NVIDIA CDI spec for podman (/etc/cdi/nvidia.yaml): "
            "run `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`"
        )
    return device_flags(target, _runtimes(info) if engine == "docker" else {}, dev=dev)


class _Terminated(KeyboardInterrupt):
    """SIGTERM while the container runs: unwind (as Ctrl-C does) so that it is removed."""


def run_serve(
    spec: dict[str, Any],
    target: dict[str, Any],
    images: list[Any],
    weights_dir: str | None,
    *,
    engine: str = "docker",
    network: str = "auto",
    timeout: float = 60.0,
    dev: str = "/dev",
    progress: Callable[[str], None] | None = None,
) -> ServeReport:
    """Start the server, wait for readiness, run the checks, remove the container.

    ``spec``: bundle.json's ``serve``; ``target`` and ``images``: its ``target`` and ``images``;
    ``weights_dir``: the installed weights (mounted read-only). ``engine``: docker or podman (a
    path to the CLI works too). ``timeout``: bounds each engine command. ``progress``: called with
    a line for each step (the CLI prints them on stderr).
    """
    say = progress or (lambda _line: None)
    if not isinstance(spec, dict) or not spec:
        return ServeReport(NOT_RUN, "the bundle has no serve section")
    name_of_engine = os.path.basename(engine)
    kind = "podman" if "podman" in name_of_engine else "docker"
    report = ServeReport(NOT_RUN, "", engine=kind)
    wanted = str(spec.get("image") or "serving")
    image = find_image(wanted, images)
    if image is None:
        refs = ", ".join(str(i.get("ref")) for i in images if isinstance(i, dict)) or "none"
        report.reason = f"the serve image {wanted!r} is neither a role nor a reference of the bundle's images ({refs})"
        return report
    ref = run_reference(image)
    report.image = ref
    exe = engine if os.sep in engine else shutil.which(engine)
    if exe is None or not os.access(exe, os.X_OK):
        report.reason = f"no container engine: the {engine} CLI is not installed"
        return report
    info, err = docker_info(exe, timeout)
    if info is None:
        report.reason = f"the {kind} engine does not answer: {err}"
        return report
    code, _out, errtext = _call([exe, "image", "inspect", "--format", "{{.Id}}", ref], timeout)
    if code != 0:
        why = _last_line(errtext) or f"exit code {code}"
        load = "airgap install --docker" if kind == "docker" else "skopeo copy or podman load"
        report.reason = f"image {ref} is not in the {kind} engine ({why}): load it first ({load})"
        return report
    flags, device = _devices(kind, target, info, dev)
    if flags is None:
        report.reason = f"{device}; the server needs the device"
        return report
    if weights_dir is None or not os.path.isdir(weights_dir):
        report.reason = f"the installed weights folder {weights_dir} is missing"
        return report
    port = spec.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        report.status, report.reason = FAIL, "serve.port is not a TCP port"
        return report
    mode = (
        network if network != "auto" else ("publish" if _has_bridge(exe, kind, timeout) else "host")
    )
    command = [str(c) for c in spec.get("command") or []]
    args = spec.get("args")
    args = [str(a) for a in args] if isinstance(args, list) else None
    texts = command + (args or []) + [str(v) for v in (spec.get("env") or {}).values()]
    if mode == "publish":
        host_port, listen_host, listen_port = free_port(), "0.0.0.0", port
        argv_net = ["-p", f"127.0.0.1:{host_port}:{port}"]
        report.network = f"published on 127.0.0.1:{host_port} -> container port {port}"
    else:
        listen_host = "127.0.0.1"
        listen_port = free_port() if PORT_VAR in referenced(texts) else port
        if not port_free(listen_port):
            report.reason = (
                f"port {listen_port} is in use on this host (the host network is shared)"
            )
            return report
        host_port = listen_port
        argv_net = ["--network", "host"]
        report.network = f"host network, 127.0.0.1:{listen_port}"
        if HOST_VAR not in referenced(texts):
            report.network += " (the server chooses its own address: say $(AIRGAP_SERVE_HOST) in serve.args to keep it on loopback)"
    env = container_env(spec, listen_host, listen_port)
    values = dict(env)
    mount = str(spec.get("weights") or DEFAULT_WEIGHTS_MOUNT)
    name = f"airgap-serve-{uuid.uuid4().hex[:12]}"
    report.container = name
    argv = [exe, "run", "-d", "--name", name, "--label", "dev.airgap.probe=serve"]
    argv += argv_net + flags
    argv += ["-v", f"{os.path.abspath(weights_dir)}:{mount}:ro"]
    for key in sorted(env):
        argv += ["-e", f"{key}={env[key]}"]
    if command:
        argv += ["--entrypoint", expand(command[0], values)]
    argv.append(ref)
    argv += [expand(c, values) for c in command[1:]]
    if args is not None:
        argv += [expand(a, values) for a in args]
    base = f"http://127.0.0.1:{host_port}"
    report.url = base
    ready = spec.get("readiness") or {}
    ready_path = str(ready.get("path") or "/")
    ready_status = ready.get("status", 200)
    raw_timeout = ready.get("timeout_s")
    ready_timeout = _positive(raw_timeout) or 300.0

    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: Ctrl-C / SIGTERM handling is the caller's
        previous = None
    started = False
    try:
        say(f"starting {ref} ({report.network}{', ' + device if flags else ''})")
        t0 = time.monotonic()
        started = True  # from here on the container may exist, even if `run` fails
        code, _out, errtext = _call(argv, max(timeout, 120.0))
        if code != 0:
            report.status = FAIL
            report.reason = f"{kind} could not start the container: {_last_line(errtext) or f'exit code {code}'}"
            return report
        opener = _opener()
        say(f"waiting for GET {ready_path} -> {ready_status} (up to {ready_timeout:g} s)")
        last = ""
        while True:
            status, _data, err = http(opener, "GET", base + ready_path, None, 5.0)
            if status == ready_status:
                report.time_to_ready_s = time.monotonic() - t0
                break
            last = f"HTTP {status}" if status is not None else err
            state = _state(exe, name, timeout)
            if state is not None and state[0] in ("exited", "dead"):
                report.status = FAIL
                report.logs = _logs(exe, name, timeout)
                report.reason = f"the server exited (code {state[1]}) before it was ready" + (
                    f": {_last_line(report.logs)}" if report.logs else ""
                )
                return report
            if time.monotonic() - t0 > ready_timeout:
                report.status = FAIL
                report.logs = _logs(exe, name, timeout)
                report.reason = (
                    f"not ready after {ready_timeout:g} s: GET {ready_path} gave {last or 'nothing'}"
                    f", expected {ready_status}"
                )
                return report
            time.sleep(POLL_INTERVAL)
        say(
            f"ready in {report.time_to_ready_s:.2f} s; running {len(spec.get('checks') or [])} check(s)"
        )
        for check in spec.get("checks") or []:
            if isinstance(check, dict):
                result = run_check(opener, base, check)
                say(f"{result.status} {result.name}: {result.reason}")
                report.checks.append(result)
        failed = [c for c in report.checks if c.status != PASS]
        report.status = FAIL if failed else PASS
        report.reason = (
            f"ready in {report.time_to_ready_s:.2f} s (GET {ready_path} -> {ready_status}); "
            f"{len(report.checks) - len(failed)}/{len(report.checks)} checks passed; "
            f"{ref} on {kind}, {report.network}"
        )
        if failed:
            report.logs = _logs(exe, name, timeout)
        return report
    finally:
        if started:
            say(f"removing container {name}")
            code, _out, _err = _call([exe, "rm", "-f", name], CLEANUP_TIMEOUT)
            report.removed = code == 0 or _state(exe, name, timeout) is None
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated()


def _state(exe: str, name: str, timeout: float) -> tuple[str, str] | None:
    """(status, exit code) of the container; None when it does not exist."""
    code, out, _err = _call(
        [exe, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name], timeout
    )
    if code != 0:
        return None
    parts = out.split()
    return (parts[0], parts[1] if len(parts) > 1 else "?") if parts else None


def _logs(exe: str, name: str, timeout: float, lines: int = 20) -> str | None:
    code, out, err = _call([exe, "logs", "--tail", str(lines), name], timeout)
    if code is None:
        return None
    text = (out + err).strip()
    return text[-4000:] if text else None


__all__ = [
    "ENGINES",
    "NETWORKS",
    "CheckResult",
    "PathError",
    "ServeReport",
    "container_env",
    "expand",
    "expect_json",
    "json_equal",
    "lookup",
    "parse_path",
    "referenced",
    "run_check",
    "run_serve",
]
