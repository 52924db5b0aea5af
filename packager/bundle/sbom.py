"""The bundle's software bill of materials: ``airgap/sbom.cdx.json``, CycloneDX 1.6 JSON.

Built from the lock alone (no I/O, no clock), so the same lock and bundle facts give the same
bytes. What it holds, for the bundle of one target:

``metadata.component``
    The bundle itself (type ``application``: the deployable unit), with the target's platform,
    accelerator and chips as ``airgap:`` properties. ``metadata.tools`` names airgap and its
    version.
the model
    A ``machine-learning-model`` component. From Hugging Face it carries the commit as its version,
    a ``pkg:huggingface/ORG/NAME@COMMIT`` purl and a link to the commit on the Hub. Every file of
    the model (weights, config, tokenizer ...) is a nested ``file`` component with its SHA-256; the
    model as a whole has no single file to hash, so the hashes live on those files. The model card
    holds what the lock knows about the weights (format, precision, parameter and tensor counts,
    parameters per dtype) as ``airgap:model:*`` properties, and the license when one is given.
images
    ``container`` components named ``REGISTRY/REPOSITORY`` with the tag as version, a
    ``pkg:oci/NAME@sha256:...?arch=&repository_url=&tag=`` purl and the SHA-256 of the manifest of
    the target platform (the digest the bundle keeps). The index digest, config digest (image ID),
    platform and source are properties. An engine or archive image never pushed has no manifest
    digest: it gets neither purl nor hash, and is identified by its config digest property.
wheels
    ``library`` components with a ``pkg:pypi/NAME@VERSION?file_name=FILE`` purl and the wheel
    file's SHA-256; the wheel tags are a property.
kernels and runtime files
    ``file`` components with their SHA-256; a kernel's kind is a property and its test vectors are
    nested ``file`` components.

``dependencies`` says the bundle depends on each of them. bom-refs are derived from names and
paths (``model``, ``model-file:PATH``, ``image:REF``, ``wheel:FILE``, ``kernel:NAME``,
``kernel-test:NAME:PATH``, ``file:DEST``), unique within the document.

purls follow the purl specification and its ``oci``, ``pypi`` and ``huggingface`` type definitions;
the string form is the canonical one packageurl-python (the reference implementation) writes.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from packager.errors import InputError
from packager.oci.reference import ImageReference, architecture_of, parse_reference
from packager.resolve.lockfile import (
    Lock,
    LockedFile,
    LockedImage,
    LockedKernel,
    LockedModel,
    LockedWheel,
)
from packager.util.jsonio import canonical_json, pretty_json

__all__ = [
    "SPDX_IDS",
    "SPEC_VERSION",
    "build_sbom",
    "image_purl",
    "model_purl",
    "sbom_bytes",
    "wheel_purl",
]

SPEC_VERSION = "1.6"
SCHEMA_URI = "http://cyclonedx.org/schema/bom-1.6.schema.json"
BUNDLE_REF = "bundle"
MODEL_REF = "model"
HUGGINGFACE_URL = "https://huggingface.co"

#: serial numbers are uuid5 names in this namespace (itself a uuid5 of a fixed URL)
_SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://cyclonedx.org/airgap/sbom")

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}\Z")
_RFC3339 = re.compile(
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
    r"(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)\Z"
)
_HF_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?\Z")
_COMMIT = re.compile(r"^[0-9a-fA-F]{40}\Z")

#: SPDX license ids a model license is recognized as (case-insensitively, so Hugging Face's
#: lowercase tags such as ``apache-2.0`` map too); anything else is written as a license name.
#: Kept to long-established ids: the test checks each against the SPDX list of the 1.6 schema.
SPDX_IDS: frozenset[str] = frozenset(
    {
        "0BSD",
        "AFL-3.0",
        "AGPL-3.0-only",
        "AGPL-3.0-or-later",
        "Apache-1.1",
        "Apache-2.0",
        "Artistic-2.0",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "BSD-3-Clause-Clear",
        "BSL-1.0",
        "C-UDA-1.0",
        "CC-BY-2.0",
        "CC-BY-2.5",
        "CC-BY-3.0",
        "CC-BY-4.0",
        "CC-BY-NC-2.0",
        "CC-BY-NC-3.0",
        "CC-BY-NC-4.0",
        "CC-BY-NC-ND-3.0",
        "CC-BY-NC-ND-4.0",
        "CC-BY-NC-SA-2.0",
        "CC-BY-NC-SA-3.0",
        "CC-BY-NC-SA-4.0",
        "CC-BY-ND-4.0",
        "CC-BY-SA-3.0",
        "CC-BY-SA-4.0",
        "CC0-1.0",
        "CDLA-Permissive-1.0",
        "CDLA-Permissive-2.0",
        "CDLA-Sharing-1.0",
        "ECL-2.0",
        "EPL-1.0",
        "EPL-2.0",
        "EUPL-1.1",
        "EUPL-1.2",
        "GPL-2.0-only",
        "GPL-2.0-or-later",
        "GPL-3.0-only",
        "GPL-3.0-or-later",
        "ISC",
        "LGPL-2.1-only",
        "LGPL-2.1-or-later",
        "LGPL-3.0-only",
        "LGPL-3.0-or-later",
        "LPPL-1.3c",
        "MIT",
        "MPL-2.0",
        "MS-PL",
        "NCSA",
        "ODbL-1.0",
        "ODC-By-1.0",
        "OFL-1.1",
        "OSL-3.0",
        "PDDL-1.0",
        "PostgreSQL",
        "Unlicense",
        "UPL-1.0",
        "WTFPL",
        "Zlib",
    }
)
_SPDX_BY_LOWER = {i.lower(): i for i in SPDX_IDS}
_SPDX_OPERATORS = {"and": "AND", "or": "OR"}


# ============================================================================ public API


def build_sbom(
    lock: Lock,
    target_id: str | None,
    *,
    bundle_name: str,
    bundle_version: str,
    serial_seed: str,
    timestamp: str,
    tool_version: str,
    model_license: str | None = None,
    precision: str | None = None,
    chips: Sequence[str] = (),
    accelerator_vendor: str | None = None,
) -> dict[str, Any]:
    """The CycloneDX 1.6 SBOM of the bundle of target ``target_id`` (None: a single-target lock's).

    ``timestamp`` is the bundle's creation time, RFC 3339 (SOURCE_DATE_EPOCH or the lock's);
    nothing here reads the clock. ``serialNumber`` is a uuid5 of ``serial_seed``, the target and a
    digest of the rest of the document: the same inputs give the same serial, and two documents
    that differ do not share one (CycloneDX wants a BOM that changed to carry a new serial or a
    higher version). Raises :class:`InputError` for a target the lock lacks, a timestamp that is
    not RFC 3339, or a digest in the lock that is not a SHA-256.
    """
    if not _RFC3339.match(timestamp):
        raise InputError(
            f"SBOM timestamp {timestamp!r} is not an RFC 3339 date-time",
            hint="give it as YYYY-MM-DDTHH:MM:SSZ, e.g. from SOURCE_DATE_EPOCH",
        )
    try:
        target = lock.target(target_id)
    except KeyError:
        known = ", ".join(repr(t.id) for t in lock.targets) or "none"
        raise InputError(
            f"the lock has no target {target_id!r} (it has: {known})",
            hint="re-run `airgap lock` for this manifest",
        ) from None

    refs = _Refs()
    bundle_ref = refs.take(BUNDLE_REF)
    parts: list[dict[str, Any]] = [
        _model_component(lock.model, refs, model_license=model_license, precision=precision)
    ]
    parts += [_image_component(i, refs) for i in target.images]
    parts += [_wheel_component(w, refs) for w in target.wheels]
    parts += [_kernel_component(k, refs) for k in target.kernels]
    parts += [_file_component(f, refs) for f in target.files]

    bundle_props: list[tuple[str, str | None]] = [
        ("airgap:bundle:target", target.id),
        ("airgap:bundle:platform", target.platform),
        ("airgap:bundle:python", target.python),
        ("airgap:bundle:manifest-digest", lock.manifest_digest),
        ("airgap:accelerator:vendor", accelerator_vendor),
    ]
    bundle_props += [("airgap:accelerator:chip", c) for c in chips]
    bundle: dict[str, Any] = {
        "type": "application",
        "bom-ref": bundle_ref,
        "name": bundle_name,
        "version": bundle_version,
    }
    _put_properties(bundle, bundle_props)

    doc: dict[str, Any] = {
        "$schema": SCHEMA_URI,
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "lifecycles": [{"phase": "build"}],
            "tools": {
                "components": [{"type": "application", "name": "airgap", "version": tool_version}]
            },
            "component": bundle,
        },
        "components": parts,
        "dependencies": [{"ref": bundle_ref, "dependsOn": [p["bom-ref"] for p in parts]}],
    }
    body = hashlib.sha256(canonical_json(doc)).hexdigest()
    name = json.dumps([serial_seed, target_id, body])
    doc["serialNumber"] = uuid.uuid5(_SERIAL_NAMESPACE, name).urn
    return doc


def sbom_bytes(sbom: Mapping[str, Any]) -> bytes:
    """The SBOM as written into the bundle: UTF-8 JSON, 2-space indent, sorted keys, final newline.

    Deterministic: equal documents give equal bytes.
    """
    return pretty_json(sbom)


# ============================================================================ purls


def image_purl(ref: ImageReference, manifest_digest: str, platform: str | None = None) -> str:
    """``pkg:oci/NAME@sha256:HEX?arch=ARCH&repository_url=HOST/REPO&tag=TAG`` (purl type oci).

    NAME is the last component of the repository, lowercased; the version is the manifest digest;
    ``repository_url`` is where the image came from (``docker.io/...`` for Docker Hub), without a
    scheme as in the type's examples. ``tag`` is omitted for a reference by digest only.
    """
    name = ref.repository.rsplit("/", 1)[-1].lower()
    qualifiers = {
        "repository_url": f"{ref.display_host}/{ref.repository}",
        "tag": ref.tag,
        "arch": architecture_of(platform),
    }
    return _purl("oci", None, name, _digest(manifest_digest, f"image {ref}"), qualifiers)


def wheel_purl(wheel: LockedWheel) -> str:
    """``pkg:pypi/NAME@VERSION?file_name=FILE``: the name lowercased with ``_`` as ``-``."""
    name = wheel.name.lower().replace("_", "-")
    return _purl("pypi", None, name, wheel.version, {"file_name": wheel.filename})


def model_purl(repo: str, commit: str) -> str:
    """``pkg:huggingface/ORG/NAME@COMMIT`` (ORG/ omitted for a repository without one)."""
    namespace, _, name = repo.rpartition("/")
    return _purl("huggingface", namespace or None, name, commit.lower(), {})


def _purl(
    type_: str,
    namespace: str | None,
    name: str,
    version: str | None,
    qualifiers: Mapping[str, str | None],
) -> str:
    out = f"pkg:{type_}/"
    if namespace:
        out += "/".join(_pct(seg) for seg in namespace.strip("/").split("/")) + "/"
    out += _pct(name)
    if version:
        out += "@" + _pct(version)
    pairs = sorted(f"{k}={_pct(v, '/')}" for k, v in qualifiers.items() if v)
    if pairs:
        out += "?" + "&".join(pairs)
    return out


def _pct(text: str, also_safe: str = "") -> str:
    """Percent-encode a purl component; ``:`` (and ``also_safe``) stay as they are."""
    return quote(text, safe=":" + also_safe)


# ============================================================================ components


class _Refs:
    """Hands out bom-refs, each unique in the document (a repeat gets ``#2``, ``#3`` ...)."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def take(self, wanted: str) -> str:
        ref, n = wanted, 1
        while ref in self._taken:
            n += 1
            ref = f"{wanted}#{n}"
        self._taken.add(ref)
        return ref


def _model_component(
    model: LockedModel, refs: _Refs, *, model_license: str | None, precision: str | None
) -> dict[str, Any]:
    c: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": refs.take(MODEL_REF),
        "name": model.name,
    }
    repo = model.source.get("huggingface")
    commit = model.source.get("commit")
    if repo and commit:
        c["version"] = commit.lower()
        if _HF_REPO.match(repo) and _COMMIT.match(commit):
            c["purl"] = model_purl(repo, commit)
            c["externalReferences"] = [
                {
                    "type": "distribution",
                    "url": f"{HUGGINGFACE_URL}/{repo}/tree/{commit.lower()}",
                    "comment": "the Hugging Face repository at the locked commit",
                }
            ]
    if model_license:
        c["licenses"] = _licenses(model_license)

    card_props: list[tuple[str, str | None]] = [
        ("airgap:model:format", model.format),
        ("airgap:model:precision", precision),
        ("airgap:model:size", str(model.size)),
        ("airgap:model:files", str(len(model.files))),
    ]
    st = model.safetensors
    if st is not None:
        card_props += [
            ("airgap:model:parameters", str(st.parameters)),
            ("airgap:model:tensors", str(st.tensors)),
        ]
        card_props += [(f"airgap:model:dtype:{d}", str(n)) for d, n in sorted(st.dtypes.items())]
    card: dict[str, Any] = {}
    _put_properties(card, card_props)
    c["modelCard"] = card

    _put_properties(
        c,
        [
            ("airgap:model:source", "huggingface" if repo else "local"),
            ("airgap:model:repository", repo),
            ("airgap:model:revision", model.source.get("revision") if repo else None),
        ],
    )
    files = [_plain_file(f, refs.take(f"model-file:{f.path}"), f.path) for f in model.files]
    if files:
        c["components"] = files
    return c


