"""``airgap deploy render``: an installed bundle's ``serve`` section as a Kubernetes Deployment or a
compose file.

What is rendered comes from the installed version's signed descriptor (checked against its
receipt's digest, then schema-checked and typed by :func:`parse_descriptor`), never from the
manifest on some build host:

- the serving image **by digest** (``REPO@sha256:...``, the manifest digest the bundle keeps; with
  ``--registry HOST:PORT`` the repository that ``airgap install --registry`` pushed to), pulled
  only when missing;
- ``command`` / ``args`` / ``env`` as the manifest says, with ``AIRGAP_SERVE_HOST`` (0.0.0.0: the
  pod's or container's own network) and ``AIRGAP_SERVE_PORT``, ``$(NAME)`` expanded at render time
  (as Kubernetes would; podman kube play does not) and every ``$`` left written ``$$``, which both
  Kubernetes and compose read as one ``$``;
- the weights as a read-only hostPath / bind mount of the **installed version's** ``model/``
  folder (not ``current``: an upgrade or a rollback does not swap a running server's weights);
- the readiness probe (``httpGet`` on the port; a startup probe gives the server the readiness
  timeout to come up); compose has no HTTP health check without a client in the image, so it has
  none, and the result notes it;
- the devices: ``resources.limits`` of the device-plugin resource (``nvidia.com/gpu``;
  ``huawei.com/Ascend910`` for 910A/B/C, ``huawei.com/Ascend310P`` for 300I Duo / 310P, as
  mind-cluster names them; ``--device-plugin hami`` takes HAMi's per-chip names such as
  ``huawei.com/Ascend910B3``; ``serve.device_resource`` overrides both) times the target's
  device count; Ascend pods also get the driver mounts; a target that spans nodes (``nodes`` > 1)
  runs one pod per node with host networking, ``/etc/hccn.conf`` and ``hccn_tool``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from packager.bundle import layout
from packager.bundle.descriptor import Descriptor, ServeSpec, parse_descriptor
from packager.bundle.errors import DescriptorError
from packager.errors import CheckFailed, InputError
from packager.oci.reference import parse_reference
from packager.probe.serve import HOST_VAR, PORT_VAR, expand
from packager.probe.smoke import ASCEND_DRIVER_MOUNTS, find_image
from packager.site.prefix import Prefix
from packager.site.receipts import read_receipt
from packager.site.rules import component_problem
from packager.site.safefs import SiteError

FORMATS = ("kube", "compose")
DEVICE_PLUGINS = ("mind-cluster", "hami")
#: the descriptor of an installed version is read up to this size
MAX_DESCRIPTOR = layout.MAX_BUNDLE_JSON_BYTES
#: inside the container, for a target that spans nodes
HCCN_CONF = "/etc/hccn.conf"
HCCN_TOOL = "/usr/local/Ascend/driver/tools/hccn_tool"

#: chip id -> the mind-cluster (Ascend device plugin) resource; deviceNameCustomization aside
MIND_CLUSTER_RESOURCES = {
    "ascend910a": "huawei.com/Ascend910",
    "ascend910b1": "huawei.com/Ascend910",
    "ascend910b2": "huawei.com/Ascend910",
    "ascend910b2c": "huawei.com/Ascend910",
    "ascend910b3": "huawei.com/Ascend910",
    "ascend910b4": "huawei.com/Ascend910",
    "ascend910c": "huawei.com/Ascend910",
    "ascend310p3": "huawei.com/Ascend310P",
}
#: chip id -> HAMi's resource (its device-config: one name per chip)
HAMI_RESOURCES = {
    "ascend910a": "huawei.com/Ascend910A",
    "ascend910b2": "huawei.com/Ascend910B2",
    "ascend910b3": "huawei.com/Ascend910B3",
    "ascend910b4": "huawei.com/Ascend910B4",
    "ascend310p3": "huawei.com/Ascend310P",
}
NVIDIA_RESOURCE = "nvidia.com/gpu"


class RenderError(CheckFailed):
    """What the installed bundle says cannot be rendered (no serve section, an unknown chip)."""


@dataclass
class Rendered:
    format: str
    name: str
    version: str
    target: str | None
    image: str
    weights: str
    text: str
    documents: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    output: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "format": self.format,
            "name": self.name,
            "version": self.version,
            "target": self.target,
            "image": self.image,
            "weights": self.weights,
            "output": str(self.output) if self.output is not None else None,
            "documents": self.documents,
            "notes": self.notes,
        }


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Installed:
    descriptor: Descriptor
    version: str
    version_dir: Path  # absolute


def read_installed(prefix_path: Path, name: str) -> Installed:
    """The current version of ``name`` under ``prefix_path``: its descriptor, checked against the
    digest its receipt recorded when it was verified and installed. ``name`` may be
    NAME+TARGET, and must be where NAME is installed for several targets."""
    bad = component_problem(name, "the bundle name")
    if bad:
        raise InputError(bad)
    root = prefix_path.resolve()
    with Prefix.open(root, create=False) as prefix:
        name = prefix.unit(name)
        version = prefix.current(name)
        if version is None:
            raise InputError(
                f"no installed bundle {name!r} under {prefix_path}",
                hint=f"`airgap list --prefix {prefix_path}` shows what is installed",
            )
        rd = prefix.receipts()
        receipt = None
        if rd is not None:
            with rd:
                receipt = read_receipt(rd, name, version)
        if receipt is None:
            raise SiteError(f"{name} {version} has no receipt under {prefix_path}")
        meta = f"{layout.SITE_BUNDLES_DIR}/{name}/{version}/{layout.INSTALLED_META_DIR}"
        with prefix.root.walk(meta) as d:
            raw = d.read_small("bundle.json", MAX_DESCRIPTOR)
    if raw is None:
        raise SiteError(f"{name} {version}: {meta}/bundle.json is missing")
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    if digest != receipt.digest:
        raise CheckFailed(
            f"{name} {version}: {meta}/bundle.json is not the one that was installed "
            f"({digest}, the receipt says {receipt.digest})",
            hint=f"`airgap audit --site {prefix_path}` shows what changed; install the bundle again",
        )
    try:
        descriptor = parse_descriptor(raw)
    except DescriptorError as exc:
        raise CheckFailed(f"{name} {version}: {exc.message}", hint=exc.hint) from None
    return Installed(descriptor, version, root / layout.SITE_BUNDLES_DIR / name / version)


# ----------------------------------------------------------------------------- pure parts


def k8s_name(text: str) -> str:
    """A DNS-1123 label from a bundle name (and target id)."""
    s = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return (s[:63].rstrip("-")) or "airgap"


def device_resource(
    vendor: str, chips: tuple[str, ...], override: str | None, plugin: str = "mind-cluster"
) -> str | None:
    """The device-plugin resource the target's chips are requested by (None: no device)."""
    if override:
        return override
    if vendor == "none":
        return None
    if vendor == "nvidia":
        return NVIDIA_RESOURCE
    table = HAMI_RESOURCES if plugin == "hami" else MIND_CLUSTER_RESOURCES
    names = {table.get(c) for c in chips}
    if None in names or not names:
        unknown = ", ".join(c for c in chips if c not in table) or "none listed"
        raise RenderError(
            f"no {plugin} device-plugin resource is known for chip(s) {unknown}",
            hint="set serve.device_resource in the manifest to the resource your cluster offers",
        )
    if len(names) > 1:
        raise RenderError(
            f"the target's chips are requested by different resources ({', '.join(sorted(n for n in names if n))})",
            hint="set serve.device_resource in the manifest to the one this deployment uses",
        )
    return names.pop()


