"""Chip-stack rules: a typed Manifest in, findings out. No network, no hashing.

Codes (stable): AG2xx chips and stack, AG3xx platform and resources, AG4xx kernels, AG6xx the
serve section (packager.compat.serve_rules).
The only I/O is reading small local files the manifest names (requirements files) and listing the
local weights folder for its size; everything else is pure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.compat.ascend import check_ascend_stack
from packager.compat.cuda import Coverage, CudaArch, coverage, sm_name
from packager.compat.facts import GB, Chip, Facts, load_facts, resolve_chip
from packager.compat.serve_rules import check_serve
from packager.compat.versions import Constraint, Version, VersionError
from packager.findings import Finding, Severity, did_you_mean
from packager.manifest.model import Manifest, Target
from packager.manifest.yamlsource import JsonPath, json_path_str
from packager.probe.chipfacts import product_memory_gb
from packager.util.fs import is_dir, is_file, lookup_error
from packager.util.globs import selected
from packager.util.text import quoted
from packager.util.units import human_size

FP8 = frozenset({"fp8", "fp8_e4m3", "fp8_e5m2"})
ARCH_TOKENS = {
    "linux/arm64": ("aarch64", "arm64"),
    "linux/amd64": ("x86_64", "amd64", "x86-64"),
}


@dataclass
class _Ctx:
    manifest: Manifest
    facts: Facts
    findings: list[Finding]
    weights_bytes: int | None = -1  # -1: not measured yet

    def add(
        self,
        severity: Severity,
        code: str,
        message: str,
        path: JsonPath,
        hint: str | None = None,
        *,
        key: bool = False,
    ) -> None:
        doc = self.manifest.document
        self.findings.append(
            Finding(severity, code, message, doc.location(path, key=key), json_path_str(path), hint)
        )


def check_manifest(manifest: Manifest, facts: Facts | None = None) -> list[Finding]:
    """Every chip-stack finding for every target of ``manifest``."""
    ctx = _Ctx(manifest, facts or load_facts(), [])
    seen_shared: set[str] = set()
    for target in manifest.targets:
        chips = _check_chips(ctx, target)
        _check_stack_vendor(ctx, target)
        _check_precision(ctx, target, chips)
        _check_cuda(ctx, target, chips)
        _check_cann(ctx, target)
        check_ascend_stack(ctx.facts, target, [c for _, c in chips], ctx.add)
        _check_platform(ctx, target, chips)
        _check_kernels(ctx, target, chips)
        _check_memory(ctx, target, chips)
        _check_local_inputs(ctx, target, seen_shared)
        check_serve(ctx.add, target, lambda at: _raw(ctx, at))
    # a shared input checked once per target would repeat the same finding
    unique: dict[tuple[str, str, str], Finding] = {}
    for f in ctx.findings:
        unique.setdefault((f.code, f.json_path, f.message), f)
    return sorted(unique.values(), key=Finding.sort_key)


def _target_label(target: Target) -> str:
    return f"target {target.id!r}" if target.id else "the target"


# ----------------------------------------------------------------------------- chips and vendor


def _check_chips(ctx: _Ctx, t: Target) -> list[tuple[int, Chip]]:
    acc = t.accelerator
    at = (*t.json_path, "accelerator")
    chips: list[tuple[int, Chip]] = []
    if acc.vendor == "none":
        if acc.chips:
            ctx.add(
                Severity.ERROR,
                "AG204",
                "vendor none means a CPU-only deployment, but chips are listed",
                (*at, "chips"),
                "remove `chips`, or set `vendor` to nvidia or huawei",
            )
        return chips
    for i, name in enumerate(acc.chips):
        path = (*at, "chips", i)
        chip, alias = resolve_chip(ctx.facts, name)
        if chip is None:
            known = ctx.facts.chip_ids(acc.vendor)
            ctx.add(
                Severity.ERROR,
                "AG201",
                f"unknown {acc.vendor} chip {name!r}",
                path,
                did_you_mean(name, ctx.facts.chip_ids()) or f"known chips: {', '.join(known)}",
            )
            continue
        if alias:
            memory = product_memory_gb(name)
            ctx.add(
                Severity.INFO,
                "AG200",
                f"{name!r} read as the chip id {chip.id!r}"
                + (f" with {memory} GB per device" if memory else ""),
                path,
                f"write {chip.id!r}, the id airgap reports and matches"
                + (
                    f", and accelerator.memory: {memory}GB"
                    if memory and acc.memory_bytes is None and memory * GB != chip.memory_bytes
                    else ""
                ),
            )
        if chip.vendor != acc.vendor:
            ctx.add(
                Severity.ERROR,
                "AG202",
                f"{chip.id} is a {_vendor_name(chip.vendor)} chip, but the vendor is {acc.vendor}",
                path,
                f"set vendor: {chip.vendor}, or list {acc.vendor} chips "
                f"({', '.join(ctx.facts.chip_ids(acc.vendor)[:5])}, ...)",
            )
            continue
        chips.append((i, chip))
    return chips


def _vendor_name(vendor: str) -> str:
    return {"nvidia": "NVIDIA", "huawei": "Huawei Ascend"}.get(vendor, vendor)


def _check_stack_vendor(ctx: _Ctx, t: Target) -> None:
    vendor, st = t.accelerator.vendor, t.stack
    at = (*t.json_path, "stack")
    ascend_keys = [k for k in ("cann", "torch_npu", "firmware") if getattr(st, k)]
    if vendor == "none":
        for k in ("cuda", "cann", "driver", "firmware", "torch_npu"):
            if getattr(st, k):
                ctx.add(
                    Severity.ERROR,
                    "AG204",
                    f"stack.{k} is set, but vendor none means a CPU-only deployment",
                    (*at, k),
                    "remove it, or set the accelerator's vendor",
                    key=True,
                )
        return
    if vendor == "nvidia":
        for k in ascend_keys:
            ctx.add(
                Severity.ERROR,
                "AG203",
                f"stack.{k} belongs to the Ascend stack, but this target is NVIDIA",
                (*at, k),
                "an NVIDIA target names `cuda` and `driver`",
                key=True,
            )
        if not st.cuda:
            ctx.add(
                Severity.WARNING,
                "AG205",
                f"{_target_label(t)} names no CUDA version",
                at if st != type(st)() else t.json_path,
                'add stack.cuda (e.g. "12.4") so that chips, driver and kernels can be checked',
            )
    if vendor == "huawei":
        if st.cuda:
            ctx.add(
                Severity.ERROR,
                "AG203",
                "stack.cuda belongs to NVIDIA, but this target is Huawei Ascend",
                (*at, "cuda"),
                'an Ascend target names `cann` (e.g. ">=8.0.0") and `driver`',
                key=True,
            )
        if not st.cann:
            ctx.add(
                Severity.WARNING,
                "AG205",
                f"{_target_label(t)} names no CANN version",
                at if st != type(st)() else t.json_path,
                'add stack.cann (e.g. ">=8.0.0") so that torch_npu and the driver can be checked',
            )


# ----------------------------------------------------------------------------- precision


def _precision_path(ctx: _Ctx, t: Target) -> JsonPath:
    if t.id is not None and "precision" in ctx.manifest.document.get(t.json_path):
        return (*t.json_path, "precision")
    return ("model", "precision")


def _check_precision(ctx: _Ctx, t: Target, chips: list[tuple[int, Chip]]) -> None:
    p = t.precision
    if not p:
        return
    path = _precision_path(ctx, t)
    for _, chip in chips:
        if chip.vendor == "nvidia" and chip.cc is not None:
            need = ctx.facts.precision_min_cc.get(p)
            if need is not None and chip.cc < need:
                ctx.add(
                    Severity.ERROR,
                    "AG211" if p in FP8 else "AG210",
                    f"{p} needs compute capability >= {need}; {chip.id} has {chip.cc}"
                    + _in_target(t),
                    path,
                    _precision_hint(p, chip),
                )
        elif chip.vendor == "huawei":
            if p == "bf16" and chip.bf16 is False:
                ctx.add(
                    Severity.WARNING if chip.bf16_unsure else Severity.ERROR,
                    "AG210",
                    f"{chip.id} has no native bf16{_in_target(t)}"
                    + (" (the public facts are unsure for this chip)" if chip.bf16_unsure else ""),
                    path,
                    "use fp16 on this chip (torch_npu IsBF16Supported is false below Ascend910B)",
                )
            for gap in ctx.facts.precision_unsupported:
                if p in gap.precisions and chip.id in gap.chips:
                    ctx.add(
                        Severity.ERROR,
                        "AG211",
                        f"{chip.id} cannot run {p}{_in_target(t)}: FP8 needs the next Ascend "
                        "generation (Atlas A2/A3 and 300I run bf16/fp16 and W8A8)",
                        path,
                        gap.hint.format(float="bf16" if chip.bf16 else "fp16"),
                    )


def _in_target(t: Target) -> str:
    return f" (target {t.id!r})" if t.id else ""


def _precision_hint(p: str, chip: Chip) -> str:
    if p in FP8:
        return f"use int8 or fp16 weights on {chip.id}, or an fp8-capable chip (l40s, h100, ...)"
    if p == "bf16":
        return f"use fp16 on {chip.id}"
    return f"use fp16 or fp32 on {chip.id}"


# ----------------------------------------------------------------------------- CUDA and driver


def _constraint(ctx: _Ctx, text: str, path: JsonPath) -> Constraint | None:
    try:
        return Constraint.parse(text)
    except VersionError as exc:
        ctx.add(
            Severity.ERROR,
            "AG206",
            str(exc),
            path,
            'write a version or a range, no wildcards: e.g. "12.4", ">=8.0.0,<9" or ">=550.54.14"',
        )
        return None


def _check_cuda(ctx: _Ctx, t: Target, chips: list[tuple[int, Chip]]) -> None:
    st = t.stack
    if t.accelerator.vendor != "nvidia" or not st.cuda:
        return
    at = (*t.json_path, "stack")
    cuda = _constraint(ctx, st.cuda, (*at, "cuda"))
    if cuda is None:
        return
    low = cuda.lower_bound()
    # a patch release (12.4.1) belongs to the release line airgap knows (12.4)
    admitted = [
        r
        for r in ctx.facts.cuda_releases
        if cuda.admits(r) or (low is not None and low.startswith(r) and cuda.admits(low))
    ]
    if not admitted:
        ctx.add(
            Severity.WARNING,
            "AG224",
            f"cuda {cuda} matches no CUDA release airgap knows "
            f"({ctx.facts.cuda_releases[0]} .. {ctx.facts.cuda_releases[-1]})",
            (*at, "cuda"),
            'write a released version such as "12.4"',
        )
        return
    for _, chip in chips:
        _check_cuda_for_chip(ctx, chip, cuda, admitted, (*at, "cuda"))
    if st.driver:
        driver = _constraint(ctx, st.driver, (*at, "driver"))
        if driver is not None:
            _check_driver(ctx, admitted, driver, (*at, "driver"))
    else:
        need = ctx.facts.driver_min_for_cuda_major.get(admitted[0].major)
        ctx.add(
            Severity.INFO,
            "AG225",
            f"no driver constraint; CUDA {admitted[0]} needs driver >= {need}",
            at,
            f'add driver: ">={need}" so that the probe holds the site to it',
        )


@dataclass(frozen=True)
class _CudaVerdict:
    release: Version
    code: str | None  # None: supported; AG220 too old for the chip; AG221 dropped the chip
    why: str = ""
    unsure: bool = False


def _cuda_runs_chip(ctx: _Ctx, release: Version, chip: Chip) -> _CudaVerdict:
    """Whether CUDA ``release`` supports ``chip``, and if not, which rule says so."""
    assert chip.cc is not None
    cc_key = Version.parse(".".join(map(str, chip.cc.release[:2])))
    floor = ctx.facts.cuda_min_for_cc.get(cc_key)
    if floor is not None and release < floor.value:
        why = f"CUDA {floor.value} is the first to know compute capability {chip.cc}"
        return _CudaVerdict(release, "AG220", why, floor.unsure)
    min_cc = ctx.facts.cuda_min_cc.get(release.major)
    if min_cc is not None and chip.cc < min_cc:
        why = f"CUDA {release.major} dropped targets below {sm_name(min_cc)}"
        return _CudaVerdict(release, "AG221", why)
    return _CudaVerdict(release, None)


def _check_cuda_for_chip(
    ctx: _Ctx, chip: Chip, cuda: Constraint, admitted: list[Version], path: JsonPath
) -> None:
    verdicts = [_cuda_runs_chip(ctx, r, chip) for r in admitted]
    good = [v.release for v in verdicts if v.code is None]
    bad = [v for v in verdicts if v.code is not None]
    if not bad:
        return
    first = bad[0]
    assert first.code is not None and chip.cc is not None
    what = f"{chip.id} (compute capability {chip.cc}, {sm_name(chip.cc)})"
    if not good:
        ctx.add(
            Severity.WARNING if first.unsure else Severity.ERROR,
            first.code,
            f"cuda {cuda} cannot run on {what}: {first.why}",
            path,
            _cuda_fix(ctx, chip),
        )
        return
    ctx.add(
        Severity.WARNING,
        first.code,
        f"cuda {cuda} also admits CUDA {first.release}, which cannot run on {what}: {first.why}",
        path,
        f'narrow it, e.g. "{good[0]}"'
        + (f' or ">={good[0]},<{first.release.major}"' if first.code == "AG221" else ""),
    )


def _cuda_fix(ctx: _Ctx, chip: Chip) -> str:
    ok = [r for r in ctx.facts.cuda_releases if _cuda_runs_chip(ctx, r, chip).code is None]
    if not ok:
        return "no CUDA release airgap knows supports this chip"
    return f"{chip.id} needs CUDA {ok[0]} .. {ok[-1]}"


def _check_driver(ctx: _Ctx, admitted: list[Version], driver: Constraint, path: JsonPath) -> None:
    cuda = admitted[0]
    low = driver.lower_bound()
    need = ctx.facts.driver_min_for_cuda_major.get(cuda.major)
    if need is None:
        return
    if low is None or low < need:
        ctx.add(
            Severity.ERROR,
            "AG222",
            f"driver {driver} admits drivers older than {need}, "
            f"the minimum for CUDA {cuda.major}.x",
            path,
            f'require driver ">={need}" (docs.nvidia.com/deploy/cuda-compatibility)',
        )
        return
    newest = admitted[-1]
    need_newest = ctx.facts.driver_min_for_cuda_major.get(newest.major)
    if need_newest is not None and low < need_newest:
        ctx.add(
            Severity.WARNING,
            "AG222",
            f"the cuda range admits CUDA {newest}, which needs driver >= {need_newest}; "
            f"driver {driver} admits older ones",
            path,
            f'cap cuda below {newest.major}, or require driver ">={need_newest}"',
        )
    release = Version.parse(".".join(map(str, cuda.release[:2])))
    full = ctx.facts.driver_for_cuda_release.get(release)
    if full is not None and low < full:
        ctx.add(
            Severity.WARNING,
            "AG223",
            f"driver {driver} runs CUDA {release} through minor-version compatibility only; "
            f"all of its features need the driver it shipped with ({full})",
            path,
            f'require driver ">={full}" if the deployment needs the newest CUDA features',
        )


# ----------------------------------------------------------------------------- CANN and torch_npu

_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._\-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([^\s;#,]+)")


def pinned_requirements(files: tuple[Path, ...]) -> dict[str, tuple[str, Path, int]]:
    """``name==version`` pins from requirements files: normalized name -> (version, file, line)."""
    pins: dict[str, tuple[str, Path, int]] = {}
    for f in files:
        try:
            lines = f.read_text(encoding="utf-8", errors="replace").splitlines()[:10_000]
        except OSError:
            continue
        for n, line in enumerate(lines, 1):
            m = _REQ.match(line)
            if m:
                pins[re.sub(r"[-_.]+", "-", m.group(1).lower())] = (m.group(2), f, n)
    return pins


def _check_cann(ctx: _Ctx, t: Target) -> None:
    if t.accelerator.vendor != "huawei":
        return
    at = (*t.json_path, "stack")
    st = t.stack
    cann = _constraint(ctx, st.cann, (*at, "cann")) if st.cann else None
    pins = pinned_requirements(t.wheels.requirements) if t.wheels else {}
    npu_text = st.torch_npu
    npu_path: JsonPath = (*at, "torch_npu")
    npu_where = ""
    if npu_text is None and "torch-npu" in pins:
        npu_text, f, line = pins["torch-npu"]
        npu_path = t.wheels.json_path if t.wheels else at
        npu_where = f" ({f.name}:{line})"
    if npu_text is None:
        return
    try:
        npu = Constraint.parse(npu_text).lower_bound()
    except VersionError:
        npu = None
    if npu is None:
        return
    torch_text = st.torch or (pins["torch"][0] if "torch" in pins else None)
    if torch_text:
        try:
            torch = Constraint.parse(torch_text).lower_bound()
        except VersionError:
            torch = None
        if torch is not None and torch.base != npu.base:
            ctx.add(
                Severity.ERROR,
                "AG231",
                f"torch {torch} does not match torch_npu {npu}{npu_where}: "
                f"torch_npu {npu} is built for torch {npu.base}",
                npu_path,
                f"pin torch=={npu.base}",
            )
    low = cann.lower_bound() if cann else None
    if low is None:
        return
    table = ctx.facts.torch_npu_for_cann
    exact = next((v for c, v in table.items() if c == low), None)
    if exact is None:
        same_line = [c for c in table if c.release[:2] == low.release[:2]]
        ctx.add(
            Severity.WARNING,
            "AG232",
            f"no torch_npu compatibility facts for CANN {low}"
            + (f" (closest: CANN {same_line[0]})" if same_line else ""),
            (*at, "cann"),
            f"known CANN releases: {', '.join(map(str, table))}",
        )
        return
    if not any(npu == v for v in exact):
        made_for = [str(c) for c, v in table.items() if any(npu == x for x in v)]
        admitted = [c for c in made_for if cann is not None and cann.admits(Version.parse(c))]
        ctx.add(
            Severity.WARNING if admitted else Severity.ERROR,
            "AG230",
            f"torch_npu {npu}{npu_where} is not a release for CANN {low}"
            + (f"; it needs CANN {admitted[0]}, which cann {cann} also admits" if admitted else ""),
            npu_path,
            (f'raise the floor: cann ">={admitted[0]}"; ' if admitted else "")
            + f"CANN {low} takes torch_npu {', '.join(map(str, exact))}"
            + (f"; torch_npu {npu} is for CANN {', '.join(made_for)}" if made_for else ""),
        )


# ----------------------------------------------------------------------------- platform


def _check_platform(ctx: _Ctx, t: Target, chips: list[tuple[int, Chip]]) -> None:
    path = (*t.json_path, "platform")
    for _, chip in chips:
        if t.platform not in chip.platforms:
            ctx.add(
                Severity.WARNING,
                "AG301",
                f"{chip.id} hosts are usually {' or '.join(chip.platforms)}, not {t.platform}",
                path,
                "check the site's `uname -m`; images and wheels must match it",
            )
    other = [p for p in ARCH_TOKENS if p != t.platform]
    named: list[tuple[str, JsonPath]] = [(i.ref, i.json_path) for i in t.images]
    named += [(f.source.name, f.json_path) for f in t.files]
    for text, where in named:
        low = text.lower()
        for plat in other:
            token = next((tok for tok in ARCH_TOKENS[plat] if _has_token(low, tok)), None)
            if token:
                ctx.add(
                    Severity.WARNING,
                    "AG302",
                    f"{text!r} looks built for {plat} ({token}), but the target is {t.platform}",
                    where,
                    f"use the {t.platform} build",
                )


def _has_token(text: str, token: str) -> bool:
    return re.search(rf"(^|[^a-z0-9]){re.escape(token)}($|[^a-z0-9])", text) is not None


# ----------------------------------------------------------------------------- kernels


def _check_kernels(ctx: _Ctx, t: Target, chips: list[tuple[int, Chip]]) -> None:
    vendor = t.accelerator.vendor
    for k in t.kernels:
        cuda_kind = k.kind.startswith("cuda-")
        if vendor == "none" or (vendor == "huawei") == cuda_kind:
            where = "a CPU-only" if vendor == "none" else f"a {_vendor_name(vendor)}"
            ctx.add(
                Severity.ERROR,
                "AG403",
                f"kernel {k.name!r} is {k.kind}, which cannot run on {where} target",
                (*k.json_path, "kind"),
                "move it under the target it is built for (targets.<id>.kernels)",
            )
            continue
        if not k.targets:
            continue
        if cuda_kind:
            _check_cuda_kernel(ctx, k.name, k.targets, k.json_path, chips)
        else:
            _check_ascend_kernel(ctx, k.name, k.targets, k.json_path, chips)


def _check_cuda_kernel(
    ctx: _Ctx, name: str, targets: tuple[str, ...], at: JsonPath, chips: list[tuple[int, Chip]]
) -> None:
    archs = []
    for i, text in enumerate(targets):
        try:
            archs.append(CudaArch.parse(text))
        except ValueError as exc:
            ctx.add(
                Severity.ERROR,
                "AG404",
                str(exc),
                (*at, "targets", i),
                "write nvcc's names: sm_90 (a cubin), sm_90a (arch-specific), compute_90 (PTX)",
            )
    if not archs:
        return
    has = ", ".join(map(str, archs))
    for _, chip in chips:
        assert chip.cc is not None
        cov = coverage(archs, chip.cc)
        need = f"{sm_name(chip.cc)} (or PTX compute_XY with XY <= {sm_name(chip.cc)[3:]})"
        if cov is Coverage.NONE:
            ctx.add(
                Severity.ERROR,
                "AG401",
                f"kernel {name!r} cannot run on {chip.id}: it has {has}, {chip.id} needs {need}",
                (*at, "targets"),
                f"build with -gencode arch=compute_{sm_name(chip.cc)[3:]},code=sm_{sm_name(chip.cc)[3:]}",
            )
        elif cov is Coverage.PTX_JIT:
            ctx.add(
                Severity.WARNING,
                "AG402",
                f"kernel {name!r} runs on {chip.id} only through PTX JIT (it has {has}): "
                "slow first start",
                (*at, "targets"),
                f"add a cubin for {sm_name(chip.cc)}",
            )


def _check_ascend_kernel(
    ctx: _Ctx, name: str, targets: tuple[str, ...], at: JsonPath, chips: list[tuple[int, Chip]]
) -> None:
    socs = {s.lower() for s in targets}
    for _, chip in chips:
        mine = {s.lower() for s in chip.soc} | ({chip.family.lower()} if chip.family else set())
        if not socs & mine:
            ctx.add(
                Severity.ERROR,
                "AG401",
                f"kernel {name!r} is built for {', '.join(targets)}, not for {chip.id} "
                f"(soc {', '.join(chip.soc)})",
                (*at, "targets"),
                f"build the op package for soc_version {chip.soc[0]}",
            )


# ----------------------------------------------------------------------------- resources


def weights_size(manifest: Manifest, limit_files: int = 100_000) -> int | None:
    """Bytes of local weight files the include/exclude globs select; None when not local."""
    src = manifest.model.source.path
    if src is None or not is_dir(src):
        return None
    total = 0
    count = 0
    for dirpath, _dirs, files in os.walk(src):
        for fname in files:
            rel = os.path.relpath(os.path.join(dirpath, fname), src).replace(os.sep, "/")
            if not selected(rel, manifest.model.include, manifest.model.exclude):
                continue
            try:
                total += os.stat(os.path.join(dirpath, fname)).st_size
            except OSError:
                continue
            count += 1
            if count > limit_files:
                return total
    return total


def _check_memory(ctx: _Ctx, t: Target, chips: list[tuple[int, Chip]]) -> None:
    if not chips:
        return
    if ctx.weights_bytes == -1:
        ctx.weights_bytes = weights_size(ctx.manifest)
    size = ctx.weights_bytes
    if not size:
        return
    per_device = t.accelerator.memory_bytes or min(c.memory_bytes for _, c in chips)
    total = per_device * t.accelerator.count
    if size > total:
        ctx.add(
            Severity.WARNING,
            "AG310",
            f"the weights ({human_size(size)}) are larger than the memory of "
            f"{t.accelerator.count} x {human_size(per_device)} devices ({human_size(total)})",
            (*t.json_path, "accelerator"),
            "raise accelerator.count, pick a chip with more memory, or a smaller precision",
        )


def _check_local_inputs(ctx: _Ctx, t: Target, seen: set[str]) -> None:
    m = ctx.manifest
    checks: list[tuple[Path, JsonPath, str, Callable[[Path], bool]]] = []
    if m.model.source.path is not None:
        checks.append((m.model.source.path, ("model", "source", "path"), "weights folder", is_dir))
    for f in t.files:
        checks.append((f.source, (*f.json_path, "source"), "file", is_file))
    for k in t.kernels:
        checks.append((k.path, (*k.json_path, "path"), "kernel", is_file))
    if t.wheels:
        for r in t.wheels.requirements:
            checks.append((r, t.wheels.json_path, "requirements file", is_file))
    for path, where, what, ok in checks:
        key = f"{where}:{path}"
        if key in seen:
            continue
        seen.add(key)
        if not ok(path):
            written = _written(ctx, where)
            why = lookup_error(path)
            ctx.add(
                Severity.WARNING,
                "AG311",
                f"{what} {quoted(written or str(path), 200)} "
                + (f"cannot be looked up on this host ({why})" if why else "not found on this host")
                + (
                    f" (looked in {quoted(str(path), 200)})"
                    if written and written != str(path)
                    else ""
                ),
                where,
                "`airgap lock` and `airgap build` need it; validate checks the rest regardless",
            )


def _written(ctx: _Ctx, where: JsonPath) -> str | None:
    """The path as the manifest spells it, when ``where`` points at a string."""
    try:
        value = ctx.manifest.document.get(where)
    except (KeyError, IndexError, TypeError):
        return None
    return value if isinstance(value, str) else None


def _raw(ctx: _Ctx, where: JsonPath) -> Any:
    """The manifest's value at ``where``, None when there is none."""
    try:
        return ctx.manifest.document.get(where)
    except (KeyError, IndexError, TypeError):
        return None
