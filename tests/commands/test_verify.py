"""`airgap verify`: nothing tampered gets through, and each rejection names its reason.

A small but complete bundle (weights, a docker-archive image, a kernel with test vectors, a wheel,
a runtime file, the probe) is built once by the real CLI; each case changes one thing in a copy.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from packager.bundle import layout
from packager.bundle.checks import check_signatures
from packager.commands.verify import verify_bundle
from packager.signing import keys, signature
from packager.signing.trust import Policy, PolicyError, TrustedKey, load_policy, policy_from_keys
from packager.util.compat import strict_zip
from packager.util.schemas import validator
from tests.support.cli import REPO, airgap
from tests.support.projects import PASS, make_key, project, run_build


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("tamper")
    keysdir = base / "keys"
    keysdir.mkdir()
    priv_a, pub_a, _ = make_key(keysdir, "a")
    priv_b, pub_b, _ = make_key(keysdir, "b", "ed25519")
    m = project(base / "p")
    run_build(m, base / "folder", "--key", str(priv_a), "--layout-only")
    run_build(m, base / "tar", "--key", str(priv_a))
    run_build(m, base / "parts", "--key", str(priv_a), "--split", "1M")
    other = project(base / "q", "other")
    (base / "q" / "files" / "run.sh").write_text("#!/bin/sh\necho other\n")
    run_build(other, base / "other", "--key", str(priv_a), "--split", "1M")
    old = {"SOURCE_DATE_EPOCH": "1600000000"}
    run_build(m, base / "expired", "--key", str(priv_a), "--layout-only", env=old)
    return {
        "folder": base / "folder" / "tamper-1.0.0",
        "tar": base / "tar" / "tamper-1.0.0.airgap.tar",
        "parts": base / "parts" / "tamper-1.0.0.airgap.parts.json",
        "other_parts": base / "other" / "other-1.0.0.airgap.parts.json",
        "expired": base / "expired" / "tamper-1.0.0",
        "priv_a": priv_a, "pub_a": pub_a, "priv_b": priv_b, "pub_b": pub_b,
    }  # fmt: skip


def copy_folder(built: dict[str, Path], tmp: Path) -> Path:
    dest = tmp / "b"
    shutil.copytree(built["folder"], dest)
    return dest


def descriptor(folder: Path) -> dict[str, Any]:
    return json.loads((folder / layout.BUNDLE_JSON).read_text())


def blob_of(folder: Path, role: str, media_type: str | None = None, path_part: str = "") -> Path:
    for b in descriptor(folder)["blobs"]:
        if (
            b["role"] == role
            and (media_type is None or b["mediaType"] == media_type)
            and (not path_part or any(path_part in p for p in b["paths"]))
        ):
            return folder / layout.blob_path(b["digest"])
    raise AssertionError(f"no {role} blob")


def flip(path: Path, at: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def policy_a(built: dict[str, Path]) -> Policy:
    return policy_from_keys([built["pub_a"]])


def failures(report: Any) -> list[tuple[str, str, str]]:
    return [(f.check, f.subject, f.message) for f in report.failures]


def test_the_untouched_bundle_verifies_in_every_form(built: dict[str, Path]) -> None:
    for form in ("folder", "tar", "parts"):
        report = verify_bundle(built[form], policy_a(built))
        assert report.ok, (form, failures(report))
        assert report.blobs_checked >= 15
    r = airgap("verify", str(built["tar"]), "--key", str(built["pub_a"]), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["verified"] is True
    validator("verify-report").validate(json.loads(r.stdout))


# ----------------------------------------------------------------------------- flipped bytes


def _flip_role(role: str, media: str | None = None, part: str = "") -> Callable[[Path], str]:
    def tamper(folder: Path) -> str:
        blob = blob_of(folder, role, media, part)
        flip(blob)
        return blob.relative_to(folder).as_posix()

    return tamper


FLIPPED = [
    ("weight", _flip_role("model", layout.MODEL_WEIGHT)),
    ("image-layer", _flip_role("image", layout.OCI_LAYER_TAR)),
    ("image-config", _flip_role("image", layout.OCI_CONFIG)),
    ("kernel", _flip_role("kernel", layout.KERNEL_BINARY)),
    ("kernel-test-vector", _flip_role("kernel", layout.KERNEL_TEST_VECTOR)),
    ("wheel", _flip_role("wheel")),
    ("runtime-file", _flip_role("file")),
    ("probe-blob", _flip_role("probe")),
]


@pytest.mark.parametrize("tamper", [pytest.param(t, id=i) for i, t in FLIPPED])
def test_a_flipped_byte_in_each_blob_kind_is_named(
    built: dict[str, Path], tmp_path: Path, tamper: Callable[[Path], str]
) -> None:
    folder = copy_folder(built, tmp_path)
    name = tamper(folder)
    report = verify_bundle(folder, policy_a(built))
    assert ("blobs", name) in [(c, s) for c, s, _ in failures(report)], failures(report)


def test_a_flipped_byte_in_the_probe_file_is_named(built: dict[str, Path], tmp_path: Path) -> None:
    folder = copy_folder(built, tmp_path)
    flip(folder / "airgap/probe/__main__.py")
    report = verify_bundle(folder, policy_a(built))
    assert ("layout", "airgap/probe/__main__.py") in [(c, s) for c, s, _ in failures(report)]


# ----------------------------------------------------------------------------- the descriptor and signatures


def _edit_descriptor(folder: Path) -> None:
    p = folder / layout.BUNDLE_JSON
    p.write_text(p.read_text().replace('"version": "1.0.0"', '"version": "9.9.9"', 1))


def _remove_signature(folder: Path) -> None:
    shutil.rmtree(folder / layout.SIGNATURES_DIR)


def _index_points_elsewhere(folder: Path) -> None:
    p = folder / layout.INDEX_JSON
    doc = json.loads(p.read_text())
    doc["manifests"][0]["digest"] = "sha256:" + "e" * 64
    p.write_text(json.dumps(doc))


def _extra_file(folder: Path) -> None:
    (folder / "blobs/sha256" / ("f" * 64)).write_bytes(b"surprise")


def _deleted_blob(folder: Path) -> None:
    blob_of(folder, "model", layout.MODEL_WEIGHT).unlink()


def _swapped_blob(folder: Path) -> None:
    """The same file name, the content of the other bundle's runtime file."""
    blob_of(folder, "file").write_text("#!/bin/sh\necho other\n")


