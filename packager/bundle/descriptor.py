"""The bundle descriptor, ``airgap/bundle.json``, as typed data (schemas/bundle.schema.json).

The one place that reads and writes it: the build makes a :class:`Descriptor` and writes
:func:`descriptor_bytes`; every reader calls :func:`parse_descriptor`, which refuses anything that
is not strict JSON (a name given twice, NaN, deep nesting), breaks the schema, or lists one blob,
file, install path or kernel twice, before any other code sees a value. What it returns holds
only well-formed digests, sizes and relative paths, so ``layout.blob_path`` and friends never see
a hostile string.

Parsing is not verifying: a descriptor from a bundle is trusted only after its signatures are
checked over the raw bytes (packager.commands.verify).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from packager.bundle import layout
from packager.bundle.errors import DescriptorError
from packager.resolve.lockfile import Lock
from packager.util.jsonio import DocumentError, parse_document, pretty_json
from packager.util.schemas import first_error

Number = Union[int, float]


@dataclass(frozen=True)
class BundleMeta:
    """``bundle``: what the bundle is and when it was made (RFC 3339 UTC)."""

    name: str
    version: str
    target: str | None
    description: str | None
    created: str
    expires: str | None  # created + the manifest's expires (what older airgap versions judge)
    #: the manifest's expires in seconds: valid that long after it is signed (signing-time
    #: records), which is what verify judges when it is given
    valid_for_s: int | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "target": self.target,
            "description": self.description,
            "created": self.created,
            "expires": self.expires,
        }
        if self.valid_for_s is not None:
            d["valid_for_s"] = self.valid_for_s
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> BundleMeta:
        return cls(
            d["name"],
            d["version"],
            d["target"],
            d["description"],
            d["created"],
            d["expires"],
            d.get("valid_for_s"),
        )


@dataclass(frozen=True)
class AcceleratorSpec:
    vendor: str  # nvidia | huawei | none
    chips: tuple[str, ...]
    count: int
    memory_bytes: int | None
    mig: bool = False  # written only when true: older readers keep reading single-GPU bundles

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "vendor": self.vendor,
            "chips": list(self.chips),
            "count": self.count,
            "memory_bytes": self.memory_bytes,
        }
        if self.mig:
            out["mig"] = True
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> AcceleratorSpec:
        return cls(
            d["vendor"], tuple(d["chips"]), d["count"], d["memory_bytes"], d.get("mig", False)
        )


@dataclass(frozen=True)
class StackSpec:
    """The chip stack the bundle needs, as the manifest wrote the constraints."""

    cuda: str | None = None
    cann: str | None = None
    driver: str | None = None
    firmware: str | None = None
    torch: str | None = None
    torch_npu: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "cuda": self.cuda,
            "cann": self.cann,
            "driver": self.driver,
            "firmware": self.firmware,
            "torch": self.torch,
            "torch_npu": self.torch_npu,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StackSpec:
        return cls(d["cuda"], d["cann"], d["driver"], d["firmware"], d["torch"], d["torch_npu"])


@dataclass(frozen=True)
class TargetSpec:
    id: str | None
    platform: str  # linux/amd64 | linux/arm64
    accelerator: AcceleratorSpec
    stack: StackSpec
    precision: str | None
    nodes: int = 1  # written only when more than one: single-node descriptors stay as they were

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "platform": self.platform,
            "accelerator": self.accelerator.to_json(),
            "stack": self.stack.to_json(),
            "precision": self.precision,
        }
        if self.nodes != 1:
            out["nodes"] = self.nodes
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TargetSpec:
        return cls(
            d["id"],
            d["platform"],
            AcceleratorSpec.from_json(d["accelerator"]),
            StackSpec.from_json(d["stack"]),
            d["precision"],
            d.get("nodes", 1),
        )


@dataclass(frozen=True)
class ServeModes:
    """``install.modes``: how the installed version must be laid out for its server (the
    manifest's ``serve.install``): every file ``file_mode`` (execute added where it reads for
    the executable ones), every folder ``dir_mode``, owned by ``uid``/``gid`` when given."""

    file_mode: int
    dir_mode: int
    uid: int | None = None
    gid: int | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "file_mode": f"{self.file_mode:04o}",
            "dir_mode": f"{self.dir_mode:04o}",
        }
        if self.uid is not None:
            d["uid"] = self.uid
        if self.gid is not None:
            d["gid"] = self.gid
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ServeModes:
        return cls(int(d["file_mode"], 8), int(d["dir_mode"], 8), d.get("uid"), d.get("gid"))


@dataclass(frozen=True)
class InstallSize:
    """``install``: its size, and how it is laid out where that differs from the default (files
    0444, folders 0555, the installer's owner): the executable files, the empty folders, the
    modes the server demands."""

    bytes: int  # every blob with an install path
    weights_bytes: int
    #: install paths of files installed with execute (runtime files whose source had it)
    executables: tuple[str, ...] = ()
    #: install paths of empty folders (of runtime.files folder sources)
    dirs: tuple[str, ...] = ()
    modes: ServeModes | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"bytes": self.bytes, "weights_bytes": self.weights_bytes}
        # each written only when used: descriptors without them keep their bytes
        if self.executables:
            d["executables"] = list(self.executables)
        if self.dirs:
            d["dirs"] = list(self.dirs)
        if self.modes is not None:
            d["modes"] = self.modes.to_json()
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> InstallSize:
        modes = d.get("modes")
        return cls(
            d["bytes"],
            d["weights_bytes"],
            tuple(d.get("executables", ())),
            tuple(d.get("dirs", ())),
            ServeModes.from_json(modes) if modes is not None else None,
        )


@dataclass(frozen=True)
class ImageRecord:
    """A container image the bundle carries, by the digests it keeps."""

    ref: str
    role: str  # serving | sidecar | tool | init
    platform: str
    manifest_digest: str | None
    index_digest: str | None
    config_digest: str

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "role": self.role,
            "platform": self.platform,
            "manifest_digest": self.manifest_digest,
            "index_digest": self.index_digest,
            "config_digest": self.config_digest,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ImageRecord:
        return cls(
            d["ref"],
            d["role"],
            d["platform"],
            d["manifest_digest"],
            d["index_digest"],
            d["config_digest"],
        )


@dataclass(frozen=True)
class KernelVectors:
    """A kernel's test vectors: install paths of the .npy files and how to launch and compare."""

    inputs: tuple[str, ...]
    expected: tuple[str, ...]
    rtol: Number
    atol: Number
    grid: tuple[int, ...]
    block: tuple[int, ...]
    shared_mem: int
    scalars: tuple[Number, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": list(self.inputs),
            "expected": list(self.expected),
            "rtol": self.rtol,
            "atol": self.atol,
            "grid": list(self.grid),
            "block": list(self.block),
            "shared_mem": self.shared_mem,
            "scalars": list(self.scalars),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> KernelVectors:
        return cls(
            tuple(d["inputs"]),
            tuple(d["expected"]),
            d["rtol"],
            d["atol"],
            tuple(d["grid"]),
            tuple(d["block"]),
            d["shared_mem"],
            tuple(d["scalars"]),
        )


@dataclass(frozen=True)
class KernelRecord:
    """A verified inference kernel: where it installs, its entry and the build's check of it."""

    name: str
    kind: str
    path: str  # install path of the binary
    entry: str | None
    targets: tuple[str, ...]
    params: tuple[int, ...] | None  # byte size of each parameter of the entry, from the binary
    tests: KernelVectors | None
    #: the build's inspection of the binary (packager.kernels.checks.KernelCheck.to_json), kept
    #: as the record it is: shown, never acted on
    check: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "path": self.path,
            "entry": self.entry,
            "targets": list(self.targets),
            "params": list(self.params) if self.params is not None else None,
            "tests": self.tests.to_json() if self.tests is not None else None,
            "check": dict(self.check),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> KernelRecord:
        params = d["params"]
        tests = d["tests"]
        return cls(
            d["name"],
            d["kind"],
            d["path"],
            d["entry"],
            tuple(d["targets"]),
            tuple(params) if params is not None else None,
            KernelVectors.from_json(tests) if tests is not None else None,
            dict(d["check"]),
        )


@dataclass(frozen=True)
class SmokeSpec:
    """The smoke command the probe runs in the serving image."""

    image: str | None  # an image role
    command: tuple[str, ...]
    env: Mapping[str, str]
    timeout_s: int
    exit_code: int
    stdout_contains: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "command": list(self.command),
            "env": dict(self.env),
            "timeout_s": self.timeout_s,
            "exit_code": self.exit_code,
            "stdout_contains": self.stdout_contains,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SmokeSpec:
        return cls(
            d["image"],
            tuple(d["command"]),
            dict(d["env"]),
            d["timeout_s"],
            d["exit_code"],
            d["stdout_contains"],
        )


@dataclass(frozen=True)
class JsonExpectationSpec:
    """One value of a check's JSON answer and one test of it (equals, range, length, contains)."""

    path: str
    kind: str
    value: Any

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "value": self.value}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> JsonExpectationSpec:
        return cls(d["path"], d["kind"], d["value"])


@dataclass(frozen=True)
class ServeCheckSpec:
    """A golden request and what its answer must be."""

    name: str
    method: str
    path: str
    body: Any
    has_body: bool
    status: int
    latency_ms: int | None
    json: tuple[JsonExpectationSpec, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "method": self.method,
            "path": self.path,
            "body": self.body,
            "has_body": self.has_body,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "json": [e.to_json() for e in self.json],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ServeCheckSpec:
        return cls(
            d["name"],
            d["method"],
            d["path"],
            d["body"],
            d["has_body"],
            d["status"],
            d["latency_ms"],
            tuple(JsonExpectationSpec.from_json(e) for e in d["json"]),
        )


@dataclass(frozen=True)
class ReadinessSpec:
    path: str
    status: int
    timeout_s: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "status": self.status, "timeout_s": self.timeout_s}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ReadinessSpec:
        return cls(d["path"], d["status"], d["timeout_s"])


@dataclass(frozen=True)
class ServeSpec:
    """How the site serves the model and how ``probe --serve`` tells that it answers."""

    image: str  # an image role or ref
    command: tuple[str, ...]  # replaces the ENTRYPOINT; empty: the image's own
    args: tuple[str, ...] | None  # replaces the CMD; None: the image's own
    env: Mapping[str, str]
    port: int
    weights: str  # the read-only mount point of the installed weights
    readiness: ReadinessSpec
    checks: tuple[ServeCheckSpec, ...]
    device_resource: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "command": list(self.command),
            "args": list(self.args) if self.args is not None else None,
            "env": dict(self.env),
            "port": self.port,
            "weights": self.weights,
            "readiness": self.readiness.to_json(),
            "checks": [c.to_json() for c in self.checks],
            "device_resource": self.device_resource,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ServeSpec:
        args = d["args"]
        return cls(
            d["image"],
            tuple(d["command"]),
            tuple(args) if args is not None else None,
            dict(d["env"]),
            d["port"],
            d["weights"],
            ReadinessSpec.from_json(d["readiness"]),
            tuple(ServeCheckSpec.from_json(c) for c in d["checks"]),
            d["device_resource"],
        )


@dataclass(frozen=True)
class BlobRecord:
    """One blob of the OCI layout: its digest, size, media type, role and install paths."""

    digest: str  # sha256:<hex>
    size: int
    media_type: str
    role: str  # model | image | kernel | wheel | file | probe | oci
    paths: tuple[str, ...]  # install paths under the site prefix, sorted

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]

    @property
    def member(self) -> str:
        """Its path in the bundle: ``blobs/sha256/<hex>``."""
        return layout.blob_path(self.digest)

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "size": self.size,
            "mediaType": self.media_type,
            "role": self.role,
            "paths": list(self.paths),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> BlobRecord:
        return cls(d["digest"], d["size"], d["mediaType"], d["role"], tuple(d["paths"]))


