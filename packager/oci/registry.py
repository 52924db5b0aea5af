"""Reaching an OCI distribution registry as users have it: :class:`RegistryClient`.

* **Where.** ``oci://HOST[:PORT]/REPO[:TAG|@DIGEST]`` (:func:`parse_oci_url`). A loopback host
  (``localhost``, ``127.0.0.0/8``, ``::1``) is tried over HTTPS and, when it does not speak TLS,
  over plain HTTP, without a flag (as Docker does); any other host is HTTPS unless ``insecure``.
* **Trust.** The system trust store plus ``ca_cert`` (``--ca-cert FILE``: a site's private CA).
  An untrusted certificate is an error naming the registry, with the ``--ca-cert`` hint.
* **Logins.** :func:`packager.oci.credentials.lookup_credentials` (environment or Docker config,
  never argv, never logged). Basic and bearer-token challenges (``WWW-Authenticate``) are
  answered; a refused login names the registry and where the login came from. Credentials are
  never sent over plain HTTP to a host that is not loopback.
* **Redirects.** Never followed by the HTTP library: a GET/HEAD redirect (blob storage) is
  followed here, at most :data:`MAX_REDIRECTS`, and loses the ``Authorization`` header as soon as
  it leaves the registry's origin; an upload ``Location`` must stay on the registry's origin; a
  redirect answer to a request with a body is an error (a streamed body is never sent twice).
* **Time.** Every request has a connect and a read timeout: nothing waits forever.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import ssl
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from packager.errors import InputError, ResolveError
from packager.oci.credentials import ENV_PASSWORD, ENV_USER, Credentials, lookup_credentials
from packager.oci.reference import (
    OCI_SCHEME,
    SHA256_DIGEST,
    is_oci_url,
    is_registry_host,
    parse_reference,
)

MAX_REDIRECTS = 5
#: a manifest or index larger than this is refused before it is read in full
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
CHUNK = 1024 * 1024
_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


class RegistryError(InputError):
    """A registry could not be reached, refused, or answered something unusable (exit 2).

    ``transient``: worth another try (no connection, a timeout, HTTP 5xx/408/429)."""

    transient: bool = False


def _transient(error: RegistryError) -> RegistryError:
    error.transient = True
    return error


class RegistryAuthError(RegistryError):
    """The registry refused the login (or wants one that was not given)."""


class RegistryTLSError(RegistryError):
    """The TLS handshake failed: an untrusted certificate, a wrong host name, or no TLS at all."""


# ----------------------------------------------------------------------------- where


@dataclass(frozen=True)
class OciLocation:
    """``oci://HOST[:PORT]/REPO[:TAG|@DIGEST]``: ``reference`` is the digest, else the tag."""

    host: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def reference(self) -> str | None:
        return self.digest or self.tag

    def with_tag(self, tag: str) -> OciLocation:
        return OciLocation(self.host, self.repository, tag, None)

    def __str__(self) -> str:
        tail = f"@{self.digest}" if self.digest else f":{self.tag}" if self.tag else ""
        return f"oci://{self.host}/{self.repository}{tail}"


def parse_oci_url(text: str) -> OciLocation:
    """Parse ``oci://HOST[:PORT]/REPO[:TAG|@sha256:HEX]`` (the host is required)."""
    hint = "write it as oci://HOST[:PORT]/REPO[:TAG], e.g. oci://registry.site:5000/models/qwen:1.0"
    if not is_oci_url(text):
        raise InputError(f"{text!r} is not an oci:// address", hint=hint)
    rest = text[len(OCI_SCHEME) :]
    host, slash, path = rest.partition("/")
    if not slash or not path or not is_registry_host(host):
        raise InputError(
            f"{text!r}: give the registry as HOST[:PORT] before the repository", hint=hint
        )
    try:
        ref = parse_reference(rest)
    except ResolveError as exc:
        raise InputError(f"{text!r}: {exc.message}", hint=hint) from None
    explicit_tag = ":" in path.split("@", 1)[0].rsplit("/", 1)[-1]
    return OciLocation(host, ref.repository, ref.tag if explicit_tag else None, ref.digest)


def is_loopback(host: str) -> bool:
    """``HOST[:PORT]`` names this machine: localhost, 127.0.0.0/8, ::1."""
    name = host
    if name.startswith("["):
        name = name[1 : name.find("]")]
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
class RegistryOptions:
    """How to reach the registry: ``insecure`` (plain HTTP to a host that is not loopback),
    ``ca_cert`` (a PEM file of CA certificates, trusted besides the system store), timeouts."""

    insecure: bool = False
    ca_cert: Path | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0


