"""OpenSSF model signatures out: every bundle signed with an ECDSA key carries model.sig for its
weights, install puts it beside them, and the real verifier (PyPI model-signing, run with no
network) accepts it on the installed folder, and rejects it once any file there changes."""

from __future__ import annotations

import base64
import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from packager.bundle import layout
from tests.support.cli import airgap
from tests.support.fs import link_tree
from tests.support.hsm import IMPORTED, SoftHsm
from tests.support.oms import offline_airgap, verify_key
from tests.support.projects import PASS, make_key

pytestmark = pytest.mark.slow

MANIFEST = """\
apiVersion: airgap/v1
kind: Bundle
metadata: {name: oms, version: 1.0.0, expires: 30d}
model:
  name: sentence-transformers/all-MiniLM-L6-v2
  source: {path: ./weights}
  format: safetensors
  precision: fp32
target:
  platform: linux/amd64
  accelerator: {vendor: none}
"""


@pytest.fixture
def project(tmp_path: Path, minilm_dir: Path) -> Path:
    # every file of the real model, .gitattributes and the 1_Pooling/ folder included
    link_tree(minilm_dir, tmp_path / "weights")
    (tmp_path / "m.yaml").write_text(MANIFEST)
    return tmp_path


def _env(project: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "AIRGAP_KEY_PASSPHRASE": PASS,
        "AIRGAP_CACHE_DIR": str(project / "cache"),
        **(extra or {}),
    }


