"""The house plan, checked: the tree shows the pipeline and dependencies point one way.

README.md's "Code map" says where everything lives; these rules keep it true as code is added.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "packager"
TESTS = Path(__file__).resolve().parent
STAGES = ("manifest", "compat", "kernels", "resolve", "oci", "bundle", "signing", "site", "probe")
#: the longest a module may grow before it is split (the probe's checks are the longest today)
MAX_LINES = 1100


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("packager")}


def _package_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE).parts
    return rel[0] if len(rel) > 1 else "(flat)"


def test_at_most_five_modules_are_flat() -> None:
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(flat) <= 5, flat


def test_the_stages_each_have_a_package() -> None:
    for name in (*STAGES, "cli", "commands", "util"):
        assert (PACKAGE / name / "__init__.py").is_file(), name


@pytest.mark.skipif(not hasattr(sys, "stdlib_module_names"), reason="Python >= 3.10 lists them")
def test_no_module_is_named_like_the_standard_library() -> None:
    names = set(sys.stdlib_module_names)  # type: ignore[attr-defined]
    clash = [
        str(p.relative_to(PACKAGE))
        for p in _modules()
        if p.stem in names and not p.stem.startswith("__")
    ]
    assert clash == []


def test_no_module_is_a_giant() -> None:
    big = {
        str(p.relative_to(PACKAGE)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert big == {}


def test_only_the_cli_and_the_probe_print() -> None:
    printing = re.compile(r"^\s*print\(|sys\.std(out|err)\.write|rich\.console")
    offenders = [
        f"{p.relative_to(PACKAGE)}:{i}"
        for p in _modules()
        if _package_of(p) not in ("cli", "probe") and p.name != "__main__.py"
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if printing.search(line)
    ]
    assert offenders == []


def test_dependencies_point_one_way() -> None:
    """cli -> commands -> stages -> util; nothing below reaches up; the probe stands alone."""
    problems = []
    for p in _modules():
        pkg = _package_of(p)
        for m in _imports(p):
            target = m.split(".")[1] if m.count(".") else "(flat)"
            if target == "cli" and pkg not in ("cli", "(flat)"):
                problems.append(
                    f"{p.relative_to(PACKAGE)} imports {m} (only cli/ and __main__ may)"
                )
            if target == "commands" and pkg not in ("cli", "commands"):
                problems.append(
                    f"{p.relative_to(PACKAGE)} imports {m} (a stage never imports a command)"
                )
            if pkg == "util" and target not in ("util", "errors"):
                problems.append(f"{p.relative_to(PACKAGE)} imports {m} (util is domain-free)")
            # the probe is stdlib-only; run from the package (not from a bundle) it may take the
            # chip facts from packager.compat instead of facts.json, lazily, in one place
            if (
                pkg == "probe"
                and target != "probe"
                and not m.startswith("packager.compat.probe_facts")
            ):
                problems.append(f"{p.relative_to(PACKAGE)} imports {m} (the probe is stdlib-only)")
    assert problems == []


def test_no_module_imports_another_modules_private_names() -> None:
    problems = []
    for p in _modules():
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("packager")
            ):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        problems.append(
                            f"{p.relative_to(PACKAGE)}: from {node.module} import {a.name}"
                        )
    assert problems == []


def test_no_test_module_imports_another() -> None:
    offenders = []
    for p in sorted(TESTS.rglob("*.py")):
        for m in _imports_tests(p):
            leaf = m.rsplit(".", 1)[-1]
            if leaf.startswith("test_") or leaf == "conftest":
                offenders.append(f"{p.relative_to(TESTS)} imports {m}")
    assert offenders == []


def _imports_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out
