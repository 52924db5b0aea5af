"""Rendering results for people (rich) and machines (JSON). The CLI picks one."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from packager.cli.consoles import LazyConsole
from packager.cli.jsonout import emit_document as emit_document
from packager.cli.jsonout import emit_json as emit_json
from packager.cli.progress import LineReporter, honest_speed
from packager.cli.term import shown, shown_text, visible
from packager.errors import AirgapError
from packager.findings import Finding, Severity
from packager.util.progress import Reporter
from packager.util.units import human_size

if TYPE_CHECKING:
    from packager.commands.audit import AuditReport
    from packager.commands.build import BuildResult
    from packager.commands.deploy import Rendered
    from packager.commands.diff import DiffReport
    from packager.commands.images import ImagesReport
    from packager.commands.inspect_bundle import Inspection
    from packager.commands.keys import KeyInfo
    from packager.commands.lock import DriftReport, LockReport
    from packager.commands.publish import PublishResult
    from packager.commands.sign import SignResult
    from packager.commands.trust import PolicySignResult, PolicyView
    from packager.commands.validate import ValidationReport
    from packager.commands.verify import VerifyReport
    from packager.serve.server import Stats
    from packager.serve.sources import Served
    from packager.site.install import InstallResult
    from packager.site.integrity import SiteAudit
    from packager.site.manage import GcResult, RollbackResult, SiteListing, UninstallResult
    from packager.site.repair import RepairResult
    from packager.site.trust import TrustUpdateResult

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}

#: made on first use (packager.cli.consoles): a --json run prints without rich
stdout = LazyConsole(highlight=False, soft_wrap=True)
stderr = LazyConsole(stderr=True, highlight=False, soft_wrap=True)


class Result(Protocol):
    """What a command returns: typed data with its ``--json`` document."""

    def to_json(self) -> dict[str, Any]: ...


def show(result: Result, as_json: bool, text: Callable[[Any], None]) -> None:
    """``--json``: the result's document on stdout; else ``text(result)`` for people."""
    if as_json:
        emit_json(result.to_json(), ok=getattr(result, "ok", True))
    else:
        text(result)


def internal_error(exc: Exception) -> None:
    """A bug: what it was, never a traceback (AIRGAP_DEBUG=1 lets it through)."""
    stderr.print(
        f"[bold red]internal error:[/bold red] {type(exc).__name__}: {shown(exc)}\n"
        "  hint: this is a bug in airgap; rerun with AIRGAP_DEBUG=1 for the traceback "
        "and report it"
    )


def finding_line(f: Finding) -> str:
    style = _STYLE[f.severity]
    text = (
        f"{shown(str(f.location))}: [{style}]{f.severity.value} {f.code}[/{style}]: "
        f"{shown(f.message)} [dim]({shown(f.json_path)})[/dim]"
    )
    if f.hint:
        text += f"\n    [dim]hint:[/dim] {shown(f.hint)}"
    return text


def validation(report: ValidationReport) -> None:
    for f in report.findings:
        stdout.print(finding_line(f))
    errors, warnings = report.count(Severity.ERROR), report.count(Severity.WARNING)
    m = report.manifest
    if report.valid and m is not None:
        targets = ", ".join(
            f"{m.bundle_name(t)} ({t.accelerator.vendor} "
            f"{'/'.join(t.accelerator.chips) or 'cpu'}, {t.platform})"
            for t in m.targets
        )
        stdout.print(
            f"[green]valid[/green]: {shown(str(report.path))}: {shown(targets)}"
            + (f"; {warnings} warning(s)" if warnings else "")
        )
    else:
        stdout.print(
            f"[bold red]invalid[/bold red]: {shown(str(report.path))}: "
            f"{errors} error(s), {warnings} warning(s)"
        )


def error(exc: AirgapError, *, as_json: bool) -> None:
    stderr.print(f"[bold red]error:[/bold red] {shown_text(str(exc))}")
    if exc.hint:
        stderr.print(f"  [dim]hint:[/dim] {shown_text(exc.hint)}")
    if as_json:
        loc = exc.location
        emit_json(
            {
                "ok": False,
                "error": {
                    "type": type(exc).__name__,
                    "message": exc.message,
                    "hint": exc.hint,
                    "file": loc.file if loc else None,
                    "line": loc.line if loc else None,
                    "column": loc.column if loc else None,
                },
            }
        )


def reporter(*, enabled: bool) -> Reporter:
    """Progress on stderr: bars at a terminal, plain lines for logs and CI (a start, a line
    every 10 s, an end), nothing under --json (``enabled`` False) or with AIRGAP_PROGRESS=0."""
    if not enabled or os.environ.get("AIRGAP_PROGRESS") == "0":
        return Reporter()
    if stderr.is_terminal:
        from packager.cli.bars import RichReporter

        return RichReporter(stderr.console)
    return LineReporter(sys.stderr)


