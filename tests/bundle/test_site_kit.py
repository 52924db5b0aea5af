"""The site kit's pieces that need no download: airgap's own wheel, the launcher's text, and
the errors of a kit that cannot be made."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from packager.bundle import layout, site_kit


def test_own_wheel_is_the_same_bytes_each_time_and_installs_the_package() -> None:
    reqs = site_kit.requirements()
    name, data = site_kit.own_wheel(reqs)
    assert (name, data) == site_kit.own_wheel(reqs)
    assert name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert names[-1].endswith(".dist-info/RECORD")  # RECORD last, as wheels have it
    for needed in ("packager/cli/app.py", "packager/schemas/bundle.schema.json",
                   "packager/compat/facts.yaml", "packager/site/launcher.sh"):  # fmt: skip
        assert needed in names
    assert not any("__pycache__" in n for n in names)
    assert "Requires-Python: >=3.9" in meta
    assert all(f"Requires-Dist: {r}" in meta for r in reqs)


def test_own_wheel_is_kept_in_the_cache_by_its_record(tmp_path: Path) -> None:
    reqs = site_kit.requirements()
    fresh = site_kit.own_wheel(reqs)
    assert site_kit.own_wheel(reqs, cache=tmp_path) == fresh  # made, then kept
    (kept,) = tmp_path.glob("own-*.whl")
    assert kept.read_bytes() == fresh[1]
    assert site_kit.own_wheel(reqs, cache=tmp_path) == fresh  # read back
    other = site_kit.own_wheel([*reqs, "extra-requirement>=1"], cache=tmp_path)
    assert other != fresh and len(list(tmp_path.glob("own-*.whl"))) == 2  # other METADATA


def test_a_cache_that_cannot_be_written_only_costs_time(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    reqs = site_kit.requirements()
    assert site_kit.own_wheel(reqs, cache=blocked / "sub") == site_kit.own_wheel(reqs)


def test_launcher_has_every_name_filled_in_and_is_valid_sh() -> None:
    text = site_kit.launcher().decode()
    assert "@" + "SITE_DIR@" not in text
    assert f'SITE_DIR = "{layout.SITE_DIR}"' in text
    assert f'BUNDLE_JSON = "{layout.BUNDLE_JSON}"' in text
    sh = shutil.which("dash") or shutil.which("sh")
    assert sh is not None
    assert subprocess.run([sh, "-n", "-c", text]).returncode == 0


@pytest.mark.parametrize(
    ("platform", "offline", "message"),
    [
        ("linux/s390x", False, "no kit for the platform 'linux/s390x'"),
        ("linux/amd64", True, "no cached wheels for linux/amd64 and --offline was given"),
    ],
)
def test_a_kit_that_cannot_be_made_says_why(
    tmp_path: Path, platform: str, offline: bool, message: str
) -> None:
    with pytest.raises(site_kit.SiteKitError) as info:
        site_kit.site_kit(platform, offline=offline, cache=tmp_path)
    assert message in str(info.value)
    assert "--no-site-kit" in (info.value.hint or "")
