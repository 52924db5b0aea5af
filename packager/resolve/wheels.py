"""Wheels for the target platform and Python: chosen by pip, checked by us, hashed.

pip does the dependency resolution, as the site's ``pip install --no-index`` will later do it:
``sys.executable -m pip download`` in a subprocess with a wall-clock limit, into a fresh folder
under ``CACHE/wheels`` (``pip download`` because it checks ``Requires-Python`` against
``--python-version``; ``pip install --dry-run`` checks it against the Python running pip):

* **wheelhouse** (a folder of ``.whl`` files named by the manifest): from that folder alone
  (``--no-index --find-links``; pip's configuration files and ``PIP_*`` variables ignored).
  The wheels are locked where they lie: each file pip copied must be the wheelhouse's own file
  of that name, byte for byte (a requirements file cannot pull in wheels from elsewhere).
* **index** (a connected build host): from the manifest's ``index_url`` alone (the host's
  extra indexes and find-links are switched off; its TLS and proxy settings stay), or as the
  host's pip configuration says when the manifest names no index. The wheels are moved into
  ``CACHE/wheels``.
* **offline** without a wheelhouse: like a wheelhouse, from the wheels an earlier connected run
  left in ``CACHE/wheels``.

pip is told the target with ``--only-binary=:all: --implementation cp --python-version X.Y`` and
one ``--platform`` per tag of :func:`platform_tags`. Every wheel it picks is then checked again by
:func:`check_wheel` (pure functions over the file name, PEP 427/425 with compressed tag sets),
hashed (sha256, streamed) and returned as :class:`~packager.resolve.lockfile.LockedWheel`, sorted by name.

Tag policy (what the site can install and run):

* platform: ``any``; ``manylinux_2_N_ARCH`` for N up to the site's glibc (default
  :data:`DEFAULT_GLIBC`, 2.28: RHEL 8 / Rocky 8, Kylin V10, openEuler 20.03 LTS; an older site
  such as CentOS 7 needs ``glibc=(2, 17)``) and the legacy aliases ``manylinux2014`` (2.17),
  ``manylinux2010`` (2.12) and ``manylinux1`` (2.5) on x86_64. ``musllinux`` is refused: the
  sites (openEuler, Kylin, Ubuntu, RHEL and the MindIE / NGC images) run glibc, and a musl wheel
  does not load there. ``linux_ARCH`` (a locally built wheel, no portability promise) is accepted
  only from the manifest's own wheelhouse, where someone put it on purpose (Ascend's apex, for
  one, is built that way); never from an index.
* Python (CPython X.Y, default :data:`DEFAULT_PYTHON`): ``cpXY`` with ABI ``cpXY``, ``abi3`` or
  ``none``; ``cp3Z-abi3`` for Z < Y (stable ABI); ``pyXY``, ``py3`` and ``py3Z`` (Z < Y) with ABI
  ``none``. The set is the one pip itself builds for these options, so the check and pip agree.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packager.errors import CheckFailed, ResolveError
from packager.manifest.model import Wheels
from packager.resolve.lockfile import LockedWheel
from packager.util.compat import strict_zip
from packager.util.hashing import FileDigest, sha256_files

#: Python of the site when the manifest does not say (the MindIE and current NGC images run 3.11)
DEFAULT_PYTHON = "3.11"
#: highest glibc assumed at the site: manylinux_2_28 (RHEL 8 / Kylin V10 / openEuler 20.03)
DEFAULT_GLIBC = (2, 28)
#: image platform -> machine name in wheel platform tags
PLATFORM_ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
#: pip's socket timeout, at most (the wall-clock limit is the ``timeout`` argument)
PIP_SOCKET_TIMEOUT = 15.0
PIP_RETRIES = 2

_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
_LEGACY_BY_NAME = {v: k for k, v in _LEGACY_MANYLINUX.items()}
_LEGACY_ARCHES = {
    "manylinux2014": {"x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x"},
    "manylinux2010": {"x86_64", "i686"},
    "manylinux1": {"x86_64", "i686"},
}


class WheelTagError(CheckFailed):
    """A wheel whose tags do not run on the target platform or Python."""


class IndexUnreachable(ResolveError):
    """pip could not reach the package index (refused, timed out, TLS, name resolution)."""


# ----------------------------------------------------------------------------- file names


@dataclass(frozen=True)
class WheelFilename:
    """The parts of a wheel's file name (PEP 427; tag sets compressed with ``.``, PEP 425)."""

    filename: str
    distribution: str  # as written in the file name
    version: str
    build: str | None
    python_tags: tuple[str, ...]
    abi_tags: tuple[str, ...]
    platform_tags: tuple[str, ...]

    @property
    def name(self) -> str:
        """The project name, normalized (PEP 503)."""
        return normalize_name(self.distribution)

    @property
    def tags(self) -> tuple[str, ...]:
        """Every ``python-abi-platform`` tag the compressed sets stand for, in file-name order."""
        return tuple(
            f"{py}-{abi}-{plat}"
            for py in self.python_tags
            for abi in self.abi_tags
            for plat in self.platform_tags
        )


