"""Model files that run code at load time through the commands: validate lists them (file and
digest), lock and build refuse them until model.allow_code lists their digests, and audit (text,
JSON, HTML) shows what was allowed and by which signing keys. A pickle whose __reduce__ would
create a canary file goes all the way through; the canary never appears."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.support.cli import airgap
from tests.support.pickles import evil_pickle
from tests.support.projects import PASS, make_key, tiny_safetensors

MANIFEST = """\
apiVersion: airgap/v1
kind: Bundle
metadata: {{name: coded, version: 1.0.0}}
model:
  name: org/coded
  source: {{path: ./weights}}
  format: safetensors
  precision: bf16
{allow}target:
  platform: linux/amd64
  accelerator: {{vendor: none}}
"""


def project(folder: Path, canary: Path) -> dict[str, str]:
    w = folder / "weights"
    w.mkdir(parents=True)
    (w / "model.safetensors").write_bytes(tiny_safetensors())
    files = {
        "extra_state.bin": evil_pickle(canary),
        "config.json": b'{"architectures": ["Coded"], "auto_map": {"AutoModel": "modeling_coded.M"}}',
        "modeling_coded.py": b"class M:\n    pass\n",
        "tokenizer.json": b'{"version": "1.0"}',
    }
    for name, data in files.items():
        (w / name).write_bytes(data)
    return {n: hashlib.sha256(d).hexdigest() for n, d in files.items() if n != "tokenizer.json"}


def manifest(folder: Path, allow: list[str]) -> Path:
    text = "  allow_code: [" + ", ".join(allow) + "]\n" if allow else ""
    path = folder / "m.yaml"
    path.write_text(MANIFEST.format(allow=text))
    return path


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    path = tmp_path / "CANARY"
    yield path
    assert not path.exists(), "airgap ran the pickle's code"


def env(tmp_path: Path) -> dict[str, str]:
    return {"AIRGAP_CACHE_DIR": str(tmp_path / "cache"), "AIRGAP_KEY_PASSPHRASE": PASS}


def test_validate_lists_each_file_with_its_digest_and_lock_refuses(
    tmp_path: Path, canary: Path
) -> None:
    digests = project(tmp_path, canary)
    m = manifest(tmp_path, [])
    r = airgap("validate", str(m), "--json", env=env(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    found = [f for f in json.loads(r.stdout)["findings"] if f["code"] == "AG701"]
    assert {f["message"].split(" ")[0] for f in found} == set(digests)
    for f in found:
        name = f["message"].split(" ")[0]
        assert digests[name] in f["message"] and "runs code at load time" in f["message"]
        assert all(d in f["hint"] for d in digests.values())  # the hint names every digest
    r = airgap("lock", str(m), env=env(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "AG701" in r.stdout + r.stderr and digests["extra_state.bin"] in r.stdout + r.stderr
    assert not (tmp_path / "m.yaml.lock.json").exists() and not list(tmp_path.glob("*.lock.json"))


def test_allowed_code_is_locked_built_and_audited_with_its_signers(
    tmp_path: Path, canary: Path
) -> None:
    digests = project(tmp_path, canary)
    m = manifest(tmp_path, sorted(digests.values()))
    r = airgap("validate", str(m), "--json", env=env(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert {f["code"] for f in json.loads(r.stdout)["findings"]} >= {"AG700"}
    priv, pub, keyid = make_key(tmp_path, "officer")
    r = airgap("lock", str(m), env=env(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    lock = json.loads(next(tmp_path.glob("*.lock.json")).read_text())
    kinds = {f["path"]: f.get("runs_code") for f in lock["model"]["files"]}
    assert kinds == {"model.safetensors": None, "extra_state.bin": "pickle",
                     "config.json": "auto_map", "modeling_coded.py": "python",
                     "tokenizer.json": None}  # fmt: skip
    assert lock["model"]["allow_code"] == sorted(digests.values())
    out = tmp_path / "out"
    r = airgap(
        "build",
        str(m),
        "--locked",
        "--out",
        str(out),
        "--key",
        str(priv),
        env=env(tmp_path),
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    bundle = next(out.glob("*.airgap.tar"))
    html = tmp_path / "report.html"
    r = airgap(
        "audit", str(bundle), "--key", str(pub), "--json", "--html", str(html), env=env(tmp_path)
    )
    assert r.returncode == 0, r.stdout + r.stderr
    lc = json.loads(r.stdout)["load_code"]
    assert {f["path"]: (f["kind"], f["sha256"], f["allowed"]) for f in lc["files"]} == {
        n: (k, digests[n], True) for n, k in
        (("extra_state.bin", "pickle"), ("config.json", "auto_map"), ("modeling_coded.py", "python"))
    }  # fmt: skip
    assert lc["signatures_checked"] and len(lc["allowed_by"]) == 1 and keyid in lc["allowed_by"][0]
    page = html.read_text()
    assert "Code that runs when the model loads" in page and digests["extra_state.bin"] in page
    text = airgap("audit", str(bundle), "--key", str(pub), env=env(tmp_path))
    assert "runs code at load time: 3 file(s)" in text.stdout and keyid in text.stdout
    # the allowance for the pickle taken back: the build refuses it, naming it and its digest
    m = manifest(tmp_path, [digests["config.json"], digests["modeling_coded.py"]])
    r = airgap(
        "build",
        str(m),
        "--out",
        str(tmp_path / "out2"),
        "--key",
        str(priv),
        env=env(tmp_path),
        timeout=300,
    )
    assert r.returncode == 1 and "extra_state.bin" in r.stdout + r.stderr
    assert digests["extra_state.bin"] in r.stdout + r.stderr