def lock_result(report: LockReport) -> None:
    result, path, written = report.result, report.path, report.written
    for f in result.findings:
        stdout.print(finding_line(f))
    lk = result.lock
    st = lk.model.safetensors
    params = f", {st.parameters:,} parameters ({', '.join(st.dtypes)})" if st else ""
    stdout.print(
        f"model {shown(lk.model.name)}: {len(lk.model.files)} files, "
        f"{human_size(lk.model.size)}{params}"
    )
    if lk.model.signature is not None:
        stdout.print(
            f"[green]publisher signature verified[/green] ({shown(lk.model.signature.path)}): "
            f"{shown(publisher_line(lk.model.signature.to_json()))}"
        )
    for t in lk.targets:
        label = f"target {t.id}" if t.id else "target"
        parts = [
            f"{len(t.images)} image(s)",
            f"{len(t.wheels)} wheel(s)",
            f"{len(t.files)} file(s)",
            f"{len(t.kernels)} kernel(s)",
        ]
        stdout.print(f"{label} {t.platform}: {', '.join(parts)}")
        for i in t.images:
            stdout.print(f"  image {shown(i.ref)} -> {i.content_digest} ({i.platform})")
    stdout.print(
        f"hashed {result.cache_misses} file(s), {human_size(result.hashed_bytes)}; "
        f"{result.cache_hits} unchanged file(s) taken from the stat cache"
    )
    if written:
        stdout.print(f"[green]locked[/green]: {shown(str(path))}")
    else:
        stdout.print(
            f"[bold red]not locked[/bold red]: fix the findings above ({shown(str(path))} unchanged)"
        )


def drift(report: DriftReport) -> None:
    path, items = report.path, report.drift
    if not items:
        stdout.print(f"[green]no drift[/green]: every input matches {shown(str(path))}")
        return
    for d in items:
        stdout.print(f"[bold red]drifted[/bold red] {shown(str(d))}")
    stdout.print(
        f"[bold red]{len(items)} input(s) drifted[/bold red] since {shown(str(path))} was made"
    )


def build_result(result: BuildResult) -> None:
    total = sum(b.size for b in result.bundles)
    if result.lock_path is not None:
        how = "locked the inputs and wrote" if result.lock_written else "built from"
        stdout.print(f"{how} {shown(str(result.lock_path))}")
    for b in result.bundles:
        where = ", ".join(shown(str(f)) for f in b.files[:3]) + (
            f", ... ({len(b.files)} files)" if len(b.files) > 3 else ""
        )
        sig = (
            f"signed by {', '.join(k[:16] for k in b.signed_by)}"
            if b.signed_by
            else "[bold yellow]UNSIGNED[/bold yellow]"
        )
        digest = (
            "content digests " + ", ".join(f"{t} {d}" for t, d in b.digests.items())
            if b.targets
            else f"content digest {b.digest}"
        )
        stdout.print(
            f"[green]built[/green] {shown(b.stem)}: {where}\n"
            f"  {human_size(b.size)}, {b.blobs} blobs, {human_size(b.dedup_saved)} saved by dedup, {sig}\n"
            f"  {digest}"
        )
        if b.model_signature:
            stdout.print(f"  model.sig (OpenSSF model signature) by {b.model_signature[:16]}")
        if b.delta is not None:
            base = b.delta["base"]
            stdout.print(
                f"  delta from {shown(base['name'])} {shown(base['version'])} ({base['digest']}): "
                f"carries {human_size(b.delta['carried_bytes'])} of blobs; leaves out "
                f"{b.delta['not_carried']} blob(s), {human_size(b.delta['not_carried_bytes'])}"
                + _kit_left_out(b.delta["not_carried_files"], b.delta["not_carried_files_bytes"])
                + " that a site holding the base has"
            )
        for n in b.notes:
            stdout.print(f"  [dim]note:[/dim] {shown(n)}")
    rate = total / result.seconds if result.seconds else 0
    stdout.print(
        f"{len(result.bundles)} bundle(s), {human_size(total)} in {result.seconds:.1f} s ({human_size(rate)}/s)"
    )


def _kit_left_out(wheels: int, size: int) -> str:
    """The tail of a delta's "N blob(s), SIZE" line: the site-kit wheels it leaves out."""
    return f", and {wheels} site-kit wheel(s), {human_size(size)}," if wheels else ","


