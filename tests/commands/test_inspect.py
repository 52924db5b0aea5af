"""`airgap inspect` and `airgap digest`: what a bundle says it holds, in every form it travels."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.golden import build_golden, write_public_key

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def forms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    top = tmp_path_factory.mktemp("inspect")
    (tar,) = build_golden(top / "tar")
    parts = build_golden(top / "parts", split=MIB)
    (folder,) = build_golden(top / "folder", layout_only=True)
    index = next(p for p in parts if p.name.endswith(".parts.json"))
    return {"tar": tar, "parts-index": index, "a-part": parts[0], "folder": folder}


@pytest.mark.parametrize("form", ["tar", "parts-index", "a-part", "folder"])
def test_every_form_says_the_same(forms: dict[str, Path], form: str) -> None:
    r = cli("inspect", str(forms[form]), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["name"], doc["version"], doc["verified"]) == ("golden", "1.0.0", False)
    assert doc["platform"] == "linux/amd64" and doc["accelerator"]["chips"] == ["h100"]
    assert [m["path"] for m in doc["model"]] == [
        "model/config.json",
        "model/model.safetensors",
        "model/tokenizer.json",
    ]
    assert doc["kernels"] == [
        {"name": "vadd", "kind": "cuda-cubin", "path": "kernels/vadd/vadd_sm90.cubin"}
    ]
    assert [f["path"] for f in doc["files"]] == ["config/serving.conf"]
    assert doc["signed"] and len(doc["signatures"]) == 1
    assert doc["roles"]["model"]["blobs"] == 3
    reference = json.loads(cli("inspect", str(forms["tar"]), "--json").stdout)
    assert doc["digest"] == reference["digest"] and doc["roles"] == reference["roles"]


def test_the_digest_is_the_sha256_of_bundle_json(forms: dict[str, Path]) -> None:
    with tarfile.open(forms["tar"]) as t:
        member = t.extractfile("airgap/bundle.json")
        assert member is not None
        want = "sha256:" + hashlib.sha256(member.read()).hexdigest()
    for form in forms.values():
        r = cli("digest", str(form))
        assert (r.returncode, r.stdout.strip()) == (0, want), r.stderr


def test_the_text_says_it_is_not_verified(forms: dict[str, Path]) -> None:
    r = cli("inspect", str(forms["tar"]))
    assert r.returncode == 0
    assert "golden 1.0.0" in r.stdout and "not verified" in r.stdout


def _with_descriptor(folder: Path, dest: Path, text: bytes) -> Path:
    import shutil

    shutil.copytree(folder, dest)
    (dest / "airgap" / "bundle.json").write_bytes(text)
    return dest


BAD_DESCRIPTORS = [
    # (id, how the descriptor is changed, words in the one error line)
    ("not-json", lambda d: b"{nope", "not JSON"),
    ("a-list", lambda d: b"[]", "not a valid descriptor"),
    (
        "name-twice",
        lambda d: d.replace(b'"bundleFormat": 1', b'"bundleFormat": 1, "bundleFormat": 1', 1),
        "given twice",
    ),
    ("wrong-type", lambda d: d.replace(b'"name": "golden"', b'"name": 7', 1), "at $.bundle.name"),
    (
        "bad-digest",
        lambda d: d.replace(b'"digest": "sha256:', b'"digest": "sha256:../../', 1),
        "at $.blobs",
    ),
    ("deep", lambda d: b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
    (
        "lone-surrogate",
        lambda d: d.replace(b'"name": "golden"', b'"name": "\\ud800"', 1),
        "not valid Unicode",
    ),
    ("nan", lambda d: d.replace(b'"bundleFormat": 1', b'"bundleFormat": NaN', 1), "NaN"),
]


@pytest.mark.parametrize(
    ("change", "words"), [b[1:] for b in BAD_DESCRIPTORS], ids=[b[0] for b in BAD_DESCRIPTORS]
)
def test_a_bad_descriptor_is_one_clear_error(
    forms: dict[str, Path], tmp_path: Path, change: object, words: str
) -> None:
    original = (forms["folder"] / "airgap" / "bundle.json").read_bytes()
    bundle = _with_descriptor(forms["folder"], tmp_path / "b", change(original))  # type: ignore[operator]
    pub = write_public_key(tmp_path)
    for args in (["inspect"], ["images"], ["verify", "--key", str(pub)], ["audit"]):
        r = cli(args[0], str(bundle), *args[1:])
        assert r.returncode in (1, 2), (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    r = cli("verify", str(bundle), "--key", str(pub))
    assert r.returncode == 1 and "bundle.json" in r.stdout, r.stdout + r.stderr
    r = cli("inspect", str(bundle))
    assert r.returncode == 2 and words in r.stderr, r.stderr
