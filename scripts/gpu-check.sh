#!/usr/bin/env bash
# Runs kernel test vectors for real on this machine's NVIDIA GPU, through the probe's runner
# (packager/probe/kernel_runner.py: ctypes + libcuda, stdlib only).
#
#   scripts/gpu-check.sh [--require-gpu] [--keep DIR]
#
# It compiles tests/fixtures/kernels/vadd.cu and rmsnorm.cu with nvcc for the local GPU's arch
# (nvidia-smi's compute_cap; sm_90 when there is no GPU, to check the build), as a fatbin, a
# zstd-compressed fatbin, a cubin, PTX only (JIT) and a shared library; writes test vectors with
# the stdlib .npy writer (packager/probe/npy.py); runs each through run_kernel_test and prints
# one line per case. A negative control (a wrong expected value) must come out FAIL.
#
# Exit status: 0 every case PASS (or NOT RUN without a GPU), 1 a FAIL (or the negative control
# passed), 2 no nvcc or a compile failed, 3 NOT RUN with --require-gpu.
# Environment: NVCC (compiler), PYTHON (default python3), GPU_ARCH (e.g. 90, overrides detection).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
require_gpu=0
keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --require-gpu) require_gpu=1 ;;
    --keep) keep="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

python="${PYTHON:-python3}"
nvcc="${NVCC:-$(command -v nvcc || true)}"
[[ -n "$nvcc" ]] || nvcc=/usr/local/cuda/bin/nvcc
if [[ ! -x "$nvcc" ]]; then
  echo "gpu-check: nvcc not found (set NVCC=/path/to/nvcc): cannot build the test kernels" >&2
  exit 2
fi

if [[ -n "$keep" ]]; then work="$keep"; mkdir -p "$work"; else work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT; fi

gpu="none"
arch="${GPU_ARCH:-}"
if command -v nvidia-smi >/dev/null 2>&1; then
  line="$(nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader 2>/dev/null | head -n1 || true)"
  if [[ -n "$line" ]]; then
    gpu="$line"
    [[ -n "$arch" ]] || arch="$(echo "$line" | awk -F', ' '{print $2}' | tr -d '.')"
  fi
fi
[[ -n "$arch" ]] || arch=90
echo "gpu-check: GPU: $gpu; compiling for sm_$arch with $("$nvcc" --version | grep -o 'release [0-9.]*')"

src="$repo/tests/fixtures/kernels"
code=(-gencode "arch=compute_$arch,code=[sm_$arch,compute_$arch]")
build() { "$nvcc" "$@" || { echo "gpu-check: nvcc $* failed" >&2; exit 2; }; }
build -fatbin "${code[@]}" -o "$work/vadd.fatbin" "$src/vadd.cu" &
build -fatbin "${code[@]}" -Xfatbin=-compress-all -o "$work/vadd_zstd.fatbin" "$src/vadd.cu" &
build -cubin -arch="sm_$arch" -o "$work/vadd.cubin" "$src/vadd.cu" &
build -ptx -arch="compute_$arch" -o "$work/vadd.ptx" "$src/vadd.cu" &
build -shared -Xcompiler -fPIC "${code[@]}" -o "$work/libvadd.so" "$src/vadd.cu" &
build -fatbin "${code[@]}" -o "$work/rmsnorm.fatbin" "$src/rmsnorm.cu" &
for job in $(jobs -p); do wait "$job" || exit 2; done

status=0
PYTHONPATH="$repo" "$python" - "$work" "$require_gpu" <<'PY' || status=$?
import math
import random
import struct
import sys
from pathlib import Path

from packager.probe.kernel_runner import run_kernel_test
from packager.probe.npy import from_values, write_npy

work, require_gpu = Path(sys.argv[1]), sys.argv[2] == "1"
rng = random.Random(0)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def save(name, values, shape=None):
    (work / name).write_bytes(write_npy(from_values(values, "float32", shape)))
    return str(work / name)


n = 100_003
a = [f32(rng.uniform(-1, 1)) for _ in range(n)]
b = [f32(rng.uniform(-1, 1)) for _ in range(n)]
c = [f32(x + y) for x, y in zip(a, b)]
wrong = list(c)
wrong[12345] += 1.0
vec = {"a": save("a.npy", a), "b": save("b.npy", b), "c": save("c.npy", c), "wrong": save("wrong.npy", wrong)}

rows, d, eps = 64, 1024, 1e-5
x = [f32(rng.gauss(0, 1)) for _ in range(rows * d)]
w = [f32(rng.uniform(0.5, 1.5)) for _ in range(d)]
y = []
for r in range(rows):
    row = x[r * d : (r + 1) * d]
    inv = 1.0 / math.sqrt(sum(v * v for v in row) / d + eps)
    y.extend(f32(v * inv * wv) for v, wv in zip(row, w))
vec.update(x=save("x.npy", x, (rows, d)), w=save("w.npy", w), y=save("y.npy", y, (rows, d)))


def vadd(binary, kind, expected="c"):
    return {
        "name": "vadd", "kind": kind, "path": str(work / binary), "entry": "vadd",
        "tests": {"inputs": [vec["a"], vec["b"]], "expected": [vec[expected]], "rtol": 1e-6,
                  "atol": 1e-6, "grid": [(n + 255) // 256], "block": [256], "scalars": [n]},
    }


cases = [
    ("vadd fatbin (cubin + PTX)", vadd("vadd.fatbin", "cuda-fatbin"), "PASS"),
    ("vadd fatbin, zstd-compressed", vadd("vadd_zstd.fatbin", "cuda-fatbin"), "PASS"),
    ("vadd cubin", vadd("vadd.cubin", "cuda-cubin"), "PASS"),
    ("vadd PTX only (driver JIT)", vadd("vadd.ptx", "cuda-ptx"), "PASS"),
    ("vadd in a shared library", vadd("libvadd.so", "cuda-so"), "PASS"),
    ("rmsnorm fatbin (shared memory)", {
        "name": "rmsnorm", "kind": "cuda-fatbin", "path": str(work / "rmsnorm.fatbin"), "entry": "rmsnorm",
        "tests": {"inputs": [vec["x"], vec["w"]], "expected": [vec["y"]], "rtol": 1e-4, "atol": 1e-5,
                  "grid": [rows], "block": [256], "shared_mem": 256 * 4, "scalars": [d, eps]},
    }, "PASS"),
    ("negative control: a wrong expected value", vadd("vadd.fatbin", "cuda-fatbin", "wrong"), "FAIL"),
]

results = []
for label, kernel, want in cases:
    status, reason = run_kernel_test(kernel, lambda p: Path(p).read_bytes(), timeout=60.0)
    results.append((label, status, reason, want))
    print(f"{status:<8} {label}: {reason}", flush=True)

statuses = {s for _, s, _, _ in results}
if statuses == {"NOT RUN"}:
    print("gpu-check: NOT RUN: no device (nothing was launched; this is not a pass)")
    sys.exit(3 if require_gpu else 0)
bad = [(label, s, want) for label, s, _, want in results if s != want]
for label, s, want in bad:
    print(f"gpu-check: {label}: {s}, expected {want}")
print(f"gpu-check: {'FAIL' if bad else 'PASS'}: {len(results) - len(bad)} of {len(results)} cases as expected")
sys.exit(1 if bad else 0)
PY
exit "$status"
