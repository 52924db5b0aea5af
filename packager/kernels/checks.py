"""Kernel coverage read from the binary, checked against the target's chips.

``check_kernel(kernel, chips)`` inspects the kernel file and returns a ``KernelCheck``: what the
file holds, NATIVE / PTX_JIT / NONE for each chip, whether the entry symbol is there, and issues
(severity, stable code, message, hint, the manifest field they are about). ``KernelCheck.to_json()``
is the record a bundle keeps of the check. ``validate_kernels(manifest)`` turns the issues of every
target into findings for ``airgap validate``.

Codes (AG4xx, after compat's AG401..AG404 which read the *declared* targets):

======  ========  ===================================================================================
AG405   error     the file cannot be read as the CUDA code it is declared as: not CUDA at all,
                  truncated, a fatbin entry whose sizes are inconsistent, a compressed entry that
                  does not decompress, an entry whose header and image disagree
AG406   error     nothing in the binary runs on a chip of the target (no cubin for its SM, no PTX
                  at or below its compute capability)
AG407   warning   only PTX covers a chip: the driver JIT-compiles it at first load (slow start)
AG408   error     the entry symbol is not a kernel in the file
AG409   warning   the declared ``targets`` disagree with what the binary holds
AG410   warning   the declared ``kind`` is not what the file is (a cubin declared cuda-fatbin)
AG411   warning   the entry could not be checked (entries not decoded), or a kernel with tests
                  names no entry
AG412   info      the kernel file is empty: a placeholder, not inspected
AG413   error     an Ascend op built for another soc than a chip of the target
AG414   warning   an Ascend op without kernel metadata naming its soc (or metadata unreadable)
AG415   error     the Ascend metadata's sha256 is not the binary's
AG416   error     a test vector is not a valid .npy array (bad header, size mismatch, object dtype)
AG417   warning   a test vector file is missing
AG418   error     the kernel's parameters (from the binary) do not match the test's buffers and scalars
AG419   warning   an expected output's float dtype differs from the float inputs' (likely a mistake)
AG420   error     the PTX is of a newer ISA than the target's CUDA (a newer toolkit built it): the
                  target's driver cannot JIT-compile it, and a chip runs only that PTX (a warning
                  when cubins cover every chip and the PTX is only a fallback)
======  ========  ===================================================================================

The severities are ``check_kernel``'s, which the build applies. ``validate_kernels`` (for
``airgap validate``, which runs before anything is built or fetched) reports the test-vector
errors AG416 and AG418 as warnings: validate vouches for the chip stack, the build for the
vectors that travel with the kernel.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.compat.cuda import Coverage, CudaArch, sm_name
from packager.compat.facts import Chip, Facts, load_facts, resolve_chip
from packager.compat.versions import Constraint, Version, VersionError
from packager.findings import Finding, Severity, did_you_mean
from packager.kernels import ascend
from packager.kernels.errors import KernelFormatError
from packager.kernels.inspection import (
    FORMAT_FOR_KIND,
    FORMAT_NAMES,
    Image,
    KernelInfo,
    inspect_file,
)
from packager.manifest.model import Kernel, Manifest, Stack
from packager.manifest.yamlsource import JsonPath, json_path_str
from packager.probe.npy import NpyArray, NpyError, read_npy
from packager.util.fs import is_file

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
SUPERSEDED = frozenset({"AG401", "AG402"})  # declared-target findings the binary replaces
#: test-vector findings: errors of check_kernel (for the build), warnings in `airgap validate`
VECTOR_CODES = frozenset({"AG416", "AG418"})
_MANGLED = re.compile(r"^_Z(\d+)")


@dataclass(frozen=True)
class KernelIssue:
    severity: Severity
    code: str
    message: str
    field: tuple[str | int, ...]  # below the kernel's own JSON path: ("path",), ("entry",) ...
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "field": list(self.field),
            "hint": self.hint,
        }


@dataclass(frozen=True)
class ChipCoverage:
    chip: str
    cc: str | None  # NVIDIA compute capability
    coverage: Coverage
    via: tuple[str, ...]  # the archs that cover it (cubins for NATIVE, PTX for PTX_JIT)

    def to_json(self) -> dict[str, Any]:
        return {
            "chip": self.chip,
            "cc": self.cc,
            "coverage": self.coverage.value,
            "via": list(self.via),
        }


@dataclass(frozen=True)
class KernelCheck:
    name: str
    kind: str
    path: str
    inspected: bool  # the binary was read and holds no damage
    format: str | None
    sha256: str | None
    archs: tuple[str, ...]
    kernels: tuple[str, ...]
    entry: str | None
    entry_found: bool | None
    chips: tuple[ChipCoverage, ...]
    issues: tuple[KernelIssue, ...]
    info: KernelInfo | None = field(default=None, compare=False, repr=False)
    ascend: ascend.AscendMeta | None = field(default=None, compare=False, repr=False)

    @property
    def params(self) -> tuple[int, ...] | None:
        """Byte size of each parameter of the entry, when the binary says (for the probe)."""
        if self.info is None or not self.entry or not self.entry_found:
            return None
        return self.info.params_of(self.entry)

    @property
    def ok(self) -> bool:
        return not any(i.severity is ERROR for i in self.issues)

    def coverage(self, chip: str) -> Coverage | None:
        return next((c.coverage for c in self.chips if c.chip == chip), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "path": self.path,
            "inspected": self.inspected,
            "format": self.format,
            "sha256": self.sha256,
            "archs": list(self.archs),
            "kernels": list(self.kernels),
            "entry": self.entry,
            "entry_found": self.entry_found,
            "params": list(self.params) if self.params is not None else None,
            "coverage": [c.to_json() for c in self.chips],
            "ascend": self.ascend.to_json() if self.ascend else None,
            "issues": [i.to_json() for i in self.issues],
            "ok": self.ok,
        }


# ----------------------------------------------------------------------------- coverage rules


def runs_on(arch: CudaArch, cc: Version) -> bool:
    """compat.cuda's rule, plus family PTX (compute_100f) staying inside its family."""
    if arch.ptx and arch.suffix == "f":
        major, minor = cc.release[0], (cc.release[1] if len(cc.release) > 1 else 0)
        return major == arch.major and minor >= arch.minor
    return arch.runs_on(cc)