def _image_component(image: LockedImage, refs: _Refs) -> dict[str, Any]:
    try:
        parsed: ImageReference | None = parse_reference(image.ref)
    except InputError:
        parsed = None
    c: dict[str, Any] = {"type": "container", "bom-ref": refs.take(f"image:{image.ref}")}
    if parsed is not None:
        c["name"] = f"{parsed.display_host}/{parsed.repository}"
        version = parsed.tag or parsed.digest
        if version:
            c["version"] = version
    else:
        c["name"] = image.ref
    if image.manifest_digest:
        hex_ = _digest(image.manifest_digest, f"image {image.ref}").removeprefix("sha256:")
        c["hashes"] = [_sha256(hex_)]
        if parsed is not None:
            c["purl"] = image_purl(parsed, image.manifest_digest, image.platform)
    _put_properties(
        c,
        [
            ("airgap:image:ref", image.ref),
            ("airgap:image:source", image.source),
            ("airgap:image:platform", image.platform),
            ("airgap:image:manifest-digest", image.manifest_digest),
            ("airgap:image:manifest-media-type", image.media_type),
            ("airgap:image:index-digest", image.index_digest),
            ("airgap:image:config-digest", image.config_digest),
            ("airgap:image:layers", str(len(image.layers))),
            ("airgap:size", str(image.size)),
        ],
    )
    return c


