"""packager.oci.registry: addresses, loopback, TLS trust, logins and the redirect rules.

The TLS and login cases run against the real Debian docker-registry that scripts/services.sh
starts with a private CA (openssl) and htpasswd logins (``tlsregistry``); the redirect cases
against two small loopback HTTP servers made here, one playing the registry and one another host.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from packager.errors import InputError
from packager.oci.credentials import Credentials
from packager.oci.registry import (
    RegistryAuthError,
    RegistryClient,
    RegistryError,
    RegistryOptions,
    RegistryTLSError,
    is_loopback,
    parse_oci_url,
)
from tests.support import services

# ----------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("text", "host", "repo", "tag", "digest"),
    [
        ("oci://127.0.0.1:5000/models/qwen:1.0", "127.0.0.1:5000", "models/qwen", "1.0", None),
        ("oci://registry.site/a/b/c", "registry.site", "a/b/c", None, None),
        ("oci://localhost/x@sha256:" + "a" * 64, "localhost", "x", None, "sha256:" + "a" * 64),
        ("oci://[::1]:5000/x:v", "[::1]:5000", "x", "v", None),
    ],
)
def test_oci_urls_parse(
    text: str, host: str, repo: str, tag: str | None, digest: str | None
) -> None:
    loc = parse_oci_url(text)
    assert (loc.host, loc.repository, loc.tag, loc.digest) == (host, repo, tag, digest)


@pytest.mark.parametrize(
    "text",
    [
        "docker://h/x",
        "oci://",
        "oci://h:5000",
        "oci://nohost",
        "oci://h:5000/UPPER",
        "oci://h:99999/x",
        "oci://h/x:bad tag",
        "oci://h/x@sha256:short",
    ],
)
def test_bad_oci_urls_are_input_errors(text: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_oci_url(text)
    assert "oci://HOST" in (exc.value.hint or "")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.8.9.10", True),
        ("[::1]:5000", True),
        ("10.0.0.5:5000", False),
        ("registry.site", False),
        ("128.0.0.1", False),
        ("localhost.evil.example", False),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# ----------------------------------------------------------------------------- redirects


class _Recorder(BaseHTTPRequestHandler):
    """Answers from the server's ``routes`` and records every request (method, path, headers)."""

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        server: Any = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        server.seen.append((self.command, self.path, dict(self.headers), len(body)))
        status, headers, payload = server.route(self)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = do_PUT = _answer


def _serve(host: str, route: Any) -> Iterator[Any]:
    server: Any = ThreadingHTTPServer((host, 0), _Recorder)
    server.seen = []
    server.route = route
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def other_host() -> Iterator[Any]:
    """Another host (127.0.0.2): storage that serves a blob and accepts anything."""
    yield from _serve("127.0.0.2", lambda h: (200, {}, b"blob from storage"))


