"""``probe --cluster REPORT...``: the probe reports of every node of a multi-node deployment,
compared. Each node runs ``airgap probe --bundle B --report NODE.json`` (a bundle with
``nodes: N`` makes it record the interconnect too); this reads the reports and says, check by
check, which node differs.

Checked: the node count against the bundle's ``nodes``; one bundle (the same content digest and
weights) everywhere; each node's own verdict; the same driver, firmware and CANN; on Ascend every
NPU's RoCE address unique across the cluster, its link UP, its network health ``Success`` and one
TLS setting everywhere (``hccn_tool``); on NVIDIA the InfiniBand ports up with one rate
(``ibstat``) and the same GPU topology (``nvidia-smi topo -m``).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from . import __version__
from .verdict import FAIL, NOT_RUN, PASS, SEVERITY, STATUSES, WARN, Check, exit_code, worst

SCHEMA_ID = "airgap/probe-cluster/v1"
REPORT_SCHEMA = "airgap/probe-report/v1"
MAX_REPORT = 64 << 20


class ClusterError(Exception):
    """A report that cannot be used (exit 2)."""


@dataclass
class Node:
    """What the comparison reads from one node's report (None: the report does not say)."""

    name: str
    path: str
    status: str
    vendor: str | None
    bundle: dict[str, Any] | None
    driver: str | None
    firmware: str | None
    cann: str | None
    npus: int
    gpus: int
    npu_net: list[dict[str, Any]] = field(default_factory=list)
    npu_net_probed: bool = False
    ib_ports: list[dict[str, Any]] = field(default_factory=list)
    ib_probed: bool = False
    topology: list[list[str]] | None = None


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def read_report(path: str) -> dict[str, Any]:
    try:
        if os.path.getsize(path) > MAX_REPORT:
            raise ClusterError(f"{path}: larger than 64 MiB: not a probe report")
        with open(path, "rb") as fh:
            doc = json.loads(fh.read(MAX_REPORT + 1).decode("utf-8"))
    except OSError as exc:
        raise ClusterError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ClusterError(f"{path}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != REPORT_SCHEMA:
        raise ClusterError(
            f'{path}: not a probe report (expected "schema": "{REPORT_SCHEMA}"; '
            "make one with airgap probe --report FILE)"
        )
    for key in ("host", "nvidia", "ascend", "summary"):
        if not isinstance(doc.get(key), dict):
            raise ClusterError(f"{path}: bad probe report: {key} must be an object")
    return doc


def _own_status(doc: dict[str, Any]) -> str:
    """The node's verdict without its "cluster.nodes" NOT RUN (which this comparison answers)."""
    statuses = [
        c.get("status")
        for c in _list(doc.get("checks"))
        if isinstance(c, dict) and c.get("id") != "cluster.nodes"
    ]
    if not isinstance(doc.get("checks"), list):
        status = _str(_get(doc, "summary", "status"))
        return status if status in STATUSES else NOT_RUN
    known = [s for s in statuses if s in STATUSES]
    if len(known) != len(statuses):
        return NOT_RUN
    return max(known, key=lambda s: SEVERITY[s], default=PASS)


def node_of(doc: dict[str, Any], path: str) -> Node:
    """The facts of one report, typed."""
    bundle = doc.get("bundle") if isinstance(doc.get("bundle"), dict) else None
    vendor = _str(_get(bundle, "vendor"))
    nv, a = doc["nvidia"], doc["ascend"]
    if vendor is None:
        vendor = "huawei" if _get(a, "present") is True else "nvidia" if nv.get("present") else None
    if vendor == "huawei":
        driver = _str(_get(a, "npu_smi", "version")) or _str(_get(a, "driver", "version"))
        firmware = _str(_get(a, "firmware", "version"))
        cann = _str(_get(a, "cann", "active", "version"))
        if cann is None:
            installs = [_str(_get(c, "version")) for c in _list(_get(a, "cann", "installs"))]
            cann = installs[0] if len(installs) == 1 else None
    else:
        driver = _str(_get(nv, "driver", "version"))
        firmware = cann = None
    node = Node(
        name=_str(_get(doc, "host", "hostname")) or os.path.basename(path),
        path=path,
        status=_own_status(doc),
        vendor=vendor,
        bundle=bundle,
        driver=driver,
        firmware=firmware,
        cann=cann,
        npus=len(_list(a.get("npus"))),
        gpus=len(_list(nv.get("gpus"))),
    )
    net = a.get("network")
    node.npu_net_probed = bool(_list(net))
    node.npu_net = [n for n in _list(net) if isinstance(n, dict)]
    ib = _get(nv, "interconnect", "ibstat", "status")
    node.ib_probed = ib == "ok"
    node.ib_ports = [p for p in _list(_get(nv, "interconnect", "ports")) if isinstance(p, dict)]
    if _get(nv, "interconnect", "topology", "status") == "ok":
        matrix = _get(nv, "interconnect", "topology", "matrix")
        node.topology = matrix if isinstance(matrix, list) else None
    return node


# ---------------------------------------------------------------- comparisons


def _show(v: Any) -> str:
    if v is None:
        return "unknown"
    if isinstance(v, list):
        return ", ".join(map(str, v)) or "none"
    return str(v)


def _differs(
    nodes: list[Node], value: Callable[[Node], Any], what: str, show: Callable[[Any], str]
) -> str | None:
    """None when every node has one value; else who differs, against the majority."""
    values = {n.name: value(n) for n in nodes}
    counts = Counter(json.dumps(v, sort_keys=True) for v in values.values())
    if len(counts) <= 1:
        return None
    top, top_n = counts.most_common(1)[0]
    if list(counts.values()).count(top_n) > 1:  # no majority: name every node's value
        return "; ".join(f"{name} has {what} {show(v)}" for name, v in values.items())
    major = json.loads(top)
    odd = [(name, v) for name, v in values.items() if json.dumps(v, sort_keys=True) != top]
    return "; ".join(f"{name} has {what} {show(v)}" for name, v in odd) + (
        f" (the other {len(nodes) - len(odd)} have {show(major)})"
    )


def _same(
    cid: str,
    title: str,
    nodes: list[Node],
    value: Callable[[Node], Any],
    what: str,
    remedy: str,
    show: Callable[[Any], str] = _show,
) -> Check:
    diff = _differs(nodes, value, what, show)
    if diff is None:
        v = value(nodes[0])
        if v is None:
            return Check(cid, title, NOT_RUN, f"no node's report says its {what}")
        return Check(cid, title, PASS, f"{what} {show(v)} on every node ({len(nodes)})")
    return Check(cid, title, FAIL, diff, remedy)


def _topology(matrix: Any) -> str:
    """A GPU link matrix in a few words: ``8 GPUs linked by NV18``."""
    if not isinstance(matrix, list):
        return "unknown"
    links = sorted({str(c) for row in matrix if isinstance(row, list) for c in row if c != "X"})
    return f"{len(matrix)} GPUs linked by {', '.join(links) or 'nothing'}"


def _topology_check(nodes: list[Node]) -> Check:
    """The GPU link matrices: the nodes whose matrix is not the majority's, by the pairs."""
    cid, title = "cluster.topology", "GPU topology"
    remedy = "use nodes of one kind: the same GPUs linked the same way (see nvidia-smi topo -m)"
    counts = Counter(json.dumps(n.topology) for n in nodes)
    if len(counts) == 1:
        return Check(
            cid, title, PASS, f"{_topology(nodes[0].topology)} on every node ({len(nodes)})"
        )
    major: Any = json.loads(counts.most_common(1)[0][0])
    parts = []
    for n in nodes:
        m = n.topology
        if json.dumps(m) == json.dumps(major):
            continue
        if not isinstance(m, list) or len(m) != len(major):
            parts.append(f"{n.name} has {_topology(m)} (the others {_topology(major)})")
            continue
        cells = [
            f"GPU{i}-GPU{j} {m[i][j]} (others {major[i][j]})"
            for i in range(len(m))
            for j in range(i + 1, len(m))
            if isinstance(m[i], list) and len(m[i]) > j and m[i][j] != major[i][j]
        ]
        parts.append(f"{n.name} differs: {', '.join(cells[:4])}{' ...' if len(cells) > 4 else ''}")
    return Check(cid, title, FAIL, "; ".join(parts), remedy)


def _bundle_checks(nodes: list[Node]) -> list[Check]:
    out: list[Check] = []
    with_bundle = [n for n in nodes if n.bundle is not None]
    if not with_bundle:
        return [
            Check(
                "cluster.bundle",
                "bundle",
                NOT_RUN,
                "no report names a bundle: the nodes were probed without --bundle",
                "probe every node with --bundle B --report FILE",
            )
        ]
    want = max((_get(n.bundle, "nodes") or 1) for n in with_bundle)
    if not isinstance(want, int) or want < 1:
        want = 1
    if len(nodes) == want:
        out.append(
            Check("cluster.nodes", "nodes", PASS, f"{len(nodes)} nodes, the bundle needs {want}")
        )
    else:
        out.append(
            Check(
                "cluster.nodes",
                "nodes",
                FAIL,
                f"{len(nodes)} node report{'s' if len(nodes) != 1 else ''}, the bundle needs {want} nodes",
                "probe every node of the deployment and pass all reports",
            )
        )
    out.append(
        _same(
            "cluster.bundle",
            "bundle",
            nodes,
            lambda n: _get(n.bundle, "digest"),
            "bundle digest",
            "install the same bundle on every node (airgap digest BUNDLE names it)",
        )
    )
    out.append(
        _same(
            "cluster.weights",
            "weights",
            nodes,
            lambda n: _get(n.bundle, "weights_digest"),
            "weights digest",
            "install the same bundle on every node: the weights must be identical",
        )
    )
    return out


def _verdicts(nodes: list[Node]) -> Check:
    bad = [n for n in nodes if n.status in (FAIL, NOT_RUN, WARN)]
    failed = [n for n in bad if n.status == FAIL]
    if failed:
        return Check(
            "cluster.verdicts",
            "node verdicts",
            FAIL,
            "FAIL on " + ", ".join(n.name for n in failed),
            "fix each node until its own probe passes (see its report's checks)",
        )
    if bad:
        return Check(
            "cluster.verdicts",
            "node verdicts",
            WARN,
            ", ".join(f"{n.status} on {n.name}" for n in bad),
            "see each node's report",
        )
    return Check("cluster.verdicts", "node verdicts", PASS, f"every node passed ({len(nodes)})")


def _stack_checks(nodes: list[Node], vendor: str | None) -> list[Check]:
    out = [
        _same(
            "cluster.driver",
            "driver",
            nodes,
            lambda n: n.driver,
            "driver",
            "install one driver version on every node (and reboot where it is pending)",
        )
    ]
    if vendor == "huawei":
        out.append(
            _same(
                "cluster.firmware",
                "firmware",
                nodes,
                lambda n: n.firmware,
                "firmware",
                "install the firmware released with the driver on every node",
            )
        )
        out.append(
            _same(
                "cluster.cann",
                "CANN",
                nodes,
                lambda n: n.cann,
                "CANN",
                "install one CANN version on every node and source its set_env.sh",
            )
        )
    return out


def _npu_network(nodes: list[Node]) -> list[Check]:
    if not all(n.npu_net_probed for n in nodes):
        missing = [n.name for n in nodes if not n.npu_net_probed]
        return [
            Check(
                "cluster.npu_network",
                "NPU network",
                NOT_RUN,
                f"no hccn_tool results from {', '.join(missing)}",
                "probe each node with the bundle (nodes > 1 makes the probe run hccn_tool), as root",
            )
        ]
    out: list[Check] = []
    owners: dict[str, list[str]] = {}
    no_ip: list[str] = []
    for n in nodes:
        for p in n.npu_net:
            where = f"{n.name} NPU {p.get('device')}"
            ip = _str(p.get("ip"))
            if ip is None:
                no_ip.append(where)
            else:
                owners.setdefault(ip, []).append(where)
    dup = {ip: who for ip, who in owners.items() if len(who) > 1}
    if dup:
        text = "; ".join(f"{ip} on {' and '.join(who)}" for ip, who in sorted(dup.items()))
        out.append(
            Check(
                "cluster.device_ips",
                "NPU addresses",
                FAIL,
                f"device IPs used twice: {text}",
                "give every NPU of the cluster its own address: hccn_tool -i N -ip -s address A "
                "netmask M",
            )
        )
    elif no_ip:
        out.append(
            Check(
                "cluster.device_ips",
                "NPU addresses",
                FAIL,
                f"no device IP on {', '.join(no_ip[:6])}{' ...' if len(no_ip) > 6 else ''}",
                "set one: hccn_tool -i N -ip -s address A netmask M",
            )
        )
    else:
        out.append(
            Check(
                "cluster.device_ips",
                "NPU addresses",
                PASS,
                f"{len(owners)} device IPs, each used once",
            )
        )
    down = [
        f"{n.name} NPU {p.get('device')} ({p.get('link') or 'unknown'})"
        for n in nodes
        for p in n.npu_net
        if p.get("link") != "UP"
    ]
    unhealthy = [
        f"{n.name} NPU {p.get('device')} ({p.get('health') or 'unknown'})"
        for n in nodes
        for p in n.npu_net
        if p.get("health") != "Success"
    ]
    if down:
        out.append(
            Check(
                "cluster.links",
                "NPU links",
                FAIL,
                f"link not UP: {', '.join(down[:6])}{' ...' if len(down) > 6 else ''}",
                "check the cables and the switch ports; hccn_tool -i N -link -g must say UP",
            )
        )
    elif unhealthy:
        out.append(
            Check(
                "cluster.links",
                "NPU links",
                FAIL,
                f"network health not Success: {', '.join(unhealthy[:6])}"
                + (" ..." if len(unhealthy) > 6 else ""),
                "set each NPU's detect address (hccn_tool -i N -netdetect -s address A) and check "
                "the route to it; hccn_tool -i N -net_health -g must say Success",
            )
        )
    else:
        total = sum(len(n.npu_net) for n in nodes)
        out.append(
            Check(
                "cluster.links", "NPU links", PASS, f"{total} NPU links UP, network health Success"
            )
        )
    tls = {n.name: sorted({_tls_word(p.get("tls")) for p in n.npu_net}) for n in nodes}
    mixed = [name for name, values in tls.items() if len(values) > 1]
    if mixed:
        out.append(
            Check(
                "cluster.tls",
                "NPU TLS",
                FAIL,
                f"TLS is on for some NPUs and off for others on {', '.join(mixed)}",
                "one TLS setting for every NPU of the cluster: hccn_tool -i N -tls -s enable 0 "
                "(or 1) on each",
            )
        )
    else:
        out.append(
            _same(
                "cluster.tls",
                "NPU TLS",
                nodes,
                lambda n: tls[n.name][0] if tls[n.name] else None,
                "TLS",
                "one TLS setting for every NPU of the cluster: hccn_tool -i N -tls -s enable 0 "
                "(or 1) on each",
            )
        )
    return out


def _rates(value: Any) -> str:
    """``8 x 400 Gb/s`` for a list of port rates."""
    if not isinstance(value, list) or not value:
        return "none"
    return ", ".join(f"{n} x {rate}" for rate, n in sorted(Counter(value).items()))


def _tls_word(value: Any) -> str:
    return "on" if value is True else "off" if value is False else "unknown"


def _nvidia_network(nodes: list[Node]) -> list[Check]:
    out: list[Check] = []
    if not all(n.ib_probed for n in nodes):
        missing = [n.name for n in nodes if not n.ib_probed]
        out.append(
            Check(
                "cluster.infiniband",
                "InfiniBand",
                NOT_RUN,
                f"no ibstat results from {', '.join(missing)}",
                "install infiniband-diags on every node and probe it with the bundle",
            )
        )
    else:
        down = [
            f"{n.name} {p.get('ca')} port {p.get('port')} ({p.get('state')}, {p.get('physical_state')})"
            for n in nodes
            for p in n.ib_ports
            if p.get("link_layer") in (None, "InfiniBand")
            and (p.get("state") != "Active" or p.get("physical_state") != "LinkUp")
        ]
        if down:
            out.append(
                Check(
                    "cluster.infiniband",
                    "InfiniBand",
                    FAIL,
                    f"ports not Active/LinkUp: {', '.join(down[:6])}{' ...' if len(down) > 6 else ''}",
                    "check the cables and the subnet manager (opensm or the switch's); ibstat must "
                    "show State: Active, Physical state: LinkUp",
                )
            )
        else:
            out.append(
                _same(
                    "cluster.infiniband",
                    "InfiniBand",
                    nodes,
                    lambda n: sorted(
                        f"{p.get('rate')} Gb/s"
                        for p in n.ib_ports
                        if p.get("link_layer") in (None, "InfiniBand")
                    ),
                    "active InfiniBand ports",
                    "give every node the same InfiniBand ports and rates",
                    _rates,
                )
            )
    if all(n.topology is not None for n in nodes):
        out.append(_topology_check(nodes))
    else:
        missing = [n.name for n in nodes if n.topology is None]
        out.append(
            Check(
                "cluster.topology",
                "GPU topology",
                NOT_RUN,
                f"no nvidia-smi topo -m results from {', '.join(missing)}",
                "probe each node with the bundle (nodes > 1 makes the probe record the topology)",
            )
        )
    return out


def compare(nodes: list[Node]) -> list[Check]:
    names = Counter(n.name for n in nodes)
    twice = [name for name, c in names.items() if c > 1]
    checks: list[Check] = []
    if twice:
        checks.append(
            Check(
                "cluster.hosts",
                "hosts",
                FAIL,
                f"the same host twice: {', '.join(twice)}",
                "pass one report per node",
            )
        )
    checks += _bundle_checks(nodes)
    checks.append(_verdicts(nodes))
    vendors = {n.vendor for n in nodes}
    vendor = next(iter(vendors)) if len(vendors) == 1 else None
    if len(vendors) > 1:
        checks.append(
            Check(
                "cluster.vendor",
                "accelerators",
                FAIL,
                "; ".join(f"{n.name} has {n.vendor or 'no accelerator'}" for n in nodes),
                "use nodes with the same accelerators",
            )
        )
    checks += _stack_checks(nodes, vendor)
    checks.append(
        _same(
            "cluster.devices",
            "devices",
            nodes,
            lambda n: n.npus if vendor == "huawei" else n.gpus,
            "devices",
            "give every node the same devices (see each node's accelerator.count)",
            lambda v: f"{v} {'NPU chips' if vendor == 'huawei' else 'GPUs'}",
        )
    )
    if vendor == "huawei":
        checks += _npu_network(nodes)
    elif vendor == "nvidia":
        checks += _nvidia_network(nodes)
    return checks


def build(nodes: list[Node], checks: list[Check]) -> dict[str, Any]:
    counts = {s: 0 for s in STATUSES}
    for c in checks:
        counts[c.status] += 1
    return {
        "schema": SCHEMA_ID,
        "probe": {"version": __version__},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "nodes": [
            {
                "name": n.name,
                "report": n.path,
                "status": n.status,
                "vendor": n.vendor,
                "driver": n.driver,
                "firmware": n.firmware,
                "cann": n.cann,
            }
            for n in nodes
        ],
        "checks": [c.to_json() for c in checks],
        "summary": {"status": worst(checks), "exit_code": exit_code(checks), "counts": counts},
    }


def render_text(doc: dict[str, Any]) -> str:
    lines = [f"airgap probe {doc['probe']['version']}: {len(doc['nodes'])} nodes"]
    for n in doc["nodes"]:
        stack = ", ".join(f"{k} {n[k]}" for k in ("driver", "firmware", "cann") if n[k] is not None)
        lines.append(f"  {n['name']:<20} {n['status']:<8} {stack}  ({n['report']})")
    lines.append("")
    checks = doc["checks"]
    width = max((len(c["title"]) for c in checks), default=5)
    lines.append(f"  {'STATUS':<8} {'CHECK':<{width}}  REASON")
    for c in checks:
        lines.append(f"  {c['status']:<8} {c['title']:<{width}}  {c['reason']}")
        if c["remedy"]:
            lines.append(f"  {'':<8} {'':<{width}}  -> {c['remedy']}")
    s = doc["summary"]
    n = s["counts"]
    lines.append("")
    lines.append(
        f"Result: {s['status']} ({n[FAIL]} failed, {n[WARN]} warnings, {n[NOT_RUN]} not run, "
        f"{n[PASS]} passed)"
    )
    return "\n".join(lines) + "\n"


def run(paths: list[str]) -> dict[str, Any]:
    """Read and compare the reports; ClusterError on one that cannot be used."""
    if len(paths) < 2:
        raise ClusterError("--cluster needs the reports of at least two nodes")
    nodes = [node_of(read_report(p), p) for p in paths]
    return build(nodes, compare(nodes))
