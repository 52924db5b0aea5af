"""The one place that spells the bundle format: file names, paths and media types.

A bundle is an OCI image layout plus an ``airgap/`` folder:

    oci-layout  index.json  blobs/sha256/<hex>
    airgap/bundle.json                    the descriptor (signed)
    airgap/bundle.json.sig/<keyid>.sig    base64 signatures over bundle.json
    airgap/attestation.dsse.json          DSSE envelope: in-toto Statement v1, SLSA provenance v1
    airgap/sbom.cdx.json                  CycloneDX 1.6
    airgap/model.sig                      OpenSSF model signature of the weights (installed
                                          as model/model.sig; with an ECDSA P-256 bundle key)
    airgap/probe/...                      the stdlib-only probe (python3 airgap/probe)
    airgap/site/airgap                    the site kit's launcher (sh airgap/site/airgap B CMD)
    airgap/site/kit.json                  which kit wheels each Python (3.9-3.13) installs
    airgap/site/wheels/<file>.whl         airgap's own wheel and its dependencies' wheels
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from packager.oci import mediatypes

BUNDLE_FORMAT_VERSION = 1

# ----------------------------------------------------------------------------- paths in a bundle
OCI_LAYOUT = "oci-layout"
OCI_LAYOUT_CONTENT = b'{"imageLayoutVersion":"1.0.0"}'
INDEX_JSON = "index.json"
BLOBS_DIR = "blobs/sha256"
#: the folders of an archive that hold the blobs, outermost first
BLOB_FOLDERS = ("blobs", BLOBS_DIR)
AIRGAP_DIR = "airgap"
BUNDLE_JSON = "airgap/bundle.json"
SIGNATURES_DIR = "airgap/bundle.json.sig"
ATTESTATION = "airgap/attestation.dsse.json"
SBOM = "airgap/sbom.cdx.json"
PROBE_DIR = "airgap/probe"
#: the OpenSSF Model Signing signature (a Sigstore bundle) over the model's files: not listed in
#: ``files`` (it carries its own signature, like the attestation); bundle.json pins the sha256 of
#: its signed statement instead (``model_signature``), so verify covers it
MODEL_SIGNATURE = "airgap/model.sig"
#: a signed trust policy the bundle carries to its sites (`build --carry-trust`): listed in
#: ``files``; install applies it as a rotation of the site's policy (packager.site.trust)
CARRIED_TRUST = "airgap/trust.json"
#: the site kit (`build` unless --no-site-kit): airgap for the target's platform and Python
#: 3.9-3.13, as airgap files (listed in ``files`` with their sha256, like the probe), and the
#: POSIX sh launcher that checks them with openssl before it runs them (packager.bundle.site_kit)
SITE_DIR = "airgap/site"
SITE_LAUNCHER = "airgap/site/airgap"
SITE_KIT_INDEX = "airgap/site/kit.json"
SITE_WHEELS_DIR = "airgap/site/wheels"


def is_kit_wheel(path: str) -> bool:
    """A wheel of the site kit (the airgap files a delta may leave out: a site holding its base
    has them installed)."""
    name = path[len(SITE_WHEELS_DIR) + 1 :]
    return path.startswith(SITE_WHEELS_DIR + "/") and name != "" and "/" not in name


SITE_KIT_FORMAT = 1
#: where the launcher keeps verified kits under a prefix: DIR/.airgap-kit/<kit id>/, and
#: DIR/.airgap-kit/current -> <kit id> (the kit the site runs; replaced only after it verified
#: the next bundle)
SITE_KIT_INSTALL_DIR = ".airgap-kit"

#: bundle.json larger than this is refused before parsing (a descriptor lists, it does not hold)
MAX_BUNDLE_JSON_BYTES = 32 * 1024 * 1024


#: a sha256 in hex, as blob names and keyids spell it (compiled once: blob_path runs for each
#: blob of a bundle, several times)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_BLOB_PATH = re.compile(re.escape(BLOBS_DIR) + r"/([0-9a-f]{64})")


def blob_path(digest: str) -> str:
    """``sha256:<hex>`` -> ``blobs/sha256/<hex>``."""
    algo, _, hexd = digest.partition(":")
    if algo != "sha256" or not _HEX64.fullmatch(hexd):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return f"{BLOBS_DIR}/{hexd}"


def archive_order(names: Iterable[str], first: Sequence[str] = ()) -> list[str]:
    """The order of a bundle archive's members: ``names`` and every folder above them.

    The blobs come first: their folders, then the blob paths of ``first`` in its order (the
    model files, in the lock's order), then every other blob sorted; then the rest sorted, each
    folder before what it holds (``airgap/``, ``index.json``, ``oci-layout``). So a build that
    has no lock yet writes each model file as it reads and hashes it, once, and ``bundle.json``,
    which names every digest, after them; a build from the lock writes the same bytes.
    """
    blobs: set[str] = set()
    rest: set[str] = set()
    for name in names:
        if name.startswith(BLOBS_DIR + "/"):
            blobs.add(name)
            continue
        parts = name.split("/")
        rest.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    if not blobs:
        return sorted(rest)
    head = [n for n in dict.fromkeys(first) if n in blobs]
    return [*BLOB_FOLDERS, *head, *sorted(blobs - set(head)), *sorted(rest)]


def signature_path(keyid: str) -> str:
    if not _HEX64.fullmatch(keyid):
        raise ValueError(f"not a keyid: {keyid!r}")
    return f"{SIGNATURES_DIR}/{keyid}.sig"


def signing_time_path(keyid: str) -> str:
    """The signer's signed record of when it signed (a DSSE envelope, beside its .sig)."""
    if not _HEX64.fullmatch(keyid):
        raise ValueError(f"not a keyid: {keyid!r}")
    return f"{SIGNATURES_DIR}/{keyid}.time.json"


#: a member under SIGNATURES_DIR: (keyid, "sig" | "time")
SIGNATURE_MEMBER = re.compile(re.escape(SIGNATURES_DIR) + r"/([0-9a-f]{64})\.(sig|time\.json)")


def digest_of_blob_path(path: str) -> str | None:
    m = _BLOB_PATH.fullmatch(path)
    return f"sha256:{m.group(1)}" if m else None


# ----------------------------------------------------------------------------- output file names


def bundle_stem(name: str, version: str, target: str | None) -> str:
    return f"{name}-{version}-{target}" if target else f"{name}-{version}"


def delta_stem(stem: str, base_version: str) -> str:
    """A delta bundle's stem: ``NAME-VERSION[-TARGET].delta-from-OLDVERSION``."""
    return f"{stem}.delta-from-{base_version}"


def tar_name(stem: str, *, zstd: bool = False) -> str:
    return f"{stem}.airgap.tar" + (".zst" if zstd else "")


def part_name(stem: str, index: int, *, zstd: bool = False) -> str:
    return f"{tar_name(stem, zstd=zstd)}.{index:03d}"


def parts_index_name(stem: str) -> str:
    return f"{stem}.airgap.parts.json"


#: the largest file FAT32 media hold
FAT32_MAX = 4 * 1024**3 - 1

# ----------------------------------------------------------------------------- media types
# the standard OCI and Docker ones are spelled in packager.oci.mediatypes
OCI_INDEX = mediatypes.OCI_INDEX
OCI_MANIFEST = mediatypes.OCI_MANIFEST
OCI_EMPTY = mediatypes.OCI_EMPTY
OCI_EMPTY_CONTENT = mediatypes.OCI_EMPTY_CONTENT
OCI_LAYER_TAR = mediatypes.OCI_LAYER_TAR
OCI_CONFIG = mediatypes.OCI_CONFIG
DOCKER_MANIFEST = mediatypes.DOCKER_MANIFEST
DOCKER_MANIFEST_LIST = mediatypes.DOCKER_MANIFEST_LIST
DOCKER_CONFIG = mediatypes.DOCKER_CONFIG
DOCKER_LAYER_TAR = mediatypes.DOCKER_LAYER_TAR
IMAGE_MANIFEST_TYPES = mediatypes.IMAGE_MANIFEST_TYPES
IMAGE_INDEX_TYPES = mediatypes.IMAGE_INDEX_TYPES

# ModelPack (CNCF model-spec)
MODEL_ARTIFACT = "application/vnd.cncf.model.manifest.v1+json"
MODEL_CONFIG = "application/vnd.cncf.model.config.v1+json"
MODEL_WEIGHT = "application/vnd.cncf.model.weight.v1.raw"
MODEL_WEIGHT_CONFIG = "application/vnd.cncf.model.weight.config.v1.raw"
MODEL_DOC = "application/vnd.cncf.model.doc.v1.raw"
MODEL_CODE = "application/vnd.cncf.model.code.v1.raw"
MODEL_FILEPATH = "org.cncf.model.filepath"

#: weight file role (packager.resolve.weights.file_role) -> ModelPack layer media type
MODEL_LAYER_BY_ROLE = {
    "weight": MODEL_WEIGHT,
    "config": MODEL_WEIGHT_CONFIG,
    "tokenizer": MODEL_WEIGHT_CONFIG,
    "doc": MODEL_DOC,
    "code": MODEL_CODE,
    "other": MODEL_WEIGHT_CONFIG,
}

# airgap artifacts
KERNEL_ARTIFACT = "application/vnd.airgap.kernel.v1+json"
KERNEL_BINARY = "application/vnd.airgap.kernel.binary.v1"
KERNEL_TEST_VECTOR = "application/vnd.airgap.kernel.vector.v1+npy"
WHEELS_ARTIFACT = "application/vnd.airgap.wheels.v1+json"
WHEEL = "application/vnd.airgap.wheel.v1+zip"
FILES_ARTIFACT = "application/vnd.airgap.files.v1+json"
FILE = "application/vnd.airgap.file.v1"
PROBE_ARTIFACT = "application/vnd.airgap.probe.v1+json"
PROBE_FILE = "application/vnd.airgap.probe.file.v1"

# annotations
REF_NAME = mediatypes.REF_NAME
TITLE = mediatypes.TITLE
CREATED = mediatypes.CREATED
ROLE = "dev.airgap.role"  # model | image | kernel | wheels | files | probe
INSTALL_PATH = "dev.airgap.install.path"
#: on a generated OCI index that lists a docker-typed manifest or manifest list (which skopeo and
#: containers/image do not list from index.json): the digest of the docker-typed original, the
#: bytes a registry push sends (packager.bundle.images, packager.site.images)
IMAGE_WRAPS = "dev.airgap.image.wraps"

# ref names of the airgap artifacts in index.json
MODEL_REF = "airgap/model"
WHEELS_REF = "airgap/wheels"
FILES_REF = "airgap/files"
PROBE_REF = "airgap/probe"


def kernel_ref(name: str) -> str:
    return f"airgap/kernel/{name}"


# ----------------------------------------------------------------------------- in a registry
# `airgap publish BUNDLE oci://HOST/REPO:TAG` pushes a bundle as one OCI index (packager.bundle
# .published): its manifests are index.json's entries, as they are, plus one manifest whose layers
# are the layout's own files (oci-layout, index.json, every airgap/ file) titled with their paths.
# Every blob of bundle.json is a blob of the repository, every manifest-typed blob a manifest: the
# index and the manifests it reaches give back the bundle's layout folder byte for byte.
PUBLISHED_INDEX_ARTIFACT = "application/vnd.airgap.bundle.v1+json"
PUBLISHED_FILES_ARTIFACT = "application/vnd.airgap.bundle.files.v1+json"
PUBLISHED_DESCRIPTOR = "application/vnd.airgap.bundle.descriptor.v1+json"
PUBLISHED_SIGNATURE = "application/vnd.airgap.bundle.signature.v1"
PUBLISHED_FILE = "application/vnd.airgap.bundle.file.v1"
#: on the published index: the content digest (sha256 of bundle.json), name, version, target
PUBLISHED_DIGEST = "dev.airgap.bundle.digest"
PUBLISHED_NAME = "dev.airgap.bundle.name"
PUBLISHED_VERSION = "dev.airgap.bundle.version"
PUBLISHED_TARGET = "dev.airgap.bundle.target"
#: the ref name of the files manifest in the published index
PUBLISHED_FILES_REF = "airgap/bundle"
#: the layout's own files (not blobs): what the files manifest carries
LAYOUT_FILE = re.compile(
    r"(?:oci-layout|index\.json|airgap/(?:(?!\.\.?/)[A-Za-z0-9_@+=-][A-Za-z0-9._@+=-]*/)*"
    r"(?!\.\.?\Z)[A-Za-z0-9._@+=-]+)"
)


def published_media_type(path: str) -> str:
    """The media type of a layout file's layer in the published files manifest."""
    if path == BUNDLE_JSON:
        return PUBLISHED_DESCRIPTOR
    if SIGNATURE_MEMBER.fullmatch(path):
        return PUBLISHED_SIGNATURE
    return PUBLISHED_FILE


# ----------------------------------------------------------------------------- install paths
MODEL_INSTALL_DIR = "model"
#: where model.sig goes at install: beside the weights, where `model_signing verify` looks
MODEL_SIGNATURE_INSTALL = f"{MODEL_INSTALL_DIR}/model.sig"
KERNELS_INSTALL_DIR = "kernels"
WHEELS_INSTALL_DIR = "wheels"

# ----------------------------------------------------------------------------- an install prefix
# What `airgap install --prefix DIR` makes (packager.site):
#
#   DIR/.airgap.lock                      flock: one install/uninstall/rollback/gc at a time
#   DIR/.staging/<random>/                work in progress (removed, or recovered, by the next run)
#   DIR/blobs/sha256/<hex>                content-addressed store shared by every bundle
#   DIR/blobs/checked.json                blobs whose content airgap established, with their stat
#   DIR/bundles/NAME/VERSION/<path>       the files, hard links into the store where possible
#                                         (NAME+TARGET for one target of a multi-target manifest)
#   DIR/bundles/NAME/VERSION/.airgap/     bundle.json, its signatures, attestation, sbom, probe
#   DIR/bundles/NAME/current              symlink to VERSION, switched by rename
#   DIR/receipts/NAME/VERSION.json        what was installed: digest, signers, every file
#   DIR/audit.log                         JSON lines, hash-chained; audit.log.head: the last link
#   DIR/trust/policy.json                 the site's trust policy; trust/history/<version>.json
SITE_LOCK = ".airgap.lock"
SITE_STAGING_DIR = ".staging"
SITE_BLOBS_DIR = BLOBS_DIR
#: the store's record of checked blobs (packager.site.checked), beside ``blobs/sha256``
SITE_CHECKED_RECORD = "blobs/checked.json"
SITE_BUNDLES_DIR = "bundles"
SITE_RECEIPTS_DIR = "receipts"
SITE_CURRENT = "current"
SITE_AUDIT_LOG = "audit.log"
SITE_AUDIT_HEAD = "audit.log.head"
#: the site's trust policy (`airgap trust update --site`): the current one and every accepted one
SITE_TRUST_DIR = "trust"
SITE_TRUST_POLICY = "policy.json"
SITE_TRUST_HISTORY = "history"
#: inside an installed version: the signed descriptor and the airgap/ files, for the probe and audit
INSTALLED_META_DIR = ".airgap"
#: a staging folder's journal: which version it was committing or removing (crash recovery)
STAGING_JOURNAL = "journal.json"
#: `install oci://...`: the bundle pulled from a registry is assembled here (a layout folder, blobs
#: the store has hard-linked into it), kept across a killed run, removed once installed
SITE_PULL_DIR = ".pull"
RECEIPT_FORMAT = 1


#: joins a bundle name and its target id into the name of its site folders; neither a bundle
#: name nor a target id may hold it, so NAME+TARGET never collides with another bundle's name
SITE_TARGET_SEPARATOR = "+"


def site_unit(name: str, target: str | None) -> str:
    """What an installed bundle's folders are named after (``bundles/UNIT``, ``receipts/UNIT``,
    the audit log's ``name``): its name, or ``NAME+TARGET`` for a bundle of one target of a
    multi-target manifest, so that the targets of one version install side by side, each with
    its own ``current``, anti-rollback and rollback (the store keeps what they share once)."""
    return name if target is None else f"{name}{SITE_TARGET_SEPARATOR}{target}"


def trust_history_name(version: int) -> str:
    return f"{version}.json"


def receipt_name(version: str) -> str:
    return f"{version}.json"


def is_installed_kit_wheel(path: str) -> bool:
    """``.airgap/site/wheels/NAME`` (a path in an installed version): a site-kit wheel."""
    head = INSTALLED_META_DIR + "/"
    return path.startswith(head) and is_kit_wheel(f"{AIRGAP_DIR}/{path[len(head) :]}")


def installed_meta_path(bundle_path: str) -> str:
    """``airgap/probe/cli.py`` (a path in the bundle) -> ``.airgap/probe/cli.py`` (in a version)."""
    if bundle_path != AIRGAP_DIR and not bundle_path.startswith(AIRGAP_DIR + "/"):
        raise ValueError(f"not a path under {AIRGAP_DIR}/: {bundle_path!r}")
    return INSTALLED_META_DIR + bundle_path[len(AIRGAP_DIR) :]
