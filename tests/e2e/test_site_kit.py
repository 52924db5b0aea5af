"""The site kit end to end, on real Debian 11 roots (Python 3.9, OpenSSL 1.1.1), amd64 and arm64
(qemu): only the launcher, ``sh airgap/site/airgap BUNDLE COMMAND``, runs airgap there, after
openssl checked the descriptor's signature and every kit file's sha256.

Slow: the first kit of a platform is downloaded by pip (then cached for the session), a root is
made by mmdebstrap (arm64 through qemu: minutes).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support import debroot, services
from tests.support.projects import PASS, make_key, tiny_safetensors
from tests.support.reports import checked

pytestmark = pytest.mark.slow

MANIFEST = """\
apiVersion: airgap/v1
kind: Bundle
metadata: {{name: {name}, version: {version}}}
model:
  name: {model}
  source: {{path: {weights}}}
  format: safetensors
  precision: {precision}
target:
  platform: {platform}
  accelerator: {{vendor: none}}
"""


@pytest.fixture(scope="session")
def kit_env(kit_cache: Path) -> dict[str, str]:
    """The session's kit cache (tests/conftest.py): pip downloads a platform's wheels once."""
    return {**os.environ, "AIRGAP_CACHE_DIR": str(kit_cache), "AIRGAP_KEY_PASSPHRASE": PASS}


def airgap(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "packager", *args],
        capture_output=True, text=True, timeout=1800, env=env,
    )  # fmt: skip
    return checked(args, r)  # a --json report keeps its schema


def build(
    folder: Path, env: dict[str, str], key: Path, *, platform: str = "linux/amd64",
    version: str = "1.0.0", weights: Path | None = None, name: str = "kitdemo",
) -> Path:  # fmt: skip
    if weights is None:
        weights = folder / "weights"
        weights.mkdir(parents=True, exist_ok=True)
        (weights / "model.safetensors").write_bytes(tiny_safetensors())
        (weights / "config.json").write_text("{}\n")
    model = "sentence-transformers/all-MiniLM-L6-v2" if name == "minilm-demo" else "org/tiny"
    m = folder / f"{name}-{version}.yaml"
    m.write_text(
        MANIFEST.format(
            name=name,
            version=version,
            model=model,
            weights=weights,
            platform=platform,
            precision="fp32" if name == "minilm-demo" else "bf16",
        )
    )
    r = airgap("build", str(m), "--out", str(folder / "out"), "--key", str(key), "--site-kit",
               env=env)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "site kit for " + platform in r.stdout + r.stderr
    return folder / "out" / f"{name}-{version}.airgap.tar"


def root_for(factory: pytest.TempPathFactory, fixture: str) -> Path:
    """The session's Debian root that ``fixture`` names (tests/conftest.py starts making the
    ones the selected tests ask for when the session begins)."""
    platform = debroot.ROOT_FIXTURES[fixture]
    dest = debroot.roots_dir(factory.getbasetemp()) / fixture.removesuffix("_root")
    return services.require(lambda: debroot.make_root(platform, dest))


@pytest.fixture(scope="session")
def amd64_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return root_for(tmp_path_factory, "amd64_root")


@pytest.fixture(scope="session")
def arm64_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return root_for(tmp_path_factory, "arm64_root")


@pytest.fixture(scope="session")
def signed(tmp_path_factory: pytest.TempPathFactory, kit_env: dict[str, str]) -> dict[str, Path]:
    """A bundle with the kit, signed by an ECDSA key and co-signed by an Ed25519 key."""
    base = tmp_path_factory.mktemp("kit-bundle")
    priv, pub, _ = make_key(base, "ecdsa")
    ed_priv, ed_pub, _ = make_key(base, "ed", "ed25519")
    _, other_pub, _ = make_key(base, "other")
    bundle = build(base, kit_env, priv)
    r = airgap("sign", str(bundle), "--key", str(ed_priv), env=kit_env)
    assert r.returncode == 0, r.stdout + r.stderr
    return {"bundle": bundle, "pub": pub, "ed": ed_pub, "other": other_pub, "base": base}


def stage(root: Path, bundle: Path, *keys: Path) -> None:
    """Copy the bundle (as B.airgap.tar) and keys into the root's /work; extract the launcher as
    the README says, with the root's own tar."""
    work = root / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    shutil.copyfile(bundle, work / "B.airgap.tar")
    for k in keys:
        shutil.copyfile(k, work / k.name)
    r = debroot.run(root, "tar -xf B.airgap.tar airgap/site")
    assert r.returncode == 0, r.stderr


