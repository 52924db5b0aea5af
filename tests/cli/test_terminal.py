"""No byte from a document reaches the terminal raw: escape sequences, bidi overrides and lone
surrogates from a tampered bundle, a policy or a manifest are shown escaped, in every command that
shows document text; --json stays exact JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from packager.cli.term import visible
from tests.support.cli import cli
from tests.support.golden import build_golden, write_public_key

ATTACK = "x\x1b[3A\x1b[J\x1b[32mverified\x1b[0m\u202e\u2066"
RAW = ("\x1b", "\u202e", "\u2066", "\r")


def _clean(text: str) -> None:
    for c in RAW:
        assert c not in text, repr(text[:400])


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("plain", "plain"),
        ("a\x1b[2Jb", "a\\x1b[2Jb"),
        ("rtl\u202eevil", "rtl\\u202eevil"),
        ("line\nbreak", "line\\x0abreak"),
        ("tab\tok", "tab\\x09ok"),
        ("surrogate\ud800", "surrogate\\ud800"),
        ("del\x7f", "del\\x7f"),
        ("c1\x9b", "c1\\x9b"),
        ("caf\u00e9 \u4e2d\u6587", "caf\u00e9 \u4e2d\u6587"),
        ("zw\u200bj", "zw\\u200bj"),
    ],
)
def test_visible_shows_every_invisible_character(text: str, want: str) -> None:
    assert visible(text, newlines=False) == want


def test_newlines_are_kept_for_a_message_of_several_lines() -> None:
    assert visible("one\ntwo\x1b", newlines=True) == "one\ntwo\\x1b"


@pytest.fixture(scope="module")
def tampered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A signed bundle whose descriptor was edited to carry escape sequences where the schema
    lets free text through (the description, an install path)."""
    top = tmp_path_factory.mktemp("terminal")
    (folder,) = build_golden(top / "out", layout_only=True)
    doc_path = folder / "airgap" / "bundle.json"
    doc = json.loads(doc_path.read_text())
    doc["bundle"]["description"] = ATTACK
    for b in doc["blobs"]:
        if b["role"] == "file":
            b["paths"] = [f"config/{ATTACK}"]
    doc_path.write_text(json.dumps(doc, indent=2))
    return folder


@pytest.mark.parametrize(
    "args",
    [
        ["inspect"],
        ["images"],
        ["digest"],
        ["audit"],
        ["verify", "--key", "PUB"],
        ["audit", "--key", "PUB"],
    ],
    ids=lambda a: "-".join(a).replace("--key-PUB", "-key"),
)
def test_a_tampered_descriptor_never_reaches_the_terminal_raw(
    tampered: Path, tmp_path: Path, args: list[str]
) -> None:
    pub = str(write_public_key(tmp_path))
    argv = [args[0], str(tampered), *[pub if a == "PUB" else a for a in args[1:]]]
    r = cli(*argv)
    _clean(r.stdout + r.stderr)
    assert "Traceback" not in r.stderr
    if args[0] in ("verify", "audit") and "PUB" in args:
        assert r.returncode == 1


def test_inspect_shows_the_path_escaped_and_json_keeps_it_exact(tampered: Path) -> None:
    text = cli("inspect", str(tampered))
    assert "\\x1b[3A" in text.stdout
    doc = json.loads(cli("inspect", str(tampered), "--json").stdout)
    assert any(f["path"] == f"config/{ATTACK}" for f in doc["files"])


def test_a_policy_key_name_with_escapes_is_shown_escaped(tmp_path: Path) -> None:
    policy = tmp_path / "trust.json"
    cli("trust", "init", str(policy))
    cli("trust", "add", str(policy), str(write_public_key(tmp_path)), "--name", "ok")
    doc = json.loads(policy.read_text())
    doc["keys"][0]["name"] = ATTACK
    policy.write_text(json.dumps(doc))
    r = cli("trust", "show", str(policy))
    _clean(r.stdout + r.stderr)
    assert "\\x1b" in r.stdout


def test_a_manifest_with_escapes_is_reported_escaped(tmp_path: Path) -> None:
    m = tmp_path / "m.yaml"
    m.write_text(
        "apiVersion: airgap/v1\nkind: Bundle\nmetadata: {name: demo, version: 1.0.0, "
        'description: "\\e[2J\\u202e"}\nmodel: {name: "x\\e[31m", source: {path: ./w}, '
        "format: safetensors, precision: fp16}\ntarget: {platform: linux/amd64, "
        'accelerator: {vendor: nvidia, chips: ["h1\\e[0m00"], count: 1}}\n'
    )
    r = cli("validate", str(m))
    _clean(r.stdout + r.stderr)
    assert "Traceback" not in r.stderr


def test_an_error_message_with_file_text_is_escaped(tmp_path: Path) -> None:
    bad = tmp_path / f"b{ATTACK}.airgap.tar"
    bad.write_bytes(b"not a tar" * 100)
    r = cli("inspect", str(bad))
    assert r.returncode == 2
    _clean(r.stdout + r.stderr)
    shutil.rmtree(tmp_path, ignore_errors=True)