@dataclass(frozen=True)
class CoveredFile:
    """A file outside ``blobs/`` that the signature covers (index.json, the SBOM, the probe)."""

    path: str
    sha256: str  # hex
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CoveredFile:
        return cls(d["path"], d["sha256"], d["size"])


@dataclass(frozen=True)
class AttestationRef:
    """What bundle.json says of ``airgap/attestation.dsse.json``: its payload's type, sha256 and
    size. The envelope's own signatures may be by any key; this is what makes its statement
    part of what the bundle's signers signed."""

    payload_type: str
    payload_sha256: str  # hex
    payload_size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "payloadType": self.payload_type,
            "payload_sha256": self.payload_sha256,
            "payload_size": self.payload_size,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> AttestationRef:
        return cls(d["payloadType"], d["payload_sha256"], d["payload_size"])


@dataclass(frozen=True)
class ModelSignatureRecord:
    """``model_signature``: the OpenSSF model signature of the weights (``airgap/model.sig``).

    The file holds a signature, so its bytes differ from one signing to the next; the
    descriptor pins what it signs instead: the sha256 of its in-toto statement, which is a pure
    function of the lock's model files (packager.bundle.model_signature). Paths are the
    constants of packager.bundle.layout (the schema allows no other).
    """

    path: str  # layout.MODEL_SIGNATURE
    install_path: str  # layout.MODEL_SIGNATURE_INSTALL
    predicate_type: str
    statement_sha256: str  # hex
    root_digest: str  # hex: the statement's subject digest
    files: int

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "install_path": self.install_path,
            "predicate_type": self.predicate_type,
            "statement_sha256": self.statement_sha256,
            "root_digest": self.root_digest,
            "files": self.files,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ModelSignatureRecord:
        return cls(
            d["path"],
            d["install_path"],
            d["predicate_type"],
            d["statement_sha256"],
            d["root_digest"],
            d["files"],
        )