def launch(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return debroot.run(root, "sh airgap/site/airgap B.airgap.tar " + " ".join(args), env=env)


def test_launcher_runs_the_site_side_on_python39_after_openssl_checks(
    amd64_root: Path, signed: dict[str, Path]
) -> None:
    root = amd64_root
    shutil.rmtree(root / "srv", ignore_errors=True)
    stage(root, signed["bundle"], signed["pub"], signed["ed"], signed["other"])
    assert debroot.run(root, "python3 -V").stdout.startswith("Python 3.9.")

    r = launch(root, "install", "--prefix", "/srv/ai", "--key", "ecdsa.pub.pem")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "66 kit files match it" in r.stderr or "kit files match it" in r.stderr
    assert "kit installed in /srv/ai/.airgap-kit/" in r.stderr and "-cp39" in r.stderr
    assert "installed kitdemo 1.0.0" in r.stdout
    assert "Traceback" not in r.stderr

    # OpenSSL 1.1.1 cannot check an Ed25519 signature on its command line: it says so
    r = launch(root, "audit", "--site", "/srv/ai", "--key", "ed.pub.pem")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "OpenSSL 1.1.1" in r.stderr and "cannot verify Ed25519 signatures" in r.stderr
    # the second run reuses the kit
    r = launch(root, "audit", "--site", "/srv/ai", "--key", "ecdsa.pub.pem")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "kit reused from /srv/ai/.airgap-kit/" in r.stderr
    assert "verdict: PASS" in r.stdout

    # with no --key/--trust a site's own policy is not there yet: a usage error, nothing runs
    r = launch(root, "list", "--prefix", "/srv/ai")
    assert r.returncode == 2 and "give --key PUB or --trust POLICY" in r.stderr

    for args in (["verify", "--key", "ecdsa.pub.pem"], ["probe", "--key", "ecdsa.pub.pem"],
                 ["rollback", "kitdemo", "--prefix", "/srv/ai", "--key", "ecdsa.pub.pem"]):  # fmt: skip
        r = launch(root, *args)
        assert "Traceback" not in r.stdout + r.stderr
        assert "kit files match it" in r.stderr and "internal error" not in r.stderr
        assert r.returncode in (0, 1, 2), r.stdout + r.stderr
    assert "verified kitdemo 1.0.0" in launch(root, "verify", "--key", "ecdsa.pub.pem").stdout


def test_trust_policy_threshold_on_the_host_python_and_openssl3(
    signed: dict[str, Path], kit_env: dict[str, str], tmp_path: Path
) -> None:
    """On this host (its own python3 and OpenSSL 3, which checks Ed25519 too): a threshold of
    distinct listed keys."""
    if b"-rawin" not in subprocess.run(["openssl", "pkeyutl", "-help"], capture_output=True).stderr:
        pytest.skip("this host's openssl has no pkeyutl -rawin (OpenSSL < 3)")
    subprocess.run(["tar", "-xf", str(signed["bundle"]), "airgap/site"], cwd=tmp_path, check=True)
    policy = tmp_path / "policy.json"
    assert airgap("trust", "init", str(policy), env=kit_env).returncode == 0
    for name, pub in (("ecdsa", signed["pub"]), ("ed", signed["ed"]), ("other", signed["other"])):
        r = airgap("trust", "add", str(policy), str(pub), "--name", name, env=kit_env)
        assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(policy.read_text())
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path)}
    for threshold, rc in ((2, 0), (3, 1)):  # two of the three listed keys signed
        doc["threshold"] = threshold
        policy.write_text(json.dumps(doc))
        r = subprocess.run(
            ["sh", "airgap/site/airgap", str(signed["bundle"]), "verify", "--trust", str(policy)],
            cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600,
        )  # fmt: skip
        assert r.returncode == rc, r.stdout + r.stderr
        assert "Traceback" not in r.stderr
    assert "is not signed by threshold 3" in r.stderr and "nothing of its site kit ran" in r.stderr


