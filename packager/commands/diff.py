"""`airgap diff OLD NEW`: what changed between two bundle versions (packager.bundle.diff).

Each side is a bundle (a tar, a parts index or any part, a layout folder) or, with ``--prefix
DIR``, an installed version ``NAME@VERSION``. What is read: ``bundle.json``, parsed strictly into
a typed descriptor, and each image's manifest (bounded, kept only when its sha256 is its digest)
for the layers; a site's store keeps no image manifests, so an installed side's image layers are
reported as unknown. Blobs are not hashed: that is `airgap verify`'s work.

Signatures: without ``--trust``/``--key`` nothing is checked and the report says "unverified" for
every side. With them, each bundle's signatures over ``bundle.json`` are checked against the
policy (the cheap first half of verify: parts, archive, signatures, validity), and an installed
version's kept signatures likewise; a side that fails stops the diff (exit 1) naming why. An
installed version's ``bundle.json`` must also be the one its receipt recorded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.bundle import layout
from packager.bundle.descriptor import Descriptor, content_bytes, parse_descriptor
from packager.bundle.diff import DescriptorDiff, diff_descriptors
from packager.bundle.errors import DescriptorError
from packager.errors import CheckFailed, InputError
from packager.signing.trust import Policy
from packager.util.jsonio import DocumentError, parse_document

MAX_IMAGE_MANIFEST_BYTES = 4 * 1024 * 1024
_INSTALLED = re.compile(r"([^@/\\]+)@([^@/\\]+)")
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Side:
    """One side of a diff as it was read."""

    label: str  # the path given, or NAME@VERSION under PREFIX
    kind: str  # bundle | installed
    digest: str  # content digest: sha256 of bundle.json (a delta's without its delta record)
    descriptor: Descriptor
    verified: bool  # signatures checked against the policy given
    signers: tuple[str, ...]  # keyids of the valid signatures (when verified)
    layers: Mapping[str, tuple[str, ...]]  # image manifest digest -> its layer digests

    def to_json(self) -> dict[str, Any]:
        d = self.descriptor
        return {
            "source": self.label,
            "kind": self.kind,
            "name": d.name,
            "version": d.version,
            "target": d.bundle.target,
            "created": d.bundle.created,
            "digest": self.digest,
            "verified": self.verified,
            "signers": list(self.signers),
        }


@dataclass(frozen=True)
class DiffReport:
    old: Side
    new: Side
    diff: DescriptorDiff

    @property
    def verified(self) -> bool:
        return self.old.verified and self.new.verified

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "verified": self.verified,
            "old": self.old.to_json(),
            "new": self.new.to_json(),
            **self.diff.to_json(),
        }


# ----------------------------------------------------------------------------- reading


def layer_digests(raw: bytes, digest: str) -> tuple[str, ...] | None:
    """The layer digests of an image manifest's bytes, or None when they are not that digest's
    or not a manifest with well-formed layers (an index has none: None too)."""
    if "sha256:" + hashlib.sha256(raw).hexdigest() != digest:
        return None
    try:
        doc = parse_document(raw)
    except DocumentError:
        return None
    layers = doc.get("layers") if isinstance(doc, dict) else None
    if not isinstance(layers, list):
        return None
    out = []
    for x in layers:
        d = x.get("digest") if isinstance(x, dict) else None
        if not isinstance(d, str) or not _SHA256.fullmatch(d):
            return None
        out.append(d)
    return tuple(out)


def _image_layers(descriptor: Descriptor, read: Any) -> dict[str, tuple[str, ...]]:
    """``read(blob) -> bytes | None`` for each image manifest blob the descriptor lists."""
    out: dict[str, tuple[str, ...]] = {}
    for img in descriptor.images:
        if img.manifest_digest is None:
            continue
        blob = descriptor.blob(img.manifest_digest)
        if blob is None or blob.size > MAX_IMAGE_MANIFEST_BYTES:
            continue
        raw = read(blob)
        layers = layer_digests(raw, blob.digest) if raw is not None else None
        if layers is not None:
            out[img.manifest_digest] = layers
    return out


def _failed(label: str, failures: Sequence[Any]) -> CheckFailed:
    return CheckFailed(
        f"{label} is not verified:\n  " + "\n  ".join(str(f) for f in failures),
        hint="diff reads unverified bundles only without --trust/--key (and says so)",
    )


def read_bundle_side(path: Path, policy: Policy | None, target: str | None = None) -> Side:
    """``target``: which target of a combined bundle (a single-target bundle is read as it is,
    whatever ``target`` says: the other side may be the combined one)."""
    from packager.bundle.combined import open_target, targets_of
    from packager.bundle.reader import Bundle

    def side(b: Bundle, raw: bytes, verified: bool, signers: tuple[str, ...]) -> Side:
        try:
            doc = parse_descriptor(raw)
            # a delta's content digest is its version's: bundle.json without the delta record
            digest = "sha256:" + hashlib.sha256(content_bytes(raw)).hexdigest()
        except DescriptorError as exc:
            raise CheckFailed(f"{path}: {exc.message}", hint=exc.hint) from None
        members = b.members()

        def read(blob: Any) -> bytes | None:
            m = members.get(blob.member)
            if m is None or m.kind != "file" or m.size != blob.size:
                return None
            return b.read(blob.member, MAX_IMAGE_MANIFEST_BYTES)

        return Side(str(path), "bundle", digest, doc, verified, signers, _image_layers(doc, read))

    if policy is None:
        with open_target(path, target, strict=False) as b:
            return side(b, b.descriptor_bytes(), False, ())
    from packager.bundle.verifier import Verifier

    def choose(b: Bundle) -> str | None:
        return target if targets_of(b.members()) else None

    with Verifier(path, policy, hash_early=False, choose_target=choose) as v:
        if not v.preflight() or v.bundle is None:
            raise _failed(str(path), v.report.failures)
        raw = v.report.verified[layout.BUNDLE_JSON]
        return side(v.bundle, raw, True, tuple(k for k, _ in v.report.signers))


def read_installed_side(
    prefix_path: Path, name: str, version: str, policy: Policy | None, target: str | None = None
) -> Side:
    from packager.bundle.checks import check_signatures
    from packager.commands.installed_audit import kept_signatures
    from packager.site.prefix import Prefix
    from packager.site.rules import UnitChoice, component_problem, pick_unit
    from packager.site.safefs import SiteError

    for value, what in ((name, "the bundle name"), (version, "the version")):
        bad = component_problem(value, what)
        if bad:
            raise InputError(bad)
    with Prefix.open(prefix_path.resolve(), create=False) as prefix:
        sep = layout.SITE_TARGET_SEPARATOR
        try:  # NAME, or its one installed target (NAME+TARGET: then --target is the other side's)
            name = pick_unit(name, None if sep in name else target, prefix.names())
        except UnitChoice as exc:
            raise InputError(
                exc.message, hint=f"name one: {name}{sep}TARGET@{version}, or add --target TARGET"
            ) from None
        label = f"{name}@{version}"
        receipts = prefix.installed(name)
        receipt = receipts.get(version)
        if receipt is None:
            have = ", ".join(sorted(receipts)) or "none"
            raise InputError(
                f"{label} is not installed under {prefix_path} (installed versions: {have})",
                hint=f"`airgap list --prefix {prefix_path}` shows what is installed",
            )
        meta = f"{layout.SITE_BUNDLES_DIR}/{name}/{version}/{layout.INSTALLED_META_DIR}"
        try:
            with prefix.root.walk(meta) as d:
                raw = d.read_small("bundle.json", layout.MAX_BUNDLE_JSON_BYTES)
                sigs = kept_signatures(d) if policy is not None else {}
        except FileNotFoundError:
            raw = None
        if raw is None:
            raise SiteError(f"{label}: {meta}/bundle.json is missing")
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if digest != receipt.digest:
            raise CheckFailed(
                f"{label}: {meta}/bundle.json is not the one that was installed ({digest}, "
                f"the receipt says {receipt.digest})",
                hint=f"`airgap audit --site {prefix_path}` shows what changed",
            )
        signers: tuple[str, ...] = ()
        if policy is not None:
            verdict = check_signatures(raw, sigs, policy)
            if verdict.failures:
                raise _failed(f"{label} under {prefix_path}", verdict.failures)
            signers = tuple(verdict.valid)
        try:
            doc = parse_descriptor(raw)
        except DescriptorError as exc:
            raise CheckFailed(f"{label}: {exc.message}", hint=exc.hint) from None
        store = prefix.sub(layout.SITE_BLOBS_DIR)

        def read(blob: Any) -> bytes | None:
            if store is None:
                return None
            try:
                return store.read_small(blob.hex, MAX_IMAGE_MANIFEST_BYTES)
            except (FileNotFoundError, SiteError):
                return None

        try:
            layers = _image_layers(doc, read)
        finally:
            if store is not None:
                store.close()
    return Side(
        f"{label} under {prefix_path}",
        "installed",
        digest,
        doc,
        policy is not None,
        signers,
        layers,
    )


def read_side(
    text: str, prefix: Path | None, policy: Policy | None, target: str | None = None
) -> Side:
    """A bundle path, or ``NAME@VERSION`` of ``prefix`` (a path that exists is a bundle);
    ``target`` picks a combined bundle's target, or an installed name's target."""
    path = Path(text)
    m = _INSTALLED.fullmatch(text)
    if prefix is not None and m is not None and not path.exists():
        return read_installed_side(prefix, m.group(1), m.group(2), policy, target)
    if m is not None and not path.exists():
        raise InputError(
            f"{text!r} is no file or folder; an installed version needs --prefix DIR",
            hint=f"airgap diff --prefix /opt/airgap {text} NEW",
        )
    return read_bundle_side(path, policy, target)


def diff(
    old: str, new: str, *, prefix: Path | None, policy: Policy | None, target: str | None = None
) -> DiffReport:
    a = read_side(old, prefix, policy, target)
    b = read_side(new, prefix, policy, target)
    if target is not None and target not in (
        a.descriptor.bundle.target,
        b.descriptor.bundle.target,
    ):
        raise InputError(
            f"--target {target}: neither side is target {target!r} (old: "
            f"{_target_of(a)}, new: {_target_of(b)}); it picks a combined bundle's target, or "
            "an installed name's",
            hint="leave out --target when both sides are single-target bundles",
        )
    return DiffReport(
        a,
        b,
        diff_descriptors(
            a.descriptor,
            b.descriptor,
            old_layers=a.layers,
            new_layers=b.layers,
            same_content=a.digest == b.digest,
        ),
    )


def _target_of(side: Side) -> str:
    t = side.descriptor.bundle.target
    return repr(t) if t else "a single-target bundle"