def inspection(info: Inspection) -> None:
    j = info.to_json()
    stdout.print(
        f"{shown(str(j['name']))} {shown(str(j['version']))}"
        + (f" (target {shown(str(j['target']))})" if j["target"] else "")
        + f"  {j['platform']}  created {j['created']}  expires {j['expires'] or 'never'}"
    )
    stdout.print(f"content digest {j['digest']}  (read, not verified: `airgap verify` checks it)")
    if j["delta"] is not None:
        base = j["delta"]["base"]
        stdout.print(
            f"a delta from {shown(base['name'])} {shown(base['version'])} ({base['digest']}): "
            f"leaves out {j['delta']['not_carried']} blob(s), "
            f"{human_size(j['delta']['not_carried_bytes'])}"
            + _kit_left_out(j["delta"]["not_carried_files"], j["delta"]["not_carried_files_bytes"])
            + " that the site must hold"
        )
    stdout.print(
        "signatures: "
        + (
            ", ".join(j["signatures"])
            if j["signed"]
            else "[bold yellow]none: UNSIGNED[/bold yellow]"
        )
    )
    for role, r in sorted(j["roles"].items()):
        stdout.print(f"  {role:<7} {r['blobs']:>5} blobs  {human_size(r['bytes']):>10}")
    for m in j["model"]:
        stdout.print(f"  model   {shown(m['path'])}  {human_size(m['size'])}  {m['digest']}")
    for i in j["images"]:
        stdout.print(
            f"  image   {shown(i['ref'])}  {i['platform']}  {i['manifest_digest'] or i['config_digest']}"
        )
    for k in j["kernels"]:
        stdout.print(f"  kernel  {shown(k['name'])} ({k['kind']})  {shown(k['path'])}")
    for w in j["wheels"]:
        stdout.print(f"  wheel   {shown(w['path'])}  {human_size(w['size'])}")
    for f in j["files"]:
        stdout.print(f"  file    {shown(f['path'])}  {human_size(f['size'])}")
    blobs = sum(r["blobs"] for r in j["roles"].values())
    stdout.print(
        f"total {blobs} blobs, {human_size(j['size'])}"
        + (f" in {len(j['parts'])} parts" if j["parts"] else "")
    )


def verify_report(r: VerifyReport) -> None:
    b = r.descriptor.bundle if r.descriptor is not None else None
    title = "?"
    if b is not None:
        title = f"{b.name} {b.version}" + (
            f" (targets {', '.join(r.targets)})"
            if r.targets
            else f" (target {b.target})"
            if b.target
            else ""
        )
    for f in r.failures:
        stdout.print(f"[bold red]FAIL[/bold red] {shown(str(f))}")
    for n in r.notes:
        stdout.print(f"[dim]note:[/dim] {shown(n)}")
    speed = honest_speed(r.bytes_hashed, r.seconds)
    if r.model_signature is not None and r.model_signature.state != "none":
        ms = r.model_signature
        stdout.print(f"model signature ({shown(ms.state)}): {shown(ms.message)}")
    delta = r.descriptor.delta if r.descriptor is not None else None
    if delta is not None:
        where = "not checked"
        if r.base_checked_in:
            lacking = any(f.check == "delta" for f in r.failures)
            where = f"{'not all in' if lacking else 'checked in'} {shown(r.base_checked_in)}"
        stdout.print(
            f"a delta from {shown(delta.base.name)} {shown(delta.base.version)} "
            f"({delta.base.digest}): {r.not_carried} blob(s), {human_size(r.not_carried_bytes)}"
            + _kit_left_out(r.not_carried_files, r.not_carried_files_bytes)
            + f" come from its base ({where})"
        )
    if r.ok:
        signers = ", ".join(f"{n} ({k[:16]})" for k, n in r.signers)
        stdout.print(
            f"[green]verified[/green] {shown(title)}: signed by {shown(signers)}; {r.blobs_checked} blobs "
            f"and {r.files_checked} bundle files ({human_size(r.bytes_hashed)}) match in "
            f"{r.seconds:.1f} s" + (f" ({speed})" if speed else "")
        )
    else:
        stdout.print(
            f"[bold red]NOT VERIFIED[/bold red] {shown(title)}: {len(r.failures)} failure(s)"
        )


#: lines of manifest fields and of each list a diff shows before "... and N more"
DIFF_LINES = 12


def _json_value(value: object) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return shown(text if len(text) <= 60 else text[:57] + "...")


def _more(n: int, shown_n: int) -> None:
    if n > shown_n:
        stdout.print(f"  ... and {n - shown_n} more (--json lists every one)")


def _count(n: int, size: int) -> str:
    return f"{n} ({human_size(size)})" if n else "-"


