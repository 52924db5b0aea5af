"""Model weights from a local folder or a Hugging Face hub cache snapshot, to per-file digests."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from packager.errors import PinMismatch, ResolveError
from packager.findings import Finding, Severity
from packager.manifest.model import HuggingFaceSource, Manifest
from packager.manifest.yamlsource import JsonPath, json_path_str
from packager.resolve import safetensors
from packager.resolve.content import Probe, Stated, digest_stated
from packager.resolve.lockfile import LockedFile, LockedModel, SafetensorsSummary
from packager.resolve.statcache import StatCache
from packager.signing.oms import SIGNATURE_FILE
from packager.util.compat import strict_zip
from packager.util.fs import is_dir, lookup_error
from packager.util.globs import glob_matches, selected
from packager.util.text import quoted

_COMMIT = re.compile(r"^[0-9a-f]{40}\Z")
_WEIGHT_EXT = (".safetensors", ".bin", ".gguf", ".onnx", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")


def file_runs_code(path: Path, rel: str) -> str | None:
    """How loading the model file ``rel`` runs code (packager.compat.load_code), from its
    first bytes (config.json: all of it); never executes or unpickles anything."""
    from packager.compat.load_code import HEAD_BYTES, MAX_CONFIG_BYTES, runs_code

    is_config = rel.rsplit("/", 1)[-1].lower() == "config.json"
    try:
        with open(path, "rb") as f:
            head = f.read(MAX_CONFIG_BYTES if is_config else HEAD_BYTES)
    except OSError as exc:
        raise ResolveError(f"{path}: cannot read: {exc.strerror}") from None
    return runs_code(rel, head, head if is_config else None)


def file_role(rel: str) -> str:
    """What a file in a model folder is: weight | tokenizer | config | doc | code | other."""
    name = rel.rsplit("/", 1)[-1].lower()
    if name.endswith(_WEIGHT_EXT) or name.endswith(".onnx_data"):
        return "weight"
    if name.startswith(("tokenizer", "vocab", "merges", "special_tokens")) or name.endswith(
        (".model", ".tiktoken")
    ):
        return "tokenizer"
    if name.endswith((".json", ".yaml", ".yml", ".txt")) and not name.startswith(
        ("readme", "license")
    ):
        return "config"
    if name.endswith((".md", ".rst")) or name.startswith(("readme", "license", "notice")):
        return "doc"
    if name.endswith((".py", ".sh")):
        return "code"
    return "other"


@dataclass(frozen=True)
class Snapshot:
    """A folder of model files, and what to record about where it came from."""

    root: Path  # the folder whose relative paths name the files
    boundary: Path  # symlinks must resolve inside this folder
    source: dict[str, str]


def hf_cache_root(src: HuggingFaceSource) -> Path:
    if src.cache is not None:
        return src.cache
    env = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if env:
        return Path(env)
    home = os.environ.get("HF_HOME")
    return (Path(home) if home else Path.home() / ".cache" / "huggingface") / "hub"


def hf_snapshot(src: HuggingFaceSource) -> Snapshot:
    """``models--ORG--NAME/snapshots/COMMIT``; a branch or tag is turned into a commit by refs/."""
    root = hf_cache_root(src)
    repo_dir = root / ("models--" + src.repo.replace("/", "--"))
    if not is_dir(repo_dir):
        raise ResolveError(
            f"{src.repo} is not in the Hugging Face cache {root} (no {repo_dir.name}/)",
            hint=f"on a connected host: huggingface-cli download {src.repo} "
            f"--revision {src.revision}, or set model.source.huggingface.cache",
        )
    if _COMMIT.match(src.revision):
        commit = src.revision
    else:
        ref = repo_dir / "refs" / src.revision
        try:
            commit = ref.read_text(encoding="utf-8").strip()
        except OSError:
            known = (
                sorted(p.name for p in (repo_dir / "refs").glob("*"))
                if (repo_dir / "refs").is_dir()
                else []
            )
            raise ResolveError(
                f"{src.repo}: revision {src.revision!r} is neither a commit nor a ref in "
                f"{repo_dir / 'refs'}",
                hint=f"known refs: {', '.join(known) or 'none'}; "
                "pin model.source.huggingface.revision to a 40-hex commit",
            ) from None
        if not _COMMIT.match(commit):
            raise ResolveError(f"{ref}: does not hold a commit hash ({commit[:60]!r})")
    snap = repo_dir / "snapshots" / commit
    if not snap.is_dir():
        have = sorted(p.name for p in (repo_dir / "snapshots").glob("*"))
        raise ResolveError(
            f"{src.repo}: snapshot {commit} is not in the cache",
            hint=f"snapshots present: {', '.join(have) or 'none'}",
        )
    return Snapshot(
        snap,
        repo_dir,
        {"huggingface": src.repo, "revision": src.revision, "commit": commit},
    )


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


#: a regular file of a model folder: its POSIX path relative to the folder, and what the stat
#: cache needs (its real path, symlinks resolved, and its stat); plain tuples: there may be
#: 50,000 of them
Listed = tuple[str, Stated]


def list_files(snap: Snapshot) -> list[str]:
    """Every regular file below ``snap.root`` as a POSIX relative path (see :func:`scan_folder`)."""
    return [rel for rel, _ in scan_folder(snap)]


def scan_folder(snap: Snapshot) -> list[Listed]:
    """Every regular file below ``snap.root``, each folder's entries sorted by name; each file
    stat'ed once.

    Symlinks are followed only when they resolve inside ``snap.boundary``; a dangling or escaping
    link, or a special file, is an error that names it.
    """
    boundary = os.path.realpath(snap.boundary)
    out: list[Listed] = []
    seen_dirs: set[str] = set()

    def walk(folder: str, prefix: str) -> None:
        real = os.path.realpath(folder)
        if real in seen_dirs:
            return
        seen_dirs.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise ResolveError(f"{folder}: cannot list: {exc.strerror}") from None
        inside = real.rstrip("/") + "/"  # the real folder, to name its files by (no join each)
        for e in entries:
            rel = prefix + e.name
            try:
                if e.is_symlink():
                    target = _link_target(e.path, boundary)
                    st = os.stat(e.path)
                elif e.is_dir(follow_symlinks=False):
                    walk(e.path, rel + "/")
                    continue
                else:
                    target = inside + e.name
                    st = e.stat(follow_symlinks=False)
            except OSError as exc:
                raise ResolveError(f"{e.path}: cannot stat: {exc.strerror}") from None
            if stat.S_ISDIR(st.st_mode):
                walk(e.path, rel + "/")
            elif stat.S_ISREG(st.st_mode):
                out.append((rel, (target, st)))
            else:
                raise ResolveError(
                    f"{e.path}: not a regular file", hint="remove it from the model folder"
                )

    walk(str(snap.root), "")
    return out


def _link_target(path: str, boundary: str) -> str:
    """Where the symbolic link ``path`` leads, when that is a file or folder inside
    ``boundary``."""
    target = os.path.realpath(path)
    if not os.path.exists(target):
        raise ResolveError(
            f"{path}: a dangling symbolic link (to {os.readlink(path)})",
            hint="an incomplete download? fetch the files again or remove the link",
        )
    if not _inside(target, boundary):
        raise ResolveError(
            f"{path}: a symbolic link that escapes the source folder (to {target})",
            hint="airgap copies only files inside the model folder; "
            "copy the file in instead of linking it",
        )
    return target


def code_probes() -> dict[str, Probe]:
    """The stat cache's question for a model file, by its name class: how loading it runs
    code (packager.compat.load_code)."""
    from packager.compat.load_code import head_bytes, runs_code_of

    def probe(kind: str) -> Probe:
        return Probe(kind, head_bytes(kind), lambda head: runs_code_of(kind, head))

    return {kind: probe(kind) for kind in ("python", "config", "pickle", "data")}


class ModelFiles(NamedTuple):
    """The model folder a lock reads, every file in it, and the files it selects (in the lock's
    order, each with its real path and stat)."""

    snap: Snapshot
    every: list[str]
    chosen: list[Listed]


def model_files(manifest: Manifest) -> ModelFiles:
    """The model files a lock of ``manifest`` lists, in its order; ResolveError naming what is
    wrong with the folder or the globs."""
    model = manifest.model
    if model.source.path is not None:
        src = model.source.path
        why = lookup_error(src)
        if why is not None:
            raise ResolveError(
                f"weights folder {quoted(str(src), 200)} cannot be looked up: {why}",
                hint="fix model.source.path (relative paths start at the manifest's folder)",
            )
        if not src.exists():
            raise ResolveError(
                f"weights folder {quoted(str(src), 200)} does not exist",
                hint="fix model.source.path (relative paths start at the manifest's folder)",
            )
        if not src.is_dir():
            raise ResolveError(
                f"{quoted(str(src), 200)} is not a folder", hint="model.source.path names a folder"
            )
        rel_src = os.path.relpath(src, manifest.base_dir)
        snap = Snapshot(src, src, {"path": rel_src.replace(os.sep, "/")})
    else:
        assert model.source.huggingface is not None
        snap = hf_snapshot(model.source.huggingface)
    listed = scan_folder(snap)
    if not listed:
        raise ResolveError(
            f"weights folder {snap.root} is empty", hint="download the model files into it"
        )
    every = [rel for rel, _ in listed]
    signature_files = _signature_files(snap.root, manifest)
    chosen = [
        f
        for f in listed
        if selected(f[0], model.include, model.exclude) and f[0] not in signature_files
    ]
    for pattern in model.include:
        if not any(glob_matches(pattern, r) for r in every):
            raise ResolveError(
                f"model.include glob {pattern!r} matches no file in {snap.root}",
                hint=f"files there: {', '.join(every[:8])}{', ...' if len(every) > 8 else ''}",
            )
    if not chosen:
        raise ResolveError(
            f"the include/exclude globs select no file in {snap.root}",
            hint="check model.include and model.exclude",
        )
    return ModelFiles(snap, every, chosen)


def resolve_weights(
    manifest: Manifest,
    cache: StatCache,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> tuple[LockedModel, list[Finding]]:
    model = manifest.model
    snap, every, chosen = model_files(manifest)
    if on_total:
        on_total(sum(st.st_size for _, (_, st) in chosen))
    from packager.compat.load_code import name_class

    probes = code_probes()
    digests, kinds = digest_stated(
        [f for _, f in chosen], cache, progress, [probes[name_class(r)] for r, _ in chosen]
    )
    files = tuple(
        LockedFile(rel, d.sha256, d.size, file_role(rel), runs_code=kind)
        for (rel, _), d, kind in strict_zip(chosen, digests, kinds)
    )
    _check_pins(manifest, files)
    findings: list[Finding] = _unverified_signature(manifest, every)
    findings += code_findings(manifest, files)
    signature = None
    if model.source.signature is not None:
        from packager.resolve.publisher import verify_publisher_signature

        signature = verify_publisher_signature(manifest, snap.root, every, files)
    summary = None
    if model.format == "safetensors":
        shards = [r for r, _ in chosen if r.endswith(".safetensors")]
        if not shards:
            raise ResolveError(
                f"model.format is safetensors but no .safetensors file is selected in {snap.root}",
                hint="check model.format and model.include",
            )
        summary = _summarize([safetensors.read_header(snap.root / r) for r in shards])
        findings.extend(_precision_findings(manifest, summary))
    locked = LockedModel(
        model.name, model.format, snap.source, files, summary, signature, model.allow_code
    )
    return locked, findings


def _signature_files(root: Path, manifest: Manifest) -> set[str]:
    """Files of the model folder that are signatures of it, never model files: ``model.sig``
    (the OpenSSF model signature's default name) and model.source.signature's file."""
    out = {SIGNATURE_FILE}
    sig = manifest.model.source.signature
    if sig is not None:
        from packager.resolve.publisher import relative_in_folder

        own = relative_in_folder(root, sig)
        if own is not None:
            out.add(own)
    return out


def _unverified_signature(manifest: Manifest, every: list[str]) -> list[Finding]:
    if SIGNATURE_FILE not in every or manifest.model.source.signature is not None:
        return []
    path = ("model", "source")
    return [
        Finding(
            Severity.WARNING,
            "AG330",
            f"the model folder holds {SIGNATURE_FILE}, an OpenSSF model signature: it is not "
            "locked as a model file, and nothing checks it",
            manifest.document.location(path),
            json_path_str(path),
            "name the publisher's key to verify it at lock: model.source.signature: "
            "{public_key: publisher.pub.pem} (or certificate_chain: [root.pem])",
        )
    ]


def scan_code(manifest: Manifest) -> list[Finding]:
    """`airgap validate`'s look at the model files before anything is locked: the selected files
    of a local or cached model that run code at load time (AG700-AG702), each hashed. Nothing
    when the folder cannot be read yet (`airgap lock` names that)."""
    from packager.util.hashing import sha256_files

    model = manifest.model
    try:
        if model.source.path is not None:
            if not is_dir(model.source.path):
                return []
            snap = Snapshot(model.source.path, model.source.path, {})
        else:
            assert model.source.huggingface is not None
            snap = hf_snapshot(model.source.huggingface)
        every = list_files(snap)
        chosen = [r for r in every if selected(r, model.include, model.exclude)]
        kinds = {r: file_runs_code(snap.root / r, r) for r in chosen}
        flagged = {r: snap.root / r for r, k in kinds.items() if k is not None}
        digests = sha256_files(flagged.values(), error=ResolveError)
    except ResolveError:
        return []
    files = tuple(
        LockedFile(r, digests[p].sha256, digests[p].size, runs_code=kinds[r])
        for r, p in flagged.items()
    )
    return code_findings(manifest, files)


def code_findings(manifest: Manifest, files: tuple[LockedFile, ...]) -> list[Finding]:
    """AG700-AG702 (packager.compat.load_code) for the locked model files."""
    from packager.compat.load_code import check_code_files, code_files

    out: list[Finding] = []

    def add(severity: Severity, code: str, message: str, path: JsonPath, hint: str | None) -> None:
        loc = manifest.document.location(path)
        out.append(Finding(severity, code, message, loc, json_path_str(path), hint))

    found = code_files(
        ((f.path, f.sha256, f.size, f.runs_code) for f in files), manifest.model.allow_code
    )
    allow_at: dict[str, JsonPath] = {
        sha: ("model", "allow_code", i) for i, sha in enumerate(manifest.model.allow_code)
    }
    check_code_files(add, found, allow_at, ("model",))
    return out


def _summarize(headers: list[safetensors.Header]) -> SafetensorsSummary:
    dtypes: dict[str, int] = {}
    for h in headers:
        for d, n in h.dtypes.items():
            dtypes[d] = dtypes.get(d, 0) + n
    return SafetensorsSummary(
        tensors=sum(h.tensors for h in headers),
        parameters=sum(dtypes.values()),
        dtypes=dict(sorted(dtypes.items())),
    )


def _check_pins(manifest: Manifest, files: tuple[LockedFile, ...]) -> None:
    by_path = {f.path: f for f in files}
    doc = manifest.document
    for rel, want in manifest.model.sha256.items():
        where = ("model", "sha256", rel)
        got = by_path.get(rel)
        if got is None:
            raise ResolveError(
                f"model.sha256 pins {rel!r}, which is not among the selected weight files",
                hint="pins name paths relative to the model source",
                location=doc.location(where),
            )
        if got.sha256 != want:
            raise PinMismatch(
                f"weights file {rel}: sha256 {got.sha256} does not match the pin {want}",
                hint="the file changed since it was approved; fetch the approved one, "
                "or update the pin if the change is intended",
                location=doc.location(where),
            )


def _precision_findings(manifest: Manifest, st: SafetensorsSummary) -> list[Finding]:
    declared = manifest.model.precision
    expected = safetensors.PRECISION_DTYPES.get(declared or "")
    found = safetensors.dominant_float_dtype(st.dtypes)
    if not declared or expected is None or found is None or found in expected:
        return []
    path = ("model", "precision")
    share = st.dtypes[found] / max(1, st.parameters)
    return [
        Finding(
            Severity.ERROR,
            "AG320",
            f"the weights are {found} ({share:.0%} of {st.parameters:,} parameters) but "
            f"model.precision says {declared}",
            manifest.document.location(path),
            json_path_str(path),
            "set model.precision to what the files hold, or convert the weights; "
            "the chip checks depend on it",
        )
    ]
