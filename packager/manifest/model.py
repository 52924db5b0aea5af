"""Manifest v1: YAML -> schema validation -> typed, immutable objects with source positions.

``load_manifest`` never raises for an invalid manifest: schema problems come back as findings
(with file:line:col, JSON path and a hint). It raises ``ManifestReadError`` only when the file
cannot be read as one YAML mapping at all.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from packager.findings import Finding, Severity, did_you_mean
from packager.manifest.yamlsource import JsonPath, PositionedDocument, json_path_str, load_yaml_file
from packager.util.schemas import load_schema, validator
from packager.util.text import quoted
from packager.util.units import parse_duration, parse_size

if (
    TYPE_CHECKING
):  # imported only for a manifest that breaks the schema (schemacheck says yes first)
    import jsonschema

API_VERSION = "airgap/v1"

# ----------------------------------------------------------------------------- typed objects


@dataclass(frozen=True)
class HuggingFaceSource:
    repo: str
    revision: str
    cache: Path | None


@dataclass(frozen=True)
class PublisherSignature:
    """``model.source.signature``: the publisher's OpenSSF model signature, checked at lock."""

    path: str  # relative: inside the model's folder; absolute: as it is
    public_key: Path | None  # the publisher's EC public key (PEM) ...
    certificate_chain: tuple[Path, ...]  # ... or the certificates to trust (PEM)
    json_path: JsonPath = ("model", "source", "signature")


@dataclass(frozen=True)
class ModelSource:
    path: Path | None = None
    huggingface: HuggingFaceSource | None = None
    signature: PublisherSignature | None = None


@dataclass(frozen=True)
class Model:
    name: str
    source: ModelSource
    format: str
    precision: str | None
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    sha256: Mapping[str, str]
    license: str | None
    #: ``model.allow_code``: the sha256 (hex) of the files that run code at load time (pickles,
    #: .py, config.json with auto_map) that may be carried (packager.compat.load_code)
    allow_code: tuple[str, ...] = ()


@dataclass(frozen=True)
class Accelerator:
    vendor: str  # nvidia | huawei | none
    chips: tuple[str, ...]
    count: int
    memory_bytes: int | None  # per device, when the manifest says
    mig: bool = False  # the deployment may run on an NVIDIA MIG device


@dataclass(frozen=True)
class Stack:
    cuda: str | None = None
    cann: str | None = None
    driver: str | None = None
    firmware: str | None = None
    torch: str | None = None
    torch_npu: str | None = None


@dataclass(frozen=True)
class Image:
    ref: str
    role: str
    digest: str | None
    source: str  # registry | docker | oci-layout | docker-archive
    path: Path | None
    insecure: bool
    json_path: JsonPath


@dataclass(frozen=True)
class Wheels:
    requirements: tuple[Path, ...]
    wheelhouse: Path | None
    python: str | None
    index_url: str | None
    json_path: JsonPath


@dataclass(frozen=True)
class FileEntry:
    source: Path
    sha256: str | None
    dest: str | None
    mode: str | None
    json_path: JsonPath


@dataclass(frozen=True)
class KernelTests:
    inputs: tuple[Path, ...]
    expected: tuple[Path, ...]
    rtol: float
    atol: float
    grid: tuple[int, ...]
    block: tuple[int, ...]
    shared_mem: int
    scalars: tuple[float, ...]


@dataclass(frozen=True)
class Kernel:
    name: str
    kind: str
    path: Path
    sha256: str | None
    entry: str | None
    targets: tuple[str, ...]
    tests: KernelTests | None
    json_path: JsonPath


@dataclass(frozen=True)
class Smoke:
    image: str | None
    command: tuple[str, ...]
    env: Mapping[str, str]
    timeout_s: int
    exit_code: int
    stdout_contains: str | None


@dataclass(frozen=True)
class JsonExpectation:
    """One value of a check's JSON answer (``path``, a ``$.a[0].b`` path) and one test of it."""

    path: str
    kind: str  # equals | range | length | contains
    value: Any
    json_path: JsonPath  # where the manifest says it