def image_reference(
    descriptor: Descriptor, serve: ServeSpec, registry: str | None
) -> tuple[str, list[str]]:
    """The serving image by digest (and notes)."""
    images = [i.to_json() for i in descriptor.images]
    found = find_image(serve.image, images)
    if found is None:
        raise RenderError(
            f"serve.image {serve.image!r} is neither a role nor a ref of the bundle's images",
            hint="the bundle was built without its serving image; add it under runtime.images",
        )
    ref = parse_reference(str(found["ref"]))
    host = registry or ref.host
    repo = f"{host}/{ref.repository}"
    digest = found.get("manifest_digest")
    if isinstance(digest, str) and digest:
        return f"{repo}@{digest}", []
    tagged = f"{repo}:{ref.tag or 'latest'}"
    return tagged, [
        f"the image {found['ref']} came from a Docker engine or a docker save archive and has no "
        f"registry manifest digest in the bundle: it is named by tag ({tagged})"
    ]


def _env(serve: ServeSpec) -> list[tuple[str, str]]:
    """(name, value) in the order Kubernetes defines them (a value sees those before it)."""
    pairs = [(HOST_VAR, "0.0.0.0"), (PORT_VAR, str(serve.port))]
    pairs += [(k, v) for k, v in sorted(serve.env.items()) if k not in (HOST_VAR, PORT_VAR)]
    return pairs