def chip_coverage(archs: Iterable[CudaArch], chip: Chip) -> ChipCoverage:
    assert chip.cc is not None
    archs = list(archs)
    native = [a for a in archs if not a.ptx and runs_on(a, chip.cc)]
    jit = [a for a in archs if a.ptx and runs_on(a, chip.cc)]
    if native:
        return ChipCoverage(chip.id, str(chip.cc), Coverage.NATIVE, tuple(map(str, native)))
    if jit:
        return ChipCoverage(chip.id, str(chip.cc), Coverage.PTX_JIT, tuple(map(str, jit)))
    return ChipCoverage(chip.id, str(chip.cc), Coverage.NONE, ())


def _needs(chip: Chip) -> str:
    assert chip.cc is not None
    sm = sm_name(chip.cc)
    return f"a cubin for {sm} (or an older {sm[:-1]}x of the same major) or PTX compute_XY with XY <= {sm[3:]}"


def _why_not(archs: Sequence[CudaArch], chip: Chip) -> str:
    assert chip.cc is not None
    major = chip.cc.release[0]
    notes = []
    for a in archs:
        if a.suffix == "a":
            notes.append(f"{a} runs only on compute capability {a.major}.{a.minor}")
        elif not a.ptx and a.major != major:
            notes.append(f"{a} runs only on {a.major}.x")
        elif a.ptx and (a.major, a.minor) > (
            major,
            chip.cc.release[1] if len(chip.cc.release) > 1 else 0,
        ):
            notes.append(f"{a} needs compute capability >= {a.major}.{a.minor}")
        elif not a.ptx:
            notes.append(f"{a} needs {a.major}.{a.minor} or newer within {a.major}.x")
    return "; ".join(dict.fromkeys(notes))


# ----------------------------------------------------------------------------- one kernel