@dataclass(frozen=True)
class BaseRef:
    """The version a delta bundle was made against: the one its site is expected to hold."""

    name: str
    version: str
    digest: str  # its content digest

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "digest": self.digest}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> BaseRef:
        return cls(d["name"], d["version"], d["digest"])


@dataclass(frozen=True)
class DeltaRecord:
    """``delta``: a delta bundle's base and the blobs its archive leaves out (the site's store
    supplies them). Present only in deltas; outside what is signed (see :func:`content_bytes`):
    every byte it leads to is still checked against the signed blob list."""

    base: BaseRef
    not_carried: tuple[str, ...]  # blob digests, sorted
    #: site-kit wheels (paths under airgap/site/wheels/, sorted) the archive leaves out: a site
    #: holding the base has them in an installed version's .airgap/site/wheels/
    not_carried_files: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"base": self.base.to_json(), "not_carried": list(self.not_carried)}
        if self.not_carried_files:
            out["not_carried_files"] = list(self.not_carried_files)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DeltaRecord:
        return cls(
            BaseRef.from_json(d["base"]),
            tuple(d["not_carried"]),
            tuple(d.get("not_carried_files", ())),
        )


@dataclass(frozen=True)
class Descriptor:
    """``airgap/bundle.json``: what a bundle holds, signed as a whole."""

    bundle: BundleMeta
    tool: str
    #: the manifest as data (its YAML parsed): a record of what was asked for, shown, not acted on
    manifest: Mapping[str, Any]
    manifest_digest: str
    lock: Lock
    lock_digest: str
    target: TargetSpec
    install: InstallSize
    images: tuple[ImageRecord, ...]
    kernels: tuple[KernelRecord, ...]
    smoke: SmokeSpec | None
    blobs: tuple[BlobRecord, ...]
    files: tuple[CoveredFile, ...]
    format: int = layout.BUNDLE_FORMAT_VERSION
    #: the attestation's payload (None in bundles made before it was covered)
    attestation: AttestationRef | None = None
    #: how the model is served and checked (manifest ``serve:``); None when it says nothing
    serve: ServeSpec | None = None
    model_signature: ModelSignatureRecord | None = None
    #: only in a delta bundle (packager.bundle.delta)
    delta: DeltaRecord | None = None

    # ------------------------------------------------------------------ views

    def carried(self, blob: BlobRecord) -> bool:
        """Whether the archive holds ``blob`` (every blob, unless this is a delta)."""
        return self.delta is None or blob.digest not in self._not_carried

    def file_carried(self, path: str) -> bool:
        """Whether the archive holds the airgap file ``path`` (every one, unless a delta leaves
        out site-kit wheels its base has)."""
        return self.delta is None or path not in self.delta.not_carried_files

    @property
    def _not_carried(self) -> frozenset[str]:
        cached: frozenset[str] | None = self.__dict__.get("_nc")
        if cached is None:
            cached = frozenset(self.delta.not_carried if self.delta is not None else ())
            object.__setattr__(self, "_nc", cached)
        return cached

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def version(self) -> str:
        return self.bundle.version

    def blob(self, digest: str) -> BlobRecord | None:
        return self._blobs_by_digest.get(digest)

    def blobs_with_role(self, role: str) -> list[BlobRecord]:
        return [b for b in self.blobs if b.role == role]

    @property
    def _blobs_by_digest(self) -> dict[str, BlobRecord]:
        cached: dict[str, BlobRecord] | None = self.__dict__.get("_by_digest")
        if cached is None:
            cached = {b.digest: b for b in self.blobs}
            object.__setattr__(self, "_by_digest", cached)
        return cached

    def image_roles(self) -> dict[str, str]:
        """Image reference -> role."""
        return {i.ref: i.role for i in self.images}

    # ------------------------------------------------------------------ JSON

    def to_json(self) -> dict[str, Any]:
        return {
            "bundleFormat": self.format,
            "bundle": self.bundle.to_json(),
            "tool": self.tool,
            "manifest": dict(self.manifest),
            "manifest_digest": self.manifest_digest,
            "lock": self.lock.to_json(),
            "lock_digest": self.lock_digest,
            "target": self.target.to_json(),
            "install": self.install.to_json(),
            "images": [i.to_json() for i in self.images],
            "kernels": [k.to_json() for k in self.kernels],
            "smoke": self.smoke.to_json() if self.smoke is not None else None,
            "blobs": [b.to_json() for b in self.blobs],
            "files": [f.to_json() for f in self.files],
            **({"attestation": self.attestation.to_json()} if self.attestation else {}),
            # written only when the manifest says how to serve (older readers know no `serve`)
            **({"serve": self.serve.to_json()} if self.serve is not None else {}),
            **({"model_signature": self.model_signature.to_json()} if self.model_signature else {}),
            **({"delta": self.delta.to_json()} if self.delta is not None else {}),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Descriptor:
        """From a document that passed the bundle schema (:func:`parse_descriptor` checks it)."""
        smoke = d["smoke"]
        serve = d.get("serve")  # bundles built before `serve` existed do not have it
        oms = d.get("model_signature")
        delta = d.get("delta")
        return cls(
            bundle=BundleMeta.from_json(d["bundle"]),
            tool=d["tool"],
            manifest=dict(d["manifest"]),
            manifest_digest=d["manifest_digest"],
            lock=Lock.from_json(d["lock"]),
            lock_digest=d["lock_digest"],
            target=TargetSpec.from_json(d["target"]),
            install=InstallSize.from_json(d["install"]),
            images=tuple(ImageRecord.from_json(i) for i in d["images"]),
            kernels=tuple(KernelRecord.from_json(k) for k in d["kernels"]),
            smoke=SmokeSpec.from_json(smoke) if smoke is not None else None,
            blobs=tuple(BlobRecord.from_json(b) for b in d["blobs"]),
            files=tuple(CoveredFile.from_json(f) for f in d["files"]),
            format=d["bundleFormat"],
            attestation=AttestationRef.from_json(d["attestation"]) if "attestation" in d else None,
            serve=ServeSpec.from_json(serve) if serve is not None else None,
            model_signature=ModelSignatureRecord.from_json(oms) if oms is not None else None,
            delta=DeltaRecord.from_json(delta) if delta is not None else None,
        )


def descriptor_bytes(descriptor: Descriptor, *, check: bool = False) -> bytes:
    """The bytes the build writes and signs: readable, deterministic JSON; with ``check``, the
    document is first held to the bundle schema (what we sign follows our own schema), both
    from one ``to_json`` (a dict per blob: 50,000 of them for a model of many files)."""
    doc = descriptor.to_json()
    if check:
        from packager.util.schemas import validate

        validate("bundle", doc)
    return pretty_json(doc)


def _repeated(values: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            return v
        seen.add(v)
    return None


def _unique(descriptor: Descriptor) -> None:
    """A name listed twice is refused: it would mean two things, or hide one."""
    checks: list[tuple[str, Sequence[str]]] = [
        ("blobs[].digest", [b.digest for b in descriptor.blobs]),
        (
            "blobs[].paths (an install path)",
            [p for b in descriptor.blobs for p in b.paths]
            + ([descriptor.model_signature.install_path] if descriptor.model_signature else []),
        ),
        ("files[].path", [f.path for f in descriptor.files]),
        ("install.executables", descriptor.install.executables),
        ("install.dirs", descriptor.install.dirs),
        ("kernels[].name", [k.name for k in descriptor.kernels]),
        (
            "serve.checks[].name",
            [c.name for c in descriptor.serve.checks] if descriptor.serve else [],
        ),
    ]
    if descriptor.delta is not None:
        checks.append(("delta.not_carried", descriptor.delta.not_carried))
        checks.append(("delta.not_carried_files", descriptor.delta.not_carried_files))
    for where, values in checks:
        twice = _repeated(values)
        if twice is not None:
            raise DescriptorError(
                f"{layout.BUNDLE_JSON}: {where} lists {twice!r} twice",
                hint="a descriptor names each blob, file and install path once; this bundle "
                "was not made by airgap build, or was changed",
            )
    if descriptor.delta is not None:
        for digest in descriptor.delta.not_carried:
            blob = descriptor.blob(digest)
            if blob is None or not blob.paths:
                raise DescriptorError(
                    f"{layout.BUNDLE_JSON}: delta.not_carried lists {digest}, which is not "
                    + ("a blob it lists" if blob is None else "a blob a site's store keeps "
                       "(it has no install path)"),
                    hint="a delta leaves out only blobs with install paths; this bundle was "
                    "not made by airgap build, or was changed",
                )  # fmt: skip
        listed = {f.path for f in descriptor.files}
        for path in descriptor.delta.not_carried_files:
            if path not in listed or not layout.is_kit_wheel(path):
                raise DescriptorError(
                    f"{layout.BUNDLE_JSON}: delta.not_carried_files lists {path!r}, which is not "
                    "a site-kit wheel it lists",
                    hint="a delta leaves out only the site kit's wheels among its files; this "
                    "bundle was not made by airgap build, or was changed",
                )


def content_bytes(raw: bytes) -> bytes:
    """What the signatures and the content digest of ``bundle.json``'s bytes ``raw`` cover.

    A full bundle's bytes as they are. A delta's ``bundle.json`` is the full one with a
    ``delta`` member added; its content is that document without ``delta``, written as the
    build writes every descriptor (:func:`packager.util.jsonio.pretty_json`): byte for byte the
    full bundle's ``bundle.json``, so both have one content digest and one set of signatures,
    and a delta installs the same ``.airgap/bundle.json`` and receipt as the full bundle.
    Raises :class:`DescriptorError` for bytes that are not a JSON document.
    """
    if b'"delta"' not in raw:  # cheap: a full bundle is hashed as it is, never re-rendered
        return raw
    if len(raw) > layout.MAX_BUNDLE_JSON_BYTES:
        raise DescriptorError(
            f"{layout.BUNDLE_JSON}: larger than {layout.MAX_BUNDLE_JSON_BYTES // 2**20} MiB"
        )
    try:
        doc = parse_document(raw)
    except DocumentError as exc:
        raise DescriptorError(f"{layout.BUNDLE_JSON}: {exc}") from None
    if not isinstance(doc, dict) or "delta" not in doc:
        return raw
    return pretty_json({k: v for k, v in doc.items() if k != "delta"})


def parse_descriptor(raw: bytes) -> Descriptor:
    """``airgap/bundle.json``'s bytes as a :class:`Descriptor`, or :class:`DescriptorError`."""
    if len(raw) > layout.MAX_BUNDLE_JSON_BYTES:
        raise DescriptorError(
            f"{layout.BUNDLE_JSON}: larger than {layout.MAX_BUNDLE_JSON_BYTES // 2**20} MiB"
        )
    try:
        doc = parse_document(raw)
    except DocumentError as exc:
        raise DescriptorError(f"{layout.BUNDLE_JSON}: {exc}") from None
    problem = first_error("bundle", doc)
    if problem is None:
        in_lock = first_error("lock", doc["lock"])
        problem = in_lock.replace("at $", "at $.lock", 1) if in_lock else None
    if problem is not None:
        raise DescriptorError(
            f"{layout.BUNDLE_JSON} is not a valid descriptor {problem}",
            hint="this bundle was made by another airgap version, or changed after it was built",
        )
    descriptor = Descriptor.from_json(doc)
    _unique(descriptor)
    return descriptor
