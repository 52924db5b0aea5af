"""Runtime files and kernels: local paths to sha256, with pins checked.

A ``runtime.files`` source may be a folder (an operator package, a config tree): it is carried
with its layout, each file hashed like any single file, its execute bits kept (installed with
execute where the file reads), its empty folders kept; a symbolic link or a special file inside
it is refused, naming it. A single file is executable when its ``mode`` says so (its own bits
are not read: locks made before stay valid).
"""

from __future__ import annotations

import os
import posixpath
import stat
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


def _must_exist(manifest: Manifest, path: Path, what: str, where: JsonPath) -> None:
    """``path`` can be looked up and exists (a file or a folder; which is decided after)."""
    if lookup_error(path) is None and path.exists() and path.is_dir():
        return
    _must_be_file(manifest, path, what, where)


def _pin(manifest: Manifest, what: str, got: str, want: str | None, where: JsonPath) -> None:
    if want is not None and got != want:
        raise PinMismatch(
            f"{what}: sha256 {got} does not match the pin {want}",
            hint="the file changed since it was approved; use the approved file, "
            "or update the pin if the change is intended",
            location=manifest.document.location(where),
        )


def install_dest(entry: FileEntry) -> str:
    """Where a runtime file (or folder) goes under the bundle's install prefix (POSIX,
    relative): ``files/NAME`` by default, ``DEST/NAME`` for a ``dest`` ending in ``/``, else
    ``dest`` itself."""
    name = entry.source.name
    if entry.dest is None:
        return f"files/{name}"
    dest = entry.dest.lstrip("/")
    return posixpath.join(dest, name) if entry.dest.endswith("/") else dest


def _executable(path: Path) -> bool:
    return bool(os.stat(path).st_mode & 0o111)


def walk_folder(manifest: Manifest, root: Path, where: JsonPath) -> tuple[list[str], list[str]]:
    """The regular files (POSIX paths relative to ``root``, sorted) and the empty folders of a
    folder source; a symbolic link or a special file anywhere in it is refused, naming it."""
    files: list[str] = []
    empty: list[str] = []
    loc = manifest.document.location(where)

    def walk(folder: Path, rel: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise ResolveError(
                f"folder {quoted(str(folder), 200)} cannot be listed: {exc.strerror}", location=loc
            ) from None
        if not entries and rel:
            empty.append(rel)
        for e in entries:
            sub = f"{rel}/{e.name}" if rel else e.name
            st = os.lstat(e.path)
            if stat.S_ISLNK(st.st_mode):
                raise ResolveError(
                    f"{quoted(e.path, 200)} in folder source {quoted(str(root), 200)} is a "
                    f"symbolic link (to {quoted(os.readlink(e.path), 120)}): refused",
                    hint="airgap carries files, never links (a link could point anywhere at "
                    "the site); copy the file it names into the folder, or remove the link",
                    location=loc,
                )
            if stat.S_ISDIR(st.st_mode):
                walk(Path(e.path), sub)
            elif stat.S_ISREG(st.st_mode):
                files.append(sub)
            else:
                raise ResolveError(
                    f"{quoted(e.path, 200)} in folder source {quoted(str(root), 200)} is not a "
                    "regular file or folder",
                    hint="remove it from the folder",
                    location=loc,
                )

    walk(root, "")
    return files, empty


def resolve_files(
    manifest: Manifest,
    entries: tuple[FileEntry, ...],
    cache: StatCache,
    progress: Callable[[int], None] | None = None,
) -> tuple[tuple[LockedFile, ...], tuple[str, ...]]:
    """The locked runtime files (one per file, folder sources expanded) and the install paths
    of the empty folders of folder sources."""
    sources: list[tuple[FileEntry, Path, str]] = []  # entry, file, install path
    dirs: list[str] = []
    for e in entries:
        where = (*e.json_path, "source")
        _must_exist(manifest, e.source, "file", where)
        dest = install_dest(e)
        if not e.source.is_dir():
            sources.append((e, e.source, dest))
            continue
        if e.source.is_symlink():
            raise ResolveError(
                f"folder source {quoted(str(e.source), 200)} is a symbolic link: refused",
                hint="name the folder itself",
                location=manifest.document.location(where),
            )
        for key, given, why in (
            ("sha256", e.sha256, "the lock records every file of the folder by its sha256"),
            ("mode", e.mode, "a folder's files keep their own execute bits"),
        ):
            if given is not None:
                raise ResolveError(
                    f"file {quoted(str(e.source), 200)} is a folder: a {key} names one file",
                    hint=f"remove {key}; {why}",
                    location=manifest.document.location((*e.json_path, key)),
                )
        files, empty = walk_folder(manifest, e.source, where)
        sources += [(e, e.source / rel, f"{dest}/{rel}") for rel in files]
        dirs += [f"{dest}/{rel}" for rel in empty]
        if not files and not empty:
            dirs.append(dest)
    digests = digest_files((src for _, src, _ in sources), cache, progress)
    out = []
    for e, src, dest in sources:
        d = digests[src]
        if src == e.source:  # a single file: executable when its manifest mode says so
            _pin(manifest, f"file {e.source}", d.sha256, e.sha256, (*e.json_path, "sha256"))
            executable = e.mode is not None and bool(int(e.mode, 8) & 0o111)
        else:  # a folder's file: its own execute bit
            executable = _executable(src)
        out.append(
            LockedFile(_written(manifest, src), d.sha256, d.size, dest=dest, executable=executable)
        )
    return tuple(out), tuple(dirs)


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