def check_kernel(
    kernel: Kernel,
    chips: Sequence[Chip],
    *,
    info: KernelInfo | None = None,
    vectors: bool = True,
    stack: Stack | None = None,
) -> KernelCheck:
    """Every binary check of ``kernel`` against ``chips`` (the target's, resolved) and, given
    the target's ``stack``, its CUDA."""
    if kernel.kind == "ascend-op":
        return _check_ascend(kernel, chips)
    nvidia = [c for c in chips if c.vendor == "nvidia" and c.cc]
    return _check_cuda(kernel, nvidia, info, vectors, stack)


def _check_cuda(
    kernel: Kernel,
    chips: Sequence[Chip],
    info: KernelInfo | None,
    vectors: bool,
    stack: Stack | None = None,
) -> KernelCheck:
    issues: list[KernelIssue] = []
    name = kernel.name
    path = kernel.path

    def done(
        inspected: bool, cover: Sequence[ChipCoverage] = (), found: bool | None = None
    ) -> KernelCheck:
        return KernelCheck(
            name,
            kernel.kind,
            str(path),
            inspected,
            info.format if info else None,
            info.sha256 if info else None,
            tuple(str(a) for a in info.archs()) if info else (),
            tuple(info.kernels()) if info else (),
            kernel.entry,
            found,
            tuple(cover),
            tuple(issues),
            info,
        )

    if info is None:
        try:
            if is_file(path) and path.stat().st_size == 0:
                issues.append(_placeholder(kernel))
                return done(False)
            info = inspect_file(path, kernel.kind)
        except KernelFormatError as exc:
            issues.append(
                KernelIssue(
                    ERROR,
                    "AG405",
                    f"kernel {name!r}: {exc.message}",
                    ("path",),
                    exc.hint or "rebuild the kernel, or copy it again",
                )
            )
            return done(False)
    for p in info.problems:
        issues.append(
            KernelIssue(
                ERROR,
                "AG405",
                f"kernel {name!r}: {p}",
                ("path",),
                "the file is damaged: rebuild it or copy it again",
            )
        )
    want = FORMAT_FOR_KIND.get(kernel.kind)
    if want and want != info.format:
        issues.append(
            KernelIssue(
                WARNING,
                "AG410",
                f"kernel {name!r} is declared {kernel.kind}, but {path.name} is a {FORMAT_NAMES[info.format]}",
                ("kind",),
                f"write kind: {_kind_for(info.format)}",
            )
        )

    found: bool | None = None
    # images known to define no kernel (a static runtime's own fatbin) run nothing of ours,
    # unless the file defines no kernel anywhere: then every image counts
    defines = bool(info.kernels())
    images = [i for i in info.images if i.runs and (i.kernels != () or not defines)]
    if kernel.entry:
        found = info.has_kernel(kernel.entry)
        if found is False:
            issues.append(_missing_entry(kernel, info))
        elif found is None:
            issues.append(
                KernelIssue(
                    WARNING,
                    "AG411",
                    f"kernel {name!r}: entry {kernel.entry!r} could not be checked: "
                    f"{len(info.undecoded())} image(s) of {path.name} were not decoded",
                    ("entry",),
                    "see `airgap kernels inspect` for why",
                )
            )
        if found:
            images = [i for i in info.images_with(kernel.entry) if i.kernels != () or not defines]
    elif kernel.tests is not None:
        issues.append(
            KernelIssue(
                WARNING,
                "AG411",
                f"kernel {name!r} has test vectors but names no entry: the probe cannot launch it",
                ("tests",),
                f"add entry: <the __global__ function> ({', '.join(info.kernels()[:3]) or 'see airgap kernels inspect'})",
            )
        )

    archs = _archs(images)
    has = ", ".join(map(str, archs)) or "no loadable code"
    where = f"{path.name}" + (f" ({kernel.entry})" if kernel.entry and found else "")
    cover = []
    for chip in chips:
        assert chip.cc is not None
        c = chip_coverage(archs, chip)
        cover.append(c)
        sm = sm_name(chip.cc)
        if c.coverage is Coverage.NONE:
            why = _why_not(archs, chip)
            issues.append(
                KernelIssue(
                    ERROR,
                    "AG406",
                    f"kernel {name!r}: nothing in {where} runs on {chip.id} (compute capability {chip.cc}): "
                    f"the binary holds {has}; {chip.id} needs {_needs(chip)}"
                    + (f" ({why})" if why else ""),
                    ("path",),
                    f"rebuild with -gencode arch=compute_{sm[3:]},code=sm_{sm[3:]}",
                )
            )
        elif c.coverage is Coverage.PTX_JIT:
            issues.append(
                KernelIssue(
                    WARNING,
                    "AG407",
                    f"kernel {name!r} runs on {chip.id} (compute capability {chip.cc}) only through PTX JIT "
                    f"of {', '.join(c.via)}: the driver compiles it at first load (slow first start); "
                    f"the binary holds {has}",
                    ("path",),
                    f"add a cubin: -gencode arch=compute_{sm[3:]},code=sm_{sm[3:]}",
                )
            )

    if stack is not None and stack.cuda:
        _ptx_isa(kernel, images, cover, stack, issues)
    if kernel.targets:
        _declared_vs_binary(kernel, info, issues)
    if vectors and kernel.tests is not None:
        _check_vectors(kernel, info, issues)
    return done(not info.problems, cover, found)