@dataclass(frozen=True)
class ServeCheck:
    """A golden request and what its answer must be."""

    name: str
    method: str
    path: str
    body: Any  # JSON, None when there is none
    has_body: bool
    status: int
    latency_ms: int | None
    json: tuple[JsonExpectation, ...]
    json_path: JsonPath


@dataclass(frozen=True)
class Readiness:
    path: str
    status: int
    timeout_s: int


@dataclass(frozen=True)
class ServeInstall:
    """``serve.install``: the modes and owner the server demands of the installed files (MindIE:
    files <= 0640, folders <= 0750, owned by the serving user; NIM-style servers: UID 1000)."""

    file_mode: int  # e.g. 0o640; executable files also get execute where they read
    dir_mode: int
    uid: int | None
    gid: int | None
    json_path: JsonPath


@dataclass(frozen=True)
class Serve:
    """How the model is served (``serve:``): the server, where it listens and what it must answer."""

    image: str  # an image role or ref
    command: tuple[str, ...]  # replaces the image's ENTRYPOINT; empty: the image's own
    args: tuple[str, ...] | None  # replaces the image's CMD; None: the image's own
    env: Mapping[str, str]
    port: int
    weights: str  # the read-only mount point of the installed weights
    readiness: Readiness
    checks: tuple[ServeCheck, ...]
    device_resource: str | None  # a Kubernetes device-plugin resource that overrides the chip's
    json_path: JsonPath
    #: required keys that neither the target's serve nor the shared one gives (validate: AG610)
    missing: tuple[str, ...] = ()
    #: the modes and owner of the installed version; None: the default (read-only, 0444/0555,
    #: the installer's owner, files hard-linked into the store)
    install: ServeInstall | None = None


#: where the weights appear in the serving container unless ``serve.weights`` says otherwise
DEFAULT_WEIGHTS_MOUNT = "/weights"
DEFAULT_READY_TIMEOUT_S = 300
#: what a target's serve must say once its own keys and the shared ones are merged
SERVE_REQUIRED = ("port", "readiness", "checks")


@dataclass(frozen=True)
class Target:
    """One deployment target with everything that applies to it (shared parts merged in)."""

    id: str | None  # None for a manifest with a single `target`
    json_path: JsonPath  # ("target",) or ("targets", id)
    platform: str
    accelerator: Accelerator
    stack: Stack
    precision: str | None
    images: tuple[Image, ...]
    wheels: Wheels | None
    files: tuple[FileEntry, ...]
    kernels: tuple[Kernel, ...]
    smoke: Smoke | None
    nodes: int = 1  # hosts the deployment spans (each with `accelerator.count` devices)
    serve: Serve | None = None


@dataclass(frozen=True)
class Manifest:
    path: Path
    base_dir: Path
    name: str
    version: str
    description: str | None
    expires: _dt.timedelta | None
    labels: Mapping[str, str]
    model: Model
    targets: tuple[Target, ...]
    document: PositionedDocument = field(repr=False, compare=False)

    def bundle_name(self, target: Target) -> str:
        """File stem of the bundle built for ``target``: NAME-VERSION[-TARGET]."""
        stem = f"{self.name}-{self.version}"
        return f"{stem}-{target.id}" if target.id else stem

    def target(self, target_id: str | None) -> Target:
        for t in self.targets:
            if t.id == target_id:
                return t
        raise KeyError(target_id)


# ----------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class LoadResult:
    document: PositionedDocument
    manifest: Manifest | None  # None when the schema check found errors
    findings: tuple[Finding, ...]


def load_manifest(path: Path) -> LoadResult:
    """Read, schema-check and type a manifest. Raises ManifestReadError for unreadable input."""
    doc = load_yaml_file(path)
    findings = schema_findings(doc)
    manifest = None
    if not any(f.severity is Severity.ERROR for f in findings):
        manifest = _build(doc, path)
    return LoadResult(doc, manifest, tuple(sorted(findings, key=Finding.sort_key)))


_TIMEOUT = re.compile(r"^([1-9][0-9]*)(s|m|h)\Z")
_LATENCY = re.compile(r"([1-9][0-9]*)(ms|s)")
_EXPECTATION_KINDS = ("equals", "range", "length", "contains")


