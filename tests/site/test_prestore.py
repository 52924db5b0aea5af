"""An install reads each new large blob of the bundle once: the verification copies it into an
unnamed file while it hashes it (packager.site.prestore), and the install only names it. Real
bundles from the real build, with a weight file above prestore.MIN_BYTES; the result must be
exactly what the two-pass install (hash, then copy) gives, and a bundle that fails leaves
nothing, named or not."""

from __future__ import annotations

import errno
import gc
import os
import random
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, ClassVar

import pytest

from packager.bundle import layout
from packager.signing.trust import policy_from_keys
from packager.site import install as install_mod
from packager.site import prestore as prestore_mod
from packager.site.install import InstallOptions, NotVerified, install_bundle
from packager.site.integrity import audit_site
from packager.site.prestore import MIN_BYTES, Prestore
from packager.site.safefs import SiteError
from tests.site.install_support import (
    descriptor_of,
    env,
    split_into_parts,
    store_is_sound,
    tree_files,
)
from tests.support.projects import make_key

LARGE = MIN_BYTES + 4096 + 123  # above the threshold, not a whole number of blocks

MANIFEST = """\
apiVersion: airgap/v1
kind: Bundle
metadata: {{name: big, version: {version}}}
model: {{name: org/big, source: {{path: ./weights-{version}}}, format: onnx}}
target: {{platform: linux/amd64, accelerator: {{vendor: none}}}}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """big 1.0.0 (two large weight files and a small one), 2.0.0 (one large file rewritten) and
    the delta of 2.0.0 from 1.0.0."""
    base = tmp_path_factory.mktemp("prestore")
    priv, pub, _ = make_key(base, "k")
    rng = random.Random(7)
    a, b = rng.randbytes(LARGE), rng.randbytes(LARGE + 1)
    for version, first in (("1.0.0", a), ("2.0.0", rng.randbytes(LARGE))):
        w = base / f"weights-{version}"
        w.mkdir()
        (w / "model.onnx").write_bytes(first)
        (w / "extra.onnx_data").write_bytes(b)
        (w / "config.json").write_text('{"architectures": ["Big"]}\n')
        (base / f"m-{version}.yaml").write_text(MANIFEST.format(version=version))
    out: dict[str, Path] = {"pub": pub}

    def airgap(*args: str) -> None:
        r = subprocess.run(
            [sys.executable, "-m", "packager", *args],
            capture_output=True, text=True, timeout=300,
            env=env(AIRGAP_CACHE_DIR=str(base / "cache")),
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr

    for version in ("1.0.0", "2.0.0"):
        airgap("build", str(base / f"m-{version}.yaml"), "--key", str(priv), "--out", str(base))
        out[version] = base / f"big-{version}.airgap.tar"
    airgap("build", str(base / "m-2.0.0.yaml"), "--key", str(priv), "--out", str(base / "d"),
           "--base", str(out["1.0.0"]))  # fmt: skip
    out["delta"] = base / "d" / "big-2.0.0.delta-from-1.0.0.airgap.tar"
    out["1.0.0-parts"] = split_into_parts(out["1.0.0"], base / "parts", size=3 << 20)
    folder = base / "folder" / "big-1.0.0"  # a layout folder: the tar extracted
    folder.mkdir(parents=True)
    subprocess.run(["tar", "-xf", str(out["1.0.0"]), "-C", str(folder)], check=True)
    out["1.0.0-folder"] = folder
    return out


class Spy(Prestore):
    """A Prestore that records what it copied and named."""

    made: ClassVar[list[Spy]] = []

    def __init__(self, prefix_path: Path) -> None:
        super().__init__(prefix_path)
        self.copied: list[str] = []
        self.took: list[str] = []  # blobs stored from their unnamed copies (append: atomic)
        Spy.made.append(self)

    @property
    def named(self) -> int:
        return len(self.took)

    def copy(self, bundle: Any, member: str, size: int, progress: Any) -> str | None:
        got = super().copy(bundle, member, size, progress)
        self.copied.append(member)
        return got

    def take(self, hexd: str, size: int, staging: Any, name: str) -> bool:
        took = super().take(hexd, size, staging, name)
        if took:
            self.took.append(hexd)
        return took


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[Spy]:
    Spy.made = []
    monkeypatch.setattr(install_mod, "Prestore", Spy)
    return Spy.made


def install(bundle: Path, prefix: Path, pub: Path) -> install_mod.InstallResult:
    return install_bundle(bundle, prefix, policy_from_keys([pub]), InstallOptions(probe=False))


def large_blobs(tar: Path) -> set[str]:
    return {b["digest"] for b in descriptor_of(tar)["blobs"] if b["size"] >= MIN_BYTES}


def in_store(prefix: Path) -> set[str]:
    return {"sha256:" + p.name for p in (prefix / layout.SITE_BLOBS_DIR).iterdir()}


def version_tree(prefix: Path, version: str) -> dict[str, bytes]:
    """An installed version's files, less its signatures (two builds from one lock sign anew)."""
    return {
        k: v
        for k, v in tree_files(prefix / layout.SITE_BUNDLES_DIR / "big" / version).items()
        if ".sig" not in k and "attestation" not in k
    }


