"""The site's decisions as pure functions: what may be written, and whether an install may go on.

Nothing here touches a file: :func:`plan_install` turns a verified descriptor into the list of
folders and files an install writes (refusing any path that could escape or collide),
:func:`decide` compares a bundle with what a prefix holds (anti-rollback), and
:func:`compare_versions` orders semantic versions.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from packager.bundle import layout
from packager.bundle.descriptor import Descriptor
from packager.site.receipts import InstalledFile
from packager.site.safefs import CONTENT_DIR_MODE, CONTENT_FILE_MODE

_HEX = re.compile(r"^[0-9a-f]{64}\Z")
MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 4000
MAX_DEPTH = 64


# ----------------------------------------------------------------------------- names and paths


def component_problem(text: object, what: str) -> str | None:
    """Why ``text`` cannot be one folder or file name under the prefix (None: it can)."""
    if not isinstance(text, str) or not text:
        return f"{what} is empty or not text"
    if text in (".", ".."):
        return f"{what} {text!r} is . or .."
    if text.startswith("."):
        return f"{what} {text!r} starts with a dot (reserved for airgap's own files)"
    if "/" in text or "\\" in text:
        return f"{what} {text!r} holds a slash"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return f"{what} {text!r} holds a control character"
    if len(text.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES:
        return f"{what} is longer than {MAX_COMPONENT_BYTES} bytes"
    if text == layout.SITE_CURRENT:
        return f"{what} {text!r} is reserved"
    return None


def _path_problem(path: object) -> str | None:
    if not isinstance(path, str) or not path:
        return "an empty install path"
    if path.startswith("/"):
        return f"{path!r} is an absolute path"
    if "\\" in path or "\x00" in path:
        return f"{path!r} holds a backslash or NUL"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return f"{path!r} holds a control character"
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return f"{path!r} has an empty, . or .. segment"
    if parts[0] == layout.INSTALLED_META_DIR:
        return f"{path!r} is under {layout.INSTALLED_META_DIR}/, which airgap writes itself"
    if len(parts) > MAX_DEPTH or len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        return f"{path[:80]!r}... is too deep or too long"
    if any(len(p.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES for p in parts):
        return f"{path!r} has a name longer than {MAX_COMPONENT_BYTES} bytes"
    return None


def _fold(path: str) -> str:
    """What a case-insensitive or normalizing file system would make of ``path``."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", path).casefold())


def install_path_problems(paths: Iterable[str]) -> list[str]:
    """Every reason these install paths cannot be written side by side under one folder:
    escapes (absolute, ``..``), reserved names, a path that is both a file and a folder, and
    two paths that differ only by case or Unicode normalization (NFC/NFD)."""
    out: list[str] = []
    files: dict[str, str] = {}  # folded -> as written
    dirs: dict[str, str] = {}
    good: list[str] = []
    for p in paths:
        bad = _path_problem(p)
        if bad:
            out.append(bad)
            continue
        good.append(p)
    for p in good:
        key = _fold(p)
        if key in files:
            other = files[key]
            out.append(
                f"{p!r} appears twice"
                if other == p
                else f"{p!r} and {other!r} collide by case or Unicode normalization"
            )
            continue
        files[key] = p
        parts = p.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            dkey = _fold(d)
            if dkey in dirs and dirs[dkey] != d:
                out.append(f"folders {d!r} and {dirs[dkey]!r} collide by case or normalization")
            dirs.setdefault(dkey, d)
    for key, p in files.items():
        if key in dirs:
            out.append(f"{p!r} is a file and also the folder of {dirs[key]!r}/...")
    return out