def diff_report(r: DiffReport) -> None:
    """One screen: the two sides, whether they were verified, then each kind of change."""
    d = r.diff
    for tag, side in (("old", r.old), ("new", r.new)):
        meta = side.descriptor.bundle
        stdout.print(
            f"{tag}: {shown(meta.name)} {shown(meta.version)}"
            + (f" [{shown(meta.target)}]" if meta.target else "")
            + f"  {side.digest[:19]}  {shown(side.label)}"
            + (f"  signed by {', '.join(k[:16] for k in side.signers)}" if side.verified else "")
        )
    if not r.verified:
        stdout.print(
            "[bold yellow]unverified[/bold yellow]: signatures not checked "
            "(give --trust POLICY or --key PUB to check them)"
        )
    if d.same_content:
        stdout.print("same content: the two bundle.json are identical")
        return
    changes = list(d.manifest) + list(d.target_changed)
    stdout.print(f"manifest: {len(changes)} field(s) changed")
    for c in changes[:DIFF_LINES]:
        old = _json_value(c.old) if c.in_old else "(absent)"
        new = _json_value(c.new) if c.in_new else "(absent)"
        stdout.print(f"  {shown(c.path)}: {old} -> {new}")
    _more(len(changes), DIFF_LINES)
    stdout.print(f"  {'blobs by role':<14}{'added':>18}{'removed':>18}{'unchanged':>18}")
    for rc in d.roles:
        stdout.print(
            f"  {shown(rc.role):<14}{_count(rc.added, rc.added_bytes):>18}"
            f"{_count(rc.removed, rc.removed_bytes):>18}{_count(rc.unchanged, rc.unchanged_bytes):>18}"
        )
    for i in d.images[:DIFF_LINES]:
        if i.status != "changed":
            dg = i.new_digest if i.status == "added" else i.old_digest
            stdout.print(f"image {i.status} {shown(i.ref)} {shown(str(dg)[:19])}")
            continue
        line = f"image changed {shown(i.ref)} {shown(str(i.old_digest)[:19])} -> {shown(str(i.new_digest)[:19])}"
        if i.layers_known:
            line += (
                f": +{len(i.layers_added)} layer(s) "
                f"({human_size(sum(x.size for x in i.layers_added))}), "
                f"-{len(i.layers_removed)} ({human_size(sum(x.size for x in i.layers_removed))}), "
                f"{i.layers_unchanged} unchanged ({human_size(i.layers_unchanged_bytes)})"
            )
        else:
            line += ": layers unknown (a side's image manifest is not at hand: a site's store keeps none)"
        stdout.print(line)
    _more(len(d.images), DIFF_LINES)
    for k in d.kernels[:DIFF_LINES]:
        parts = []
        if k.old and k.new:
            for what in ("targets", "archs"):
                a, b = getattr(k.old, what), getattr(k.new, what)
                if a != b:
                    parts.append(f"{what} {', '.join(a) or '-'} -> {', '.join(b) or '-'}")
            ca, cb = dict(k.old.chips), dict(k.new.chips)
            parts += [
                f"{c} {ca.get(c, '-')} -> {cb.get(c, '-')}"
                for c in sorted(ca.keys() | cb.keys())
                if ca.get(c) != cb.get(c)
            ]
            if k.binary_changed:
                parts.append("binary changed")
        stdout.print(
            f"kernel {k.status} {shown(k.name)}" + (f": {shown('; '.join(parts))}" if parts else "")
        )
    _more(len(d.kernels), DIFF_LINES)
    for w in d.wheels[:DIFF_LINES]:
        stdout.print(
            f"wheel {'+' if w.status == 'added' else '-'} {shown(w.filename)} ({human_size(w.size)})"
        )
    _more(len(d.wheels), DIFF_LINES)
    dl = d.delta
    carried, full = dl.bytes + dl.files_bytes, dl.full_bytes + dl.full_files_bytes
    share = f" ({100 * carried / full:.1f} %)" if full else ""
    kit = dl.full_files - dl.files
    stdout.print(
        f"a delta from old would carry {dl.blobs} of {dl.full_blobs} blobs "
        f"({human_size(dl.bytes)} of {human_size(dl.full_bytes)}) and {dl.files} of "
        f"{dl.full_files} bundle files ({human_size(dl.files_bytes)}"
        + (f"; {kit} site-kit wheel(s) old has are left out" if kit else "")
        + f"): {human_size(carried)} of {human_size(full)}{share}"
    )


def audit(report: AuditReport) -> None:
    doc = report.to_json()
    style = {"PASS": "green", "FAIL": "bold red"}.get(doc["verdict"], "yellow")
    stdout.print(
        f"{shown(str(doc['name']))} {shown(str(doc['version']))}  created {doc['created']}  expires {doc['expires'] or 'never'}"
    )
    stdout.print(
        "signatures:" + ("" if doc["signers"] else " [bold yellow]none: UNSIGNED[/bold yellow]")
    )
    for s in doc["signers"]:
        state = (
            "revoked"
            if s["revoked"]
            else ("valid" if s["valid"] else "INVALID" if s["valid"] is False else "unchecked")
        )
        stdout.print(
            f"  {s['keyid']}  {s['name'] or 'unknown key'}  {s['algorithm'] or ''}  {state}  (signed for {doc['signed_at']})"
        )
    p = doc.get("provenance") or {}
    if p and "error" not in p:
        stdout.print(
            f"provenance: builder {shown(str(p['builder']))}, airgap {p['tool_version']}, started {p['started']}"
        )
        m = p.get("manifest") or {}
        stdout.print(
            f"  manifest {m.get('name')} {m.get('version')} sha256:{(m.get('digest') or {}).get('sha256')}"
        )
        stdout.print(
            f"  lock sha256:{(p.get('lock_digest') or {}).get('sha256')}; {len(p['sources'])} source(s)"
        )
    sb = doc.get("sbom") or {}
    if sb and "error" not in sb:
        stdout.print(
            f"sbom ({sb['format']}): {len(sb['models'])} model(s), {len(sb['images'])} image(s), {len(sb['wheels'])} wheel(s), {len(sb['files'])} file(s)"
        )
        for i in sb["images"]:
            stdout.print(f"  image {shown(str(i['name']))}:{i['version']} {i['digest']}")
        for w in sb["wheels"]:
            stdout.print(f"  wheel {shown(str(w['name']))} {w['version']} {w['digest']}")
    ms = doc.get("model_signature")
    if ms and ms["state"] != "none":
        stdout.print(
            f"model signature ({ms['path']}, OpenSSF): {ms['state']}: {shown(ms['message'])}"
            + (
                f"; {ms['files']} files, root sha256:{ms['root_digest']}"
                if ms["root_digest"]
                else ""
            )
        )
    ps = doc.get("publisher_signature")
    if ps:
        stdout.print(f"publisher signature ({shown(ps['path'])}): {shown(publisher_line(ps))}")
    lc = doc["load_code"]
    if lc["files"]:
        by = ", ".join(lc["allowed_by"]) or "nobody (signatures not checked)"
        stdout.print(
            f"runs code at load time: {len(lc['files'])} file(s); allowed by the signers: {shown(by)}"
        )
        for f in lc["files"]:
            state = "allowed" if f["allowed"] else "[bold red]NOT ALLOWED[/bold red]"
            stdout.print(f"  {shown(f['path'])}  {f['kind']}  sha256:{f['sha256']}  {state}")
    stdout.print(f"verdict: [{style}]{doc['verdict']}[/{style}]")
    for r in doc["reasons"]:
        stdout.print(f"  {shown(r)}")


