"""Registry logins as users already have them, never from argv and never logged.

In order: ``AIRGAP_REGISTRY_USER`` + ``AIRGAP_REGISTRY_PASSWORD`` (both, or neither); then the
Docker config file (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``): a
``credHelpers`` entry for the host, an ``auths`` entry (``auth`` = base64 ``user:password``, or
``username`` + ``password``), then the ``credsStore``. A helper is ``docker-credential-NAME get``
with the host on stdin, answering ``{"Username": ..., "Secret": ...}``, as Docker runs it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.errors import InputError
from packager.util.jsonio import DocumentError, parse_document

ENV_USER = "AIRGAP_REGISTRY_USER"
ENV_PASSWORD = "AIRGAP_REGISTRY_PASSWORD"
_HELPER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_CONFIG_BYTES = 4 * 1024 * 1024
HELPER_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Credentials:
    """A login for one registry; ``source`` says where it came from (shown, the secret never)."""

    username: str
    password: str = field(repr=False)
    source: str = ""

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, source={self.source!r})"


def docker_config_path(env: Mapping[str, str] | None = None) -> Path:
    e = os.environ if env is None else env
    base = e.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _key_host(key: str) -> str:
    """An ``auths`` key as Docker writes it (``https://host/v1/``, ``host``) -> ``host``."""
    text = key.strip()
    for scheme in ("https://", "http://"):
        if text.startswith(scheme):
            text = text[len(scheme) :]
    return text.split("/", 1)[0]


def _read_config(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InputError(f"{path}: cannot read the Docker config ({exc.strerror})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise InputError(f"{path}: the Docker config is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        doc = parse_document(raw)
    except DocumentError as exc:
        raise InputError(
            f"{path}: the Docker config is not valid JSON: {exc}",
            hint="fix it, or log in again with `docker login HOST`",
        ) from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: the Docker config is not a JSON object")
    return doc


def _from_auths(path: Path, host: str, auths: object) -> Credentials | None:
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if not isinstance(key, str) or _key_host(key) != host or not isinstance(entry, dict):
            continue
        source = f"{path} (auths)"
        user, password = entry.get("username"), entry.get("password")
        if isinstance(user, str) and isinstance(password, str) and user:
            return Credentials(user, password, source)
        auth = entry.get("auth")
        if isinstance(auth, str) and auth:
            try:
                text = base64.b64decode(auth, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise InputError(
                    f"{path}: the auths entry for {host} is not base64 of user:password",
                    hint=f"log in again with `docker login {host}`",
                ) from None
            user, sep, password = text.partition(":")
            if sep and user:
                return Credentials(user, password, source)
    return None


def _from_helper(name: object, host: str, path: Path) -> Credentials | None:
    if not isinstance(name, str) or not _HELPER_NAME.fullmatch(name):
        raise InputError(f"{path}: credential helper name {name!r} is not valid")
    program = f"docker-credential-{name}"
    try:
        done = subprocess.run(
            [program, "get"],
            input=host.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise InputError(
            f"{path} names the credential helper {program}, which is not installed",
            hint=f"install {program}, or give {ENV_USER} and {ENV_PASSWORD}",
        ) from None
    except subprocess.TimeoutExpired:
        raise InputError(f"{program} get did not answer within {HELPER_TIMEOUT_S:g}s") from None
    if done.returncode != 0:
        return None  # "credentials not found in native keychain": an anonymous request
    try:
        doc = parse_document(done.stdout)
    except DocumentError:
        doc = None
    if not isinstance(doc, dict):
        raise InputError(f"{program} get answered something other than a JSON object")
    user, secret = doc.get("Username"), doc.get("Secret")
    if not (isinstance(user, str) and isinstance(secret, str) and user):
        return None
    return Credentials(user, secret, program)


def lookup_credentials(host: str, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The login for ``host`` (``HOST[:PORT]``), or None for anonymous access (see the module)."""
    e = os.environ if env is None else env
    user, password = e.get(ENV_USER), e.get(ENV_PASSWORD)
    if user or password:
        if not (user and password is not None):
            raise InputError(
                f"give both {ENV_USER} and {ENV_PASSWORD}, or neither",
                hint="credentials are read from the environment or the Docker config, never "
                "from arguments",
            )
        return Credentials(user, password, f"{ENV_USER}/{ENV_PASSWORD}")
    path = docker_config_path(e)
    config = _read_config(path)
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict) and host in helpers:
        return _from_helper(helpers[host], host, path)
    found = _from_auths(path, host, config.get("auths"))
    if found is not None:
        return found
    store = config.get("credsStore")
    if store:
        return _from_helper(store, host, path)
    return None
