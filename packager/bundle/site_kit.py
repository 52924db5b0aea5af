"""The site kit: airgap itself, for the target's platform and Python 3.9-3.13, inside a bundle.

A bundle carries at ``airgap/site/`` (layout.SITE_DIR) the launcher (a POSIX sh script), a kit
index (``kit.json``: which wheels each Python version installs) and the wheels: airgap's own
wheel, made here from the running package, byte for byte the same for the same source, and the
wheels of its dependencies for the target's platform. They are airgap files: ``bundle.json``
lists each with its sha256 and size, so the bundle's signature covers them like every other
byte, and ``sh airgap/site/airgap BUNDLE COMMAND ...`` checks them with openssl before it runs
any of them.

Why wheels and not one ``.pex``: a pex for several Pythons and a foreign platform needs pex's
own resolver and a runtime bootstrap inside the pex; wheels are what pip already downloads for
``--platform``/``--python-version``, each file keeps its own sha256 in the descriptor (so the
launcher checks each one with ``openssl dgst``), and installing them needs nothing on the site
but Python's own ``zipfile``: no pip, no venv module, no network.

The dependency wheels come from ``pip download --only-binary=:all:`` (each requirement on its
own: pip's resolver backtracks for minutes over the union), pure-Python sdists (``SDIST_ONLY``)
are built into wheels once, and everything is kept in the cache
(``$AIRGAP_CACHE_DIR/site-kit/<platform>/<key>/``), so a rebuild is offline.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packager import __version__
from packager.bundle import layout
from packager.errors import InputError
from packager.util.cache import cache_dir
from packager.util.fs import atomic_write_bytes

#: the Python versions a kit serves (the site's python3)
KIT_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
#: manylinux2014 (glibc 2.17) wheels: RHEL/Rocky 9, openEuler 22.03, Debian 11, Ubuntu 20.04+
PLATFORM_TAGS = {
    "linux/amd64": ("manylinux2014_x86_64", "manylinux_2_17_x86_64"),
    "linux/arm64": ("manylinux2014_aarch64", "manylinux_2_17_aarch64"),
}
#: dependencies published only as sdists; built into (pure-Python) wheels once
SDIST_ONLY = ("www-authenticate",)
DIST_NAME = "airgap"
#: the zip time of airgap's own wheel (zip cannot hold earlier ones)
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
PIP_TIMEOUT = 900.0


class SiteKitError(InputError):
    """The site kit could not be made: no wheels for a platform, pip failed, offline."""


@dataclass(frozen=True)
class SiteKit:
    """What goes under ``airgap/site/``: path below it -> content."""

    platform: str
    files: dict[str, bytes]

    @property
    def size(self) -> int:
        return sum(len(v) for v in self.files.values())


# ----------------------------------------------------------------------------- airgap's own wheel


def _package_files() -> list[tuple[str, bytes]]:
    """(path in the wheel, bytes) of every file the ``packager`` package installs."""
    root = Path(__file__).resolve().parent.parent
    out = []
    # followlinks: packager/schemas is a link to the repository's schemas/ in a source tree
    for folder, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in names:
            path = Path(folder) / name
            if path.suffix in (".py", ".json", ".yaml", ".sh") or name == "py.typed":
                out.append((path.relative_to(root.parent).as_posix(), path.read_bytes()))
    return sorted(out)


def requirements() -> list[str]:
    """airgap's runtime requirements (no extras), as its installed metadata lists them."""
    from importlib import metadata

    try:
        reqs = metadata.requires(DIST_NAME) or []
    except metadata.PackageNotFoundError:
        raise SiteKitError(
            f"the {DIST_NAME} distribution is not installed, so its requirements are unknown",
            hint="pip install the project (or build with --no-site-kit)",
        ) from None
    return sorted(r for r in reqs if "extra ==" not in r)