class UnitChoice(ValueError):
    """A bundle name that does not say which installed bundle it means (see :func:`pick_unit`)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def pick_unit(name: str, target: str | None, units: Iterable[str]) -> str:
    """Which installed bundle (the name of its folders, layout.site_unit) ``name`` and an
    optional ``--target`` mean, among the ``units`` a prefix holds: ``NAME+TARGET`` as given;
    ``NAME`` with ``target``; ``NAME`` alone when it is installed for no target or one target
    only. Raises :class:`UnitChoice` when ``NAME`` is installed for several targets and none is
    named, or the target named is not installed (the message lists those that are)."""
    sep = layout.SITE_TARGET_SEPARATOR
    have = set(units)
    if target is not None:
        if sep in name:
            raise UnitChoice(f"{name!r} names a target already: drop --target {target}")
        return layout.site_unit(name, target)
    if sep in name or name in have:
        return name
    targets = sorted(u.split(sep, 1)[1] for u in have if u.startswith(name + sep))
    if len(targets) == 1:
        return layout.site_unit(name, targets[0])
    if targets:
        raise UnitChoice(
            f"{name} is installed for {len(targets)} targets ({', '.join(targets)}): say which one",
            hint=f"--target {targets[0]}, or {layout.site_unit(name, targets[0])}",
        )
    return name  # not installed: the caller says so


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class InstallModes:
    """The modes and owner of an installed version's files and folders: the default (files
    0444, executables 0555, folders 0555, the installer's owner), or what the bundle's signed
    ``install.modes`` declares for its server (the manifest's ``serve.install``)."""

    file: int = CONTENT_FILE_MODE
    dir: int = CONTENT_DIR_MODE
    uid: int | None = None
    gid: int | None = None
    executables: frozenset[str] = frozenset()

    def file_mode(self, path: str) -> int:
        """The mode of the file at ``path``: execute added where it reads, for executables."""
        if path in self.executables:
            return self.file | ((self.file & 0o444) >> 2)
        return self.file

    def linkable(self, path: str) -> bool:
        """Whether the installed file may be a hard link to the store's blob: only when it
        takes the store's own mode and owner (anything else would change the shared inode)."""
        return self.file_mode(path) == CONTENT_FILE_MODE and self.uid is None and self.gid is None

    @property
    def declared(self) -> bool:
        """Other than the default (the bundle declares install.modes)."""
        return (self.file, self.dir, self.uid, self.gid) != (
            CONTENT_FILE_MODE, CONTENT_DIR_MODE, None, None,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "file_mode": f"{self.file:04o}",
            "dir_mode": f"{self.dir:04o}",
            "uid": self.uid,
            "gid": self.gid,
        }

    @property
    def owner(self) -> tuple[int, int] | None:
        """(uid, gid) for ``fchown`` (-1 keeps one), or None to keep the installer's."""
        if self.uid is None and self.gid is None:
            return None
        return (-1 if self.uid is None else self.uid, -1 if self.gid is None else self.gid)


def install_modes(descriptor: Descriptor) -> InstallModes:
    """What the (verified) descriptor declares for its installed files."""
    inst = descriptor.install
    m = inst.modes
    if m is None:
        return InstallModes(executables=frozenset(inst.executables))
    return InstallModes(m.file_mode, m.dir_mode, m.uid, m.gid, frozenset(inst.executables))


def mode_problems(descriptor: Descriptor) -> list[str]:
    """Why the descriptor's declared layout cannot be installed: an executable or an empty
    folder that is no install path of the bundle, or modes that lock the owner out."""
    out: list[str] = []
    paths = {p for b in descriptor.blobs for p in b.paths}
    out += [
        f"install.executables names {p!r}, which no blob installs"
        for p in descriptor.install.executables
        if p not in paths
    ]
    m = descriptor.install.modes
    if m is not None and (m.file_mode & 0o400 == 0 or m.dir_mode & 0o500 != 0o500):
        out.append(
            f"install.modes {m.file_mode:04o}/{m.dir_mode:04o}: the owner could not read the "
            "files or enter the folders"
        )
    return out


@dataclass(frozen=True)
class PlannedFile:
    """One file of an installed version: where it goes and the store blob it is."""

    path: str  # relative to bundles/NAME/VERSION
    sha256: str  # hex; the blob in DIR/blobs/sha256/
    size: int


@dataclass(frozen=True)
class PlannedMeta:
    """One file of ``.airgap/`` copied from the bundle: the descriptor, signatures and airgap/."""

    source: str  # member name in the bundle
    path: str  # relative to bundles/NAME/VERSION
    sha256: str | None  # None: checked otherwise (bundle.json by its digest; signatures verified)
    size: int | None
    #: written only when verify kept its bytes (model.sig: when a trusted key signed it)
    optional: bool = False


@dataclass
class InstallPlan:
    name: str
    version: str
    target: str | None
    files: list[PlannedFile] = field(default_factory=list)
    meta: list[PlannedMeta] = field(default_factory=list)
    blobs: dict[str, int] = field(default_factory=dict)  # hex -> size, the blobs to store
    #: folders made even with nothing in them (the empty folders of runtime folder sources)
    empty_dirs: list[str] = field(default_factory=list)
    modes: InstallModes = field(default_factory=InstallModes)

    @property
    def unit(self) -> str:
        """The name of its folders under the prefix: NAME, or NAME+TARGET (layout.site_unit)."""
        return layout.site_unit(self.name, self.target)

    @property
    def dirs(self) -> list[str]:
        """Every folder the files need and every empty folder, parents first."""
        return folders_of(
            [f.path for f in self.files] + [m.path for m in self.meta], self.empty_dirs
        )

    @property
    def install_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def copy_bytes(self) -> int:
        """Bytes written beside the store: the files that cannot be hard links (an execute bit,
        declared modes or owner), at most, since a reflink copies nothing."""
        return sum(f.size for f in self.files if not self.modes.linkable(f.path))


def folders_of(files: Iterable[str], empty: Iterable[str] = ()) -> list[str]:
    """Every folder that ``files`` need, and the ``empty`` folders with their parents, parents
    first."""
    out: set[str] = set()
    for p in files:
        parts = p.split("/")[:-1]
        out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    for d in empty:
        parts = d.split("/")
        out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(out, key=lambda d: (d.count("/"), d))


class UnsafeBundle(ValueError):
    """A descriptor whose install paths cannot be written safely (refused, nothing written)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def plan_install(
    descriptor: Descriptor, signatures: Iterable[str] = (), model_signature: bool = False
) -> InstallPlan:
    """The files an install writes for a verified ``descriptor``.

    ``signatures``: the verified signature files (``<keyid>.sig`` and ``<keyid>.time.json``); the
    attestation and the other airgap/ files come from the descriptor's ``files`` (signed).
    ``model_signature``: the bundle holds airgap/model.sig, placed beside the weights (where
    OpenSSF model-signing verifiers look) when verify found it signed by a trusted key.
    Raises :class:`UnsafeBundle` listing every problem (never the first only).
    """
    b = descriptor.bundle
    problems = [
        p
        for p in (
            component_problem(b.name, "the bundle name"),
            component_problem(b.version, "the bundle version"),
        )
        if p
    ]
    plan = InstallPlan(b.name, b.version, b.target)
    for blob in descriptor.blobs:
        if not blob.paths:
            continue
        plan.blobs[blob.hex] = blob.size
        plan.files += [PlannedFile(p, blob.hex, blob.size) for p in blob.paths]
    beside_weights = _model_signature_meta(descriptor, model_signature)
    plan.empty_dirs = list(descriptor.install.dirs)
    problems += install_path_problems(
        [f.path for f in plan.files] + [m.path for m in beside_weights] + plan.empty_dirs
    )
    problems += mode_problems(descriptor)
    plan.modes = install_modes(descriptor)
    plan.meta += beside_weights
    plan.meta.append(
        PlannedMeta(layout.BUNDLE_JSON, layout.installed_meta_path(layout.BUNDLE_JSON), None, None)
    )
    for s in sorted(signatures):
        if not layout.SIGNATURE_MEMBER.fullmatch(s):
            problems.append(f"{s!r} is not a signature file name")
            continue
        plan.meta.append(PlannedMeta(s, layout.installed_meta_path(s), None, None))
    if descriptor.attestation is not None:  # checked by its payload; its bytes are verify's
        plan.meta.append(
            PlannedMeta(
                layout.ATTESTATION, layout.installed_meta_path(layout.ATTESTATION), None, None
            )
        )
    for f in descriptor.files:
        if f.path.startswith(layout.AIRGAP_DIR + "/"):
            bad = _path_problem(f.path)
            if bad:
                problems.append(bad)
                continue
            plan.meta.append(
                PlannedMeta(f.path, layout.installed_meta_path(f.path), f.sha256, f.size)
            )
    if problems:
        raise UnsafeBundle(problems)
    return plan


def _model_signature_meta(descriptor: Descriptor, present: bool) -> list[PlannedMeta]:
    """model.sig at ``model/model.sig``: written only if verify vouched for it (optional)."""
    if not present or descriptor.model_signature is None:
        return []
    return [PlannedMeta(layout.MODEL_SIGNATURE, layout.MODEL_SIGNATURE_INSTALL, None, None, True)]


def signed_files(
    descriptor: Descriptor, raw: bytes, recorded: Iterable[InstalledFile]
) -> dict[str, InstalledFile]:
    """What an installed version's folder must hold, by path, judged by its signed
    ``descriptor`` (whose bytes are ``raw``): bundle.json itself, every blob at each of its
    install paths, and the covered airgap/ files under ``.airgap/``. Signatures, their time
    records, the attestation and model.sig check themselves (with keys): for those the
    ``recorded`` files (the receipt's) are taken."""
    meta = layout.installed_meta_path(layout.BUNDLE_JSON)
    want = {meta: InstalledFile(meta, hashlib.sha256(raw).hexdigest(), len(raw), False)}
    for b in descriptor.blobs:
        for p in b.paths:
            want[p] = InstalledFile(p, b.hex, b.size, True)
    for covered in descriptor.files:
        if covered.path.startswith(layout.AIRGAP_DIR + "/"):
            p = layout.installed_meta_path(covered.path)
            want[p] = InstalledFile(p, covered.sha256, covered.size, False)
    for f in recorded:
        if f.path not in want and (
            f.path.startswith(layout.INSTALLED_META_DIR + "/")
            or (f.path == layout.MODEL_SIGNATURE_INSTALL and descriptor.model_signature is not None)
        ):
            want[f.path] = f
    return want


# ----------------------------------------------------------------------------- versions

_SEMVER = re.compile(
    r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?\Z"
)


def _semver_key(v: str) -> tuple[Any, ...]:
    m = _SEMVER.match(v.strip())
    if not m:  # not semantic: order by text, after every semantic version
        return (1, v)
    rel = tuple(int(x or 0) for x in m.group(1, 2, 3))
    pre = m.group(4)
    if pre is None:
        return (0, rel, 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (0, rel, 0, ids)


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 by semantic-version precedence (build metadata ignored; 1.0.0-rc.1 < 1.0.0)."""
    ka, kb = _semver_key(a), _semver_key(b)
    return (ka > kb) - (ka < kb)


def newest(versions: Iterable[str]) -> str | None:
    best: str | None = None
    for v in versions:
        if best is None or compare_versions(v, best) > 0:
            best = v
    return best


# ----------------------------------------------------------------------------- anti-rollback


class Action(Enum):
    INSTALL = "install"  # write a new version and make it current
    ACTIVATE = "activate"  # the same content is installed but not current: make it current
    NOOP = "noop"  # the same content is current already
    REFUSE = "refuse"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    hint: str | None = None


def decide(
    version: str,
    digest: str,
    installed: Mapping[str, str],
    current: str | None,
    *,
    allow_downgrade: bool = False,
) -> Decision:
    """What to do with a verified bundle ``version``/``digest`` given the installed versions of
    its name (``installed``: version -> bundle digest) and the ``current`` one."""
    for v, d in installed.items():
        if compare_versions(v, version) == 0 and (d != digest or v != version):
            return Decision(
                Action.REFUSE,
                f"version {v} is installed with other content ({d}); this bundle is {digest}",
                "a version is never re-used for other content: build it as a new version, "
                "or uninstall the installed one first (airgap uninstall NAME --version V)",
            )
    if current is not None and compare_versions(version, current) < 0 and not allow_downgrade:
        return Decision(
            Action.REFUSE,
            f"{version} is older than the installed {current} (anti-rollback)",
            "install a newer version; to go back on purpose, use airgap rollback NAME, "
            "or install with --allow-downgrade",
        )
    if installed.get(version) == digest:
        if current == version:
            return Decision(Action.NOOP, f"{version} ({digest}) is installed and current already")
        return Decision(
            Action.ACTIVATE, f"{version} ({digest}) is installed: making it current again"
        )
    return Decision(Action.INSTALL, f"installing {version}")