def _timeout_seconds(text: str | None) -> int:
    if text is None:
        return 300
    m = _TIMEOUT.fullmatch(text)
    if not m:
        raise ValueError(f"not a timeout: {text!r}")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


def _build(doc: PositionedDocument, path: Path) -> Manifest:
    d = doc.data
    base = path.resolve().parent

    def p(rel: str) -> Path:
        return (base / rel) if not Path(rel).is_absolute() else Path(rel)

    md = d["metadata"]
    m = d["model"]
    src = m["source"]
    sig = src.get("signature")
    signature = (
        PublisherSignature(
            path=sig.get("path", "model.sig"),
            public_key=p(sig["public_key"]) if "public_key" in sig else None,
            certificate_chain=tuple(p(c) for c in sig.get("certificate_chain", ())),
        )
        if sig is not None
        else None
    )
    if "path" in src:
        source = ModelSource(path=p(src["path"]), signature=signature)
    else:
        hf = src["huggingface"]
        source = ModelSource(
            huggingface=HuggingFaceSource(
                repo=hf["repo"],
                revision=hf["revision"],
                cache=p(hf["cache"]) if "cache" in hf else None,
            ),
            signature=signature,
        )
    model = Model(
        name=m["name"],
        source=source,
        format=m["format"],
        precision=m.get("precision"),
        include=tuple(m.get("include", ())),
        exclude=tuple(m.get("exclude", ())),
        sha256=MappingProxyType(dict(m.get("sha256", {}))),
        license=m.get("license"),
        allow_code=tuple(m.get("allow_code", ())),
    )

    def images(rt: dict[str, Any], at: JsonPath) -> tuple[Image, ...]:
        return tuple(
            Image(
                ref=i["ref"],
                role=i.get("role", "serving"),
                digest=i.get("digest"),
                source=i.get("from", "registry"),
                path=p(i["path"]) if "path" in i else None,
                insecure=bool(i.get("insecure", False)),
                json_path=(*at, "images", n),
            )
            for n, i in enumerate(rt.get("images", ()))
        )

    def files(rt: dict[str, Any], at: JsonPath) -> tuple[FileEntry, ...]:
        return tuple(
            FileEntry(
                source=p(f["source"]),
                sha256=f.get("sha256"),
                dest=f.get("dest"),
                mode=f.get("mode"),
                json_path=(*at, "files", n),
            )
            for n, f in enumerate(rt.get("files", ()))
        )

    def wheels(shared: dict[str, Any], own: dict[str, Any], at: JsonPath) -> Wheels | None:
        sw, ow = shared.get("wheels"), own.get("wheels")
        if sw is None and ow is None:
            return None
        reqs: list[Path] = []
        for w in (sw, ow):
            if w is None:
                continue
            r = w.get("requirements", [])
            reqs.extend(p(x) for x in ([r] if isinstance(r, str) else r))
        sw, ow = sw or {}, ow or {}
        wh = ow.get("wheelhouse", sw.get("wheelhouse"))
        return Wheels(
            requirements=tuple(reqs),
            wheelhouse=p(wh) if wh else None,
            python=ow.get("python", sw.get("python")),
            index_url=ow.get("index_url", sw.get("index_url")),
            json_path=(*at, "wheels") if "wheels" in own else ("runtime", "wheels"),
        )

    def kernels(items: list[dict[str, Any]], at: JsonPath) -> tuple[Kernel, ...]:
        out = []
        for n, k in enumerate(items):
            t = k.get("tests")
            tests = None
            if t is not None:
                tests = KernelTests(
                    inputs=tuple(p(x) for x in t["inputs"]),
                    expected=tuple(p(x) for x in t["expected"]),
                    rtol=float(t.get("rtol", 1e-5)),
                    atol=float(t.get("atol", 1e-8)),
                    grid=tuple(t.get("grid", (1,))),
                    block=tuple(t.get("block", (1,))),
                    shared_mem=int(t.get("shared_mem", 0)),
                    # ints stay ints: the probe passes 1024 as int32, 0.5 as float32
                    scalars=tuple(x for x in t.get("scalars", ())),
                )
            out.append(
                Kernel(
                    name=k["name"],
                    kind=k["kind"],
                    path=p(k["path"]),
                    sha256=k.get("sha256"),
                    entry=k.get("entry"),
                    targets=tuple(k.get("targets", ())),
                    tests=tests,
                    json_path=(*at, n),
                )
            )
        return tuple(out)

    def smoke(s: dict[str, Any] | None) -> Smoke | None:
        if s is None:
            return None
        expect = s.get("expect", {})
        return Smoke(
            image=s.get("image"),
            command=tuple(s["command"]),
            env=MappingProxyType(dict(s.get("env", {}))),
            timeout_s=_timeout_seconds(s.get("timeout")),
            exit_code=int(expect.get("exit_code", 0)),
            stdout_contains=expect.get("stdout_contains"),
        )

    def serve(own: dict[str, Any] | None, at: JsonPath) -> Serve | None:
        shared = d.get("serve")
        if own is None and shared is None:
            return None
        merged: dict[str, Any] = dict(shared or {})
        merged.update(own or {})
        env = dict((shared or {}).get("env", {}))
        env.update((own or {}).get("env", {}))
        where: JsonPath = at if own is not None else ("serve",)

        def key_at(key: str) -> JsonPath:
            return (*at, key) if own is not None and key in own else ("serve", key)

        ready = merged.get("readiness", {})
        checks_at = key_at("checks")
        return Serve(
            image=merged.get("image", "serving"),
            command=tuple(merged.get("command", ())),
            args=tuple(merged["args"]) if "args" in merged else None,
            env=MappingProxyType(env),
            port=int(merged.get("port", 0)),
            weights=merged.get("weights", DEFAULT_WEIGHTS_MOUNT),
            readiness=Readiness(
                path=ready.get("path", "/"),
                status=int(ready.get("status", 200)),
                timeout_s=_timeout_seconds(ready.get("timeout"))
                if "timeout" in ready
                else DEFAULT_READY_TIMEOUT_S,
            ),
            checks=tuple(
                _serve_check(c, (*checks_at, n)) for n, c in enumerate(merged.get("checks", ()))
            ),
            device_resource=merged.get("device_resource"),
            json_path=where,
            missing=tuple(k for k in SERVE_REQUIRED if k not in merged),
            install=_serve_install(merged.get("install"), key_at("install")),
        )

    shared_rt: dict[str, Any] = d.get("runtime", {})
    shared_kernels = kernels(d.get("kernels", []), ("kernels",))

    def target(t: dict[str, Any], tid: str | None, at: JsonPath) -> Target:
        acc = t["accelerator"]
        st = t.get("stack", {})
        own_rt: dict[str, Any] = t.get("runtime", {}) if tid is not None else {}
        return Target(
            id=tid,
            json_path=at,
            platform=t["platform"],
            accelerator=Accelerator(
                vendor=acc["vendor"],
                chips=tuple(acc.get("chips", ())),
                count=int(acc.get("count", 1)),
                memory_bytes=parse_size(acc["memory"]) if "memory" in acc else None,
                mig=bool(acc.get("mig", False)),
            ),
            stack=Stack(**{k: str(v) for k, v in st.items()}),
            precision=t.get("precision", model.precision),
            images=images(shared_rt, ("runtime",)) + images(own_rt, (*at, "runtime")),
            wheels=wheels(shared_rt, own_rt, (*at, "runtime")),
            files=files(shared_rt, ("runtime",)) + files(own_rt, (*at, "runtime")),
            kernels=shared_kernels + kernels(t.get("kernels", []), (*at, "kernels")),
            smoke=smoke(t.get("smoke", d.get("smoke"))),
            nodes=int(t.get("nodes", 1)),
            serve=serve(t.get("serve") if tid is not None else None, (*at, "serve")),
        )

    if "target" in d:
        targets: tuple[Target, ...] = (target(d["target"], None, ("target",)),)
    else:
        targets = tuple(target(t, tid, ("targets", tid)) for tid, t in d["targets"].items())

    return Manifest(
        path=path,
        base_dir=base,
        name=md["name"],
        version=md["version"],
        description=md.get("description"),
        expires=parse_duration(md["expires"]) if "expires" in md else None,
        labels=MappingProxyType(dict(md.get("labels", {}))),
        model=model,
        targets=targets,
        document=doc,
    )