def publisher_line(ps: dict[str, Any]) -> str:
    """What `airgap lock` verified of the publisher's model signature, in one sentence."""
    who = (
        f"the publisher's key {ps['keyid']}"
        if ps["method"] == "key"
        else f"the certificate {ps['signer']} (key {ps['keyid']}), chained to {ps['root']}"
    )
    return (
        f"weights signed by {who}; {ps['files_checked']} locked file(s) match the signed "
        f"digests (root sha256:{ps['root_digest']}), checked at lock"
    )


# ----------------------------------------------------------------------------- site (packager.site)


def install_result(result: InstallResult) -> None:
    doc = result.to_json()
    what = f"{shown(doc['name'])} {shown(doc['version'])}" + (
        f" (target {shown(str(doc['target']))}, installed as {shown(doc['installed_as'])})"
        if doc["target"]
        else ""
    )
    for n in doc["notes"]:
        stdout.print(f"[dim]note:[/dim] {shown(n)}")
    signers = ", ".join(s["name"] for s in doc["signers"])
    if doc["action"] == "unchanged":
        stdout.print(
            f"[green]already installed[/green] {what} ({doc['digest']}) and current: nothing to do"
        )
    elif doc["action"] == "activated":
        stdout.print(
            f"[green]current again[/green] {what}: installed before, now current "
            f"(was {shown(str(doc['previous'] or 'none'))})"
        )
    else:
        how = "hard links into the store" if doc["hard_links"] else "copies (no hard links here)"
        if doc["modes"]:
            m = doc["modes"]
            owner = f", owner {m['uid'] if m['uid'] is not None else '-'}:{m['gid'] if m['gid'] is not None else '-'}"
            how = (
                f"copies with the modes the server demands (files {m['file_mode']}, folders "
                f"{m['dir_mode']}{owner if m['uid'] is not None or m['gid'] is not None else ''})"
            )
        stdout.print(
            f"[green]installed[/green] {what} into {shown(doc['path'])}\n"
            f"  verified in {doc['verify_seconds']:.1f} s, signed by {shown(signers)}; "
            f"{doc['files']} files, {human_size(doc['install_bytes'])} as {how}; "
            f"{doc['blobs_written']} blob(s) stored ({human_size(doc['bytes_written'])}), "
            f"{doc['blobs_present']} already there\n"
            f"  current: {shown(str(doc['previous'] or 'none'))} -> {shown(doc['version'])}; "
            f"receipt {shown(doc['receipt'])}"
        )
    pulled = doc["pulled"]
    if pulled is not None:
        stdout.print(
            f"  from {shown(pulled['source'])}: {pulled['blobs_fetched']} blob(s) fetched "
            f"({human_size(pulled['bytes_fetched'])}), {pulled['blobs_linked']} from the store, "
            f"{pulled['blobs_kept']} from an earlier run; "
            f"{human_size(pulled['meta_bytes'])} of index, descriptor and files"
        )
    for i in doc["images"]:
        stdout.print(f"  image {_image_place(i)}")
    hf = doc["hf_cache"]
    if hf is not None:
        stdout.print(
            f"  hub cache {shown(hf['repo_id'])} revision {shown(hf['revision'])} -> "
            f"{shown(hf['snapshot'])} ({hf['files']} files, hard links into the store)"
        )
    p = doc["probe"]
    if p is None:
        return
    status = p["status"] or "ERROR"
    style = {"PASS": "green", "WARN": "yellow", "NOT RUN": "yellow"}.get(status, "bold red")
    counts = p["counts"] or {}
    tally = ", ".join(f"{n} {shown(str(k))}" for k, n in counts.items() if n)
    stdout.print(f"probe: [{style}]{status}[/{style}]" + (f" ({tally})" if tally else ""))
    for c in p["checks"]:
        stdout.print(f"  {c['status']:<7} {shown(c['title'])}: {shown(c['reason'])}")
        if c.get("remedy"):
            stdout.print(f"          [dim]remedy:[/dim] {shown(c['remedy'])}")
    if p["error"]:
        stdout.print(f"  {shown(p['error'])}")
    if p["exit_code"] not in (0, 3):
        stdout.print(
            f"[bold red]the install is complete and current, but the probe "
            f"{'FAILED' if p['exit_code'] == 1 else 'could not run'}[/bold red]: fix the host "
            f"and run `airgap probe --installed {shown(doc['name'])} --prefix "
            f"{shown(doc['prefix'])}`, or go back with `airgap rollback {shown(doc['name'])}`"
        )