def _expanded(serve: ServeSpec) -> dict[str, str]:
    """The environment with $(NAME) expanded, in Kubernetes' order (a value sees those before)."""
    values: dict[str, str] = {}
    for k, v in _env(serve):
        values[k] = expand(v, values)
    return values


def _k8s_dollars(text: str) -> str:
    """Kubernetes reads ``$$`` as ``$`` in command, args and env values."""
    return text.replace("$", "$$")


def _nodes(descriptor: Descriptor, nodes: int | None) -> int:
    if nodes is not None:
        return nodes
    value = getattr(descriptor.target, "nodes", None)  # targets gain `nodes` in another change
    return value if isinstance(value, int) and value > 0 else 1


def kube_documents(
    installed: Installed,
    *,
    registry: str | None = None,
    host_port: int | None = None,
    nodes: int | None = None,
    device_plugin: str = "mind-cluster",
) -> tuple[list[dict[str, Any]], str, list[str]]:
    """(documents, image, notes) of a Kubernetes Deployment for the installed bundle."""
    d = installed.descriptor
    serve = _serve(d)
    image, notes = image_reference(d, serve, registry)
    acc = d.target.accelerator
    resource = device_resource(acc.vendor, acc.chips, serve.device_resource, device_plugin)
    spans = _nodes(d, nodes)
    name = k8s_name(f"{d.name}-{d.bundle.target}" if d.bundle.target else d.name)
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/version": _label_value(d.version),
        "app.kubernetes.io/managed-by": "airgap",
    }
    selector = {"app.kubernetes.io/name": name}
    weights = str(installed.version_dir / layout.MODEL_INSTALL_DIR)
    port: dict[str, Any] = {"name": "http", "containerPort": serve.port, "protocol": "TCP"}
    if host_port is not None:
        port.update({"hostPort": host_port, "hostIP": "127.0.0.1"})
    container: dict[str, Any] = {
        "name": "server",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
    }
    # $(NAME) expanded here, not left to the kubelet: the values are known now, and not every
    # runtime that plays a Deployment expands them (podman kube play 4.x passes them on as written);
    # a `$` left over is written `$$`, which Kubernetes reads as one `$`
    values = _expanded(serve)
    if serve.command:
        container["command"] = [_k8s_dollars(expand(c, values)) for c in serve.command]
    if serve.args is not None:
        container["args"] = [_k8s_dollars(expand(a, values)) for a in serve.args]
    container["env"] = [{"name": k, "value": _k8s_dollars(v)} for k, v in values.items()]
    container["ports"] = [port]
    ready = serve.readiness
    probe = {"httpGet": {"path": ready.path, "port": serve.port}}
    period = 2
    container["startupProbe"] = {
        **probe,
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": max(1, -(-ready.timeout_s // period)),
    }
    container["readinessProbe"] = {
        **probe,
        "periodSeconds": 5,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }
    if not 200 <= ready.status < 400:
        notes.append(
            f"readiness expects HTTP {ready.status}; a Kubernetes httpGet probe passes on 200-399 only"
        )
    mounts = [{"name": "weights", "mountPath": serve.weights, "readOnly": True}]
    volumes: list[dict[str, Any]] = [
        {"name": "weights", "hostPath": {"path": weights, "type": "Directory"}}
    ]
    if resource is not None:
        count = acc.count
        container["resources"] = {"limits": {resource: count}, "requests": {resource: count}}
    if acc.vendor == "huawei":
        for n, path in enumerate(ASCEND_DRIVER_MOUNTS):
            vol = f"ascend-driver-{n}"
            mounts.append({"name": vol, "mountPath": path, "readOnly": True})
            volumes.append({"name": vol, "hostPath": {"path": path}})
    pod: dict[str, Any] = {}
    if spans > 1:
        pod["hostNetwork"] = True
        pod["dnsPolicy"] = "ClusterFirstWithHostNet"
        pod["affinity"] = {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": selector},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        }
        if acc.vendor == "huawei":
            mounts.append({"name": "hccn-conf", "mountPath": HCCN_CONF, "readOnly": True})
            volumes.append({"name": "hccn-conf", "hostPath": {"path": HCCN_CONF, "type": "File"}})
            mounts.append({"name": "hccn-tool", "mountPath": HCCN_TOOL, "readOnly": True})
            volumes.append({"name": "hccn-tool", "hostPath": {"path": HCCN_TOOL, "type": "File"}})
        notes.append(
            f"the target spans {spans} nodes: {spans} pods, one per node (host network); "
            "the server's own multi-node settings (ranks, master address) come from serve.env"
        )
    container["volumeMounts"] = mounts
    container["securityContext"] = {"allowPrivilegeEscalation": False, **_run_as(d, kube=True)}
    pod["containers"] = [container]
    pod["volumes"] = volumes
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                "airgap.dev/bundle": f"{d.name} {d.version}",
                "airgap.dev/weights": weights,
            },
        },
        "spec": {
            "replicas": spans,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }
    return [deployment], image, notes