def rewrite(bundle: Path, out: Path, change: str) -> None:
    """``bundle`` with one byte of the member ``change`` flipped (same size, same order)."""
    with tarfile.open(bundle) as src, tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as dst:
        for m in src:
            data = src.extractfile(m).read() if m.isfile() else None  # type: ignore[union-attr]
            if m.name == change:
                assert data is not None
                data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
            dst.addfile(m, io.BytesIO(data) if data is not None else None)


@pytest.mark.parametrize(
    ("what", "key", "message"),
    [
        ("wheel", "ecdsa.pub.pem", "the kit was changed"),
        ("launcher", "ecdsa.pub.pem", "the kit was changed"),
        ("descriptor", "ecdsa.pub.pem", "is not signed by the key(s) given with --key"),
        (None, "other.pub.pem", "is not signed by the key(s) given with --key"),
    ],
)
def test_a_changed_kit_or_a_wrong_signature_stops_before_any_kit_code(
    amd64_root: Path, signed: dict[str, Path], tmp_path: Path, what: str | None, key: str,
    message: str,
) -> None:  # fmt: skip
    root = amd64_root
    bundle = signed["bundle"]
    if what is not None:
        with tarfile.open(bundle) as tf:
            names = tf.getnames()
        member = {
            "wheel": next(n for n in names if n.startswith("airgap/site/wheels/")),
            "launcher": "airgap/site/airgap",
            "descriptor": "airgap/bundle.json",
        }[what]
        bundle = tmp_path / "changed.airgap.tar"
        rewrite(signed["bundle"], bundle, member)
    stage(root, bundle, signed["pub"], signed["other"])
    shutil.rmtree(root / "srv2", ignore_errors=True)
    r = launch(root, "install", "--prefix", "/srv2", "--key", key)
    assert r.returncode == 1, r.stdout + r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert not (root / "srv2").exists()  # no kit unpacked, nothing installed


def test_a_host_without_python39_is_told_what_it_needs(
    amd64_root: Path, signed: dict[str, Path]
) -> None:
    root = amd64_root
    stage(root, signed["bundle"], signed["pub"])
    (root / "work" / "py38").write_text("#!/bin/sh\necho 3.8.10\n")
    (root / "work" / "py38").chmod(0o755)
    r = launch(root, "verify", "--key", "ecdsa.pub.pem", env={"AIRGAP_PYTHON": "/work/py38"})
    assert r.returncode == 1
    assert "found Python 3.8.10" in r.stderr and "needs Python 3.9 to 3.13" in r.stderr
    assert "python3 airgap/probe --bundle BUNDLE" in r.stderr
    r = launch(root, "verify", "--key", "ecdsa.pub.pem", env={"AIRGAP_PYTHON": "python2.7"})
    assert r.returncode == 1 and "no python2.7 on PATH" in r.stderr
    # and the standalone probe does run there, on the root's own Python
    r = debroot.run(
        root, "tar -xf B.airgap.tar airgap/probe && python3 airgap/probe --bundle B.airgap.tar"
    )
    assert "Traceback" not in r.stderr and "Result:" in r.stdout, r.stdout + r.stderr


def test_an_installed_site_verifies_a_new_kit_before_it_replaces_its_own(
    amd64_root: Path, signed: dict[str, Path]
) -> None:
    root = amd64_root
    shutil.rmtree(root / "srv3", ignore_errors=True)
    stage(root, signed["bundle"], signed["pub"])
    assert launch(root, "install", "--prefix", "/srv3", "--key", "ecdsa.pub.pem").returncode == 0
    kits = root / "srv3" / ".airgap-kit"
    (installed,) = [p for p in kits.iterdir() if p.name.endswith("-cp39")]
    # make the installed kit look like an older one: this bundle's kit is then new to the site
    installed.rename(kits / "0ld-cp39")
    (kits / "current").unlink()
    (kits / "current").symlink_to("0ld-cp39")
    r = launch(root, "audit", "--site", "/srv3", "--key", "ecdsa.pub.pem")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (
        "the installed airgap (0ld-cp39) verifies B.airgap.tar before its kit replaces it"
        in r.stderr
    )
    assert "verified kitdemo 1.0.0" in r.stdout
    assert os.readlink(kits / "current") == installed.name


