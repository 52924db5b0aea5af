"""The officer's report (`airgap audit --html`), tested as a person reads it: headless Chromium,
with no network, renders the file; the test reads the rendered text and looks at the pixels."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from packager.bundle.descriptor import BundleMeta, ImageRecord
from packager.cli import html_report
from packager.commands.audit import AuditReport
from packager.signing.keys import load_signing_key
from tests.support.browser import dom, read_png, screenshot, visible_text
from tests.support.cli import airgap, cli
from tests.support.golden import build_golden
from tests.support.projects import PASS, make_key

GREEN = (0xDA, 0xFB, 0xE1)  # the PASS banner's background
RED = (0xFF, 0xEB, 0xE9)  # the FAIL banner's background


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, Path]:
    """The golden bundle signed with an ECDSA key (so it carries model.sig), its public key,
    keyid, and a probe report of this host for it."""
    folder = tmp_path_factory.mktemp("report")
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRGAP_KEY_PASSPHRASE", PASS)
    try:
        priv, pub, kid = make_key(folder, "officer")
        (tar,) = build_golden(folder / "out", key=load_signing_key(priv))
    finally:
        mp.undo()
    probe = folder / "probe.json"
    airgap("probe", "--bundle", str(tar), "--report", str(probe))  # exit 1 or 3 here: no GPU
    assert json.loads(probe.read_text())["schema"] == "airgap/probe-report/v1"
    return tar, pub, kid, probe


def _banner(png: Path) -> tuple[int, int, int]:
    """The colour that fills most of the verdict banner (below the title)."""
    img = read_png(png, max_rows=320)
    counts: dict[tuple[int, int, int], int] = {}
    for y in range(120, img.height, 4):
        for x in range(80, img.width - 80, 8):
            p = img.pixel(x, y)
            counts[p] = counts.get(p, 0) + 1
    colours = sorted(counts.items(), key=lambda kv: -kv[1])
    return next(c for c, _ in colours if c != (255, 255, 255))


def test_the_bundle_report_shows_the_verdict_first_then_signers_keys_and_the_rest(
    signed: tuple[Path, Path, str, Path], tmp_path: Path
) -> None:
    tar, pub, kid, probe = signed
    page = tmp_path / "report.html"
    r = cli("audit", str(tar), "--key", str(pub), "--html", str(page),
            "--probe-report", str(probe))  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    text = visible_text(dom(page))
    # the verdict comes before everything else
    assert text.index("Verdict for golden 1.0.0 PASS") < text.index("Signers and key ids")
    assert kid in text and "officer.pub.pem" in text
    for section in (
        "Trust policy and threshold",
        "Model signatures",
        "Build provenance",
        "SBOM summary",
        "Kernels and coverage",
        "Container images",
        "Probe report",
    ):
        assert section in text  # fmt: skip
    assert "threshold 1 of 1 unrevoked key(s)" in text
    assert f"OpenSSF model.sig signed signed by officer.pub.pem ({kid[:16]})" in text
    assert "https://airgap.dev/builder/golden" in text
    assert "licenses Apache-2.0 (1), NOASSERTION (2)" in text
    assert "h100 (cc 9.0): native via sm_90" in text
    probed = json.loads(probe.read_text())["summary"]["status"]
    assert f"result {probed}" in text
    png = tmp_path / "report.png"
    screenshot(page, png)
    assert _banner(png) == GREEN


def test_a_failing_bundle_report_says_FAIL_first_in_red(
    signed: tuple[Path, Path, str, Path], tmp_path: Path
) -> None:
    tar, _, kid, _ = signed
    _, other, _ = make_key(tmp_path, "someone-else")
    page = tmp_path / "report.html"
    r = cli("audit", str(tar), "--key", str(other), "--html", str(page))
    assert r.returncode == 1
    text = visible_text(dom(page))
    assert text.startswith("airgap audit: golden 1.0.0")
    assert "Verdict for golden 1.0.0 FAIL" in text
    assert "valid signature(s) from distinct trusted keys (none); the policy needs 1" in text
    assert kid in text and "a key the policy does not list" in text
    png = tmp_path / "report.png"
    screenshot(page, png)
    assert _banner(png) == RED


def test_the_site_report_names_drift_and_the_sites_policy(
    signed: tuple[Path, Path, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tar, pub, kid, probe = signed
    monkeypatch.setenv("AIRGAP_KEY_PASSPHRASE", PASS)
    site = tmp_path / "site"
    policy = tmp_path / "policy.json"
    assert cli("trust", "init", str(policy)).returncode == 0
    assert cli("trust", "add", str(policy), str(pub), "--name", "officer").returncode == 0
    assert cli("trust", "update", str(policy), "--site", str(site), "--initial").returncode == 0
    assert cli("install", str(tar), "--prefix", str(site), "--no-probe").returncode == 0
    page = tmp_path / "site.html"
    ok = cli("audit", "--site", str(site), "--html", str(page), "--probe-report", str(probe))
    assert ok.returncode == 0, ok.stdout
    text = visible_text(dom(page))
    assert text.index("Verdict for the site") < text.index("Installed bundles")
    assert "PASS" in text.split("Installed bundles")[0]
    assert "golden 1.0.0: installed, current" in text and kid in text
    assert "OpenSSF model.sig signed" in text

    conf = site / "bundles" / "golden" / "1.0.0" / "config" / "serving.conf"
    data = conf.read_bytes()
    conf.unlink()
    conf.write_bytes(data + b"# edited\n")
    bad = cli("audit", "--site", str(site), "--html", str(page))
    assert bad.returncode == 1
    text = visible_text(dom(page))
    assert re.search(r"Verdict for the site \S+ FAIL golden 1\.0\.0: 1 installed file", text)
    assert "modified config/serving.conf" in text
    png = tmp_path / "site.png"
    screenshot(page, png)
    assert _banner(png) == RED


def _report(**changes: object) -> AuditReport:
    meta = BundleMeta("demo", "1.0", None, None, "2024-01-01T00:00:00Z", None)
    r = AuditReport(Path("b.tar"), meta, [], None, None, None, "NOT VERIFIED", [])
    return dataclasses.replace(r, **changes)  # type: ignore[arg-type]


def test_the_report_loads_nothing_and_escapes_what_bundles_say() -> None:
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>\x1b[31m'
    r = _report(
        meta=BundleMeta(hostile, "1.0", None, None, "2024-01-01T00:00:00Z", None),
        images=(ImageRecord(hostile, "serving", "linux/amd64", None, None, "sha256:" + "0" * 64),),
        reasons=[hostile],
    )
    page = html_report.bundle_report(r, probe=None, generated="now", tool="airgap test")
    assert "<script" not in page and "<img" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "\\x1b[31m" in page and "\x1b" not in page
    # nothing is fetched: no src, href, url(), @import or font files; a CSP that forbids it
    assert not re.search(r"<[^>]*\s(src|href)\s*=|url\(|@import|@font-face", page)
    assert "default-src 'none'" in page
