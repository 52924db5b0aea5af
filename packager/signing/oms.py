"""OpenSSF Model Signing (OMS) signatures: ``model.sig`` beside a model's files.

The format ``model_signing`` (PyPI ``model-signing``, https://github.com/sigstore/model-transparency)
writes and verifies, for its ``key`` and ``certificate`` methods:

- a Sigstore bundle v0.3 (``mediaType application/vnd.dev.sigstore.bundle.v0.3+json``) whose
  ``verificationMaterial`` names the key (``publicKey.hint``: hex sha256 of the PEM public key) or
  carries the signing certificate chain (``x509CertificateChain.certificates[].rawBytes``, DER,
  leaf first), with no transparency-log entries (``tlogEntries: []``: nothing online);
- a DSSE envelope (``payloadType application/vnd.in-toto+json``, one ECDSA signature over the
  DSSE PAE, with the hash that matches the curve: SHA-256 for P-256);
- the payload: an in-toto Statement v1, ``predicateType https://model_signing/signature/v1.0``,
  one subject (the model's name and the sha256 over every file digest in path order), and the
  predicate ``{serialization: {method: files, hash_type: sha256, allow_symlinks: false,
  ignore_paths: [...]}, resources: [{name, algorithm: sha256, digest}]}``: every file of the
  model folder (minus ``ignore_paths``) with its sha256.

airgap writes it from the lock's per-file digests (no file is read again) and signs it through the
bundle key's signer (a PEM key or a PKCS#11 token); ``model_signing verify key`` accepts it on
the installed folder offline. It verifies publishers' signatures the same way, in pure Python
with ``cryptography`` (no Sigstore client, no network).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from packager.signing.dsse import PAYLOAD_TYPE_INTOTO, Signer, pae
from packager.signing.errors import OmsError
from packager.signing.keys import ECDSA_P256_SHA256, PublicKey
from packager.util.jsonio import DocumentError, canonical_json, parse_document, pretty_json

if TYPE_CHECKING:  # x509 is imported where a certificate chain is read (~15 ms at start-up)
    from cryptography import x509

BUNDLE_MEDIA_TYPE: Final = "application/vnd.dev.sigstore.bundle.v0.3+json"
STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE: Final = "https://model_signing/signature/v1.0"
#: the file name model_signing reads and writes by default, in the model's folder
SIGNATURE_FILE: Final = "model.sig"
#: what model_signing leaves out of a model folder by default (its signature and git's files);
#: airgap signs the same set, so its signature verifies with model_signing's defaults
DEFAULT_IGNORE: Final = ("model.sig", ".git", ".gitattributes", ".github", ".gitignore")
#: a model.sig larger than this is refused unparsed (a resource is ~150 bytes of JSON)
MAX_SIGNATURE_BYTES: Final = 64 * 1024 * 1024

_HEX64 = re.compile(r"[0-9a-f]{64}")
_CURVE_HASH: Final[Mapping[str, type[hashes.HashAlgorithm]]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


# ----------------------------------------------------------------------------- the statement


def ignored(path: str, ignore_paths: Iterable[str] = DEFAULT_IGNORE) -> bool:
    """True when ``path`` (POSIX, relative to the model folder) is one of ``ignore_paths`` or
    inside one (model_signing ignores a folder with everything below it)."""
    exact, below = _ignore_rule(tuple(ignore_paths))
    return path in exact or path.startswith(below)


@functools.lru_cache(maxsize=16)
def _ignore_rule(ignore_paths: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The names :func:`ignored` compares and the folder prefixes it tests with one
    ``startswith``, made once per set of paths (it runs for each file of a model)."""
    return frozenset(ignore_paths), tuple(p.rstrip("/") + "/" for p in ignore_paths)


def root_digest(resources: Iterable[tuple[str, str]]) -> str:
    """The subject digest: sha256 over the raw file digests in resource order."""
    h = hashlib.sha256()
    for _, digest in resources:
        h.update(bytes.fromhex(digest))
    return h.hexdigest()


