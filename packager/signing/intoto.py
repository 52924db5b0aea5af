"""The build attestation: an in-toto Statement v1 with a SLSA provenance v1 predicate.

- Statement: https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md
- Predicate: https://slsa.dev/spec/v1.0/provenance

Subjects are the bundle's blobs, one per distinct digest, named by their path in the OCI
layout, ``blobs/sha256/<hex>``: unique within the bundle (blobs are stored once) and the path a
verifier finds the bytes at, whichever roles the blob plays (a weight file may be installed under
two names; it is one blob). Subjects and dependencies are sorted, and every time comes from the
caller, so a rebuild from one lock with one SOURCE_DATE_EPOCH gives the same statement.

The payload signed in the DSSE envelope is :func:`canonical_json` of the statement.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from packager.signing.dsse import PAYLOAD_TYPE_INTOTO, SignerLike, envelope
from packager.signing.errors import StatementError
from packager.util.jsonio import canonical_json
from packager.util.timefmt import UTC
from packager.util.timefmt import format_datetime as rfc3339

__all__ = [
    "BUILD_TYPE",
    "PAYLOAD_TYPE_INTOTO",
    "SLSA_PROVENANCE_V1",
    "STATEMENT_TYPE",
    "Dependency",
    "ManifestRef",
    "Subject",
    "blob_subject",
    "canonical_json",
    "parse_statement",
    "provenance_statement",
    "rfc3339",
    "sign_statement",
    "statement",
    "time_from_epoch",
]

STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1: Final = "https://slsa.dev/provenance/v1"
#: what an airgap build is; the version moves when externalParameters change meaning
BUILD_TYPE: Final = "https://airgap.dev/build/v1"
#: the resolvedDependencies name of the publisher's model signature that `airgap lock` verified;
#: its annotations say how (method, keyid, signer, root digest)
PUBLISHER_SIGNATURE: Final = "publisher-model-signature"

_HEX64 = re.compile(r"[0-9a-f]{64}")


def _sha256_hex(digest: str, what: str) -> str:
    """``<hex>`` from ``<hex>`` or ``sha256:<hex>``; ValueError for anything else."""
    hex_ = digest.removeprefix("sha256:")
    if not _HEX64.fullmatch(hex_):
        raise ValueError(f"{what}: not a sha256 digest (64 lowercase hex digits): {digest!r}")
    return hex_


@dataclass(frozen=True)
class Subject:
    """An artifact the statement is about. ``sha256`` is hex (``sha256:`` prefix allowed)."""

    name: str
    sha256: str
    media_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "digest": {"sha256": _sha256_hex(self.sha256, self.name)},
        }
        if self.media_type:
            d["mediaType"] = self.media_type
        return d


def blob_subject(sha256: str, media_type: str | None = None) -> Subject:
    """The subject for a bundle blob: named ``blobs/sha256/<hex>``, its path in the layout."""
    hex_ = _sha256_hex(sha256, "blob")
    return Subject(f"blobs/sha256/{hex_}", hex_, media_type)


@dataclass(frozen=True)
class Dependency:
    """A resolved input of the build (a SLSA ResourceDescriptor): an image, a weight file, a
    wheel, a kernel... ``uri`` should not depend on the build host (no absolute local paths),
    e.g. ``docker://registry/mindie@sha256:...``, ``pkg:pypi/numpy@1.26.4``,
    ``https://huggingface.co/Qwen/Qwen2.5-7B-Instruct/resolve/<rev>/model.safetensors``."""

    uri: str
    sha256: str
    name: str | None = None
    media_type: str | None = None
    annotations: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "uri": self.uri,
            "digest": {"sha256": _sha256_hex(self.sha256, self.uri)},
        }
        if self.name:
            d["name"] = self.name
        if self.media_type:
            d["mediaType"] = self.media_type
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        return d


@dataclass(frozen=True)
class ManifestRef:
    """The manifest a bundle was built from: metadata.name/version and the file's sha256."""

    name: str
    version: str
    sha256: str


def time_from_epoch(seconds: int) -> datetime:
    """A UTC datetime from seconds since the epoch (SOURCE_DATE_EPOCH)."""
    return datetime.fromtimestamp(seconds, UTC)


