"""Parsers for the interconnect: the NVSwitch fabric (``nvidia-smi -q``, Fabric Manager), GPU
topology (``nvidia-smi topo -m``), InfiniBand (``ibstat``) and the Ascend NPUs' RoCE ports
(``hccn_tool``). Pure functions of text; each raises :class:`ParseError` on output it cannot read.

Formats (as the tools print them):

- ``nvidia-smi -q``: ``GPU 00000000:18:00.0`` then indented ``Key : Value`` lines; sections
  (``MIG Mode``, ``Fabric``) hold deeper ones: ``    Fabric`` / ``        State  : Completed``
  / ``        Status : Success`` (NVSwitch systems, R535 and later; ``In Progress`` while
  Fabric Manager has not set the GPU up, ``N/A`` where there is no fabric).
- ``nv-fabricmanager --version``: ``Fabric Manager version is : 550.54.15``.
- Fabric Manager's log (``/var/log/fabricmanager.log``): ``[ERROR] ... fabric manager NVSwitch
  driver interface version 550.54.15 don't match with NVSwitch driver version 550.90.07. Please
  update with matching NVIDIA driver package``.
- ``nvidia-smi topo -m``: a tab-separated matrix (``GPU0 ... NIC0 ... CPU Affinity``), ``X`` on
  the diagonal, ``NV18`` / ``PIX`` / ``SYS`` ... between devices, then a legend with ``NIC0: mlx5_0``.
- ``ibstat``: ``CA 'mlx5_0'`` blocks with ``Port 1:`` and ``State: Active``,
  ``Physical state: LinkUp``, ``Rate: 400``, ``Link layer: InfiniBand``.
- ``hccn_tool -i N -ip -g``: ``ipaddr:29.0.0.1`` / ``netmask:255.255.255.0``;
  ``-link -g``: ``link status: UP``; ``-net_health -g``: ``net health status: Success``;
  ``-tls -g``: ``dev_id:0, tls switch[0](0:disable, 1:enable), ...``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .parse import ParseError, snippet

# ---------------------------------------------------------------- nvidia-smi -q


@dataclass
class QueryGpu:
    bus_id: str
    product: str | None = None
    mig_current: str | None = None
    mig_pending: str | None = None
    fabric_state: str | None = None  # Completed | In Progress | Not Started | Not Supported | N/A
    fabric_status: str | None = None  # Success | N/A | an error


@dataclass
class Query:
    driver: str | None
    cuda: str | None
    gpus: list[QueryGpu] = field(default_factory=list)


_Q_LINE = re.compile(r"( *)([^:]+?)\s*:\s?(.*)")


def parse_nvidia_smi_query(text: str) -> Query:
    """``nvidia-smi -q``: per GPU its product name, MIG mode and fabric state."""
    q = Query(None, None)
    gpu: QueryGpu | None = None
    section: str | None = None
    for raw in text.splitlines():
        if not raw.strip() or raw.strip().startswith("="):
            continue
        m = re.fullmatch(
            r"GPU ([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])\s*", raw
        )
        if m:
            gpu = QueryGpu(m.group(1))
            q.gpus.append(gpu)
            section = None
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        kv = _Q_LINE.fullmatch(raw)
        if kv is None or not raw.rstrip().count(":"):
            if indent == 4:
                section = raw.strip()
            continue
        key, value = kv.group(2).strip(), kv.group(3).strip()
        if indent == 0:
            if key == "Driver Version":
                q.driver = value or None
            elif key == "CUDA Version":
                q.cuda = value or None
            continue
        if gpu is None:
            continue
        if indent == 4:
            section = None
            if key == "Product Name":
                gpu.product = value
        elif indent == 8 and section == "MIG Mode":
            if key == "Current":
                gpu.mig_current = value
            elif key == "Pending":
                gpu.mig_pending = value
        elif indent == 8 and section == "Fabric":
            if key == "State":
                gpu.fabric_state = value
            elif key == "Status":
                gpu.fabric_status = value
    if not q.gpus:
        raise ParseError(f"nvidia-smi -q listed no GPU ({snippet(text)})")
    return q


# ---------------------------------------------------------------- Fabric Manager


def parse_fabricmanager_version(text: str) -> str:
    m = re.search(r"Fabric Manager version is\s*:\s*(\d+(?:\.\d+)+)", text)
    if not m:
        raise ParseError(f"not nv-fabricmanager --version ({snippet(text)})")
    return m.group(1)


@dataclass
class FmMismatch:
    line: str
    fm_version: str | None
    driver_version: str | None


_FM_MISMATCH = re.compile(
    r"driver interface version\s+(\S+?)\s+(?:don't|do not|does not) match with .*?"
    r"driver version\s+(\S+?)\.?(?:\s|$)",
    re.IGNORECASE,
)


def fabricmanager_log_mismatch(text: str) -> FmMismatch | None:
    """The last line of Fabric Manager's log saying its version is not the driver's."""
    found: FmMismatch | None = None
    for line in text.splitlines():
        m = _FM_MISMATCH.search(line)
        if m:
            found = FmMismatch(line.strip()[:300], m.group(1), m.group(2).rstrip("."))
    return found


# ---------------------------------------------------------------- nvidia-smi topo -m


@dataclass
class Topology:
    gpus: list[str]  # GPU0 ...
    nics: dict[str, str]  # NIC0 -> mlx5_0
    links: dict[tuple[str, str], str]  # (GPU0, GPU1) -> NV18; (GPU0, NIC0) -> PIX

    def gpu_matrix(self) -> list[list[str]]:
        return [[self.links.get((a, b), "?") for b in self.gpus] for a in self.gpus]

    def nearest_nic(self) -> dict[str, str | None]:
        """GPU -> the link to its closest NIC (PIX best ... SYS worst); None without NICs."""
        order = ["PIX", "PXB", "PHB", "NODE", "SYS"]
        out: dict[str, str | None] = {}
        for g in self.gpus:
            kinds = [self.links.get((g, n), "") for n in self.nics]
            known = [k for k in kinds if k in order]
            out[g] = min(known, key=order.index) if known else None
        return out


def parse_nvidia_smi_topo(text: str) -> Topology:
    lines = text.splitlines()
    header: list[str] | None = None
    links: dict[tuple[str, str], str] = {}
    gpus: list[str] = []
    nics: dict[str, str] = {}
    for line in lines:
        if header is None:
            cells = [c.strip() for c in line.split("\t")]
            names = [c for c in cells if re.fullmatch(r"(GPU|NIC|mlx)\S*\d+", c)]
            if names and "GPU0" in names:
                header = [c for c in cells if c]
            continue
        m = re.fullmatch(r"\s*(NIC\d+):\s*(\S+)\s*", line)
        if m:
            nics[m.group(1)] = m.group(2)
            continue
        cells = [c.strip() for c in line.split("\t")]
        if not cells or not re.fullmatch(r"(GPU|NIC)\d+", cells[0]):
            continue
        row = cells[0]
        values = cells[1:]
        if row.startswith("GPU"):
            gpus.append(row)
        for col, value in zip(header, values):
            if re.fullmatch(r"(GPU|NIC)\d+", col):
                links[(row, col)] = value
    if header is None or not gpus:
        raise ParseError(f"not nvidia-smi topo -m ({snippet(text)})")
    for col in header:
        if col.startswith("NIC") and col not in nics:
            nics[col] = col
    return Topology(gpus, nics, links)


# ---------------------------------------------------------------- ibstat


@dataclass
class IbPort:
    ca: str
    port: int
    state: str | None = None  # Active | Down | Initializing | Armed
    physical: str | None = None  # LinkUp | Polling | Disabled
    rate: str | None = None  # Gb/s
    link_layer: str | None = None  # InfiniBand | Ethernet


def parse_ibstat(text: str) -> list[IbPort]:
    ports: list[IbPort] = []
    ca: str | None = None
    port: IbPort | None = None
    for line in text.splitlines():
        m = re.fullmatch(r"CA '([^']+)'\s*", line)
        if m:
            ca, port = m.group(1), None
            continue
        m = re.fullmatch(r"\s+Port (\d+):\s*", line)
        if m and ca is not None:
            port = IbPort(ca, int(m.group(1)))
            ports.append(port)
            continue
        if port is None or ":" not in line:
            continue
        key, value = (s.strip() for s in line.split(":", 1))
        if key == "State":
            port.state = value
        elif key == "Physical state":
            port.physical = value
        elif key == "Rate":
            port.rate = value
        elif key == "Link layer":
            port.link_layer = value
    if ca is None:
        raise ParseError(f"not ibstat ({snippet(text)})")
    return ports


# ---------------------------------------------------------------- hccn_tool


def parse_hccn_ip(text: str) -> str | None:
    """``ipaddr:29.0.0.1``: the NPU's RoCE address; None when it has none."""
    m = next(
        (
            hit
            for hit in (re.fullmatch(r"\s*ipaddr\s*:\s*(\S*)\s*", ln) for ln in text.splitlines())
            if hit
        ),
        None,
    )
    if m is None:
        raise ParseError(f"not hccn_tool -ip -g ({snippet(text)})")
    addr = m.group(1)
    if addr and not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", addr):
        raise ParseError(f"not an IPv4 address in hccn_tool's output: {addr[:40]!r}")
    return addr or None


def parse_hccn_link(text: str) -> str:
    m = re.search(r"link status\s*:\s*(\S+)", text, re.IGNORECASE)
    if m is None:
        raise ParseError(f"not hccn_tool -link -g ({snippet(text)})")
    return m.group(1).upper()


def parse_hccn_health(text: str) -> str:
    m = next(
        (
            hit
            for hit in (
                re.fullmatch(r"\s*net health status\s*:\s*(\S.*?)\s*", ln, re.IGNORECASE)
                for ln in text.splitlines()
            )
            if hit
        ),
        None,
    )
    if m is None:
        raise ParseError(f"not hccn_tool -net_health -g ({snippet(text)})")
    return m.group(1)


def parse_hccn_tls(text: str) -> bool:
    """Whether TLS is on for the NPU's links (``tls switch[1]``)."""
    m = re.search(r"tls switch\s*\[(\d)\]", text, re.IGNORECASE)
    if m is None:
        raise ParseError(f"not hccn_tool -tls -g ({snippet(text)})")
    return m.group(1) == "1"
