#!/usr/bin/env python3
"""Benchmarks (not tests): airgap against the floors of ../shared/reference/performance.md.

    python scripts/bench.py lock [--size-gb 2] [--shards 4] [--dir DIR]
    python scripts/bench.py build [--size-gb 2] [--shards 4] [--dir DIR]
    python scripts/bench.py verify [--size-gb 2] [--shards 4] [--dir DIR]
    python scripts/bench.py probe
    python scripts/bench.py install [--size-gb 2] [--shards 4] [--dir DIR] [--runs 2]
    python scripts/bench.py images [--size-gb 1]   (needs DOCKER_HOST: scripts/services.sh start)
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
AIRGAP = [sys.executable, "-m", "packager"]


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


def timed(cmd: Sequence[str], **kw: object) -> tuple[float, int]:
    """Wall seconds and the child's peak RSS in MiB."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, **kw)  # type: ignore[call-overload]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
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


def bench_lock(args: argparse.Namespace) -> None:
    base = Path(args.dir or tempfile.mkdtemp(prefix="airgap-bench-"))
    try:
        shards = weights_project(base, args)
        old = time.time() - 3600  # past the stat cache's racy window
        for p in (base / "weights").iterdir():
            os.utime(p, (old, old))
        env = {**os.environ, "AIRGAP_CACHE_DIR": str(base / "cache"), "PYTHONPATH": str(REPO)}
        size = sum(p.stat().st_size for p in shards)
        half = len(shards) // 2
        rows = []
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
        old = time.time() - 3600
        for p in (base / "weights").iterdir():
            os.utime(p, (old, old))
        key = base / "k.key.pem"
        subprocess.run(
            ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-aes256", "-pass", "pass:bench", "-out", str(key)],
            check=True,
        )  # fmt: skip
        env = {
            **os.environ,
            "AIRGAP_CACHE_DIR": str(base / "cache"),
            "PYTHONPATH": str(REPO),
            "AIRGAP_KEY_PASSPHRASE": "bench",
        }
        size = sum(p.stat().st_size for p in shards)
        out = base / "out"
        rows = []
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
        cold, rss1 = timed(cmd, env=env, stdout=subprocess.DEVNULL)
        rows.append(("airgap build (cold: hashes, then copies)", cold, rss1))
        shutil.rmtree(out)
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


def bench_verify(args: argparse.Namespace) -> None:
    base = Path(args.dir or tempfile.mkdtemp(prefix="airgap-bench-"))
    try:
        weights_project(base, args)
        env = {**os.environ, "AIRGAP_CACHE_DIR": str(base / "cache"), "PYTHONPATH": str(REPO),
               "AIRGAP_KEY_PASSPHRASE": "bench"}  # fmt: skip
        subprocess.run([*AIRGAP, "key", "generate", "--out", str(base), "--name", "k"], env=env,
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        subprocess.run([*AIRGAP, "build", str(base / "m.yaml"), "--out", str(base / "out"),
                        "--key", str(base / "k.key.pem"), "--layout-only", "--json"],
                       env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        folder = base / "out" / "bench-1.0.0"
        blobs = sorted((folder / "blobs/sha256").iterdir(), key=lambda p: -p.stat().st_size)
        size = sum(p.stat().st_size for p in blobs)
        half_a, half_b = blobs[0::2], blobs[1::2]
        subprocess.run(
            ["cat", *map(str, blobs)], stdout=subprocess.DEVNULL, check=True
        )  # warm cache
        floor, _ = timed(
            ["bash", "-c", 'openssl dgst -sha256 "$@" >/dev/null & openssl dgst -sha256 '
             + " ".join(f"'{p}'" for p in half_b) + " >/dev/null; wait", "_", *map(str, half_a)]
        )  # fmt: skip
        sums = base / "SHA256SUMS"
        sums.write_text("".join(f"{p.name}  {p}\n" for p in blobs))
        t_sum, _ = timed(["sha256sum", "--quiet", "-c", str(sums)], stdout=subprocess.DEVNULL)
        t_v, rss = timed([*AIRGAP, "verify", str(folder), "--key", str(base / "k.pub.pem"), "--json"],
                         env=env, stdout=subprocess.DEVNULL)  # fmt: skip
        print(f"\nverify benchmark: {size / 1e9:.2f} GB of blobs in {len(blobs)} files ({base})")
        for label, wall, r in (
            ("hashing floor: 2x openssl dgst -sha256 in parallel", floor, None),
            ("sha256sum -c (for the record)", t_sum, None),
            ("airgap verify (layout folder)", t_v, rss),
        ):
            extra = f"  peak RSS {r} MiB" if r is not None else ""
            print(f"  {label:<48} {wall:7.2f} s  {size / wall / 1e6:8.0f} MB/s  "
                  f"{wall / floor:5.2f}x floor{extra}")  # fmt: skip
        print(f"  airgap verify / sha256sum -c: {t_v / t_sum:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def bench_install(args: argparse.Namespace) -> None:
    """airgap install (verification included) against `tar -xf` of the same bundle tar into a
    fresh folder (the copy floor: it neither hashes nor checks anything), in one run."""
    base = Path(args.dir or tempfile.mkdtemp(prefix="airgap-bench-"))
    try:
        weights_project(base, args)
        env = {**os.environ, "AIRGAP_CACHE_DIR": str(base / "cache"), "PYTHONPATH": str(REPO),
               "AIRGAP_KEY_PASSPHRASE": "bench"}  # fmt: skip
        subprocess.run([*AIRGAP, "key", "generate", "--out", str(base), "--name", "k"], env=env,
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        subprocess.run([*AIRGAP, "build", str(base / "m.yaml"), "--out", str(base / "out"),
                        "--key", str(base / "k.key.pem"), "--json"],
                       env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        shutil.rmtree(base / "weights")  # the bundle is the only copy of the data
        tar = base / "out" / "bench-1.0.0.airgap.tar"
        size = tar.stat().st_size
        subprocess.run(["cat", str(tar)], stdout=subprocess.DEVNULL, check=True)  # warm cache
        rows: list[tuple[str, float, int | None]] = []
        floors, durable, installs = [], [], []
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
        _docker_archive_with_random_layer(base / "image.tar", size, ref)
        (base / "weights").mkdir()
        (base / "weights" / "config.json").write_text("{}\n")
        (base / "m.yaml").write_text(
            "apiVersion: airgap/v1\nkind: Bundle\nmetadata: {name: big, version: 1.0.0}\n"
            "model: {name: b/m, source: {path: ./weights}, format: onnx}\n"
            "target: {platform: linux/amd64, accelerator: {vendor: none}}\n"
            f'runtime: {{images: [{{ref: "{ref}", from: docker-archive, path: image.tar}}]}}\n'
        )
        env = {**os.environ, "AIRGAP_CACHE_DIR": str(base / "cache"), "PYTHONPATH": str(REPO)}
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
        "probe": bench_probe,
        "images": bench_images,
        "install": bench_install,
        "fuzz": bench_fuzz,
        "py39": bench_py39,
    }[args.bench](args)


if __name__ == "__main__":
    main()
