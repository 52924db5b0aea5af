"""A real PKCS#11 token for tests: SoftHSM2 (Debian ``softhsm2``) with a token made by the test.

``make_softhsm`` writes a SoftHSM2 configuration and token folder under a temporary folder,
initializes a token with ``softhsm2-util`` and puts keys in it: one imported from a PEM file made
here (``softhsm2-util --import``, so the test knows the public key independently) and one
generated inside the token by ``C_GenerateKeyPair`` (python-pkcs11, in a child process so that
this process loads the library only once, with the configuration it will keep).

SoftHSM2 reads ``SOFTHSM2_CONF`` when the library is initialized, once per process: tests that
sign in this process share one token folder (the session fixture ``softhsm`` in
tests/conftest.py); tests that need their own token run airgap in a new process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.services import ServiceUnavailable

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
TOKEN = "airgap-release"
PIN = "246810"
SO_PIN = "13579135"
IMPORTED = "imported-p256"  # label of the key imported from a PEM file
GENERATED = "generated-p256"  # label of the key generated in the token


def softhsm_module() -> Path:
    """The SoftHSM2 PKCS#11 library, or ServiceUnavailable."""
    if shutil.which("softhsm2-util") is None:
        raise ServiceUnavailable("SoftHSM2 is not installed (Debian softhsm2)")
    for c in MODULE_CANDIDATES:
        if Path(c).is_file():
            return Path(c)
    raise ServiceUnavailable("libsofthsm2.so not found (Debian softhsm2)")


@dataclass(frozen=True)
class SoftHsm:
    folder: Path
    module: Path
    conf: Path
    imported_public: Path  # PEM public key of the imported key
    generated_public: Path  # PEM public key of the generated key, read back from the token

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to sign with the token (the PIN included: tests only)."""
        return {
            "SOFTHSM2_CONF": str(self.conf),
            "AIRGAP_PKCS11_MODULE": str(self.module),
            "AIRGAP_PKCS11_PIN": PIN,
        }

    def uri(self, label: str = IMPORTED, token: str = TOKEN) -> str:
        return f"pkcs11:token={token};object={label}"


def _run(args: list[str], env: dict[str, str]) -> str:
    r = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])}... failed: {r.stdout}{r.stderr}")
    return r.stdout


_GENERATE = """
import sys, pkcs11
from pkcs11 import Attribute, KeyType
from pkcs11.util.ec import encode_named_curve_parameters
lib = pkcs11.lib(sys.argv[1])
with lib.get_token(token_label=sys.argv[2]).open(user_pin=sys.argv[3], rw=True) as s:
    params = s.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
    pub, _ = params.generate_keypair(store=True, label=sys.argv[4], id=b"\\x02")
    sys.stdout.write(bytes(pub[Attribute.EC_POINT]).hex())
"""


def make_softhsm(folder: Path) -> SoftHsm:
    """A token ``TOKEN`` (user PIN ``PIN``) holding the keys ``IMPORTED`` and ``GENERATED``."""
    module = softhsm_module()
    folder.mkdir(parents=True, exist_ok=True)
    tokens = folder / "tokens"
    tokens.mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    env = {"SOFTHSM2_CONF": str(conf)}
    _run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--so-pin", SO_PIN,
          "--pin", PIN], env)  # fmt: skip
    # an imported key: its PEM made here, an unencrypted PKCS#8 copy only for the import
    key = ec.generate_private_key(ec.SECP256R1())
    clear = folder / "import.pk8.pem"
    clear.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    _run(["softhsm2-util", "--import", str(clear), "--token", TOKEN, "--label", IMPORTED,
          "--id", "01", "--pin", PIN], env)  # fmt: skip
    clear.unlink()
    imported_public = folder / "imported.pub.pem"
    imported_public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    # a key generated in the token: only its public point comes out
    point = bytes.fromhex(
        _run([sys.executable, "-c", _GENERATE, str(module), TOKEN, PIN, GENERATED], env)
    )
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point[2:])
    generated_public = folder / "generated.pub.pem"
    generated_public.write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return SoftHsm(folder, module, conf, imported_public, generated_public)
