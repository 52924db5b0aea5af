"""A published bundle from a registry into a layout folder, signatures first.

1. The tagged index and its files manifest (unverified: bounded and parsed strictly,
   :mod:`packager.bundle.published`), then ``airgap/bundle.json`` and its signature files, each
   checked against its layer digest; the signatures are checked against the policy
   (:func:`packager.bundle.checks.check_signatures`) **before anything else is fetched**.
2. Whether content is wanted at all (``wants_content``: install asks its version rules; a second
   install of an installed version fetches nothing more).
3. The other layout files, then every blob the verified bundle.json lists that the folder lacks:
   a blob the local store already holds is hard-linked from it, the rest streamed from the
   registry into a temporary name (``O_EXCL|O_NOFOLLOW``), hashed while written, capped at its
   signed size, fsynced, and renamed to ``blobs/sha256/<hex>`` only when its digest matches.

The folder is then a bundle layout like any other: install and verify take it through the same
:class:`packager.bundle.verifier.Verifier` as a tar. A run killed midway leaves only whole,
checked blobs under their names; the next run removes the temporary files and fetches the rest.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.bundle.checks import check_signatures
from packager.bundle.descriptor import Descriptor, parse_descriptor
from packager.bundle.errors import DescriptorError
from packager.bundle.published import (
    LayoutFile,
    PublishedFormatError,
    parse_bundle_index,
    parse_files_manifest,
)
from packager.bundle.store import BlobMismatch
from packager.errors import CheckFailed, InputError
from packager.oci.registry import OciLocation, RegistryClient, RegistryOptions
from packager.signing.trust import Policy
from packager.util.progress import Reporter

PULL_WORKERS = 4
TEMP_PREFIX = ".part-"
_INDEX_ACCEPT = layout.OCI_INDEX
#: blobs that a registry holds as manifests (pushed and fetched by digest as manifests)
MANIFEST_TYPES = frozenset(layout.IMAGE_MANIFEST_TYPES + layout.IMAGE_INDEX_TYPES)
_MANIFEST_ACCEPT = layout.OCI_MANIFEST


class PullRefused(CheckFailed):
    """The published bundle's signatures do not hold: nothing but them was fetched."""


@dataclass
class PullResult:
    source: str
    folder: Path
    index_digest: str
    digest: str  # sha256 of bundle.json
    descriptor: Descriptor
    signers: list[tuple[str, str]]
    complete: bool = False  # every file and blob is in the folder
    files_fetched: int = 0
    blobs_fetched: int = 0
    blobs_linked: int = 0  # from the local store
    blobs_kept: int = 0  # already in the folder (an earlier, interrupted run)
    bytes_fetched: int = 0  # blob bytes from the registry
    meta_bytes: int = 0  # index, manifests and layout files from the registry
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "index_digest": self.index_digest,
            "digest": self.digest,
            "complete": self.complete,
            "files_fetched": self.files_fetched,
            "blobs_fetched": self.blobs_fetched,
            "blobs_linked": self.blobs_linked,
            "blobs_kept": self.blobs_kept,
            "bytes_fetched": self.bytes_fetched,
            "meta_bytes": self.meta_bytes,
            "seconds": round(self.seconds, 3),
        }


def _verify_bytes(data: bytes, want: LayoutFile, where: str) -> bytes:
    if len(data) != want.size or "sha256:" + hashlib.sha256(data).hexdigest() != want.digest:
        raise BlobMismatch(
            f"{where}: {want.path} does not match its layer {want.digest}",
            hint="the registry served other content than it lists; publish the bundle again",
        )
    return data