def _wheel_component(wheel: LockedWheel, refs: _Refs) -> dict[str, Any]:
    c: dict[str, Any] = {
        "type": "library",
        "bom-ref": refs.take(f"wheel:{wheel.filename}"),
        "name": wheel.name,
        "version": wheel.version,
        "purl": wheel_purl(wheel),
        "hashes": [_sha256(_hex(wheel.sha256, f"wheel {wheel.filename}"))],
    }
    _put_properties(
        c,
        [
            ("airgap:wheel:file", wheel.filename),
            ("airgap:wheel:tags", ",".join(wheel.tags) or None),
            ("airgap:size", str(wheel.size)),
        ],
    )
    return c


def _kernel_component(kernel: LockedKernel, refs: _Refs) -> dict[str, Any]:
    c = _plain_file(kernel.file, refs.take(f"kernel:{kernel.name}"), kernel.name)
    c["properties"] = [
        {"name": "airgap:kernel:kind", "value": kernel.kind},
        {"name": "airgap:file:path", "value": kernel.file.path},
        *c.get("properties", ()),
    ]
    tests = [
        _plain_file(t, refs.take(f"kernel-test:{kernel.name}:{t.path}"), t.path, "kernel-test")
        for t in kernel.tests
    ]
    if tests:
        c["components"] = tests
    return c