def model_statement(name: str, files: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The OMS in-toto statement over ``files`` ((path, sha256 hex) pairs), sorted by path.

    Files that model_signing ignores by default (:data:`DEFAULT_IGNORE`) are left out, so the
    statement matches what ``model_signing verify`` hashes in the installed folder.
    """
    resources = sorted((p, d) for p, d in files if not ignored(p))
    if not resources:
        raise ValueError("a model signature needs at least one file")
    for p, d in resources:
        if not _HEX64.fullmatch(d):
            raise ValueError(f"{p}: not a sha256 hex digest: {d!r}")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": root_digest(resources)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": list(DEFAULT_IGNORE),
            },
            "resources": [{"name": p, "algorithm": "sha256", "digest": d} for p, d in resources],
        },
    }


def statement_payload(statement: Mapping[str, Any]) -> bytes:
    """The DSSE payload: canonical JSON of the statement (deterministic, so the descriptor can
    pin its sha256 while the signature around it differs from one signing to the next)."""
    return canonical_json(statement)


# ----------------------------------------------------------------------------- signing


def _pem_hint(public_key: PublicKey) -> str:
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def can_sign(algorithm: str) -> bool:
    """model_signing verifies elliptic-curve keys only: airgap writes model.sig with ECDSA P-256."""
    return algorithm == ECDSA_P256_SHA256


def sign_model(payload: bytes, signer: Signer, public_key: PublicKey) -> bytes:
    """The bytes of a ``model.sig`` over ``payload`` (see :func:`statement_payload`), signed by
    ``signer`` (ECDSA P-256: the DER signature over the PAE, SHA-256)."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise ValueError("an OMS model signature needs an ECDSA P-256 key")
    sig = signer.sign(pae(PAYLOAD_TYPE_INTOTO, payload))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": _pem_hint(public_key)}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": PAYLOAD_TYPE_INTOTO,
            "signatures": [{"sig": base64.b64encode(sig).decode("ascii"), "keyid": signer.keyid}],
        },
    }
    return pretty_json(bundle)


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ModelSignature:
    """A parsed ``model.sig`` (shape checked; nothing verified)."""

    payload: bytes
    signatures: tuple[bytes, ...]
    key_hint: str | None  # hex sha256 of the signer's PEM public key, when named
    certificates: tuple[bytes, ...]  # DER, leaf first, when it carries a chain

    @property
    def payload_sha256(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()


def _obj(value: object, what: str, source: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise OmsError(f"{source}: {what} is not a JSON object")
    return value


def _b64(value: object, what: str, source: str) -> bytes:
    if not isinstance(value, str):
        raise OmsError(f"{source}: {what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise OmsError(f"{source}: {what} is not base64") from None


def parse_model_signature(data: bytes, *, source: str = SIGNATURE_FILE) -> ModelSignature:
    """A ``model.sig``'s bytes as a :class:`ModelSignature`; :class:`OmsError` naming what is
    not the OMS format (strict JSON, bounded size)."""
    if len(data) > MAX_SIGNATURE_BYTES:
        raise OmsError(f"{source}: larger than {MAX_SIGNATURE_BYTES // 2**20} MiB")
    try:
        doc = parse_document(data)
    except DocumentError as exc:
        raise OmsError(f"{source}: not a Sigstore bundle: {exc}") from None
    doc = _obj(doc, "the file", source)
    if doc.get("mediaType") != BUNDLE_MEDIA_TYPE:
        raise OmsError(
            f"{source}: mediaType is {doc.get('mediaType')!r}, not {BUNDLE_MEDIA_TYPE!r}",
            hint="only OpenSSF model signatures made with a key or a certificate are read "
            "(not Sigstore keyless bundles, which need the network)",
        )
    material = _obj(doc.get("verificationMaterial"), "verificationMaterial", source)
    hint = None
    certs: list[bytes] = []
    if "publicKey" in material:
        h = _obj(material["publicKey"], "verificationMaterial.publicKey", source).get("hint")
        if h is not None and not (isinstance(h, str) and _HEX64.fullmatch(h)):
            raise OmsError(f"{source}: verificationMaterial.publicKey.hint is not a sha256 hex")
        hint = h
    elif "x509CertificateChain" in material:
        chain = _obj(material["x509CertificateChain"], "x509CertificateChain", source)
        raw = chain.get("certificates")
        if not isinstance(raw, list) or not raw:
            raise OmsError(f"{source}: x509CertificateChain.certificates is empty")
        for i, c in enumerate(raw):
            certs.append(_b64(_obj(c, f"certificates[{i}]", source).get("rawBytes"),
                              f"certificates[{i}].rawBytes", source))  # fmt: skip
    else:
        raise OmsError(
            f"{source}: verificationMaterial names neither a public key nor a certificate chain",
            hint="a Sigstore keyless signature needs Rekor and Fulcio (the network); ask the "
            "publisher for a key or certificate signature",
        )
    env = _obj(doc.get("dsseEnvelope"), "dsseEnvelope", source)
    if env.get("payloadType") != PAYLOAD_TYPE_INTOTO:
        raise OmsError(f"{source}: dsseEnvelope.payloadType is not {PAYLOAD_TYPE_INTOTO!r}")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise OmsError(f"{source}: dsseEnvelope has no signatures")
    return ModelSignature(
        payload=_b64(env.get("payload"), "dsseEnvelope.payload", source),
        signatures=tuple(
            _b64(_obj(s, f"signatures[{i}]", source).get("sig"), f"signatures[{i}].sig", source)
            for i, s in enumerate(sigs)
        ),
        key_hint=hint,
        certificates=tuple(certs),
    )


def verifies(sig: ModelSignature, public_key: object) -> bool:
    """True when ``public_key`` (an EC key) made the envelope's first signature, as model_signing
    checks it (and the key hint, when the file has one, names that key)."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return False
    algorithm = _CURVE_HASH.get(public_key.curve.name)
    if algorithm is None:
        return False
    if sig.key_hint is not None and sig.key_hint != _pem_hint(public_key):
        return False
    try:
        public_key.verify(
            sig.signatures[0], pae(PAYLOAD_TYPE_INTOTO, sig.payload), ec.ECDSA(algorithm())
        )
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class ChainResult:
    public_key: ec.EllipticCurvePublicKey
    subject: str  # the signing certificate's subject, RFC 4514
    fingerprint: str  # sha256 of the signing certificate's DER, hex
    root: str  # the subject of the trusted root the chain ends in


def verify_chain(sig: ModelSignature, roots: Sequence[x509.Certificate]) -> ChainResult:
    """The signing certificate's key once its chain leads to one of ``roots``; checked as
    model_signing does: at the time the certificate became valid (a signature outlives its
    certificate), and the certificate must be for signing (KeyUsage digitalSignature or the
    code-signing extended key usage). :class:`OmsError` says why not."""
    from cryptography import x509
    from cryptography.x509 import verification as x509v

    if not sig.certificates:
        raise OmsError("the model signature carries no certificate chain")
    try:
        leaf = x509.load_der_x509_certificate(sig.certificates[0])
        intermediates = [x509.load_der_x509_certificate(c) for c in sig.certificates[1:]]
    except ValueError as exc:
        raise OmsError(f"a certificate in the model signature is damaged ({exc})") from None
    when: datetime = leaf.not_valid_before_utc
    verifier = (
        x509v.PolicyBuilder()
        .store(x509v.Store(list(roots)))
        .time(when)
        .extension_policies(
            ca_policy=x509v.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=x509v.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        chain = verifier.verify(leaf, intermediates).chain
    except x509v.VerificationError as exc:
        raise OmsError(
            f"the signing certificate ({leaf.subject.rfc4514_string()}) does not chain to a "
            f"trusted root: {exc}",
            hint="give the publisher's root certificate in model.source.signature.certificate_chain",
        ) from None
    if not _for_signing(leaf):
        raise OmsError(
            f"the certificate {leaf.subject.rfc4514_string()} is not for signing "
            "(no digitalSignature key usage, no code-signing extended key usage)"
        )
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise OmsError(f"the certificate {leaf.subject.rfc4514_string()} has no EC key")
    return ChainResult(
        key,
        leaf.subject.rfc4514_string(),
        hashlib.sha256(sig.certificates[0]).hexdigest(),
        chain[-1].subject.rfc4514_string(),
    )


def _for_signing(cert: x509.Certificate) -> bool:
    from cryptography import x509

    try:
        if cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            return True
    except x509.ExtensionNotFound:
        pass
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return x509.oid.ExtendedKeyUsageOID.CODE_SIGNING in eku


# ----------------------------------------------------------------------------- the payload


@dataclass(frozen=True)
class ModelStatement:
    """What a model signature says: the model's name, its root digest, how the files were
    serialized and every resource (a file, or a shard ``path:start:end``) with its digest."""

    name: str
    root_digest: str
    method: str  # files | shards
    hash_type: str  # sha256 | blake2 | blake3
    ignore_paths: tuple[str, ...]
    resources: tuple[tuple[str, str], ...]  # (name, hex digest), in payload order


def parse_statement(payload: bytes, *, source: str = SIGNATURE_FILE) -> ModelStatement:
    """The OMS v1.0 statement in a (verified) payload; :class:`OmsError` for anything else,
    including a root digest that does not match the resources (as model_signing checks)."""
    try:
        doc = _obj(parse_document(payload), "the payload", source)
    except DocumentError as exc:
        raise OmsError(f"{source}: the signed payload is not JSON: {exc}") from None
    if doc.get("_type") != STATEMENT_TYPE:
        raise OmsError(f"{source}: the payload is not an in-toto Statement v1")
    if doc.get("predicateType") != PREDICATE_TYPE:
        raise OmsError(
            f"{source}: predicateType is {doc.get('predicateType')!r}, not {PREDICATE_TYPE!r}",
            hint="the model was signed by a model_signing older than 1.0; sign it again",
        )
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise OmsError(f"{source}: the statement must have exactly one subject")
    subject = _obj(subjects[0], "subject[0]", source)
    root = _obj(subject.get("digest"), "subject[0].digest", source).get("sha256")
    if not isinstance(root, str) or not _HEX64.fullmatch(root):
        raise OmsError(f"{source}: subject[0] has no sha256 digest")
    predicate = _obj(doc.get("predicate"), "predicate", source)
    ser = _obj(predicate.get("serialization"), "predicate.serialization", source)
    method, hash_type = ser.get("method"), ser.get("hash_type")
    if method not in ("files", "shards") or not isinstance(hash_type, str):
        raise OmsError(f"{source}: unknown serialization method {method!r}")
    ignore = ser.get("ignore_paths", [])
    if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
        raise OmsError(f"{source}: serialization.ignore_paths is not a list of paths")
    raw = predicate.get("resources")
    if not isinstance(raw, list):
        raise OmsError(f"{source}: predicate.resources is not a list")
    resources = []
    for i, r in enumerate(raw):
        r = _obj(r, f"resources[{i}]", source)
        name, algorithm, digest = r.get("name"), r.get("algorithm"), r.get("digest")
        # files: "sha256"; shards: "sha256-sharded-<shard size>"
        if (
            not isinstance(name, str)
            or not isinstance(digest, str)
            or not isinstance(algorithm, str)
            or algorithm.split("-sharded-")[0] != hash_type
        ):
            raise OmsError(f"{source}: resources[{i}] is not {{name, algorithm, digest}}")
        try:
            bytes.fromhex(digest)
        except ValueError:
            raise OmsError(f"{source}: resources[{i}].digest is not hex") from None
        resources.append((name, digest.lower()))
    if root_digest(resources) != root:
        raise OmsError(
            f"{source}: the statement is inconsistent: its resources do not hash to its "
            "subject digest"
        )
    name = subject.get("name")
    return ModelStatement(
        name if isinstance(name, str) else "",
        root,
        str(method),
        hash_type,
        tuple(ignore),
        tuple(resources),
    )
