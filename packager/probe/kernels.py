"""The kernels' test vectors, run on this host's device by the kernel runner.

Files are read from where the bundle is: a layout folder or a tar (by the blob digest bundle.json
gives each install path, checked after reading), or an installed bundle's folder. On a recorded
machine (--sysroot) nothing is launched: that machine is not here.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable
from typing import Any

from .bundle import DIGEST, Requirements
from .checks import FAIL, NOT_RUN, Check

MAX_FILE = 1 << 30  # a kernel or a test vector larger than 1 GiB is not read into memory


class _Files:
    def __init__(self, req: Requirements) -> None:
        self.req = req
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()

    def _blob(self, path: str) -> bytes:
        digest = self.req.blob_for_path.get(path)
        if digest is None or not DIGEST.fullmatch(digest):
            raise OSError(f"{path} is not in the bundle")
        name = "blobs/sha256/" + digest.split(":", 1)[1]
        kind, root = self.req.location
        if kind == "folder":
            full = os.path.join(root, name)
            if os.path.getsize(full) > MAX_FILE:
                raise OSError(f"{path} is larger than 1 GiB")
            with open(full, "rb") as fh:
                data = fh.read(MAX_FILE + 1)
        else:
            if self._tar is None:
                self._tar = tarfile.open(root, "r:")  # noqa: SIM115 - closed in close()
                self._members = {
                    (m.name[2:] if m.name.startswith("./") else m.name): m for m in self._tar
                }
            member = self._members.get(name)
            if member is None or not member.isreg() or member.size > MAX_FILE:
                raise OSError(f"{path}: blob {digest} is missing from the bundle")
            fh2 = self._tar.extractfile(member)
            if fh2 is None:
                raise OSError(f"{path}: cannot read blob {digest}")
            data = fh2.read()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise OSError(f"{path}: blob {digest} does not match its digest (run airgap verify)")
        return data

    def read(self, path: str) -> bytes:
        kind, root = self.req.location
        if kind == "installed":
            parts = path.split("/")
            if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
                raise OSError(f"{path!r} is not a relative path inside the bundle")
            full = os.path.join(root, path)
            if os.path.getsize(full) > MAX_FILE:
                raise OSError(f"{path} is larger than 1 GiB")
            with open(full, "rb") as fh:
                return fh.read(MAX_FILE + 1)
        if kind in ("folder", "tar"):
            return self._blob(path)
        raise OSError("only bundle.json was given: the kernel files are not at hand")


UNVERIFIED = (
    "not run: the bundle was not verified against a trust policy or key, and nothing from an "
    "unverified bundle is executed (only the hardware was checked)"
)
UNVERIFIED_REMEDY = (
    "airgap probe --bundle B --trust POLICY (or --key PUB), or probe --installed NAME"
)


def kernel_checks(
    req: Requirements, *, live: bool, timeout: float, verified: bool = True
) -> list[Check]:
    if not req.kernel_specs:
        return []
    if req.location[0] == "descriptor":
        return [
            Check(
                "kernels",
                "kernels",
                NOT_RUN,
                "only bundle.json was given: the kernel files are not at hand",
            )
        ]
    if not live:
        return [
            Check(
                "kernels",
                "kernels",
                NOT_RUN,
                "a recorded machine: kernels run only on the live host",
            )
        ]
    if not verified:
        return [Check("kernels", "kernels", NOT_RUN, UNVERIFIED, UNVERIFIED_REMEDY)]
    try:
        from .kernel_runner import run_kernel_test
    except ImportError as exc:  # pragma: no cover - the runner ships with the probe
        return [Check("kernels", "kernels", NOT_RUN, f"the kernel runner is missing: {exc}")]
    files = _Files(req)
    out: list[Check] = []
    try:
        for spec in req.kernel_specs:
            name = str(spec.get("name", "?"))
            if not spec.get("tests"):
                out.append(
                    Check(
                        "kernels",
                        f"kernel {name}",
                        NOT_RUN,
                        "the bundle carries no test vectors for it",
                    )
                )
                continue
            read: Callable[[str], bytes] = files.read
            try:
                status, reason = run_kernel_test(_spec(spec), read, timeout)
            except Exception as exc:  # one broken kernel must not stop the probe
                status, reason = FAIL, f"the runner failed: {type(exc).__name__}: {exc}"
            remedy = None
            if status == FAIL:
                remedy = "the kernel does not compute what its test vectors say on this device: do not deploy it"
            out.append(Check("kernels", f"kernel {name}", status, reason, remedy))
    finally:
        files.close()
    return out


def _spec(spec: dict[str, Any]) -> dict[str, Any]:
    """bundle.json's kernel entry as the runner takes it."""
    out = dict(spec)
    check = spec.get("check")
    if isinstance(check, dict) and check.get("params") is not None and "params" not in out:
        out["params"] = check["params"]
    return out


def smoke_checks(
    req: Requirements, *, live: bool, timeout: float, verified: bool = True
) -> list[Check]:
    """The manifest's smoke command in the serving image (stdlib: the docker CLI); never for a
    bundle that was not verified (``verified``): its command would be anyone's."""
    if req.smoke_spec is None:
        return []
    if req.location[0] == "descriptor":
        return [
            Check(
                "smoke",
                "smoke test",
                NOT_RUN,
                "only bundle.json was given: probe the bundle or the installed bundle to run it",
            )
        ]
    if not live:
        return [
            Check(
                "smoke",
                "smoke test",
                NOT_RUN,
                "a recorded machine: the smoke container runs only on the live host",
            )
        ]
    if not verified:
        return [Check("smoke", "smoke test", NOT_RUN, UNVERIFIED, UNVERIFIED_REMEDY)]
    from .smoke import run_smoke

    weights = None
    if req.location[0] == "installed":
        candidate = os.path.join(req.location[1], "model")
        weights = candidate if os.path.isdir(candidate) else None
    try:
        status, reason = run_smoke(
            req.smoke_spec, req.target_spec, req.image_specs, weights_dir=weights, timeout=timeout
        )
    except Exception as exc:  # the probe reports, it does not crash
        status, reason = NOT_RUN, f"the smoke runner failed: {type(exc).__name__}: {exc}"
    remedy = (
        "load the images first (airgap install --docker)"
        if status == NOT_RUN and "not loaded" in reason
        else None
    )
    return [Check("smoke", "smoke test", status, reason, remedy)]