def _ptx_isa(
    kernel: Kernel,
    images: Sequence[Image],
    cover: Sequence[ChipCoverage],
    stack: Stack,
    issues: list[KernelIssue],
) -> None:
    """PTX of a newer ISA than the target's CUDA: its driver cannot JIT-compile it."""
    facts = load_facts()
    try:
        cuda = Constraint.parse(stack.cuda or "").lower_bound()
        floor = Constraint.parse(stack.driver).lower_bound() if stack.driver else None
    except VersionError:
        return  # compat names a bad constraint (AG206)
    isas = []
    for img in images:
        text = img.detail.get("ptx_isa") if img.kind == "ptx" else None
        if not text:
            continue
        try:
            isas.append(Version.parse(str(text)))
        except VersionError:
            continue
    if cuda is None or not isas:
        return
    line = Version.parse(f"{cuda.release[0]}.{cuda.release[1] if len(cuda.release) > 1 else 0}")
    table = facts.ptx_isa_for_cuda
    target_isa = next((isa for r, isa in table.items() if r == line), None)
    newest = max(isas)
    if target_isa is None or newest <= target_isa:
        return
    writer = min((r for r, isa in table.items() if isa >= newest), default=None)
    need = next((d for r, d in facts.driver_for_cuda_release.items() if r == writer), None)
    if floor is not None and need is not None and floor >= need:
        return  # the target holds the site to a driver that JIT-compiles it
    jit_only = [c.chip for c in cover if c.coverage is Coverage.PTX_JIT]
    by = f"CUDA {writer}" if writer else "a CUDA newer than airgap knows"
    issues.append(
        KernelIssue(
            ERROR if jit_only else WARNING,
            "AG420",
            f"kernel {kernel.name!r}: its PTX is ISA {newest} (written by {by}), newer than the "
            f"target's CUDA {line} (PTX ISA {target_isa}): a driver for CUDA {line} cannot "
            "JIT-compile it (CUDA_ERROR_UNSUPPORTED_PTX_VERSION)"
            + (
                f"; {', '.join(jit_only)} run{'s' if len(jit_only) == 1 else ''} only this PTX"
                if jit_only
                else "; the cubins load, the PTX fallback does not"
            ),
            ("path",),
            f"build it with CUDA {line}'s nvcc, or raise the target to cuda {writer} "
            f'with driver ">={need}"'
            if writer and need
            else f"build it with CUDA {line}'s nvcc",
        )
    )


def _placeholder(kernel: Kernel) -> KernelIssue:
    return KernelIssue(
        INFO,
        "AG412",
        f"kernel {kernel.name!r}: {kernel.path.name} is empty, a placeholder: not inspected",
        ("path",),
        "put the compiled binary there before `airgap build`",
    )


def _kind_for(fmt: str) -> str:
    return {v: k for k, v in FORMAT_FOR_KIND.items()}[fmt]