def _symlink(folder: Path) -> None:
    target = blob_of(folder, "model", layout.MODEL_WEIGHT)
    target.unlink()
    target.symlink_to("/etc/passwd")


def _huge_descriptor(folder: Path) -> None:
    with (folder / layout.BUNDLE_JSON).open("ab") as fh:
        fh.truncate(100 * 1024 * 1024)


TAMPERED: list[tuple[str, Callable[[Path], None], str, str]] = [
    ("bundle-json-edited", _edit_descriptor, "signatures", "does not verify"),
    ("signature-removed", _remove_signature, "signatures", "needs 1"),
    # index.json is covered by bundle.json: an edited one is named, and never parsed
    ("index-json-points-elsewhere", _index_points_elsewhere, "layout", "bundle.json says"),
    ("extra-file", _extra_file, "layout", "extra file"),
    ("deleted-blob", _deleted_blob, "blobs", "missing"),
    # another size: named by its size, never hashed
    ("blob-swapped-from-another-bundle", _swapped_blob, "blobs", "bundle.json says"),
    ("symlink-to-etc-passwd", _symlink, "layout", "symlink"),
    ("100MB-bundle-json", _huge_descriptor, "signatures", "more than"),
]


@pytest.mark.parametrize(
    ("tamper", "check", "words"), [pytest.param(t, c, w, id=i) for i, t, c, w in TAMPERED]
)
def test_tampered_bundles_are_rejected_for_the_right_reason(
    built: dict[str, Path], tmp_path: Path, tamper: Callable[[Path], None], check: str, words: str
) -> None:
    folder = copy_folder(built, tmp_path)
    tamper(folder)
    report = verify_bundle(folder, policy_a(built))
    assert not report.ok
    assert any(c == check and words in m for c, _, m in failures(report)), failures(report)
    validator("verify-report").validate(report.to_json())  # what --json prints