def _ssl_context(ca_cert: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()  # the system trust store
    if ca_cert is not None:
        try:
            ctx.load_verify_locations(cafile=str(ca_cert))
        except (OSError, ssl.SSLError) as exc:
            raise InputError(
                f"--ca-cert {ca_cert}: not a readable PEM file of CA certificates ({exc})",
                hint="give the registry's CA certificate in PEM form",
            ) from None
    return ctx


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="..."`` -> ("bearer", {realm, service}); one challenge."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) or m.group(3) or "") for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for pattern in (
        r"\[SSL: [A-Z_]+\][^'\")]*",
        r"\[Errno -?\d+\] [^'\")]*",
        r"Read timed out[^'\")]*",
        r"timed out",
    ):
        m = re.search(pattern, text)
        if m:
            return re.sub(r"\s*\(_ssl\.c:\d+\)?", "", m.group(0)).strip().rstrip(".")
    return text if len(text) <= 200 else text[:200] + "..."


_STATUS_HINT = {
    403: "the account may not do this in this repository: check its permissions on the registry",
    404: "check the registry address; some registries (Harbor) need the project to exist first",
    413: "the registry (or a proxy in front of it) limits upload sizes: raise the limit",
}


def registry_message(response: Any) -> str:
    """The registry's own words from an error answer (``CODE: message`` of its JSON errors)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        parts = []
        for e in body["errors"][:3]:
            if isinstance(e, dict):
                parts.append(": ".join(str(e.get(k)) for k in ("code", "message") if e.get(k)))
        text = "; ".join(p for p in parts if p)
        if text:
            return text[:300]
    return ""


# ----------------------------------------------------------------------------- the client


class RegistryClient:
    """One repository on one registry; thread-safe (one HTTP session per thread)."""

    def __init__(
        self,
        host: str,
        repository: str,
        options: RegistryOptions | None = None,
        *,
        credentials: Credentials | None = None,
        env: Mapping[str, str] | None = None,
        push: bool = False,
    ) -> None:
        self.host = host
        self.repository = repository
        self.options = options or RegistryOptions()
        self.loopback = is_loopback(host)
        self.credentials = credentials if credentials is not None else lookup_credentials(host, env)
        self.actions = "pull,push" if push else "pull"
        self.scheme: str | None = "http" if self.options.insecure else None
        self._ssl = _ssl_context(self.options.ca_cert)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._auth: str | None = None  # the Authorization header value that worked
        self._sessions: list[Any] = []
        self.bytes_received = 0
        self.bytes_sent = 0

    # ------------------------------------------------------------------ plumbing

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            for s in self._sessions:
                s.close()
            self._sessions.clear()

    def _session(self) -> Any:
        s = getattr(self._local, "session", None)
        if s is None:
            import requests
            from requests.adapters import HTTPAdapter

            ctx = self._ssl

            class _Adapter(HTTPAdapter):
                def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
                    kwargs["ssl_context"] = ctx
                    super().init_poolmanager(*args, **kwargs)

            s = requests.Session()
            s.trust_env = False  # no proxies, no ~/.netrc credentials behind our back
            s.mount("https://", _Adapter(pool_maxsize=4))
            self._local.session = s
            with self._lock:
                self._sessions.append(s)
        return s

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.options.connect_timeout, self.options.read_timeout)

    @property
    def base(self) -> str:
        assert self.scheme is not None, "check() first"
        return f"{self.scheme}://{self.host}"

    def url(self, path: str) -> str:
        return f"{self.base}/v2/{self.repository}/{path}"

    def _where(self) -> str:
        return f"registry {self.host}" + (f" ({self.scheme})" if self.scheme else "")

    def _may_send_credentials(self, url: str) -> bool:
        scheme, _, _ = _origin(url)
        return scheme == "https" or self.loopback

    def _transport_error(self, exc: Exception, what: str) -> RegistryError:
        import requests

        if isinstance(exc, requests.exceptions.SSLError):
            text = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
                return RegistryTLSError(
                    f"{self._where()}: its TLS certificate is not trusted while {what} "
                    f"({_reason(exc)})",
                    hint="give the registry's CA certificate with --ca-cert FILE (PEM), or add "
                    "it to the system trust store",
                )
            return RegistryTLSError(
                f"{self._where()}: the TLS handshake failed while {what} ({_reason(exc)})",
                hint="a registry without TLS needs --insecure (loopback registries are tried "
                "over plain HTTP by themselves)",
            )
        scheme = self.scheme or "https"
        text = str(exc)
        if isinstance(exc, requests.exceptions.Timeout) or "timed out" in text.lower():
            return _transient(
                RegistryError(
                    f"registry {self.host} did not answer within the timeout of "
                    f"{self.options.read_timeout:g}s ({scheme}, while {what})",
                    hint="check that the registry runs and this host reaches it",
                )
            )
        return _transient(
            RegistryError(
                f"cannot connect to registry {self.host} ({scheme}, timeout "
                f"{self.options.connect_timeout:g}s, while {what}): it cannot be reached: "
                f"{_reason(exc)}",
                hint=f"check the registry address and port and that it runs (curl "
                f"{scheme}://{self.host}/v2/)",
            )
        )

    def _send(
        self,
        method: str,
        url: str,
        what: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        stream: bool = False,
        auth: str | None = None,
    ) -> Any:
        import requests

        h = dict(headers or {})
        if auth is not None and self._may_send_credentials(url):
            h["Authorization"] = auth
        try:
            r = self._session().request(
                method,
                url,
                headers=h,
                data=data,
                stream=stream,
                allow_redirects=False,
                timeout=self.timeout,
            )
        except requests.exceptions.RequestException as exc:
            raise self._transport_error(exc, what) from None
        return r

    # ------------------------------------------------------------------ authentication

    def _token(self, params: dict[str, str], what: str) -> str:
        import requests

        realm = params.get("realm", "")
        if not realm or not (
            urlsplit(realm).scheme == "https" or is_loopback(urlsplit(realm).netloc)
        ):
            raise RegistryAuthError(
                f"{self._where()} names a token service that is not HTTPS ({realm!r}) while {what}",
                hint="the registry's auth configuration is wrong",
            )
        query = {"service": params.get("service", "")} if params.get("service") else {}
        scope = f"repository:{self.repository}:{self.actions}"
        query["scope"] = scope
        headers = {}
        if self.credentials is not None:
            pair = f"{self.credentials.username}:{self.credentials.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        try:
            r = self._session().get(
                realm + ("&" if "?" in realm else "?") + urlencode(query),
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.exceptions.RequestException as exc:
            raise self._transport_error(exc, f"{what} (its token service)") from None
        if r.status_code in (401, 403):
            raise self._login_refused(r.status_code, what)
        try:
            body = r.json() if r.status_code == 200 else None
        except ValueError:
            body = None
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryAuthError(
                f"{self._where()}: its token service answered HTTP {r.status_code} without a "
                f"token while {what}"
            )
        return "Bearer " + token

    def _login_refused(self, status: int, what: str, response: Any = None) -> RegistryAuthError:
        said = registry_message(response) if response is not None else ""
        said = f" ({said})" if said else ""
        if self.credentials is None:
            return RegistryAuthError(
                f"{self._where()} wants a login (HTTP {status}{said}) while {what}, and none was "
                "found",
                hint=f"the registry wants credentials: `docker login {self.host}`, or set "
                f"{ENV_USER} and {ENV_PASSWORD}",
            )
        return RegistryAuthError(
            f"{self._where()} refused the login of {self.credentials.username!r} from "
            f"{self.credentials.source} (HTTP {status}{said}) while {what}: wrong user or password, "
            f"or no right to {self.actions} {self.repository}",
            hint=f"check the password (`docker login {self.host}`, or {ENV_USER} and "
            f"{ENV_PASSWORD}) and the account's permissions on {self.repository}",
        )

    def _answer_challenge(self, response: Any, what: str) -> str:
        header = response.headers.get("WWW-Authenticate", "")
        scheme, params = _challenge(header)
        if scheme == "bearer":
            return self._token(params, what)
        if scheme == "basic":
            if self.credentials is None:
                raise self._login_refused(response.status_code, what, response)
            if not self._may_send_credentials(response.url):
                raise RegistryAuthError(
                    f"{self._where()} asks for a password over plain HTTP while {what}",
                    hint="use HTTPS for a registry that needs a login (drop --insecure)",
                )
            pair = f"{self.credentials.username}:{self.credentials.password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        raise RegistryAuthError(
            f"{self._where()} answered HTTP 401 without a usable challenge while {what}",
            hint=f"`docker login {self.host}`, or set {ENV_USER} and {ENV_PASSWORD}",
        )

    # ------------------------------------------------------------------ requests

    def request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        stream: bool = False,
        ok: Iterable[int] = (200,),
    ) -> Any:
        """One request with authentication and the redirect rules of the module; the response
        when its status is in ``ok`` (404 is returned too, for the caller to judge), else
        :class:`RegistryError` with the registry's own words."""
        replayable = data is None or isinstance(data, (bytes, bytearray))
        auth = self._auth
        r = self._send(method, url, what, headers=headers, data=data, stream=stream, auth=auth)
        if r.status_code == 401 and replayable:
            registry_message(r)  # read the body (the registry's words) before closing
            r.close()
            fresh = self._answer_challenge(r, what)
            with self._lock:
                self._auth = fresh
            r = self._send(method, url, what, headers=headers, data=data, stream=stream, auth=fresh)
            if r.status_code == 401:
                refused = self._login_refused(401, what, r)
                r.close()
                raise refused
        hops = 0
        while r.status_code in (301, 302, 303, 307, 308):
            location = r.headers.get("Location")
            r.close()
            if method not in ("GET", "HEAD") or not location:
                raise RegistryError(
                    f"{self._where()} redirected {method} while {what}: not followed (a "
                    "request with a body is never sent twice)",
                    hint="the registry's storage redirect must be for downloads only",
                )
            hops += 1
            if hops > MAX_REDIRECTS:
                raise RegistryError(
                    f"{self._where()}: more than {MAX_REDIRECTS} redirects while {what}"
                )
            target = urljoin(r.url, location)
            same = _origin(target) == _origin(self.base)
            # another origin (blob storage): no credentials go there
            r = self._send(
                method, target, what, headers=headers, stream=stream, auth=auth if same else None
            )
        if r.status_code == 401:
            refused = self._login_refused(401, what, r)
            r.close()
            raise refused
        if r.status_code in ok or r.status_code == 404:
            return r
        said = registry_message(r)
        r.close()
        error = RegistryError(
            f"{self._where()} refused {what} in {self.repository}: HTTP {r.status_code}"
            + (f": {said}" if said else ""),
            hint=_STATUS_HINT.get(r.status_code, "check the registry's log"),
        )
        if r.status_code >= 500 or r.status_code in (408, 429):
            error.hint = (
                "the registry failed: check its log and its storage, then run again (blobs "
                "already there are not sent again)"
            )
            raise _transient(error)
        raise error

    def connect(self) -> None:
        """Picks HTTPS or (loopback without TLS, or ``insecure``) plain HTTP: one request when
        that is not known yet, none with ``insecure``."""
        what = "checking /v2/"
        if self.scheme is None:
            self.scheme = "https"
            try:
                r = self._send("GET", f"{self.base}/v2/", what)
            except RegistryTLSError as exc:
                if not self.loopback or "not trusted" in exc.message:
                    raise
                self.scheme = "http"  # a loopback registry that does not speak TLS
            except RegistryError:
                if not self.loopback:
                    raise
                self.scheme = "http"
            else:
                r.close()

    def check(self) -> None:
        """The registry answers ``/v2/`` and accepts the login, before anything is transferred."""
        what = "checking /v2/"
        self.connect()
        r = self.request("GET", f"{self.base}/v2/", what)
        r.close()
        if r.status_code != 200:
            raise RegistryError(
                f"{self._where()} answered HTTP {r.status_code} at /v2/: not an OCI registry",
                hint="give the registry's HOST[:PORT]",
            )

    # ------------------------------------------------------------------ blobs

    def blob_size(self, digest: str) -> int | None:
        """The size of a blob the repository holds, None when it has not got it."""
        r = self.request("HEAD", self.url(f"blobs/{digest}"), f"looking for blob {digest}")
        r.close()
        if r.status_code == 404:
            return None
        try:
            return int(r.headers.get("Content-Length", ""))
        except ValueError:
            return None

    def open_blob(self, digest: str) -> Any:
        """A streaming response for the blob (redirects to storage followed, without
        credentials off the registry's origin); the caller hashes what it reads."""
        r = self.request("GET", self.url(f"blobs/{digest}"), f"fetching blob {digest}", stream=True)
        if r.status_code == 404:
            r.close()
            raise RegistryError(
                f"{self._where()}: blob {digest} is not in {self.repository} (HTTP 404)",
                hint="the published bundle is incomplete there: publish it again",
            )
        return r

    def iter_blob(self, digest: str, limit: int) -> Iterator[bytes]:
        """The blob's bytes in chunks, never more than ``limit`` (its signed size)."""
        r = self.open_blob(digest)
        import requests

        try:
            got = 0
            for chunk in r.iter_content(CHUNK):
                got += len(chunk)
                if got > limit:
                    raise RegistryError(
                        f"{self._where()}: blob {digest} is larger than its signed {limit} bytes"
                    )
                with self._lock:
                    self.bytes_received += len(chunk)
                yield chunk
        except requests.exceptions.RequestException as exc:
            raise self._transport_error(exc, f"fetching blob {digest}") from None
        finally:
            r.close()

    def upload_blob(self, digest: str, size: int, body: Iterable[bytes]) -> None:
        """POST an upload, then PUT the content in one streamed request (monolithic)."""
        what = f"uploading blob {digest}"
        r = self.request("POST", self.url("blobs/uploads/"), what, ok=(202,), data=b"")
        r.close()
        location = r.headers.get("Location")
        if r.status_code != 202 or not location:
            raise RegistryError(f"{self._where()} did not open an upload (HTTP {r.status_code})")
        target = urljoin(r.url, location)
        if _origin(target) != _origin(self.base):
            raise RegistryError(
                f"{self._where()} gave an upload location on another origin ({_origin(target)[1]}) "
                f"while {what}: refused, nothing was sent there",
                hint="a registry's upload locations must stay on the registry",
            )
        sep = "&" if "?" in target else "?"
        counted = _Counted(body, size, self)
        r = self.request(
            "PUT",
            f"{target}{sep}{urlencode({'digest': digest})}",
            what,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            data=counted,
            ok=(201, 204),
        )
        r.close()
        if r.status_code == 404:
            raise RegistryError(f"{self._where()} lost the upload of {digest} (HTTP 404)")

    def mount(self, source: str, digest: str) -> bool:
        """Mount a blob from another repository of the registry; False when it will not."""
        query = urlencode({"mount": digest, "from": source})
        try:
            r = self.request(
                "POST", self.url(f"blobs/uploads/?{query}"), f"mounting {digest}", data=b"",
                ok=(201, 202),
            )  # fmt: skip
        except RegistryAuthError:
            return False  # no right to read the other repository: upload instead
        r.close()
        return bool(r.status_code == 201)

    # ------------------------------------------------------------------ manifests

    def manifest_digest(self, reference: str, accept: str) -> str | None:
        r = self.request(
            "HEAD", self.url(f"manifests/{reference}"), f"looking for manifest {reference}",
            headers={"Accept": accept},
        )  # fmt: skip
        r.close()
        if r.status_code == 404:
            return None
        got = r.headers.get("Docker-Content-Digest")
        return got if isinstance(got, str) and SHA256_DIGEST.fullmatch(got) else reference

    def get_manifest(self, reference: str, accept: str) -> tuple[bytes, str]:
        """The manifest's bytes (bounded) and media type; 404 is a :class:`RegistryError`."""
        what = f"fetching manifest {reference}"
        r = self.request(
            "GET", self.url(f"manifests/{reference}"), what, headers={"Accept": accept}, stream=True
        )
        try:
            if r.status_code == 404:
                raise RegistryError(
                    f"{self._where()}: {self.repository}{'@' if ':' in reference else ':'}"
                    f"{reference} is not there (HTTP 404)",
                    hint="check the repository and tag (`skopeo list-tags docker://"
                    f"{self.host}/{self.repository}`); publish the bundle first",
                )
            chunks, got = [], 0
            for chunk in r.iter_content(64 * 1024):
                got += len(chunk)
                if got > MAX_MANIFEST_BYTES:
                    raise RegistryError(
                        f"{self._where()}: manifest {reference} is larger than "
                        f"{MAX_MANIFEST_BYTES} bytes"
                    )
                chunks.append(chunk)
        finally:
            r.close()
        with self._lock:
            self.bytes_received += got
        media_type = (r.headers.get("Content-Type") or "").split(";", 1)[0].strip()
        return b"".join(chunks), media_type

    def put_manifest(self, reference: str, raw: bytes, media_type: str) -> str | None:
        """PUT the manifest's bytes as they are; the digest the registry reports."""
        r = self.request(
            "PUT", self.url(f"manifests/{reference}"), f"pushing manifest {reference}",
            headers={"Content-Type": media_type}, data=raw, ok=(201, 200),
        )  # fmt: skip
        r.close()
        if r.status_code == 404:
            raise RegistryError(
                f"{self._where()} refused manifest {reference} (HTTP 404: a blob it names is "
                "missing)"
            )
        with self._lock:
            self.bytes_sent += len(raw)
        got = r.headers.get("Docker-Content-Digest")
        return got if isinstance(got, str) else None


class _Counted:
    """A streamed request body of a known length (requests sends Content-Length, not chunked)."""

    def __init__(self, chunks: Iterable[bytes], size: int, client: RegistryClient) -> None:
        self.chunks, self.size, self.client = chunks, size, client

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            with self.client._lock:
                self.client.bytes_sent += len(chunk)
            yield chunk
