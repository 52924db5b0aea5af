"""The lock: every input of a manifest resolved once to content (schemas/lock.schema.json).

Plain frozen data with JSON round-trips; resolving lives in ``packager.resolve``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LOCK_VERSION = 1


@dataclass(frozen=True)
class LockedFile:
    """A file by content: a weight file, a runtime file, a kernel."""

    path: str  # relative to its source folder (weights) or as the manifest wrote it
    sha256: str
    size: int
    role: str | None = None  # weights: weight | config | tokenizer | doc | code
    dest: str | None = None  # runtime files: install path
    #: runtime files: the source file has an execute bit (installed 0555, or the declared
    #: serve.install file mode with execute where it reads)
    executable: bool = False
    #: model files: how loading it runs code (packager.compat.load_code: pickle, python,
    #: auto_map); None: it is read as data
    runs_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "sha256": self.sha256, "size": self.size}
        if self.role is not None:
            d["role"] = self.role
        if self.dest is not None:
            d["dest"] = self.dest
        if self.executable:  # written only when set: locks without it keep their bytes
            d["executable"] = True
        if self.runs_code is not None:
            d["runs_code"] = self.runs_code
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LockedFile:
        return cls(
            d["path"],
            d["sha256"],
            int(d["size"]),
            d.get("role"),
            d.get("dest"),
            d.get("executable") is True,
            d.get("runs_code"),
        )


@dataclass(frozen=True)
class SafetensorsSummary:
    tensors: int
    parameters: int
    dtypes: dict[str, int]  # dtype -> parameter count

    def to_json(self) -> dict[str, Any]:
        return {"tensors": self.tensors, "parameters": self.parameters, "dtypes": self.dtypes}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SafetensorsSummary:
        return cls(int(d["tensors"]), int(d["parameters"]), dict(d["dtypes"]))


@dataclass(frozen=True)
class PublisherSignatureRecord:
    """The publisher's OpenSSF model signature as `airgap lock` verified it."""

    path: str  # as model.source.signature names it
    sha256: str  # of the signature file
    method: str  # key | certificate
    keyid: str  # sha256 of the DER public key that verified it
    signer: str | None  # the signing certificate's subject (certificate method)
    certificate_sha256: str | None
    root: str | None  # the trusted root's subject the chain ends in
    model_name: str  # the statement's subject name
    root_digest: str  # the statement's subject digest
    serialization: str  # files | shards
    resources: int  # files (or shards) the publisher signed
    files_checked: int  # locked files found among them, with their signed digests

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "method": self.method,
            "keyid": self.keyid,
            "signer": self.signer,
            "certificate_sha256": self.certificate_sha256,
            "root": self.root,
            "model_name": self.model_name,
            "root_digest": self.root_digest,
            "serialization": self.serialization,
            "resources": self.resources,
            "files_checked": self.files_checked,
            "verified": True,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PublisherSignatureRecord:
        return cls(
            d["path"], d["sha256"], d["method"], d["keyid"], d["signer"],
            d["certificate_sha256"], d["root"], d["model_name"], d["root_digest"],
            d["serialization"], int(d["resources"]), int(d["files_checked"]),
        )  # fmt: skip


@dataclass(frozen=True)
class LockedModel:
    name: str
    format: str
    source: dict[str, str]  # {"path": ...} or {"huggingface": repo, "revision": ..., "commit": ...}
    files: tuple[LockedFile, ...]
    safetensors: SafetensorsSummary | None = None
    #: model.source.signature, verified; None when the manifest names no publisher signature
    signature: PublisherSignatureRecord | None = None
    #: ``model.allow_code``: the sha256 (hex) of the files that run code at load time that the
    #: manifest allows (every such file must be among them)
    allow_code: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "format": self.format,
            "source": self.source,
            "size": self.size,
            "files": [f.to_json() for f in self.files],
        }
        if self.safetensors is not None:
            d["safetensors"] = self.safetensors.to_json()
        if self.signature is not None:
            d["signature"] = self.signature.to_json()
        if self.allow_code:
            d["allow_code"] = list(self.allow_code)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LockedModel:
        st = d.get("safetensors")
        sig = d.get("signature")
        return cls(
            d["name"],
            d["format"],
            dict(d["source"]),
            tuple(LockedFile.from_json(f) for f in d["files"]),
            SafetensorsSummary.from_json(st) if st else None,
            PublisherSignatureRecord.from_json(sig) if sig else None,
            tuple(d.get("allow_code", ())),
        )


