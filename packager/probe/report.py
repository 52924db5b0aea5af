"""The probe's report: one JSON document (schemas/probe-report.schema.json) and a plain-text
table for people."""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from typing import Any

from . import __version__
from .bundle import Requirements
from .detect import Detection
from .verdict import FAIL, NOT_RUN, PASS, STATUSES, WARN, Check, exit_code, gib, worst

SCHEMA_ID = "airgap/probe-report/v1"


def build(
    det: Detection,
    checks: list[Check],
    req: Requirements | None,
    *,
    mode: str,
    sysroot: str | None,
    facts_source: str,
) -> dict[str, Any]:
    counts = {s: 0 for s in STATUSES}
    for c in checks:
        counts[c.status] += 1
    doc: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "probe": {
            "version": __version__,
            "python": platform.python_version(),
            "facts": facts_source,
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {"mode": mode, "sysroot": sysroot},
        "bundle": req.to_json() if req is not None else None,
    }
    doc.update(det.to_json())
    doc["checks"] = [c.to_json() for c in checks]
    doc["summary"] = {"status": worst(checks), "exit_code": exit_code(checks), "counts": counts}
    return doc


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def to_json_text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"


# ---------------------------------------------------------------- text


def visible(text: str) -> str:
    """``text`` with every character a terminal acts on but the newline (C0 controls, DEL, C1
    controls, bidi and other format characters, lone surrogates) written as its escape
    (``\\x1b``, ``\\u202e``): a bundle's or a machine's strings cannot move the cursor, recolour
    or reorder what the probe prints."""
    if text.isprintable():
        return text
    return "".join(c if c == "\n" or c.isprintable() else repr(c)[1:-1] for c in text)


def _group(items: list[tuple[str, str]]) -> str:
    """``[(name, detail), ...]`` -> ``8 x name (detail)``, grouping equal entries in order."""
    out: list[tuple[str, str, int]] = []
    for name, detail in items:
        if out and out[-1][0] == name and out[-1][1] == detail:
            out[-1] = (name, detail, out[-1][2] + 1)
        else:
            out.append((name, detail, 1))
    return "; ".join(f"{n} x {name} ({detail})" for name, detail, n in out)


def _host_lines(doc: dict[str, Any]) -> list[tuple[str, str]]:
    h = doc["host"]
    lines: list[tuple[str, str]] = []
    os_name = h["os"]["name"] or h["os"]["id"] or "unknown OS"
    libc = " ".join(x for x in (h["libc"]["name"], h["libc"]["version"]) if x) or "libc unknown"
    lines.append(
        (
            "Host",
            f"{h['hostname'] or '?'}: {os_name}, kernel {h['kernel'] or '?'}, "
            f"{h['arch'] or '?'} ({h['platform'] or 'unknown platform'}), {libc}",
        )
    )
    cpu = h["cpu"]
    lines.append(("CPU", f"{cpu['count'] or '?'} x {cpu['model'] or 'unknown model'}"))
    mem = h["memory"]
    avail = f" ({gib(mem['available_bytes'])} available)" if mem["available_bytes"] else ""
    lines.append(("Memory", f"{gib(mem['total_bytes'])}{avail}"))
    if h["disk"]:
        lines.append(("Disk", f"{gib(h['disk']['free_bytes'])} free at {h['disk']['path']}"))
    else:
        lines.append(("Disk", "free space unknown"))
    return lines


def _mig_words(g: dict[str, Any]) -> list[str]:
    """``MIG on: 2 x 3g.71gb`` for a GPU with MIG on (CUDA sees those, not the GPU)."""
    mig = g["mig"]
    if mig["current"] != "Enabled":
        return ["MIG turns on at the next reset"] if mig["pending"] == "Enabled" else []
    devices = mig["devices"]
    if devices is None:
        return ["MIG on"]
    profiles = [d["profile"] for d in devices]
    return [f"MIG on: {len(profiles)} x {', '.join(dict.fromkeys(profiles)) or 'no devices'}"]