_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?\Z")
_VERSION = re.compile(r"^[A-Za-z0-9_.!+]+\Z")
_BUILD = re.compile(r"^[0-9][A-Za-z0-9_.]*\Z")
_TAG = re.compile(r"^[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*\Z")


def normalize_name(name: str) -> str:
    """PEP 503: runs of ``-``, ``_`` and ``.`` become one ``-``; lower case."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_wheel_filename(filename: str) -> WheelFilename:
    """``name-version(-build)?-python-abi-platform.whl``; ``ValueError`` when it is not one."""
    if not filename.endswith(".whl") or "/" in filename or "\\" in filename:
        raise ValueError(f"not a wheel file name: {filename!r}")
    parts = filename[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        raise ValueError(
            f"not a wheel file name: {filename!r} "
            "(expected name-version[-build]-python-abi-platform.whl)"
        )
    name, version = parts[0], parts[1]
    build = parts[2] if len(parts) == 6 else None
    py, abi, plat = parts[-3:]
    if not _NAME.match(name):
        raise ValueError(f"{filename}: bad project name {name!r}")
    if not _VERSION.match(version):
        raise ValueError(f"{filename}: bad version {version!r}")
    if build is not None and not _BUILD.match(build):
        raise ValueError(f"{filename}: bad build tag {build!r} (must start with a digit)")
    for what, tag in (("python", py), ("ABI", abi), ("platform", plat)):
        if not _TAG.match(tag):
            raise ValueError(f"{filename}: bad {what} tag {tag!r}")
    return WheelFilename(
        filename, name, version, build, tuple(py.split(".")), tuple(abi.split(".")),
        tuple(plat.split(".")),
    )  # fmt: skip


# ----------------------------------------------------------------------------- the target


@dataclass(frozen=True)
class WheelTarget:
    """What the site runs: an image platform, a CPython X.Y, the newest glibc assumed."""

    platform: str  # linux/amd64 | linux/arm64
    python: str = DEFAULT_PYTHON  # "3.11"
    glibc: tuple[int, int] = DEFAULT_GLIBC
    generic_linux: bool = False  # also accept linux_ARCH wheels (locally built)

    def __post_init__(self) -> None:
        if self.platform not in PLATFORM_ARCH:
            raise ValueError(
                f"no wheels for platform {self.platform!r}: expected one of "
                + ", ".join(sorted(PLATFORM_ARCH))
            )
        if not re.fullmatch(r"3\.(0|[1-9][0-9]*)", self.python):
            raise ValueError(f"not a Python 3 version: {self.python!r} (expected e.g. '3.11')")
        if self.glibc[0] != 2 or self.glibc[1] < 17:
            raise ValueError(f"glibc {self.glibc[0]}.{self.glibc[1]}: expected 2.17 or newer")

    @property
    def arch(self) -> str:
        return PLATFORM_ARCH[self.platform]

    @property
    def python_version(self) -> tuple[int, int]:
        major, minor = self.python.split(".")
        return int(major), int(minor)

    def describe(self) -> str:
        """``linux/arm64, CPython 3.11, glibc <= 2.28``."""
        return f"{self.platform}, CPython {self.python}, glibc <= {self.glibc[0]}.{self.glibc[1]}"


def target_python(wheels: Wheels) -> str:
    """The Python the wheels are resolved for: the manifest's, else :data:`DEFAULT_PYTHON`."""
    return wheels.python or DEFAULT_PYTHON