def compose_document(
    installed: Installed,
    *,
    registry: str | None = None,
    host_port: int | None = None,
    nodes: int | None = None,
) -> tuple[dict[str, Any], str, list[str]]:
    """(document, image, notes) of a compose file for the installed bundle."""
    d = installed.descriptor
    serve = _serve(d)
    image, notes = image_reference(d, serve, registry)
    acc = d.target.accelerator
    name = k8s_name(f"{d.name}-{d.bundle.target}" if d.bundle.target else d.name)
    values = _expanded(serve)
    svc: dict[str, Any] = {"image": image, "pull_policy": "missing"}
    if serve.command:
        svc["entrypoint"] = [_dollars(expand(c, values)) for c in serve.command]
    if serve.args is not None:
        svc["command"] = [_dollars(expand(a, values)) for a in serve.args]
    svc["environment"] = {k: _dollars(v) for k, v in values.items()}
    spans = _nodes(d, nodes)
    if spans > 1:
        svc["network_mode"] = "host"
        notes.append(f"the target spans {spans} nodes: run this file on each node (host network)")
    else:
        svc["ports"] = [f"127.0.0.1:{host_port or serve.port}:{serve.port}"]
    weights = str(installed.version_dir / layout.MODEL_INSTALL_DIR)
    volumes: list[dict[str, Any]] = [
        {"type": "bind", "source": weights, "target": serve.weights, "read_only": True}
    ]
    if acc.vendor == "nvidia":
        svc["deploy"] = {
            "resources": {
                "reservations": {
                    "devices": [{"driver": "nvidia", "count": acc.count, "capabilities": ["gpu"]}]
                }
            }
        }
    elif acc.vendor == "huawei":
        svc["runtime"] = "ascend"
        svc["environment"]["ASCEND_VISIBLE_DEVICES"] = (
            "0" if acc.count == 1 else f"0-{acc.count - 1}"
        )
        for path in ASCEND_DRIVER_MOUNTS:
            volumes.append({"type": "bind", "source": path, "target": path, "read_only": True})
        if spans > 1:
            for path in (HCCN_CONF, HCCN_TOOL):
                volumes.append({"type": "bind", "source": path, "target": path, "read_only": True})
        notes.append(
            "Ascend devices through the ascend docker runtime (ASCEND_VISIBLE_DEVICES); "
            "without it, list /dev/davinci* and the manager devices under devices:"
        )
    svc["volumes"] = volumes
    user = _run_as(d, kube=False)
    if user:
        svc["user"] = user["user"]
    svc["labels"] = {
        "airgap.dev/bundle": f"{d.name} {d.version}",
        "airgap.dev/readiness": f"GET {serve.readiness.path} -> {serve.readiness.status}",
    }
    notes.append(
        f"compose has no HTTP health check without a client in the image: readiness is "
        f"GET {serve.readiness.path} on port {serve.port} (airgap probe --serve checks it)"
    )
    return {"name": name, "services": {"server": svc}}, image, notes