@pytest.fixture
def fake_registry(other_host: Any) -> Iterator[Any]:
    """A registry on 127.0.0.1 that wants a basic login, redirects blob GETs and upload
    locations to the other host, and answers a PUT with a redirect."""
    elsewhere = f"http://127.0.0.2:{other_host.server_address[1]}"

    def route(h: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        if "Authorization" not in h.headers:
            return 401, {"WWW-Authenticate": 'Basic realm="test"'}, b""
        if h.path == "/v2/":
            return 200, {}, b"{}"
        if h.command == "GET" and "/blobs/" in h.path:
            return 307, {"Location": f"{elsewhere}/storage/blob?sig=1"}, b""
        if h.command == "POST" and h.path.endswith("/blobs/uploads/"):
            return 202, {"Location": f"{elsewhere}/upload/1"}, b""
        if h.command == "PUT":
            return 307, {"Location": "/v2/r/blobs/uploads/again"}, b""
        return 404, {}, b""

    yield from _serve("127.0.0.1", route)


def _client(server: Any) -> RegistryClient:
    host = f"127.0.0.1:{server.server_address[1]}"
    client = RegistryClient(
        host,
        "r",
        RegistryOptions(insecure=True, connect_timeout=2, read_timeout=5),
        credentials=Credentials("user", "s3cret", "test"),
    )
    client.check()
    return client


def test_a_redirect_to_another_host_gets_no_credentials(
    fake_registry: Any, other_host: Any
) -> None:
    with _client(fake_registry) as client:
        data = b"".join(client.iter_blob("sha256:" + "b" * 64, 1000))
    assert data == b"blob from storage"
    authorized = [s for s in fake_registry.seen if "Authorization" in s[2]]
    assert authorized, "the registry itself got the login"
    ((method, path, headers, _),) = other_host.seen
    assert (method, path) == ("GET", "/storage/blob?sig=1")
    assert "Authorization" not in headers


def test_an_upload_location_on_another_host_is_refused(fake_registry: Any, other_host: Any) -> None:
    with _client(fake_registry) as client, pytest.raises(RegistryError) as exc:
        client.upload_blob("sha256:" + "c" * 64, 3, [b"abc"])
    assert "another origin" in exc.value.message
    assert other_host.seen == []


def test_a_redirected_upload_body_is_never_sent_again(fake_registry: Any) -> None:
    def body() -> Iterator[bytes]:
        yield b"x" * 1000

    with _client(fake_registry) as client:
        t0 = time.monotonic()
        with pytest.raises(RegistryError) as exc:
            client.request(
                "PUT", client.url("blobs/uploads/1"), "uploading", data=iter(body()), ok=(201,)
            )
    assert time.monotonic() - t0 < 5
    assert "not followed" in exc.value.message
    assert [s for s in fake_registry.seen if s[0] == "PUT"] and not any(
        s[1].endswith("/again") for s in fake_registry.seen
    )


# ----------------------------------------------------------------------------- TLS and logins


@pytest.fixture(scope="module")
def tls() -> services.TlsRegistry:
    return services.require(services.tls_registry)


def _tls_client(
    tls: services.TlsRegistry, *, ca: bool = True, password: str | None = None, env: Any = None
) -> RegistryClient:
    creds = Credentials(tls.user, tls.password if password is None else password, "test")
    return RegistryClient(
        tls.address,
        "fleet/check",
        RegistryOptions(ca_cert=tls.ca if ca else None),
        credentials=None if env is not None else creds,
        env=env,
    )


def test_an_untrusted_ca_names_the_registry_and_hints_ca_cert(tls: services.TlsRegistry) -> None:
    with _tls_client(tls, ca=False) as client, pytest.raises(RegistryTLSError) as exc:
        client.check()
    assert tls.address in exc.value.message and "not trusted" in exc.value.message
    assert "--ca-cert" in (exc.value.hint or "")


def test_a_wrong_password_names_the_registry_and_the_user(tls: services.TlsRegistry) -> None:
    with _tls_client(tls, password="wrong") as client, pytest.raises(RegistryAuthError) as exc:
        client.check()
    assert tls.address in exc.value.message and repr(tls.user) in exc.value.message
    assert "wrong user or password" in exc.value.message
    assert "wrong" not in (exc.value.hint or "").replace("wrong user", "")


def test_no_login_says_how_to_give_one(tls: services.TlsRegistry, tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path)}
    with _tls_client(tls, env=env) as client, pytest.raises(RegistryAuthError) as exc:
        client.check()
    assert "AIRGAP_REGISTRY_USER" in (exc.value.hint or "")


@pytest.mark.parametrize("how", ["env", "docker-config"])
def test_the_login_is_taken_from_env_or_docker_config(
    tls: services.TlsRegistry, tmp_path: Path, how: str
) -> None:
    if how == "env":
        env = {"AIRGAP_REGISTRY_USER": tls.user, "AIRGAP_REGISTRY_PASSWORD": tls.password}
    else:
        auth = base64.b64encode(f"{tls.user}:{tls.password}".encode()).decode()
        (tmp_path / "config.json").write_text(json.dumps({"auths": {tls.address: {"auth": auth}}}))
        env = {"DOCKER_CONFIG": str(tmp_path)}
    with _tls_client(tls, env=env) as client:
        client.check()
        assert client.scheme == "https"
        assert client.blob_size("sha256:" + "0" * 64) is None
