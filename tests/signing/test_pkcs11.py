"""Keys in a token: --key pkcs11:... signs in SoftHSM2; the signatures are the ones airgap always
wrote (openssl verifies them), and every way the token can be wrong is a clear error."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from packager.bundle import layout
from packager.errors import InputError
from packager.signing import keys
from packager.signing.errors import PassphraseUnavailable
from packager.signing.pkcs11 import load_token_signing_key, pin_from_env_or_prompt
from tests.support.cli import airgap, cli
from tests.support.golden import build_golden
from tests.support.hsm import GENERATED, IMPORTED, PIN, SoftHsm

pytestmark = pytest.mark.usefixtures("softhsm")


def _keyid(pub: Path) -> str:
    der = serialization.load_pem_public_key(pub.read_bytes()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


@pytest.fixture
def token_env(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> SoftHsm:
    for k, v in softhsm.env.items():
        monkeypatch.setenv(k, v)
    return softhsm


@pytest.mark.parametrize("label", [IMPORTED, GENERATED])
def test_key_show_reads_the_keyid_from_the_token_without_a_pin(
    token_env: SoftHsm, monkeypatch: pytest.MonkeyPatch, label: str
) -> None:
    monkeypatch.delenv("AIRGAP_PKCS11_PIN")
    r = cli("key", "show", token_env.uri(label), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    public = token_env.imported_public if label == IMPORTED else token_env.generated_public
    assert doc["keyid"] == _keyid(public)
    assert doc["algorithm"] == "ecdsa-p256-sha256"
    assert doc["kind"] == "token"


def test_a_token_signature_is_the_format_openssl_verifies(
    token_env: SoftHsm, tmp_path: Path
) -> None:
    (folder,) = build_golden(tmp_path / "out", layout_only=True)
    r = cli("sign", str(folder), "--key", token_env.uri(GENERATED), "--json")
    assert r.returncode == 0, r.stderr
    kid = json.loads(r.stdout)["keyid"]
    assert kid == _keyid(token_env.generated_public)
    sig = folder / layout.signature_path(kid)
    der = tmp_path / "sig.der"
    der.write_bytes(base64.b64decode(sig.read_bytes()))
    ossl = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(token_env.generated_public),
         "-signature", str(der), str(folder / layout.BUNDLE_JSON)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert ossl.returncode == 0 and "Verified OK" in ossl.stdout, ossl.stderr
    v = cli("verify", str(folder), "--key", str(token_env.generated_public), "--json")
    assert v.returncode == 0, v.stdout


def test_a_bundle_built_with_a_token_key_verifies_and_its_attestation_is_signed_by_it(
    token_env: SoftHsm, tmp_path: Path
) -> None:
    key = load_token_signing_key(token_env.uri(IMPORTED))
    (tar,) = build_golden(tmp_path / "out", key=key)
    r = cli("audit", str(tar), "--key", str(token_env.imported_public), "--json")
    assert r.returncode == 0, r.stdout
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "PASS"
    assert [s["keyid"] for s in doc["signers"]] == [_keyid(token_env.imported_public)]
    assert doc["provenance"]["dsse_signatures"] == [key.keyid]


def test_the_private_key_cannot_be_read_out_of_the_token(token_env: SoftHsm) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    load_token_signing_key(token_env.uri(GENERATED))  # logs this process in to the token
    lib = pkcs11.lib(str(token_env.module))
    with lib.get_token(token_label="airgap-release").open() as s:
        priv = s.get_key(object_class=ObjectClass.PRIVATE_KEY, label=GENERATED)
        assert priv[Attribute.SENSITIVE] and not priv[Attribute.EXTRACTABLE]
        with pytest.raises(pkcs11.PKCS11Error):
            priv[Attribute.VALUE]


@pytest.mark.parametrize(
    ("uri", "env", "code", "says"),
    [
        ("pkcs11:token=airgap-release;object=imported-p256", {"AIRGAP_PKCS11_PIN": "000000"}, 2,
         "wrong PIN"),
        ("pkcs11:token=airgap-release;object=no-such-key", {}, 2,
         "holds no private key labelled 'no-such-key'"),
        ("pkcs11:token=no-such-token;object=imported-p256", {}, 2,
         "no such token (tokens present: 'airgap-release')"),
        ("pkcs11:token=airgap-release;object=imported-p256", {"AIRGAP_PKCS11_MODULE": ""}, 2,
         "no PKCS#11 library to load"),
        ("pkcs11:token=airgap-release;object=imported-p256",
         {"AIRGAP_PKCS11_MODULE": "/no/such/lib.so"}, 2, "no such PKCS#11 library"),
        ("pkcs11:token=airgap-release;object=imported-p256?pin-value=246810", {}, 2,
         "PIN in the pkcs11: URI is refused"),
    ],
)  # fmt: skip
def test_token_problems_are_clear_errors(
    token_env: SoftHsm, tmp_path: Path, uri: str, env: dict[str, str], code: int, says: str
) -> None:
    (folder,) = build_golden(tmp_path / "out", layout_only=True)
    before = sorted(p.name for p in (folder / layout.SIGNATURES_DIR).iterdir())
    r = airgap("sign", str(folder), "--key", uri, env=env)
    assert r.returncode == code, r.stderr
    assert says in r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(p.name for p in (folder / layout.SIGNATURES_DIR).iterdir()) == before


def test_a_token_key_of_another_algorithm_is_refused(token_env: SoftHsm, tmp_path: Path) -> None:
    script = (
        "import sys, pkcs11\n"
        "from pkcs11 import KeyType\n"
        "lib = pkcs11.lib(sys.argv[1])\n"
        "with lib.get_token(token_label='airgap-release').open(user_pin=sys.argv[2], rw=True) as s:\n"
        "    s.generate_keypair(KeyType.RSA, 2048, store=True, label='rsa-key', id=b'\\x09')\n"
    )
    import sys

    subprocess.run(
        [sys.executable, "-c", script, str(token_env.module), PIN],
        check=True, env={**token_env.env}, capture_output=True,
    )  # fmt: skip
    r = airgap("key", "show", token_env.uri("rsa-key"), env=token_env.env)
    assert r.returncode == 2
    assert "airgap signs with ECDSA P-256 in tokens" in r.stderr


def test_the_pin_comes_from_the_environment_or_a_prompt_never_an_argument() -> None:
    assert pin_from_env_or_prompt("t", environ={"AIRGAP_PKCS11_PIN": "1234"}) == "1234"
    asked: list[str] = []
    pin = pin_from_env_or_prompt(
        "release", environ={}, isatty=lambda: True, ask=lambda p: asked.append(p) or "9876"
    )
    assert pin == "9876" and asked == ["User PIN for token release: "]
    with pytest.raises(PassphraseUnavailable, match="standard input is not a terminal"):
        pin_from_env_or_prompt("release", environ={}, isatty=lambda: False)
    with pytest.raises(PassphraseUnavailable, match="set but empty"):
        pin_from_env_or_prompt("release", environ={"AIRGAP_PKCS11_PIN": ""})


def test_a_key_file_is_still_a_key_file() -> None:
    with pytest.raises(InputError, match="no such key file"):
        keys.open_signing_key("/no/such/key.pem")


def test_a_trust_policy_signed_in_the_token(token_env: SoftHsm, tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    assert cli("trust", "init", str(policy)).returncode == 0
    add = cli("trust", "add", str(policy), str(token_env.generated_public), "--name", "hsm")
    assert add.returncode == 0, add.stderr
    r = cli("trust", "sign", str(policy), "--key", token_env.uri(GENERATED), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["complete"] and doc["keyid"] == _keyid(token_env.generated_public)
    shown = json.loads(cli("trust", "show", str(policy), "--json").stdout)
    assert shown["signatures"]["own"] == [doc["keyid"]]
