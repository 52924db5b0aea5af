"""Publisher signatures in: ``model.source.signature`` names the publisher's OpenSSF model
signature (``model.sig``, as ``model_signing sign key|certificate`` writes it) and the key or the
certificates to trust; `airgap lock` verifies it and stops (exit 1, naming the file) when it does
not match what it locks.

What "matches" means (what ``model_signing verify`` checks on the folder, restated for the files
airgap ships): the signature verifies with the publisher's key (or a certificate that chains to a
given root); every locked file that the signature does not ignore is among the signed files with
the signed sha256 (files serialization: the lock's own digests; shards: each signed byte range is
hashed, and the ranges must cover the file); and every signed file is in the model folder (one the
manifest's globs leave out is simply not shipped).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from packager.errors import CheckFailed, InputError
from packager.manifest.model import Manifest, PublisherSignature
from packager.resolve.lockfile import LockedFile, PublisherSignatureRecord
from packager.signing import keys, oms
from packager.signing.errors import OmsError
from packager.util.jsonio import read_bounded

CHUNK = 4 * 1024 * 1024


class PublisherSignatureMismatch(CheckFailed):
    """The publisher's model signature does not verify, or does not cover what is locked."""


def signature_file(root: Path, sig: PublisherSignature) -> Path:
    return Path(sig.path) if Path(sig.path).is_absolute() else root / sig.path


def relative_in_folder(root: Path, sig: PublisherSignature) -> str | None:
    """The signature's path inside the model folder (so it is not locked as a model file)."""
    p = PurePosixPath(sig.path)
    if p.is_absolute():
        try:
            return Path(sig.path).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return None
    return p.as_posix() if ".." not in p.parts else None


def _read(path: Path, limit: int, what: str, hint: str) -> bytes:
    return read_bounded(path, limit, what=what, missing_hint=hint)


def _roots(paths: Sequence[Path]) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for p in paths:
        data = _read(
            p, 1024 * 1024, "certificate file", "give the publisher's root certificate (PEM)"
        )
        try:
            out += x509.load_pem_x509_certificates(data)
        except ValueError:
            raise InputError(f"{p}: not a PEM certificate file") from None
    return out


def _range_sha256(path: Path, start: int, end: int) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        fh.seek(start)
        left = end - start
        while left:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def _shard_problems(
    locked: Mapping[str, LockedFile], root: Path, resources: Iterable[tuple[str, str]]
) -> tuple[dict[str, list[str]], set[str]]:
    """Per locked path, what is wrong with its shards; and every path the shards name."""
    by_path: dict[str, list[tuple[int, int, str]]] = {}
    for name, digest in resources:
        head, _, end_text = name.rpartition(":")
        path, _, start_text = head.rpartition(":")
        if not path or not start_text.isdigit() or not end_text.isdigit():
            raise OmsError(f"a shard resource {name!r} is not PATH:START:END")
        by_path.setdefault(path, []).append((int(start_text), int(end_text), digest))
    problems: dict[str, list[str]] = {}
    for path, f in locked.items():
        shards = sorted(by_path.get(path, []))
        if not shards:
            continue
        at = 0
        for start, end, digest in shards:
            if start != at or end < start:
                problems.setdefault(path, []).append(
                    f"its signed shards do not cover bytes {at}-{start}"
                )
                break
            if _range_sha256(root / path, start, end) != digest:
                problems.setdefault(path, []).append(
                    f"bytes {start}-{end} differ from the signed shard"
                )
            at = end
        if at != f.size and path not in problems:
            problems.setdefault(path, []).append(
                f"the signed shards end at byte {at}, the file at {f.size}"
            )
    return problems, set(by_path)


