"""Every command's ``--json`` document says ``ok`` first: true exactly when the command exits 0,
whatever else it says (``valid``, ``verified``, ``verdict``...)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from packager.cli import render
from packager.errors import AirgapError, InputError, LockMismatch, SourceLocation
from packager.signing.pkcs11_uri import Pkcs11UriError
from packager.util.schemas import first_error
from tests.support.cli import cli
from tests.support.golden import write_public_key
from tests.support.reports import REPORT_SCHEMAS, report_problem

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"


def _doc(args: list[str]) -> tuple[int, dict[str, object]]:
    r = cli(*args, "--json")
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict)
    return r.returncode, doc


def test_a_valid_and_an_invalid_manifest(tmp_path: Path) -> None:
    code, doc = _doc(["validate", str(EXAMPLES / "demo.yaml")])
    assert code == 0 and next(iter(doc)) == "ok" and doc["ok"] is True and doc["valid"] is True
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "demo.yaml").read_text().replace("apiVersion", "apiVerzion", 1))
    code, doc = _doc(["validate", str(bad)])
    assert code == 1 and doc["ok"] is False and doc["valid"] is False


def test_key_and_trust_documents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRGAP_KEY_PASSPHRASE", "pass phrase")
    code, doc = _doc(["key", "generate", "--out", str(tmp_path), "--name", "k"])
    assert code == 0 and doc["ok"] is True and "keyid" in doc
    policy = tmp_path / "trust.json"
    assert cli("trust", "init", str(policy)).returncode == 0
    pub = write_public_key(tmp_path)
    assert cli("trust", "add", str(policy), str(pub), "--name", "a").returncode == 0
    code, doc = _doc(["trust", "show", str(policy)])
    assert code == 0 and doc["ok"] is True


def test_policy_edits_and_init_print_their_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trust init, add and revoke --json say what the edit did (schemas/trust-edit; a new
    policy cannot be shown until it has keys); init --json names the manifest it wrote."""
    policy = tmp_path / "trust.json"
    code, doc = _doc(["trust", "init", str(policy)])
    assert code == 0 and (doc["action"], doc["version"], doc["keyid"]) == ("init", 1, None)
    pub = write_public_key(tmp_path)
    code, doc = _doc(["trust", "add", str(policy), str(pub), "--name", "a"])
    shown = _doc(["trust", "show", str(policy)])[1]
    keyid = shown["keys"][0]["keyid"]
    assert code == 0 and (doc["action"], doc["keyid"]) == ("add", keyid)
    monkeypatch.setenv("AIRGAP_KEY_PASSPHRASE", "pass phrase")
    _doc(["key", "generate", "--out", str(tmp_path), "--name", "k"])
    _doc(["trust", "add", str(policy), str(tmp_path / "k.pub.pem"), "--name", "k"])
    assert cli("trust", "sign", str(policy), "--key", str(tmp_path / "k.key.pem")).returncode == 0
    code, doc = _doc(["trust", "revoke", str(policy), "a", "--reason", "lost"])  # by its name
    assert code == 0 and (doc["action"], doc["keyid"]) == ("revoke", keyid)
    assert doc["signatures_dropped"] == 1  # the edit drops the policy's signature
    assert cli("trust", "sign", str(policy), "--key", str(tmp_path / "k.key.pem")).returncode == 0
    code, doc = _doc(["trust", "revoke", str(policy), keyid[:12]])  # revoked already: no edit
    assert code == 0 and doc["keyid"] == keyid and doc["signatures_dropped"] == 0
    monkeypatch.chdir(tmp_path)
    code, doc = _doc(["init", "demo-model", "--vendor", "nvidia", "--chip", "h100"])
    written = tmp_path / "demo-model.yaml"
    assert code == 0 and doc == {
        "ok": True, "manifest": "demo-model.yaml", "name": "demo-model",
        "bytes": written.stat().st_size,
    }  # fmt: skip
    assert cli("validate", str(written)).returncode == 0