def _image_place(i: dict[str, Any]) -> str:
    """``REF -> RUNTIME[ NAMESPACE] as NAME@DIGEST (status)`` from a receipt's image entry (or an
    install's): only the parts it has."""
    where = shown(str(i.get("into") or "?"))
    if i.get("namespace"):
        where += f" (namespace {shown(str(i['namespace']))})"
    name = i.get("name") or i.get("tag") or i.get("destination")
    digest = i.get("manifest_digest") or i.get("digest")
    detail = " ".join(
        x
        for x in (f"as {shown(str(name))}" if name else "", shown(str(digest)) if digest else "")
        if x
    )
    status = f" ({shown(str(i['status']))})" if i.get("status") else ""
    return (
        f"{shown(str(i.get('ref') or '?'))} -> {where}" + (f" {detail}" if detail else "") + status
    )


def published(result: PublishResult) -> None:
    d = result.to_json()
    stdout.print(
        f"[green]published[/green] {shown(d['name'])} {shown(d['version'])} ({d['digest']}) to "
        f"{shown(d['destination'])}\n"
        f"  index {d['index_digest']}; signed by {shown(', '.join(s['name'] for s in d['signers']))}\n"
        f"  {d['blobs_uploaded']} of {d['blobs']} blob(s) sent ({human_size(d['bytes_uploaded'])}), "
        f"{d['blobs_present']} already there; {d['manifests_pushed']} manifest(s) pushed, "
        f"{d['manifests_present']} already there; {d['files']} layout files; "
        f"{d['seconds']:.1f} s (verify {d['verify_seconds']:.1f} s)"
    )


def site_list(listing: SiteListing) -> None:
    doc = listing.to_json()
    if not doc["bundles"]:
        stdout.print(f"nothing installed under {shown(doc['prefix'])}")
    for b in doc["bundles"]:
        stdout.print(f"{shown(b['name'])}  (current: {shown(str(b['current'] or 'none'))})")
        for v in b["versions"]:
            mark = "*" if v["current"] else " "
            stdout.print(
                f"  {mark} {shown(v['version']):<14} {v['digest'][:19]}  {v['files']:>5} files "
                f"{human_size(v['bytes']):>10}  installed {v['installed']}"
            )
            for i in v["images"]:
                stdout.print(f"      image {_image_place(i)}")
    s = doc["store"]
    stdout.print(
        f"store: {s['blobs']} blob(s), {human_size(s['bytes'])}; "
        f"{human_size(s['unreferenced_bytes'])} unreferenced (airgap gc drops them)"
    )
    for p in doc["problems"]:
        stdout.print(f"[bold red]problem[/bold red] {shown(p)}")


def site_change(action: str, result: UninstallResult | RollbackResult | GcResult) -> None:
    doc = result.to_json()
    for n in doc.get("notes", []):
        stdout.print(f"[dim]note:[/dim] {shown(n)}")
    if action == "uninstall":
        stdout.print(
            f"[green]uninstalled[/green] {shown(doc['name'])} {shown(', '.join(doc['removed']))}; "
            f"current: {shown(str(doc['current_before'] or 'none'))} -> "
            f"{shown(str(doc['current_after'] or 'none'))}; "
            f"`airgap gc` would free {human_size(doc['freeable_bytes'])}"
        )
    elif action == "rollback":
        stdout.print(
            f"[green]rolled back[/green] {shown(doc['name'])} from {shown(doc['from'])} "
            f"to {shown(doc['to'])} ({doc['digest']})"
        )
    else:
        stdout.print(
            f"[green]gc[/green]: removed {doc['removed']} unreferenced blob(s), "
            f"{human_size(doc['removed_bytes'])}; kept {doc['kept']}"
        )