def verify_publisher_signature(
    manifest: Manifest,
    root: Path,
    folder_files: Iterable[str],
    locked: Sequence[LockedFile],
) -> PublisherSignatureRecord:
    """Check the publisher's signature over the model folder ``root`` (its files
    ``folder_files``) against the ``locked`` files; the record for the lock, or
    :class:`PublisherSignatureMismatch` naming the signature file and what does not match."""
    sig_cfg = manifest.model.source.signature
    assert sig_cfg is not None
    where = manifest.document.location(sig_cfg.json_path)
    path = signature_file(root, sig_cfg)
    raw = _read(path, oms.MAX_SIGNATURE_BYTES, "model signature file",
                "model.source.signature.path is relative to the model's folder (model.sig by default)")  # fmt: skip

    def mismatch(message: str, hint: str | None = None) -> PublisherSignatureMismatch:
        return PublisherSignatureMismatch(
            f"{path}: the publisher's model signature does not match: {message}",
            hint=hint
            or "the files are not the ones the publisher signed: fetch them again "
            "from the publisher, or remove model.source.signature if you mean to ship others",
            location=where,
        )

    try:
        sig = oms.parse_model_signature(raw, source=str(path))
        subject = cert_sha = root_subject = None
        if sig_cfg.public_key is not None:
            method = "key"
            public = _publisher_key(sig_cfg.public_key)
            if not oms.verifies(sig, public):
                raise mismatch(
                    f"its signature does not verify with {sig_cfg.public_key}",
                    hint="check model.source.signature.public_key (the publisher's key) and that "
                    "model.sig is the publisher's, unaltered",
                )
            signer = public
        else:
            method = "certificate"
            chain = oms.verify_chain(sig, _roots(sig_cfg.certificate_chain))
            if not oms.verifies(sig, chain.public_key):
                raise mismatch(
                    f"its signature does not verify with the certificate {chain.subject}"
                )
            signer, subject, cert_sha, root_subject = (
                chain.public_key,
                chain.subject,
                chain.fingerprint,
                chain.root,
            )
        statement = oms.parse_statement(sig.payload, source=str(path))
    except OmsError as exc:
        raise mismatch(exc.message, exc.hint) from None
    if statement.hash_type != "sha256":
        raise InputError(
            f"{path}: signed with {statement.hash_type} digests; airgap checks sha256 model "
            "signatures", hint="ask the publisher for a sha256 signature (model_signing's default)",
            location=where,
        )  # fmt: skip
    ignore = set(statement.ignore_paths) | set(oms.DEFAULT_IGNORE)
    own = relative_in_folder(root, sig_cfg)
    if own is not None:
        ignore.add(own)
    shipped = {f.path: f for f in locked if not oms.ignored(f.path, ignore)}
    present = set(folder_files)
    problems: list[str] = []
    if statement.method == "files":
        signed = dict(statement.resources)
        for p, f in sorted(shipped.items()):
            want = signed.get(p)
            if want is None:
                problems.append(f"{p} is not among the signed files")
            elif want != f.sha256:
                problems.append(f"{p}: sha256 {f.sha256}, signed {want}")
        names = set(signed)
    else:
        found, names = _shard_problems(shipped, root, statement.resources)
        for p in sorted(shipped):
            if p not in names:
                problems.append(f"{p} is not among the signed files")
            problems += [f"{p}: {m}" for m in found.get(p, [])]
    missing = sorted(n for n in names if n not in present and not oms.ignored(n, ignore))
    problems += [f"{n} is signed but missing from the model folder" for n in missing]
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise mismatch("; ".join(problems[:5]) + more)
    return PublisherSignatureRecord(
        path=sig_cfg.path,
        sha256=hashlib.sha256(raw).hexdigest(),
        method=method,
        keyid=_spki_sha256(signer),
        signer=subject,
        certificate_sha256=cert_sha,
        root=root_subject,
        model_name=statement.name,
        root_digest=statement.root_digest,
        serialization=statement.method,
        resources=len(statement.resources),
        files_checked=len(shipped),
    )


def _publisher_key(path: Path) -> ec.EllipticCurvePublicKey:
    """The publisher's public key: PEM, an elliptic-curve key (P-256, P-384 or P-521, what
    model_signing signs with)."""
    data = _read(path, 64 * 1024, "public key file", "give the publisher's public key (PEM)")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise InputError(
            f"{path}: not a PEM public key", hint="give the publisher's public key (PEM)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InputError(
            f"{path}: a {keys.describe_key_type(key)} key; OpenSSF model signatures are made "
            "with elliptic-curve keys",
            hint="give the publisher's EC public key",
        )
    return key


def _spki_sha256(key: ec.EllipticCurvePublicKey) -> str:
    """The keyid rule (sha256 of the DER public key), for any of the publisher's EC curves."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()
