"""The requirements a bundle puts on the machine, read from its ``airgap/bundle.json``.

A bundle is a folder holding ``airgap/bundle.json``, a ``.tar`` holding that member (read in
place with tarfile, never extracted), or the ``bundle.json`` file itself. An installed bundle is
``PREFIX/bundles/NAME/current/.airgap/bundle.json``. Keys this probe does not know are ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from dataclasses import dataclass, field
from typing import Any

from .versions import Constraint, VersionError

MAX_DESCRIPTOR = 16 << 20
DESCRIPTOR = "airgap/bundle.json"
#: deeper than any bundle.json; a deeper one is refused before anything walks it
MAX_DEPTH = 64
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class BundleError(Exception):
    """A bundle that is missing or whose bundle.json cannot be used (exit 2)."""


@dataclass
class Requirements:
    source: str
    name: str | None = None
    version: str | None = None
    target: str | None = None
    platform: str | None = None
    vendor: str | None = None  # nvidia | huawei | none
    chips: list[str] = field(default_factory=list)
    count: int | None = None
    nodes: int = 1  # hosts the deployment spans (target.nodes)
    mig: bool = False  # the target may run on a MIG device (target.accelerator.mig)
    memory_bytes: int | None = None
    cuda: Constraint | None = None
    cann: Constraint | None = None
    driver: Constraint | None = None
    firmware: Constraint | None = None
    install_bytes: int | None = None
    weights_bytes: int | None = None
    kernels: int = 0
    smoke: bool = False
    images: bool = False
    #: where the bundle's files are: ("folder" | "tar" | "installed" | "descriptor", path)
    location: tuple[str, str] = ("descriptor", "")
    kernel_specs: list[dict[str, Any]] = field(default_factory=list)
    #: install path -> blob digest, from bundle.json's blobs
    blob_for_path: dict[str, str] = field(default_factory=dict)
    smoke_spec: dict[str, Any] | None = None
    target_spec: dict[str, Any] = field(default_factory=dict)
    image_specs: list[dict[str, Any]] = field(default_factory=list)
    #: sha256 of bundle.json (the content digest) and of the model's (path, digest) list
    digest: str | None = None
    weights_digest: str | None = None
    wheels: list[str] = field(default_factory=list)  # normalized project names of its wheels
    #: bundle.json's ``serve`` (how the model is served and checked), for ``--serve``
    serve_spec: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "name": self.name,
            "version": self.version,
            "target": self.target,
            "platform": self.platform,
            "vendor": self.vendor,
            "chips": list(self.chips),
            "count": self.count,
            "nodes": self.nodes,
            "mig": self.mig,
            "memory_bytes": self.memory_bytes,
            "stack": {
                k: (str(v) if v is not None else None)
                for k, v in (
                    ("cuda", self.cuda),
                    ("cann", self.cann),
                    ("driver", self.driver),
                    ("firmware", self.firmware),
                )
            },
            "install_bytes": self.install_bytes,
            "weights_bytes": self.weights_bytes,
            "kernels": self.kernels,
            "smoke": self.smoke,
            "digest": self.digest,
            "weights_digest": self.weights_digest,
        }


def _read_tar(path: str) -> bytes:
    try:
        with tarfile.open(path, "r:*") as tf:
            for member in tf:
                name = member.name[2:] if member.name.startswith("./") else member.name
                if name != DESCRIPTOR:
                    continue
                if not member.isfile():
                    raise BundleError(f"{path}: {DESCRIPTOR} is not a regular file")
                if member.size > MAX_DESCRIPTOR:
                    raise BundleError(f"{path}: {DESCRIPTOR} is larger than 16 MiB")
                fh = tf.extractfile(member)
                if fh is None:
                    raise BundleError(f"{path}: cannot read {DESCRIPTOR}")
                return fh.read(MAX_DESCRIPTOR + 1)
    except (tarfile.TarError, OSError, EOFError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BundleError(f"{path}: not a readable tar ({first.rstrip(':')})") from None
    raise BundleError(f"{path}: no {DESCRIPTOR} in this tar (is it an airgap bundle?)")


def _read_file(path: str) -> bytes:
    try:
        if os.path.getsize(path) > MAX_DESCRIPTOR:
            raise BundleError(f"{path}: larger than 16 MiB")
        with open(path, "rb") as fh:
            return fh.read(MAX_DESCRIPTOR + 1)
    except OSError as exc:
        raise BundleError(f"{path}: cannot read: {exc.strerror or exc}") from None


def locate(bundle: str | None, installed: str | None, prefix: str) -> tuple[str, bytes]:
    """Where the descriptor is and its bytes."""
    if installed is not None:
        path = os.path.join(prefix, "bundles", installed, "current", ".airgap", "bundle.json")
        if not os.path.isfile(path):
            raise BundleError(
                f"no installed bundle {installed!r} under {prefix} ({path} is missing)"
            )
        return path, _read_file(path)
    assert bundle is not None
    if os.path.isdir(bundle):
        path = os.path.join(bundle, DESCRIPTOR)
        if not os.path.isfile(path):
            alt = os.path.join(bundle, "bundle.json")  # the airgap/ folder itself
            if os.path.isfile(alt):
                return alt, _read_file(alt)
            raise BundleError(f"{bundle}: not a bundle folder (no {DESCRIPTOR})")
        return path, _read_file(path)
    if not os.path.exists(bundle):
        raise BundleError(f"{bundle}: no such bundle")
    if bundle.endswith(".json"):
        return bundle, _read_file(bundle)
    return bundle, _read_tar(bundle)


def _get(d: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    v = d.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise BundleError(f"bad bundle.json: {where}{key} must be an object")
    return v


def _str(d: dict[str, Any], key: str, where: str) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise BundleError(f"bad bundle.json: {where}{key} must be a string")
    return v


def _list(d: dict[str, Any], key: str, where: str) -> list[Any]:
    v = d.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise BundleError(f"bad bundle.json: {where}{key} must be a list")
    return v


def _int(d: dict[str, Any], key: str, where: str) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise BundleError(f"bad bundle.json: {where}{key} must be a non-negative integer")
    return v


def _constraint(d: dict[str, Any], key: str) -> Constraint | None:
    v = d.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, (str, int, float)) or isinstance(v, bool):
        raise BundleError(f"bad bundle.json: target.stack.{key} must be a version constraint")
    try:
        return Constraint.parse(str(v))
    except VersionError as exc:
        raise BundleError(f"bad bundle.json: target.stack.{key}: {exc}") from None


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the name {key!r} is given twice in one object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    """A JSON number with a fraction or exponent; one too large for a float (1e400) is refused,
    as airgap's own reader refuses it (packager.util.jsonio), not read as infinity."""
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is too large to be a number")
    return value