def _archs(images: Iterable[Image]) -> list[CudaArch]:
    uniq = {str(i.arch): i.arch for i in images if i.arch is not None}
    return sorted(uniq.values(), key=lambda a: (a.ptx, a.major, a.minor, a.suffix))


def demangled_base(symbol: str) -> str | None:
    """``rmsnorm`` from the Itanium-mangled ``_Z7rmsnormPfS_i`` (plain functions only)."""
    m = _MANGLED.match(symbol)
    if not m:
        return None
    n = int(m.group(1))
    start = m.end()
    return symbol[start : start + n] if len(symbol) >= start + n else None


def _missing_entry(kernel: Kernel, info: KernelInfo) -> KernelIssue:
    entry = kernel.entry or ""
    names = info.kernels()
    mangled = [k for k in names if demangled_base(k) == entry]
    if mangled:
        hint = (
            f"the kernel is C++-mangled as {mangled[0]!r}: write entry: {mangled[0]!r} "
            'or declare it extern "C"'
        )
    else:
        hint = did_you_mean(entry, names) or (
            f"kernels in the file: {', '.join(names[:8])}"
            if names
            else "the file defines no kernels"
        )
    return KernelIssue(
        ERROR,
        "AG408",
        f"kernel {kernel.name!r}: entry {entry!r} is not a kernel in {kernel.path.name} "
        f"(it defines {', '.join(names[:8]) or 'none'}): cuModuleGetFunction would fail",
        ("entry",),
        hint,
    )


def _declared_vs_binary(kernel: Kernel, info: KernelInfo, issues: list[KernelIssue]) -> None:
    declared = set()
    for t in kernel.targets:
        try:
            declared.add(str(CudaArch.parse(t)))
        except ValueError:
            continue  # compat's AG404 names it
    found = {str(a) for a in info.archs()}
    if not declared or declared == found:
        return
    missing = sorted(declared - found)
    extra = sorted(found - declared)
    parts = []
    if missing:
        parts.append(f"declared but not in the binary: {', '.join(missing)}")
    if extra:
        parts.append(f"in the binary but not declared: {', '.join(extra)}")
    issues.append(
        KernelIssue(
            WARNING,
            "AG409",
            f"kernel {kernel.name!r}: targets {list(kernel.targets)} disagree with {kernel.path.name} "
            f"({'; '.join(parts)}); the binary is what runs",
            ("targets",),
            f"write targets: [{', '.join(sorted(found))}]",
        )
    )


def _check_vectors(kernel: Kernel, info: KernelInfo, issues: list[KernelIssue]) -> None:
    tests = kernel.tests
    assert tests is not None
    arrays: dict[str, list[NpyArray]] = {"inputs": [], "expected": []}
    complete = True
    for group, paths in (("inputs", tests.inputs), ("expected", tests.expected)):
        for i, p in enumerate(paths):
            if not is_file(p):
                complete = False
                issues.append(
                    KernelIssue(
                        WARNING,
                        "AG417",
                        f"kernel {kernel.name!r}: test vector {p} not found on this host",
                        ("tests", group, i),
                        "`airgap build` needs it",
                    )
                )
                continue
            try:
                arrays[group].append(read_npy(p.read_bytes(), str(p)))
            except (NpyError, OSError) as exc:
                complete = False
                issues.append(
                    KernelIssue(
                        ERROR,
                        "AG416",
                        f"kernel {kernel.name!r}: test vector {exc}",
                        ("tests", group, i),
                        "write it with numpy.save(path, numpy.ascontiguousarray(a, dtype=numpy.float32))",
                    )
                )
    if kernel.entry:
        sizes = info.params_of(kernel.entry)
        passed = [8] * (len(tests.inputs) + len(tests.expected)) + [4] * len(tests.scalars)
        if sizes is not None and list(sizes) != passed:
            issues.append(
                KernelIssue(
                    ERROR,
                    "AG418",
                    f"kernel {kernel.name!r}: {kernel.entry} takes {len(sizes)} parameter(s) of "
                    f"{list(sizes)} bytes; the test passes {passed} ({len(tests.inputs)} input pointer(s), "
                    f"{len(tests.expected)} output pointer(s), {len(tests.scalars)} 4-byte scalar(s))",
                    ("tests",),
                    "the probe passes pointers to the inputs, then to one output per expected array, "
                    "then the scalars: match the kernel's signature",
                )
            )
    if complete and arrays["inputs"] and arrays["expected"]:
        in_floats = {a.dtype for a in arrays["inputs"] if a.is_float}
        if in_floats and all(a.is_float for a in arrays["inputs"]):
            for i, e in enumerate(arrays["expected"]):
                if e.is_float and e.dtype not in in_floats:
                    issues.append(
                        KernelIssue(
                            WARNING,
                            "AG419",
                            f"kernel {kernel.name!r}: expected[{i}] is {e.dtype} but the inputs are "
                            f"{'/'.join(sorted(in_floats))}: the output buffer is sized and read as {e.dtype}",
                            ("tests", "expected", i),
                            "save the expected output as the kernel writes it",
                        )
                    )


