"""Wheels for the target platform and Python: tag logic (table-driven) and real pip runs.

The wheels are real files made by ``tests.support.wheels`` (pip reads and installs them); the pip runs
are the real ``python -m pip``, offline against a wheelhouse or a ``file://`` simple index, plus
one slow test against the machine's real index.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from packager.errors import CheckFailed, ResolveError
from packager.manifest.model import Wheels
from packager.resolve import wheels as wheels_mod
from packager.resolve.lockfile import LockedWheel
from packager.resolve.wheels import (
    DEFAULT_PYTHON,
    IndexUnreachable,
    WheelTagError,
    WheelTarget,
    check_wheel,
    check_wheels,
    is_supported,
    normalize_name,
    parse_wheel_filename,
    pip_problems,
    platform_tags,
    resolve_wheels,
    tag_problems,
    target_python,
)
from tests.support import services
from tests.support.wheels import make_wheel, write_simple_index

AMD64, ARM64 = "linux/amd64", "linux/arm64"

# ----------------------------------------------------------------------------- file names


@pytest.mark.parametrize(
    ("filename", "name", "version", "build", "tags"),
    [
        ("six-1.16.0-py2.py3-none-any.whl", "six", "1.16.0", None,
         ("py2-none-any", "py3-none-any")),
        ("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", "torch", "2.13.0+cpu", None,
         ("cp311-cp311-manylinux_2_28_x86_64",)),
        ("numpy-2.1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", "numpy",
         "2.1.0", None,
         ("cp311-cp311-manylinux_2_17_aarch64", "cp311-cp311-manylinux2014_aarch64")),
        ("Foo_Bar-1.0-1-py3-none-any.whl", "foo-bar", "1.0", "1", ("py3-none-any",)),
        ("foo-1.0-12abc-py3-none-any.whl", "foo", "1.0", "12abc", ("py3-none-any",)),
        ("zope.interface-6.0-cp311-cp311-manylinux_2_17_x86_64.whl", "zope-interface", "6.0",
         None, ("cp311-cp311-manylinux_2_17_x86_64",)),
        ("cryptography-42.0.0-cp39-abi3-manylinux_2_28_aarch64.whl", "cryptography", "42.0.0",
         None, ("cp39-abi3-manylinux_2_28_aarch64",)),
        ("Pillow-1!2.0.post1-py3-none-any.whl", "pillow", "1!2.0.post1", None, ("py3-none-any",)),
        ("a-1-py2.py3-cp311.abi3-x.y.whl", "a", "1", None,
         ("py2-cp311-x", "py2-cp311-y", "py2-abi3-x", "py2-abi3-y",
          "py3-cp311-x", "py3-cp311-y", "py3-abi3-x", "py3-abi3-y")),
    ],
)  # fmt: skip
def test_parse_wheel_filename(
    filename: str, name: str, version: str, build: str | None, tags: tuple[str, ...]
) -> None:
    w = parse_wheel_filename(filename)
    assert (w.filename, w.name, w.version, w.build, w.tags) == (
        filename,
        name,
        version,
        build,
        tags,
    )


@pytest.mark.parametrize(
    "filename",
    [
        "six-1.16.0.tar.gz",
        "six-1.16.0-py3-none-any.zip",
        "six-py3-none-any.whl",
        "a-b-c-d-e-f-g.whl",
        "six-1.0-x1-py3-none-any.whl",
        "six-1.0-py3-none-.whl",
        "six-1.0-py3..py2-none-any.whl",
        "-1.0-py3-none-any.whl",
        "six-1 0-py3-none-any.whl",
        "dir/six-1.0-py3-none-any.whl",
        ".whl",
    ],
)
def test_parse_wheel_filename_rejects(filename: str) -> None:
    with pytest.raises(ValueError, match=r"wheel file name|bad"):
        parse_wheel_filename(filename)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [("six", "six"), ("Foo_Bar", "foo-bar"), ("zope.interface", "zope-interface"),
     ("a__b--c..d", "a-b-c-d"), ("PyYAML", "pyyaml")],
)  # fmt: skip
def test_normalize_name(raw: str, normalized: str) -> None:
    assert normalize_name(raw) == normalized


# ----------------------------------------------------------------------------- platform tags


def test_platform_tags_amd64() -> None:
    tags = platform_tags(WheelTarget(AMD64))
    assert tags[0] == "manylinux_2_28_x86_64"
    assert tags[-1] == "manylinux1_x86_64"
    assert tags.index("manylinux2014_x86_64") == tags.index("manylinux_2_17_x86_64") + 1
    assert tags.index("manylinux2010_x86_64") == tags.index("manylinux_2_12_x86_64") + 1
    assert tags.index("manylinux1_x86_64") == tags.index("manylinux_2_5_x86_64") + 1
    assert len(tags) == 24 + 3  # 2.28 ... 2.5 and three legacy aliases
    assert not any("musllinux" in t or t.startswith("linux_") for t in tags)


def test_platform_tags_arm64() -> None:
    tags = platform_tags(WheelTarget(ARM64))
    assert tags[0] == "manylinux_2_28_aarch64"
    assert tags[-2:] == ("manylinux_2_17_aarch64", "manylinux2014_aarch64")
    assert len(tags) == 12 + 1  # aarch64 starts at glibc 2.17; no manylinux1/2010
    assert all(t.endswith("_aarch64") for t in tags)


def test_platform_tags_glibc_and_generic() -> None:
    tags = platform_tags(WheelTarget(ARM64, glibc=(2, 35), generic_linux=True))
    assert tags[0] == "manylinux_2_35_aarch64"
    assert tags[-1] == "linux_aarch64"


@pytest.mark.parametrize(
    ("platform", "python", "glibc", "message"),
    [
        ("linux/arm/v7", "3.11", (2, 28), "no wheels for platform"),
        ("windows/amd64", "3.11", (2, 28), "no wheels for platform"),
        ("linux/amd64", "2.7", (2, 28), "not a Python 3 version"),
        ("linux/amd64", "3", (2, 28), "not a Python 3 version"),
        ("linux/amd64", "3.x", (2, 28), "not a Python 3 version"),
        ("linux/amd64", "3.11", (2, 12), "glibc"),
    ],
)
def test_wheel_target_rejects(
    platform: str, python: str, glibc: tuple[int, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        WheelTarget(platform, python, glibc)


# ----------------------------------------------------------------------------- tag checks


@dataclass(frozen=True)
class Case:
    filename: str
    platform: str
    python: str = "3.11"
    ok: bool = True
    why: str = ""  # a piece of the problem text when not ok
    glibc: tuple[int, int] = (2, 28)
    generic: bool = False


def _id(c: Case) -> str:
    return (
        f"{c.filename.split('-', 2)[2].removesuffix('.whl')}@{c.platform.split('/')[1]}-{c.python}"
    )


CASES = [
    # pure Python
    Case("six-1.16.0-py2.py3-none-any.whl", ARM64),
    Case("six-1.16.0-py2.py3-none-any.whl", AMD64, "3.13"),
    Case("a-1-py3-none-any.whl", AMD64, "3.8"),
    Case("a-1-py311-none-any.whl", ARM64),
    Case("a-1-py311-none-any.whl", ARM64, "3.10", False, "does not run on CPython 3.10"),
    Case("a-1-py310-none-any.whl", ARM64, "3.11"),
    Case("a-1-cp311-none-any.whl", ARM64),
    Case("a-1-cp311-none-any.whl", ARM64, "3.12", False, "built for CPython 3.11, not 3.12"),
    Case("a-1-py2-none-any.whl", AMD64, "3.11", False, "python tag py2"),
    Case("a-1-py3-none-manylinux_2_17_x86_64.whl", AMD64),
    Case("a-1-py310-none-manylinux2014_aarch64.whl", ARM64),
    # manylinux, by machine
    Case("a-1-cp311-cp311-manylinux2014_aarch64.whl", ARM64),
    Case("a-1-cp311-cp311-manylinux2014_aarch64.whl", AMD64, ok=False,
         why="built for aarch64; linux/amd64 needs x86_64"),
    Case("a-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", AMD64),
    Case("a-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", ARM64, ok=False,
         why="built for x86_64; linux/arm64 needs aarch64"),
    Case("a-1-cp311-cp311-manylinux_2_17_x86_64.manylinux_2_17_aarch64.whl", AMD64),
    Case("a-1-cp311-cp311-manylinux_2_17_x86_64.manylinux_2_17_aarch64.whl", ARM64),
    Case("a-1-cp311-cp311-manylinux1_x86_64.whl", AMD64),
    Case("a-1-cp311-cp311-manylinux2010_x86_64.whl", AMD64),
    Case("a-1-cp311-cp311-manylinux_2_5_x86_64.whl", AMD64),
    Case("a-1-cp311-cp311-manylinux1_x86_64.whl", ARM64, ok=False, why="built for x86_64"),
    Case("a-1-cp311-cp311-manylinux2014_i686.whl", AMD64, ok=False, why="built for i686"),
    Case("a-1-cp311-cp311-manylinux2014_ppc64le.whl", ARM64, ok=False, why="built for ppc64le"),
    Case("a-1-cp311-cp311-manylinux2014_armv7l.whl", ARM64, ok=False, why="built for armv7l"),
    # manylinux, by glibc
    Case("a-1-cp311-cp311-manylinux_2_28_aarch64.whl", ARM64),
    Case("a-1-cp311-cp311-manylinux_2_31_aarch64.whl", ARM64, ok=False,
         why="needs glibc 2.31, newer than the site's 2.28"),
    Case("a-1-cp311-cp311-manylinux_2_31_aarch64.whl", ARM64, glibc=(2, 35)),
    Case("a-1-cp311-cp311-manylinux_2_34_x86_64.whl", AMD64, ok=False, why="needs glibc 2.34"),
    # musl, generic linux, other systems
    Case("a-1-cp311-cp311-musllinux_1_2_x86_64.whl", AMD64, ok=False, why="musl libc"),
    Case("a-1-cp311-cp311-musllinux_1_1_aarch64.whl", ARM64, ok=False, why="musl libc"),
    Case("a-1-cp311-cp311-linux_x86_64.whl", AMD64, ok=False, why="locally built"),
    Case("a-1-cp311-cp311-linux_x86_64.whl", AMD64, generic=True),
    Case("a-1-cp311-cp311-linux_aarch64.whl", ARM64, generic=True),
    Case("a-1-cp311-cp311-linux_x86_64.whl", ARM64, ok=False, generic=True,
         why="built for x86_64"),
    Case("a-1-cp311-cp311-linux_armv7l.whl", ARM64, ok=False, generic=True,
         why="linux_armv7l is built for armv7l; linux/arm64 needs aarch64"),
    Case("a-1-cp311-cp311-macosx_11_0_arm64.whl", ARM64, ok=False, why="another operating system"),
    Case("a-1-cp311-cp311-win_amd64.whl", AMD64, ok=False, why="another operating system"),
    Case("a-1-cp311-cp311-manylinux2014_aarch64.macosx_11_0_arm64.whl", ARM64),
    # CPython versions and ABIs
    Case("a-1-cp311-cp311-manylinux2014_aarch64.whl", ARM64, "3.12", False,
         "built for CPython 3.11, not 3.12"),
    Case("a-1-cp312-cp312-manylinux_2_17_aarch64.whl", ARM64, "3.11", False,
         "built for CPython 3.12, not 3.11"),
    Case("a-1-cp310-cp310-manylinux_2_17_x86_64.whl", AMD64, "3.11", False,
         "built for CPython 3.10"),
    Case("a-1-cp39-abi3-manylinux_2_28_aarch64.whl", ARM64),
    Case("a-1-cp39-abi3-manylinux_2_28_aarch64.whl", ARM64, "3.13"),
    Case("a-1-cp311-abi3-manylinux_2_17_x86_64.whl", AMD64, "3.11"),
    Case("a-1-cp312-abi3-manylinux_2_17_x86_64.whl", AMD64, "3.11", False,
         "needs CPython 3.12 or newer, not 3.11"),
    Case("a-1-cp39-abi3-manylinux_2_28_aarch64.whl", ARM64, "3.8", False,
         "needs CPython 3.9 or newer"),
    Case("a-1-cp311-none-manylinux2014_aarch64.whl", ARM64),
    Case("a-1-cp311-cp311d-manylinux2014_aarch64.whl", ARM64, ok=False, why="does not run"),
    Case("a-1-cp313-cp313t-manylinux2014_aarch64.whl", ARM64, "3.13", False, "does not run"),
    Case("a-1-cp37-cp37m-manylinux1_x86_64.whl", AMD64, "3.7"),
    Case("a-1-cp38-cp38-manylinux1_x86_64.whl", AMD64, "3.8"),
    Case("a-1-py3-cp311-manylinux2014_aarch64.whl", ARM64, ok=False, why="py3 with ABI cp311"),
    Case("a-1-cp311-abi3-any.whl", ARM64, ok=False, why="combination"),
    Case("a-1-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl", AMD64, "3.10", False,
         "another Python implementation"),
    # both wrong: every problem is named
    Case("a-1-cp312-cp312-musllinux_1_2_x86_64.whl", ARM64, ok=False, why="musl libc"),
    Case("a-1-cp312-cp312-musllinux_1_2_x86_64.whl", ARM64, ok=False, why="CPython 3.12"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_tag_problems(case: Case) -> None:
    target = WheelTarget(case.platform, case.python, case.glibc, case.generic)
    problems = tag_problems(parse_wheel_filename(case.filename), target)
    if case.ok:
        assert problems == ()
        assert check_wheel(case.filename, target).filename == case.filename
    else:
        assert problems, case
        assert case.why in "; ".join(problems)
        with pytest.raises(WheelTagError) as exc:
            check_wheel(case.filename, target)
        # the error names the wheel, its tags and the target
        assert case.filename in exc.value.message
        assert parse_wheel_filename(case.filename).tags[0] in exc.value.message
        assert target.describe() in exc.value.message
        assert exc.value.hint
        assert isinstance(exc.value, CheckFailed)
        assert exc.value.exit_code == 1


def test_check_wheels_names_every_bad_wheel() -> None:
    target = WheelTarget(ARM64)
    good = "six-1.16.0-py2.py3-none-any.whl"
    bad = ["x-1-cp311-cp311-manylinux2014_x86_64.whl", "y-2-cp312-cp312-manylinux2014_aarch64.whl"]
    assert [w.name for w in check_wheels([good], target)] == ["six"]
    with pytest.raises(WheelTagError) as exc:
        check_wheels([good, *bad], target)
    assert "2 wheel(s) do not fit the target linux/arm64, CPython 3.11" in exc.value.message
    for b in bad:
        assert b in exc.value.message
    assert good not in exc.value.message
    assert "x, y" in (exc.value.hint or "")


def test_check_wheel_bad_filename_is_a_check_failure() -> None:
    with pytest.raises(WheelTagError, match="not a wheel file name"):
        check_wheel("six-1.16.0.tar.gz", WheelTarget(ARM64))


PYTHONS = ["3.8", "3.10", "3.11", "3.12", "3.13"]


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("platform", [AMD64, ARM64])
def test_supported_tags_agree_with_packaging(platform: str, python: str) -> None:
    """Our tag set is exactly the one pip builds (packaging.tags) for the same options."""
    from packaging import tags as ptags  # a test dependency: pip's own tag logic

    target = WheelTarget(platform, python)
    plats = list(platform_tags(target))
    version = tuple(int(x) for x in python.split("."))
    theirs = {
        str(t)
        for t in [
            *ptags.cpython_tags(version, None, plats),
            *ptags.compatible_tags(version, f"cp{version[0]}{version[1]}", plats),
        ]
    }
    pythons = [f"cp3{m}" for m in range(0, 15)] + [f"py3{m}" for m in range(0, 15)]
    pythons += ["py3", "py2", "pp310"]
    abis = ["none", "abi3", *(f"cp3{m}" for m in range(5, 15)), "cp37m", "cp311d", "cp313t"]
    universe = [*plats, "any", "linux_x86_64", "manylinux2014_armv7l", "musllinux_1_2_x86_64"]
    for py in pythons:
        for abi in abis:
            for plat in universe:
                tag = f"{py}-{abi}-{plat}"
                assert is_supported(py, abi, plat, target) == (tag in theirs), tag


# ----------------------------------------------------------------------------- pip's messages


def test_pip_problems_connection_and_errors() -> None:
    out = """\