def _file_component(f: LockedFile, refs: _Refs) -> dict[str, Any]:
    c = _plain_file(f, refs.take(f"file:{f.dest or f.path}"), PurePosixPath(f.path).name or f.path)
    c["properties"] = [
        {"name": "airgap:file:path", "value": f.path},
        *c.get("properties", ()),
    ]
    return c


def _plain_file(f: LockedFile, ref: str, name: str, role: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {
        "type": "file",
        "bom-ref": ref,
        "name": name,
        "hashes": [_sha256(_hex(f.sha256, f"file {f.path}"))],
    }
    _put_properties(
        c,
        [
            ("airgap:file:role", role or f.role),
            ("airgap:file:dest", f.dest),
            ("airgap:size", str(f.size)),
        ],
    )
    return c


# ============================================================================ helpers


def _licenses(text: str) -> list[dict[str, Any]]:
    """A license as CycloneDX writes it: an SPDX id, an SPDX expression of known ids, or a name."""
    text = text.strip()
    spdx = _SPDX_BY_LOWER.get(text.lower())
    if spdx:
        return [{"license": {"id": spdx}}]
    expression = _spdx_expression(text)
    if expression:
        return [{"expression": expression}]
    return [{"license": {"name": text}}]


def _spdx_expression(text: str) -> str | None:
    """``text`` as an SPDX expression (ids and AND / OR, with parentheses), or None.

    Only expressions of ids in :data:`SPDX_IDS` are recognized; ids and operators are written in
    their canonical case. Anything else (WITH exceptions, LicenseRef-, unknown ids) is None.
    """
    out: list[str] = []
    depth = 0
    want_operand = True
    for token in re.findall(r"\(|\)|[^\s()]+", text):
        if token == "(" and want_operand:
            depth += 1
            out.append(token)
        elif token == ")" and not want_operand and depth > 0:
            depth -= 1
            out.append(token)
        elif want_operand and token.lower() in _SPDX_BY_LOWER:
            out.append(_SPDX_BY_LOWER[token.lower()])
            want_operand = False
        elif not want_operand and token.lower() in _SPDX_OPERATORS:
            out.append(_SPDX_OPERATORS[token.lower()])
            want_operand = True
        else:
            return None
    if want_operand or depth or not any(t in ("AND", "OR") for t in out):
        return None
    return " ".join(out).replace("( ", "(").replace(" )", ")")


def _put_properties(target: dict[str, Any], props: Iterable[tuple[str, str | None]]) -> None:
    """Set ``properties`` to the (name, value) pairs whose value is given, in order."""
    out = [{"name": n, "value": v} for n, v in props if v is not None and v != ""]
    if out:
        target["properties"] = out


def _sha256(hex_: str) -> dict[str, str]:
    return {"alg": "SHA-256", "content": hex_}


def _hex(value: str, what: str) -> str:
    """A SHA-256 as lowercase hex; ``sha256:`` prefixes are accepted."""
    hex_ = value.removeprefix("sha256:").lower()
    if not _SHA256_HEX.match(hex_):
        raise InputError(
            f"{what}: {value!r} is not a SHA-256 digest",
            hint="the lock is damaged: re-run `airgap lock`",
        )
    return hex_


def _digest(value: str, what: str) -> str:
    """A digest as ``sha256:<lowercase hex>``."""
    return "sha256:" + _hex(value, what)


# ============================================================================ reading it back


@dataclass(frozen=True)
class SbomComponent:
    name: str | None
    version: str | None
    digest: str | None  # sha256:<hex>
    licenses: tuple[str, ...] = ()  # SPDX ids, names or expressions

    def to_json(self, *, version: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name}
        if version:
            d["version"] = self.version
        d["digest"] = self.digest
        d["licenses"] = list(self.licenses)
        return d


def _read_licenses(value: object) -> tuple[str, ...]:
    """CycloneDX ``licenses``: ``[{license: {id|name}} | {expression}]`` as text."""
    out: list[str] = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict):
            continue
        lic = item.get("license")
        text = (
            (lic.get("id") or lic.get("name")) if isinstance(lic, dict) else item.get("expression")
        )
        if isinstance(text, str) and text not in out:
            out.append(text)
    return tuple(out)