def _build(project: Path, key: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    r = airgap("build", str(project / "m.yaml"), "--out", str(project / "out"), "--key", key,
               "--json", env=_env(project, extra), timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def _install(project: Path, tar: Path, *pubs: Path) -> Path:
    """Install with no network, as at the site."""
    args = [a for p in pubs for a in ("--key", str(p))]
    r = offline_airgap("install", str(tar), "--prefix", str(project / "site"), *args,
                       "--no-probe", env=_env(project))  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return project / "site" / "bundles" / "oms" / "1.0.0" / "model"


def test_the_installed_weights_verify_with_model_signing_offline(project: Path) -> None:
    priv, pub, kid = make_key(project, "release")
    built = _build(project, str(priv))["bundles"][0]
    assert built["model_signature"] == {"path": "airgap/model.sig", "keyid": kid}
    model = _install(project, Path(built["files"][0]), pub)
    sig = model / "model.sig"
    assert sig.is_file() and (model / ".gitattributes").is_file()

    ok = verify_key(sig, pub, model)
    assert ok.returncode == 0 and "Verification succeeded" in ok.stdout, ok.stdout + ok.stderr
    # model.sig beside the weights is part of the install: the site audit stays clean
    audit = airgap("audit", "--site", str(project / "site"), "--json")
    assert audit.returncode == 0, audit.stdout

    # any weight file that changes breaks it (the installed files are hard links: copy first)
    target = model / "1_Pooling" / "config.json"
    data = target.read_bytes()
    target.unlink()
    target.write_bytes(data.replace(b"true", b"fals", 1))
    bad = verify_key(sig, pub, model)
    assert bad.returncode != 0
    assert "1_Pooling/config.json" in bad.stderr
    # and the site audit names the same file
    drift = json.loads(airgap("audit", "--site", str(project / "site"), "--json").stdout)
    assert [m["path"] for m in drift["bundles"][0]["modified"]] == ["model/1_Pooling/config.json"]


def test_a_file_added_beside_the_weights_breaks_it(project: Path) -> None:
    priv, pub, _ = make_key(project, "release")
    built = _build(project, str(priv))["bundles"][0]
    model = _install(project, Path(built["files"][0]), pub)
    (model / "extra.bin").write_bytes(b"not signed")
    bad = verify_key(model / "model.sig", pub, model)
    assert bad.returncode != 0 and "extra.bin" in bad.stderr


def test_the_oms_fields_airgap_fills(project: Path) -> None:
    priv, pub, kid = make_key(project, "release")
    tar = Path(_build(project, str(priv))["bundles"][0]["files"][0])
    with tarfile.open(tar) as tf:
        raw = tf.extractfile(layout.MODEL_SIGNATURE).read()  # type: ignore[union-attr]
        descriptor = json.loads(tf.extractfile(layout.BUNDLE_JSON).read())  # type: ignore[union-attr]
    sig = json.loads(raw)
    assert sig["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert sig["verificationMaterial"] == {
        "publicKey": {"hint": hashlib.sha256(pub.read_bytes()).hexdigest()},
        "tlogEntries": [],
    }
    env = sig["dsseEnvelope"]
    assert env["payloadType"] == "application/vnd.in-toto+json"
    assert [s["keyid"] for s in env["signatures"]] == [kid]
    payload = base64.b64decode(env["payload"])
    record = descriptor["model_signature"]
    assert hashlib.sha256(payload).hexdigest() == record["statement_sha256"]
    statement = json.loads(payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    assert statement["subject"] == [
        {"name": "sentence-transformers/all-MiniLM-L6-v2",
         "digest": {"sha256": record["root_digest"]}}
    ]  # fmt: skip
    assert statement["predicate"]["serialization"] == {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": False,
        "ignore_paths": ["model.sig", ".git", ".gitattributes", ".github", ".gitignore"],
    }
    locked = {f["path"]: f["sha256"] for f in descriptor["lock"]["model"]["files"]}
    resources = {r["name"]: r["digest"] for r in statement["predicate"]["resources"]}
    assert resources == {p: d for p, d in locked.items() if p != ".gitattributes"}
    assert all(r["algorithm"] == "sha256" for r in statement["predicate"]["resources"])


def test_a_bundle_signed_in_a_token_carries_a_model_signature_model_signing_accepts(
    project: Path, softhsm: SoftHsm
) -> None:
    built = _build(project, softhsm.uri(IMPORTED), softhsm.env)["bundles"][0]
    assert built["model_signature"] is not None
    model = _install(project, Path(built["files"][0]), softhsm.imported_public)
    ok = verify_key(model / "model.sig", softhsm.imported_public, model)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_an_ed25519_bundle_says_it_has_no_model_sig_and_an_ecdsa_cosigner_adds_one(
    project: Path,
) -> None:
    ed_priv, ed_pub, _ = make_key(project, "ed", "ed25519")
    built = _build(project, str(ed_priv))["bundles"][0]
    assert built["model_signature"] is None
    assert any("no model.sig" in n and "ed25519" in n for n in built["notes"])
    tar = Path(built["files"][0])
    v = json.loads(airgap("verify", str(tar), "--key", str(ed_pub), "--json").stdout)
    assert v["verified"] and v["model_signature"]["state"] == "absent"

    ec_priv, ec_pub, ec_kid = make_key(project, "officer")
    s = airgap("sign", str(tar), "--key", str(ec_priv), "--json", env=_env(project))
    assert s.returncode == 0, s.stderr
    assert json.loads(s.stdout)["model_signature_added"] is True
    v = json.loads(
        airgap("verify", str(tar), "--key", str(ed_pub), "--key", str(ec_pub), "--json").stdout
    )
    assert v["verified"], v["failures"]
    assert v["model_signature"]["state"] == "signed" and v["model_signature"]["keyid"] == ec_kid
    model = _install(project, tar, ed_pub, ec_pub)
    ok = verify_key(model / "model.sig", ec_pub, model)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_a_changed_model_sig_fails_verify_and_names_it(project: Path) -> None:
    priv, pub, _ = make_key(project, "release")
    r = airgap("build", str(project / "m.yaml"), "--out", str(project / "out"), "--key",
               str(priv), "--layout-only", env=_env(project), timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    folder = project / "out" / "oms-1.0.0"
    sig_file = folder / layout.MODEL_SIGNATURE
    doc = json.loads(sig_file.read_bytes())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"].pop()  # sign one file less
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    sig_file.write_text(json.dumps(doc))
    v = airgap("verify", str(folder), "--key", str(pub), "--json")
    assert v.returncode == 1
    failures = json.loads(v.stdout)["failures"]
    assert [f["subject"] for f in failures] == ["airgap/model.sig"]
    assert "signs other files than bundle.json lists" in failures[0]["message"]
    i = airgap("install", str(folder), "--prefix", str(project / "site"), "--key", str(pub))
    assert i.returncode == 1 and not (project / "site").exists()
