"""OCI vocabulary shared by every stage: image references and platforms, media types, annotations.

:mod:`packager.oci.reference`
    Image references parsed and normalized as Docker does (``busybox`` is
    ``registry-1.docker.io/library/busybox:latest``), registry hosts, tags for ``docker tag``,
    and ``os/arch[/variant]`` platforms with their matching rules.
:mod:`packager.oci.mediatypes`
    The standard OCI and Docker media types and ``org.opencontainers.image.*`` annotation names.

Resolving (``lock``), collecting (``build``), the SBOM and the site (load, push) all read these
from here; nothing in this package does I/O.
"""

from __future__ import annotations
