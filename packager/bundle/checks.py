"""Bundle verification as pure functions: descriptor + signatures + policy + observations -> verdict.

Nothing here reads a file or the clock: the I/O (scanning a tar, hashing blobs, reading parts)
is in ``packager.commands.verify``, which hands its observations to these functions. Every failure is
collected, never just the first, and each names what it is about.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from packager.bundle import layout
from packager.bundle.descriptor import Descriptor
from packager.bundle.parts import PartsIndex
from packager.signing import signature, signing_time
from packager.signing.errors import SignatureFormatError
from packager.signing.trust import Policy
from packager.util.compat import strict_zip
from packager.util.jsonio import DocumentError, parse_document
from packager.util.timefmt import format_datetime, parse_utc

_BLOB_NAME = re.compile(r"^blobs/sha256/([0-9a-f]{64})\Z")


@dataclass(frozen=True)
class Failure:
    check: str  # parts | signatures | expiry | layout | blobs | consistency | delta
    subject: str  # what it is about: a part, a keyid, a path, a digest
    message: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "subject": self.subject, "message": self.message}

    def __str__(self) -> str:
        return f"[{self.check}] {self.subject}: {self.message}"


@dataclass(frozen=True)
class Observed:
    """One entry of the bundle as found: its raw name, kind and size."""

    name: str
    kind: str  # file | dir | symlink | hardlink | other
    size: int


# ----------------------------------------------------------------------------- parts


@dataclass(frozen=True)
class PartSeen:
    name: str
    size: int | None  # None: missing
    sha256: str | None


def check_parts(index: PartsIndex, seen: list[PartSeen], others: list[PartSeen]) -> list[Failure]:
    """Each listed part present with its size and sha256; ``others``: part-like files not listed."""
    out: list[Failure] = []
    by_hash = {p.sha256: p.name for p in index.parts}
    for want, got in strict_zip(index.parts, seen):
        name = want.name
        if got.size is None:
            out.append(Failure("parts", name, "missing"))
        elif got.size != want.size:
            out.append(
                Failure(
                    "parts",
                    name,
                    f"{got.size} bytes, the index says {want.size} (truncated or padded copy?)",
                )
            )
        elif got.sha256 != want.sha256:
            other = by_hash.get(got.sha256 or "")
            out.append(
                Failure(
                    "parts",
                    name,
                    f"holds the content of {other} (parts renamed or reordered)"
                    if other
                    else "sha256 does not match the index (a damaged copy or a part of another bundle)",
                )
            )
    for o in others:
        out.append(
            Failure("parts", o.name, "a part file the index does not list (from another bundle?)")
        )
    return out


# ----------------------------------------------------------------------------- signatures


@dataclass(frozen=True)
class SignatureVerdict:
    valid: list[str]  # keyids: trusted, unrevoked, verifying
    failures: list[Failure]
    notes: list[str]  # signatures that do not count but are not failures (unknown keys)
    #: keyid -> when it signed, for the valid signatures that carry a signing-time record
    signed_at: dict[str, _dt.datetime] = field(default_factory=dict)


def check_signatures(
    descriptor: bytes, signature_files: Mapping[str, bytes], policy: Policy
) -> SignatureVerdict:
    """``signature_files``: member name -> content for every entry under bundle.json.sig/
    (``<keyid>.sig`` signatures and ``<keyid>.time.json`` signing-time records)."""
    valid: list[str] = []
    failures: list[Failure] = []
    notes: list[str] = []
    times: dict[str, bytes] = {}
    for name, content in sorted(signature_files.items()):
        m = layout.SIGNATURE_MEMBER.fullmatch(name)
        if m is None:
            failures.append(
                Failure(
                    "signatures",
                    name,
                    "not a signature file name (<keyid>.sig or <keyid>.time.json)",
                )
            )
            continue
        kid = m.group(1)
        if m.group(2) != "sig":
            times[kid] = content
            continue
        label = f"{policy.name_of(kid)} ({kid[:16]})"
        if kid in policy.revoked:
            reason = policy.revoked[kid]
            failures.append(
                Failure(
                    "signatures",
                    label,
                    "signed by a revoked key" + (f": {reason}" if reason else ""),
                )
            )
            continue
        key = policy.keys.get(kid)
        if key is None:
            notes.append(
                f"signature by {kid[:16]}..., a key the policy does not trust: not counted"
            )
            continue
        try:
            raw = signature.parse_signature_file(content, source=name)
        except SignatureFormatError as exc:
            failures.append(Failure("signatures", label, exc.message))
            continue
        if not signature.verify(key.public_key, descriptor, raw):
            failures.append(
                Failure(
                    "signatures",
                    label,
                    "does not verify over bundle.json (tampered bundle.json or signature)",
                )
            )
            continue
        if kid not in valid:
            valid.append(kid)
    if len(valid) < policy.threshold:
        have = ", ".join(policy.name_of(k) for k in valid) or "none"
        others = sorted(
            layout.SIGNATURE_MEMBER.fullmatch(n).group(1)  # type: ignore[union-attr]
            for n in signature_files
            if layout.SIGNATURE_MEMBER.fullmatch(n) and n.endswith(".sig")
        )
        signed = ", ".join(k[:16] for k in others if k not in valid)
        failures.append(
            Failure(
                "signatures",
                "threshold",
                f"{len(valid)} valid signature(s) from distinct trusted keys ({have}); the policy "
                f"needs {policy.threshold}"
                + (f"; the bundle is signed by {signed}, which do not count here" if signed else "")
                + ("" if others else "; the bundle carries no signature"),
            )
        )
    digest = "sha256:" + hashlib.sha256(descriptor).hexdigest()
    signed_at: dict[str, _dt.datetime] = {}
    for kid in valid:
        if kid not in times:
            continue
        try:
            signed_at[kid] = signing_time.read_record(
                times[kid],
                keyid=kid,
                public_key=policy.keys[kid].public_key,
                content_digest=digest,
                source=layout.signing_time_path(kid),
            )
        except SignatureFormatError as exc:
            failures.append(
                Failure("signatures", f"{policy.name_of(kid)} ({kid[:16]})", exc.message)
            )
    return SignatureVerdict(valid, failures, notes, signed_at)


def _time(text: str | None) -> _dt.datetime | None:
    return parse_utc(text) if text else None


#: how far a creation time may lie ahead of this host's clock (clocks differ) before it is refused
CLOCK_SKEW = _dt.timedelta(minutes=10)


def check_expiry(
    descriptor: Descriptor,
    policy: Policy,
    now: _dt.datetime,
    signed_at: Mapping[str, _dt.datetime] | None = None,
) -> list[Failure]:
    """Validity and the policy's max age, counted from when the bundle was signed: the newest
    signing-time record of a counted signature, else its creation time (signed in bundle.json).
    An unreadable time, or one in the future, fails; nothing is skipped."""
    b = descriptor.bundle
    out = []
    created = _time(b.created)
    if created is None:
        return [Failure("expiry", "bundle.created", f"not a time: {b.created!r}")]
    times = dict(signed_at or {})
    for kid, when in sorted(times.items()):
        if when - now > CLOCK_SKEW:
            out.append(
                Failure(
                    "expiry",
                    f"signature {kid[:16]}",
                    f"signed {format_datetime(when)}, in the future (this host's clock says "
                    f"{format_datetime(now)})",
                )
            )
    signed = max(times.values()) if times else created
    what = f"signed {format_datetime(signed)}" if times else f"created {b.created}"
    if not times and created - now > CLOCK_SKEW:
        out.append(
            Failure(
                "expiry",
                "bundle.created",
                f"{b.created} is in the future (this host's clock says {format_datetime(now)})",
            )
        )
    if b.valid_for_s is not None:
        expires: _dt.datetime | None = signed + _dt.timedelta(seconds=b.valid_for_s)
        expiry_text = format_datetime(expires) if expires else ""
    else:
        expires = _time(b.expires)
        expiry_text = str(b.expires)
        if b.expires and expires is None:
            out.append(Failure("expiry", "bundle.expires", f"not a time: {b.expires!r}"))
    if expires is not None and now > expires:
        out.append(Failure("expiry", "bundle", f"expired on {expiry_text} ({what})"))
    if policy.max_age is not None and now - signed > policy.max_age:
        out.append(
            Failure(
                "expiry", "bundle", f"{what}, older than the policy's max_age {policy.max_age_text}"
            )
        )
    return out


# ----------------------------------------------------------------------------- layout and blobs


def _bad_name(name: str) -> str | None:
    if name.startswith("/"):
        return "an absolute path"
    parts = name.split("/")
    if any(p in ("..",) for p in parts):
        return "a path with .. in it"
    if "\\" in name or "\x00" in name:
        return "a path with a backslash or NUL"
    return None


def expected_members(descriptor: Descriptor) -> dict[str, tuple[str, int | None]]:
    """What may be in the bundle: path -> (kind, size or None when any size is fine). A delta's
    left-out blobs are not (packager.bundle.delta)."""
    allowed: dict[str, tuple[str, int | None]] = {
        layout.BUNDLE_JSON: ("file", None),
        layout.ATTESTATION: ("file", None),
    }
    for f in descriptor.files:
        if descriptor.file_carried(f.path):
            allowed[f.path] = ("file", f.size)
    for b in descriptor.blobs:
        if descriptor.carried(b):
            allowed[b.member] = ("file", b.size)
    if (
        descriptor.model_signature is not None
    ):  # optional: checked by packager.bundle.model_signature
        allowed[layout.MODEL_SIGNATURE] = ("file", None)
    for name in list(allowed):
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            allowed["/".join(parts[:i])] = ("dir", None)
    allowed[layout.SIGNATURES_DIR] = ("dir", None)
    return allowed


#: files a bundle may lack: the attestation, and model.sig (only ECDSA keys make one)
_OPTIONAL = frozenset({layout.ATTESTATION, layout.MODEL_SIGNATURE})


def check_members(descriptor: Descriptor, observed: list[Observed]) -> list[Failure]:
    """No path outside the layout, no links or devices, nothing extra, nothing missing."""
    out: list[Failure] = []
    allowed = expected_members(descriptor)
    seen: set[str] = set()
    for o in observed:
        bad = _bad_name(o.name)
        name = o.name.removeprefix("./").rstrip("/")
        if bad:
            out.append(Failure("layout", o.name, f"{bad}: refused"))
            continue
        if o.kind not in ("file", "dir"):
            out.append(
                Failure("layout", name, f"a {o.kind}: only regular files and folders are allowed")
            )
            continue
        if name in seen:
            out.append(Failure("layout", name, "appears twice in the archive"))
            continue
        seen.add(name)
        if layout.SIGNATURE_MEMBER.fullmatch(name) and o.kind == "file":
            continue
        want = allowed.get(name)
        if want is None and _left_out(descriptor, name):
            out.append(Failure("layout", name, "carried, but delta.not_carried lists it"))
        elif want is None and not descriptor.file_carried(name):
            out.append(Failure("layout", name, "carried, but delta.not_carried_files lists it"))
        elif want is None:
            out.append(Failure("layout", name, "an extra file that bundle.json does not list"))
        elif want[0] != o.kind:
            out.append(Failure("layout", name, f"a {o.kind} where bundle.json has a {want[0]}"))
        elif want[1] is not None and o.size != want[1]:
            out.append(
                Failure(
                    "blobs" if _BLOB_NAME.match(name) else "layout",
                    name,
                    f"{o.size} bytes, bundle.json says {want[1]}",
                )
            )
    for name, (kind, _) in sorted(allowed.items()):
        if kind == "file" and name not in seen and name not in _OPTIONAL:
            out.append(Failure("blobs" if _BLOB_NAME.match(name) else "layout", name, "missing"))
    return out


def _left_out(descriptor: Descriptor, name: str) -> bool:
    m = _BLOB_NAME.match(name)
    blob = descriptor.blob("sha256:" + m.group(1)) if m else None
    return blob is not None and not descriptor.carried(blob)


def check_hashes(descriptor: Descriptor, hashes: Mapping[str, str]) -> list[Failure]:
    """``hashes``: path -> sha256 hex of what was read, for every listed blob and file found."""
    out = []
    for b in descriptor.blobs:
        got = hashes.get(b.member)
        if got is not None and got != b.hex:
            where = ", ".join(b.paths[:2])
            out.append(
                Failure(
                    "blobs",
                    b.member,
                    f"{b.role} blob{f' ({where})' if where else ''}: content is sha256:{got}, not its digest",
                )
            )
    for f in descriptor.files:
        got = hashes.get(f.path)
        if got is not None and got != f.sha256:
            out.append(
                Failure("layout", f.path, f"sha256 {got} does not match bundle.json ({f.sha256})")
            )
    return out


# ----------------------------------------------------------------------------- consistency


def _oci_refs(doc: object, *keys: str) -> list[dict[str, Any]]:
    """The descriptor objects under ``keys`` of an OCI document (``config``: one, the rest lists)."""
    if not isinstance(doc, dict):
        return []
    out: list[dict[str, Any]] = []
    for key in keys:
        value = doc.get(key)
        items = [value] if key == "config" else value if isinstance(value, list) else []
        out += [d for d in items if isinstance(d, dict)]
    return out


def check_consistency(
    descriptor: Descriptor, index_json: bytes | None, manifests: Mapping[str, bytes]
) -> list[Failure]:
    """index.json and the OCI manifests reference only blobs bundle.json lists, and agree with it.

    ``manifests``: digest -> bytes of every blob whose media type is an OCI/docker manifest or index.
    """
    out: list[Failure] = []
    listed = {b.digest: b for b in descriptor.blobs}
    if index_json is None:
        return [Failure("consistency", layout.INDEX_JSON, "missing")]
    try:
        index = parse_document(index_json)
    except DocumentError as exc:
        return [Failure("consistency", layout.INDEX_JSON, f"not an OCI index: {exc}")]
    refs = set()
    for d in _oci_refs(index, "manifests"):
        digest = d.get("digest")
        annotations = d.get("annotations")
        ref = annotations.get(layout.REF_NAME) if isinstance(annotations, dict) else None
        refs.add(ref if isinstance(ref, str) else digest)
        if not isinstance(digest, str) or digest not in listed:
            out.append(
                Failure(
                    "consistency",
                    str(ref if isinstance(ref, str) else digest),
                    f"index.json points at {digest!r}, which bundle.json does not list",
                )
            )
    for digest, raw in manifests.items():
        try:
            doc = parse_document(raw)
        except DocumentError:
            out.append(Failure("consistency", digest, "a manifest blob that is not JSON"))
            continue
        for c in _oci_refs(doc, "config", "layers", "manifests"):
            child = c.get("digest")
            blob = listed.get(child) if isinstance(child, str) else None
            if blob is None:
                out.append(
                    Failure(
                        "consistency",
                        digest,
                        f"references {child!r}, which bundle.json does not list",
                    )
                )
            elif c.get("size") != blob.size:
                out.append(
                    Failure("consistency", digest, f"gives {child} a size bundle.json does not")
                )
    for img in descriptor.images:
        if img.ref not in refs:
            out.append(
                Failure(
                    "consistency", img.ref, "an image bundle.json names but index.json does not"
                )
            )
    return out