@functools.lru_cache(maxsize=64)
def platform_tags(target: WheelTarget) -> tuple[str, ...]:
    """Platform tags the site installs, most preferred first (the order pip's own list has).

    ``manylinux_2_N_ARCH`` from the glibc ceiling down to the oldest for the machine (2.5 on
    x86_64, 2.17 on aarch64), each legacy alias right after its glibc, then ``linux_ARCH`` when
    ``target.generic_linux``. ``any`` is not a platform pip takes and is always accepted.
    """
    arch = target.arch
    oldest = 5 if arch in ("x86_64", "i686") else 17
    out: list[str] = []
    for minor in range(target.glibc[1], oldest - 1, -1):
        out.append(f"manylinux_2_{minor}_{arch}")
        legacy = _LEGACY_MANYLINUX.get((2, minor))
        if legacy and arch in _LEGACY_ARCHES[legacy]:
            out.append(f"{legacy}_{arch}")
    if target.generic_linux:
        out.append(f"linux_{arch}")
    return tuple(out)


def pip_platform_tags(target: WheelTarget) -> tuple[str, ...]:
    """What pip is given as ``--platform``: :func:`platform_tags` (a seam for tests)."""
    return platform_tags(target)


def _interpreter_pairs(target: WheelTarget) -> tuple[frozenset[tuple[str, str]], frozenset[str]]:
    """(python, abi) pairs valid on a real platform; python tags valid with ``none-any``.

    Mirrors ``packaging.tags.cpython_tags`` + ``compatible_tags`` as pip calls them for
    ``--implementation cp --python-version X.Y``.
    """
    major, minor = target.python_version
    cp = f"cp{major}{minor}"
    pairs: set[tuple[str, str]] = {(cp, cp), (cp, "none")}
    if (major, minor) < (3, 8):
        pairs.add((cp, f"{cp}m"))  # pymalloc ABI of 3.7 and older
    if (major, minor) >= (3, 2):
        pairs.update((f"cp{major}{m}", "abi3") for m in range(minor, 1, -1))
    py_range = [f"py{major}{minor}", f"py{major}"] + [f"py{major}{m}" for m in range(minor)]
    pairs.update((py, "none") for py in py_range)
    return frozenset(pairs), frozenset([cp, *py_range])


def is_supported(python_tag: str, abi_tag: str, platform_tag: str, target: WheelTarget) -> bool:
    """True when the single tag ``python-abi-platform`` installs on ``target``."""
    pairs, any_pythons = _interpreter_pairs(target)
    if platform_tag == "any":
        return abi_tag == "none" and python_tag in any_pythons
    return platform_tag in platform_tags(target) and (python_tag, abi_tag) in pairs


def _platform_problem(tag: str, target: WheelTarget) -> str:
    """Why one platform tag does not fit (only called for tags that do not)."""
    m = re.fullmatch(r"(manylinux_(\d+)_(\d+)|manylinux1|manylinux2010|manylinux2014)_(.+)", tag)
    if m:
        arch = m.group(4)
        glibc = (
            (int(m.group(2)), int(m.group(3))) if m.group(2) else _LEGACY_BY_NAME[m.group(1)]
        )  # fmt: skip
        if arch != target.arch:
            return f"{tag} is built for {arch}; {target.platform} needs {target.arch}"
        if glibc > target.glibc:
            return (
                f"{tag} needs glibc {glibc[0]}.{glibc[1]}, newer than the site's "
                f"{target.glibc[0]}.{target.glibc[1]}"
            )
        return f"{tag} is not a manylinux tag for {target.arch}"
    m = re.fullmatch(r"musllinux_\d+_\d+_(.+)", tag)
    if m:
        return f"{tag} is built for musl libc (Alpine); the site runs glibc"
    m = re.fullmatch(r"linux_(.+)", tag)
    if m:
        if m.group(1) != target.arch:
            return f"{tag} is built for {m.group(1)}; {target.platform} needs {target.arch}"
        return (
            f"{tag} is a locally built wheel with no portability promise; "
            "it is accepted from the manifest's wheelhouse only"
        )
    if tag.startswith(("macosx", "win", "ios", "android", "cygwin")):
        return f"{tag} is for another operating system"
    return f"{tag} is not a platform tag for {target.platform}"


