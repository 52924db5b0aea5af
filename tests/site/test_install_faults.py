"""Faults with real processes and file systems: kill -9 at many points of an install, a disk that
fills up mid-install (a tmpfs), too little room or inodes up front, two installs at once, and
kill -9 of uninstall at each of its steps.

The prefix must always be in the old or the new state: ``current`` points at a complete
version, `airgap audit --site` finds nothing wrong, every blob under a final name matches it,
and a re-run completes. The kill points come from the installer's test-only step counter
(AIRGAP_TEST_KILL_AFTER=N: SIGKILL after N write steps; AIRGAP_TEST_STOP_AFTER=N: SIGSTOP),
stratified over the whole run with a fixed seed (AIRGAP_TEST_SEED overrides it).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from packager.bundle import layout
from packager.signing.trust import policy_from_keys
from packager.site import auditlog
from packager.site.install import InstallOptions, install_bundle
from packager.site.integrity import audit_site
from tests.site.install_support import (
    Bundles,
    airgap_proc,
    built_bundles,
    cli,
    copy_prefix,
    current,
    install,
    log_lines,
    run,
    store_is_sound,
)
from tests.support.fs import mounted_tmpfs

TRIALS = 20
COMMIT_STEPS = 10  # the installer's last write steps: everything after the version is staged
SEED = int(os.environ.get("AIRGAP_TEST_SEED") or 20240909)


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    return built_bundles(tmp_path_factory)


def install_here(bundle: Path, prefix: Path, pub: Path) -> Any:
    return install_bundle(bundle, prefix, policy_from_keys([pub]), InstallOptions(probe=False))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, bundles: Bundles) -> Path:
    """many 1.0.0 installed: the old state of every trial."""
    prefix = tmp_path_factory.mktemp("faults") / "site"
    install_here(bundles.many1, prefix, bundles.pub)
    return prefix


def assert_consistent(prefix: Path, allowed: tuple[str, ...]) -> str:
    """The prefix is in one of the ``allowed`` states; returns the current version."""
    now = current(prefix, "many")
    assert now in allowed, now
    report = audit_site(prefix)
    assert report.ok, report.to_json()
    store_is_sound(prefix)
    return str(now)


def wait_stopped(proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until the process has stopped itself (SIGSTOP); fails when it ends first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()
        with open(f"/proc/{proc.pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        time.sleep(0.02)
    raise AssertionError("the install never reached its stop point")


# ----------------------------------------------------------------------------- kill -9


def test_kill_9_at_20_points_then_a_rerun(
    tmp_path: Path, template: Path, bundles: Bundles, capsys: pytest.CaptureFixture[str]
) -> None:
    probe = tmp_path / "count"
    copy_prefix(template, probe)
    r = install(
        bundles.many2, probe, bundles.pub, "--no-probe", "--json", AIRGAP_TEST_KILL_AFTER="0"
    )
    assert r.returncode == 0, r.stderr
    note = next(n for n in json.loads(r.stdout)["notes"] if n.startswith("test hook:"))
    total = int(note.split()[2])
    assert total > 250  # 200+ files: blobs, links, folders, the commit
    rng = random.Random(SEED)
    # 15 points stratified over the staging (blobs, links, .airgap/), 5 among the last steps
    # (the commit: folder and receipt renames, the current switch, the log), so both sides of
    # the commit point are hit
    body, tail = TRIALS - 5, COMMIT_STEPS
    edges = [1 + (total - tail) * i // body for i in range(body + 1)]
    points = [rng.randrange(lo, max(lo + 1, hi)) for lo, hi in itertools.pairwise(edges)]
    points += sorted(rng.sample(range(total - tail + 1, total + 1), TRIALS - body))
    outcomes: dict[str, list[int]] = {"1.0.0": [], "2.0.0": []}
    for n in points:
        prefix = tmp_path / f"kill-{n}"
        copy_prefix(template, prefix)
        r = install(bundles.many2, prefix, bundles.pub, "--no-probe", AIRGAP_TEST_KILL_AFTER=str(n))
        assert r.returncode == -signal.SIGKILL, (n, r.returncode, r.stderr)
        outcomes[assert_consistent(prefix, ("1.0.0", "2.0.0"))].append(n)
        again = install_here(bundles.many2, prefix, bundles.pub)  # the re-run, in process
        assert again.action in ("installed", "activated", "unchanged")
        assert assert_consistent(prefix, ("2.0.0",)) == "2.0.0"
        assert list((prefix / layout.SITE_STAGING_DIR).iterdir()) == []
        entries = log_lines(prefix)
        assert auditlog.current_by_log(entries, "many") == ("2.0.0", again.digest)
    with capsys.disabled():
        print(
            f"\nkill -9 trials (seed {SEED}, {total} write steps): {len(points)} killed installs, "
            f"old state after {len(outcomes['1.0.0'])} (steps {outcomes['1.0.0']}), new state "
            f"after {len(outcomes['2.0.0'])} (steps {outcomes['2.0.0']}); every re-run completed"
        )
    assert outcomes["1.0.0"] and outcomes["2.0.0"]  # both sides of the commit were hit


@pytest.mark.slow
def test_kill_9_after_random_delays(tmp_path: Path, template: Path, bundles: Bundles) -> None:
    """The same, killed from outside at a random time within the install's run time."""
    t0 = time.monotonic()
    full = tmp_path / "timing"
    copy_prefix(template, full)
    assert install(bundles.many2, full, bundles.pub, "--no-probe").returncode == 0
    took = time.monotonic() - t0
    rng = random.Random(SEED + 1)
    for i in range(3):
        prefix = tmp_path / f"kill-{i}"
        copy_prefix(template, prefix)
        proc = airgap_proc("install", str(bundles.many2), "--prefix", str(prefix), "--key",
                           str(bundles.pub), "--no-probe")  # fmt: skip
        time.sleep(rng.uniform(0.3, 1.0) * took)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert_consistent(prefix, ("1.0.0", "2.0.0"))
        assert install_here(bundles.many2, prefix, bundles.pub).version == "2.0.0"
        assert_consistent(prefix, ("2.0.0",))


