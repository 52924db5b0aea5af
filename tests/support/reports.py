"""The CLI contract, held wherever a test runs the real CLI: a command's ``--json`` document is
valid against its report schema (``schemas/``), whichever code path made it; so is the
have-list ``list --have`` prints.

A command error prints the ``{"ok": false, "error": {...}}`` object every command shares
instead (packager.cli.render.error): that one is held to ``schemas/error.schema.json``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from typing import Any

from packager.util.schemas import first_error, json_path, validator

#: command -> its report schema (schemas/NAME.schema.json)
REPORT_SCHEMAS = {
    "build": "build-report",
    "install": "install-report",
    "verify": "verify-report",
    "diff": "diff",
    "lock": "lock-report",
    "inspect": "inspect-report",
    "list": "list-report",
    "uninstall": "uninstall-report",
    "rollback": "rollback-report",
    "gc": "gc-report",
    "audit": "audit-report",
    "digest": "digest-report",
    "sign": "sign-report",
    "images": "images-report",
    "key generate": "key-report",
    "key show": "key-report",
    "trust show": "trust-show",
    "trust init": "trust-edit",
    "trust add": "trust-edit",
    "trust revoke": "trust-edit",
    "init": "init-report",
    "trust sign": "trust-sign",
    "trust update": "trust-update",
    "deploy render": "deploy-report",
    "kernels inspect": "kernel-report",
    "validate": "validate-report",
    "repair": "repair",
    "publish": "publish",
}

#: commands with subcommands: the report belongs to ``GROUP SUBCOMMAND``
_GROUPS = ("key", "trust", "deploy", "kernels")


def _command(args: Sequence[str]) -> str | None:
    """The airgap command in ``args`` (``python -m packager CMD ...`` or ``CMD ...``)."""
    words = [str(a) for a in args]
    if "packager" in words:
        words = words[words.index("packager") + 1 :]
    if len(words) > 1 and words[0] in _GROUPS:
        return f"{words[0]} {words[1]}"
    return words[0] if words else None


def report_problem(args: Sequence[str], stdout: str) -> str | None:
    """Why ``stdout`` of ``airgap ARGS`` breaks the contract, or None (also when ``--json`` was
    not asked for or the command has no report schema here)."""
    words = [str(a) for a in args]
    command = _command(words)
    schema = REPORT_SCHEMAS.get(command or "")
    if command == "list" and "--have" in words:  # the have-list is JSON without --json
        schema, words = "have", [*words, "--json"]
    if "--json" not in words or schema is None:
        return None
    try:
        doc: Any = json.loads(stdout)
    except ValueError:
        return "--json printed no JSON document"
    if not isinstance(doc, dict):
        return "--json printed no JSON object"
    if "error" in doc:  # the object every command prints instead of its report
        schema = "error"
    if first_error(schema, doc) is None:
        return None
    return f"not valid against schemas/{schema}.schema.json {_closest(schema, doc)}"


def _closest(schema: str, doc: Any) -> str:
    """The first error (by path) of the branch of a top-level ``oneOf`` that ``doc`` comes
    closest to (the fewest errors), or of the whole schema: ``at $.path: message``."""
    v = validator(schema)
    root: dict[str, Any] = v.schema  # type: ignore[assignment]
    branches = root.get("oneOf")
    if branches:
        # a branch alone, with the definitions its local refs name
        defs = root.get("$defs", {})
        per = [list(v.evolve(schema={**b, "$defs": defs}).iter_errors(doc)) for b in branches]
        errors = min(per, key=len)
    else:
        errors = list(v.iter_errors(doc))
    if not errors:
        return "at $: fits more than one of its forms (oneOf)"
    e = min(errors, key=lambda e: [str(p) for p in e.absolute_path])
    return f"at {json_path(e.absolute_path)}: {e.message[:300]}"


def checked(
    args: Sequence[str], r: subprocess.CompletedProcess[str]
) -> subprocess.CompletedProcess[str]:
    """``r``, asserted to keep the contract (see the module)."""
    problem = report_problem(args, r.stdout)
    assert problem is None, f"airgap {' '.join(map(str, args))}: {problem}\n{r.stdout[:4000]}"
    return r