def open_fds() -> int:
    """The descriptors this process holds, once what earlier tests left to the collector is
    collected (it would otherwise close theirs in the middle of the install measured)."""
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def site_tree(prefix: Path) -> dict[str, bytes]:
    """What an install leaves, less what differs by when it ran (receipts, the audit log)."""
    return {
        k: v
        for k, v in tree_files(prefix).items()
        if not k.startswith((layout.SITE_RECEIPTS_DIR, "audit.log", ".staging"))
        and k != layout.SITE_CHECKED_RECORD  # (inode numbers and times)
    }


@pytest.mark.parametrize("form", ["1.0.0", "1.0.0-parts", "1.0.0-folder"])
def test_a_new_large_blob_is_copied_once_and_the_result_is_the_two_pass_result(
    built: dict[str, Path],
    tmp_path: Path,
    spy: list[Spy],
    monkeypatch: pytest.MonkeyPatch,
    form: str,
) -> None:
    """A tar (read with pread), parts (a stream across them), a layout folder (its files)."""
    fds = open_fds()
    result = install(built[form], tmp_path / "one" / "site", built["pub"])
    (p,) = spy
    assert len(large_blobs(built["1.0.0"])) == 2
    assert {"sha256:" + m.rsplit("/", 1)[1] for m in p.copied} == large_blobs(built["1.0.0"])
    assert p.named == 2 and result.blobs_written >= 2
    assert large_blobs(built["1.0.0"]) <= in_store(tmp_path / "one" / "site")
    assert open_fds() == fds  # every unnamed file closed
    store_is_sound(tmp_path / "one" / "site")
    assert audit_site(tmp_path / "one" / "site").to_json()["ok"]
    # the same install without unnamed files (read twice): the same site
    monkeypatch.setattr(prestore_mod, "_TMPFILE", 0)
    install(built["1.0.0"], tmp_path / "two" / "site", built["pub"])
    assert spy[1].named == 0 and spy[1].copied == []
    assert site_tree(tmp_path / "one" / "site") == site_tree(tmp_path / "two" / "site")


def test_a_delta_copies_only_the_blob_it_carries(
    built: dict[str, Path], tmp_path: Path, spy: list[Spy]
) -> None:
    site = tmp_path / "site"
    install(built["1.0.0"], site, built["pub"])
    install(built["delta"], site, built["pub"])
    new = large_blobs(built["2.0.0"]) - large_blobs(built["1.0.0"])
    assert len(new) == 1
    assert {"sha256:" + m.rsplit("/", 1)[1] for m in spy[1].copied} == new
    assert spy[1].named == 1
    install(built["2.0.0"], tmp_path / "full", built["pub"])
    assert version_tree(site, "2.0.0") == version_tree(tmp_path / "full", "2.0.0")
    store_is_sound(site)
    assert audit_site(site).to_json()["ok"]


