"""Runtime files and kernels: local paths to sha256, with pins checked."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from pathlib import Path

from packager.errors import PinMismatch, ResolveError
from packager.manifest.model import FileEntry, Kernel, Manifest
from packager.manifest.yamlsource import JsonPath
from packager.resolve.content import digest_files
from packager.resolve.lockfile import LockedFile, LockedKernel
from packager.resolve.statcache import StatCache
from packager.util.fs import lookup_error
from packager.util.text import quoted


def _written(manifest: Manifest, path: Path) -> str:
    """The path as it should appear in the lock: relative to the manifest when below it."""
    rel = os.path.relpath(path, manifest.base_dir)
    return (rel if not rel.startswith("..") else str(path)).replace(os.sep, "/")


def _must_be_file(manifest: Manifest, path: Path, what: str, where: JsonPath) -> None:
    loc = manifest.document.location(where)
    why = lookup_error(path)
    if why is not None:
        raise ResolveError(
            f"{what} {quoted(str(path), 200)} cannot be looked up: {why}",
            hint="fix the path (relative paths start at the manifest's folder)",
            location=loc,
        )
    if not path.exists():
        raise ResolveError(
            f"{what} {quoted(str(path), 200)} does not exist"
            + (" (a dangling symbolic link)" if path.is_symlink() else ""),
            hint="fix the path (relative paths start at the manifest's folder)",
            location=loc,
        )
    if not path.is_file():
        raise ResolveError(f"{what} {quoted(str(path), 200)} is not a regular file", location=loc)


def _pin(manifest: Manifest, what: str, got: str, want: str | None, where: JsonPath) -> None:
    if want is not None and got != want:
        raise PinMismatch(
            f"{what}: sha256 {got} does not match the pin {want}",
            hint="the file changed since it was approved; use the approved file, "
            "or update the pin if the change is intended",
            location=manifest.document.location(where),
        )


def install_dest(entry: FileEntry) -> str:
    """Where a runtime file goes under the bundle's install prefix (POSIX, relative)."""
    name = entry.source.name
    if entry.dest is None:
        return f"files/{name}"
    dest = entry.dest.lstrip("/")
    return posixpath.join(dest, name) if entry.dest.endswith("/") else dest


def resolve_files(
    manifest: Manifest,
    entries: tuple[FileEntry, ...],
    cache: StatCache,
    progress: Callable[[int], None] | None = None,
) -> tuple[LockedFile, ...]:
    for e in entries:
        _must_be_file(manifest, e.source, "file", (*e.json_path, "source"))
    digests = digest_files((e.source for e in entries), cache, progress)
    out = []
    for e in entries:
        d = digests[e.source]
        _pin(manifest, f"file {e.source}", d.sha256, e.sha256, (*e.json_path, "sha256"))
        out.append(LockedFile(_written(manifest, e.source), d.sha256, d.size, dest=install_dest(e)))
    return tuple(out)


def resolve_kernels(
    manifest: Manifest,
    kernels: tuple[Kernel, ...],
    cache: StatCache,
    progress: Callable[[int], None] | None = None,
) -> tuple[LockedKernel, ...]:
    needed: list[Path] = []
    for k in kernels:
        _must_be_file(manifest, k.path, f"kernel {k.name!r}", (*k.json_path, "path"))
        needed.append(k.path)
        if k.tests is not None:
            for group, files in (("inputs", k.tests.inputs), ("expected", k.tests.expected)):
                for i, f in enumerate(files):
                    where = (*k.json_path, "tests", group, i)
                    _must_be_file(manifest, f, f"test vector of kernel {k.name!r}", where)
                    needed.append(f)
    digests = digest_files(needed, cache, progress)
    out = []
    for k in kernels:
        d = digests[k.path]
        _pin(
            manifest, f"kernel {k.name!r} ({k.path})", d.sha256, k.sha256, (*k.json_path, "sha256")
        )
        tests: list[LockedFile] = []
        if k.tests is not None:
            for role, files in (("input", k.tests.inputs), ("expected", k.tests.expected)):
                for f in files:
                    t = digests[f]
                    tests.append(LockedFile(_written(manifest, f), t.sha256, t.size, role=role))
        out.append(
            LockedKernel(
                k.name,
                k.kind,
                LockedFile(_written(manifest, k.path), d.sha256, d.size, role="kernel"),
                tuple(tests),
            )
        )
    return tuple(out)