def _record_hash(data: bytes) -> str:
    import base64

    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def own_wheel(reqs: list[str], *, cache: Path | None = None) -> tuple[str, bytes]:
    """``airgap-VERSION-py3-none-any.whl`` made from the running package: the same source and
    requirements give the same bytes (sorted entries, fixed times and modes). With ``cache`` (a
    folder), the zip made once for a given source is kept there by the sha256 of its RECORD
    (every file's digest): compressing the package costs more than the rest of a delta build."""
    dist_info = f"{DIST_NAME}-{__version__}.dist-info"
    meta = [
        "Metadata-Version: 2.1",
        f"Name: {DIST_NAME}",
        f"Version: {__version__}",
        "Requires-Python: >=3.9",
        *(f"Requires-Dist: {r}" for r in reqs),
    ]
    files = _package_files()
    files += [
        (f"{dist_info}/METADATA", ("\n".join(meta) + "\n").encode()),
        (
            f"{dist_info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: airgap\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
        (f"{dist_info}/entry_points.txt", b"[console_scripts]\nairgap = packager.cli.app:main\n"),
    ]
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in files)
    files.append((f"{dist_info}/RECORD", (record + f"{dist_info}/RECORD,,\n").encode()))
    name = f"{DIST_NAME}-{__version__}-py3-none-any.whl"
    kept = None
    if cache is not None:
        kept = cache / f"own-{hashlib.sha256(files[-1][1]).hexdigest()[:32]}.whl"
        with contextlib.suppress(OSError):
            return name, kept.read_bytes()
    data = _zip(files)
    if kept is not None:  # a cache that cannot be written only costs time
        with contextlib.suppress(OSError, InputError):
            kept.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(kept, data)
    return name, data


def _zip(files: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            info = zipfile.ZipInfo(name, ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


# ----------------------------------------------------------------------------- dependency wheels

_WHEEL_NAME = re.compile(r"([A-Za-z0-9_.]+)-([^-]+)-(?:[0-9][^-]*-)?([^-]+)-([^-]+)-([^-]+)\.whl")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req)
    return _canonical(m.group(0)) if m else req


def _pip(args: list[str], what: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise SiteKitError(f"site kit: pip timed out ({what})") from None
    if r.returncode != 0:
        lines = [x for x in (r.stderr or r.stdout).splitlines() if not x.startswith("WARNING")]
        raise SiteKitError(
            f"site kit: pip could not get {what}: {' '.join(lines[-3:])[:600]}",
            hint="build on a host that reaches the package index once (the wheels are cached), "
            "or leave the kit out with --no-site-kit",
        )


def _build_sdists(work: Path) -> Path:
    """Wheels of the pure-Python sdist-only dependencies, built once."""
    built = work / "built"
    built.mkdir()
    for name in SDIST_ONLY:
        sd = work / "sdist"
        _pip(["download", "--no-deps", "--no-binary", ":all:", "-d", str(sd), name], name)
        for src in sorted(sd.iterdir()):
            _pip(["wheel", "--no-deps", "-w", str(built), str(src)], f"a wheel of {src.name}")
        shutil.rmtree(sd)
    for whl in built.iterdir():
        m = _WHEEL_NAME.fullmatch(whl.name)
        if not m or m.group(5) != "any" or m.group(4) != "none":
            raise SiteKitError(f"site kit: {whl.name} is not a pure-Python wheel")
    return built


def _download(platform: str, python: str, reqs: list[str], built: Path, dest: Path) -> list[str]:
    """The wheels ``reqs`` need on ``python`` / ``platform``: their file names (in ``dest``)."""
    tags = [a for t in PLATFORM_TAGS[platform] for a in ("--platform", t)]
    got = dest / python
    got.mkdir()
    for req in reqs:
        _pip(
            [
                "download",
                "--only-binary=:all:",
                *tags,
                # pip reads "3.9" as 3.9.0, which some wheels exclude (cryptography: !=3.9.0)
                "--python-version",
                f"{python}.10",
                "--implementation",
                "cp",
                "--find-links",
                str(built),
                "-d",
                str(got),
                req,
            ],
            f"{req} for Python {python} on {platform}",
        )
    # one wheel per project (separate resolutions may pick a project twice): the newest
    best: dict[str, tuple[tuple[int, ...], str]] = {}
    for whl in sorted(got.iterdir()):
        m = _WHEEL_NAME.fullmatch(whl.name)
        if not m:
            raise SiteKitError(f"site kit: pip left {whl.name}, not a wheel")
        key = tuple(int(x) for x in re.findall(r"\d+", m.group(2)))
        name = _canonical(m.group(1))
        if name not in best or key > best[name][0]:
            best[name] = (key, whl.name)
    names = sorted(n for _, n in best.values())
    for n in names:
        target = dest / "wheels" / n
        if not target.exists():
            shutil.copyfile(got / n, target)
    return names


def _cache_key(platform: str, reqs: list[str]) -> str:
    doc = {"format": layout.SITE_KIT_FORMAT, "platform": platform, "pythons": KIT_PYTHONS,
           "tags": PLATFORM_TAGS[platform], "requirements": reqs, "sdists": SDIST_ONLY}  # fmt: skip
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


def dependency_wheels(
    platform: str, reqs: list[str], *, offline: bool, cache: Path | None = None
) -> tuple[dict[str, list[str]], Path]:
    """Python version -> the dependency wheels' names, and the folder that holds them; from the
    cache, else downloaded (and cached) unless ``offline``."""
    base = (cache or cache_dir()) / "site-kit" / platform.replace("/", "-")
    folder = base / _cache_key(platform, reqs)
    index = folder / "deps.json"
    if index.is_file():
        doc = json.loads(index.read_text())
        return {k: list(v) for k, v in doc["pythons"].items()}, folder / "wheels"
    if offline:
        raise SiteKitError(
            f"site kit: no cached wheels for {platform} and --offline was given",
            hint="build once with the package index reachable, or use --no-site-kit",
        )
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".partial-", dir=base))
    try:
        (work / "wheels").mkdir()
        built = _build_sdists(work)
        with ThreadPoolExecutor(max_workers=2) as pool:
            found = dict(
                zip(
                    KIT_PYTHONS,
                    pool.map(lambda py: _download(platform, py, reqs, built, work), KIT_PYTHONS),
                )
            )
        for py in KIT_PYTHONS:
            shutil.rmtree(work / py)
        shutil.rmtree(built)
        (work / "deps.json").write_text(json.dumps({"pythons": found}, indent=1, sort_keys=True))
        try:
            os.rename(work, folder)
        except OSError:  # another build cached it first
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return found, folder / "wheels"