@pytest.mark.parametrize(
    ("doc", "ok", "first"),
    [
        ({"valid": False}, False, ("ok", False)),
        ({"x": 1}, True, ("ok", True)),
        ({"a": 1, "ok": False}, True, ("a", 1)),  # a document that says ok itself keeps it
    ],
)
def test_emit_json_puts_ok_first_unless_the_document_says_it(
    doc: dict[str, object], ok: bool, first: tuple[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    render.emit_json(doc, ok=ok)
    out = json.loads(capsys.readouterr().out)
    assert next(iter(out.items())) == first


@pytest.mark.parametrize(
    "exc",
    [
        InputError("no such file", hint="give a manifest"),
        LockMismatch("1 input(s) drifted", hint="airgap lock m.yaml"),
        Pkcs11UriError("bad pkcs11 URI"),  # a kind with digits in its name
        InputError("bad YAML", location=SourceLocation("m.yaml", 3, 7)),
    ],
)
def test_the_error_object_keeps_its_schema(
    exc: AirgapError, capsys: pytest.CaptureFixture[str]
) -> None:
    render.error(exc, as_json=True)
    doc = json.loads(capsys.readouterr().out)
    assert first_error("error", doc) is None, doc
    assert doc["error"]["type"] == type(exc).__name__ and doc["error"]["message"] == exc.message


@pytest.mark.parametrize(
    ("args", "stdout", "problem"),
    [
        (["install", "b.tar", "--json"], "not json", "printed no JSON document"),
        (["build", "m.yaml", "--json"], "[1]", "printed no JSON object"),
        (["verify", "b.tar", "--json"], '{"ok": false, "error": {"type": "InputError", '
         '"message": "m", "hint": null, "file": null, "line": null, "column": null}}', None),
        (["verify", "b.tar", "--json"], '{"ok": false, "error": {"message": "m"}}',
         "schemas/error.schema.json at $.error: 'type' is a required property"),
        (["verify", "b.tar", "--json"], '{"ok": false, "error": {"type": "InputError", '
         '"message": "m", "hint": null, "file": null, "line": null, "column": null}, "x": 1}',
         "schemas/error.schema.json at $: Additional properties"),
        (["lock", "m.yaml", "--json"], '{"ok": false, "error": {"type": "InputError", '
         '"message": "m", "hint": null, "file": "m.yaml", "line": 0, "column": null}}',
         "schemas/error.schema.json at $.error.line"),
        (["lock", "m.yaml", "--json"], '{"ok": true, "error": {"type": "InputError", '
         '"message": "m", "hint": null, "file": null, "line": null, "column": null}}',
         "schemas/error.schema.json at $.ok"),
        (["install", "b.tar", "--json"], '{"ok": true}', "is a required property"),
        (["install", "b.tar"], "installed many 1.0.0", None),  # text: no report
        (["serve", "b.tar", "--json"], "[]", None),  # no report schema here (a stream)
        (["gc", "--prefix", "p", "--json"], '{"ok": true, "prefix": "p"}', "'removed' is a required"),
        (["audit", "--site", "p", "--json"], '{"ok": true, "verdict": "MAYBE"}', "audit-report"),
        (["list", "--prefix", "p", "--have"], '{"blobs": []}', "schemas/have.schema.json"),
        (["inspect", "b.tar", "--json"], '{"ok": true}', "schemas/inspect-report.schema.json"),
    ],
)  # fmt: skip
def test_the_report_check_every_cli_call_gets(
    args: list[str], stdout: str, problem: str | None
) -> None:
    got = report_problem(["/usr/bin/python", "-m", "packager", *args], stdout)
    assert (got is None) if problem is None else (got is not None and problem in got), got


@pytest.mark.parametrize("command", ["build", "lock"])
def test_an_invalid_manifest_prints_its_validation_under_its_command_schema(
    command: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "demo.yaml").read_text().replace("apiVersion", "apiVerzion", 1))
    extra = ["--unsigned", "--out", str(tmp_path / "out")] if command == "build" else []
    r = cli(command, str(bad), *extra, "--json")  # checked by its report schema (support.cli)
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and doc["ok"] is False and doc["validation"]["valid"] is False
    # the command's schema holds the report to validate-report's, by $ref: its own fields and
    # each finding (validate-report's $defs/finding)
    v = doc["validation"]
    for broken, where in (
        ({**v, "valid": "no"}, "at $.validation.valid:"),
        ({**v, "findings": [{**v["findings"][0], "extra": 1}]}, "at $.validation.findings[0]:"),
        (
            {**v, "findings": [{**v["findings"][0], "line": "1"}]},
            "at $.validation.findings[0].line:",
        ),
    ):
        problem = report_problem([command, "--json"], json.dumps({**doc, "validation": broken}))
        assert problem is not None and f"schemas/{command}-report.schema.json {where}" in problem


def _commands() -> list[tuple[str, bool]]:
    """Every command and subcommand of the typer app, and whether it takes --json."""
    import typer

    from packager.cli.app import app

    def walk(c: object, name: tuple[str, ...]) -> list[tuple[str, bool]]:
        subs = getattr(c, "commands", None)
        if subs is not None:
            return [x for n, sub in subs.items() for x in walk(sub, (*name, n))]
        params = getattr(c, "params", [])
        return [(" ".join(name), any("--json" in p.opts for p in params))]

    return walk(typer.main.get_command(app), ())


#: --json output that is no single report: serve streams a start document, then serves
#: (schemas/serve.schema.json, checked in tests/serve)
_STREAMED = {"serve": "serve"}


def test_every_json_command_has_a_report_schema_the_readme_names() -> None:
    commands = _commands()
    assert len(commands) > 25 and ("install", True) in commands
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    schemas = Path(__file__).resolve().parents[2] / "schemas"
    for name, takes_json in commands:
        if not takes_json:
            continue
        schema = REPORT_SCHEMAS.get(name) or _STREAMED.get(name)
        assert schema is not None, (
            f"airgap {name} --json has no report schema (tests/support/reports.py)"
        )
        assert (schemas / f"{schema}.schema.json").is_file(), (name, schema)
        assert f"schemas/{schema}.schema.json" in readme, (
            f"the README does not name {schema} ({name})"
        )
