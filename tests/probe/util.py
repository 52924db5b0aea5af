"""Helpers for the probe tests: run the probe in-process, copy and edit recorded machines."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from packager.compat.probe_facts import export_probe_facts
from packager.probe.cli import main

REPO = Path(__file__).resolve().parents[2]
MACHINES = REPO / "tests" / "fixtures" / "machines"
BUNDLES = REPO / "tests" / "fixtures" / "bundles"
SCHEMA = REPO / "schemas" / "probe-report.schema.json"


@cache
def facts() -> dict[str, Any]:
    return export_probe_facts()


@cache
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def doc(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.out)
        return data

    def statuses(self) -> dict[str, str]:
        return {c["id"]: c["status"] for c in self.doc["checks"]}

    def check(self, cid: str) -> dict[str, Any]:
        found = [c for c in self.doc["checks"] if c["id"] == cid]
        assert found, f"no check {cid} in {[c['id'] for c in self.doc['checks']]}"
        item: dict[str, Any] = found[0]
        return item


def probe(capsys: pytest.CaptureFixture[str], *args: str, with_facts: bool = True) -> Run:
    """Run ``airgap probe ARGS`` in-process and return its exit code and output."""
    capsys.readouterr()
    code = main(list(args), facts() if with_facts else None)
    cap = capsys.readouterr()
    return Run(code, cap.out, cap.err)


def probe_json(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    run = probe(capsys, "--json", *args)
    assert run.code in (0, 1, 3), run.err
    validator().validate(run.doc)
    return run


def copy_machine(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(MACHINES / name, target)
    return target


def set_command(root: Path, name: str, **fields: Any) -> None:
    """Change (or with ``remove=True`` delete) a recorded command."""
    path = root / "commands" / f"{name}.json"
    if fields.pop("remove", False):
        path.unlink()
        return
    data = json.loads(path.read_text()) if path.exists() else {"argv": [name], "stderr": ""}
    data.update({"rc": 0, "stdout": "", "stderr": "", "timeout": False, "error": None})
    data.update(fields)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def set_dev(root: Path, edit: dict[str, str | None]) -> None:
    """Edit dev.list: name -> access (``-`` denied), or None to drop the entry."""
    path = root / "dev.list"
    lines = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts and not line.startswith("#") and parts[0] in edit:
            access = edit[parts[0]]
            if access is None:
                continue
            line = f"{parts[0]} {parts[1]} {access}"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