def _python_problem(wheel: WheelFilename, target: WheelTarget) -> str:
    version = target.python_version
    abis = ".".join(wheel.abi_tags)
    for py in wheel.python_tags:
        m = re.fullmatch(r"cp(\d)(\d+)", py)
        if not m:
            continue
        built = (int(m.group(1)), int(m.group(2)))
        if "abi3" in wheel.abi_tags and built > version:
            return (
                f"python tag {py} / ABI {abis} needs CPython {built[0]}.{built[1]} or newer, "
                f"not {target.python}"
            )
        if "abi3" not in wheel.abi_tags and built != version:
            return (
                f"python tag {py} / ABI {abis} is built for CPython {built[0]}.{built[1]}, "
                f"not {target.python}"
            )
    if all(py.startswith(("pp", "ip", "jy")) for py in wheel.python_tags):
        return f"python tag {'.'.join(wheel.python_tags)} is for another Python implementation"
    return (
        f"python tag {'.'.join(wheel.python_tags)} with ABI {'.'.join(wheel.abi_tags)} "
        f"does not run on CPython {target.python}"
    )


def tag_problems(wheel: WheelFilename, target: WheelTarget) -> tuple[str, ...]:
    """Why ``wheel`` does not install on ``target``; empty when one of its tags fits."""
    if any(is_supported(py, abi, plat, target) for py, abi, plat in _triples(wheel)):
        return ()
    plats = platform_tags(target)
    pairs, any_pythons = _interpreter_pairs(target)
    plat_ok = any(p == "any" or p in plats for p in wheel.platform_tags)
    pair_ok = any(
        (py, abi) in pairs or (abi == "none" and py in any_pythons)
        for py in wheel.python_tags
        for abi in wheel.abi_tags
    )
    problems: list[str] = []
    if not plat_ok:
        problems.extend(_platform_problem(p, target) for p in wheel.platform_tags)
    if not pair_ok:
        problems.append(_python_problem(wheel, target))
    if not problems:
        problems.append(
            "its python, ABI and platform tags fit one by one but no combination of them does"
        )
    return tuple(problems)


def _triples(wheel: WheelFilename) -> Iterable[tuple[str, str, str]]:
    return (
        (py, abi, plat)
        for py in wheel.python_tags
        for abi in wheel.abi_tags
        for plat in wheel.platform_tags
    )


def check_wheel(filename: str, target: WheelTarget) -> WheelFilename:
    """Parse ``filename`` and raise :class:`WheelTagError` unless it installs on ``target``."""
    try:
        wheel = parse_wheel_filename(filename)
    except ValueError as exc:
        raise WheelTagError(
            str(exc), hint="wheel file names follow PEP 427: name-version-python-abi-platform.whl"
        ) from None
    problems = tag_problems(wheel, target)
    if problems:
        raise WheelTagError(
            _tag_message(wheel, problems, target), hint=_tag_hint(target, [wheel.name])
        )
    return wheel


def _tag_message(wheel: WheelFilename, problems: Sequence[str], target: WheelTarget) -> str:
    return (
        f"{wheel.filename} (tags {', '.join(wheel.tags)}) does not fit the target "
        f"{target.describe()}: " + "; ".join(problems)
    )


def _tag_hint(target: WheelTarget, names: Sequence[str]) -> str:
    plat = platform_tags(target)
    return (
        f"use wheels of {', '.join(names)} built for {target.platform} and CPython "
        f"{target.python}: pure ones (py3-none-any) or {plat[0]} ... {plat[-1]} "
        f"(musllinux and other machines do not run there)"
    )


def check_wheels(filenames: Iterable[str], target: WheelTarget) -> tuple[WheelFilename, ...]:
    """:func:`check_wheel` for each; one :class:`WheelTagError` naming every wheel that fails."""
    good: list[WheelFilename] = []
    bad: list[str] = []
    names: list[str] = []
    for f in filenames:
        try:
            good.append(check_wheel(f, target))
        except WheelTagError as exc:
            bad.append(exc.message)
            names.append(f.split("-", 1)[0])
    if bad:
        head = f"{len(bad)} wheel(s) do not fit the target {target.describe()}:\n  "
        raise WheelTagError(
            bad[0] if len(bad) == 1 else head + "\n  ".join(bad),
            hint=_tag_hint(target, names),
        )
    return tuple(good)


# ----------------------------------------------------------------------------- pip