# ----------------------------------------------------------------------------- the kit


def launcher() -> bytes:
    """The launcher script, with the bundle's names filled in from layout."""
    from importlib import resources

    text = resources.files("packager.site").joinpath("launcher.sh").read_text(encoding="utf-8")
    values = {
        "BUNDLE_JSON": layout.BUNDLE_JSON,
        "SIGNATURES_DIR": layout.SIGNATURES_DIR,
        "SITE_DIR": layout.SITE_DIR,
        "SITE_KIT_INDEX": layout.SITE_KIT_INDEX,
        "SITE_WHEELS_DIR": layout.SITE_WHEELS_DIR,
        "SITE_KIT_INSTALL_DIR": layout.SITE_KIT_INSTALL_DIR,
        "SITE_BUNDLES_DIR": layout.SITE_BUNDLES_DIR,
        "INSTALLED_WHEELS_DIR": layout.installed_meta_path(layout.SITE_WHEELS_DIR),
        "SITE_KIT_FORMAT": str(layout.SITE_KIT_FORMAT),
        "PROBE_DIR": layout.PROBE_DIR,
        "MIN_PYTHON": KIT_PYTHONS[0],
        "MAX_PYTHON": KIT_PYTHONS[-1],
    }
    for k, v in values.items():
        text = text.replace(f"@{k}@", v)
    if re.search(r"@[A-Z_]+@", text):
        raise AssertionError("launcher.sh: a placeholder was left unfilled")
    return text.encode()


def _rel(path: str) -> str:
    return path[len(layout.SITE_DIR) + 1 :]


def site_kit(platform: str, *, offline: bool = False, cache: Path | None = None) -> SiteKit:
    """The kit for ``platform`` (``linux/amd64`` or ``linux/arm64``)."""
    if platform not in PLATFORM_TAGS:
        raise SiteKitError(
            f"site kit: no kit for the platform {platform!r}",
            hint=f"kits exist for {', '.join(PLATFORM_TAGS)}; build with --no-site-kit",
        )
    reqs = requirements()
    deps, folder = dependency_wheels(platform, reqs, offline=offline, cache=cache)
    own_name, own = own_wheel(reqs, cache=folder.parent)
    wheels_rel = _rel(layout.SITE_WHEELS_DIR)
    files = {_rel(layout.SITE_LAUNCHER): launcher()}
    # a tar (ustar) name holds at most 100 characters after its last "/", and manylinux wheel
    # names run longer: each wheel is stored as <sha256 prefix>.whl, kit.json keeps its name
    short: dict[str, str] = {}
    for name in sorted({own_name, *(n for names in deps.values() for n in names)}):
        data = own if name == own_name else (folder / name).read_bytes()
        stored = hashlib.sha256(data).hexdigest()[:32] + ".whl"
        short[name] = stored
        files[f"{wheels_rel}/{stored}"] = data
    index = {
        "format": layout.SITE_KIT_FORMAT,
        "airgap": __version__,
        "platform": platform,
        "wheels": {v: k for k, v in short.items()},
        "pythons": {py: sorted(short[n] for n in [own_name, *deps[py]]) for py in KIT_PYTHONS},
    }
    files[_rel(layout.SITE_KIT_INDEX)] = (
        json.dumps(index, indent=1, sort_keys=True) + "\n"
    ).encode()
    return SiteKit(platform, dict(sorted(files.items())))