# ----------------------------------------------------------------------------- on a second core


def _attestation_replaced(folder: Path) -> None:
    import base64

    p = folder / layout.ATTESTATION
    env = json.loads(p.read_text())
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["predicate"]["runDetails"]["builder"]["id"] = "https://evil.example/builder"
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    p.write_text(json.dumps(env))


def _attestation_garbage(folder: Path) -> None:
    (folder / layout.ATTESTATION).write_bytes(b"\x00not json")


def _model_signature_flipped(folder: Path) -> None:
    flip(folder / layout.MODEL_SIGNATURE, 40)


def _model_signature_removed(folder: Path) -> None:
    (folder / layout.MODEL_SIGNATURE).unlink()


def _manifest_flipped(folder: Path) -> None:
    flip(blob_of(folder, "image", layout.OCI_MANIFEST))


def _untouched(folder: Path) -> None:
    pass


#: what verify judges on a second core for a bundle of many files (the attestation, model.sig,
#: index.json and the OCI manifests), each tampered with; whether the bundle still verifies (a
#: model.sig taken out leaves its state "absent": bundle.json's signature covers the model bytes)
JUDGED_ELSEWHERE: list[tuple[str, Callable[[Path], None], bool]] = [
    ("untouched", _untouched, True),
    ("attestation-replaced", _attestation_replaced, False),
    ("attestation-not-json", _attestation_garbage, False),
    ("attestation-removed", lambda f: (f / layout.ATTESTATION).unlink(), False),
    ("model-signature-flipped", _model_signature_flipped, False),
    ("model-signature-removed", _model_signature_removed, True),
    ("index-json-points-elsewhere", _index_points_elsewhere, False),
    ("image-manifest-flipped", _manifest_flipped, False),
]


