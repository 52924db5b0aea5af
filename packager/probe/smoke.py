"""The smoke test: the bundle's smoke command in its serving image, through the docker CLI.

Standard library only, Python >= 3.8 (it runs inside the probe at the site). :func:`run_smoke`
answers ``(status, reason)``: ``PASS``, ``FAIL`` or ``NOT RUN`` and one line that says why.

What runs: ``docker run --rm --network none --name airgap-smoke-<random>`` with the device flags of
the target, the installed weights mounted read-only at ``/weights`` (when given), the smoke
``env``, the image (its original reference, or its image ID when the reference has no tag) and the
smoke ``command`` (which replaces the image's CMD; an ENTRYPOINT still runs). The run is limited
to the smoke's ``timeout_s``: past it the container is killed (``docker kill``) and removed, and
the answer is ``FAIL ... timed out``. ``exit_code`` (default 0) and ``stdout_contains`` are then
checked; output goes to temporary files, not memory.

Device flags, from what ``docker info`` and the host show:

- NVIDIA: ``--gpus all`` when the engine can do it (the NVIDIA container toolkit's
  ``nvidia-container-runtime-hook`` or ``nvidia-container-toolkit`` is installed); else
  ``--runtime nvidia -e NVIDIA_VISIBLE_DEVICES=all`` when only the ``nvidia`` runtime is registered.
- Ascend: ``--runtime ascend -e ASCEND_VISIBLE_DEVICES=<ids>`` when the Ascend docker runtime is
  registered (it mounts the devices and the driver itself); else the devices themselves
  (``--device /dev/davinciN``, ``davinci_manager``, ``devmm_svm``, ``hisi_hdc``) and the driver
  folders read-only.
- none: nothing.

A target that needs a device this host does not offer (no device nodes, no toolkit) is NOT RUN,
saying what is missing; the image is still looked up in the engine, so a missing image is named
first. Without the docker CLI or a running engine: NOT RUN with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

# the same words as packager.probe.checks (not imported: checks may import this module)
PASS = "PASS"
FAIL = "FAIL"
NOT_RUN = "NOT RUN"

#: where the weights appear in the container
WEIGHTS_MOUNT = "/weights"
#: seconds given to `docker kill` / `docker rm` and to the CLI to exit after a kill
CLEANUP_TIMEOUT = 30.0
_SCAN_CHUNK = 1024 * 1024
_NVIDIA_HOOKS = ("nvidia-container-runtime-hook", "nvidia-container-toolkit")
_ASCEND_EXTRA_DEVICES = ("davinci_manager", "devmm_svm", "hisi_hdc")
_ASCEND_DRIVER_MOUNTS = (
    "/usr/local/Ascend/driver",
    "/usr/local/dcmi",
    "/usr/local/bin/npu-smi",
    "/etc/ascend_install.info",
)
#: what an Ascend container mounts from the host, read-only, without the ascend runtime
ASCEND_DRIVER_MOUNTS = _ASCEND_DRIVER_MOUNTS


def run_smoke(
    smoke: dict[str, Any],
    target: dict[str, Any],
    images: list[Any],
    *,
    weights_dir: str | None = None,
    docker: str = "docker",
    timeout: float = 60.0,
    dev: str = "/dev",
) -> tuple[str, str]:
    """Run the smoke test; ``(PASS | FAIL | NOT RUN, one-line reason)``.

    ``smoke``: bundle.json's ``smoke`` (``image``, ``command``, ``env``, ``timeout_s``,
    ``exit_code``, ``stdout_contains``). ``target``: bundle.json's ``target`` (its
    ``accelerator.vendor`` picks the device flags). ``images``: the bundle's images as dicts with
    ``ref`` and, when known, ``role`` (a missing role is ``serving``, the manifest's default) and
    ``config_digest``; ``smoke.image`` names a role (the first image with it) or a reference.
    ``weights_dir``: the installed weights, mounted read-only at /weights. ``docker``: the CLI.
    ``timeout``: bounds each docker call besides the run, and the run when the smoke has no
    ``timeout_s``. ``dev``: where device nodes are looked for (a recorded machine in tests).
    """
    if not isinstance(smoke, dict) or not smoke.get("command"):
        return NOT_RUN, "the bundle has no smoke command"
    command = smoke.get("command")
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        return FAIL, "the smoke command is not a list of strings"
    wanted = smoke.get("image") or "serving"
    image = find_image(str(wanted), images)
    if image is None:
        refs = ", ".join(str(i.get("ref")) for i in images if isinstance(i, dict)) or "none"
        return (
            NOT_RUN,
            f"the smoke image {wanted!r} is neither a role nor a reference of the bundle's images ({refs})",
        )
    exe = docker if os.sep in docker else shutil.which(docker)
    if exe is None or not os.access(exe, os.X_OK):
        return (
            NOT_RUN,
            f"the docker CLI ({docker}) is not installed: the smoke test needs a Docker engine",
        )
    info, err = docker_info(exe, timeout)
    if info is None:
        return NOT_RUN, (
            f"the Docker engine does not answer ({_docker_host()}): {err}; start it "
            "(`sudo systemctl start docker`) or point DOCKER_HOST at its socket"
        )
    ref = run_reference(image)
    code, _out, errtext = _call([exe, "image", "inspect", "--format", "{{.Id}}", ref], timeout)
    if code != 0:
        why = _last_line(errtext) or f"exit code {code}"
        return (
            NOT_RUN,
            f"image {ref} is not in the Docker engine ({why}): load it first (airgap install --docker)",
        )
    runtimes = info.get("Runtimes")
    flags, device = device_flags(target, runtimes if isinstance(runtimes, dict) else {}, dev=dev)
    if flags is None:
        return (
            NOT_RUN,
            f"{device}; image {ref} is in the engine, but the smoke command needs the device",
        )
    mounts: list[str] = []
    if weights_dir is not None:
        if not os.path.isdir(weights_dir):
            return NOT_RUN, f"the weights folder {weights_dir} is missing: install the bundle first"
        mounts = ["-v", f"{os.path.abspath(weights_dir)}:{WEIGHTS_MOUNT}:ro"]
    env: list[str] = []
    for key, value in sorted((smoke.get("env") or {}).items()):
        env += ["-e", f"{key}={value}"]
    limit = _positive(smoke.get("timeout_s")) or timeout
    expected = smoke.get("exit_code", 0)
    expected = expected if isinstance(expected, int) else 0
    needle = smoke.get("stdout_contains")
    name = f"airgap-smoke-{uuid.uuid4().hex[:12]}"
    argv = [exe, "run", "--rm", "--network", "none", "--name", name]
    argv += flags + mounts + env + [ref] + list(command)
    how = f"{ref}" + (f" with {device}" if flags else "")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as errf:
        started = time.monotonic()
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=errf)
        except OSError as exc:
            return NOT_RUN, f"cannot run {exe}: {exc.strerror or exc}"
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill(exe, name, proc)
            return (
                FAIL,
                f"timed out after {limit:g} s: container {name} ({how}) was killed and removed",
            )
        elapsed = time.monotonic() - started
        errf.seek(0)
        stderr_tail = _last_line(errf.read()[-4096:].decode("utf-8", "replace"))
        if rc != expected:
            if rc == 125:
                return (
                    FAIL,
                    f"docker could not run the container ({how}): {stderr_tail or 'exit code 125'}",
                )
            return FAIL, (
                f"exit code {rc}, expected {expected} ({how}, {elapsed:.1f} s)"
                + (f": {stderr_tail}" if stderr_tail else "")
            )
        if isinstance(needle, str) and needle and not _contains(out, needle.encode()):
            out.seek(0, os.SEEK_END)
            size = out.tell()
            out.seek(max(0, size - 200))
            tail = _last_line(out.read().decode("utf-8", "replace"))
            return FAIL, (
                f"exit code {rc} but stdout lacks {needle!r} ({how}, {elapsed:.1f} s)"
                + (f"; it ends: {tail}" if tail else "; it is empty")
            )
    said = f", stdout has {needle!r}" if isinstance(needle, str) and needle else ""
    return PASS, f"exit code {rc}{said} ({how}, {elapsed:.1f} s)"


def find_image(wanted: str, images: list[Any]) -> dict[str, Any] | None:
    """The first image whose role is ``wanted`` (no role: ``serving``), else the one whose
    reference it is."""
    items = [i for i in images if isinstance(i, dict) and isinstance(i.get("ref"), str)]
    for i in items:
        if (i.get("role") or "serving") == wanted:
            return i
    for i in items:
        if i["ref"] == wanted:
            return i
    return None


def run_reference(image: dict[str, Any]) -> str:
    """What `docker run` is given: the reference as loaded, or the image ID (the config digest)
    when the reference has no tag (a digest-only reference is not a tag in the engine)."""
    ref = str(image["ref"])
    digest = image.get("config_digest")
    name = ref.split("@", 1)[0]
    has_tag = name.rfind(":") > name.rfind("/")
    if "@" in ref and not has_tag and isinstance(digest, str) and digest:
        return digest
    return name if has_tag or "@" not in ref else ref


def docker_info(exe: str, timeout: float) -> tuple[dict[str, Any] | None, str]:
    """``docker info`` (or ``podman info``) as JSON; (None, why) when the engine does not answer."""
    code, out, err = _call([exe, "info", "--format", "{{json .}}"], timeout)
    if code is None:
        return None, err
    try:
        info = json.loads(out) if out.strip() else None
    except ValueError:
        info = None
    if isinstance(info, dict) and info.get("ServerErrors"):
        return None, "; ".join(str(e) for e in info["ServerErrors"])[:300]
    # Docker answers with ServerVersion / ID, Podman (the same CLI) with host / version
    server = isinstance(info, dict) and any(info.get(k) for k in ("ServerVersion", "ID", "host"))
    if code != 0 or not isinstance(info, dict) or not server:
        return None, _last_line(err) or f"`{os.path.basename(exe)} info` exited with {code}"
    return info, ""


def device_flags(
    target: dict[str, Any],
    runtimes: dict[str, Any],
    *,
    dev: str = "/dev",
    which: Callable[[str], str | None] = shutil.which,
    exists: Callable[[str], bool] = os.path.exists,
) -> tuple[list[str] | None, str]:
    """(flags, how) for the target's accelerator; (None, what is missing) when it is not here."""
    acc = target.get("accelerator") if isinstance(target, dict) else None
    vendor = acc.get("vendor") if isinstance(acc, dict) else None
    if vendor in (None, "none", ""):
        return [], "no accelerator"
    if vendor == "nvidia":
        if not _device_ids(dev, r"nvidia(\d+)"):
            return None, f"no NVIDIA GPU on this host ({dev}/nvidia0 missing)"
        if any(which(h) for h in _NVIDIA_HOOKS):
            return ["--gpus", "all"], "--gpus all"
        if "nvidia" in runtimes:
            return (
                ["--runtime", "nvidia", "-e", "NVIDIA_VISIBLE_DEVICES=all"],
                "the nvidia runtime",
            )
        return None, (
            "the NVIDIA container toolkit is not installed (no nvidia runtime in `docker info`, "
            "no nvidia-container-runtime-hook): install nvidia-container-toolkit and restart docker"
        )
    if vendor == "huawei":
        ids = _device_ids(dev, r"davinci(\d+)")
        if not ids:
            return None, f"no Ascend NPU on this host ({dev}/davinci0 missing)"
        visible = _ranges(ids)
        if "ascend" in runtimes:
            return (
                ["--runtime", "ascend", "-e", f"ASCEND_VISIBLE_DEVICES={visible}"],
                f"the ascend runtime (ASCEND_VISIBLE_DEVICES={visible})",
            )
        flags: list[str] = []
        for n in ids:
            flags += ["--device", f"{dev}/davinci{n}"]
        for extra in _ASCEND_EXTRA_DEVICES:
            if exists(f"{dev}/{extra}"):
                flags += ["--device", f"{dev}/{extra}"]
        for path in _ASCEND_DRIVER_MOUNTS:
            if exists(path):
                flags += ["-v", f"{path}:{path}:ro"]
        return flags, f"devices davinci{visible} (no ascend runtime registered)"
    return None, f"accelerator vendor {vendor!r} is not one the smoke test knows"


def _device_ids(dev: str, pattern: str) -> list[int]:
    try:
        names = os.listdir(dev)
    except OSError:
        return []
    rx = re.compile(pattern + "$")
    return sorted(int(m.group(1)) for m in (rx.match(n) for n in names) if m)


def _ranges(ids: list[int]) -> str:
    """0,1,2,3,5 -> 0-3,5 (what ASCEND_VISIBLE_DEVICES takes)."""
    runs: list[list[int]] = []
    for n in ids:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ",".join(f"{a}-{b}" if b > a else str(a) for a, b in runs)


def _kill(exe: str, name: str, proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Kill and remove the container, then make sure the CLI process is gone too.

    The container may not exist yet (the engine is still creating it): `docker kill` is repeated
    until the `docker run` process ends (with --rm it ends once the container is removed).
    """
    deadline = time.monotonic() + CLEANUP_TIMEOUT
    while proc.poll() is None and time.monotonic() < deadline:
        _call([exe, "kill", name], CLEANUP_TIMEOUT)
        try:
            proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    _call([exe, "rm", "-f", name], CLEANUP_TIMEOUT)  # --rm removes it; this makes sure


def _call(argv: list[str], timeout: float) -> tuple[int | None, str, str]:
    """(exit code, stdout, stderr); (None, "", why) when it could not run or timed out."""
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None, "", f"`{' '.join(argv[1:3])}` did not answer within {timeout:g} s"
    except OSError as exc:
        return None, "", f"cannot run {argv[0]}: {exc.strerror or exc}"
    return (
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def _contains(fh: Any, needle: bytes) -> bool:
    """Whether the file holds ``needle``, read in chunks (overlapping by len(needle) - 1)."""
    fh.seek(0)
    keep = b""
    while True:
        chunk = fh.read(_SCAN_CHUNK)
        if not chunk:
            return False
        window = keep + chunk
        if needle in window:
            return True
        keep = window[-(len(needle) - 1) :] if len(needle) > 1 else b""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= 300 else line[:300] + "..."


def _positive(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def _docker_host() -> str:
    host = os.environ.get("DOCKER_HOST")
    return f"DOCKER_HOST={host}" if host else "DOCKER_HOST unset: /var/run/docker.sock"


__all__ = [
    "ASCEND_DRIVER_MOUNTS",
    "FAIL",
    "NOT_RUN",
    "PASS",
    "device_flags",
    "docker_info",
    "find_image",
    "run_reference",
    "run_smoke",
]
