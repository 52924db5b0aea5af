"""Real Debian 11 (bullseye, Python 3.9, OpenSSL 1.1.1) roots for the site side: made by
``mmdebstrap --variant=apt --include=python3-minimal,python3-venv,openssl bullseye``, for amd64
and, through qemu-user-static and binfmt_misc, for arm64. Commands run in them with
``unshare -n -m chroot``: no network, a private /proc.

Making a root needs root, mmdebstrap, and for arm64 an enabled ``qemu-aarch64`` binfmt handler
(scripts/test.sh installs and enables them); a missing one skips, or fails under
AIRGAP_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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


def make_root(platform: str, dest: Path) -> Path:
    """A bullseye root for ``platform`` in ``dest`` (made once; ``dest`` is the cache)."""
    available(platform)
    done = dest / ".made"
    if done.is_file():
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    cmd = ["mmdebstrap", f"--arch={ARCHES[platform]}", "--variant=apt", f"--include={PACKAGES}"]
    r = subprocess.run(
        [*cmd, SUITE, str(dest), MIRROR], capture_output=True, text=True, timeout=MAKE_TIMEOUT
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
