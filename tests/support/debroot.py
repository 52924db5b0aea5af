"""Real Debian 11 (bullseye, Python 3.9, OpenSSL 1.1.1) roots for the site side: made by
``mmdebstrap --variant=apt --include=python3-minimal,python3-venv,openssl bullseye``, for amd64
and, through qemu-user-static and binfmt_misc, for arm64. Commands run in them with
``unshare -n -m chroot``: no network, a private /proc.

Making a root needs root, mmdebstrap, and for arm64 an enabled ``qemu-aarch64`` binfmt handler
(scripts/test.sh installs and enables them); a missing one skips, or fails under
AIRGAP_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.services import ServiceUnavailable

SUITE = "bullseye"
#: the release alone (no -security, -updates): what the test needs, from one mirror
MIRROR = "deb http://deb.debian.org/debian bullseye main"
PACKAGES = "python3-minimal,python3-venv,openssl"
#: seconds: an arm64 root under qemu takes about 2.5 minutes here
MAKE_TIMEOUT = 1200
ARCHES = {"linux/amd64": "amd64", "linux/arm64": "arm64"}


def available(platform: str) -> None:
    """Raise ServiceUnavailable when a root for ``platform`` cannot be made here."""
    if os.geteuid() != 0:
        raise ServiceUnavailable("a Debian root needs root (chroot, mmdebstrap)")
    for tool in ("mmdebstrap", "unshare", "chroot"):
        if shutil.which(tool) is None:
            raise ServiceUnavailable(f"{tool} is not installed (scripts/test.sh installs it)")
    if platform == "linux/arm64" and os.uname().machine != "aarch64":
        handler = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
        if not handler.is_file() or "enabled" not in handler.read_text():
            raise ServiceUnavailable(
                "no enabled qemu-aarch64 binfmt handler (apt-get install qemu-user-static "
                "binfmt-support; update-binfmts --enable qemu-aarch64)"
            )


def roots_dir(basetemp: Path) -> Path:
    """Where a session's Debian roots go: ``basetemp/debroots``, or $AIRGAP_TEST_ROOTS (which
    keeps them across local runs)."""
    keep = os.environ.get("AIRGAP_TEST_ROOTS")
    return Path(keep) if keep else basetemp / "debroots"


#: the fixture that asks for each root, and the root's platform (tests/e2e/test_site_kit.py)
ROOT_FIXTURES = {"amd64_root": "linux/amd64", "arm64_root": "linux/arm64"}


def _command(platform: str, dest: Path) -> list[str]:
    arch = ARCHES[platform]
    return ["mmdebstrap", f"--arch={arch}", "--variant=apt", f"--include={PACKAGES}", SUITE,
            str(dest), MIRROR]  # fmt: skip


def _failed_marker(dest: Path) -> Path:
    return dest.parent / f"{dest.name}.failed"


#: roots being made in the background (start_making): the process, and the roots it makes
_BACKGROUND: tuple[subprocess.Popen[bytes], set[Path]] | None = None


def start_making(jobs: Sequence[tuple[str, Path]]) -> None:
    """Begin making the roots of ``jobs`` ((platform, dest), one after another) in a background
    process, so that the minutes mmdebstrap takes (arm64 through qemu: about 2.5) run beside the
    tests before them; :func:`make_root` of one of them waits for it. A root already made, or
    one that cannot be made here (:func:`available`), is left out. Nothing of this process
    (no thread, no pipe) stays open in the caller: its output goes to ``DEST.log``."""
    global _BACKGROUND
    lines = []
    wanted: set[Path] = set()
    for platform, dest in jobs:
        try:
            available(platform)
        except ServiceUnavailable:
            continue
        if (dest / ".made").is_file():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)  # mmdebstrap wants the folder's parent
        q = shlex.quote
        cmd = " ".join(q(a) for a in _command(platform, dest))
        lines.append(
            f"rm -rf {q(str(dest))} {q(str(_failed_marker(dest)))}; "
            f"if timeout {MAKE_TIMEOUT} {cmd} >{q(str(dest))}.log 2>&1; "
            f"then echo ok >{q(str(dest / '.made'))}; else echo failed >{q(str(_failed_marker(dest)))}; fi"
        )
        wanted.add(dest)
    if not lines:
        return
    proc = subprocess.Popen(
        ["sh", "-c", "\n".join(lines)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    _BACKGROUND = (proc, wanted)


def stop_making() -> None:
    """Stop the background making (at the end of a session that did not need all of it)."""
    global _BACKGROUND
    if _BACKGROUND is None:
        return
    proc, _ = _BACKGROUND
    _BACKGROUND = None
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    proc.wait()


def _wait_for_background(dest: Path) -> None:
    """Until the background process has made ``dest``, failed at it, or ended."""
    if _BACKGROUND is None or dest not in _BACKGROUND[1]:
        return
    proc = _BACKGROUND[0]
    deadline = time.monotonic() + MAKE_TIMEOUT + 60
    while time.monotonic() < deadline:
        if (dest / ".made").is_file() or _failed_marker(dest).is_file():
            return
        if proc.poll() is not None:
            return
        time.sleep(0.5)


def make_root(platform: str, dest: Path) -> Path:
    """A bullseye root for ``platform`` in ``dest`` (made once; ``dest`` is the cache). One being
    made in the background (:func:`start_making`) is waited for; made here if that failed."""
    available(platform)
    done = dest / ".made"
    _wait_for_background(dest)
    if done.is_file():
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)  # mmdebstrap wants the folder's parent
    r = subprocess.run(
        _command(platform, dest), capture_output=True, text=True, timeout=MAKE_TIMEOUT
    )
    if r.returncode != 0:
        raise ServiceUnavailable(f"mmdebstrap {platform} failed: {r.stderr[-800:]}")
    done.write_text("ok\n")
    return dest


def run(
    root: Path, script: str, *, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """``sh -c script`` inside ``root``, without network, cwd /work."""
    (root / "work").mkdir(exist_ok=True)
    (root / "work" / ".run.sh").write_text(script)
    environ = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LC_ALL": "C.UTF-8"}
    environ.update(env or {})
    inner = (
        'mount -t proc proc "$1/proc" && exec chroot "$1" /bin/sh -c "cd /work && exec sh .run.sh"'
    )
    return subprocess.run(
        ["unshare", "-n", "-m", "sh", "-c", inner, "sh", str(root)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
    )


#: what the tests need besides airgap's own requirements (pip download evaluates markers with the
#: running Python, so the backports Python 3.9 needs are named here)
TEST_REQUIREMENTS = ("pytest", "numpy", "packaging", "tomli", "exceptiongroup", "typing_extensions")


def project_on_python39(root: Path, repo: Path, cache: Path) -> str:
    """The project's source at /src in ``root`` and a venv /v with airgap installed from wheels
    (the site kit's cp39 wheels, airgap's own wheel, the test requirements), no network inside.
    Returns the venv's python."""
    import sys

    from packager.bundle import site_kit

    wh = root / "wh"
    shutil.rmtree(wh, ignore_errors=True)
    wh.mkdir()
    platform = "linux/amd64" if os.uname().machine == "x86_64" else "linux/arm64"
    reqs = site_kit.requirements()
    deps, folder = site_kit.dependency_wheels(platform, reqs, offline=False, cache=cache)
    for name in deps["3.9"]:
        shutil.copyfile(folder / name, wh / name)
    own, data = site_kit.own_wheel(reqs)
    (wh / own).write_bytes(data)
    tags = [a for t in site_kit.PLATFORM_TAGS[platform] for a in ("--platform", t)]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", *tags,
         "--python-version", "3.9.2", "--implementation", "cp", "-d", str(wh),
         *TEST_REQUIREMENTS],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    src = root / "src"
    shutil.rmtree(src, ignore_errors=True)
    archive = subprocess.run(["git", "-C", str(repo), "ls-files", "-z"], capture_output=True)
    for rel in archive.stdout.decode().split("\0"):
        path = repo / rel
        if rel and path.is_file() and not path.is_symlink():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / rel)
    for link in ("packager/schemas",):  # a link to ../schemas in the repository
        shutil.rmtree(src / link, ignore_errors=True)
        shutil.copytree(repo / "schemas", src / link)
    r = run(
        root,
        "rm -rf /v && python3 -m venv /v && /v/bin/pip install -q --no-index -f /wh airgap "
        + " ".join(TEST_REQUIREMENTS),
    )
    if r.returncode != 0:
        raise RuntimeError(f"the Python 3.9 venv: {r.stdout[-1000:]}{r.stderr[-1000:]}")
    return "/v/bin/python"


def pytest_on_python39(
    root: Path, args: str, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """``python -m pytest ARGS`` in /src with the venv's Python 3.9 (no network, no services)."""
    return run(
        root,
        f"cd /src && AIRGAP_SITE_KIT=0 /v/bin/python -m pytest -q -p no:cacheprovider {args}",
        timeout=timeout,
    )