@dataclass(frozen=True)
class LockedImage:
    """A container image resolved to content for one platform.

    ``manifest_digest`` is the registry manifest of ``platform`` (what `docker pull REF@DIGEST`
    takes); ``index_digest`` the multi-arch index it was chosen from, when there was one. Images
    from a Docker engine or a docker-archive have no manifest of their own until they are pushed:
    then only ``config_digest`` (the image ID) identifies them.
    """

    ref: str
    source: str  # registry | docker | oci-layout | docker-archive
    platform: str  # os/arch[/variant]
    config_digest: str  # sha256:...
    size: int  # config + layers, as stored
    manifest_digest: str | None = None
    index_digest: str | None = None
    media_type: str | None = None  # of the manifest
    layers: tuple[str, ...] = ()  # layer digests as the source names them

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "source": self.source,
            "platform": self.platform,
            "manifest_digest": self.manifest_digest,
            "index_digest": self.index_digest,
            "config_digest": self.config_digest,
            "media_type": self.media_type,
            "size": self.size,
            "layers": list(self.layers),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LockedImage:
        return cls(
            ref=d["ref"],
            source=d["source"],
            platform=d["platform"],
            config_digest=d["config_digest"],
            size=int(d["size"]),
            manifest_digest=d.get("manifest_digest"),
            index_digest=d.get("index_digest"),
            media_type=d.get("media_type"),
            layers=tuple(d.get("layers", ())),
        )

    @property
    def content_digest(self) -> str:
        """The digest that pins this image: the manifest's when there is one, else the config's."""
        return self.manifest_digest or self.config_digest


@dataclass(frozen=True)
class LockedWheel:
    filename: str
    name: str  # normalized project name
    version: str
    sha256: str
    size: int
    tags: tuple[str, ...]  # e.g. ("cp311-cp311-manylinux_2_17_aarch64", ...)

    def to_json(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "tags": list(self.tags),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LockedWheel:
        return cls(
            d["filename"], d["name"], d["version"], d["sha256"], int(d["size"]), tuple(d["tags"])
        )


@dataclass(frozen=True)
class LockedKernel:
    name: str
    kind: str
    file: LockedFile
    tests: tuple[LockedFile, ...] = ()  # test-vector .npy files

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "file": self.file.to_json(),
            "tests": [t.to_json() for t in self.tests],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LockedKernel:
        return cls(
            d["name"],
            d["kind"],
            LockedFile.from_json(d["file"]),
            tuple(LockedFile.from_json(t) for t in d.get("tests", ())),
        )


@dataclass(frozen=True)
class LockedTarget:
    id: str | None
    platform: str
    images: tuple[LockedImage, ...] = ()
    wheels: tuple[LockedWheel, ...] = ()
    python: str | None = None
    files: tuple[LockedFile, ...] = ()
    kernels: tuple[LockedKernel, ...] = ()
    #: install paths of the empty folders of runtime folder sources (``runtime.files`` folders)
    dirs: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "platform": self.platform,
            "images": [i.to_json() for i in self.images],
            "python": self.python,
            "wheels": [w.to_json() for w in self.wheels],
            "files": [f.to_json() for f in self.files],
            "kernels": [k.to_json() for k in self.kernels],
        }
        if self.dirs:  # written only when used: locks without it keep their bytes
            d["dirs"] = list(self.dirs)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LockedTarget:
        return cls(
            id=d.get("id"),
            platform=d["platform"],
            images=tuple(LockedImage.from_json(i) for i in d.get("images", ())),
            wheels=tuple(LockedWheel.from_json(w) for w in d.get("wheels", ())),
            python=d.get("python"),
            files=tuple(LockedFile.from_json(f) for f in d.get("files", ())),
            kernels=tuple(LockedKernel.from_json(k) for k in d.get("kernels", ())),
            dirs=tuple(d.get("dirs", ())),
        )


@dataclass(frozen=True)
class Lock:
    manifest_name: str
    manifest_version: str
    manifest_digest: str  # sha256 of the manifest's canonical JSON (comments and layout ignored)
    tool: str
    created: str  # RFC 3339 UTC; from SOURCE_DATE_EPOCH when set
    model: LockedModel
    targets: tuple[LockedTarget, ...]
    findings: tuple[dict[str, Any], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "lockVersion": LOCK_VERSION,
            "manifest": {
                "name": self.manifest_name,
                "version": self.manifest_version,
                "digest": self.manifest_digest,
            },
            "tool": self.tool,
            "created": self.created,
            "model": self.model.to_json(),
            "targets": [t.to_json() for t in self.targets],
            "findings": list(self.findings),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Lock:
        m = d["manifest"]
        return cls(
            manifest_name=m["name"],
            manifest_version=m["version"],
            manifest_digest=m["digest"],
            tool=d["tool"],
            created=d["created"],
            model=LockedModel.from_json(d["model"]),
            targets=tuple(LockedTarget.from_json(t) for t in d["targets"]),
            findings=tuple(d.get("findings", ())),
        )

    def target(self, target_id: str | None) -> LockedTarget:
        for t in self.targets:
            if t.id == target_id:
                return t
        raise KeyError(target_id)