def test_a_delta_installs_with_only_its_launcher_and_the_wheels_the_site_keeps(
    amd64_root: Path, signed: dict[str, Path], kit_env: dict[str, str]
) -> None:
    """Python 3.9 and OpenSSL 1.1.1: the launcher checks a delta's signature over its content
    bytes, and takes the kit wheels the delta leaves out from the site's installed version."""
    root, base = amd64_root, signed["base"]
    weights = base / "weights-2"
    weights.mkdir(exist_ok=True)
    (weights / "model.safetensors").write_bytes(tiny_safetensors())
    (weights / "config.json").write_text('{"v": 2}\n')
    build(base, kit_env, base / "ecdsa.key.pem", version="2.0.0", weights=weights)  # its lock
    r = airgap("build", str(base / "kitdemo-2.0.0.yaml"), "--out", str(base / "delta"), "--key",
               str(base / "ecdsa.key.pem"), "--site-kit", "--base", str(signed["bundle"]),
               env=kit_env)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    delta = base / "delta" / "kitdemo-2.0.0.delta-from-1.0.0.airgap.tar"
    assert delta.stat().st_size < signed["bundle"].stat().st_size // 5  # no kit wheels in it
    shutil.rmtree(root / "srv4", ignore_errors=True)
    stage(root, signed["bundle"], signed["pub"])
    assert launch(root, "install", "--prefix", "/srv4", "--key", "ecdsa.pub.pem").returncode == 0
    shutil.rmtree(root / "srv4" / ".airgap-kit")  # the kit must come from the installed version
    stage(root, delta, signed["pub"])  # the delta's own launcher, as B.airgap.tar
    r = launch(root, "install", "--prefix", "/srv4", "--key", "ecdsa.pub.pem")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "read from versions installed in /srv4" in r.stderr
    assert "installed kitdemo 2.0.0" in r.stdout and "Traceback" not in r.stderr
    r = launch(root, "audit", "--site", "/srv4", "--key", "ecdsa.pub.pem")
    assert r.returncode == 0 and "verdict: PASS" in r.stdout, r.stdout + r.stderr


def test_arm64_bundle_of_the_demo_model_installs_and_audits_with_only_the_launcher(
    tmp_path_factory: pytest.TempPathFactory, kit_env: dict[str, str], arm64_root: Path
) -> None:
    root = arm64_root
    weights = services.require(services.minilm_model_dir)
    base = tmp_path_factory.mktemp("arm64")
    priv, pub, _ = make_key(base, "ecdsa")
    bundle = build(base, kit_env, priv, platform="linux/arm64", weights=weights, name="minilm-demo")
    shutil.rmtree(root / "srv", ignore_errors=True)
    stage(root, bundle, pub)
    assert debroot.run(root, "uname -m").stdout.strip() == "aarch64"
    r = launch(root, "install", "--prefix", "/srv/ai", "--key", "ecdsa.pub.pem")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "installed minilm-demo 1.0.0" in r.stdout
    r = launch(root, "audit", "--site", "/srv/ai", "--key", "ecdsa.pub.pem")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verdict: PASS" in r.stdout and "kit reused" in r.stderr


#: the site side's own tests, run by Python 3.9 in the root (scripts/bench.py py39 runs them all)
SITE_TESTS_ON_39 = (
    "tests/commands/test_verify.py tests/commands/test_sign.py tests/site/test_auditlog.py "
    "tests/site/test_install_safety.py tests/site/test_trust_rotation.py -m 'not slow'"
)


def test_site_side_tests_pass_on_python39(
    amd64_root: Path, kit_env: dict[str, str], signed: dict[str, Path]
) -> None:
    """The project installed from wheels into a venv of the root's Python 3.9: its site-side
    tests (verify, sign, audit log, install rules, trust rotation) pass there."""
    repo = Path(__file__).resolve().parents[2]
    debroot.project_on_python39(amd64_root, repo, Path(kit_env["AIRGAP_CACHE_DIR"]))
    r = debroot.pytest_on_python39(amd64_root, SITE_TESTS_ON_39)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "3.9" in debroot.run(amd64_root, "/v/bin/python -V").stdout
