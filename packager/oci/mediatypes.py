"""The standard OCI and Docker media types and OCI annotation names, spelled once.

The OCI image spec (index, manifest, config, layers, the empty descriptor) and Docker's
distribution schema 2 (manifest list, manifest, container config, layer), plus the schema 1 types
that are recognized only to be refused. airgap's own media types and annotations are the bundle's
format and live in :mod:`packager.bundle.layout`.
"""

from __future__ import annotations

__all__ = [
    "CREATED",
    "DOCKER_CONFIG",
    "DOCKER_LAYER_TAR",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "DOCKER_SCHEMA1_MANIFEST",
    "DOCKER_SCHEMA1_SIGNED_MANIFEST",
    "IMAGE_CONFIG_TYPES",
    "IMAGE_INDEX_TYPES",
    "IMAGE_MANIFEST_TYPES",
    "OCI_CONFIG",
    "OCI_EMPTY",
    "OCI_EMPTY_CONTENT",
    "OCI_INDEX",
    "OCI_LAYER_TAR",
    "OCI_MANIFEST",
    "REF_NAME",
    "SCHEMA1_TYPES",
    "TITLE",
]

# ----------------------------------------------------------------------------- OCI image spec
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
#: the content of the empty descriptor (``OCI_EMPTY``)
OCI_EMPTY_CONTENT = b"{}"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

# ----------------------------------------------------------------------------- Docker schema 2
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"

# ----------------------------------------------------------------------------- Docker schema 1
DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED_MANIFEST = "application/vnd.docker.distribution.manifest.v1+prettyjws"

# ----------------------------------------------------------------------------- groups
IMAGE_MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
IMAGE_INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
IMAGE_CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
SCHEMA1_TYPES = (DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_SIGNED_MANIFEST)

# ----------------------------------------------------------------------------- annotations
REF_NAME = "org.opencontainers.image.ref.name"
TITLE = "org.opencontainers.image.title"
CREATED = "org.opencontainers.image.created"
