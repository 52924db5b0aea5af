"""packager.oci.credentials: where a registry login comes from (environment, Docker config,
credential helpers), and that the secret never shows."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from packager.errors import InputError
from packager.oci.credentials import lookup_credentials

HOST = "registry.site:5000"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _helper(folder: Path, name: str, answer: dict[str, str] | None) -> None:
    """A docker-credential-NAME program: answers for HOST only (as real helpers do)."""
    script = folder / f"docker-credential-{name}"
    known = HOST if answer is not None else "nothing"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 2\n'
        "read host\n"
        f'[ "$host" = "{known}" ] || {{ echo "credentials not found in native keychain"; exit 1; }}\n'
        f"echo '{json.dumps(answer)}'\n"
    )
    script.chmod(0o755)


@pytest.mark.parametrize(
    ("config", "helper", "want"),
    [
        ({}, None, None),
        (
            {"auths": {HOST: {"auth": _b64("alice:pw:with:colons")}}},
            None,
            ("alice", "pw:with:colons"),
        ),
        ({"auths": {f"https://{HOST}/v1/": {"auth": _b64("bob:pw")}}}, None, ("bob", "pw")),
        ({"auths": {HOST: {"username": "carol", "password": "pw"}}}, None, ("carol", "pw")),
        ({"auths": {"other:5000": {"auth": _b64("x:y")}}}, None, None),
        ({"credHelpers": {HOST: "t1"}}, {"Username": "dave", "Secret": "tok"}, ("dave", "tok")),
        (
            {"credsStore": "t1", "auths": {HOST: {}}},
            {"Username": "erin", "Secret": "tok"},
            ("erin", "tok"),
        ),
        ({"credsStore": "t1"}, None, None),  # the helper knows nothing of the host
    ],
)
def test_logins_from_the_docker_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    config: dict[str, Any],
    helper: dict[str, str] | None,
    want: tuple[str, str] | None,
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _helper(bindir, "t1", helper)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    got = lookup_credentials(HOST, {"DOCKER_CONFIG": str(tmp_path)})
    assert (None if got is None else (got.username, got.password)) == want
    if got is not None:
        assert got.password not in repr(got)


def test_the_environment_comes_first_and_needs_both(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"auths": {HOST: {"auth": _b64("a:b")}}}))
    env = {
        "DOCKER_CONFIG": str(tmp_path),
        "AIRGAP_REGISTRY_USER": "ops",
        "AIRGAP_REGISTRY_PASSWORD": "pw",
    }
    got = lookup_credentials(HOST, env)
    assert got is not None and (got.username, got.password) == ("ops", "pw")
    del env["AIRGAP_REGISTRY_PASSWORD"]
    with pytest.raises(InputError, match="both"):
        lookup_credentials(HOST, env)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({"auths": {HOST: {"auth": "%%%"}}}), "not base64"),
        (json.dumps({"credHelpers": {HOST: "../evil"}}), "not valid"),
        (json.dumps({"credHelpers": {HOST: "absent-helper"}}), "not installed"),
    ],
)
def test_a_broken_config_is_named(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(InputError, match=message) as exc:
        lookup_credentials(HOST, {"DOCKER_CONFIG": str(tmp_path), "PATH": "/nonexistent"})
    assert str(tmp_path) in exc.value.message or "docker-credential" in exc.value.message
