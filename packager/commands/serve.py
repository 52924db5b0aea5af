"""`airgap serve`: verify a bundle (or read an installed site), then serve it read-only over the
OCI distribution API until stopped (packager.serve does the work)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from packager.commands.verify import policy_from_options
from packager.errors import InputError
from packager.serve.server import DistributionServer
from packager.serve.sources import Served, from_bundle
from packager.util.progress import Reporter

_LISTEN = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]+)):(?P<port>[0-9]{1,5})")


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` (``localhost`` is 127.0.0.1; port 0: any free one)."""
    m = _LISTEN.fullmatch(text.strip())
    hint = "e.g. --listen 127.0.0.1:5000, [::1]:5000, or 0.0.0.0:5000 for every interface"
    if m is None:
        raise InputError(f"--listen {text!r} is not HOST:PORT", hint=hint)
    host = m.group("v6") or m.group("host")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise InputError(f"--listen {text!r}: {host!r} is not an IP address", hint=hint) from None
    if m.group("v6") is not None and addr.version != 6:
        raise InputError(f"--listen {text!r}: brackets hold an IPv6 address", hint=hint)
    port = int(m.group("port"))
    if port > 65535:
        raise InputError(f"--listen {text!r}: port {port} is past 65535", hint=hint)
    return str(addr), port


def prepare(
    bundle: Path | None,
    prefix: Path | None,
    trust: Path | None,
    keys: list[Path] | None,
    *,
    reporter: Reporter | None = None,
) -> Served:
    """What will be served, verified: a bundle whole, or an installed site's signed versions."""
    if (bundle is None) == (prefix is None):
        raise InputError("give a BUNDLE or --prefix DIR (one of them)")
    policy = policy_from_options(trust, keys)
    if prefix is not None:
        from packager.serve.installed import from_site

        return from_site(prefix, policy, reporter=reporter)
    assert bundle is not None
    if policy is None:
        raise InputError(
            "serve needs --trust POLICY or --key PUB",
            hint="nothing is served before its signature is checked against a trusted key",
        )
    return from_bundle(bundle, policy, reporter=reporter)


def start(served: Served, listen: str, log: Callable[[str], None]) -> DistributionServer:
    """The server, bound (not yet serving): ``serve_forever`` runs it."""
    host, port = parse_listen(listen)
    try:
        return DistributionServer((host, port), served.catalog, log)
    except OSError as exc:
        raise InputError(
            f"cannot listen on {listen}: {exc.strerror or exc}",
            hint="another process may hold the port; pick another, or port 0 for any free one",
        ) from None


def started_json(served: Served, server: DistributionServer) -> dict[str, Any]:
    return {
        "ok": True,
        "listen": server.listen,
        "url": f"http://{server.listen}",
        **served.to_json(),
    }