def repair_result(result: RepairResult) -> None:
    doc = result.to_json()
    for n in doc["notes"]:
        stdout.print(f"[dim]note:[/dim] {shown(n)}")
    for r in doc["store"]:
        stdout.print(
            f"[green]restored[/green] store blob {r['path'][:16]}... ({shown(r['problem'])}) "
            f"from the {shown(r['source'])}"
        )
    for v in doc["versions"]:
        label = f"{shown(v['name'])} {shown(v['version'])}"
        if not (v["repaired"] or v["unrepaired"] or v["extra"]):
            stdout.print(f"[green]intact[/green] {label}: {v['files']} files")
            continue
        for r in v["repaired"]:
            how = f"from the {shown(r['source'])}" if r["source"] else "read-only again"
            what = "mode put back" if r["fix"] == "mode" else "restored"
            stdout.print(
                f"[green]{what}[/green] {label}: {shown(r['path'])} ({shown(r['problem'])}) {how}"
            )
        for r in v["unrepaired"]:
            stdout.print(
                f"[bold red]NOT REPAIRED[/bold red] {label}: {shown(r['path'])}: "
                f"{shown(r['problem'])}"
                + (f"\n    [dim]hint:[/dim] {shown(r['hint'])}" if r["hint"] else "")
            )
        for e in v["extra"]:
            stdout.print(
                f"[yellow]extra[/yellow] {label}: {shown(e)}: not installed by airgap, left in "
                "place (move it out of the read-only folder)"
            )
    for p in doc["problems"]:
        stdout.print(f"[bold red]problem[/bold red] {shown(p)}")
    repaired = sum(len(v["repaired"]) for v in doc["versions"]) + len(doc["store"])
    verdict = {
        "intact": "[green]intact[/green]: nothing to repair",
        "repaired": f"[green]repaired[/green] {repaired} item(s); `airgap audit --site` checks",
        "incomplete": f"[bold red]incomplete[/bold red]: repaired {repaired} item(s), "
        f"{len(result.unrepaired)} not repaired, "
        f"{sum(len(v['extra']) for v in doc['versions'])} extra",
    }[doc["verdict"]]
    stdout.print(
        f"{len(doc['versions'])} version(s) checked, {human_size(doc['hashed_bytes'])} hashed; {verdict}"
    )
    if result.needs_bundle:
        stdout.print(
            "[dim]hint:[/dim] airgap repair --prefix DIR --bundle BUNDLE (the bundle they were "
            "installed from; verified with --trust/--key or the site's policy)"
        )


def site_audit(result: SiteAudit) -> None:
    doc = result.to_json()
    log = doc["log"]
    for p in log["problems"]:
        where = f"audit.log line {p['line']}" if p["line"] else "audit.log"
        stdout.print(f"[bold red]TAMPERED[/bold red] {where}: {shown(p['message'])}")
    for b in doc["bundles"]:
        label = f"{shown(b['name'])} {shown(b['version'])}" + (" (current)" if b["current"] else "")
        images = [f"  image {_image_place(i)}" for i in b["images"]]
        if b["ok"]:
            stdout.print(f"[green]intact[/green] {label}: {b['files']} files match the receipt")
            for line in images:
                stdout.print(line)
            continue
        stdout.print(f"[bold red]DRIFT[/bold red] {label}:")
        for m in b["modified"]:
            stdout.print(f"  modified {shown(m['path'])}: {shown(m['reason'])}")
        for m in b["missing"]:
            stdout.print(f"  missing  {shown(m)}")
        for m in b["extra"]:
            stdout.print(f"  extra    {shown(m)}")
        for line in images:
            stdout.print(line)
    for p in doc["problems"]:
        stdout.print(f"[bold red]problem[/bold red] {shown(p)}")
    t = doc.get("trust")
    if t:
        revoked = sum(1 for k in t["keys"] if k["revoked"])
        stdout.print(
            f"trust policy (the site's own): version {t['version']}, threshold "
            f"{t['threshold']} of {len(t['keys'])} key(s), {revoked} revoked; the installed "
            "signatures were checked with it"
        )
    for n in doc["notes"] + log["notes"]:
        stdout.print(f"[dim]note:[/dim] {shown(n)}")
    style = "green" if doc["ok"] else "bold red"
    stdout.print(
        f"audit log: {log['entries']} entries, "
        + ("chain intact" if log["ok"] else f"{len(log['problems'])} problem(s)")
        + f"; verdict: [{style}]{doc['verdict']}[/{style}]"
    )


def images(report: ImagesReport) -> None:
    if not report.images:
        stdout.print(f"{shown(str(report.bundle))}: no container images")
        return
    for i in report.images:
        stdout.print(
            f"[bold]{shown(i.ref)}[/bold]  {shown(i.role)}  {i.platform}  "
            f"{human_size(i.size)}  {len(i.layers)} layer{'s' if len(i.layers) != 1 else ''}"
        )
        stdout.print(
            f"  manifest {i.manifest_digest}  [dim]{shown(i.manifest.blob.media_type)}[/dim]"
        )
        stdout.print(f"  config   {i.config_digest}")
        if i.index is not None:
            platforms = ", ".join(sorted({m.platform for m in i.manifests if m.platform}))
            stdout.print(f"  index    {i.index.digest}  [dim](kept: {shown(platforms)})[/dim]")
        elif i.chosen_from:
            stdout.print(f"  index    {i.chosen_from}  [dim](chosen from; not in the bundle)[/dim]")
    n = len(report.images)
    stdout.print(f"{n} image{'s' if n != 1 else ''}, {human_size(report.size)} (layers as stored)")