def _write_atomic(folder: Path, rel: str, data: bytes) -> None:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{TEMP_PREFIX}{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _clean_temporaries(folder: Path) -> None:
    for dirpath, _dirs, names in os.walk(folder):
        for n in names:
            if n.startswith(TEMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(dirpath, n))


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One pull into a folder at a time (a second waits)."""
    fd = os.open(
        str(folder) + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
    )
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Puller:
    """One pull of ``loc`` (see the module); use :meth:`signed`, then :meth:`content`."""

    def __init__(
        self,
        loc: OciLocation,
        policy: Policy | None,
        options: RegistryOptions,
        *,
        reporter: Reporter | None = None,
    ) -> None:
        """``policy`` None: signatures are not checked (``inspect``: read, not verified)."""
        if loc.reference is None:
            raise InputError(
                f"{loc}: give the tag or digest to take (oci://HOST/REPO:TAG)",
                hint="`skopeo list-tags docker://HOST/REPO` lists the published tags",
            )
        self.loc = loc
        self.policy = policy
        self.rep = reporter or Reporter()
        self.client = RegistryClient(loc.host, loc.repository, options)
        self.files: list[LayoutFile] = []
        self.t0 = time.perf_counter()

    def __enter__(self) -> Puller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def _fetch_file(self, f: LayoutFile) -> bytes:
        data = b"".join(self.client.iter_blob(f.digest, f.size))
        return _verify_bytes(data, f, str(self.loc))

    def signed(self) -> PullResult:
        """Step 1: the index, the files manifest, bundle.json and its signatures, verified."""
        where = str(self.loc)
        self.rep.phase(f"reading {where}")
        self.client.check()
        ref = self.loc.reference
        assert ref is not None
        raw_index, _ = self.client.get_manifest(ref, _INDEX_ACCEPT)
        index_digest = "sha256:" + hashlib.sha256(raw_index).hexdigest()
        if self.loc.digest is not None and index_digest != self.loc.digest:
            raise BlobMismatch(f"{where}: the registry served {index_digest}")
        try:
            published = parse_bundle_index(raw_index, where)
            raw_files, _ = self.client.get_manifest(published.files_digest, _MANIFEST_ACCEPT)
            if "sha256:" + hashlib.sha256(raw_files).hexdigest() != published.files_digest:
                raise BlobMismatch(f"{where}: the files manifest is not {published.files_digest}")
            self.files = parse_files_manifest(raw_files, where)
        except PublishedFormatError as exc:
            raise PullRefused(exc.message, hint=exc.hint) from None
        by_path = {f.path: f for f in self.files}
        raw = self._fetch_file(by_path[layout.BUNDLE_JSON])
        sigs = {
            f.path: self._fetch_file(f)
            for f in self.files
            if layout.SIGNATURE_MEMBER.fullmatch(f.path) and f.size <= 4096
        }
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        signers: list[tuple[str, str]] = []
        if self.policy is not None:
            verdict = check_signatures(raw, sigs, self.policy)
            if verdict.failures:
                lines = "\n  ".join(str(f) for f in verdict.failures[:12])
                raise PullRefused(
                    f"{where}: bundle {digest} is not signed as the policy requires; nothing "
                    f"else was fetched:\n  {lines}",
                    hint="check --trust/--key, or publish a bundle signed by a trusted key",
                )
            signers = [(k, self.policy.name_of(k)) for k in verdict.valid]
        try:
            doc = parse_descriptor(raw)
        except DescriptorError as exc:
            raise PullRefused(f"{where}: {exc.message}", hint=exc.hint) from None
        self._signed = (raw, sigs)
        return PullResult(
            where, Path(), index_digest, digest, doc, signers,
            meta_bytes=len(raw_index) + len(raw_files) + len(raw) + sum(map(len, sigs.values())),
        )  # fmt: skip

    def content(
        self,
        result: PullResult,
        folder: Path,
        *,
        store: Path | None = None,
        files: bool = True,
        blobs: bool = True,
    ) -> PullResult:
        """Step 3: write the layout into ``folder`` (created): the descriptor, its signatures
        and ``oci-layout``, the other layout files unless ``files`` is False, every blob unless
        ``blobs`` is False."""
        folder.mkdir(parents=True, exist_ok=True)
        if folder.is_symlink() or not folder.is_dir():
            raise InputError(f"{folder}: not a folder airgap made")
        result.folder = folder
        with _locked(folder):
            _clean_temporaries(folder)
            raw, sigs = self._signed
            _write_atomic(folder, layout.BUNDLE_JSON, raw)
            for path, data in sigs.items():
                _write_atomic(folder, path, data)
            rest = _wanted_files(self.files, result.descriptor, sigs, str(self.loc))
            if not (files or blobs):
                rest = [f for f in rest if f.path == layout.OCI_LAYOUT]
            for f in rest:
                data = self._fetch_file(f)
                _write_atomic(folder, f.path, data)
                result.files_fetched += 1
                result.meta_bytes += len(data)
            if blobs:
                self._blobs(result, folder, store)
                result.complete = True
        result.seconds = time.perf_counter() - self.t0
        return result

    def _blobs(self, result: PullResult, folder: Path, store: Path | None) -> None:
        doc = result.descriptor
        wanted = {x.hex: x.size for x in doc.blobs}
        manifests = {x.hex: x.media_type for x in doc.blobs if x.media_type in MANIFEST_TYPES}
        bdir = folder / layout.BLOBS_DIR
        bdir.mkdir(parents=True, exist_ok=True)
        todo: dict[str, int] = {}
        for hexd, size in wanted.items():
            have = _size_of(bdir / hexd)
            if have == size:
                result.blobs_kept += 1
                continue
            if have is not None:
                os.unlink(bdir / hexd)
            if (
                store is not None
                and _size_of(store / hexd) == size
                and _link(store / hexd, bdir / hexd)
            ):
                result.blobs_linked += 1
                continue
            todo[hexd] = size
        self.rep.phase(f"fetching from {self.loc.host}", sum(todo.values()))

        def one(item: tuple[str, int]) -> int:
            hexd, size = item
            if hexd in manifests:  # a registry serves manifests as manifests
                return _fetch_manifest(self.client, bdir, hexd, size, manifests[hexd])
            return _fetch_blob(self.client, bdir, hexd, size, self.rep.advance)

        with ThreadPoolExecutor(PULL_WORKERS, thread_name_prefix="pull") as pool:
            for got in pool.map(one, sorted(todo.items(), key=lambda kv: -kv[1])):
                result.blobs_fetched += 1
                result.bytes_fetched += got


#: layout files bundle.json does not list but verify checks by their own signatures
_SELF_SIGNED = (layout.ATTESTATION, layout.MODEL_SIGNATURE)


def _wanted_files(
    files: list[LayoutFile], doc: Descriptor, fetched: dict[str, bytes], where: str
) -> list[LayoutFile]:
    """The layout files still to fetch, now that bundle.json is verified: those it lists (at
    the size it signs: another size is refused before a byte is read), the attestation and the
    model signature, and signature time records; anything else the files manifest names is not
    part of the bundle and is not fetched."""
    listed = {f.path: f.size for f in doc.files}
    out = []
    for f in files:
        if f.path == layout.BUNDLE_JSON or f.path in fetched:
            continue
        if f.path in listed:
            if f.size != listed[f.path]:
                raise PullRefused(
                    f"{where}: {f.path} is published as {f.size} bytes, bundle.json signs "
                    f"{listed[f.path]}",
                    hint="the published copy is not the signed bundle: publish it again",
                )
            out.append(f)
        elif f.path in _SELF_SIGNED or layout.SIGNATURE_MEMBER.fullmatch(f.path):
            out.append(f)
    return out


def _size_of(path: Path) -> int | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    import stat

    return st.st_size if stat.S_ISREG(st.st_mode) else -1


def _link(src: Path, dst: Path) -> bool:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            return False
        raise
    return True


def _fetch_blob(
    client: RegistryClient, bdir: Path, hexd: str, size: int, progress: Callable[[int], None]
) -> int:
    digest = "sha256:" + hexd
    tmp = bdir / f"{TEMP_PREFIX}{hexd[:16]}-{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    h = hashlib.sha256()
    got = 0
    try:
        try:
            for chunk in client.iter_blob(digest, size):
                h.update(chunk)
                view = memoryview(chunk)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                got += len(chunk)
                progress(len(chunk))
            os.fsync(fd)
        finally:
            os.close(fd)
        if got != size or h.hexdigest() != hexd:
            raise BlobMismatch(
                f"registry {client.host}: blob {digest} came as {got} bytes hashing to "
                f"sha256:{h.hexdigest()}, not its signed {size} bytes",
                hint="the registry's storage is damaged: publish the bundle again",
            )
        os.replace(tmp, bdir / hexd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return got


def _fetch_manifest(
    client: RegistryClient, bdir: Path, hexd: str, size: int, media_type: str
) -> int:
    raw, _ = client.get_manifest("sha256:" + hexd, media_type)
    if len(raw) != size or hashlib.sha256(raw).hexdigest() != hexd:
        raise BlobMismatch(
            f"registry {client.host}: manifest sha256:{hexd} came as {len(raw)} bytes hashing to "
            f"sha256:{hashlib.sha256(raw).hexdigest()}, not its signed {size} bytes",
            hint="the registry rewrote or lost the manifest: publish the bundle again",
        )
    _write_atomic(bdir.parent.parent, f"{layout.BLOBS_DIR}/{hexd}", raw)
    return len(raw)


def remove_stale(top: Path) -> list[str]:
    """Remove the pull folders under ``top`` that no pull holds (left by a killed install that
    was not run again); a sentence for each."""
    notes: list[str] = []
    if top.is_symlink() or not top.is_dir():
        return notes
    for folder in sorted(p for p in top.iterdir() if not p.name.endswith(".lock")):
        lock = Path(str(folder) + ".lock")
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a pull runs there now
            os.close(fd)
            continue
        try:
            size = sum(
                f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink()
            )
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)
            else:
                os.unlink(folder)
            os.unlink(lock)
        finally:
            os.close(fd)
        notes.append(f"removed an interrupted pull ({folder.name[:12]}, {size} bytes)")
    return notes


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(str(folder) + ".lock")


def pull_bundle(
    loc: OciLocation,
    folder: Path,
    policy: Policy | None,
    options: RegistryOptions,
    *,
    store: Path | None = None,
    blobs: bool = True,
    wants_content: Callable[[PullResult], bool] | None = None,
    reporter: Reporter | None = None,
) -> PullResult:
    """Pull ``loc`` into ``folder`` (see the module); ``wants_content`` (after the signatures
    held) False: only the descriptor, its signatures and ``oci-layout`` are written."""
    with Puller(loc, policy, options, reporter=reporter) as p:
        result = p.signed()
        want = wants_content(result) if wants_content is not None else True
        return p.content(result, folder, store=store, files=want, blobs=want and blobs)
