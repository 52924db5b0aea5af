"""Image references and platforms, parsed once for resolve, build, the SBOM and the site.

References
    :func:`parse_reference` reads ``[HOST[:PORT]/]PATH[:TAG][@sha256:HEX]`` as Docker does and
    normalizes it (:class:`ImageReference`): Docker Hub's names (``docker.io``, ``index.docker.io``)
    become :data:`DOCKER_HUB_HOST` and a one-component Hub name gets ``library/``.
    :func:`docker_tag` and :func:`has_explicit_tag` read the reference as written instead (what
    ``docker tag`` and a layout's ref names use). :func:`is_registry_host` is the host grammar.
Platforms
    :func:`parse_platform` reads ``os/arch[/variant]``; :class:`Platform` normalizes architecture
    aliases (``x86_64``, ``aarch64``) and says which image platforms a target accepts.

A text that is not a reference or a platform raises :class:`packager.errors.ResolveError` with a
hint on how to write it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packager.errors import ResolveError

__all__ = [
    "DOCKER_HUB_HOST",
    "DOCKER_HUB_NAME",
    "OCI_SCHEME",
    "SHA256_DIGEST",
    "ImageReference",
    "Platform",
    "architecture_of",
    "docker_tag",
    "has_explicit_tag",
    "is_oci_url",
    "is_registry_host",
    "parse_platform",
    "parse_reference",
    "try_parse_platform",
]

#: how a registry address is written where a bundle path could be (``oci://HOST/REPO:TAG``)
OCI_SCHEME = "oci://"


def is_oci_url(text: str) -> bool:
    return text.startswith(OCI_SCHEME)


#: the registry Docker Hub's images are fetched from
DOCKER_HUB_HOST = "registry-1.docker.io"
#: how Docker Hub is written for people (a purl's repository_url, an SBOM component's name)
DOCKER_HUB_NAME = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({DOCKER_HUB_NAME, "index.docker.io", DOCKER_HUB_HOST})

#: a sha256 content digest: ``sha256:`` and 64 lowercase hex digits
SHA256_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?\Z"
)
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}
_DEFAULT_VARIANT = {"arm64": "v8"}


# ============================================================================ references


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference, normalized as Docker does.

    ``host`` is the registry to talk to (``registry-1.docker.io`` for Docker Hub), ``repository``
    the path in it (``library/busybox`` for a Docker Hub official image). ``tag`` is ``latest``
    when the reference names neither a tag nor a digest, and ``None`` when it names only a digest.
    """

    host: str
    repository: str
    tag: str | None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def display_host(self) -> str:
        """The host as people write it: ``docker.io`` for Docker Hub, else ``host``."""
        return DOCKER_HUB_NAME if self.host == DOCKER_HUB_HOST else self.host

    def __str__(self) -> str:
        s = f"{self.host}/{self.repository}"
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def _split_tag(name: str) -> tuple[str, str | None]:
    """``NAME[:TAG]`` (no digest) -> (NAME, TAG or None); a ``:`` before the last ``/`` is a port."""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, None


def is_registry_host(text: str) -> bool:
    """True for ``HOST[:PORT]``: a DNS name, an IPv4 address or a bracketed IPv6 address, and
    a port from 1 to 65535."""
    m = _HOST.match(text)
    if m is None:
        return False
    host_end = text.rfind("]") + 1 if text.startswith("[") else 0
    _, colon, port = text[host_end:].rpartition(":")
    return not colon or 0 < int(port) <= 65535


