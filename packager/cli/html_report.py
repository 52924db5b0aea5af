"""The officer's report: `airgap audit BUNDLE --html FILE` and `airgap audit --site DIR --html FILE`.

One self-contained HTML file to read and file: inline CSS, no scripts, no fonts, images or
anything else fetched from anywhere (a Content-Security-Policy of ``default-src 'none'`` says so
to the browser too), so it renders the same offline and years later. The verdict comes first,
then who signed with which keys, the policy and its threshold, the model signatures, the build
provenance, the SBOM (components, licenses), the kernels and the chips they cover, the images by
digest, and the probe report when one is given.

Every text shown comes from a bundle or a site and is escaped (control characters made visible);
nothing here reads a file or the clock (the caller passes the time).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from packager.cli.term import visible

if TYPE_CHECKING:
    from packager.commands.audit import AuditReport
    from packager.commands.probe_report import ProbeReport
    from packager.site.integrity import SiteAudit

CSP = "default-src 'none'; style-src 'unsafe-inline'"

STYLE = """
:root { color-scheme: light; }
body { font-family: sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1.5rem;
       color: #1b1f24; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 2px solid #d0d7de; padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
.sub { color: #57606a; margin-top: 0; }
.verdict { border-radius: 8px; padding: 1rem 1.4rem; margin: 1.2rem 0; border: 2px solid; }
.verdict .word { font-size: 2rem; font-weight: 700; letter-spacing: .04em; }
.PASS { background: #dafbe1; border-color: #1a7f37; color: #0f5323; }
.FAIL { background: #ffebe9; border-color: #cf222e; color: #82071e; }
.WARN, .NOT-VERIFIED, .NOT-RUN { background: #fff8c5; border-color: #9a6700; color: #633c01; }
.verdict ul { margin: .4rem 0 0 1.2rem; padding: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem; border-bottom: 1px solid #d8dee4; }
th { background: #f6f8fa; font-weight: 600; }
td.k, dt { font-weight: 600; white-space: nowrap; }
code, .mono { font-family: monospace; font-size: .86rem; overflow-wrap: anywhere; }
.tag { display: inline-block; padding: 0 .45rem; border-radius: 1rem; font-size: .8rem;
       font-weight: 600; border: 1px solid; }
.muted { color: #57606a; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .5rem 0; }
dd { margin: 0; }
footer { margin-top: 3rem; color: #57606a; font-size: .85rem; border-top: 1px solid #d0d7de;
         padding-top: .6rem; }
@media print { body { margin: 0; max-width: none; } .verdict { break-inside: avoid; } }
"""


def t(value: object) -> str:
    """Text for HTML: control, bidi and other invisible characters shown as escapes (as on the
    terminal, packager.cli.term), then HTML-escaped."""
    return html.escape(visible("" if value is None else str(value), newlines=False), quote=True)


_GOOD = frozenset({"PASS", "VALID", "TRUSTED", "OK", "INTACT", "SIGNED", "CURRENT", "ALLOWED"})
_BAD = frozenset({"FAIL", "REVOKED", "INVALID", "ISSUES", "DRIFT", "TAMPERED", "NOT ALLOWED"})


def _tag(word: str) -> str:
    key = word.upper()
    cls = "PASS" if key in _GOOD else "FAIL" if key in _BAD else "WARN"
    return f'<span class="tag {cls}">{t(word)}</span>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, raw: bool = False) -> str:
    """A table; cells are escaped unless ``raw`` (cells built with :func:`t` already)."""
    body = "".join(
        "<tr>" + "".join(f"<td>{c if raw else t(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    if not body:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{t(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _dl(items: Iterable[tuple[str, str]]) -> str:
    """A definition list; values are HTML built with :func:`t` already."""
    return "<dl>" + "".join(f"<dt>{t(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _code(value: object) -> str:
    return f"<code>{t(value)}</code>" if value not in (None, "") else '<span class="muted">-</span>'


def _verdict(word: str, reasons: Sequence[str], what: str) -> str:
    cls = word.upper().replace(" ", "-")
    items = "".join(f"<li>{t(r)}</li>" for r in reasons)
    return (
        f'<section class="verdict {t(cls)}" id="verdict"><div>Verdict for {t(what)}</div>'
        f'<div class="word">{t(word)}</div>{f"<ul>{items}</ul>" if items else ""}</section>'
    )


def _page(title: str, subtitle: str, body: str, generated: str, tool: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{t(title)}</title><style>{STYLE}</style></head><body>"
        f'<h1>{t(title)}</h1><p class="sub">{subtitle}</p>{body}'
        f"<footer>Generated {t(generated)} by {t(tool)}. This file is self-contained: it loads "
        "nothing from anywhere and can be filed as it is.</footer></body></html>\n"
    )


# ----------------------------------------------------------------------------- sections


def _signers(r: AuditReport) -> str:
    rows = []
    for s in r.signers:
        state = (
            "revoked" if s.revoked
            else "valid" if s.valid
            else "invalid" if s.valid is False
            else "not checked"
        )  # fmt: skip
        rows.append([_code(s.keyid), t(s.name or "a key the policy does not list"),
                     t(s.algorithm or "-"), _tag(state)])  # fmt: skip
    note = "" if r.signers else "<p><strong>The bundle is UNSIGNED.</strong></p>"
    return (
        '<h2 id="signers">Signers and key ids</h2>'
        + note
        + _table(
            [
                "keyid (sha256 of the DER public key)",
                "name in the policy",
                "algorithm",
                "signature",
            ],
            rows,
            raw=True,
        )
    )


def _policy(policy: dict[str, Any] | None) -> str:
    head = '<h2 id="policy">Trust policy and threshold</h2>'
    if policy is None:
        return head + '<p class="muted">No trust policy or key was given: nothing was checked.</p>'
    keys = policy.get("keys", [])
    unrevoked = sum(1 for k in keys if not k.get("revoked"))
    summary = _dl(
        [
            ("version", t(policy.get("version", 1))),
            ("threshold", t(f"{policy['threshold']} of {unrevoked} unrevoked key(s)")),
            ("max age", t(policy.get("max_age") or "none")),
        ]
    )
    rows = [
        [t(k["name"]), _code(k["keyid"]), t(k["algorithm"]),
         _tag("revoked") if k.get("revoked") else _tag("trusted")]
        for k in keys
    ]  # fmt: skip
    return head + summary + _table(["name", "keyid", "algorithm", "state"], rows, raw=True)


def _model_signatures(r: AuditReport) -> str:
    out = ['<h2 id="model-signatures">Model signatures</h2>']
    ms = r.model_signature
    if ms is None:
        out.append('<p class="muted">OpenSSF model signature: not checked.</p>')
    elif ms.state == "none":
        out.append('<p class="muted">This bundle has no model signature record.</p>')
    else:
        items = [
            ("OpenSSF model.sig", _tag(ms.state) + " " + t(ms.message)),
            ("files", t(ms.files)),
            ("root digest", _code(f"sha256:{ms.root_digest}" if ms.root_digest else None)),
        ]
        if ms.state == "signed":
            items += [
                ("signer keyid", _code(ms.keyid)),
                ("installed at", _code(ms.to_json()["path"])),
                ("check it", _code("model_signing verify key --signature model/model.sig "
                                   "--public_key PUB model/")),
            ]  # fmt: skip
        out.append(_dl(items))
    ps = r.publisher_signature
    if ps is None:
        out.append('<p class="muted">Publisher signature: none was named in the manifest.</p>')
    else:
        who = (
            f"the publisher's key {ps.keyid}"
            if ps.method == "key"
            else f"the certificate {ps.signer} (key {ps.keyid}), chained to {ps.root}"
        )
        out.append(
            "<h3>Publisher signature (verified at lock)</h3>"
            + _dl(
                [
                    ("weights signed by", t(who)),
                    ("signature file", _code(f"{ps.path} (sha256:{ps.sha256})")),
                    ("files checked", t(f"{ps.files_checked} locked file(s) of {ps.resources} "
                                        f"signed {ps.serialization}")),
                    ("root digest", _code(f"sha256:{ps.root_digest}")),
                ]
            )
        )  # fmt: skip
    return "".join(out)


def _provenance(r: AuditReport) -> str:
    head = '<h2 id="provenance">Build provenance</h2>'
    p = r.provenance
    if p is None:
        return head + (
            '<p class="muted">Not shown: the attestation is not signed by a trusted key, or the '
            "bundle was not verified.</p>"
        )
    m = p.manifest or {}
    digest = (m.get("digest") or {}).get("sha256") if isinstance(m.get("digest"), dict) else None
    lock = (p.lock_digest or {}).get("sha256")
    items = [
        ("builder", _code(p.builder)),
        ("airgap", t(p.tool_version or "?")),
        ("built", t(p.started or "?")),
        ("manifest", t(f"{m.get('name', '?')} {m.get('version', '?')}") + " " + _code(f"sha256:{digest}")),
        ("lock", _code(f"sha256:{lock}")),
        ("attestation signed by", " ".join(_code(k) for k in p.signed_by)),
        ("inputs", t(f"{len(p.sources)} resolved dependencies")),
    ]  # fmt: skip
    sources = _table(
        ["input", "sha256"],
        [[_code(u), _code(d.get("sha256"))] for u, d in p.sources[:200]],
        raw=True,
    )
    return head + _dl(items) + "<details><summary>inputs</summary>" + sources + "</details>"


def _sbom(r: AuditReport) -> str:
    head = '<h2 id="sbom">SBOM summary</h2>'
    if r.sbom is None:
        return head + f'<p class="muted">{t(r.sbom_error or "The bundle has no SBOM.")}</p>'
    s = r.sbom
    licenses = s.licenses()
    counts = _dl(
        [
            ("format", t(f"CycloneDX {s.spec_version}")),
            ("components", t(f"{len(s.models)} model(s), {len(s.images)} image(s), "
                             f"{len(s.wheels)} wheel(s), {len(s.files)} file(s)")),
            ("licenses", t(", ".join(f"{k} ({n})" for k, n in licenses.items()) or "none")),
        ]
    )  # fmt: skip
    rows = [
        [t(kind), t(c.name), t(c.version or "-"), t(", ".join(c.licenses) or "NOASSERTION"),
         _code(c.digest)]
        for kind, group in (("model", s.models), ("image", s.images), ("wheel", s.wheels),
                            ("file", s.files))
        for c in group
    ]  # fmt: skip
    return head + counts + _table(["kind", "name", "version", "licenses", "digest"], rows, raw=True)


def _kernels(r: AuditReport) -> str:
    head = '<h2 id="kernels">Kernels and coverage</h2>'
    rows = []
    for k in r.kernels:
        raw = k.check.get("coverage")
        cov: list[Any] = raw if isinstance(raw, list) else []
        coverage = "<br>".join(
            t(f"{c.get('chip')} (cc {c.get('cc') or '-'}): {c.get('coverage')}")
            + (f" via {t(', '.join(map(str, c.get('via') or [])))}" if c.get("via") else "")
            for c in cov
            if isinstance(c, dict)
        )
        ok = k.check.get("ok")
        rows.append([t(k.name), t(k.kind), t(", ".join(k.targets) or "-"), _code(k.path),
                     coverage or '<span class="muted">-</span>',
                     _tag("ok" if ok else "issues" if ok is False else "unknown")])  # fmt: skip
    return head + _table(
        ["kernel", "kind", "targets", "installed at", "chips covered", "build check"],
        rows,
        raw=True,
    )


def _load_code(r: AuditReport) -> str:
    head = '<h2 id="load-code">Code that runs when the model loads</h2>'
    if not r.load_code:
        return head + '<p class="muted">None: every model file is read as data.</p>'
    by = ", ".join(r.allowed_by) or "nobody: the signatures were not checked"
    rows = [
        [t(f.path), t(f.kind), _code(f.sha256), t(str(f.size)),
         _tag("allowed" if f.allowed else "NOT ALLOWED")]
        for f in r.load_code
    ]  # fmt: skip
    return (
        head
        + _dl([("allowed by (model.allow_code, signed by)", t(by))])
        + _table(["file", "kind", "sha256", "bytes", "model.allow_code"], rows, raw=True)
    )


def _images(r: AuditReport) -> str:
    rows = [
        [t(i.ref), t(i.role), t(i.platform), _code(i.manifest_digest), _code(i.index_digest),
         _code(i.config_digest)]
        for i in r.images
    ]  # fmt: skip
    return '<h2 id="images">Container images</h2>' + _table(
        ["reference", "role", "platform", "manifest digest", "index digest", "config digest"],
        rows,
        raw=True,
    )


def _probe(probe: ProbeReport | None) -> str:
    head = '<h2 id="probe">Probe report</h2>'
    if probe is None:
        return head + (
            '<p class="muted">No probe report was given (airgap probe ... --report FILE, then '
            "--probe-report FILE).</p>"
        )
    counts = ", ".join(f"{n} {k}" for k, n in probe.counts.items() if n)
    rows = [[_tag(c.status), t(c.title), t(c.reason), t(c.remedy or "")] for c in probe.checks]
    return (
        head
        + _dl(
            [
                ("result", _tag(probe.status) + " " + t(counts)),
                ("host", t(probe.host)),
                ("probed", t(probe.created)),
            ]
        )
        + _table(["status", "check", "found", "remedy"], rows, raw=True)
    )


def _bundle_sections(r: AuditReport, policy: dict[str, Any] | None) -> str:
    return (
        _signers(r)
        + _policy(policy)
        + _model_signatures(r)
        + _provenance(r)
        + _sbom(r)
        + _kernels(r)
        + _load_code(r)
        + _images(r)
    )


def _title(r: AuditReport) -> str:
    b = r.meta
    return f"{b.name} {b.version}" + (f" [{b.target}]" if b.target else "")


# ----------------------------------------------------------------------------- pages


def bundle_report(r: AuditReport, *, probe: ProbeReport | None, generated: str, tool: str) -> str:
    """The report of `airgap audit BUNDLE`."""
    b = r.meta
    sub = (
        f"Bundle {_code(r.bundle)} &middot; content digest {_code(r.digest)} &middot; created "
        f"{t(b.created)} &middot; expires {t(b.expires or 'never')}"
    )
    body = (
        _verdict(r.verdict, r.reasons, _title(r))
        + _bundle_sections(r, r.to_json()["policy"])
        + _probe(probe)
    )
    return _page(f"airgap audit: {_title(r)}", sub, body, generated, tool)


def site_report(
    site: SiteAudit,
    installed: Sequence[AuditReport],
    *,
    probe: ProbeReport | None,
    generated: str,
    tool: str,
) -> str:
    """The report of `airgap audit --site DIR`: the site's verdict, its trust policy, every
    installed version and its drift, then the details of each current version."""
    doc = site.to_json()
    reasons: list[str] = [f"audit log: {p['message']}" for p in doc["log"]["problems"]] + list(
        doc["problems"]
    )
    for v in doc["bundles"]:
        if not v["ok"]:
            changed = len(v["modified"]) + len(v["missing"]) + len(v["extra"])
            reasons.append(f"{v['name']} {v['version']}: {changed} installed file(s) drifted")
    if not reasons:
        reasons = [
            f"{len(doc['bundles'])} installed version(s) match their receipts; the audit log's "
            f"{doc['log']['entries']} entries chain intact"
        ]
    trust = doc.get("trust")
    body = [_verdict(doc["verdict"], reasons, f"the site {doc['prefix']}")]
    rows = [
        [t(v["name"]), t(v["version"]), _tag("current") if v["current"] else "",
         t(v["files"]), _tag("intact") if v["ok"] else _tag("drift"),
         t("; ".join([f"modified {m['path']}" for m in v["modified"]]
                     + [f"missing {m}" for m in v["missing"]]
                     + [f"extra {m}" for m in v["extra"]])[:2000])]
        for v in doc["bundles"]
    ]  # fmt: skip
    body.append(
        '<h2 id="installed">Installed bundles</h2>'
        + _table(["name", "version", "", "files", "drift", "details"], rows, raw=True)
    )
    body.append(_policy(trust) if trust else _policy(None).replace(
        "No trust policy or key was given: nothing was checked.",
        "This site keeps no trust policy of its own (airgap trust update --site --initial); "
        "signatures were checked at install.",
    ))  # fmt: skip
    log = doc["log"]
    body.append(
        '<h2 id="log">Audit log</h2>'
        + _dl(
            [
                ("entries", t(log["entries"])),
                ("hash chain", _tag("intact") if log["ok"] else _tag("tampered")),
            ]
        )
    )
    for r in installed:
        body.append(
            f'<h2 class="bundle">{t(_title(r))}: installed, current</h2>'
            + _verdict(r.verdict, r.reasons, _title(r))
            + _bundle_sections(r, r.to_json()["policy"])
            .replace('<h2 id="', '<h3 id="')
            .replace("</h2>", "</h3>")
        )
    body.append(_probe(probe))
    sub = f"Install prefix {_code(doc['prefix'])}"
    return _page(f"airgap site audit: {doc['prefix']}", sub, "".join(body), generated, tool)