@pytest.mark.parametrize(
    ("tamper", "verified"), [pytest.param(t, v, id=i) for i, t, v in JUDGED_ELSEWHERE]
)
def test_a_report_judged_on_a_second_core_is_the_one_judged_on_one(
    built: dict[str, Path], tmp_path: Path, tamper: Callable[[Path], None], verified: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from packager.bundle import verifier
    from packager.util import forked
    from tests.support.forks import on_two_cores

    folder = copy_folder(built, tmp_path)
    tamper(folder)
    monkeypatch.setenv(forked.NO_FORK_ENV, "1")
    one = verify_bundle(folder, policy_a(built)).to_json()
    children = on_two_cores(monkeypatch, verifier)
    two = verify_bundle(folder, policy_a(built)).to_json()
    assert children == [forked.can_fork()]
    one.pop("seconds"), two.pop("seconds")
    assert two == one
    assert one["verified"] is verified, one["failures"]


def test_only_index_and_manifest_bytes_of_the_listed_digest_are_judged(
    built: dict[str, Path],
) -> None:
    """verifier._consistency: bytes that are not what bundle.json lists are named by the content
    checks (as damaged), never parsed; the listed ones are checked for consistency."""
    import hashlib

    from packager.bundle.descriptor import parse_descriptor
    from packager.bundle.verifier import _consistency

    folder = built["folder"]
    doc = parse_descriptor((folder / layout.BUNDLE_JSON).read_bytes())
    index = (folder / layout.INDEX_JSON).read_bytes()
    listed = hashlib.sha256(index).hexdigest()
    elsewhere = index.replace(b'"digest":"sha256:', b'"digest":"sha256:0', 1)  # an unlisted one
    assert elsewhere != index
    manifests = [
        (x.digest, (folder / x.member).read_bytes())
        for x in doc.blobs
        if x.media_type in layout.IMAGE_MANIFEST_TYPES
    ]
    assert manifests
    # each manifest pointing at an unlisted blob: kept under its digest it is damaged (not
    # judged); under the digest of its new bytes (as if bundle.json listed them) it is judged
    edited = [
        (d, raw.replace(b'"digest":"sha256:', b'"digest":"sha256:0', 1)) for d, raw in manifests
    ]
    judged = [("sha256:" + hashlib.sha256(raw).hexdigest(), raw) for _, raw in edited]
    assert all(raw != m for (_, raw), (_, m) in zip(edited, manifests))
    unlisted = hashlib.sha256(elsewhere).hexdigest()
    # (index: its listed sha256 and its bytes, the manifests, the failures' checks)
    cases: list[tuple[tuple[str, bytes | None], Sequence[tuple[str, bytes | None]], list[str]]] = [
        ((listed, index), manifests, []),
        ((listed, index), [(d, None) for d, _ in manifests], []),  # a delta leaves them out
        ((listed, index), edited, []),  # not parsed: named as damaged blobs elsewhere
        ((listed, elsewhere), manifests, []),  # not what bundle.json lists: named elsewhere
        ((listed, None), manifests, []),
        ((unlisted, elsewhere), manifests, ["consistency"]),
        ((listed, index), judged, ["consistency"]),
    ]
    for i, (idx, mans, checks) in enumerate(cases):
        got = _consistency(doc, idx, mans)
        assert sorted({f.check for f in got}) == checks, (i, got)
    assert _consistency(doc, None, manifests) == []


def test_index_json_changes_are_caught_by_its_digest_too(
    built: dict[str, Path], tmp_path: Path
) -> None:
    folder = copy_folder(built, tmp_path)
    _index_points_elsewhere(folder)
    report = verify_bundle(folder, policy_a(built))
    assert ("layout", "index.json") in [(c, s) for c, s, _ in failures(report)]


def test_signed_by_an_untrusted_key(built: dict[str, Path]) -> None:
    report = verify_bundle(built["folder"], policy_from_keys([built["pub_b"]]))
    assert any("needs 1" in m for _, _, m in failures(report))
    assert any("does not trust" in n for n in report.notes)


def write_policy(path: Path, built: dict[str, Path], *, threshold: int, revoke_a: bool = False,
                 max_age: str | None = None) -> Path:  # fmt: skip
    assert airgap("trust", "init", str(path), "--threshold", str(threshold),
                  *(["--max-age", max_age] if max_age else [])).returncode == 0  # fmt: skip
    assert (
        airgap("trust", "add", str(path), str(built["pub_a"]), "--name", "release-a").returncode
        == 0
    )
    assert (
        airgap("trust", "add", str(path), str(built["pub_b"]), "--name", "release-b").returncode
        == 0
    )
    if revoke_a:
        assert (
            airgap("trust", "revoke", str(path), "release-a", "--reason", "laptop lost").returncode
            == 0
        )
    return path


def test_signed_by_a_revoked_key(built: dict[str, Path], tmp_path: Path) -> None:
    pol = write_policy(tmp_path / "trust.json", built, threshold=1, revoke_a=True)
    r = airgap("verify", str(built["tar"]), "--trust", str(pol))
    assert r.returncode == 1 and "revoked" in r.stdout and "laptop lost" in r.stdout


def test_threshold_two_with_one_signature_then_a_co_signature(
    built: dict[str, Path], tmp_path: Path
) -> None:
    pol = write_policy(tmp_path / "trust.json", built, threshold=2)
    tar = tmp_path / "t.airgap.tar"
    shutil.copyfile(built["tar"], tar)
    r = airgap("verify", str(tar), "--trust", str(pol))
    assert r.returncode == 1 and "needs 2" in r.stdout
    env = {**os.environ, "AIRGAP_KEY_PASSPHRASE": PASS}
    before = tar.read_bytes()
    s = subprocess.run([os.sys.executable, "-m", "packager", "sign", str(tar), "--key", str(built["priv_b"])],  # type: ignore[attr-defined]
                       capture_output=True, text=True, env=env)  # fmt: skip
    assert s.returncode == 0, s.stderr
    after = tar.read_bytes()
    end = len(before) - 1024 - (len(before) % 10240 or 0)
    assert (
        after[: len(before) - 10240] == before[: len(before) - 10240]
    )  # no blob moved or rewritten
    assert end > 0
    r = airgap("verify", str(tar), "--trust", str(pol))
    assert r.returncode == 0, r.stdout
    again = subprocess.run([os.sys.executable, "-m", "packager", "sign", str(tar), "--key", str(built["priv_b"])],  # type: ignore[attr-defined]
                           capture_output=True, text=True, env=env)  # fmt: skip
    assert again.returncode == 0 and "nothing changed" in again.stdout
    assert tar.read_bytes() == after


def test_co_signing_parts_and_folders(built: dict[str, Path], tmp_path: Path) -> None:
    pol = write_policy(tmp_path / "trust.json", built, threshold=2)
    parts_dir = tmp_path / "parts"
    shutil.copytree(built["parts"].parent, parts_dir)
    folder = copy_folder(built, tmp_path)
    env = {**os.environ, "AIRGAP_KEY_PASSPHRASE": PASS}
    for target in (parts_dir / built["parts"].name, folder):
        s = subprocess.run([os.sys.executable, "-m", "packager", "sign", str(target), "--key", str(built["priv_b"])],  # type: ignore[attr-defined]
                           capture_output=True, text=True, env=env)  # fmt: skip
        assert s.returncode == 0, s.stderr
        report = verify_bundle(target, load_policy(pol))
        assert report.ok, failures(report)
        assert len(report.signers) == 2


def test_one_key_cannot_count_twice(built: dict[str, Path], tmp_path: Path) -> None:
    # a policy that lists one key under two names is refused
    pol = tmp_path / "trust.json"
    assert airgap("trust", "init", str(pol), "--threshold", "2").returncode == 0
    doc = json.loads(pol.read_text())
    pem = built["pub_a"].read_text()
    kid = keys.keyid(keys.load_public_key(built["pub_a"]))
    doc["keys"] = [
        {"name": n, "keyid": kid, "algorithm": "ecdsa-p256-sha256", "public_key": pem}
        for n in ("x", "y")
    ]
    pol.write_text(json.dumps(doc))
    with pytest.raises(PolicyError, match="listed twice"):
        load_policy(pol)
    # and a signature copied under another key's name does not verify for that key
    folder = copy_folder(built, tmp_path)
    kid_b = keys.keyid(keys.load_public_key(built["pub_b"]))
    sig_a = next((folder / layout.SIGNATURES_DIR).iterdir())
    shutil.copyfile(sig_a, folder / layout.signature_path(kid_b))
    both = policy_from_keys([built["pub_a"], built["pub_b"]])
    report = verify_bundle(folder, Policy(both.keys, 2, {}))
    assert not report.ok and len(report.signers) == 1


def test_an_expired_bundle(built: dict[str, Path]) -> None:
    report = verify_bundle(built["expired"], policy_a(built))
    assert ("expiry", "bundle") in [(c, s) for c, s, _ in failures(report)]
    young = verify_bundle(built["folder"], policy_a(built), now=_dt.datetime.now(_dt.timezone.utc))
    assert young.ok


def test_max_age_in_the_policy(built: dict[str, Path], tmp_path: Path) -> None:
    pol = write_policy(tmp_path / "trust.json", built, threshold=1, max_age="1d")
    later = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(days=2)
    report = verify_bundle(built["folder"], load_policy(pol), now=later)
    assert any("max_age" in m for _, _, m in failures(report))


# ----------------------------------------------------------------------------- parts


def copy_parts(built: dict[str, Path], tmp: Path) -> Path:
    dest = tmp / "parts"
    shutil.copytree(built["parts"].parent, dest)
    return dest / built["parts"].name


def test_a_truncated_part(built: dict[str, Path], tmp_path: Path) -> None:
    index = copy_parts(built, tmp_path)
    p = index.parent / "tamper-1.0.0.airgap.tar.001"
    os.truncate(p, p.stat().st_size - 100)
    report = verify_bundle(index, policy_a(built))
    assert any(s == p.name and "truncated" in m for _, s, m in failures(report)), failures(report)


def test_parts_reordered(built: dict[str, Path], tmp_path: Path) -> None:
    index = copy_parts(built, tmp_path)
    a, b = (
        index.parent / "tamper-1.0.0.airgap.tar.000",
        index.parent / "tamper-1.0.0.airgap.tar.001",
    )
    if a.stat().st_size != b.stat().st_size:
        pytest.fail("the first two parts should be full-size parts")
    tmp = index.parent / "swap"
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    report = verify_bundle(index, policy_a(built))
    assert any("reordered" in m for _, _, m in failures(report)), failures(report)


def test_a_part_from_another_bundle(built: dict[str, Path], tmp_path: Path) -> None:
    index = copy_parts(built, tmp_path)
    last = sorted(index.parent.glob("tamper-1.0.0.airgap.tar.*"))[-1]
    foreign = sorted(built["other_parts"].parent.glob("other-1.0.0.airgap.tar.*"))[-1]
    shutil.copyfile(foreign, last)
    report = verify_bundle(index, policy_a(built))
    assert any(s == last.name for c, s, _ in failures(report) if c == "parts"), failures(report)


def test_a_missing_part_is_named(built: dict[str, Path], tmp_path: Path) -> None:
    index = copy_parts(built, tmp_path)
    (index.parent / "tamper-1.0.0.airgap.tar.001").unlink()
    report = verify_bundle(index, policy_a(built))
    assert ("parts", "tamper-1.0.0.airgap.tar.001", "missing") in failures(report)


# ----------------------------------------------------------------------------- hostile tars


def hostile(built: dict[str, Path], tmp: Path, add: Callable[[tarfile.TarFile], None]) -> Path:
    """The signed tar with one more member appended (tarfile's append mode)."""
    t = tmp / "h.airgap.tar"
    shutil.copyfile(built["tar"], t)
    with tarfile.open(t, "a", format=tarfile.GNU_FORMAT) as tf:
        add(tf)
    return t


def _file(name: str, data: bytes = b"x") -> Callable[[tarfile.TarFile], None]:
    def add(tf: tarfile.TarFile) -> None:
        import io

        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))

    return add