@dataclass(frozen=True)
class _PipRun:
    returncode: int
    output: str  # stdout and stderr


def pip_command() -> list[str]:
    """How pip is run: the pip of the Python that runs airgap (a seam for tests)."""
    return [sys.executable, "-m", "pip"]


def _run_pip(args: Sequence[str], env: dict[str, str], timeout: float, what: str) -> _PipRun:
    cmd = [*pip_command(), *args]
    try:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ResolveError(
            f"pip did not finish {what} within {timeout:g} s",
            hint="check the network and the index, or give a longer --timeout",
        ) from None
    except OSError as exc:
        raise ResolveError(f"cannot run {' '.join(cmd[:3])}: {exc.strerror}") from None
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0 and "No module named pip" in out:
        raise ResolveError(
            f"{sys.executable} has no pip module",
            hint="install pip into the environment airgap runs in",
        )
    return _PipRun(proc.returncode, out)


def _common_args(target: WheelTarget, requirements: Sequence[Path], timeout: float) -> list[str]:
    args = [
        "--disable-pip-version-check",
        "--no-input",
        "--no-color",
        "--progress-bar",
        "off",
        "--timeout",
        f"{min(PIP_SOCKET_TIMEOUT, timeout):g}",
        "--retries",
        str(PIP_RETRIES),
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        target.python,
    ]
    for tag in pip_platform_tags(target):
        args += ["--platform", tag]
    for r in requirements:
        args += ["-r", str(r)]
    return args


_CONN_BROKEN = re.compile(r"after connection broken by '(.*)': (\S+)")
_FETCH_FAILED = re.compile(r"Could not fetch URL (\S+?): (.*?)(?: - skipping)?\Z")
_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")
_WRONG_PYTHON = re.compile(r"Package '([^']+)' requires a different Python")


def pip_problems(output: str) -> tuple[list[str], list[str]]:
    """pip's own relevant lines: (errors, connection failures), each in order, without repeats."""
    errors: list[str] = []
    conn: list[str] = []
    in_conflict = False
    for raw in output.splitlines():
        line = raw.strip()
        if in_conflict:
            if line:
                errors.append(line)
                continue
            in_conflict = False
        if line.startswith("ERROR: "):
            text = line[len("ERROR: ") :]
            if not text.startswith("ResolutionImpossible"):
                errors.append(text)
        elif line == "The conflict is caused by:":
            errors.append(line)
            in_conflict = True
        elif m := _CONN_BROKEN.search(line):
            reason = re.sub(r"<[^>]*>:\s*", "", m.group(1))
            reason = re.sub(r"^\w+\(['\"]?|['\"]?\)$", "", reason)
            conn.append(f"{m.group(2)}: {reason}")
        elif m := _FETCH_FAILED.search(line):
            conn.append(f"{m.group(1)}: {m.group(2)}")
    return list(dict.fromkeys(errors)), list(dict.fromkeys(conn))


def _pip_failure(run: _PipRun, target: WheelTarget, source: str, hint: str) -> ResolveError:
    errors, conn = pip_problems(run.output)
    if not errors and not conn:
        tail = [ln for ln in run.output.strip().splitlines() if ln.strip()][-8:]
        errors = tail or [f"pip exited with status {run.returncode}"]
    missing = [m.group(1) for e in errors if (m := _NO_MATCH.search(e))]
    if conn and (missing or not errors):
        lines = [f"connection failed: {c}" for c in conn[-3:]] + errors
        return IndexUnreachable(
            f"pip could not reach {source} to resolve wheels for {target.describe()}:\n  "
            + "\n  ".join(lines),
            hint="check the index URL, the network and the proxy; or resolve from a wheelhouse "
            "folder (wheels: {wheelhouse: DIR}) or with --offline",
        )
    lines = errors + [f"connection failed: {c}" for c in conn[-3:]]
    wrong_python = [m.group(1) for e in errors if (m := _WRONG_PYTHON.search(e))]
    if missing:
        hint = hint.replace("{names}", ", ".join(missing)).replace("{first}", missing[0])
    elif wrong_python:
        hint = (
            f"pin a version of {', '.join(wrong_python)} that supports Python {target.python}, "
            "or set wheels.python to the Python the site runs"
        )
    else:
        hint = "read pip's message above; the requirements conflict or cannot be met for the target"
    return ResolveError(
        f"pip found no wheels fitting {target.describe()} in {source}:\n  " + "\n  ".join(lines),
        hint=hint,
    )