def latency_ms(text: str) -> int:
    """``500ms`` / ``2s`` -> milliseconds."""
    m = _LATENCY.fullmatch(text)
    if not m:
        raise ValueError(f"not a latency: {text!r}")
    return int(m.group(1)) * (1 if m.group(2) == "ms" else 1000)


#: serve.install's defaults: the default install's own modes
DEFAULT_FILE_MODE = 0o444
DEFAULT_DIR_MODE = 0o555


def _serve_install(d: dict[str, Any] | None, at: JsonPath) -> ServeInstall | None:
    if d is None:
        return None
    return ServeInstall(
        file_mode=int(str(d.get("file_mode", "0444")), 8),
        dir_mode=int(str(d.get("dir_mode", "0555")), 8),
        uid=d.get("uid"),
        gid=d.get("gid"),
        json_path=at,
    )


def _serve_check(c: dict[str, Any], at: JsonPath) -> ServeCheck:
    expect = c.get("expect", {})
    has_body = "body" in c
    expectations = []
    for n, e in enumerate(expect.get("json", ())):
        # validate (AG602) names an expectation without exactly one test; the first one counts
        kind = next((k for k in _EXPECTATION_KINDS if k in e), "equals")
        expectations.append(
            JsonExpectation(e["path"], kind, e.get(kind), (*at, "expect", "json", n))
        )
    return ServeCheck(
        name=c["name"],
        method=c.get("method", "POST" if has_body else "GET"),
        path=c["path"],
        body=c.get("body"),
        has_body=has_body,
        status=int(expect.get("status", 200)),
        latency_ms=latency_ms(expect["latency"]) if "latency" in expect else None,
        json=tuple(expectations),
        json_path=at,
    )