def _subjects(subjects: Iterable[Subject]) -> list[dict[str, Any]]:
    by_name: dict[str, dict[str, Any]] = {}
    for s in subjects:
        d = s.to_dict()
        seen = by_name.get(s.name)
        if seen is not None and seen != d:
            raise ValueError(f"subject {s.name!r} given twice with different content")
        by_name[s.name] = d
    if not by_name:
        raise ValueError("an in-toto statement needs at least one subject")
    return [by_name[name] for name in sorted(by_name)]


def statement(
    subjects: Iterable[Subject], predicate_type: str, predicate: Mapping[str, Any]
) -> dict[str, Any]:
    """An in-toto Statement v1; subjects sorted by name, duplicates (same name) merged."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": _subjects(subjects),
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }


def _resolved(dependencies: Iterable[Dependency]) -> list[dict[str, Any]]:
    """Each dependency's ResourceDescriptor, exact duplicates merged, sorted by uri, then name,
    then its canonical JSON. A build of 50,000 files has 50,000: they are merged by their fields
    and sorted by (uri, name), and only those that share both are spelled as canonical JSON."""
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for dep in dependencies:
        d = dep.to_dict()
        notes = d.get("annotations")
        key = (
            d["uri"],
            d["digest"]["sha256"],
            d.get("name"),
            d.get("mediaType"),
            None if notes is None else canonical_json(notes),
        )
        unique.setdefault(key, d)
    by_place: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for d in unique.values():
        by_place.setdefault((d["uri"], d.get("name", "")), []).append(d)
    out: list[dict[str, Any]] = []
    for place in sorted(by_place):
        same = by_place[place]
        out += same if len(same) == 1 else sorted(same, key=canonical_json)
    return out


def provenance_statement(
    subjects: Iterable[Subject],
    *,
    manifest: ManifestRef,
    lock_sha256: str,
    tool_version: str,
    builder_id: str,
    started_on: datetime,
    finished_on: datetime,
    dependencies: Iterable[Dependency] = (),
    target: str | None = None,
    invocation_id: str | None = None,
) -> dict[str, Any]:
    """An in-toto Statement v1 whose predicate is SLSA provenance v1 for an airgap build.

    - ``externalParameters``: the manifest (name, version, digest), the lock's digest and, for a
      multi-target manifest, the target id;
    - ``internalParameters``: the airgap version;
    - ``resolvedDependencies``: ``dependencies``, sorted, exact duplicates merged;
    - ``runDetails``: ``builder_id`` (a URI naming the build platform) with the airgap version,
      and the given times (from SOURCE_DATE_EPOCH for a reproducible build) and invocation id.
    """
    if finished_on < started_on:
        raise ValueError("finished_on is before started_on")
    external: dict[str, Any] = {
        "manifest": {
            "name": manifest.name,
            "version": manifest.version,
            "digest": {"sha256": _sha256_hex(manifest.sha256, "manifest")},
        },
        "lock": {"digest": {"sha256": _sha256_hex(lock_sha256, "lock")}},
    }
    if target is not None:
        external["target"] = target
    resolved = _resolved(dependencies)
    metadata: dict[str, Any] = {
        "startedOn": rfc3339(started_on),
        "finishedOn": rfc3339(finished_on),
    }
    if invocation_id is not None:
        metadata["invocationId"] = invocation_id
    predicate = {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": {"toolVersion": tool_version},
            "resolvedDependencies": resolved,
        },
        "runDetails": {
            "builder": {"id": builder_id, "version": {"airgap": tool_version}},
            "metadata": metadata,
        },
    }
    return statement(subjects, SLSA_PROVENANCE_V1, predicate)


def sign_statement(stmt: Mapping[str, Any], signers: Sequence[SignerLike]) -> dict[str, Any]:
    """The DSSE envelope (payloadType ``application/vnd.in-toto+json``) over ``stmt``."""
    return envelope(PAYLOAD_TYPE_INTOTO, canonical_json(stmt), signers)


def parse_statement(payload: bytes) -> dict[str, Any]:
    """A verified DSSE payload as an in-toto Statement v1 with sha256 subjects; checks shape
    only (the caller decides what the subjects and predicate must say)."""
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise StatementError(f"attestation payload: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise StatementError("attestation payload: not a JSON object")
    if value.get("_type") != STATEMENT_TYPE:
        raise StatementError(
            f"attestation payload: _type is {value.get('_type')!r}, expected {STATEMENT_TYPE!r}"
        )
    subjects = value.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise StatementError("attestation payload: subject is not a non-empty list")
    for i, s in enumerate(subjects):
        digest = s.get("digest") if isinstance(s, dict) else None
        sha = digest.get("sha256") if isinstance(digest, dict) else None
        if not isinstance(sha, str) or not _HEX64.fullmatch(sha):
            raise StatementError(f"attestation payload: subject[{i}] has no sha256 digest")
    if not isinstance(value.get("predicateType"), str):
        raise StatementError("attestation payload: predicateType is not a string")
    if not isinstance(value.get("predicate", {}), dict):
        raise StatementError("attestation payload: predicate is not an object")
    return value


@dataclass(frozen=True)
class Provenance:
    """What an airgap build attestation says about the build (its SLSA predicate, typed)."""

    builder: str
    tool_version: str | None
    manifest: Mapping[str, Any] | None  # {name, version, digest: {sha256}}
    lock_digest: Mapping[str, Any] | None  # {sha256}
    started: str | None
    sources: tuple[tuple[str, Mapping[str, Any]], ...]  # (uri, digest set)
    signed_by: tuple[str, ...]  # keyids whose DSSE signature verified
    #: the publisher's model signature the build's lock verified: its annotations (method,
    #: keyid, signer...) and uri; None when the build had none
    publisher_signature: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "builder": self.builder,
            "tool_version": self.tool_version,
            "manifest": dict(self.manifest) if self.manifest is not None else None,
            "lock_digest": dict(self.lock_digest) if self.lock_digest is not None else None,
            "started": self.started,
            "sources": [{"uri": u, "digest": dict(d)} for u, d in self.sources],
            "dsse_signatures": list(self.signed_by),
            "publisher_signature": dict(self.publisher_signature)
            if self.publisher_signature is not None
            else None,
        }


def _obj(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise StatementError(f"attestation payload: {what} is not an object")
    return value


def _text(value: object, what: str, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise StatementError(f"attestation payload: {what} is not a string")
    return value


def read_provenance(stmt: Mapping[str, Any], signed_by: Iterable[str]) -> Provenance:
    """The typed predicate of a statement :func:`parse_statement` accepted; StatementError when
    a field has the wrong type (a hostile or foreign predicate is named, never trusted)."""
    pred = _obj(stmt.get("predicate"), "predicate")
    definition = _obj(pred.get("buildDefinition"), "predicate.buildDefinition")
    external = _obj(definition.get("externalParameters", {}), "externalParameters")
    internal = _obj(definition.get("internalParameters", {}), "internalParameters")
    run = _obj(pred.get("runDetails"), "predicate.runDetails")
    builder = _obj(run.get("builder"), "runDetails.builder")
    metadata = _obj(run.get("metadata", {}), "runDetails.metadata")
    deps = definition.get("resolvedDependencies", [])
    if not isinstance(deps, list):
        raise StatementError("attestation payload: resolvedDependencies is not a list")
    sources = []
    publisher = None
    for i, entry in enumerate(deps):  # one per model file: a place is named only when wrong
        if not isinstance(entry, Mapping):
            _obj(entry, f"resolvedDependencies[{i}]")
        uri = entry.get("uri")
        if not isinstance(uri, str):
            _text(uri, f"resolvedDependencies[{i}].uri", required=True)
        digest = entry.get("digest", {})
        if not isinstance(digest, Mapping):
            _obj(digest, f"resolvedDependencies[{i}].digest")
        sources.append((uri, digest))
        if entry.get("name") == PUBLISHER_SIGNATURE:
            notes = _obj(entry.get("annotations", {}), f"resolvedDependencies[{i}].annotations")
            publisher = {"uri": uri, **{k: v for k, v in notes.items() if k != "uri"}}
    manifest = external.get("manifest")
    lock = external.get("lock")
    return Provenance(
        builder=str(_text(builder.get("id"), "runDetails.builder.id", required=True)),
        tool_version=_text(internal.get("toolVersion"), "internalParameters.toolVersion"),
        manifest=_obj(manifest, "externalParameters.manifest") if manifest is not None else None,
        lock_digest=_obj(_obj(lock, "externalParameters.lock").get("digest"), "lock.digest")
        if lock is not None
        else None,
        started=_text(metadata.get("startedOn"), "runDetails.metadata.startedOn"),
        sources=tuple(sources),
        signed_by=tuple(sorted(signed_by)),
        publisher_signature=publisher,
    )