def _isolated_env() -> dict[str, str]:
    """The environment without pip's configuration: no config files, no PIP_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


@dataclass(frozen=True)
class _Source:
    """Where pip looks: a folder of wheels alone (``folder``), or an index."""

    describe: str  # "the wheelhouse /x", "https://mirror/simple", ...
    args: tuple[str, ...]  # --no-index --find-links DIR | --index-url URL | ()
    env: dict[str, str]
    hint: str  # {names} and {first}: the requirements pip found nothing for
    folder: Path | None = None
    general: tuple[str, ...] = ()  # pip options that go before the command


def _folder_source(folder: Path, describe: str, hint: str) -> _Source:
    return _Source(
        describe,
        ("--no-index", "--find-links", str(folder)),
        _isolated_env(),
        hint,
        folder,
        general=("--isolated",),
    )


def _index_source(index_url: str | None) -> _Source:
    env = dict(os.environ)
    hint = (
        "no wheel of {names} on the index fits the target: pin a version that ships a wheel "
        "for it (see the project's files on the index), or build one and resolve from a "
        "wheelhouse folder (wheels for musl or for a glibc newer than the site's are not taken)"
    )
    if not index_url:
        return _Source("the package index of this host's pip configuration", (), env, hint)
    # the manifest's index only: no extra indexes or find-links from pip's configuration, whose
    # TLS, proxy and trusted-host settings still apply (pip skips empty values; a blank one
    # splits into an empty list)
    env["PIP_EXTRA_INDEX_URL"] = " "
    env["PIP_FIND_LINKS"] = " "
    env.pop("PIP_NO_INDEX", None)
    return _Source(index_url, ("--index-url", index_url), env, hint)


def _pip_download(
    dest: Path,
    source: _Source,
    target: WheelTarget,
    requirements: Sequence[Path],
    timeout: float,
) -> list[Path]:
    """``pip download`` into the empty folder ``dest``: the wheels pip chose, by name."""
    args = [
        *source.general,
        "download",
        "--dest",
        str(dest),
        *source.args,
        *_common_args(target, requirements, timeout),
    ]
    run = _run_pip(args, source.env, timeout, f"resolving from {source.describe}")
    if run.returncode != 0:
        raise _pip_failure(run, target, source.describe, source.hint)
    files = sorted(dest.iterdir())
    for f in files:
        if not f.name.endswith(".whl"):
            raise ResolveError(f"pip downloaded {f.name}, which is not a wheel")
    return files


def _in_folder(
    copies: Sequence[Path], folder: Path, describe: str
) -> tuple[list[Path], dict[Path, FileDigest]]:
    """Map pip's copies back to the files in ``folder``; each must be one of them, unchanged."""
    originals = []
    for c in copies:
        o = folder / c.name
        if not o.is_file():
            raise ResolveError(
                f"pip took {c.name} from outside {describe}",
                hint="a requirements file must not name indexes, links or files: put every "
                "wheel into the wheelhouse folder itself",
            )
        originals.append(o)
    digests = sha256_files(
        [*copies, *originals], error=ResolveError
    )  # streamed, several files at once
    for c, o in strict_zip(copies, originals):
        if digests[c] != digests[o]:
            raise ResolveError(
                f"pip took a {c.name} that differs from {o} (sha256 {digests[c].sha256} "
                f"vs {digests[o].sha256}): from outside {describe}, or changed meanwhile",
                hint="a requirements file must not name indexes, links or files; run airgap "
                "lock again once nothing writes to the wheelhouse",
            )
    return originals, {o: digests[o] for o in originals}


# ----------------------------------------------------------------------------- resolve


def _check_inputs(wheels: Wheels) -> None:
    if not wheels.requirements:
        raise ResolveError(
            "wheels: no requirements file",
            hint="name one: wheels: {requirements: requirements.txt}",
        )
    for r in wheels.requirements:
        try:
            with open(r, "rb"):
                pass
        except FileNotFoundError:
            raise ResolveError(
                f"requirements file {r} does not exist",
                hint="check wheels.requirements in the manifest (relative to its folder)",
            ) from None
        except IsADirectoryError:
            raise ResolveError(f"requirements file {r} is a folder, not a file") from None
        except OSError as exc:
            raise ResolveError(f"requirements file {r}: cannot read: {exc.strerror}") from None