Looking in indexes: http://127.0.0.1:1/simple
WARNING: Retrying (Retry(total=1, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPConnection object at 0x7f0>: Failed to establish a new connection: [Errno 111] Connection refused')': /simple/six/
WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPConnection object at 0x7f1>: Failed to establish a new connection: [Errno 111] Connection refused')': /simple/six/
ERROR: Could not find a version that satisfies the requirement six==1.16.0 (from versions: none)
ERROR: No matching distribution found for six==1.16.0
"""
    errors, conn = pip_problems(out)
    assert errors == [
        "Could not find a version that satisfies the requirement six==1.16.0 (from versions: none)",
        "No matching distribution found for six==1.16.0",
    ]
    assert conn == [
        "/simple/six/: Failed to establish a new connection: [Errno 111] Connection refused"
    ]


def test_pip_problems_conflict_and_fetch() -> None:
    out = """\
Could not fetch URL https://mirror.example/simple/six/: There was a problem confirming the ssl certificate: HTTPSConnectionPool(host='mirror.example', port=443) - skipping
ERROR: Cannot install alpha-pkg==1.0 and beta<1 because these package versions have conflicting dependencies.

The conflict is caused by:
    The user requested beta<1
    alpha-pkg 1.0 depends on beta>=1

To fix this you could try to:
1. loosen the range of package versions you've specified

ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/
"""
    errors, conn = pip_problems(out)
    assert errors == [
        "Cannot install alpha-pkg==1.0 and beta<1 because these package versions have "
        "conflicting dependencies.",
        "The conflict is caused by:",
        "The user requested beta<1",
        "alpha-pkg 1.0 depends on beta>=1",
    ]
    assert conn == [
        "https://mirror.example/simple/six/: There was a problem confirming the ssl "
        "certificate: HTTPSConnectionPool(host='mirror.example', port=443)"
    ]


# ----------------------------------------------------------------------------- real pip runs


def spec(
    reqs: Sequence[Path],
    wheelhouse: Path | None = None,
    python: str | None = None,
    index_url: str | None = None,
) -> Wheels:
    return Wheels(tuple(reqs), wheelhouse, python, index_url, ("runtime", "wheels"))


def requirements(folder: Path, *lines: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "requirements.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of real wheels shared by the pip tests (read-only for them)."""
    wh = tmp_path_factory.mktemp("wheelhouse")
    make_wheel(wh, "Alpha_Pkg", "1.0", requires=["beta>=1"])
    make_wheel(wh, "beta", "1.0")
    make_wheel(wh, "beta", "2.0")
    make_wheel(wh, "gamma", "2.0", tag="cp311-cp311-manylinux2014_aarch64")
    make_wheel(wh, "delta", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64")
    make_wheel(wh, "delta", "1.0", tag="cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64")
    make_wheel(wh, "eta", "1.0", tag="cp311-cp311-musllinux_1_2_aarch64")
    make_wheel(wh, "theta", "1.0", tag="cp311-cp311-linux_aarch64")
    make_wheel(wh, "zeta", "1.0", tag="cp311-cp311-linux_armv7l")
    make_wheel(wh, "kappa", "1.0", requires_python=">=3.12")
    (wh / "README.txt").write_text("not a wheel; pip and airgap ignore it\n")
    return wh


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("platform", [AMD64, ARM64])
def test_wheelhouse_pure_wheels_and_their_dependency(
    wheelhouse: Path, tmp_path: Path, platform: str
) -> None:
    req = requirements(tmp_path, "alpha-pkg")
    locked = resolve_wheels(spec([req], wheelhouse), platform, cache_dir=tmp_path / "cache")
    assert [(w.name, w.version) for w in locked] == [("alpha-pkg", "1.0"), ("beta", "2.0")]
    for w in locked:
        path = wheelhouse / w.filename
        assert w.sha256 == sha256_of(path)
        assert w.size == path.stat().st_size
        assert w.tags == ("py3-none-any",)
    assert locked[0].filename == "Alpha_Pkg-1.0-py3-none-any.whl"
    # a wheelhouse is used where it lies: nothing is copied into the cache
    assert list((tmp_path / "cache" / "wheels").iterdir()) == []
    if platform == ARM64:  # the same inputs give the same lock
        again = resolve_wheels(spec([req], wheelhouse), platform, cache_dir=tmp_path / "cache")
        assert again == locked


def test_what_we_lock_is_what_pip_installs_at_the_site(wheelhouse: Path, tmp_path: Path) -> None:
    """The site's own `pip install --no-index` installs exactly the locked wheels."""
    req = requirements(tmp_path, "alpha-pkg", "delta")
    locked = resolve_wheels(spec([req], wheelhouse), AMD64, cache_dir=tmp_path / "cache")
    site = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    proc = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheelhouse),
            "--only-binary=:all:", "--platform", "manylinux2014_x86_64", "--python-version",
            "3.11", "--implementation", "cp", "--target", str(site), "--disable-pip-version-check",
            "-r", str(req),
        ],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = sorted(p.name for p in site.glob("*.dist-info"))
    assert installed == sorted(f"{w.filename.split('-')[0]}-{w.version}.dist-info" for w in locked)
    assert (site / "alpha_pkg" / "__init__.py").read_text().endswith('VERSION = "1.0"\n')
    assert [w.name for w in locked] == ["alpha-pkg", "beta", "delta"]


def test_aarch64_wheel_is_chosen_for_arm64(wheelhouse: Path, tmp_path: Path) -> None:
    req = requirements(tmp_path, "gamma")
    (w,) = resolve_wheels(spec([req], wheelhouse, "3.11"), ARM64, cache_dir=tmp_path)
    assert (w.filename, w.name, w.version) == (
        "gamma-2.0-cp311-cp311-manylinux2014_aarch64.whl",
        "gamma",
        "2.0",
    )
    assert w.tags == ("cp311-cp311-manylinux2014_aarch64",)
    assert w.sha256 == sha256_of(wheelhouse / w.filename)


def test_aarch64_wheel_is_refused_for_amd64(wheelhouse: Path, tmp_path: Path) -> None:
    req = requirements(tmp_path, "gamma")
    with pytest.raises(ResolveError) as exc:
        resolve_wheels(spec([req], wheelhouse), AMD64, cache_dir=tmp_path)
    msg, hint = exc.value.message, exc.value.hint or ""
    assert "No matching distribution found for gamma" in msg
    assert "linux/amd64, CPython 3.11" in msg
    assert str(wheelhouse) in msg
    assert "add a wheel of gamma" in hint
    assert "manylinux_2_28_x86_64" in hint and "manylinux2014_x86_64" in hint
    assert exc.value.exit_code == 2


def test_each_platform_gets_its_own_wheel(wheelhouse: Path, tmp_path: Path) -> None:
    req = requirements(tmp_path, "delta")
    (amd,) = resolve_wheels(spec([req], wheelhouse), AMD64, cache_dir=tmp_path)
    (arm,) = resolve_wheels(spec([req], wheelhouse), ARM64, cache_dir=tmp_path)
    assert amd.filename.endswith("manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert arm.filename.endswith("manylinux_2_17_aarch64.manylinux2014_aarch64.whl")
    assert amd.tags == (
        "cp311-cp311-manylinux_2_17_x86_64",
        "cp311-cp311-manylinux2014_x86_64",
    )
    assert amd.sha256 != arm.sha256


def test_cp311_wheel_is_refused_for_python_312(wheelhouse: Path, tmp_path: Path) -> None:
    req = requirements(tmp_path, "gamma")
    with pytest.raises(ResolveError) as exc:
        resolve_wheels(spec([req], wheelhouse, "3.12"), ARM64, cache_dir=tmp_path)
    assert "linux/arm64, CPython 3.12" in exc.value.message
    assert "No matching distribution found for gamma" in exc.value.message


def test_requires_python_is_checked_against_the_target(wheelhouse: Path, tmp_path: Path) -> None:
    req = requirements(tmp_path, "kappa")
    with pytest.raises(ResolveError) as exc:
        resolve_wheels(spec([req], wheelhouse, "3.11"), ARM64, cache_dir=tmp_path)
    assert "'kappa' requires a different Python: 3.11.0 not in '>=3.12'" in exc.value.message
    assert "supports Python 3.11" in (exc.value.hint or "")
    (w,) = resolve_wheels(spec([req], wheelhouse, "3.12"), ARM64, cache_dir=tmp_path)
    assert w.name == "kappa"


def test_musllinux_wheel_is_refused(wheelhouse: Path, tmp_path: Path) -> None:
    req = requirements(tmp_path, "eta")
    with pytest.raises(ResolveError, match="No matching distribution found for eta"):
        resolve_wheels(spec([req], wheelhouse), ARM64, cache_dir=tmp_path)


def test_locally_built_linux_wheel_is_taken_from_a_wheelhouse(
    wheelhouse: Path, tmp_path: Path
) -> None:
    req = requirements(tmp_path, "theta")
    (w,) = resolve_wheels(spec([req], wheelhouse), ARM64, cache_dir=tmp_path)
    assert w.tags == ("cp311-cp311-linux_aarch64",)
    with pytest.raises(ResolveError, match="theta"):
        resolve_wheels(spec([req], wheelhouse), AMD64, cache_dir=tmp_path)


def test_our_check_refuses_what_a_permissive_pip_let_through(
    wheelhouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip told to accept linux_armv7l picks the armv7l wheel; our own tag check refuses it."""
    permissive = wheels_mod.pip_platform_tags

    def with_armv7l(target: WheelTarget) -> tuple[str, ...]:
        return (*permissive(target), "linux_armv7l")

    monkeypatch.setattr(wheels_mod, "pip_platform_tags", with_armv7l)
    req = requirements(tmp_path, "zeta", "alpha-pkg")
    with pytest.raises(WheelTagError) as exc:
        resolve_wheels(spec([req], wheelhouse), ARM64, cache_dir=tmp_path)
    msg = exc.value.message
    assert "zeta-1.0-cp311-cp311-linux_armv7l.whl" in msg
    assert "cp311-cp311-linux_armv7l" in msg
    assert "linux/arm64, CPython 3.11" in msg
    assert "built for armv7l; linux/arm64 needs aarch64" in msg
    assert "alpha" not in msg.lower()
    assert exc.value.exit_code == 1


def test_requirement_with_no_matching_version(wheelhouse: Path, tmp_path: Path) -> None:
    req = requirements(tmp_path, "beta==3.0")
    with pytest.raises(ResolveError) as exc:
        resolve_wheels(spec([req], wheelhouse), AMD64, cache_dir=tmp_path)
    assert "No matching distribution found for beta==3.0" in exc.value.message
    assert "from versions: 1.0, 2.0" in exc.value.message
    assert "add a wheel of beta==3.0" in (exc.value.hint or "")


def test_conflicting_requirements(wheelhouse: Path, tmp_path: Path) -> None:
    req = requirements(tmp_path, "alpha-pkg", "beta<1")
    with pytest.raises(ResolveError) as exc:
        resolve_wheels(spec([req], wheelhouse), AMD64, cache_dir=tmp_path)
    assert "beta" in exc.value.message
    assert not isinstance(exc.value, IndexUnreachable)


def test_several_requirements_files(wheelhouse: Path, tmp_path: Path) -> None:
    a = requirements(tmp_path / "a", "alpha-pkg")
    b = requirements(tmp_path / "b", "beta==1.0", "gamma")
    locked = resolve_wheels(spec([a, b], wheelhouse), ARM64, cache_dir=tmp_path)
    assert [(w.name, w.version) for w in locked] == [
        ("alpha-pkg", "1.0"),
        ("beta", "1.0"),
        ("gamma", "2.0"),
    ]


def test_wheel_from_outside_the_wheelhouse_is_refused(wheelhouse: Path, tmp_path: Path) -> None:
    """A requirements file that names other links cannot pull wheels past the wheelhouse."""
    other = tmp_path / "elsewhere"
    make_wheel(other, "iota", "1.0")
    req = requirements(tmp_path, f"--find-links {other}", "iota")
    with pytest.raises(ResolveError) as exc:
        resolve_wheels(spec([req], wheelhouse), ARM64, cache_dir=tmp_path)
    assert "outside the wheelhouse" in exc.value.message
    assert "iota" in exc.value.message


def test_pip_configuration_does_not_leak_into_a_wheelhouse_build(
    wheelhouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "elsewhere"
    make_wheel(other, "iota", "1.0")
    monkeypatch.setenv("PIP_FIND_LINKS", str(other))
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nfind-links = {other}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    req = requirements(tmp_path, "iota")
    with pytest.raises(ResolveError, match="No matching distribution found for iota"):
        resolve_wheels(spec([req], wheelhouse), ARM64, cache_dir=tmp_path)


# ----------------------------------------------------------------------------- bad input


def test_missing_requirements_file(wheelhouse: Path, tmp_path: Path) -> None:
    with pytest.raises(ResolveError, match=r"requirements file .*nope\.txt does not exist"):
        resolve_wheels(spec([tmp_path / "nope.txt"], wheelhouse), ARM64, cache_dir=tmp_path)


def test_requirements_file_that_is_a_folder(wheelhouse: Path, tmp_path: Path) -> None:
    with pytest.raises(ResolveError, match="is a folder"):
        resolve_wheels(spec([tmp_path], wheelhouse), ARM64, cache_dir=tmp_path)


def test_no_requirements(wheelhouse: Path, tmp_path: Path) -> None:
    with pytest.raises(ResolveError, match="no requirements file"):
        resolve_wheels(spec([], wheelhouse), ARM64, cache_dir=tmp_path)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_text("x"), "is not a folder"),
        (lambda p: p.mkdir(), "holds no .whl files"),
        (lambda p: (p.mkdir(), (p / "a.txt").write_text("x")), "holds no .whl files"),
        (lambda p: (p.mkdir(), (p / "sub").mkdir(), make_wheel(p / "sub", "beta", "1.0")),
         "holds no .whl files"),
    ],
    ids=["missing", "a-file", "empty", "no-wheels", "wheels-in-subfolder-only"],
)  # fmt: skip
def test_bad_wheelhouse(tmp_path: Path, make: object, message: str) -> None:
    wh = tmp_path / "wheelhouse"
    make(wh)  # type: ignore[operator]
    req = requirements(tmp_path, "beta")
    with pytest.raises(ResolveError, match=message) as exc:
        resolve_wheels(spec([req], wh), ARM64, cache_dir=tmp_path)
    assert str(wh) in exc.value.message


@pytest.mark.parametrize(
    ("platform", "python", "message"),
    [("linux/arm/v7", None, "no wheels for platform"), (ARM64, "3.x", "not a Python 3")],
)
def test_bad_target(
    wheelhouse: Path, tmp_path: Path, platform: str, python: str | None, message: str
) -> None:
    req = requirements(tmp_path, "beta")
    with pytest.raises(ResolveError, match=message):
        resolve_wheels(spec([req], wheelhouse, python), platform, cache_dir=tmp_path)


def test_default_python() -> None:
    assert DEFAULT_PYTHON == "3.11"
    assert target_python(spec([])) == "3.11"
    assert target_python(spec([], python="3.12")) == "3.12"


# ----------------------------------------------------------------------------- index mode


@pytest.fixture(scope="module")
def file_index(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The wheelhouse served as a PEP 503 simple index at a file:// URL (no network)."""
    return write_simple_index(tmp_path_factory.mktemp("index"), sorted(wheelhouse.glob("*.whl")))


def test_index_download_into_the_cache(file_index: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    stale = make_wheel(cache / "wheels", "old", "0.1")
    req = requirements(tmp_path, "alpha-pkg", "gamma")
    locked = resolve_wheels(spec([req], None, "3.11", file_index), ARM64, cache_dir=cache)
    assert [w.name for w in locked] == ["alpha-pkg", "beta", "gamma"]
    for w in locked:
        assert w.sha256 == sha256_of(cache / "wheels" / w.filename)
    # only what pip chose is locked; the download folder is gone
    assert stale.exists()
    assert sorted(p.name for p in (cache / "wheels").iterdir()) == sorted(
        [stale.name, *(w.filename for w in locked)]
    )
    # offline, the cache alone gives the same lock
    offline = resolve_wheels(spec([req]), ARM64, cache_dir=cache, offline=True)
    assert offline == locked


def test_index_never_gives_a_locally_built_wheel(file_index: str, tmp_path: Path) -> None:
    req = requirements(tmp_path, "theta")
    with pytest.raises(ResolveError) as exc:
        resolve_wheels(spec([req], None, "3.11", file_index), ARM64, cache_dir=tmp_path)
    assert "No matching distribution found for theta" in exc.value.message
    assert file_index in exc.value.message
    assert "no wheel of theta on the index" in (exc.value.hint or "")


def test_offline_without_a_cache(tmp_path: Path) -> None:
    req = requirements(tmp_path, "beta")
    with pytest.raises(ResolveError) as exc:
        resolve_wheels(spec([req]), ARM64, cache_dir=tmp_path / "cache", offline=True)
    assert "offline" in exc.value.message
    assert "connected" in (exc.value.hint or "")


def test_offline_cache_lacks_a_wheel(wheelhouse: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "wheels").mkdir(parents=True)
    shutil.copy(wheelhouse / "beta-1.0-py3-none-any.whl", cache / "wheels")
    req = requirements(tmp_path, "gamma")
    with pytest.raises(ResolveError) as exc:
        resolve_wheels(spec([req]), ARM64, cache_dir=cache, offline=True)
    assert "No matching distribution found for gamma" in exc.value.message
    assert "run `airgap lock` once while connected" in (exc.value.hint or "")


def test_unreachable_index_fails_fast_and_clearly(tmp_path: Path) -> None:
    req = requirements(tmp_path, "six==1.16.0")
    url = "http://127.0.0.1:1/simple"
    start = time.monotonic()
    with pytest.raises(IndexUnreachable) as exc:
        resolve_wheels(spec([req], None, "3.11", url), ARM64, cache_dir=tmp_path, timeout=30)
    assert time.monotonic() - start < 30
    assert url in exc.value.message
    assert "Connection refused" in exc.value.message
    assert "linux/arm64" in exc.value.message
    assert exc.value.hint
    assert isinstance(exc.value, ResolveError)


def test_pip_wall_clock_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    req = requirements(tmp_path, "six")
    monkeypatch.setattr(wheels_mod, "pip_command", lambda: [_sleeper(tmp_path)])
    start = time.monotonic()
    with pytest.raises(ResolveError, match=r"did not finish .* within 0.5 s"):
        resolve_wheels(spec([req], None, "3.11", "http://127.0.0.1:1/simple"), ARM64,
                       cache_dir=tmp_path, timeout=0.5)  # fmt: skip
    assert time.monotonic() - start < 10


def _sleeper(folder: Path) -> str:
    """A stand-in for the Python that runs pip: it hangs."""
    script = folder / "hang.sh"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    return str(script)


# ----------------------------------------------------------------------------- the real index


@pytest.mark.slow
def test_real_index_six_for_arm64(tmp_path: Path) -> None:
    """pip download from the machine's configured index (PyPI): a small pure wheel."""
    req = requirements(tmp_path, "six==1.16.0")
    try:
        locked = resolve_wheels(spec([req], python="3.11"), ARM64, cache_dir=tmp_path, timeout=120)
    except IndexUnreachable as exc:
        services.unavailable(f"the package index is unreachable: {exc.message}")
    assert locked == (
        LockedWheel(
            "six-1.16.0-py2.py3-none-any.whl",
            "six",
            "1.16.0",
            "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254",
            11053,
            ("py2-none-any", "py3-none-any"),
        ),
    )
    assert sha256_of(tmp_path / "wheels" / locked[0].filename) == locked[0].sha256
