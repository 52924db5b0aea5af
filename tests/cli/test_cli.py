"""The `airgap` command as a user runs it: exit codes, one clear error line, JSON on stdout."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import jsonschema
import pytest

from tests.support.cli import EXAMPLES, REPO, airgap
from tests.support.manifests import BASE, billion_laughs


def make(tmp_path: Path, name: str, content: str | bytes | None) -> Path:
    f = tmp_path / name
    if isinstance(content, bytes):
        f.write_bytes(content)
    elif isinstance(content, str):
        f.write_text(content)
    return f


# (id, file content or None for "no such file", exit code, words on stderr)
BAD_INPUT = [
    ("missing-file", None, 2, "no such file"),
    ("empty-file", b"", 2, "is empty"),
    ("yaml-syntax", b"apiVersion: airgap/v1\nkind: [Bundle\nmetadata: {}\n", 2, ":3:"),
    ("a-list", b"- apiVersion: airgap/v1\n", 2, "is a list"),
    ("a-scalar", b"airgap\n", 2, "is a single value"),
    (
        "duplicate-keys",
        BASE.replace("kind: Bundle\n", "kind: Bundle\nkind: Bundle\n").encode(),
        2,
        "duplicate key 'kind'",
    ),
    ("wrong-types", BASE.replace("count: 2", "count: [2]").encode(), 1, "must be an integer"),
    ("unknown-keys", (BASE + "extras: 1\n").encode(), 1, "unknown key 'extras'"),
    ("alias-bomb", billion_laughs().encode(), 2, "expands to more than"),
]


@pytest.mark.parametrize(
    ("content", "code", "words"), [pytest.param(*c[1:], id=c[0]) for c in BAD_INPUT]
)
def test_bad_input_is_one_clear_error_never_a_traceback(
    tmp_path: Path, content: bytes | None, code: int, words: str
) -> None:
    f = make(tmp_path, "m.yaml", content)
    r = airgap("validate", str(f))
    out = r.stdout + r.stderr
    assert r.returncode == code, out
    assert words in out
    assert "Traceback" not in out
    assert "hint" in out


def test_a_folder_is_not_a_manifest(tmp_path: Path) -> None:
    r = airgap("validate", str(tmp_path))
    assert r.returncode == 2
    assert "is a folder" in r.stderr and "Traceback" not in r.stderr


def test_a_50mb_file_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    f = tmp_path / "big.yaml"
    with f.open("wb") as fh:
        fh.write(b"a: " + b"x" * (50 * 1024 * 1024) + b"\n")
    r = airgap("validate", str(f))
    assert r.returncode == 2
    assert "larger than" in r.stderr


def test_the_alias_bomb_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    f = make(tmp_path, "bomb.yaml", billion_laughs(10))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    r = airgap("validate", str(f))
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert r.returncode == 2 and "expands to more than" in r.stderr
    # 10^10 strings would need hundreds of GB; the refusal stays near the interpreter's own size
    assert max(peak_kib, before) < 400 * 1024


def test_usage_errors_exit_2() -> None:
    assert airgap("validate").returncode == 2
    assert airgap("no-such-command").returncode == 2
    assert airgap("init", "x", "--vendor", "amd").returncode == 2


def test_json_output_is_only_json_and_follows_its_schema(tmp_path: Path) -> None:
    f = make(tmp_path, "m.yaml", BASE.replace("chips: [h100]", "chips: [h10]"))
    r = airgap("validate", str(f), "--json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)  # nothing else on stdout
    schema = json.loads((REPO / "schemas" / "validate-report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert doc["valid"] is False
    (finding,) = [x for x in doc["findings"] if x["code"] == "AG201"]
    assert finding["line"] == 11 and finding["path"] == "$.target.accelerator.chips[0]"
    assert "h100" in finding["hint"]


def test_json_error_document_for_unreadable_input(tmp_path: Path) -> None:
    r = airgap("validate", str(tmp_path / "none.yaml"), "--json")
    assert r.returncode == 2
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and "no such file" in doc["error"]["message"]


def test_human_output_names_file_line_and_column(tmp_path: Path) -> None:
    f = make(tmp_path, "m.yaml", BASE.replace("chips: [h100]", "chips: [h10]"))
    r = airgap("validate", str(f))
    assert r.returncode == 1
    assert f"{f}:11:" in r.stdout
    assert "AG201" in r.stdout and "did you mean 'h100'?" in r.stdout


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_validates(example: Path) -> None:
    r = airgap("validate", str(example), "--json")
    doc = json.loads(r.stdout)
    errors = [x for x in doc["findings"] if x["severity"] == "error"]
    assert r.returncode == 0 and doc["valid"], errors


def test_the_examples_cover_both_ecosystems() -> None:
    names = {p.name for p in EXAMPLES.glob("*.yaml")}
    assert {"demo.yaml", "qwen2.5-7b-multi.yaml"} <= names
    multi = json.loads(airgap("validate", str(EXAMPLES / "qwen2.5-7b-multi.yaml"), "--json").stdout)
    assert {t["vendor"] for t in multi["targets"]} == {"huawei", "nvidia"}


INIT_CASES = [
    ("default", [], "nvidia", "h100"),
    ("huawei", ["--vendor", "huawei"], "huawei", "ascend910b3"),
    ("ascend310p3", ["--chip", "ascend310p3"], "huawei", "ascend310p3"),
    ("alias", ["--chip", "H200"], "nvidia", "h200"),
    ("t4-no-bf16", ["--chip", "t4"], "nvidia", "t4"),
    ("gh200-arm", ["--chip", "gh200"], "nvidia", "gh200"),
    ("cpu", ["--vendor", "none"], "none", None),
]


@pytest.mark.parametrize(
    ("args", "vendor", "chip"), [pytest.param(*c[1:], id=c[0]) for c in INIT_CASES]
)
def test_init_writes_a_starter_that_validates(
    tmp_path: Path, args: list[str], vendor: str, chip: str | None
) -> None:
    r = airgap("init", "my-model", *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    written = tmp_path / "my-model.yaml"
    assert written.read_text().startswith("# yaml-language-server: $schema=")
    v = airgap("validate", str(written), "--json")
    doc = json.loads(v.stdout)
    assert v.returncode == 0, doc["findings"]
    (target,) = doc["targets"]
    assert target["vendor"] == vendor
    assert target["chips"] == ([chip] if chip else [])
    assert not [x for x in doc["findings"] if x["severity"] == "error"]


def test_init_with_several_chips_writes_one_target_per_chip(tmp_path: Path) -> None:
    r = airgap("init", "both", "--chip", "ascend910b3", "--chip", "h100", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "both.yaml").read_text()
    # the schema by its $id, the same on every machine: never a path into this installation
    assert text.startswith("# yaml-language-server: $schema=https://airgap.dev/schemas/")
    assert str(REPO) not in text and "site-packages" not in text
    doc = json.loads(airgap("validate", str(tmp_path / "both.yaml"), "--json").stdout)
    assert doc["valid"] is True, doc["findings"]
    assert [(t["id"], t["vendor"], t["chips"]) for t in doc["targets"]] == [
        ("ascend910b3", "huawei", ["ascend910b3"]),
        ("h100", "nvidia", ["h100"]),
    ]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["My Model"], "not a bundle name"),
        (["m", "--chip", "h100", "--chip", "H100"], "given twice"),
        (["m", "--chip", "h1000"], "did you mean"),
        (["m", "--vendor", "huawei", "--chip", "h100"], "nvidia chip"),
    ],
)
def test_init_refuses_bad_arguments(tmp_path: Path, args: list[str], words: str) -> None:
    r = airgap("init", *args, cwd=tmp_path)
    assert r.returncode == 2 and words in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_does_not_overwrite_without_force(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("mine\n")
    r = airgap("init", "m", cwd=tmp_path)
    assert r.returncode == 2 and "already exists" in r.stderr
    assert (tmp_path / "m.yaml").read_text() == "mine\n"
    assert airgap("init", "m", "--force", cwd=tmp_path).returncode == 0
    assert "apiVersion" in (tmp_path / "m.yaml").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["m.yaml"]  # no temporary left behind