@dataclass(frozen=True)
class SbomSummary:
    """What an audit shows of a bundle's SBOM: its format and components by kind."""

    spec_version: str | None
    models: tuple[SbomComponent, ...]
    images: tuple[SbomComponent, ...]
    wheels: tuple[SbomComponent, ...]
    files: tuple[SbomComponent, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": f"CycloneDX {self.spec_version}",
            "models": [
                {"name": c.name, "version": c.version, "licenses": list(c.licenses)}
                for c in self.models
            ],
            "images": [c.to_json() for c in self.images],
            "wheels": [c.to_json() for c in self.wheels],
            "files": [c.to_json(version=False) for c in self.files],
            "licenses": self.licenses(),
        }

    def licenses(self) -> dict[str, int]:
        """License -> how many components carry it (NOASSERTION: components that name none)."""
        out: dict[str, int] = {}
        for c in self.models + self.images + self.wheels + self.files:
            for lic in c.licenses or ("NOASSERTION",):
                out[lic] = out.get(lic, 0) + 1
        return dict(sorted(out.items()))


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def summarize_sbom(raw: bytes) -> SbomSummary:
    """The summary of an SBOM's bytes; ValueError when they are not a CycloneDX document."""
    from packager.util.jsonio import parse_document

    doc = parse_document(raw)
    if not isinstance(doc, dict) or not isinstance(doc.get("components", []), list):
        raise ValueError("not a CycloneDX document")
    by_type: dict[str, list[SbomComponent]] = {}
    for c in doc.get("components", []):
        if not isinstance(c, dict):
            continue
        digest = None
        hashes = c.get("hashes")
        for h in hashes if isinstance(hashes, list) else []:
            if (
                isinstance(h, dict)
                and h.get("alg") == "SHA-256"
                and isinstance(h.get("content"), str)
            ):
                digest = "sha256:" + h["content"]
                break
        comp = SbomComponent(
            _str_or_none(c.get("name")),
            _str_or_none(c.get("version")),
            digest,
            _read_licenses(c.get("licenses")),
        )
        by_type.setdefault(str(c.get("type")), []).append(comp)
    return SbomSummary(
        _str_or_none(doc.get("specVersion")),
        tuple(by_type.get("machine-learning-model", [])),
        tuple(by_type.get("container", [])),
        tuple(by_type.get("library", [])),
        tuple(by_type.get("file", [])),
    )