def _nvidia_line(nv: dict[str, Any]) -> str:
    if not nv["present"]:
        return "none"
    gpus = nv["gpus"]
    drv = nv["driver"]
    module = f" ({drv['module']} kernel module)" if drv["module"] else ""
    driver = f"driver {drv['version']}{module}" if drv["version"] else "driver unknown"
    if not gpus:
        return f"{driver}; GPUs not listed: {nv['nvidia_smi']['message'] or nv['nvidia_smi']['status']}"
    items = [
        (
            g["name"],
            ", ".join(
                [g["chip"] or "unknown chip"]
                + ([f"cc {g['compute_cap']}"] if g["compute_cap"] else [])
                + [gib(g["memory_bytes"])]
                + _mig_words(g)
            ),
        )
        for g in gpus
    ]
    return f"{_group(items)}; {driver}"


def _ascend_line(a: dict[str, Any]) -> str:
    if not a["present"]:
        return "none"
    parts = []
    drv = a["driver"]["version"] or a["npu_smi"]["version"]
    parts.append(f"driver {drv}" if drv else "driver unknown")
    if a["firmware"]["version"]:
        parts.append(f"firmware {a['firmware']['version']}")
    cann = a["cann"]["active"] or (a["cann"]["installs"][0] if a["cann"]["installs"] else None)
    parts.append(f"CANN {cann['version']} ({cann['path']})" if cann else "no CANN toolkit")
    npus = a["npus"]
    if not npus:
        smi = a["npu_smi"]
        return f"NPUs not listed: {smi['message'] or smi['status']}; " + ", ".join(parts)
    items = [
        (
            n["name"],
            f"{n['chip'] or 'unknown chip'}, {gib(n['memory_bytes'])}{' HBM' if n['hbm'] else ''}",
        )
        for n in npus
    ]
    return f"{_group(items)}; " + ", ".join(parts)


def _engine_line(e: dict[str, Any]) -> str:
    if not e["name"]:
        return "none found"
    ver = e["server_version"] or e["client_version"] or "?"
    text = f"{e['name']} {ver}"
    if not e["server_version"]:
        text += f" (daemon not reachable: {e['status']['message'] or e['status']['status']})"
    rts = sorted(set(e["runtimes"] or []) | set(e["daemon_json"]["runtimes"]))
    if rts:
        text += f", runtimes: {', '.join(rts)}"
    return text


def render_text(doc: dict[str, Any]) -> str:
    """The report as a plain table (no colours, no terminal codes, see :func:`visible`)."""
    return visible(_table(doc))


def _table(doc: dict[str, Any]) -> str:
    rows = _host_lines(doc)
    rows.append(("NVIDIA", _nvidia_line(doc["nvidia"])))
    rows.append(("Ascend", _ascend_line(doc["ascend"])))
    rows.append(("Engine", _engine_line(doc["engine"])))
    b = doc["bundle"]
    if b is not None:
        label = " ".join(x for x in (b["name"], b["version"]) if x) or "(unnamed)"
        if b["target"]:
            label += f" [{b['target']}]"
        rows.append(("Bundle", f"{label}: {b['source']}"))
    else:
        rows.append(("Bundle", "none (only the health of what was found is checked)"))
    if doc["source"]["mode"] == "sysroot":
        rows.append(("Recorded", str(doc["source"]["sysroot"])))
    lines = [f"airgap probe {doc['probe']['version']}"]
    lines += [f"  {k:<9} {v}" for k, v in rows]
    lines.append("")
    checks = doc["checks"]
    if checks:
        width = max(len(c["title"]) for c in checks)
        lines.append(f"  {'STATUS':<8} {'CHECK':<{width}}  REASON")
        for c in checks:
            lines.append(f"  {c['status']:<8} {c['title']:<{width}}  {c['reason']}")
            if c["remedy"]:
                lines.append(f"  {'':<8} {'':<{width}}  -> {c['remedy']}")
        lines.append("")
    s = doc["summary"]
    n = s["counts"]
    lines.append(
        f"Result: {s['status']} ({n[FAIL]} failed, {n[WARN]} warnings, {n[NOT_RUN]} not run, "
        f"{n[PASS]} passed)"
    )
    return "\n".join(lines) + "\n"