def _tampered(tar: Path, dest: Path) -> Path:
    """A copy of ``tar`` with one byte of model.onnx's blob flipped (the signature still holds:
    bundle.json is untouched)."""
    with tarfile.open(tar) as t:
        (m,) = (m for m in t.getmembers() if m.name.startswith("blobs/") and m.size == LARGE)
        where = m.offset_data + m.size // 2
    data = bytearray(tar.read_bytes())
    data[where] ^= 0xFF
    dest.write_bytes(bytes(data))
    return dest


@pytest.mark.parametrize("site_exists", [False, True])
def test_a_tampered_large_blob_leaves_nothing_named_or_not(
    built: dict[str, Path], tmp_path: Path, spy: list[Spy], site_exists: bool
) -> None:
    bad = _tampered(built["2.0.0"], tmp_path / "bad.airgap.tar")
    parent = tmp_path / "parent"
    parent.mkdir()
    site = parent / "site"
    if site_exists:  # its store holds extra.onnx_data: only model.onnx is new
        install(built["1.0.0"], site, built["pub"])
    before = sorted(str(p) for p in parent.rglob("*"))
    fds = open_fds()
    with pytest.raises(NotVerified) as info:
        install(bad, site, built["pub"])
    assert "model blob (model/model.onnx): content is sha256:" in info.value.message
    assert "not its digest" in info.value.message
    assert spy[-1].copied and spy[-1].named == 0  # copied while hashed, never named
    assert sorted(str(p) for p in parent.rglob("*")) == before
    assert open_fds() == fds


def test_a_bundle_whose_signatures_fail_is_never_copied(
    built: dict[str, Path], tmp_path: Path, spy: list[Spy]
) -> None:
    _, other, _ = make_key(tmp_path, "other")
    with pytest.raises(NotVerified):
        install(built["1.0.0"], tmp_path / "site", other)
    assert spy[0].copied == []
    assert not (tmp_path / "site").exists()


def _no_unnamed(self: Prestore) -> int | None:
    return None


def _link_refused(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.EXDEV, "Invalid cross-device link")


def _no_room(*args: Any, **kwargs: Any) -> str:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failure", ["no O_TMPFILE here", "no room to copy", "the link is refused"])
def test_without_an_unnamed_file_the_blob_is_copied_from_the_bundle(
    built: dict[str, Path],
    tmp_path: Path,
    spy: list[Spy],
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    if failure == "no O_TMPFILE here":
        monkeypatch.setattr(Prestore, "_unnamed", _no_unnamed)
    elif failure == "no room to copy":
        monkeypatch.setattr(prestore_mod, "capped_copy", _no_room)
    else:
        monkeypatch.setattr(prestore_mod, "_link_fd", _link_refused)
    fds = open_fds()
    result = install(built["1.0.0"], tmp_path / "site", built["pub"])
    assert spy[0].named == 0 and result.blobs_written >= 2
    assert large_blobs(built["1.0.0"]) <= in_store(tmp_path / "site")
    assert open_fds() == fds
    store_is_sound(tmp_path / "site")
    assert audit_site(tmp_path / "site").to_json()["ok"]


def test_a_store_that_is_a_link_gets_no_copy_through_it(
    built: dict[str, Path], tmp_path: Path, spy: list[Spy]
) -> None:
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    install(built["1.0.0"], site, built["pub"])
    store = site / layout.SITE_BLOBS_DIR
    shutil.move(store, elsewhere)
    store.symlink_to(elsewhere, target_is_directory=True)
    before = sorted(p.name for p in elsewhere.iterdir())
    with pytest.raises(SiteError):
        install(built["2.0.0"], site, built["pub"])
    assert spy[-1].copied == [] and sorted(p.name for p in elsewhere.iterdir()) == before