def _run_as(d: Descriptor, *, kube: bool) -> dict[str, Any]:
    """The serving user ``serve.install`` gave the files to (install.modes), as Kubernetes'
    runAsUser/runAsGroup or compose's ``user``: the server then reads what was laid out for it."""
    m = d.install.modes
    if m is None or (m.uid is None and m.gid is None):
        return {}
    if kube:
        out: dict[str, Any] = {}
        if m.uid is not None:
            out["runAsUser"] = m.uid
        if m.gid is not None:
            out["runAsGroup"] = m.gid
        return out
    uid = str(m.uid) if m.uid is not None else "0"
    return {"user": uid + (f":{m.gid}" if m.gid is not None else "")}


def _dollars(text: str) -> str:
    """Compose reads ``$$`` as ``$`` and interpolates any other ``$``."""
    return text.replace("$", "$$")


def _label_value(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:63]
    return s.strip("-._") or "unknown"


def _serve(d: Descriptor) -> ServeSpec:
    if d.serve is None:
        raise RenderError(
            f"{d.name} {d.version} has no serve section: nothing says how to serve it",
            hint="add `serve:` to the manifest (image, port, readiness, checks) and build again",
        )
    return d.serve


def to_yaml(documents: Sequence[Mapping[str, Any]]) -> str:
    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # no &id001 / *id001 in what people read
            return True

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        # quote what YAML 1.1 readers would take for something else (yes, on, 0.10, 010)
        style = "'" if _ambiguous(value) else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    return "---\n".join(
        yaml.dump(
            dict(doc),
            Dumper=_Dumper,
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=False,
        )
        for doc in documents
    )


_AMBIGUOUS = re.compile(
    r"(?i:y|n|yes|no|on|off|true|false|null|~)|[-+]?[0-9][0-9_.:eE+-]*|0[xob][0-9a-fA-F_]+|"
)


def _ambiguous(value: str) -> bool:
    return _AMBIGUOUS.fullmatch(value) is not None


# ----------------------------------------------------------------------------- the command


def render(
    prefix: Path,
    name: str,
    fmt: str,
    *,
    registry: str | None = None,
    host_port: int | None = None,
    nodes: int | None = None,
    device_plugin: str = "mind-cluster",
) -> Rendered:
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if device_plugin not in DEVICE_PLUGINS:
        raise InputError(
            f"--device-plugin {device_plugin!r}: expected one of {', '.join(DEVICE_PLUGINS)}"
        )
    if host_port is not None and not 0 < host_port < 65536:
        raise InputError(f"--host-port {host_port}: not a TCP port")
    if nodes is not None and nodes < 1:
        raise InputError(f"--nodes {nodes}: at least 1")
    if registry is not None and not re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?", registry):
        raise InputError(f"--registry {registry!r}: expected HOST[:PORT]")
    installed = read_installed(prefix, name)
    d = installed.descriptor
    if fmt == "kube":
        documents, image, notes = kube_documents(
            installed,
            registry=registry,
            host_port=host_port,
            nodes=nodes,
            device_plugin=device_plugin,
        )
    else:
        document, image, notes = compose_document(
            installed, registry=registry, host_port=host_port, nodes=nodes
        )
        documents = [document]
    header = (
        f"# {d.name} {d.version}"
        + (f" [{d.bundle.target}]" if d.bundle.target else "")
        + f": rendered by airgap deploy render --format {fmt} from {installed.version_dir}\n"
    )
    return Rendered(
        fmt,
        d.name,
        d.version,
        d.bundle.target,
        image,
        str(installed.version_dir / layout.MODEL_INSTALL_DIR),
        header + to_yaml(documents),
        documents,
        notes,
    )