# ----------------------------------------------------------------------------- Ascend


def _check_ascend(kernel: Kernel, chips: Sequence[Chip]) -> KernelCheck:
    issues: list[KernelIssue] = []
    if is_file(kernel.path) and kernel.path.stat().st_size == 0:
        issues.append(_placeholder(kernel))
        return KernelCheck(
            kernel.name,
            kernel.kind,
            str(kernel.path),
            False,
            None,
            None,
            (),
            (),
            kernel.entry,
            None,
            (),
            tuple(issues),
        )
    known: set[str] = set()
    for c in [*chips, *load_facts().chips.values()]:  # a folder may name any soc, not only ours
        known.update(c.soc)
        if c.family:
            known.add(c.family)
    meta = ascend.read_meta(kernel.path, sorted(known))
    if meta.error:
        issues.append(
            KernelIssue(
                WARNING,
                "AG414",
                f"kernel {kernel.name!r}: {meta.error}",
                ("path",),
                "keep the JSON CANN wrote beside the kernel binary",
            )
        )
    cover = []
    if not meta.socs:
        if not meta.error:
            what = (
                f"{meta.meta.name} names no soc version"
                if meta.meta
                else (
                    f"no kernel metadata JSON beside {kernel.path.name} "
                    f"(looked for {', '.join(str(c) for c in ascend.meta_candidates(kernel.path))})"
                )
            )
            issues.append(
                KernelIssue(
                    WARNING,
                    "AG414",
                    f"kernel {kernel.name!r}: {what}: its soc cannot be checked",
                    ("path",),
                    f'keep the op\'s JSON beside it, with "socVersion" (one of {", ".join(ascend.SOC_KEYS[:2])})',
                )
            )
    else:
        for chip in chips:
            if chip.vendor != "huawei":
                continue
            ok = ascend.soc_matches(meta.socs, chip.soc, chip.family)
            cover.append(
                ChipCoverage(
                    chip.id, None, Coverage.NATIVE if ok else Coverage.NONE, meta.socs if ok else ()
                )
            )
            if not ok:
                issues.append(
                    KernelIssue(
                        ERROR,
                        "AG413",
                        f"kernel {kernel.name!r} is built for {', '.join(meta.socs)} ({meta.soc_source}), "
                        f"not for {chip.id} (soc {', '.join(chip.soc)}, family {chip.family})",
                        ("path",),
                        f"build the op package with soc_version {chip.soc[0]}",
                    )
                )
    declared = {t.lower() for t in kernel.targets}
    if declared and meta.socs and declared != {s.lower() for s in meta.socs}:
        issues.append(
            KernelIssue(
                WARNING,
                "AG409",
                f"kernel {kernel.name!r}: targets {list(kernel.targets)} disagree with its metadata "
                f"({', '.join(meta.socs)}, {meta.soc_source}); the metadata is what was built",
                ("targets",),
                f"write targets: [{', '.join(meta.socs)}]",
            )
        )
    if (
        meta.sha256_declared
        and meta.sha256_actual
        and meta.sha256_declared.lower() != meta.sha256_actual
    ):
        issues.append(
            KernelIssue(
                ERROR,
                "AG415",
                f"kernel {kernel.name!r}: {meta.meta} says sha256 {meta.sha256_declared}, "
                f"but {meta.binary.name} is {meta.sha256_actual}",
                ("path",),
                "the binary and its metadata come from different builds: take both from one build",
            )
        )
    return KernelCheck(
        kernel.name,
        kernel.kind,
        str(kernel.path),
        meta.error is None and bool(meta.socs),
        "ascend-op",
        meta.sha256_actual,
        meta.socs,
        (meta.kernel_name,) if meta.kernel_name else (),
        kernel.entry,
        None,
        tuple(cover),
        tuple(issues),
        None,
        meta,
    )


