"""A small OCI distribution client for tests: pull a manifest and everything under it over HTTP,
checking every digest the way a registry client must (urllib only, independent of the server)."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


@dataclass
class Pulled:
    manifests: dict[str, bytes] = field(default_factory=dict)  # digest -> bytes
    blobs: dict[str, int] = field(default_factory=dict)  # digest -> size


def request(
    url: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request; HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pull(base: str, repo: str, ref: str, into: Pulled | None = None) -> Pulled:
    """Every manifest and blob reachable from ``repo:ref`` (index entries, config, layers,
    subject not followed), each checked against its digest."""
    out = into if into is not None else Pulled()
    status, headers, body = request(f"{base}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
    assert status == 200, (repo, ref, status, body[:200])
    digest = digest_of(body)
    assert headers["Docker-Content-Digest"] == digest
    assert ":" not in ref or ref == digest
    out.manifests[digest] = body
    doc: dict[str, Any] = json.loads(body)
    for entry in doc.get("manifests", []):
        if entry["digest"] not in out.manifests:
            pull(base, repo, entry["digest"], out)
    for blob in [doc["config"], *doc["layers"]] if "config" in doc else []:
        if blob["digest"] in out.blobs:
            continue
        status, headers, data = request(f"{base}/v2/{repo}/blobs/{blob['digest']}")
        assert status == 200, (repo, blob["digest"], status)
        assert digest_of(data) == blob["digest"] and len(data) == blob["size"]
        out.blobs[blob["digest"]] = len(data)
    return out
