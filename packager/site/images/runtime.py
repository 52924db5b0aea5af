"""What the image loads into containerd and Podman share: their tools run as subprocesses.

containerd (:mod:`.containerd`) is driven through ``ctr``, Podman (:mod:`.podman`) through
``podman``: both are the tools a site has, and their own clients speak the daemons' protocols
(gRPC, the libpod storage) better than a copy of them here. :func:`run_tool` runs one with a
timeout and turns every way it can fail (missing, timed out, refused) into an
:class:`EngineError` with its last words; :func:`feed_tool` streams bytes into one's stdin.
:class:`RuntimeImage` is what one load reports (the receipt's ``images`` entries).
"""

from __future__ import annotations

import contextlib
import os
import platform as platform_mod
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from packager.errors import ResolveError
from packager.oci.reference import DOCKER_HUB_NAME, Platform, parse_reference, try_parse_platform
from packager.site.images.docker import EngineError
from packager.site.images.listing import BundleImage, ImageError
from packager.util.progress import Reporter
from packager.util.text import quoted
from packager.util.units import human_size

#: the most of a tool's stderr an error message quotes
MAX_SAID = 600


@dataclass(frozen=True)
class RuntimeImage:
    """An image in containerd or Podman: ``status`` is ``loaded`` (streamed now) or ``present``
    (the runtime had it already, by manifest digest: only named). ``name`` is the runtime's name
    for it (None for a digest-only reference in Podman, which names no tag, as Docker does)."""

    ref: str
    name: str | None
    manifest_digest: str
    config_digest: str
    status: str
    bytes_sent: int
    where: dict[str, str] = field(default_factory=dict)  # namespace, address, snapshotter, store

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "name": self.name,
            "manifest_digest": self.manifest_digest,
            "config_digest": self.config_digest,
            "status": self.status,
            "bytes_sent": self.bytes_sent,
            **self.where,
        }


def tool_path(name: str, package: str, runtime: str) -> str:
    """The tool's absolute path; an :class:`EngineError` saying how to install it."""
    found = shutil.which(name)
    if found is None:
        raise EngineError(
            f"`{name}` is not installed here: it is how airgap loads images into {runtime}",
            hint=f"install it (Debian/Ubuntu: apt-get install {package}; RHEL: dnf install "
            f"{package}), or load the images another way (--docker, --registry)",
        )
    return found


def said(text: str) -> str:
    """The last lines a tool wrote, quoted for a message (its own words, cut)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    tail = " | ".join(lines[-4:])
    return quoted(tail[-MAX_SAID:]) if tail else "(it said nothing)"


def run_tool(
    argv: list[str],
    *,
    what: str,
    hint: str,
    timeout: float,
    env: dict[str, str] | None = None,
) -> str:
    """Run ``argv`` (``argv[0]`` an absolute path), return its stdout; an :class:`EngineError`
    naming ``what`` and the tool's own words when it fails, times out or cannot start."""
    try:
        r = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise EngineError(
            f"{what}: `{_cmd(argv)}` did not answer in {timeout:.0f} s", hint=hint
        ) from None
    except OSError as exc:
        raise EngineError(
            f"{what}: cannot run {argv[0]}: {exc.strerror or exc}", hint=hint
        ) from None
    if r.returncode != 0:
        raise EngineError(
            f"{what}: `{_cmd(argv)}` failed (exit {r.returncode}): {said(r.stderr or r.stdout)}",
            hint=hint,
        )
    return r.stdout


def feed_tool(
    argv: list[str],
    chunks: Iterable[bytes],
    *,
    what: str,
    hint: str,
    timeout: float,
) -> str:
    """Stream ``chunks`` into the stdin of ``argv`` and return its stdout once it exits 0.

    When ``chunks`` raises (a blob that does not match its digest), stdin is closed where the
    stream stopped, so the tool sees a truncated archive and keeps nothing of it; the tool is
    waited for and the error raised. A tool that stops reading (it refused the stream) is
    reported with its own words."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=err)
        except OSError as exc:
            raise EngineError(
                f"{what}: cannot run {argv[0]}: {exc.strerror or exc}", hint=hint
            ) from None
        stdin = proc.stdin
        assert stdin is not None
        broken = False
        try:
            for chunk in chunks:
                stdin.write(chunk)
        except BrokenPipeError:
            broken = True
        except BaseException:
            _close(stdin)
            _wait(proc, 60.0)
            raise
        _close(stdin)
        code = _wait(proc, timeout)
        stdout, stderr = _read(out), _read(err)
    if code is None:
        raise EngineError(f"{what}: `{_cmd(argv)}` did not finish in {timeout:.0f} s", hint=hint)
    if code != 0 or broken:
        stopped = "stopped reading the stream and " if broken else ""
        raise EngineError(
            f"{what}: `{_cmd(argv)}` {stopped}failed (exit {code}): {said(stderr or stdout)}",
            hint=hint,
        )
    return stdout


def _close(stdin: IO[bytes]) -> None:
    with contextlib.suppress(BrokenPipeError):
        stdin.close()


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def _read(fh: IO[bytes]) -> str:
    fh.seek(0)
    return fh.read(1 << 20).decode("utf-8", "replace")


def _cmd(argv: list[str]) -> str:
    return " ".join([os.path.basename(argv[0]), *argv[1:3]])


def runtime_name(ref: str, manifest_digest: str) -> str:
    """The name containerd (and the Kubernetes CRI) and Podman know an image by: the normalized reference,
    ``docker.io/library/busybox:1.36``; a reference with only a digest becomes
    ``REPO@<manifest digest>`` (the image as it is loaded here)."""
    try:
        r = parse_reference(ref)
    except ResolveError as exc:
        raise ImageError(exc.message, hint=exc.hint) from None
    host = DOCKER_HUB_NAME if r.display_host == DOCKER_HUB_NAME else r.host
    base = f"{host}/{r.repository}"
    return f"{base}:{r.tag}" if r.tag else f"{base}@{manifest_digest}"


def check_room(root: str | None, needed: int, what: str, hint: str, rep: Reporter) -> None:
    """``needed`` bytes free where ``root`` is: an :class:`EngineError` saying ``what`` does not
    fit (``what`` names the storage and the load); a note when the folder cannot be seen."""
    try:
        st = os.statvfs(root) if root else None
    except OSError:
        st = None
    if st is None:
        rep.note(f"cannot check the room for {what} ({root or 'no folder named'}): it needs about "
                 f"{human_size(needed)}")  # fmt: skip
        return
    free = st.f_bavail * st.f_frsize
    if free < needed:
        raise EngineError(
            f"not enough room for {what}: {root} has {human_size(free)} free, it needs about "
            f"{human_size(needed)}",
            hint=hint,
        )


def host_platform() -> Platform | None:
    """This machine's platform: the daemons of containerd and Podman run here."""
    return Platform.of("linux", platform_mod.machine())


def check_platform(image: BundleImage, runtime: Platform | None, where: str) -> None:
    """An image for another OS or architecture than ``runtime`` is refused before any stream:
    its layers could never run there."""
    wanted = try_parse_platform(image.platform)
    if wanted is None or runtime is None:
        return
    if (wanted.os, wanted.architecture) == (runtime.os, runtime.architecture):
        return
    raise EngineError(
        f"image {image.ref} is for {image.platform}; {where} runs {runtime}: it could not run it",
        hint="use the bundle built for this machine's platform, or push the image to a registry "
        "instead (airgap install --registry)",
    )


__all__ = [
    "RuntimeImage",
    "check_platform",
    "feed_tool",
    "host_platform",
    "run_tool",
    "runtime_name",
    "said",
    "tool_path",
]