# ----------------------------------------------------------------------------- the manifest


@dataclass(frozen=True)
class KernelValidation:
    findings: tuple[Finding, ...]
    checks: tuple[tuple[str | None, KernelCheck], ...]  # (target id, check)
    superseded: frozenset[str]  # JSON paths whose declared-target findings the binary replaces


def target_chips(facts: Facts, vendor: str, names: Iterable[str]) -> list[Chip]:
    out = []
    for n in names:
        chip, _alias = resolve_chip(facts, n)
        if chip is not None and chip.vendor == vendor:
            out.append(chip)
    return out


def validate_kernels(manifest: Manifest, facts: Facts | None = None) -> KernelValidation:
    """Binary checks of every kernel whose file exists, as findings at the kernel's fields."""
    facts = facts or load_facts()
    doc = manifest.document
    findings: dict[tuple[str, str, str], Finding] = {}
    checks: list[tuple[str | None, KernelCheck]] = []
    superseded: set[str] = set()
    infos: dict[Path, KernelInfo | KernelFormatError] = {}
    for target in manifest.targets:
        vendor = target.accelerator.vendor
        if vendor == "none":
            continue
        chips = target_chips(facts, vendor, target.accelerator.chips)
        for k in target.kernels:
            if k.kind.startswith("cuda-") != (vendor == "nvidia"):
                continue  # compat's AG403 names a kernel under the wrong vendor
            if not is_file(k.path):
                continue  # compat's AG311 names a missing file
            info = None
            if k.kind != "ascend-op" and k.path.stat().st_size:
                cached = infos.get(k.path)
                if cached is None:
                    try:
                        cached = inspect_file(k.path, k.kind)
                    except KernelFormatError as exc:
                        cached = exc
                    infos[k.path] = cached
                if isinstance(cached, KernelFormatError):
                    check = _format_failure(k, cached)
                else:
                    info = cached
                    check = check_kernel(k, chips, info=info, stack=target.stack)
            else:
                check = check_kernel(k, chips, stack=target.stack)
            checks.append((target.id, check))
            if check.inspected:
                superseded.add(json_path_str((*k.json_path, "targets")))
            for issue in check.issues:
                where: JsonPath = (*k.json_path, *issue.field)
                severity, message = issue.severity, issue.message
                if issue.code in VECTOR_CODES and severity is ERROR:
                    severity = WARNING  # validate looks before the build: see the module doc
                    message += "; the probe would FAIL this test at the site"
                f = Finding(
                    severity,
                    issue.code,
                    _in_target(message, target.id),
                    doc.location(where),
                    json_path_str(where),
                    issue.hint,
                )
                findings.setdefault((f.code, f.json_path, issue.message), f)
    return KernelValidation(tuple(findings.values()), tuple(checks), frozenset(superseded))


def _in_target(message: str, target_id: str | None) -> str:
    return f"{message} (target {target_id!r})" if target_id else message


def _format_failure(kernel: Kernel, exc: KernelFormatError) -> KernelCheck:
    issue = KernelIssue(
        ERROR,
        "AG405",
        f"kernel {kernel.name!r}: {exc.message}",
        ("path",),
        exc.hint or "rebuild the kernel, or copy it again",
    )
    return KernelCheck(
        kernel.name,
        kernel.kind,
        str(kernel.path),
        False,
        None,
        None,
        (),
        (),
        kernel.entry,
        None,
        (),
        (issue,),
    )