def test_kill_9_of_uninstall_at_each_step(tmp_path: Path, template: Path, bundles: Bundles) -> None:
    two = tmp_path / "two"
    copy_prefix(template, two)
    install_here(bundles.many2, two, bundles.pub)
    for n in range(1, 9):
        prefix = tmp_path / f"u-{n}"
        copy_prefix(two, prefix)
        r = run(
            "uninstall", "many", "--prefix", str(prefix), "--all", AIRGAP_TEST_KILL_AFTER=str(n)
        )
        assert r.returncode in (0, -signal.SIGKILL), r.stderr
        report = audit_site(prefix)
        assert report.ok, report.to_json()
        store_is_sound(prefix)
        if r.returncode == 0:
            break
        r = cli("uninstall", "many", "--prefix", str(prefix), "--all")  # the re-run, in process
        assert r.returncode in (0, 2), r.stderr  # 2: the killed one had removed everything
        assert not (prefix / layout.SITE_BUNDLES_DIR / "many").exists()
        assert list((prefix / layout.SITE_RECEIPTS_DIR).iterdir()) == []
        assert audit_site(prefix).ok
    else:
        raise AssertionError("uninstall took more than 8 steps")


# ----------------------------------------------------------------------------- a full disk


@pytest.fixture
def disk(tmp_path: Path) -> Any:
    def mount(size: str, extra: str = "") -> Path:
        where = tmp_path / "disk"
        if not mounted_tmpfs(where, size + extra):
            from tests.support.services import unavailable

            unavailable("cannot mount a tmpfs (needs root)")
        mounted.append(where)
        return where

    mounted: list[Path] = []
    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the file system is full."""
    filler = folder / "filler"
    with filler.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * (1 << 20))
                fh.flush()
        except OSError:
            pass
    return filler


def test_a_disk_that_fills_up_mid_install(disk: Any, bundles: Bundles) -> None:
    root = disk("32m")
    prefix = root / "site"
    install_here(bundles.many1, prefix, bundles.pub)
    proc = airgap_proc("install", str(bundles.many2), "--prefix", str(prefix), "--key",
                       str(bundles.pub), "--no-probe", AIRGAP_TEST_STOP_AFTER="1")  # fmt: skip
    wait_stopped(proc)  # the first blob's first chunk is written: the disk fills up now
    filler = fill(root)
    proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, out + err
    assert "no space left" in err and "1.0.0 is still current" in err and "Traceback" not in err
    assert_consistent(prefix, ("1.0.0",))  # and no partial blob under a final name
    assert list((prefix / layout.SITE_STAGING_DIR).iterdir()) == []
    assert [e["action"] for e in log_lines(prefix)] == ["install"]
    filler.unlink()
    assert install(bundles.many2, prefix, bundles.pub, "--no-probe").returncode == 0
    assert_consistent(prefix, ("2.0.0",))


def test_too_little_room_is_refused_before_writing(disk: Any, bundles: Bundles) -> None:
    root = disk("20m")
    prefix = root / "site"
    install_here(bundles.many1, prefix, bundles.pub)
    (root / "ballast").write_bytes(b"\0" * (6 << 20))
    before = sorted(p.name for p in (prefix / layout.SITE_BLOBS_DIR).iterdir())
    r = install(bundles.many2, prefix, bundles.pub, "--no-probe")
    assert (
        r.returncode == 2
        and "not enough free space" in r.stderr
        and "nothing was changed" in r.stderr
    )
    assert sorted(p.name for p in (prefix / layout.SITE_BLOBS_DIR).iterdir()) == before
    assert_consistent(prefix, ("1.0.0",))


def test_too_few_inodes_is_refused_before_writing(disk: Any, bundles: Bundles) -> None:
    root = disk("64m", ",nr_inodes=600")
    prefix = root / "site"
    install_here(bundles.many1, prefix, bundles.pub)
    r = install(bundles.many2, prefix, bundles.pub, "--no-probe")
    assert r.returncode == 2 and "not enough free inodes" in r.stderr, r.stderr
    assert_consistent(prefix, ("1.0.0",))


# ----------------------------------------------------------------------------- two at once


def test_a_second_install_waits_for_the_lock(
    tmp_path: Path, template: Path, bundles: Bundles
) -> None:
    prefix = tmp_path / "site"
    copy_prefix(template, prefix)
    first = airgap_proc("install", str(bundles.many2), "--prefix", str(prefix), "--key",
                        str(bundles.pub), "--no-probe", "--json", AIRGAP_TEST_STOP_AFTER="40")  # fmt: skip
    wait_stopped(first)  # holds the lock, half way through its blobs
    second = airgap_proc("install", str(bundles.many2), "--prefix", str(prefix), "--key",
                         str(bundles.pub), "--no-probe", "--json")  # fmt: skip
    time.sleep(2.0)
    assert second.poll() is None  # verified, and now waiting for the lock
    first.send_signal(signal.SIGCONT)
    out1, err1 = first.communicate(timeout=120)
    out2, err2 = second.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, err1 + err2
    assert json.loads(out1)["action"] == "installed"
    assert json.loads(out2)["action"] == "unchanged"
    assert_consistent(prefix, ("2.0.0",))
    assert [e["action"] for e in log_lines(prefix)] == ["install", "install"]


def test_two_versions_at_once(tmp_path: Path, bundles: Bundles) -> None:
    prefix = tmp_path / "site"
    procs = [
        airgap_proc(
            "install",
            str(b),
            "--prefix",
            str(prefix),
            "--key",
            str(bundles.pub),
            "--no-probe",
            "--json",
        )
        for b in (bundles.many1, bundles.many2)
    ]
    results = [(p.communicate(timeout=120), p.returncode) for p in procs]
    codes = [c for _, c in results]
    # many1 first then many2 (both installed), or many2 first and many1 refused (anti-rollback)
    assert codes in ([0, 0], [1, 0]), results
    if codes[0] == 1:
        assert "anti-rollback" in results[0][0][1]
    assert_consistent(prefix, ("2.0.0",))