def _check_folder(folder: Path, what: str, hint: str) -> None:
    if not folder.exists():
        raise ResolveError(f"{what} {folder} does not exist", hint=hint)
    if not folder.is_dir():
        raise ResolveError(f"{what} {folder} is not a folder", hint=hint)
    try:
        has_wheels = any(p.name.endswith(".whl") and p.is_file() for p in folder.iterdir())
    except OSError as exc:
        raise ResolveError(f"{what} {folder}: cannot list: {exc.strerror}") from None
    if not has_wheels:
        raise ResolveError(f"{what} {folder} holds no .whl files", hint=hint)


def resolve_wheels(
    wheels: Wheels,
    platform: str,
    *,
    cache_dir: Path,
    offline: bool = False,
    timeout: float = 60.0,
    glibc: tuple[int, int] = DEFAULT_GLIBC,
) -> tuple[LockedWheel, ...]:
    """Resolve ``wheels.requirements`` to wheel files for ``platform`` and the target Python.

    From ``wheels.wheelhouse`` when there is one (offline; the wheels are locked where they
    lie); else, when ``offline``, from ``cache_dir / "wheels"``; else from the index into
    ``cache_dir / "wheels"``. pip works in a fresh folder under ``cache_dir / "wheels"``.
    ``timeout`` bounds each pip run (seconds, wall clock); ``glibc`` is the newest glibc assumed
    at the site. Raises :class:`ResolveError` for inputs that cannot be read or resolved
    (:class:`IndexUnreachable` for the network) and :class:`WheelTagError` for a chosen wheel
    that does not fit the target.
    """
    python = target_python(wheels)
    try:
        target = WheelTarget(platform, python, glibc, generic_linux=wheels.wheelhouse is not None)
    except ValueError as exc:
        raise ResolveError(str(exc)) from None
    _check_inputs(wheels)
    cache = cache_dir / "wheels"
    if wheels.wheelhouse is not None:
        wh = wheels.wheelhouse
        _check_folder(wh, "wheelhouse", "wheels.wheelhouse must name a folder of .whl files")
        plats = pip_platform_tags(target)
        legacy = [p for p in plats if p.startswith("manylinux2014_")]
        platform_args = " ".join(f"--platform {p}" for p in [plats[0], *legacy[:1]])
        source = _folder_source(
            wh,
            f"the wheelhouse {wh}",
            "add a wheel of {names} built for the target to the wheelhouse: pure "
            f"(py3-none-any) or {' / '.join([plats[0], *legacy[:1]])}, CPython {python}; on a "
            f"connected host: pip download --only-binary=:all: {platform_args} "
            f"--python-version {python} --implementation cp --dest {wh} " + "{first}"
            f" (wheels needing a glibc newer than {glibc[0]}.{glibc[1]} are not taken)",
        )
    elif offline:
        _check_folder(
            cache,
            "offline, and the wheel cache",
            "--offline resolves from wheels an earlier connected `airgap lock` downloaded; "
            "run it once while connected, or name a wheelhouse folder in the manifest",
        )
        source = _folder_source(
            cache,
            f"the wheel cache {cache} (offline)",
            "the cache lacks a wheel of {names} for the target: run `airgap lock` once while "
            "connected, or name a wheelhouse folder in the manifest",
        )
    else:
        source = _index_source(wheels.index_url)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResolveError(f"{cache}: cannot create the wheel cache: {exc.strerror}") from None
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as tmp:
        copies = _pip_download(Path(tmp), source, target, wheels.requirements, timeout)
        parsed = check_wheels((c.name for c in copies), target)
        if source.folder is not None:
            paths, digests = _in_folder(copies, source.folder, source.describe)
        else:
            paths = []
            for c in copies:
                os.replace(c, cache / c.name)
                paths.append(cache / c.name)
            digests = sha256_files(paths, error=ResolveError)  # streamed, several files at once
    locked = [
        LockedWheel(p.name, w.name, w.version, digests[p].sha256, digests[p].size, w.tags)
        for p, w in strict_zip(paths, parsed)
    ]
    return tuple(sorted(locked, key=lambda w: (w.name, w.version, w.filename)))