def _check_tree(doc: Any) -> str | None:
    """What makes ``doc`` unusable (nesting too deep, text that is not Unicode), or None.
    Iterative: nothing for a hostile document to exhaust."""
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, dict):
            stack.extend((k, depth + 1) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "text that is not valid Unicode (a lone surrogate)"
    return None


def _content(data: bytes, doc: dict[str, Any]) -> bytes:
    """What the content digest covers (packager.bundle.descriptor.content_bytes): a full
    bundle's bundle.json as it is; a delta's is its version's with a ``delta`` member added, and
    without it, written as airgap writes every descriptor (sorted keys, a 2-space indent, UTF-8,
    a final newline), it is byte for byte the full bundle's. So a node probed with a delta and
    one probed with the full bundle name one version."""
    if "delta" not in doc:
        return data
    rest = {k: v for k, v in doc.items() if k != "delta"}
    text = json.dumps(rest, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def parse_requirements(data: bytes, source: str) -> Requirements:
    """The requirements of a bundle.json; BundleError names the first bad value."""
    if len(data) > MAX_DESCRIPTOR:
        raise BundleError(f"{source}: bundle.json is larger than 16 MiB")
    try:
        doc = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_unique,
            parse_constant=_no_constant,
            parse_float=_finite,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"bad bundle.json ({source}): not JSON: {exc}") from None
    except RecursionError:
        raise BundleError(f"bad bundle.json ({source}): nested too deeply") from None
    problem = _check_tree(doc)
    if problem is not None:
        raise BundleError(f"bad bundle.json ({source}): {problem}")
    if not isinstance(doc, dict):
        raise BundleError(f"bad bundle.json ({source}): not a JSON object")
    req = Requirements(source=source)
    b = _get(doc, "bundle", "")
    req.name = _str(b, "name", "bundle.")
    req.version = _str(b, "version", "bundle.")
    req.target = _str(b, "target", "bundle.")
    t = _get(doc, "target", "")
    req.platform = _str(t, "platform", "target.")
    acc = _get(t, "accelerator", "target.")
    req.vendor = _str(acc, "vendor", "target.accelerator.")
    if req.vendor is not None and req.vendor not in ("nvidia", "huawei", "none"):
        raise BundleError(
            f"bad bundle.json: target.accelerator.vendor {req.vendor!r} "
            "(expected nvidia, huawei or none)"
        )
    chips = acc.get("chips")
    if chips is not None:
        if not isinstance(chips, list) or not all(isinstance(c, str) for c in chips):
            raise BundleError("bad bundle.json: target.accelerator.chips must be a list of strings")
        req.chips = [str(c) for c in chips]
    req.count = _int(acc, "count", "target.accelerator.")
    mig = acc.get("mig", False)
    if not isinstance(mig, bool):
        raise BundleError("bad bundle.json: target.accelerator.mig must be true or false")
    req.mig = mig
    nodes = _int(t, "nodes", "target.")
    if nodes == 0:
        raise BundleError("bad bundle.json: target.nodes must be at least 1")
    req.nodes = nodes or 1
    req.memory_bytes = _int(acc, "memory_bytes", "target.accelerator.")
    stack = _get(t, "stack", "target.")
    req.cuda = _constraint(stack, "cuda")
    req.cann = _constraint(stack, "cann")
    req.driver = _constraint(stack, "driver")
    req.firmware = _constraint(stack, "firmware")
    inst = _get(doc, "install", "")
    req.install_bytes = _int(inst, "bytes", "install.")
    req.weights_bytes = _int(inst, "weights_bytes", "install.")
    kernels = _list(doc, "kernels", "")
    req.kernels = len(kernels)
    req.kernel_specs = [k for k in kernels if isinstance(k, dict)]
    for blob in _list(doc, "blobs", ""):
        if isinstance(blob, dict) and isinstance(blob.get("digest"), str):
            if not DIGEST.fullmatch(blob["digest"]):
                raise BundleError(
                    f"bad bundle.json: blobs[].digest {blob['digest']!r} is not a sha256 digest"
                )
            for path in _list(blob, "paths", "blobs[]."):
                if isinstance(path, str):
                    req.blob_for_path[path] = blob["digest"]
    req.digest = "sha256:" + hashlib.sha256(_content(data, doc)).hexdigest()
    req.weights_digest = _weights_digest(doc.get("blobs"))
    smoke = doc.get("smoke")
    if smoke is not None and not isinstance(smoke, dict):
        raise BundleError("bad bundle.json: smoke must be an object or null")
    req.smoke = bool(smoke)
    req.smoke_spec = smoke if isinstance(smoke, dict) else None
    serve = doc.get("serve")
    if serve is not None and not isinstance(serve, dict):
        raise BundleError("bad bundle.json: serve must be an object or null")
    req.serve_spec = serve
    target_doc = doc.get("target")
    req.target_spec = target_doc if isinstance(target_doc, dict) else {}
    images = _list(doc, "images", "")
    req.image_specs = [i for i in images if isinstance(i, dict)]
    lock = doc.get("lock")
    locked = _locked_target(lock, req.target)
    lock_images = locked.get("images") if locked else None
    req.images = bool(smoke) or bool(images) or bool(lock_images)
    for w in (locked.get("wheels") if locked else None) or []:
        if isinstance(w, dict) and isinstance(w.get("name"), str):
            req.wheels.append(re.sub(r"[-_.]+", "-", w["name"].lower()))
    return req


def _locked_target(lock: Any, target: str | None) -> dict[str, Any] | None:
    """The lock's entry for the bundle's target."""
    if not isinstance(lock, dict) or not isinstance(lock.get("targets"), list):
        return None
    targets = [t for t in lock["targets"] if isinstance(t, dict)]
    for t in targets:
        if t.get("id") == target:
            return t
    return targets[0] if len(targets) == 1 else None


def _weights_digest(blobs: Any) -> str | None:
    """sha256 over the model's ``path digest`` lines, sorted: equal on two nodes exactly when
    they carry the same weights (whatever else the bundles hold)."""
    lines = []
    for blob in blobs if isinstance(blobs, list) else []:
        if not isinstance(blob, dict) or blob.get("role") != "model":
            continue
        for path in blob.get("paths") or []:
            if isinstance(path, str) and isinstance(blob.get("digest"), str):
                lines.append(f"{path} {blob['digest']}\n")
    if not lines:
        return None
    return "sha256:" + hashlib.sha256("".join(sorted(lines)).encode("utf-8")).hexdigest()


def load(bundle: str | None, installed: str | None, prefix: str) -> Requirements:
    source, data = locate(bundle, installed, prefix)
    req = parse_requirements(data, source)
    if installed is not None:
        req.location = ("installed", os.path.dirname(os.path.dirname(source)))
    elif (
        bundle is not None
        and os.path.isdir(bundle)
        and source.endswith(DESCRIPTOR.replace("/", os.sep))
    ):
        req.location = ("folder", bundle)
    elif bundle is not None and not bundle.endswith(".json") and os.path.isfile(bundle):
        req.location = ("tar", bundle)
    return req