# ----------------------------------------------------------------------------- schema findings


def _subschema(schema_root: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a local $ref so that we can read ``properties`` of the schema that failed."""
    while "$ref" in schema:
        ref = schema["$ref"]
        node: Any = schema_root
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean", int: "a number", float: "a number", str: "a string",
        list: "a list", dict: "a mapping",
    }.get(type(value), type(value).__name__)  # fmt: skip


def _leaf_errors(error: jsonschema.ValidationError) -> Iterator[jsonschema.ValidationError]:
    """Descend into oneOf/anyOf failures and pick the branch the user evidently meant."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        yield error
        return
    by_branch: dict[int, list[jsonschema.ValidationError]] = {}
    for sub in error.context:
        by_branch.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    if not by_branch:  # valid under more than one branch
        yield error
        return

    def shallow_misses(errs: list[jsonschema.ValidationError]) -> int:
        # a branch whose own keys are missing or unknown is not the one the user wrote
        return sum(
            1
            for e in errs
            if e.validator in ("required", "additionalProperties", "type")
            and list(e.absolute_path) == list(error.absolute_path)
        )

    best = min(by_branch.values(), key=lambda errs: (shallow_misses(errs), len(errs)))
    if shallow_misses(best):
        yield error  # none of the branches fits: report the choice itself
        return
    for sub in best:
        yield from _leaf_errors(sub)


def schema_findings(doc: PositionedDocument) -> list[Finding]:
    root = load_schema("manifest")
    out: list[Finding] = []
    data = doc.data
    # The top-level choice between target and targets reads better as its own rule.
    if ("target" in data) == ("targets" in data):
        both = "target" in data
        out.append(
            Finding(
                Severity.ERROR,
                "AG106",
                "give either `target` (one deployment) or `targets` (several), not both"
                if both
                else "no `target` or `targets`: say which chips and stack this deployment is for",
                doc.location(("targets",) if both else (), key=True),
                "$",
                "a manifest with `targets` builds one bundle per target id",
            )
        )
    from packager.util.schemacheck import conforms

    for err in [] if conforms("manifest", data) else validator("manifest").iter_errors(data):
        if err.validator == "oneOf" and not err.path and "target" in str(err.schema):
            continue  # handled above
        for leaf in _leaf_errors(err):
            out.extend(_finding_for(doc, root, leaf))
    # one message per place and problem
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for f in out:
        key = (f.code, f.json_path, f.message)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _finding_for(
    doc: PositionedDocument, root: dict[str, Any], err: jsonschema.ValidationError
) -> Iterator[Finding]:
    path: JsonPath = tuple(err.absolute_path)
    jp = json_path_str(path)
    schema = _subschema(root, err.schema) if isinstance(err.schema, dict) else {}
    inst = err.instance
    v = err.validator

    if v == "additionalProperties" and isinstance(inst, dict):
        allowed = sorted(schema.get("properties", {}))
        for key in inst:
            if key in allowed:
                continue
            dym = did_you_mean(key, allowed)
            yield Finding(
                Severity.ERROR,
                "AG101",
                f"unknown key {key!r} in {jp}",
                doc.location((*path, key), key=True),
                json_path_str((*path, key)),
                dym or f"allowed here: {', '.join(allowed)}",
            )
        return
    if v == "required":
        missing = [k for k in _vv(err) if isinstance(inst, dict) and k not in inst]
        for key in missing:
            desc = _subschema(root, schema.get("properties", {}).get(key, {})).get("description")
            yield Finding(
                Severity.ERROR,
                "AG102",
                f"missing required key {key!r} in {jp}",
                doc.location(path),
                json_path_str((*path, key)),
                desc or "see schemas/manifest.schema.json",
            )
        return
    if v == "type":
        expected = _vv(err)
        exp = " or ".join(expected) if isinstance(expected, list) else expected
        yield Finding(
            Severity.ERROR,
            "AG103",
            f"{jp} must be {_article(exp)}, found {_type_name(inst)} ({inst!r})",
            doc.location(path),
            jp,
            schema.get("description"),
        )
        return
    if v in ("enum", "const"):
        choices = _vv(err) if v == "enum" else [_vv(err)]
        shown = [str(c) for c in choices]
        hint = did_you_mean(str(inst), shown) if isinstance(inst, str) else None
        yield Finding(
            Severity.ERROR,
            "AG104",
            f"{jp} is {inst!r}; expected {' | '.join(shown)}",
            doc.location(path),
            jp,
            hint or f"one of: {', '.join(shown)}",
        )
        return
    if v in ("oneOf", "anyOf"):
        keys = sorted(inst) if isinstance(inst, dict) else []
        yield Finding(
            Severity.ERROR,
            "AG106",
            f"{jp} does not match any accepted form "
            f"(keys given: {', '.join(quoted(k, 40) for k in keys) or 'none'})",
            doc.location(path),
            jp,
            _oneof_hint(root, err),
        )
        return
    # pattern, minimum, minItems, uniqueItems, minProperties, propertyNames, ...
    yield Finding(
        Severity.ERROR,
        "AG105",
        f"{jp}: {_short_message(err)}",
        doc.location(path),
        jp,
        schema.get("description"),
    )


def _vv(err: jsonschema.ValidationError) -> Any:
    """The schema value that failed (``required``'s list, ``enum``'s choices, ...)."""
    return err.validator_value


def _article(word: str) -> str:
    return {"object": "a mapping", "array": "a list", "integer": "an integer"}.get(
        word, f"a {word}"
    )


def _short_message(err: jsonschema.ValidationError) -> str:
    v, inst = err.validator, err.instance
    if v == "pattern":
        return f"{inst!r} is not in the expected form"
    if v == "uniqueItems":
        return "the list holds the same item twice"
    if v == "minItems":
        return "the list is empty" if not inst else f"needs at least {_vv(err)} items"
    if v == "minLength":
        return "must not be empty"
    if v in ("minimum", "maximum"):
        return f"{inst!r} is out of range ({v} {_vv(err)})"
    return err.message


def _oneof_hint(root: dict[str, Any], err: jsonschema.ValidationError) -> str:
    forms = []
    for branch in _vv(err):
        props = _subschema(root, branch).get("required") or sorted(
            _subschema(root, branch).get("properties", {})
        )
        forms.append("{" + ", ".join(props) + "}")
    return "give exactly one of: " + " or ".join(forms)
