"""Key files: generate an encrypted private key and its public key; describe a key file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.errors import InputError
from packager.util.fs import atomic_write_text


def generate_key_files(out: Path, name: str, algorithm: str) -> tuple[str, Path, Path]:
    from packager.signing import keys

    alg = keys.parse_algorithm(algorithm)
    if not out.is_dir():
        raise InputError(f"{out}: no such folder", hint="create it first")
    priv_path, pub_path = out / f"{name}.key.pem", out / f"{name}.pub.pem"
    for p in (priv_path, pub_path):
        if p.exists():
            raise InputError(f"{p} already exists", hint="pick another --name or folder")
    passphrase = keys.passphrase_from_env_or_prompt(confirm=True)
    key = keys.generate_private_key(alg)
    atomic_write_text(priv_path, keys.private_key_pem(key, passphrase).decode("ascii"), mode=0o600)
    atomic_write_text(pub_path, keys.public_key_pem(key).decode("ascii"))
    return keys.keyid(key.public_key()), priv_path, pub_path


@dataclass(frozen=True)
class KeyInfo:
    path: Path | str  # a key file, or a pkcs11: URI
    keyid: str
    algorithm: str
    kind: str  # public | private | token

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "keyid": self.keyid,
            "algorithm": self.algorithm,
            "kind": self.kind,
        }


def describe_key(spec: str) -> KeyInfo:
    """`airgap key show KEY`: a key file, or a key in a PKCS#11 token (``pkcs11:`` URI)."""
    from packager.signing import keys
    from packager.signing.pkcs11_uri import is_pkcs11_uri

    if is_pkcs11_uri(spec):
        from packager.signing.pkcs11 import token_public_key

        uri, pub = token_public_key(spec)
        return KeyInfo(uri.display(), keys.keyid(pub), keys.algorithm_of(pub), "token")
    return describe_key_file(Path(spec))


def describe_key_file(path: Path) -> KeyInfo:
    from packager.signing import keys

    text = path.read_bytes() if path.is_file() else b""
    if b"PRIVATE KEY" in text:
        priv = keys.load_private_key(path)
        pub = priv.public_key()
        kind = "private"
    else:
        pub = keys.load_public_key(path)
        kind = "public"
    return KeyInfo(path, keys.keyid(pub), keys.algorithm_of(pub), kind)
