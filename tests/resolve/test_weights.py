"""Model weights to per-file digests: local folders, Hugging Face cache snapshots, safetensors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from packager.errors import PinMismatch, ResolveError
from packager.manifest.model import Manifest, load_manifest
from packager.resolve.safetensors import dominant_float_dtype, read_header
from packager.resolve.statcache import StatCache
from packager.resolve.weights import file_role, resolve_weights
from tests.support.services import unavailable

MINILM_INCLUDE = '["*.safetensors", "*.json", "vocab.txt", "tokenizer*"]'


def manifest_for(
    folder: Path, source: str, *, precision: str = "fp32", extra: str = ""
) -> Manifest:
    text = textwrap.dedent(
        f"""\
        apiVersion: airgap/v1
        kind: Bundle
        metadata: {{name: t, version: 1.0.0}}
        model:
          name: sentence-transformers/all-MiniLM-L6-v2
          source: {source}
          format: safetensors
          precision: {precision}
        {textwrap.indent(extra, "  ").rstrip()}
        target: {{platform: linux/amd64, accelerator: {{vendor: none}}}}
        """
    )
    path = folder / "m.yaml"
    path.write_text(text)
    result = load_manifest(path)
    assert result.manifest is not None, result.findings
    return result.manifest


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[StatCache]:
    with StatCache(tmp_path / "stat.sqlite") as c:
        yield c


@pytest.fixture
def weights(tmp_path: Path, minilm_dir: Path) -> Path:
    """A copy of the real MiniLM folder the test may change."""
    dest = tmp_path / "weights"

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)  # the tests add and remove files, never change them
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(minilm_dir, dest, copy_function=link_or_copy)
    return dest


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_real_minilm_folder_locks_file_by_file(
    tmp_path: Path, weights: Path, cache: StatCache
) -> None:
    m = manifest_for(tmp_path, "{path: ./weights}", extra=f"include: {MINILM_INCLUDE}")
    model, findings = resolve_weights(m, cache)
    assert findings == []
    paths = [f.path for f in model.files]
    assert paths == sorted(paths)
    assert "model.safetensors" in paths and "1_Pooling/config.json" in paths
    assert "README.md" not in paths  # not included
    st = next(f for f in model.files if f.path == "model.safetensors")
    assert st.sha256 == sha256(weights / "model.safetensors")
    assert st.size == (weights / "model.safetensors").stat().st_size
    assert st.role == "weight"
    assert model.source == {"path": "weights"}
    assert model.safetensors is not None
    assert model.safetensors.tensors == 103 + 1
    assert model.safetensors.parameters == 22_713_728
    assert dominant_float_dtype(model.safetensors.dtypes) == "F32"


def test_a_dtype_that_disagrees_with_the_precision_is_a_finding(
    tmp_path: Path, weights: Path, cache: StatCache
) -> None:
    m = manifest_for(tmp_path, "{path: ./weights}", precision="bf16")
    _, findings = resolve_weights(m, cache)
    (f,) = findings
    assert f.code == "AG320" and f.severity.value == "error"
    assert "F32" in f.message and "bf16" in f.message
    assert f.json_path == "$.model.precision" and f.location.line == 8


def hf_cache_from(minilm_dir: Path, root: Path, commit: str, branch: str = "main") -> Path:
    """The layout huggingface_hub writes: blobs by etag, snapshots of symlinks, refs/."""
    repo = root / "models--sentence-transformers--all-MiniLM-L6-v2"
    snap = repo / "snapshots" / commit
    for src in sorted(minilm_dir.rglob("*")):
        if not src.is_file():
            continue
        blob = repo / "blobs" / sha256(src)
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, blob)
        link = snap / src.relative_to(minilm_dir)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / branch).write_text(commit)
    return repo


COMMIT = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"


@pytest.mark.parametrize("revision", [COMMIT, "main"], ids=["commit", "branch-through-refs"])
def test_a_hugging_face_cache_snapshot_locks_like_the_folder(
    tmp_path: Path, minilm_dir: Path, cache: StatCache, revision: str
) -> None:
    hf_cache_from(minilm_dir, tmp_path / "hub", COMMIT)
    source = f"{{huggingface: {{repo: sentence-transformers/all-MiniLM-L6-v2, revision: {revision}, cache: ./hub}}}}"
    m = manifest_for(tmp_path, source, extra=f"include: {MINILM_INCLUDE}")
    model, _ = resolve_weights(m, cache)
    assert model.source == {
        "huggingface": "sentence-transformers/all-MiniLM-L6-v2",
        "revision": revision,
        "commit": COMMIT,
    }
    st = next(f for f in model.files if f.path == "model.safetensors")
    assert st.sha256 == sha256(minilm_dir / "model.safetensors")


def test_the_hf_cache_location_comes_from_the_environment(
    tmp_path: Path, minilm_dir: Path, cache: StatCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    hf_cache_from(minilm_dir, tmp_path / "elsewhere", COMMIT)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    m = manifest_for(
        tmp_path, "{huggingface: {repo: sentence-transformers/all-MiniLM-L6-v2, revision: main}}"
    )
    model, _ = resolve_weights(m, cache)
    assert model.source["commit"] == COMMIT


@pytest.mark.parametrize(
    ("revision", "words"),
    [("v9", "neither a commit nor a ref"), ("0" * 40, "not in the cache")],
    ids=["unknown-branch", "missing-snapshot"],
)
def test_hf_revisions_that_do_not_resolve(
    tmp_path: Path, minilm_dir: Path, cache: StatCache, revision: str, words: str
) -> None:
    hf_cache_from(minilm_dir, tmp_path / "hub", COMMIT)
    source = f"{{huggingface: {{repo: sentence-transformers/all-MiniLM-L6-v2, revision: '{revision}', cache: ./hub}}}}"
    with pytest.raises(ResolveError, match=words) as info:
        resolve_weights(manifest_for(tmp_path, source), cache)
    assert info.value.hint


def test_a_repo_missing_from_the_hf_cache(tmp_path: Path, cache: StatCache) -> None:
    (tmp_path / "hub").mkdir()
    m = manifest_for(tmp_path, "{huggingface: {repo: a/b, revision: main, cache: ./hub}}")
    with pytest.raises(ResolveError, match="not in the Hugging Face cache") as info:
        resolve_weights(m, cache)
    assert "huggingface-cli download a/b" in (info.value.hint or "")


def test_an_hf_blob_that_was_never_downloaded_is_a_dangling_link(
    tmp_path: Path, minilm_dir: Path, cache: StatCache
) -> None:
    repo = hf_cache_from(minilm_dir, tmp_path / "hub", COMMIT)
    (repo / "blobs" / sha256(minilm_dir / "config.json")).unlink()
    m = manifest_for(
        tmp_path,
        f"{{huggingface: {{repo: sentence-transformers/all-MiniLM-L6-v2, revision: {COMMIT}, cache: ./hub}}}}",
    )
    with pytest.raises(ResolveError, match="dangling"):
        resolve_weights(m, cache)


# Bad local folders: (id, how to break the folder, words in the error)
def _empty(w: Path) -> None:
    shutil.rmtree(w)
    w.mkdir()


def _missing(w: Path) -> None:
    shutil.rmtree(w)


def _dangling(w: Path) -> None:
    (w / "extra.json").symlink_to(w / "nowhere.json")


def _escaping(w: Path) -> None:
    outside = w.parent / "outside.json"
    outside.write_text("{}")
    (w / "extra.json").symlink_to(outside)


def _fifo(w: Path) -> None:
    os.mkfifo(w / "pipe.json")


def _a_file(w: Path) -> None:
    shutil.rmtree(w)
    w.write_text("not a folder")


BAD_FOLDERS = [
    ("missing-source", _missing, "does not exist"),
    ("a-file-not-a-folder", _a_file, "is not a folder"),
    ("empty-folder", _empty, "is empty"),
    ("dangling-symlink", _dangling, "dangling symbolic link"),
    ("symlink-escaping-the-source", _escaping, "escapes the source folder"),
    ("special-file", _fifo, "not a regular file"),
]


@pytest.mark.parametrize(
    ("breaker", "words"), [pytest.param(b, w, id=i) for i, b, w in BAD_FOLDERS]
)
def test_bad_weight_folders_are_refused_by_name(
    tmp_path: Path, weights: Path, cache: StatCache, breaker: object, words: str
) -> None:
    breaker(weights)  # type: ignore[operator]
    with pytest.raises(ResolveError, match=words):
        resolve_weights(manifest_for(tmp_path, "{path: ./weights}"), cache)


def test_a_symlink_inside_the_folder_is_followed(
    tmp_path: Path, weights: Path, cache: StatCache
) -> None:
    (weights / "alias.json").symlink_to("config.json")
    model, _ = resolve_weights(manifest_for(tmp_path, "{path: ./weights}"), cache)
    files = {f.path: f.sha256 for f in model.files}
    assert files["alias.json"] == files["config.json"]


def test_a_glob_that_matches_nothing_is_named(
    tmp_path: Path, weights: Path, cache: StatCache
) -> None:
    m = manifest_for(tmp_path, "{path: ./weights}", extra='include: ["*.safetensors", "*.gguf"]')
    with pytest.raises(ResolveError, match=r"'\*\.gguf' matches no file"):
        resolve_weights(m, cache)


def test_exclude_globs_drop_files(tmp_path: Path, weights: Path, cache: StatCache) -> None:
    m = manifest_for(tmp_path, "{path: ./weights}", extra='exclude: ["*.md", "1_Pooling/*"]')
    model, _ = resolve_weights(m, cache)
    paths = {f.path for f in model.files}
    assert "README.md" not in paths and "1_Pooling/config.json" not in paths
    assert "config.json" in paths


def test_model_pins_are_checked(tmp_path: Path, weights: Path, cache: StatCache) -> None:
    good = sha256(weights / "config.json")
    m = manifest_for(tmp_path, "{path: ./weights}", extra=f"sha256: {{config.json: {good}}}")
    resolve_weights(m, cache)
    bad = "0" * 64
    m = manifest_for(tmp_path, "{path: ./weights}", extra=f"sha256: {{config.json: '{bad}'}}")
    with pytest.raises(PinMismatch) as info:
        resolve_weights(m, cache)
    assert good in str(info.value) and bad in str(info.value)
    assert info.value.location is not None and info.value.location.line == 9


def test_unreadable_files_are_named(minilm_dir: Path) -> None:
    """Run the resolver as an unprivileged user: root reads every file, nobody does not."""
    if shutil.which("setpriv") is None:
        unavailable("setpriv (util-linux) is not installed (scripts/services.sh installs it)")
    top = Path(tempfile.mkdtemp(prefix="airgap-perm-"))
    try:
        top.chmod(0o755)
        w = top / "weights"
        w.mkdir()
        shutil.copyfile(minilm_dir / "config.json", w / "config.json")
        (w / "secret.json").write_text("{}")
        (w / "secret.json").chmod(0)
        for p in (w, w / "config.json"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        (top / "m.yaml").write_text(
            "apiVersion: airgap/v1\nkind: Bundle\nmetadata: {name: t, version: 1.0.0}\n"
            "model: {name: m, source: {path: ./weights}, format: gguf}\n"
            "target: {platform: linux/amd64, accelerator: {vendor: none}}\n"
        )
        code = (
            "import sys; from pathlib import Path\n"
            "from packager.manifest.model import load_manifest\n"
            "from packager.resolve.weights import resolve_weights\n"
            "from packager.resolve.statcache import StatCache\n"
            "from packager.errors import ResolveError\n"
            "m = load_manifest(Path(sys.argv[1])).manifest\n"
            "try:\n    resolve_weights(m, StatCache(None))\n"
            "except ResolveError as e:\n    print(e); sys.exit(3)\n"
        )
        repo = Path(__file__).resolve().parents[2]
        r = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             sys.executable, "-c", code, str(top / "m.yaml")],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": str(repo), "HOME": str(top)},
        )  # fmt: skip
        assert r.returncode == 3, r.stdout + r.stderr
        assert "secret.json" in r.stdout and "Permission denied" in r.stdout
    finally:
        shutil.rmtree(top, ignore_errors=True)


# ----------------------------------------------------------------------------- safetensors


def safetensors_bytes(header: object, data: bytes = b"", *, length: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


GOOD = {"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}, "__metadata__": {"a": "b"}}

BAD_SAFETENSORS = [
    ("too-short", b"\x01\x02", "shorter than"),
    ("length-past-end", safetensors_bytes(GOOD, b"\0" * 8, length=10_000), "runs past the end"),
    ("length-over-limit", struct.pack("<Q", 200 * 1024 * 1024) + b"{}", "exceeds"),
    ("not-json", struct.pack("<Q", 4) + b"abcd", "not JSON"),
    ("a-list", safetensors_bytes([1, 2]), "not a JSON object"),
    ("unknown-dtype", safetensors_bytes({"w": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 1]}}, b"\0"), "unknown dtype"),
    ("offsets-outside", safetensors_bytes({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8), "outside the data"),
    ("shape-does-not-fill", safetensors_bytes({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}, b"\0" * 16), "does not fill"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "words"), [pytest.param(c, w, id=i) for i, c, w in BAD_SAFETENSORS]
)
def test_broken_safetensors_headers_are_refused(tmp_path: Path, content: bytes, words: str) -> None:
    f = tmp_path / "m.safetensors"
    f.write_bytes(content)
    with pytest.raises(ResolveError, match=words):
        read_header(f)


def test_a_good_header_is_summarized(tmp_path: Path) -> None:
    f = tmp_path / "m.safetensors"
    f.write_bytes(safetensors_bytes(GOOD, b"\0" * 8))
    h = read_header(f)
    assert (h.tensors, h.parameters, h.dtypes, h.metadata) == (1, 4, {"BF16": 4}, {"a": "b"})


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("model-00001-of-00004.safetensors", "weight"),
        ("pytorch_model.bin", "weight"),
        ("tokenizer.json", "tokenizer"),
        ("tokenizer.model", "tokenizer"),
        ("vocab.txt", "tokenizer"),
        ("merges.txt", "tokenizer"),
        ("config.json", "config"),
        ("1_Pooling/config.json", "config"),
        ("README.md", "doc"),
        ("LICENSE", "doc"),
        ("modeling_qwen.py", "code"),
        (".gitattributes", "other"),
    ],
)
def test_file_roles(name: str, role: str) -> None:
    assert file_role(name) == role


def test_a_source_the_system_cannot_look_up_is_refused_by_name(
    tmp_path: Path, cache: StatCache
) -> None:
    """Found by tests/support/fuzz: an OSError (ENAMETOOLONG) escaped lock."""
    with pytest.raises(ResolveError, match="cannot be looked up: File name too long"):
        resolve_weights(manifest_for(tmp_path, "{path: ./" + "w" * 300 + "}"), cache)