def _link(name: str, target: str, kind: bytes) -> Callable[[tarfile.TarFile], None]:
    def add(tf: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = target
        tf.addfile(info)

    return add


def _device(tf: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("blobs/sha256/dev")
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    tf.addfile(info)


HOSTILE = [
    ("dot-dot", _file("../evil"), "with .. in it"),
    ("absolute", _file("/etc/cron.d/evil"), "absolute path"),
    ("symlink", _link("airgap/link", "/etc/passwd", tarfile.SYMTYPE), "symlink"),
    ("hard-link", _link("airgap/hard", "/etc/passwd", tarfile.LNKTYPE), "hardlink"),
    ("device", _device, "device"),
]


@pytest.mark.parametrize(("add", "words"), [pytest.param(a, w, id=i) for i, a, w in HOSTILE])
def test_hostile_tar_members_are_refused(
    built: dict[str, Path], tmp_path: Path, add: Any, words: str
) -> None:
    t = hostile(built, tmp_path, add)
    report = verify_bundle(t, policy_a(built))
    assert any(c == "layout" and words in m for c, _, m in failures(report)), failures(report)


# ----------------------------------------------------------------------------- pure signature rules


def test_signature_rules_table(tmp_path: Path) -> None:
    k1, k2, k3 = (keys.generate_private_key() for _ in range(3))
    ids = [keys.keyid(k.public_key()) for k in (k1, k2, k3)]
    data = b'{"bundle": 1}'
    sig = {
        i: signature.signature_file_content(signature.sign(k, data))
        for i, k in strict_zip(ids, (k1, k2, k3))
    }

    def name(i: str) -> str:
        return layout.signature_path(i)

    def pol(
        threshold: int, revoked: tuple[str, ...] = (), trusted: tuple[int, ...] = (0, 1)
    ) -> Policy:
        ks = {
            ids[n]: TrustedKey(f"k{n}", ids[n], "ecdsa-p256-sha256", (k1, k2, k3)[n].public_key())
            for n in trusted
        }
        return Policy(ks, threshold, {r: "" for r in revoked})

    cases = [
        # (files, policy, valid count, ok)
        ({name(ids[0]): sig[ids[0]]}, pol(1), 1, True),
        ({name(ids[0]): sig[ids[0]], name(ids[1]): sig[ids[1]]}, pol(2), 2, True),
        ({name(ids[0]): sig[ids[0]]}, pol(2), 1, False),
        ({name(ids[2]): sig[ids[2]]}, pol(1), 0, False),  # untrusted key
        ({name(ids[0]): sig[ids[0]]}, pol(1, revoked=(ids[0],)), 0, False),  # revoked
        ({name(ids[1]): sig[ids[0]]}, pol(1), 0, False),  # signature filed under another key
        ({name(ids[0]): b"not base64!\n"}, pol(1), 0, False),
        ({"airgap/bundle.json.sig/x.sig": sig[ids[0]]}, pol(1), 0, False),
        ({}, pol(1), 0, False),
    ]
    for files, policy, count, ok in cases:
        v = check_signatures(data, files, policy)
        assert len(v.valid) == count, files
        assert (not v.failures) is ok, (files, v.failures)
    tampered = check_signatures(data + b" ", {name(ids[0]): sig[ids[0]]}, pol(1))
    assert any("does not verify" in f.message for f in tampered.failures)


def test_verify_with_openssl_script(built: dict[str, Path], tmp_path: Path) -> None:
    script = REPO / "scripts" / "verify-with-openssl.sh"
    ok = subprocess.run(
        ["bash", str(script), str(built["tar"]), str(built["pub_a"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "VERIFIED" in ok.stdout
    parts = subprocess.run(
        ["bash", str(script), str(built["parts"]), str(built["pub_a"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert parts.returncode == 0 and "VERIFIED" in parts.stdout, parts.stdout + parts.stderr
    bad = tmp_path / "bad.airgap.tar"
    data = bytearray(built["tar"].read_bytes())
    folder = built["folder"]
    weight = blob_of(folder, "model", layout.MODEL_WEIGHT).read_bytes()
    at = bytes(data).find(weight)
    data[at + 20] ^= 1
    bad.write_bytes(bytes(data))
    r = subprocess.run(
        ["bash", str(script), str(bad), str(built["pub_a"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and "FAILED" in r.stdout
    other = subprocess.run(
        ["bash", str(script), str(built["tar"]), str(built["pub_b"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert other.returncode == 1


def test_a_kernel_whose_vectors_do_not_fit_it_does_not_ship(tmp_path: Path) -> None:
    """validate only warns about test vectors (AG416/AG418); the build refuses them."""
    m = project(tmp_path / "p")
    (tmp_path / "p" / "kernels" / "x.npy").write_bytes(b"not an npy")
    r = subprocess.run(
        [os.sys.executable, "-m", "packager", "build", str(m), "--out", str(tmp_path / "out"), "--unsigned"],  # type: ignore[attr-defined]
        capture_output=True, text=True, timeout=300, env={**os.environ, "AIRGAP_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    assert "kernel 'k' cannot ship" in r.stderr and "AG416" in r.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.tar"))