def parse_reference(ref: str) -> ImageReference:
    """Parse ``[HOST[:PORT]/]PATH[:TAG][@sha256:HEX]`` as Docker does.

    The first path component is a registry host when it holds a ``.`` or a ``:`` or is
    ``localhost``; otherwise the image is on Docker Hub, where a one-component name gets the
    ``library/`` prefix. Raises :class:`ResolveError` for a reference that is not one.
    """

    def bad(why: str) -> ResolveError:
        return ResolveError(
            f"image {ref!r}: not an image reference: {why}",
            hint="write it as [HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST], "
            "e.g. registry.example.com/team/server:1.2 or busybox@sha256:<64 hex digits>",
        )

    if not ref or any(c.isspace() for c in ref):
        raise bad("empty or contains whitespace")
    text = ref
    digest: str | None = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not SHA256_DIGEST.match(digest):
            raise bad(f"digest {digest!r} is not sha256: followed by 64 lowercase hex digits")
    text, tag = _split_tag(text)
    if tag is not None and not _TAG.match(tag):
        raise bad(f"tag {tag!r} is not valid (letters, digits, _ . -; at most 128)")
    parts = text.split("/")
    host = DOCKER_HUB_NAME
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        host, parts = parts[0], parts[1:]
        if not is_registry_host(host):
            raise bad(f"registry host {host!r} is not a host name or host:port")
    if not parts or any(not p for p in parts):
        raise bad("the repository name is empty or has an empty component")
    for p in parts:
        if not _PATH_COMPONENT.match(p):
            raise bad(
                f"repository component {p!r} must be lowercase letters and digits, with . _ - inside"
            )
    if host in _DOCKER_HUB_ALIASES:
        host = DOCKER_HUB_HOST
        if len(parts) == 1:
            parts = ["library", *parts]
    repository = "/".join(parts)
    if len(repository) > 255:
        raise bad("the repository name is longer than 255 characters")
    if tag is None and digest is None:
        tag = "latest"
    return ImageReference(host, repository, tag, digest)


def has_explicit_tag(ref: str) -> bool:
    """True when ``ref`` as written names a tag (``busybox:1.36``, ``busybox:1.36@sha256:...``)."""
    return _split_tag(ref.split("@", 1)[0])[1] is not None


def docker_tag(ref: str) -> tuple[str, str] | None:
    """(repository as written, tag) for ``docker tag``: the tag ``latest`` when ``ref`` names
    none; None for a reference with only a digest."""
    name, tag = _split_tag(ref.split("@", 1)[0])
    if tag is not None:
        return name, tag
    if "@" in ref:
        return None
    return name, "latest"


# ============================================================================ platforms


@dataclass(frozen=True)
class Platform:
    """``os/architecture[/variant]``, architecture aliases (x86_64, aarch64) normalized."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    @classmethod
    def of(cls, os_: object, architecture: object, variant: object = None) -> Platform | None:
        """From the fields of an index entry or an image config; None when they are missing."""
        if (
            not isinstance(os_, str)
            or not isinstance(architecture, str)
            or not os_
            or not architecture
        ):
            return None
        arch = _ARCH_ALIASES.get(architecture, architecture)
        return cls(os_, arch, variant if isinstance(variant, str) and variant else None)

    @classmethod
    def from_json(cls, obj: object) -> Platform | None:
        """From a descriptor's ``platform`` object; None when it is not one or lacks os/arch."""
        if not isinstance(obj, dict):
            return None
        return cls.of(obj.get("os"), obj.get("architecture"), obj.get("variant"))

    def to_json(self) -> dict[str, str]:
        """A descriptor's ``platform`` object: ``architecture``, ``os`` and ``variant`` if any."""
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    def _variant(self) -> str | None:
        return self.variant or _DEFAULT_VARIANT.get(self.architecture)

    def accepts(self, candidate: Platform) -> bool:
        """True when an image for ``candidate`` runs on this (target) platform.

        The variant counts only when the target names one; arm64 without a variant is v8.
        """
        if (candidate.os, candidate.architecture) != (self.os, self.architecture):
            return False
        return self.variant is None or candidate._variant() == self._variant()

    def preference(self, candidate: Platform) -> int:
        """Lower is better among accepted candidates: the exact or default variant first."""
        return 0 if candidate._variant() == self._variant() else 1


def parse_platform(text: str) -> Platform:
    """Parse ``os/arch[/variant]`` (e.g. ``linux/arm64``, ``linux/arm64/v8``)."""
    parts = text.split("/")
    platform = Platform.of(*parts) if 2 <= len(parts) <= 3 and all(parts) else None
    if platform is None:
        raise ResolveError(
            f"platform {text!r} is not os/arch[/variant]",
            hint="write the target platform as linux/amd64 or linux/arm64",
        )
    return platform


def try_parse_platform(text: str | None) -> Platform | None:
    """:func:`parse_platform`, or None for no text or a text that is not a platform."""
    if text is None:
        return None
    try:
        return parse_platform(text)
    except ResolveError:
        return None


def architecture_of(text: str | None) -> str | None:
    """The architecture field of ``os/arch[/variant]`` as written (aliases kept); None when the
    text has no ``/``."""
    return text.split("/")[1] if text and text.count("/") >= 1 else None
