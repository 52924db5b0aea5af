"""`airgap build`: a signed, reproducible OCI-layout bundle, read back by tools no one here wrote."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from packager.signing import keys
from tests.support.cli import REPO, airgap
from tests.support.fs import link_tree, mounted_tmpfs
from tests.support.sbom_schema import assert_valid_cyclonedx_16

PASSPHRASE = "correct horse battery staple"

MANIFEST = """\
apiVersion: airgap/v1
kind: Bundle
metadata: {name: demo, version: 1.0.0, expires: 30d}
model:
  name: sentence-transformers/all-MiniLM-L6-v2
  source: {path: ./weights}
  format: safetensors
  precision: fp32
  include: ["*.safetensors", "*.json", "vocab.txt"]
  license: Apache-2.0
target:
  platform: linux/amd64
  accelerator: {vendor: none}
runtime:
  files:
    - {source: files/run.sh, dest: bin/}
    - {source: files/same.txt, dest: a/}
    - {source: files/same.txt, dest: b/}
"""


@pytest.fixture
def project(tmp_path: Path, minilm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    link_tree(minilm_dir, tmp_path / "weights")
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (tmp_path / "files" / "same.txt").write_text("same content twice\n")
    (tmp_path / "m.yaml").write_text(MANIFEST)
    monkeypatch.setenv("AIRGAP_KEY_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    monkeypatch.setenv("AIRGAP_BUILDER_ID", "https://airgap.dev/builder/test")
    return tmp_path


def make_key(
    folder: Path, algorithm: str = "ecdsa-p256-sha256", name: str = "k"
) -> tuple[Path, Path, str]:
    key = keys.generate_private_key(algorithm)  # type: ignore[arg-type]
    priv, pub = folder / f"{name}.key.pem", folder / f"{name}.pub.pem"
    priv.write_bytes(keys.private_key_pem(key, PASSPHRASE.encode()))
    pub.write_bytes(keys.public_key_pem(key))
    return priv, pub, keys.keyid(key.public_key())


def build(project: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    r = airgap("build", str(project / "m.yaml"), "--out", str(project / "out"), "--json", *args)
    try:
        doc = json.loads(r.stdout)
    except json.JSONDecodeError:
        doc = {}
    return r.returncode, doc, r.stderr


def extract(tar: Path, dest: Path) -> Path:
    with tarfile.open(tar) as tf:
        tf.extractall(dest, filter="data")
    return dest


@pytest.fixture
def signed(project: Path) -> tuple[Path, Path, str, Path]:
    priv, pub, kid = make_key(project)
    code, out, err = build(project, "--key", str(priv))
    assert code == 0, err
    tar = project / "out" / "demo-1.0.0.airgap.tar"
    assert out["bundles"][0]["files"] == [str(tar)]
    return tar, pub, kid, extract(tar, project / "x")


def test_the_tar_is_deterministic_blobs_first(signed: tuple[Path, Path, str, Path]) -> None:
    tar, _, kid, x = signed
    with tarfile.open(tar) as tf:
        infos = tf.getmembers()
    names = [i.name for i in infos]
    blobs = [n for n in names if n.startswith("blobs/sha256/")]
    model = dict.fromkeys(
        f"blobs/sha256/{f['sha256']}"
        for f in json.loads((x / "airgap/bundle.json").read_text())["lock"]["model"]["files"]
    )
    assert names[:2] == ["blobs", "blobs/sha256"]
    assert names[2 : 2 + len(blobs)] == blobs  # every blob before anything else
    assert blobs[: len(model)] == list(model)  # the model files first, in the lock's order
    assert blobs[len(model) :] == sorted(blobs[len(model) :])
    rest = names[2 + len(blobs) :]
    assert rest == sorted(rest) and rest[:2] == ["airgap", "airgap/attestation.dsse.json"]
    assert "airgap/bundle.json" in names and f"airgap/bundle.json.sig/{kid}.sig" in names
    assert {(i.mtime, i.uid, i.gid, i.uname) for i in infos} == {(1700000000, 0, 0, "")}
    assert all(i.isfile() or i.isdir() for i in infos)


def test_openssl_verifies_the_signature(signed: tuple[Path, Path, str, Path]) -> None:
    _, pub, kid, x = signed
    sig = base64.b64decode((x / f"airgap/bundle.json.sig/{kid}.sig").read_bytes())
    (x.parent / "sig.der").write_bytes(sig)
    ok = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature", str(x.parent / "sig.der"),
         str(x / "airgap/bundle.json")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert ok.returncode == 0 and "Verified OK" in ok.stdout
    tampered = x.parent / "bundle.json"
    tampered.write_bytes((x / "airgap/bundle.json").read_bytes().replace(b'"demo"', b'"dem0"'))
    bad = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature", str(x.parent / "sig.der"), str(tampered)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode != 0


def oci_validator(shared_dir: Path, name: str) -> jsonschema.Validator:
    """A validator for one upstream OCI schema; its relative $refs (resolved against nested ids)
    are served from the same folder by file name, never fetched."""
    folder = shared_dir / "oci-image-spec-schemas"

    def retrieve(uri: str) -> Resource[Any]:
        f = folder / uri.rstrip("/").rsplit("/", 1)[-1].split("#")[0]
        if not f.is_file():
            raise LookupError(uri)
        return Resource.from_contents(json.loads(f.read_text()), default_specification=DRAFT4)

    registry: Registry[Any] = Registry(retrieve=retrieve)  # type: ignore[call-arg]
    schema = json.loads((folder / name).read_text())
    return jsonschema.Draft4Validator(schema, registry=registry)


def test_the_layout_follows_the_upstream_oci_and_modelpack_schemas(
    signed: tuple[Path, Path, str, Path], shared_dir: Path
) -> None:
    _, _, _, x = signed
    assert json.loads((x / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((x / "index.json").read_text())
    oci_validator(shared_dir, "image-index-schema.json").validate(index)
    manifest_v = oci_validator(shared_dir, "image-manifest-schema.json")
    refs = {d["annotations"]["org.opencontainers.image.ref.name"]: d for d in index["manifests"]}
    assert {"airgap/model", "airgap/files", "airgap/probe"} <= set(refs)
    for d in index["manifests"]:
        blob = x / "blobs/sha256" / d["digest"].split(":")[1]
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == d["digest"].split(":")[1]
        manifest_v.validate(json.loads(blob.read_text()))
    model = json.loads(
        (x / "blobs/sha256" / refs["airgap/model"]["digest"].split(":")[1]).read_text()
    )
    assert model["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
    config = json.loads((x / "blobs/sha256" / model["config"]["digest"].split(":")[1]).read_text())
    modelpack = json.loads((shared_dir / "modelpack-schemas" / "config-schema.json").read_text())
    jsonschema.Draft202012Validator(modelpack, format_checker=jsonschema.FormatChecker()).validate(
        config
    )
    paths = {
        layer["annotations"]["org.cncf.model.filepath"]: layer["mediaType"]
        for layer in model["layers"]
    }
    assert paths["model.safetensors"] == "application/vnd.cncf.model.weight.v1.raw"
    assert paths["config.json"] == "application/vnd.cncf.model.weight.config.v1.raw"
    assert config["modelfs"]["diffIds"] == [layer["digest"] for layer in model["layers"]]


def test_bundle_json_lists_every_blob_and_follows_its_schema(
    signed: tuple[Path, Path, str, Path],
) -> None:
    _, _, _, x = signed
    doc = json.loads((x / "airgap/bundle.json").read_text())
    schema = json.loads((REPO / "schemas/bundle.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    listed = {b["digest"].split(":")[1] for b in doc["blobs"]}
    assert listed == {p.name for p in (x / "blobs/sha256").iterdir()}
    same = [b for b in doc["blobs"] if "a/same.txt" in b["paths"]]
    assert same[0]["paths"] == ["a/same.txt", "b/same.txt"]  # one blob, two install paths
    assert doc["bundle"]["created"] == "2023-11-14T22:13:20Z"
    assert doc["bundle"]["expires"] == "2023-12-14T22:13:20Z"
    for f in doc["files"]:
        assert hashlib.sha256((x / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    assert "airgap/probe/__main__.py" in {f["path"] for f in doc["files"]}


def test_the_sbom_is_valid_cyclonedx_16(signed: tuple[Path, Path, str, Path]) -> None:
    _, _, _, x = signed
    sbom = json.loads((x / "airgap/sbom.cdx.json").read_text())
    assert_valid_cyclonedx_16(sbom)
    model = next(c for c in sbom["components"] if c["type"] == "machine-learning-model")
    assert model["name"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_the_attestation_verifies_with_securesystemslib(
    signed: tuple[Path, Path, str, Path],
) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    _, pub, kid, x = signed
    env_doc = json.loads((x / "airgap/attestation.dsse.json").read_text())
    assert env_doc["payloadType"] == "application/vnd.in-toto+json"
    key = SSlibKey.from_crypto(load_pem_public_key(pub.read_bytes()), keyid=kid)  # type: ignore[arg-type]
    Envelope.from_dict(dict(env_doc)).verify([key], 1)
    statement = json.loads(base64.b64decode(env_doc["payload"]))
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    subjects = {s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects == {p.name for p in (x / "blobs/sha256").iterdir()}


def test_digest_and_inspect(signed: tuple[Path, Path, str, Path]) -> None:
    tar, _, kid, x = signed
    want = "sha256:" + hashlib.sha256((x / "airgap/bundle.json").read_bytes()).hexdigest()
    r = airgap("digest", str(tar))
    assert r.returncode == 0 and r.stdout.strip() == want
    info = json.loads(airgap("inspect", str(tar), "--json").stdout)
    assert info["digest"] == want and info["signatures"] == [kid] and info["verified"] is False
    assert {m["path"] for m in info["model"]} >= {"model/model.safetensors", "model/config.json"}
    human = airgap("inspect", str(tar))
    assert "model/model.safetensors" in human.stdout and "not verified" in human.stdout


def test_ed25519_rebuilds_are_byte_identical(project: Path) -> None:
    priv, _, _ = make_key(project, "ed25519")
    assert build(project, "--key", str(priv))[0] == 0
    tar = project / "out" / "demo-1.0.0.airgap.tar"
    first = tar.read_bytes()
    tar.unlink()
    assert build(project, "--key", str(priv))[0] == 0
    assert tar.read_bytes() == first


def test_ecdsa_rebuilds_keep_the_content_digest(project: Path) -> None:
    priv, _, _ = make_key(project)
    _, one, _ = build(project, "--key", str(priv))
    _, two, _ = build(project, "--key", str(priv))
    assert one["bundles"][0]["digest"] == two["bundles"][0]["digest"]


def test_split_parts_carry_their_digests(project: Path) -> None:
    code, _out, err = build(project, "--unsigned", "--split", "16M")
    assert code == 0, err
    index_path = project / "out" / "demo-1.0.0.airgap.parts.json"
    index = json.loads(index_path.read_text())
    parts = [project / "out" / p["name"] for p in index["parts"]]
    assert len(parts) >= 6 and parts[0].name == "demo-1.0.0.airgap.tar.000"
    for p, meta in zip(parts, index["parts"], strict=True):
        assert p.stat().st_size == meta["size"] <= 16 * 1024**2
        assert hashlib.sha256(p.read_bytes()).hexdigest() == meta["sha256"]
    assert index["total_size"] == sum(p.stat().st_size for p in parts)
    assert airgap("digest", str(parts[2])).stdout.strip() == index["digest"]
    assert airgap("digest", str(index_path)).stdout.strip() == index["digest"]
    whole = project / "whole.tar"
    whole.write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(whole) as tf:
        assert "airgap/bundle.json" in tf.getnames()


def test_layout_only_writes_a_folder(project: Path) -> None:
    code, _out, err = build(project, "--unsigned", "--layout-only")
    assert code == 0, err
    folder = project / "out" / "demo-1.0.0"
    assert (folder / "oci-layout").is_file() and (folder / "airgap/bundle.json").is_file()
    assert airgap("digest", str(folder)).returncode == 0


def test_skopeo_reads_the_model_artifact(project: Path) -> None:
    if shutil.which("skopeo") is None:
        from tests.support.services import unavailable

        unavailable("skopeo is not installed")
    assert build(project, "--unsigned", "--layout-only")[0] == 0
    folder = project / "out" / "demo-1.0.0"
    r = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{folder}:airgap/model"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"


def test_an_unsigned_bundle_says_so(project: Path) -> None:
    code, out, _ = build(project, "--unsigned")
    assert code == 0 and out["bundles"][0]["signed_by"] == []
    tar = project / "out" / "demo-1.0.0.airgap.tar"
    assert "UNSIGNED" in airgap("inspect", str(tar)).stdout
    human = airgap("build", str(project / "m.yaml"), "--out", str(project / "out"), "--unsigned")
    assert "UNSIGNED" in human.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], "no signing key"),
        (["--key", "nope.pem"], "nope.pem"),
        (["--unsigned", "--split", "tiny"], "not a size"),
        (["--unsigned", "--target", "x"], "no such target"),
    ],
)
def test_bad_options_are_input_errors(project: Path, args: list[str], words: str) -> None:
    code, _, err = build(project, *args)
    assert code == 2 and words in err and "Traceback" not in err
    assert not (project / "out").exists() or not list((project / "out").iterdir())


def test_a_wrong_passphrase_is_named(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    priv, _, _ = make_key(project)
    monkeypatch.setenv("AIRGAP_KEY_PASSPHRASE", "Zq9-not-the-passphrase")
    code, _, err = build(project, "--key", str(priv))
    assert code == 2 and "wrong passphrase" in err
    assert "Zq9" not in err  # never echoed


def test_an_input_changed_since_the_lock_is_named(project: Path) -> None:
    assert airgap("lock", str(project / "m.yaml")).returncode == 0
    run = project / "files" / "run.sh"
    run.write_text("#!/bin/sh\necho changed\n")
    code, _, err = build(project, "--unsigned", "--locked")
    assert code == 1 and "files/run.sh" in err and "drifted" in err
    assert not (project / "out").exists() or not list((project / "out").iterdir())


def test_a_plain_build_locks_first_then_builds_from_that_lock(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH")  # the lock's time is the bundle's time
    lock = project / "m.lock.json"
    code, first, err = build(project, "--unsigned")
    assert code == 0, err
    assert lock.is_file() and first["lock"] == {"path": str(lock), "written": True}
    written = lock.read_bytes()
    assert not [p for p in project.iterdir() if p.name.startswith(".m.lock.json.")]  # no temp left
    code, second, err = build(project, "--unsigned")
    assert code == 0, err
    assert second["lock"] == {"path": str(lock), "written": False}
    assert lock.read_bytes() == written
    assert second["bundles"][0]["digest"] == first["bundles"][0]["digest"]


@pytest.mark.parametrize("locked", [[], ["--locked"]])
def test_a_build_over_drifted_inputs_stops_and_never_relocks(
    project: Path, locked: list[str]
) -> None:
    assert build(project, "--unsigned")[0] == 0
    lock = project / "m.lock.json"
    before = lock.read_bytes()
    shutil.rmtree(project / "out")
    (project / "files" / "run.sh").write_text("#!/bin/sh\necho changed\n")
    (project / "files" / "same.txt").write_text("other content\n")
    code, _, err = build(project, "--unsigned", *locked)
    assert code == 1, err
    assert "2 input(s) drifted" in err and "files/run.sh" in err and "files/same.txt" in err
    assert "airgap lock" in err and "Traceback" not in err
    assert lock.read_bytes() == before
    assert not (project / "out").exists() or not list((project / "out").iterdir())


def test_a_changed_manifest_stops_a_build_from_the_old_lock(project: Path) -> None:
    assert build(project, "--unsigned")[0] == 0
    m = project / "m.yaml"
    m.write_text(m.read_text().replace("version: 1.0.0", "version: 1.0.1"))
    code, _, err = build(project, "--unsigned")
    assert code == 1 and "changed since" in err and "airgap lock" in err


def test_a_manifest_change_the_lock_keeps_no_record_of_names_the_inputs_it_moved(
    project: Path,
) -> None:
    assert build(project, "--unsigned")[0] == 0
    m = project / "m.yaml"
    m.write_text(m.read_text().replace(', "vocab.txt"]', "]"))
    code, _, err = build(project, "--unsigned")
    assert code == 1 and "changed since" in err and "keeps no record of" in err
    assert "input model vocab.txt: locked sha256:" in err and "airgap lock" in err


def test_locked_fails_when_there_is_no_lock(project: Path) -> None:
    code, _, err = build(project, "--unsigned", "--locked")
    assert code == 2 and "m.lock.json" in err and "airgap lock" in err
    assert not (project / "m.lock.json").exists()


def test_a_full_disk_is_a_clean_error_with_no_partial_file(project: Path) -> None:
    out = project / "small"
    if not mounted_tmpfs(out, "20m"):
        from tests.support.services import unavailable

        unavailable("cannot mount a tmpfs (needs root)")
    try:
        r = airgap("build", str(project / "m.yaml"), "--out", str(out), "--unsigned")
        assert r.returncode == 2, r.stdout + r.stderr
        assert "no space left" in r.stderr and "Traceback" not in r.stderr
        assert list(out.iterdir()) == []
    finally:
        subprocess.run(["umount", str(out)], check=False)


def test_a_read_only_output_folder_is_a_clean_error(project: Path) -> None:
    out = project / "ro"
    if not mounted_tmpfs(out, "1m", ro=True):
        from tests.support.services import unavailable

        unavailable("cannot mount a tmpfs (needs root)")
    try:
        r = airgap("build", str(project / "m.yaml"), "--out", str(out), "--unsigned")
        assert r.returncode == 2 and "not writable" in r.stderr, r.stderr
    finally:
        subprocess.run(["umount", str(out)], check=False)


MULTI = MANIFEST.replace(
    "target:\n  platform: linux/amd64\n  accelerator: {vendor: none}\n",
    "targets:\n  ascend:\n    platform: linux/arm64\n    accelerator: {vendor: huawei, chips: [ascend910b3]}\n"
    '    stack: {cann: ">=8.0.0"}\n'
    "  cuda:\n    platform: linux/amd64\n    accelerator: {vendor: nvidia, chips: [h100]}\n"
    '    stack: {cuda: "12.4", driver: ">=550.54.14"}\n',
)


def test_one_bundle_per_target(project: Path) -> None:
    (project / "m.yaml").write_text(MULTI)
    code, out, err = build(project, "--unsigned")
    assert code == 0, err
    names = sorted(Path(b["files"][0]).name for b in out["bundles"])
    assert names == ["demo-1.0.0-ascend.airgap.tar", "demo-1.0.0-cuda.airgap.tar"]
    (project / "out" / names[0]).unlink()
    (project / "out" / names[1]).unlink()
    code, out, _ = build(project, "--unsigned", "--target", "cuda")
    assert [b["target"] for b in out["bundles"]] == ["cuda"]


@pytest.mark.parametrize("carry_trust", [None, b'{"trust": "carried"}\n'], ids=["plain", "carry"])
def test_a_bundle_made_on_two_cores_is_the_bundle_made_on_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, carry_trust: bytes | None
) -> None:
    """The SBOM of a model of many files is made in a forked child (packager.util.forked): the
    bundle is the same bytes either way."""
    from packager.commands import build as build_module
    from packager.util import forked
    from tests.support.forks import on_two_cores
    from tests.support.golden import build_golden

    monkeypatch.setenv(forked.NO_FORK_ENV, "1")
    (one,) = build_golden(tmp_path / "one", carry_trust=carry_trust)
    children = on_two_cores(monkeypatch, build_module)
    (two,) = build_golden(tmp_path / "two", carry_trust=carry_trust)
    assert children == [forked.can_fork()]
    assert two.read_bytes() == one.read_bytes()
