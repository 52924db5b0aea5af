#!/usr/bin/env python3
"""Benchmarks (not tests): airgap against the floors of ../shared/reference/performance.md.

    python scripts/bench.py lock [--size-gb 2] [--shards 4] [--dir DIR]
    python scripts/bench.py build [--size-gb 2] [--shards 4] [--dir DIR]
    python scripts/bench.py verify [--size-gb 2] [--shards 4] [--dir DIR]
    python scripts/bench.py probe
    python scripts/bench.py install [--size-gb 2] [--shards 4] [--dir DIR] [--runs 2]
    python scripts/bench.py delta [--size-gb 2] [--shards 20] [--changed 0.05] [--dir DIR]
    python scripts/bench.py big [--size-gb 20] [--shards 40] [--dir DIR]
    python scripts/bench.py scale [--files 50000] [--file-bytes 2048] [--dir DIR]
    python scripts/bench.py images [--size-gb 1]   (needs DOCKER_HOST: scripts/services.sh start)
    python scripts/bench.py fleet [--size-gb 0.2] [--nodes 8]  (needs AIRGAP_REGISTRY)
    python scripts/bench.py serve [--size-gb 1] [--clients 16] [--no-hash]
    python scripts/bench.py hsm [--signatures 2000]  (needs SoftHSM2: Debian softhsm2)
    python scripts/bench.py fuzz [--cases 10000] [--workers 2] [--seed S] [--kinds K,K] [--timeout 10]
    python scripts/bench.py fuzz --replay KIND:SEED:NUMBER [--keep]

Each benchmark makes its own data (incompressible safetensors shards), runs the floors and airgap
in one run on the same data and disk, and prints wall times, ratios and peak RSS. Absolute times
drift between machines; compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
AIRGAP = [sys.executable, "-m", "packager"]


#: the site kit's wheels, shared by every benchmark run: a build host keeps them in its cache, so
#: a "cold" build is cold for its inputs (stat cache, blob store), not for the kit's downloads
KIT_CACHE = Path(os.environ.get("AIRGAP_BENCH_KIT_CACHE", Path.home() / ".cache" / "airgap-bench"))


def bench_env(base: Path, *, passphrase: bool = True) -> dict[str, str]:
    """The environment airgap runs in for a benchmark: a cache of its own under ``base`` (cold stat
    cache and blob store) whose site-kit folder is the shared, primed one (KIT_CACHE)."""
    sys.path.insert(0, str(REPO))
    from packager.bundle.site_kit import site_kit

    site_kit("linux/amd64", cache=KIT_CACHE)  # downloads once per machine, then offline
    cache = base / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    link = cache / "site-kit"
    if not link.exists():
        link.symlink_to(KIT_CACHE / "site-kit", target_is_directory=True)
    env = {**os.environ, "AIRGAP_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
    # as on a host: Python keeps the bytecode it compiled (a sandbox that sets
    # PYTHONDONTWRITEBYTECODE would make every timed command compile airgap's sources again)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    import compileall

    compileall.compile_dir(REPO / "packager", quiet=1)  # no timed step pays a first compile
    if passphrase:
        env["AIRGAP_KEY_PASSPHRASE"] = "bench"
    return env


def make_shards(folder: Path, total_bytes: int, shards: int) -> list[Path]:
    """safetensors files of random (incompressible) bytes with a valid header."""
    folder.mkdir(parents=True, exist_ok=True)
    per = total_bytes // shards
    out = []
    for i in range(shards):
        n = per // 2  # BF16 elements
        header = json.dumps(
            {"w": {"dtype": "BF16", "shape": [n], "data_offsets": [0, n * 2]}}
        ).encode()
        path = folder / f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        with path.open("wb") as fh:
            fh.write(struct.pack("<Q", len(header)) + header)
            left = n * 2
            while left:
                chunk = os.urandom(min(left, 16 * 2**20))
                fh.write(chunk)
                left -= len(chunk)
        out.append(path)
    (folder / "config.json").write_text('{"architectures": ["Bench"]}\n')
    return out


def age(paths: Iterable[Path]) -> None:
    """Set mtimes an hour back: past the stat cache's racy window, as model files on a build
    host are (a file changed in the last 2 s is not cached, and a benchmark's are just made)."""
    old = time.time() - 3600
    for p in paths:
        os.utime(p, (old, old))


def weights_project(base: Path, args: argparse.Namespace) -> list[Path]:
    """``base/weights`` (incompressible shards) and ``base/m.yaml``, a CPU-only manifest for them."""
    shards = make_shards(base / "weights", int(args.size_gb * 1e9), args.shards)
    (base / "m.yaml").write_text(
        "apiVersion: airgap/v1\nkind: Bundle\nmetadata: {name: bench, version: 1.0.0}\n"
        "model: {name: bench/model, source: {path: ./weights}, format: safetensors, "
        "precision: bf16}\n"
        "target: {platform: linux/amd64, accelerator: {vendor: none}}\n"
    )
    return shards


def signed_bundle(base: Path, args: argparse.Namespace) -> dict[str, str]:
    """The weights project built into ``base/out/bench-1.0.0.airgap.tar``, signed with a key
    made for it (``base/k.key.pem``, ``base/k.pub.pem``); the environment the commands ran in."""
    weights_project(base, args)
    return _signed_build(base)


#: CPU seconds (user + system) of the last command :func:`timed` ran: on a shared, loaded machine
#: wall times stretch with the load, CPU times much less
LAST_CPU = [0.0]


def timed(cmd: Sequence[str], **kw: object) -> tuple[float, int]:
    """Wall seconds and the child's peak RSS in MiB (its CPU seconds in LAST_CPU)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, **kw)  # type: ignore[call-overload]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    LAST_CPU[0] = usage.ru_utime + usage.ru_stime
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(cmd)}")
    return wall, usage.ru_maxrss // 1024


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def _signed_build(base: Path, *extra: str) -> dict[str, str]:
    """A key base/k.{key,pub}.pem and `airgap build base/m.yaml --out base/out` signed with it;
    returns the environment the benchmark runs airgap in."""
    env = bench_env(base)
    subprocess.run([*AIRGAP, "key", "generate", "--out", str(base), "--name", "k"], env=env,
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    subprocess.run([*AIRGAP, "build", str(base / "m.yaml"), "--out", str(base / "out"),
                    "--key", str(base / "k.key.pem"), "--json", *extra],
                   env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return env


def bench_lock(args: argparse.Namespace) -> None:
    base = Path(args.dir or tempfile.mkdtemp(prefix="airgap-bench-"))
    try:
        shards = weights_project(base, args)
        age((base / "weights").iterdir())
        env = bench_env(base, passphrase=False)
        size = sum(p.stat().st_size for p in shards)
        half = len(shards) // 2
        rows: list[tuple[str, float, int | None]] = []
        floor, _ = timed(
            ["bash", "-c", 'openssl dgst -sha256 "$@" >/dev/null & openssl dgst -sha256 '
             + " ".join(f"'{p}'" for p in shards[half:]) + " >/dev/null; wait", "_",
             *map(str, shards[:half])]
        )  # fmt: skip
        rows.append(("hashing floor: 2x openssl dgst -sha256 in parallel", floor, None))
        t, _ = timed(["sha256sum", *map(str, shards)], stdout=subprocess.DEVNULL)
        rows.append(("sha256sum (coreutils)", t, None))
        first, rss1 = timed([*AIRGAP, "lock", str(base / "m.yaml"), "--json"], env=env,
                            stdout=subprocess.DEVNULL)  # fmt: skip
        rows.append(("airgap lock, cold stat cache", first, rss1))
        second, rss2 = timed([*AIRGAP, "lock", str(base / "m.yaml"), "--json"], env=env,
                             stdout=subprocess.DEVNULL)  # fmt: skip
        rows.append(("airgap lock, unchanged files", second, rss2))
        noop, _ = timed([*AIRGAP, "--version"], env=env, stdout=subprocess.DEVNULL)
        rows.append(("airgap --version (interpreter start)", noop, None))
        print(f"\nlock benchmark: {size / 1e9:.2f} GB in {len(shards)} safetensors shards "
              f"({base})")  # fmt: skip
        for label, wall, rss in rows:
            extra = f"  peak RSS {rss} MiB" if rss is not None else ""
            print(f"  {label:<48} {wall:7.2f} s  {size / wall / 1e6:8.0f} MB/s  "
                  f"{wall / floor:5.2f}x floor{extra}")  # fmt: skip
        print(f"  second lock / first lock: {second / first:.3f}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def bench_build(args: argparse.Namespace) -> None:
    base = Path(args.dir or tempfile.mkdtemp(prefix="airgap-bench-"))
    try:
        shards = weights_project(base, args)
        age((base / "weights").iterdir())
        key = base / "k.key.pem"
        subprocess.run(
            ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-aes256", "-pass", "pass:bench", "-out", str(key)],
            check=True,
        )  # fmt: skip
        env = bench_env(base)
        size = sum(p.stat().st_size for p in shards)
        out = base / "out"
        rows: list[tuple[str, float, int | None]] = []
        subprocess.run(["sync"], check=True)
        floor, _ = timed(
            ["tar", "-b", "8192", "-cf", str(base / "floor.tar"), "-C", str(base), "weights"]
        )
        rows.append(("copy floor: tar -b 8192 -cf", floor, None))
        (base / "floor.tar").unlink()
        naive = (
            f"cd {base} && sha256sum weights/* > SHA256SUMS && tar -cf naive.tar weights SHA256SUMS"
            f" && openssl dgst -sha256 -sign {key} -passin pass:bench -out naive.sig SHA256SUMS"
        )
        t, _ = timed(["bash", "-c", naive])
        rows.append(("naive script: sha256sum + tar cf + openssl sign", t, None))
        (base / "naive.tar").unlink()
        cmd = [
            *AIRGAP,
            "build",
            str(base / "m.yaml"),
            "--out",
            str(out),
            "--key",
            str(key),
            "--json",
        ]
        subprocess.run(["sync"], check=True)  # each run starts with no dirty pages to flush
        cold, rss1 = timed(cmd, env=env, stdout=subprocess.DEVNULL)
        rows.append(("airgap build (cold: one read, hashed while copied)", cold, rss1))
        shutil.rmtree(out)
        subprocess.run(["sync"], check=True)
        warm, rss2 = timed(cmd, env=env, stdout=subprocess.DEVNULL)
        rows.append(("airgap build (after a lock: one pass)", warm, rss2))
        print(
            f"\nbuild benchmark: {size / 1e9:.2f} GB in {len(shards)} safetensors shards ({base})"
        )
        for label, wall, rss in rows:
            extra = f"  peak RSS {rss} MiB" if rss is not None else ""
            print(f"  {label:<48} {wall:7.2f} s  {size / wall / 1e6:8.0f} MB/s  "
                  f"{wall / floor:5.2f}x copy floor{extra}")  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def _parallel_hash(files: Sequence[Path]) -> list[str]:
    """The hashing floor: two `openssl dgst -sha256` in parallel over ``files`` (two halves)."""
    half_a, half_b = files[0::2], files[1::2]
    return ["bash", "-c", 'openssl dgst -sha256 "$@" >/dev/null & openssl dgst -sha256 '
            + " ".join(f"'{p}'" for p in half_b) + " >/dev/null; wait", "_", *map(str, half_a)]  # fmt: skip


def bench_verify(args: argparse.Namespace) -> None:
    """airgap verify of the bundle tar and of its layout folder against two parallel `openssl
    dgst` over the same blob bytes, interpreter start included (what a user waits for)."""
    base = Path(args.dir or tempfile.mkdtemp(prefix="airgap-bench-"))
    try:
        weights_project(base, args)
        env = bench_env(base)
        subprocess.run([*AIRGAP, "key", "generate", "--out", str(base), "--name", "k"], env=env,
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        subprocess.run([*AIRGAP, "build", str(base / "m.yaml"), "--out", str(base / "out"),
                        "--key", str(base / "k.key.pem"), "--json"],
                       env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        shutil.rmtree(base / "weights")  # the bundle is the only copy of the data
        tar = base / "out" / "bench-1.0.0.airgap.tar"
        folder = base / "out" / "bench-1.0.0"
        folder.mkdir()
        subprocess.run(["tar", "-xf", str(tar), "-C", str(folder)], check=True)
        blobs = sorted((folder / "blobs/sha256").iterdir(), key=lambda p: -p.stat().st_size)
        size = sum(p.stat().st_size for p in blobs)
        subprocess.run(["cat", str(tar), *map(str, blobs)], stdout=subprocess.DEVNULL, check=True)
        floor, _ = timed(_parallel_hash(blobs))
        cpu = {"floor": LAST_CPU[0]}
        sums = base / "SHA256SUMS"
        sums.write_text("".join(f"{p.name}  {p}\n" for p in blobs))
        t_sum, _ = timed(["sha256sum", "--quiet", "-c", str(sums)], stdout=subprocess.DEVNULL)
        pub = str(base / "k.pub.pem")
        t_tar, rss_t = timed([*AIRGAP, "verify", str(tar), "--key", pub, "--json"],
                             env=env, stdout=subprocess.DEVNULL)  # fmt: skip
        cpu["tar"] = LAST_CPU[0]
        t_v, rss = timed([*AIRGAP, "verify", str(folder), "--key", pub, "--json"],
                         env=env, stdout=subprocess.DEVNULL)  # fmt: skip
        noop, _ = timed([*AIRGAP, "--version"], env=env, stdout=subprocess.DEVNULL)
        load = os.getloadavg()[0]
        print(f"\nverify benchmark: {size / 1e9:.2f} GB of blobs in {len(blobs)} files ({base})")
        for label, wall, r in (
            ("hashing floor: 2x openssl dgst -sha256 in parallel", floor, None),
            ("sha256sum -c (for the record)", t_sum, None),
            ("airgap verify (the tar)", t_tar, rss_t),
            ("airgap verify (layout folder)", t_v, rss),
            ("airgap --version (interpreter start)", noop, None),
        ):
            extra = f"  peak RSS {r} MiB" if r is not None else ""
            print(f"  {label:<48} {wall:7.2f} s  {size / wall / 1e6:8.0f} MB/s  "
                  f"{wall / floor:5.2f}x floor{extra}")  # fmt: skip
        print(f"  airgap verify (tar) / floor: {t_tar / floor:.2f} (target <= 1.15); CPU seconds "
              f"{cpu['tar']:.2f} / {cpu['floor']:.2f} = {cpu['tar'] / cpu['floor']:.2f}; "
              f"load average {load:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def bench_scale(args: argparse.Namespace) -> None:
    """A model of many small files (``--files``, default 50,000): lock, build, verify and
    install, each against tar doing the same work on the same files, in one run."""
    base = Path(args.dir or tempfile.mkdtemp(prefix="airgap-bench-"))
    try:
        weights = base / "weights"
        per = max(1, args.files // 100)
        for i in range(args.files):
            d = weights / f"d{i // per:03d}"
            if i % per == 0:
                d.mkdir(parents=True)
            (d / f"f{i:06d}.json").write_bytes(os.urandom(args.file_bytes))
        (weights / "config.json").write_text('{"architectures": ["Bench"]}\n')
        age(weights.rglob("*"))
        (base / "m.yaml").write_text(
            "apiVersion: airgap/v1\nkind: Bundle\nmetadata: {name: scale, version: 1.0.0}\n"
            "model: {name: bench/scale, source: {path: ./weights}, format: onnx}\n"
            "target: {platform: linux/amd64, accelerator: {vendor: none}}\n"
        )
        env = bench_env(base)
        subprocess.run([*AIRGAP, "key", "generate", "--out", str(base), "--name", "k"], env=env,
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        subprocess.run(
            ["tar", "-cf", "-", "-C", str(base), "weights"], check=True, stdout=subprocess.DEVNULL
        )  # fmt: skip  (page cache)
        tar = base / "out" / "scale-1.0.0.airgap.tar"
        pairs = [
            ("lock", "tar -cf - weights | cat >/dev/null (reads every file)",
             f"cd {base} && tar -cf - weights | cat >/dev/null",
             [*AIRGAP, "lock", str(base / "m.yaml"), "--json"]),
            ("build", "tar -b 8192 -cf (the copy floor)",
             f"cd {base} && tar -b 8192 -cf floor.tar weights && rm floor.tar",
             [*AIRGAP, "build", str(base / "m.yaml"), "--out", str(base / "out"), "--key",
              str(base / "k.key.pem"), "--json"]),
            ("verify", "tar -xOf BUNDLE >/dev/null (reads every member)",
             f"tar -xOf {tar} >/dev/null",
             [*AIRGAP, "verify", str(tar), "--key", str(base / "k.pub.pem"), "--json"]),
            ("install", "tar -xf BUNDLE into a fresh folder",
             f"rm -rf {base}/x && mkdir {base}/x && tar -xf {tar} -C {base}/x",
             [*AIRGAP, "install", str(tar), "--prefix", str(base / "site"), "--key",
              str(base / "k.pub.pem"), "--no-probe", "--json"]),
        ]  # fmt: skip
        # every step also checks each file's sha256 (the lock and build make them, verify and
        # install compare them with the signed list): tar doing that work too is tar and
        # sha256sum over the same 50,000 files (one process each, from the page cache)
        files = sorted(p.relative_to(base).as_posix() for p in weights.rglob("*") if p.is_file())
        (base / "files.list").write_text("".join(f + "\0" for f in files))
        listed = subprocess.run(
            ["bash", "-c", f"cd {base} && xargs -0 sha256sum < files.list"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        (base / "sums.txt").write_text(listed)
        hashing = {
            "lock": ("xargs -0 sha256sum (hashes every file)", "xargs -0 sha256sum < files.list"),
            "build": ("xargs -0 sha256sum", "xargs -0 sha256sum < files.list"),
            "verify": ("sha256sum -c (checks every file)", "sha256sum --quiet -c sums.txt"),
            "install": ("sha256sum -c", "sha256sum --quiet -c sums.txt"),
        }
        print(f"\nscale benchmark: {args.files} files of {args.file_bytes} bytes ({base})")
        for step, floor_label, floor_cmd, cmd in pairs:
            if step == "lock":  # a cold stat cache
                (base / "cache" / "stat-cache.sqlite").unlink(missing_ok=True)
            subprocess.run(["sync"], check=True)  # no step flushes what the one before wrote
            t_floor, _ = timed(["bash", "-c", floor_cmd])
            c_floor = LAST_CPU[0]
            hash_label, hash_cmd = hashing[step]
            t_hash, _ = timed(["bash", "-c", f"cd {base} && {hash_cmd} >/dev/null"])
            subprocess.run(["sync"], check=True)
            t, rss = timed(cmd, env=env, stdout=subprocess.DEVNULL)
            print(f"  {step:<8} airgap {t:7.2f} s (CPU {LAST_CPU[0]:6.2f} s, peak RSS {rss} MiB)   "
                  f"{floor_label}: {t_floor:6.2f} s (CPU {c_floor:5.2f} s)   "
                  f"{t / t_floor:5.2f}x (target <= 3)")  # fmt: skip
            if step == "lock":  # sha256sum reads every file as tar does, and hashes it
                print(f"  {'':<8} the same with each file's sha256, {hash_label}: "
                      f"{t_hash:6.2f} s   {t / t_hash:5.2f}x")  # fmt: skip
            else:
                print(f"  {'':<8} the same with each file's sha256 too, then {hash_label}: "
                      f"{t_hash:5.2f} s, together {t_floor + t_hash:5.2f} s   "
                      f"{t / (t_floor + t_hash):5.2f}x")  # fmt: skip
            if step == "install":  # install makes every file durable before it is renamed
                # into another fresh folder, the first one kept: ext4 allocates inodes slowly
                # for a minute or more after many were freed (find_inode_bit skips recently
                # deleted ones), so a removal just before would slow the floor 2-10x
                durable = floor_cmd.replace(f"{base}/x", f"{base}/x2")
                subprocess.run(["sync"], check=True)
                t_sync, _ = timed(["bash", "-c", f"{durable} && sync"])
                print(f"  {'':<8} the same with its files durable too, "
                      f"{floor_label} && sync: {t_sync:6.2f} s   {t / t_sync:5.2f}x")  # fmt: skip
                print(f"  {'':<8} durable and each file's sha256 checked, then sha256sum -c: "
                      f"{t_sync + t_hash:6.2f} s   {t / (t_sync + t_hash):5.2f}x")  # fmt: skip
        print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def bench_install(args: argparse.Namespace) -> None:
    """airgap install (verification included) against `tar -xf` of the same bundle tar into a
    fresh folder (the copy floor: it neither hashes nor checks anything), in one run."""
    base = Path(args.dir or tempfile.mkdtemp(prefix="airgap-bench-"))
    try:
        env = signed_bundle(base, args)
        shutil.rmtree(base / "weights")  # the bundle is the only copy of the data
        tar = base / "out" / "bench-1.0.0.airgap.tar"
        size = tar.stat().st_size
        subprocess.run(["cat", str(tar)], stdout=subprocess.DEVNULL, check=True)  # warm cache
        rows: list[tuple[str, float, int | None]] = []
        floors: list[float] = []
        durable: list[float] = []
        installs: list[float] = []
        for i in range(args.runs):
            for label, cmd, into in (
                ("copy floor: tar -xf into a fresh folder", "tar -xf {tar} -C {dest}", floors),
                ("durable floor: tar -xf, then sync", "tar -xf {tar} -C {dest} && sync", durable),
            ):
                dest = base / f"floor-{i}"
                dest.mkdir()
                subprocess.run(["sync"], check=True)
                t, _ = timed(["bash", "-c", cmd.format(tar=tar, dest=dest)])
                into.append(t)
                rows.append((f"{label} (run {i + 1})", t, None))
                shutil.rmtree(dest)
            subprocess.run(["sync"], check=True)
            prefix = base / f"site-{i}"
            t, rss = timed([*AIRGAP, "install", str(tar), "--prefix", str(prefix), "--key",
                            str(base / "k.pub.pem"), "--no-probe", "--json"],
                           env=env, stdout=subprocess.DEVNULL)  # fmt: skip
            installs.append(t)
            rows.append((f"airgap install, verify included (run {i + 1})", t, rss))
            shutil.rmtree(prefix)
        floor = min(floors)
        print(
            f"\ninstall benchmark: a {size / 1e9:.2f} GB bundle tar, {args.shards} shards ({base})"
        )
        for label, wall, r in rows:
            extra = f"  peak RSS {r} MiB" if r is not None else ""
            print(f"  {label:<52} {wall:7.2f} s  {size / wall / 1e6:8.0f} MB/s  "
                  f"{wall / floor:5.2f}x floor{extra}")  # fmt: skip
        print(f"  best airgap install / best tar -xf: {min(installs) / floor:.2f} (target <= 1.3); "
              f"/ best tar -xf + sync: {min(installs) / min(durable):.2f} (install fsyncs every "
              "blob before it names it; tar -xf leaves its data in the page cache)")  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def bench_delta(args: argparse.Namespace) -> None:
    """A new version with ``--changed`` of the weight bytes rewritten (whole shards): the full
    build against the delta build (`--base v1`), both from a lock, and at a site holding v1 the
    full install of v2 against the delta install, each against the same v1 site, in one run."""
    base = Path(args.dir or tempfile.mkdtemp(prefix="airgap-bench-"))
    try:
        v1 = base / "v1"
        v1.mkdir(parents=True)
        shards = weights_project(v1, args)
        weights = sum(p.stat().st_size for p in shards)
        v2 = base / "v2"
        shutil.copytree(v1, v2, copy_function=os.link)
        (v2 / "m.yaml").unlink()  # a hard link to v1's
        (v2 / "m.yaml").write_text((v1 / "m.yaml").read_text().replace("1.0.0", "2.0.0"))
        changed = max(1, round(len(shards) * args.changed))
        for p in sorted((v2 / "weights").glob("*.safetensors"))[:changed]:
            size = p.stat().st_size
            with p.open("rb") as fh:
                head = fh.read(4096)  # the header kept
            p.unlink()  # a hard link to v1's
            with p.open("wb") as fh:  # streamed: this process stays small, and the children
                fh.write(head)  # it forks report their own peak RSS, not an inherited one
                for left in range(size - 4096, 0, -16 * 2**20):
                    fh.write(os.urandom(min(left, 16 * 2**20)))
        age([*(v1 / "weights").iterdir(), *(v2 / "weights").iterdir()])
        env = bench_env(base)
        quiet = {"env": env, "check": True, "stdout": subprocess.DEVNULL}
        subprocess.run([*AIRGAP, "key", "generate", "--out", str(base), "--name", "k"], **quiet)  # type: ignore[call-overload]
        key, pub = str(base / "k.key.pem"), str(base / "k.pub.pem")
        for d in (v1, v2):
            subprocess.run([*AIRGAP, "lock", str(d / "m.yaml"), "--json"], **quiet)  # type: ignore[call-overload]
        subprocess.run([*AIRGAP, "build", str(v1 / "m.yaml"), "--locked", "--out", str(base / "o1"),
                        "--key", key, "--json"], **quiet)  # type: ignore[call-overload]  # fmt: skip
        t1 = base / "o1" / "bench-1.0.0.airgap.tar"
        build = [*AIRGAP, "build", str(v2 / "m.yaml"), "--locked", "--key", key, "--json"]
        rows: list[tuple[str, float, int | None]] = []
        subprocess.run(["sync"], check=True)  # each step starts with no dirty pages to flush
        full_b, rss = timed(
            [*build, "--out", str(base / "full")], env=env, stdout=subprocess.DEVNULL
        )
        rows.append(("full build of v2 (from its lock)", full_b, rss))
        subprocess.run(["sync"], check=True)
        delta_b, rss = timed([*build, "--out", str(base / "delta"), "--base", str(t1)], env=env,
                             stdout=subprocess.DEVNULL)  # fmt: skip
        rows.append(("delta build of v2 --base v1 (from its lock)", delta_b, rss))
        full = base / "full" / "bench-2.0.0.airgap.tar"
        delta = base / "delta" / "bench-2.0.0.delta-from-1.0.0.airgap.tar"
        shutil.rmtree(v1 / "weights")
        shutil.rmtree(v2 / "weights")  # the bundles are the only copies of the data now
        install = [*AIRGAP, "install", "--key", pub, "--no-probe", "--json"]
        for site in ("site-full", "site-delta"):
            subprocess.run([*install, str(t1), "--prefix", str(base / site)], **quiet)  # type: ignore[call-overload]
        for tar in (full, delta):  # warm caches alike: the media is read at the same speed
            subprocess.run(["cat", str(tar)], stdout=subprocess.DEVNULL, check=True)
        subprocess.run(["sync"], check=True)
        full_i, rss = timed([*install, str(full), "--prefix", str(base / "site-full")], env=env,
                            stdout=subprocess.DEVNULL)  # fmt: skip
        rows.append(("install of full v2 at a site holding v1", full_i, rss))
        subprocess.run(["sync"], check=True)
        delta_i, rss = timed([*install, str(delta), "--prefix", str(base / "site-delta")],
                             env=env, stdout=subprocess.DEVNULL)  # fmt: skip
        rows.append(("install of the delta at a site holding v1", delta_i, rss))
        subprocess.run(["sync"], check=True)
        fresh_i, rss = timed([*install, str(full), "--prefix", str(base / "site-fresh")],
                             env=env, stdout=subprocess.DEVNULL)  # fmt: skip
        rows.append(("install of full v2 at an empty site", fresh_i, rss))
        size = full.stat().st_size
        print(f"\ndelta benchmark: {weights / 1e9:.2f} GB in "
              f"{len(shards)} shards, {changed} shard(s) rewritten ({base})")  # fmt: skip
        print(f"  full bundle {size / 1e6:,.1f} MB, delta {delta.stat().st_size / 1e6:,.1f} MB "
              f"({delta.stat().st_size / size:.1%} of the full)")  # fmt: skip
        for label, wall, r in rows:
            extra = f"  peak RSS {r} MiB" if r is not None else ""
            print(f"  {label:<48} {wall:7.2f} s{extra}")
        print(f"  delta build / full build: {delta_b / full_b:.1%} (target <= 15%)")
        print(f"  delta install / full install at the same site: {delta_i / full_i:.1%}; "
              f"/ full install at an empty site: {delta_i / fresh_i:.1%} (target <= 15%)")  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def bench_big(args: argparse.Namespace) -> None:
    """One large model (default 20 GB in 40 shards) through build, verify and install, each
    against its floor on the same data in one run, with every airgap step's peak RSS: memory
    must stay flat (under 200 MB) whatever the size."""
    base = Path(args.dir or tempfile.mkdtemp(prefix="airgap-bench-"))
    try:
        shards = weights_project(base, args)
        age((base / "weights").iterdir())
        env = bench_env(base)
        subprocess.run([*AIRGAP, "key", "generate", "--out", str(base), "--name", "k"], env=env,
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        size = sum(p.stat().st_size for p in shards)
        tar = base / "out" / "bench-1.0.0.airgap.tar"
        build = [*AIRGAP, "build", str(base / "m.yaml"), "--out", str(base / "out"), "--key",
                 str(base / "k.key.pem"), "--json"]  # fmt: skip
        rows: list[tuple[str, str, float, float, int | None]] = []

        def row(step: str, label: str, wall: float, floor: float, rss: int | None) -> None:
            rows.append((step, label, wall, floor, rss))
            extra = f"  peak RSS {rss} MiB" if rss is not None else ""
            print(f"  {step:<8} {label:<52} {wall:7.2f} s  {size / wall / 1e6:6.0f} MB/s  "
                  f"{wall / floor:5.2f}x{extra}", flush=True)  # fmt: skip

        print(f"\nbig benchmark: {size / 1e9:.2f} GB in {len(shards)} shards ({base})")
        subprocess.run(["sync"], check=True)  # each step starts with no dirty pages to flush
        floor, _ = timed(["tar", "-b", "8192", "-cf", str(base / "floor.tar"), "-C", str(base),
                          "weights"])  # fmt: skip
        (base / "floor.tar").unlink()
        row("build", "copy floor: tar -b 8192 -cf", floor, floor, None)

        def durable_floor() -> float:
            """The build makes its tar durable (fsync before the rename); tar leaves up to
            vm.dirty_ratio of memory unwritten when it exits, a share that grows with the size."""
            wall, _ = timed(["bash", "-c", f"tar -b 8192 -cf {base / 'floor.tar'} -C {base} "
                             "weights && sync"])  # fmt: skip
            (base / "floor.tar").unlink()
            return wall

        subprocess.run(["sync"], check=True)
        durable = durable_floor()
        row("build", "durable copy floor: tar -b 8192 -cf, then sync", durable, floor, None)
        subprocess.run(["sync"], check=True)
        t, rss = timed(build, env=env, stdout=subprocess.DEVNULL)
        row("build", "airgap build, cold (one read, hashed while copied)", t, floor, rss)
        cold_build = t
        shutil.rmtree(base / "out")
        subprocess.run(["sync"], check=True)
        t, rss = timed(build, env=env, stdout=subprocess.DEVNULL)
        row("build", "airgap build, from the lock", t, floor, rss)
        print(f"  {'':<8} cold build / durable copy floor: {cold_build / durable:.2f}x; "
              f"from the lock: {t / durable:.2f}x (target <= 1.3)", flush=True)  # fmt: skip
        # 20 GB of inputs and 20 GB of output do not both fit in the page cache of a machine
        # with less than 40 GB of memory: what each step finds cached depends on the step before
        # it. With the caches dropped before each, both read every input from the disk.
        if drop_caches():
            shutil.rmtree(base / "out")
            durable = durable_floor()
            row("build", "durable copy floor, caches dropped first", durable, floor, None)
            (base / "m.lock.json").unlink()  # cold again: no lock, no stat cache
            (base / "cache" / "stat-cache.sqlite").unlink(missing_ok=True)
            drop_caches()
            t, rss = timed(build, env=env, stdout=subprocess.DEVNULL)
            row("build", "airgap build, cold, caches dropped first", t, floor, rss)
            print(f"  {'':<8} from the disk, cold build / durable copy floor: {t / durable:.2f}x "
                  "(target <= 1.3)", flush=True)  # fmt: skip
        shutil.rmtree(base / "weights")  # the bundle is the only copy of the data now
        folder = base / "x"
        folder.mkdir()
        t_x, _ = timed(["tar", "-xf", str(tar), "-C", str(folder)])
        blobs = sorted((folder / "blobs/sha256").iterdir(), key=lambda p: -p.stat().st_size)
        hfloor, _ = timed(_parallel_hash(blobs))
        # the blobs just extracted are in the page cache and the older tar mostly is not (20 GB
        # in about 23 GB of memory): both read from the disk too, when this user may drop caches
        cold_floor = timed(_parallel_hash(blobs))[0] if drop_caches() else None
        shutil.rmtree(folder)
        row("verify", "hashing floor: 2x openssl dgst -sha256 in parallel", hfloor, hfloor, None)
        verify = [*AIRGAP, "verify", str(tar), "--key", str(base / "k.pub.pem"), "--json"]
        t, rss = timed(verify, env=env, stdout=subprocess.DEVNULL)
        row("verify", "airgap verify (the tar)", t, hfloor, rss)
        if cold_floor is not None and drop_caches():
            row("verify", "hashing floor, caches dropped first", cold_floor, hfloor, None)
            t, rss = timed(verify, env=env, stdout=subprocess.DEVNULL)
            row("verify", "airgap verify (the tar), caches dropped first", t, hfloor, rss)
            print(f"  {'':<8} from the disk, airgap verify / hashing floor: {t / cold_floor:.2f}x "
                  "(target <= 1.15)", flush=True)  # fmt: skip
        row("install", "copy floor: tar -xf into a fresh folder", t_x, t_x, None)
        t, rss = timed([*AIRGAP, "install", str(tar), "--prefix", str(base / "site"), "--key",
                        str(base / "k.pub.pem"), "--no-probe", "--json"],
                       env=env, stdout=subprocess.DEVNULL)  # fmt: skip
        row("install", "airgap install (verify included)", t, t_x, rss)
        peak = max(r[4] for r in rows if r[4] is not None)
        print(f"  highest peak RSS of any airgap step: {peak} MiB (target < 200); "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def bench_probe(args: argparse.Namespace) -> None:
    runs = []
    for _ in range(5):
        t, rss = timed([*AIRGAP, "probe", "--json"], stdout=subprocess.DEVNULL)
        runs.append((t, rss))
    best = min(t for t, _ in runs)
    print(f"\nprobe benchmark (no bundle, this host): best {best:.2f} s, worst "
          f"{max(t for t, _ in runs):.2f} s of 5 runs, peak RSS {max(r for _, r in runs)} MiB "
          f"(target: under 2 s)")  # fmt: skip


def _docker_archive_with_random_layer(path: Path, size: int, ref: str) -> None:
    """A `docker save`-style tar whose one layer is ``size`` bytes of random data (streamed)."""
    import hashlib
    import io
    import tarfile

    layer = path.with_suffix(".layer.tar")
    with tarfile.open(layer, "w") as lt:
        info = tarfile.TarInfo("blob.bin")
        info.size = size

        class Rand(io.RawIOBase):
            left = size

            def readable(self) -> bool:
                return True

            def readinto(self, b: Any) -> int:
                n = min(len(b), self.left, 16 * 2**20)
                b[:n] = os.urandom(n)
                self.left -= n
                return n

        lt.addfile(info, io.BufferedReader(Rand(), 16 * 2**20))
    h = hashlib.sha256()
    with layer.open("rb") as fh:
        while chunk := fh.read(16 * 2**20):
            h.update(chunk)
    diff_id = "sha256:" + h.hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}, sort_keys=True).encode()  # fmt: skip
    cid = hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        [{"Config": f"{cid}.json", "RepoTags": [ref], "Layers": ["layer/layer.tar"]}]
    ).encode()
    with tarfile.open(path, "w") as tf:
        tf.add(layer, "layer/layer.tar")
        for name, data in ((f"{cid}.json", config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    layer.unlink()


def _image_project(base: Path, size: int, ref: str) -> None:
    """A manifest (base/m.yaml) of a bundle named big whose one image ``ref`` has a ``size`` layer."""
    _docker_archive_with_random_layer(base / "image.tar", size, ref)
    (base / "weights").mkdir()
    (base / "weights" / "config.json").write_text("{}\n")
    (base / "m.yaml").write_text(
        "apiVersion: airgap/v1\nkind: Bundle\nmetadata: {name: big, version: 1.0.0}\n"
        "model: {name: b/m, source: {path: ./weights}, format: onnx}\n"
        "target: {platform: linux/amd64, accelerator: {vendor: none}}\n"
        f'runtime: {{images: [{{ref: "{ref}", from: docker-archive, path: image.tar}}]}}\n'
    )


def bench_images(args: argparse.Namespace) -> None:
    if not os.environ.get("DOCKER_HOST"):
        raise SystemExit(
            'images benchmark: set DOCKER_HOST (eval "$(bash scripts/services.sh env)")'
        )
    base = Path(args.dir or tempfile.mkdtemp(prefix="airgap-bench-"))
    try:
        base.mkdir(parents=True, exist_ok=True)
        size = int(args.size_gb * 1e9)
        ref = "bench.local/big:1"
        _image_project(base, size, ref)
        env = bench_env(base, passphrase=False)
        t_build, rss_build = timed([*AIRGAP, "build", str(base / "m.yaml"), "--out", str(base / "out"),
                                    "--unsigned", "--json"], env=env, stdout=subprocess.DEVNULL)  # fmt: skip
        load = (
            "import docker, sys; from pathlib import Path; from packager.bundle.reader import open_bundle\n"
            "from packager.site.images import load_into_docker\n"
            "c = docker.from_env(timeout=600)\n"
            "with open_bundle(Path(sys.argv[1])) as b: load_into_docker(b, c)\n"
        )
        tar = base / "out" / "big-1.0.0.airgap.tar"
        t_load, rss_load = timed([sys.executable, "-c", load, str(tar)], env=env)
        subprocess.run(
            ["docker", "rmi", "-f", ref],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print(f"\nimages benchmark: one {size / 1e9:.2f} GB layer ({base})")
        print(
            f"  airgap build (collect from docker-archive + write)  {t_build:7.2f} s  peak RSS {rss_build} MiB"
        )
        print(
            f"  load into the engine from the bundle tar           {t_load:7.2f} s  peak RSS {rss_load} MiB"
        )
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def _vm(pid: int, field: str) -> int:
    """A /proc/PID/status size (VmRSS, VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    return 0


def bench_serve(args: argparse.Namespace) -> None:
    """`airgap serve` of a bundle holding one image with a SIZE layer: N clients pull it at once
    (manifest by tag, config, then the layer streamed through sha256sum), the server's peak RSS
    and the aggregate throughput; every client's layer digest is checked."""
    import hashlib
    import signal
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    base = Path(args.dir or tempfile.mkdtemp(prefix="airgap-bench-"))
    server = None
    try:
        base.mkdir(parents=True, exist_ok=True)
        size = int(args.size_gb * 1e9)
        ref = "bench.local/team/big:1"
        _image_project(base, size, ref)
        env = _signed_build(base)
        (base / "image.tar").unlink()
        tar = base / "out" / "big-1.0.0.airgap.tar"
        t0 = time.perf_counter()
        server = subprocess.Popen(
            [*AIRGAP, "serve", str(tar), "--key", str(base / "k.pub.pem"),
             "--listen", "127.0.0.1:0", "--json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert server.stdout is not None
        text, line = "", ""
        while line != "}\n":  # the document's last line (--json prints it indented)
            line = server.stdout.readline()
            if not line:
                raise SystemExit("airgap serve did not start")
            text += line
        started = json.loads(text)
        t_ready = time.perf_counter() - t0
        rss_ready, hwm_ready = _vm(server.pid, "VmRSS"), _vm(server.pid, "VmHWM")
        url = f"http://{started['listen']}/v2/team/big"
        accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
        req = urllib.request.Request(f"{url}/manifests/1", headers={"Accept": accept})
        with urllib.request.urlopen(req) as r:
            manifest = json.load(r)
        layer = max(manifest["layers"], key=lambda x: x["size"])

        def pull(_: int) -> tuple[float, bool]:
            t = time.perf_counter()
            with urllib.request.urlopen(
                urllib.request.Request(f"{url}/manifests/1", headers={"Accept": accept})
            ) as r:
                r.read()
            with urllib.request.urlopen(f"{url}/blobs/{manifest['config']['digest']}") as r:
                ok = (
                    "sha256:" + hashlib.sha256(r.read()).hexdigest() == manifest["config"]["digest"]
                )
            sink = "wc -c" if args.no_hash else "sha256sum"
            out = subprocess.run(
                ["bash", "-c", f'curl -sf "$1" | {sink}', "_", f"{url}/blobs/{layer['digest']}"],
                capture_output=True, text=True, check=True,
            ).stdout.split()[0]  # fmt: skip
            want = str(layer["size"]) if args.no_hash else layer["digest"][7:]
            return time.perf_counter() - t, ok and out == want

        peak = [hwm_ready]
        done = [False]

        def watch() -> None:  # the server's resident size while it serves
            while not done[0]:
                peak[0] = max(peak[0], _vm(server.pid, "VmRSS"))
                time.sleep(0.05)

        import threading

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        t1 = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(pull, range(args.clients)))
        wall = time.perf_counter() - t1
        done[0] = True
        watcher.join()
        rss_after = _vm(server.pid, "VmRSS")
        served = args.clients * layer["size"]
        print(f"\nserve benchmark: one image, a {layer['size'] / 1e9:.2f} GB layer, "
              f"{args.clients} concurrent pulls ({base})")  # fmt: skip
        print(f"  verify + start (every blob hashed)        {t_ready:7.2f} s  "
              f"RSS {rss_ready} MiB (peak while verifying {hwm_ready} MiB)")  # fmt: skip
        how = "curl | wc -c: sizes only" if args.no_hash else "curl | sha256sum"
        print(f"  {args.clients} pulls at once (layer via {how})  {wall:7.2f} s  "
              f"{served / wall / 1e9:.2f} GB/s aggregate, slowest pull {max(t for t, _ in results):.2f} s")  # fmt: skip
        print(f"  server RSS while serving: peak {peak[0]} MiB, after {rss_after} MiB "
              f"(ready: {rss_ready} MiB)")  # fmt: skip
        print(f"  {'sizes' if args.no_hash else 'digests'} intact: "
              f"{sum(ok for _, ok in results)}/{len(results)} pulls")  # fmt: skip
        if not all(ok for _, ok in results):
            raise SystemExit("a pull got other bytes than its digest")
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)  # as Ctrl-C
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                raise SystemExit("airgap serve did not stop on SIGINT") from None
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def bench_hsm(args: argparse.Namespace) -> None:
    """ECDSA P-256 signatures through a PKCS#11 token (SoftHSM2) against a key in memory: the
    per-signature cost of --key pkcs11:... (the local SHA-256, C_Sign, the DER and the check)."""
    sys.path.insert(0, str(REPO))
    from packager.signing import keys
    from tests.support.hsm import IMPORTED, make_softhsm

    base = Path(tempfile.mkdtemp(prefix="airgap-bench-hsm-"))
    try:
        hsm = make_softhsm(base / "softhsm")
        os.environ.update(hsm.env)
        token = keys.open_signing_key(hsm.uri(IMPORTED))
        memory = keys.signing_key_from_private(keys.generate_private_key())
        data = os.urandom(4096)  # about the size of a bundle.json
        for name, key in (("token (SoftHSM2)", token), ("key in memory", memory)):
            key.sign(data)
            t0 = time.perf_counter()
            for _ in range(args.signatures):
                key.sign(data)
            dt = time.perf_counter() - t0
            print(
                f"{name:<18} {args.signatures} signatures in {dt:.3f} s: "
                f"{args.signatures / dt:,.0f}/s, {dt / args.signatures * 1e3:.3f} ms each"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def bench_fuzz(args: argparse.Namespace) -> None:
    """The structure-aware fuzzer (tests/support/fuzz) at length; tests/e2e/test_fuzz.py runs a
    CI-sized share of it. Exit 1 on any internal error, hang, acceptance, damage or escape."""
    sys.path.insert(0, str(REPO))
    from tests.support.fuzz.runner import CaseId, plan, replay, run_fuzz
    from tests.support.fuzz.targets import KINDS

    if args.replay:
        print(replay(CaseId.parse(args.replay), keep=args.keep))
        return
    kinds = args.kinds.split(",") if args.kinds else list(KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise SystemExit(f"unknown kind(s) {unknown}; known: {', '.join(KINDS)}")
    cases = plan(args.cases, args.seed, kinds)
    print(f"fuzz: {len(cases)} cases, seed {args.seed}, {args.workers} workers, "
          f"timeout {args.timeout:g} s per case", file=sys.stderr)  # fmt: skip
    step = max(1, len(cases) // 20)

    def progress(done: int, outcome: Any) -> None:
        if done % step == 0:
            print(f"  {done}/{len(cases)}", file=sys.stderr, flush=True)

    summary = run_fuzz(cases, workers=args.workers, timeout=args.timeout, progress=progress)
    print(summary.report(lambda c: f"python scripts/bench.py fuzz --replay {c}"))
    if args.failures:
        with open(args.failures, "w", encoding="utf-8") as fh:
            for o in summary.failures():
                fh.write(json.dumps({
                    "case": str(o.case), "status": o.status, "command": o.label,
                    "document": o.document, "exit": o.exit_code, "site": o.site,
                    "error": o.error, "ops": list(o.ops),
                }) + "\n")  # fmt: skip
    if summary.failures() or summary.canary_failures or summary.fixtures_damaged:
        raise SystemExit(1)


def bench_fleet(args: argparse.Namespace) -> None:
    """One publish to the registry ($AIRGAP_REGISTRY), then N nodes installing at once, each
    through its own counting proxy (tests/support/fleet.py): wall times, bytes the registry
    served per node against the bundle's size, and a second install of the same version."""
    sys.path.insert(0, str(REPO))
    from tests.support.fleet import finish, proxies, start_node

    registry = os.environ.get("AIRGAP_REGISTRY")
    if not registry:
        raise SystemExit("needs AIRGAP_REGISTRY (scripts/services.sh start; source its env.sh)")
    base = Path(args.dir or tempfile.mkdtemp(prefix="airgap-bench-"))
    try:
        env = signed_bundle(base, args)
        tar = base / "out" / "bench-1.0.0.airgap.tar"
        size = tar.stat().st_size
        pub = base / "k.pub.pem"
        repo = f"bench/fleet-{os.getpid()}"
        url = f"oci://{registry}/{repo}:1.0.0"
        rows: list[tuple[str, float, str]] = []
        for label in ("publish (verify included)", "publish again (every blob there)"):
            t0 = time.perf_counter()
            out = subprocess.run([*AIRGAP, "publish", str(tar), url, "--key", str(pub), "--json"],
                                 env=env, check=True, capture_output=True, text=True).stdout  # fmt: skip
            sent = json.loads(out)["bytes_uploaded"]
            rows.append((label, time.perf_counter() - t0, f"{sent / 1e6:9.1f} MB sent"))
        with proxies(registry, args.nodes) as nodes:
            t0 = time.perf_counter()
            running = [
                start_node(f"oci://{p.address}/{repo}:1.0.0", base / f"node{i}", pub, env=env)
                for i, p in enumerate(nodes)
            ]
            docs = [finish(n, timeout=3600) for n in running]
            wall = time.perf_counter() - t0
            served = [p.served.blob_bytes + p.served.manifest_bytes for p in nodes]
            rows.append((f"{args.nodes} nodes install at once", wall,
                         f"{sum(served) / 1e6:9.1f} MB served in all"))  # fmt: skip
            for i, (doc, got) in enumerate(zip(docs, served)):
                pulled = doc["pulled"]
                rows.append((f"  node {i}: {doc['action']}", doc["seconds"],
                             f"{got / 1e6:9.1f} MB served ({got / size:.3f} x the bundle), "
                             f"{pulled['blobs_fetched']} blobs"))  # fmt: skip
            nodes[0].reset()
            t0 = time.perf_counter()
            doc = finish(start_node(f"oci://{nodes[0].address}/{repo}:1.0.0", base / "node0",
                                    pub, env=env))  # fmt: skip
            got = nodes[0].served.blob_bytes + nodes[0].served.manifest_bytes
            rows.append((f"second install on node 0: {doc['action']}", time.perf_counter() - t0,
                         f"{got / 1e3:9.1f} KB served (index, descriptor, signatures)"))  # fmt: skip
        print(f"\nfleet benchmark: a {size / 1e6:.1f} MB bundle, {args.nodes} nodes, registry "
              f"{registry} ({base})")  # fmt: skip
        for label, wall, what in rows:
            print(f"  {label:<44} {wall:7.2f} s  {what}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def bench_py39(args: argparse.Namespace) -> None:
    """The whole suite on a real Python 3.9: a Debian 11 root (mmdebstrap), the project installed
    from wheels into a venv there, pytest without network or services (those tests skip)."""
    sys.path.insert(0, str(REPO))
    from tests.support import debroot

    base = Path(args.work or tempfile.mkdtemp(prefix="airgap-py39-"))
    t0 = time.perf_counter()
    root = debroot.make_root("linux/amd64" if os.uname().machine == "x86_64" else "linux/arm64",
                             base / "root")  # fmt: skip
    t1 = time.perf_counter()
    debroot.project_on_python39(root, REPO, base / "cache")
    t2 = time.perf_counter()
    r = debroot.pytest_on_python39(root, " ".join(args.pytest_args) or "", timeout=3600)
    t3 = time.perf_counter()
    print(r.stdout[-6000:], r.stderr[-2000:])
    print(f"root {t1 - t0:.0f} s, venv {t2 - t1:.0f} s, pytest on Python 3.9 {t3 - t2:.0f} s")
    sys.exit(r.returncode)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="bench", required=True)
    lock = sub.add_parser("lock", help="lock cold vs warm stat cache vs the hashing floor")
    lock.add_argument("--size-gb", type=float, default=2.0)
    lock.add_argument("--shards", type=int, default=4)
    lock.add_argument("--dir", help="where to put the data (default: a temp folder)")
    lock.add_argument("--keep", action="store_true", help="keep the data afterwards")
    b = sub.add_parser("build", help="build against tar (copy floor) and the naive script")
    b.add_argument("--size-gb", type=float, default=2.0)
    b.add_argument("--shards", type=int, default=4)
    b.add_argument("--dir")
    b.add_argument("--keep", action="store_true")
    v = sub.add_parser("verify", help="verify against the parallel hashing floor")
    v.add_argument("--size-gb", type=float, default=2.0)
    v.add_argument("--shards", type=int, default=4)
    v.add_argument("--dir")
    v.add_argument("--keep", action="store_true")
    sc = sub.add_parser("scale", help="50,000 small files: lock, build, verify, install vs tar")
    sc.add_argument("--files", type=int, default=50000)
    sc.add_argument("--file-bytes", type=int, default=2048)
    sc.add_argument("--dir")
    sc.add_argument("--keep", action="store_true")
    sub.add_parser("probe", help="the probe with no bundle on this host")
    im = sub.add_parser("images", help="a 1 GB image through build and load: time and peak RSS")
    im.add_argument("--size-gb", type=float, default=1.0)
    im.add_argument("--dir")
    im.add_argument("--keep", action="store_true")
    inst = sub.add_parser("install", help="install (verify included) against tar -xf")
    inst.add_argument("--size-gb", type=float, default=2.0)
    inst.add_argument("--shards", type=int, default=4)
    inst.add_argument("--dir")
    inst.add_argument("--keep", action="store_true")
    inst.add_argument("--runs", type=int, default=2, help="alternate floor and install N times")
    fl = sub.add_parser("fleet", help="publish once, then N nodes install from the registry")
    fl.add_argument("--size-gb", type=float, default=0.2)
    fl.add_argument("--shards", type=int, default=4)
    fl.add_argument("--nodes", type=int, default=8)
    fl.add_argument("--dir")
    fl.add_argument("--keep", action="store_true")
    sv = sub.add_parser("serve", help="airgap serve: N concurrent pulls of a 1 GB image, RSS")
    sv.add_argument("--size-gb", type=float, default=1.0)
    sv.add_argument("--clients", type=int, default=16)
    sv.add_argument("--no-hash", action="store_true",
                    help="clients count the layer's bytes instead of hashing them (the server's "
                    "throughput, not the clients' sha256)")  # fmt: skip
    sv.add_argument("--dir")
    sv.add_argument("--keep", action="store_true")
    bg = sub.add_parser("big", help="20 GB in 40 shards: build, verify, install, peak RSS")
    bg.add_argument("--size-gb", type=float, default=20.0)
    bg.add_argument("--shards", type=int, default=40)
    bg.add_argument("--dir")
    bg.add_argument("--keep", action="store_true")
    dl = sub.add_parser("delta", help="delta build and install against full ones")
    dl.add_argument("--size-gb", type=float, default=2.0)
    dl.add_argument("--shards", type=int, default=20)
    dl.add_argument("--changed", type=float, default=0.05, help="share of shards rewritten")
    dl.add_argument("--dir")
    dl.add_argument("--keep", action="store_true")
    hsm = sub.add_parser("hsm", help="signatures in a SoftHSM2 token against a key in memory")
    hsm.add_argument("--signatures", type=int, default=2000)
    p39 = sub.add_parser("py39", help="the whole suite on Python 3.9 in a Debian 11 root")
    p39.add_argument("--work", help="keep the root, wheels and venv here (reused)")
    p39.add_argument("pytest_args", nargs="*", help="passed to pytest (default: everything)")
    fz = sub.add_parser("fuzz", help="structure-aware fuzzing of every document airgap reads")
    fz.add_argument("--cases", type=int, default=10000, help="cases in all, spread over kinds")
    fz.add_argument("--workers", type=int, default=2)
    fz.add_argument("--seed", type=int, default=1)
    fz.add_argument("--kinds", help="comma-separated document kinds (default: all)")
    fz.add_argument("--timeout", type=float, default=10.0, help="seconds before a case hangs")
    fz.add_argument("--failures", help="write every failed case as a JSON line to this file")
    fz.add_argument("--replay", metavar="KIND:SEED:NUMBER", help="run one case alone, verbosely")
    fz.add_argument("--keep", action="store_true", help="with --replay: keep its files")
    args = ap.parse_args()
    {
        "hsm": bench_hsm,
        "lock": bench_lock,
        "build": bench_build,
        "verify": bench_verify,
        "scale": bench_scale,
        "probe": bench_probe,
        "images": bench_images,
        "install": bench_install,
        "serve": bench_serve,
        "delta": bench_delta,
        "big": bench_big,
        "fuzz": bench_fuzz,
        "fleet": bench_fleet,
        "py39": bench_py39,
    }[args.bench](args)


if __name__ == "__main__":
    main()