def signed(result: SignResult) -> None:
    if result.added or result.model_signature:
        stdout.print(f"[green]signed[/green] {shown(str(result.bundle))} with {result.keyid}")
        if result.model_signature:
            stdout.print("  and wrote its model.sig (OpenSSF model signature of the weights)")
    else:
        stdout.print(
            f"{shown(str(result.bundle))} already carries a signature by {result.keyid}: "
            "nothing changed"
        )


def trust_policy(view: PolicyView) -> None:
    stdout.print(
        f"version {view.version}: threshold {view.threshold} of {len(view.keys)}; "
        f"max age {view.max_age or 'none'}"
    )
    own = set(view.signed_by_own)
    for k in view.keys:
        revoked = "  REVOKED" if k.revoked else ""
        signed = "  signed" if k.keyid in own else ""
        stdout.print(f"  {k.keyid}  {k.algorithm:<18} {shown(k.name)}{revoked}{signed}")
    if own or view.signed_by_others:
        stdout.print(
            f"signed by {len(own)} of its own keys (threshold {view.threshold})"
            + (
                f" and {len(view.signed_by_others)} other key(s) (a previous policy's: "
                "checked when a site updates to it)"
                if view.signed_by_others
                else ""
            )
        )
    else:
        stdout.print("unsigned (airgap trust sign POLICY --key KEY)")


def policy_signed(result: PolicySignResult) -> None:
    verb = "signed" if result.added else "already signed by"
    whose = (
        "one of its keys" if result.in_policy else "a key it does not list (a previous policy's?)"
    )
    stdout.print(
        f"[green]{verb}[/green] {shown(str(result.path))} (version {result.version}) with "
        f"{result.keyid}, {whose}; {result.own_signers} of its own keys signed, threshold "
        f"{result.threshold}" + ("" if result.own_signers >= result.threshold else ": needs more")
    )


def trust_updated(result: TrustUpdateResult) -> None:
    for s in result.steps:
        if s.action == "unchanged":
            stdout.print(f"version {s.version}: the site has it already ({shown(s.source)})")
        elif s.action == "initial":
            stdout.print(
                f"[green]installed[/green] version {s.version} as the site's first trust policy "
                f"({shown(s.source)})"
            )
        else:
            stdout.print(
                f"[green]installed[/green] version {s.version} ({shown(s.source)}): signed by "
                f"{shown(', '.join(s.signed_by_current))} of the previous policy and "
                f"{shown(', '.join(s.signed_by_own))} of its own"
            )
    stdout.print(
        f"trust policy of {shown(str(result.prefix))}: version "
        f"{result.before if result.before is not None else 'none'} -> {result.after}"
    )


def key_info(info: KeyInfo) -> None:
    stdout.print(f"{info.keyid}  {info.algorithm}  {info.kind}  {shown(str(info.path))}")


def plain(text: str) -> None:
    """Plain text on stdout (a digest, a keyid, a kernel's listing): shown safely, no markup."""
    stdout.print(shown_text(text))


def deploy_rendered(result: Rendered) -> None:
    """The YAML on stdout (unless written to a file; ASCII only, every other character escaped
    by YAML itself), what to know about it on stderr."""
    if result.output is None:
        sys.stdout.write(visible(result.text))
        sys.stdout.flush()
    else:
        stderr.print(
            f"wrote {shown(result.output)}: {result.format} for {shown(result.name)} "
            f"{shown(result.version)}, image {shown(result.image)}"
        )
    for n in result.notes:
        stderr.print(f"[dim]note:[/dim] {shown(n)}")


def serving(served: Served, listen: str) -> None:
    """What is served and where, on stderr (stdout stays free for --json)."""
    for b in served.bundles:
        signers = ", ".join(s["name"] or s["keyid"][:12] for s in b["signers"]) or "no signer"
        stderr.print(
            f"[green]verified[/green] {shown(b['name'])} {shown(b['version'])} "
            f"({shown(b['digest'] or '')}), signed by {shown(signers)}"
        )
    for note in served.notes:
        stderr.print(f"[yellow]note:[/yellow] {shown(note)}")
    size = human_size(sum(x.size for x in served.catalog.blobs.values()))
    stderr.print(
        f"serving {len(served.catalog.repositories)} repositories, "
        f"{len(served.catalog.blobs)} blobs ({size}) read-only on [bold]http://{listen}[/bold]"
    )
    for repo in served.catalog.to_json():
        for t in repo["tags"]:
            stderr.print(
                f"  {listen}/{shown(repo['name'])}:{shown(t['tag'])}  {shown(t['digest'])}"
            )
    stderr.print("[dim]Ctrl-C stops[/dim]")


def request_line(line: str) -> None:
    """One served request (its path as the client wrote it, control characters escaped)."""
    sys.stderr.write(visible(line, newlines=False) + "\n")
    sys.stderr.flush()


def serving_stopped(stats: Stats) -> None:
    stderr.print(
        f"stopped: {stats.requests} requests, {human_size(stats.bytes_sent)} sent, "
        f"{stats.errors} answered with an error"
    )
