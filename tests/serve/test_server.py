"""`airgap serve` on the golden bundle (tar, parts, folder) and an installed site, over real HTTP.

The server runs in this process on 127.0.0.1:0; tests/support/oci_client.py is the client.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from packager.bundle import layout
from packager.commands.serve import started_json
from packager.errors import InputError
from packager.serve.catalog import Catalog, ServedManifest
from packager.serve.installed import from_site
from packager.serve.server import DistributionServer
from packager.serve.sources import NotServable, Served, from_bundle
from packager.signing.trust import policy_from_keys
from packager.util.schemas import validator
from tests.support import golden, oci_client
from tests.support.cli import cli


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve-golden")
    (tar,) = golden.build_golden(root / "tar")
    parts = golden.build_golden(root / "parts", split=64 * 1024)
    (folder,) = golden.build_golden(root / "folder", layout_only=True)
    index = next(p for p in parts if p.name.endswith(".airgap.parts.json"))
    return {"tar": tar, "parts": index, "folder": folder, "pub": golden.write_public_key(root)}


class Running:
    def __init__(self, served: Served) -> None:
        self.lines: list[str] = []
        self.server = DistributionServer(("127.0.0.1", 0), served.catalog, self.lines.append)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://{self.server.listen}"

    def get(
        self, path: str, method: str = "GET", **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        return oci_client.request(self.base + path, method, headers)

    def logged(self, match: Callable[[str], bool]) -> bool:
        """A log line matches; the server writes it just after the response, so wait a little."""
        deadline = time.monotonic() + 10
        while not any(match(line) for line in self.lines):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serving() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for r in started:
        r.stop()


def serve(started: list[Running], served: Served) -> Running:
    r = Running(served)
    started.append(r)
    return r


def policy(built: dict[str, Path]):  # type: ignore[no-untyped-def]
    return policy_from_keys([built["pub"]])


def descriptor(bundle: Path) -> dict:  # type: ignore[type-arg]
    from packager.bundle.reader import open_bundle

    with open_bundle(bundle) as b:
        return json.loads(b.descriptor_bytes())  # type: ignore[no-any-return]


# ============================================================================ every form


@pytest.mark.parametrize("form", ["tar", "parts", "folder"])
def test_every_blob_and_the_index_are_served_intact(
    built: dict[str, Path], serving: list[Running], form: str
) -> None:
    served = from_bundle(built[form], policy(built))
    r = serve(serving, served)
    validator("serve").validate(started_json(served, r.server))
    assert [(x["name"], [t["tag"] for t in x["tags"]]) for x in served.catalog.to_json()] == [
        ("golden", ["1.0.0"])
    ]
    pulled = oci_client.pull(r.base, "golden", "1.0.0")
    doc = descriptor(built[form])
    listed = {b["digest"] for b in doc["blobs"]}
    index_digest = served.catalog.repositories["golden"].tags["1.0.0"]
    # every blob bundle.json lists, each fetched and hashed by the client
    for blob in doc["blobs"]:
        status, headers, body = r.get(f"/v2/golden/blobs/{blob['digest']}")
        assert status == 200 and oci_client.digest_of(body) == blob["digest"]
        assert headers["Docker-Content-Digest"] == blob["digest"]
        assert int(headers["Content-Length"]) == blob["size"]
    assert set(pulled.blobs) | set(pulled.manifests) == listed | {index_digest}
    status, headers, body = r.get("/v2/golden/manifests/1.0.0", "HEAD")
    assert status == 200 and body == b""
    assert headers["Content-Type"] == layout.OCI_INDEX
    assert headers["Docker-Content-Digest"] == index_digest
    status, _, body = r.get(f"/v2/golden/manifests/{index_digest}")
    assert status == 200 and oci_client.digest_of(body) == index_digest
    assert r.logged(lambda _: len(r.lines) >= len(doc["blobs"]) + 2)  # one line per request


def test_a_blob_across_two_parts_is_served_whole_and_in_ranges(
    built: dict[str, Path], serving: list[Running]
) -> None:
    served = from_bundle(built["parts"], policy(built))
    spanning = [b for b in served.catalog.blobs.values() if len(b.segments) > 1]
    assert spanning, "the split golden bundle has a blob across two parts"
    blob = spanning[0]
    r = serve(serving, served)
    _, _, whole = r.get(f"/v2/golden/blobs/{blob.digest}")
    assert oci_client.digest_of(whole) == blob.digest
    cut = blob.segments[0].length
    first, last = cut - 10, min(blob.size - 1, cut + 10)
    status, headers, body = r.get(f"/v2/golden/blobs/{blob.digest}", Range=f"bytes={first}-{last}")
    assert status == 206 and body == whole[first : last + 1]
    assert headers["Content-Range"] == f"bytes {first}-{last}/{blob.size}"
    status, _, body = r.get(f"/v2/golden/blobs/{blob.digest}", Range=f"bytes=-{blob.size - 5}")
    assert status == 206 and body == whole[5:]


# ============================================================================ answers


def test_what_is_not_there_or_not_allowed(built: dict[str, Path], serving: list[Running]) -> None:
    served = from_bundle(built["tar"], policy(built))
    r = serve(serving, served)
    blob = next(
        b for b in served.catalog.blobs.values() if b.digest not in served.catalog.manifests
    )
    other = "sha256:" + "0" * 64
    cases: list[tuple[str, str, dict[str, str], int, str]] = [
        ("GET", "/v2/nope/tags/list", {}, 404, "NAME_UNKNOWN"),
        ("GET", "/v2/golden/manifests/2.0.0", {}, 404, "MANIFEST_UNKNOWN"),
        ("GET", f"/v2/golden/manifests/{other}", {}, 404, "MANIFEST_UNKNOWN"),
        ("GET", f"/v2/golden/manifests/{blob.digest}", {}, 404, "MANIFEST_UNKNOWN"),
        ("GET", f"/v2/golden/blobs/{other}", {}, 404, "BLOB_UNKNOWN"),
        ("GET", "/v2/golden/blobs/sha512:" + "0" * 128, {}, 400, "DIGEST_INVALID"),
        ("GET", "/v2/golden/blobs/uploads/", {}, 404, "NOT_FOUND"),
        ("GET", "/v2/_catalog?n=x", {}, 400, "PAGINATION_NUMBER_INVALID"),
        ("POST", "/v2/golden/blobs/uploads/", {}, 405, "UNSUPPORTED"),
        ("PUT", "/v2/golden/manifests/1.0.0", {}, 405, "UNSUPPORTED"),
        ("PATCH", "/v2/golden/blobs/uploads/x", {}, 405, "UNSUPPORTED"),
        ("DELETE", f"/v2/golden/blobs/{blob.digest}", {}, 405, "UNSUPPORTED"),
    ]
    for method, path, headers, want, code in cases:
        status, answer_headers, body = r.get(path, method, **headers)
        assert (status, json.loads(body)["errors"][0]["code"]) == (want, code), (method, path)
        if want == 405:
            assert answer_headers["Allow"] == "GET, HEAD"
    status, headers, body = r.get(f"/v2/golden/blobs/{blob.digest}", Range=f"bytes={blob.size}-")
    assert (status, headers["Content-Range"], body) == (416, f"bytes */{blob.size}", b"")
    status, _, body = r.get("/v2/_catalog")
    assert json.loads(body) == {"repositories": ["golden"]}
    status, headers, body = r.get("/v2/")
    assert status == 200 and headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_a_repository_serves_only_what_it_reaches() -> None:
    cat = Catalog()
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    cat.manifests[a] = ServedManifest(a, layout.OCI_MANIFEST, b"{}")
    cat.manifests[b] = ServedManifest(b, layout.OCI_MANIFEST, b"{}")
    cat.add("x", "1", a, set(), set(), "image x:1")
    cat.add("x", "1", a, set(), set(), "image x:1 again")  # the same thing twice is one
    with pytest.raises(InputError, match="would both be served as x:1"):
        cat.add("x", "1", b, set(), set(), "image registry.example/x:1")
    with pytest.raises(InputError, match="not among the verified content"):
        cat.add("y", "1", "sha256:" + "c" * 64, set(), set(), "image y:1")
    assert cat.repositories["x"].manifests == {a}


# ============================================================================ nothing unverified


def test_a_bundle_that_does_not_verify_is_not_served(
    built: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "b"
    shutil.copytree(built["folder"], folder)
    doc = descriptor(folder)
    victim = folder / layout.blob_path(doc["blobs"][0]["digest"])
    data = bytearray(victim.read_bytes())
    data[0] ^= 1
    victim.chmod(0o644)
    victim.write_bytes(bytes(data))
    with pytest.raises(NotServable, match="did not verify"):
        from_bundle(folder, policy(built))
    r = cli("serve", str(folder), "--key", str(built["pub"]), "--listen", "127.0.0.1:0")
    assert r.returncode == 1 and "nothing is served" in r.stderr
    other = golden.write_public_key(tmp_path, seed=b"another key", name="other")
    r = cli("serve", str(built["tar"]), "--key", str(other), "--listen", "127.0.0.1:0")
    assert r.returncode == 1 and "did not verify" in r.stderr


def test_a_file_changed_after_the_start_is_not_sent(
    built: dict[str, Path], serving: list[Running], tmp_path: Path
) -> None:
    folder = tmp_path / "b"
    shutil.copytree(built["folder"], folder)
    served = from_bundle(folder, policy(built))
    r = serve(serving, served)
    blob = max(served.catalog.blobs.values(), key=lambda b: b.size)
    path = Path(blob.segments[0].file.path)
    other = next(
        b
        for b in served.catalog.blobs.values()
        if b.size > 1 and b is not blob and b.digest not in served.catalog.manifests
    )
    with open(other.segments[0].file.path, "r+b") as fh:  # cut short in place: the same inode
        fh.truncate(other.size - 1)
    status, _, body = r.get(f"/v2/golden/blobs/{other.digest}")
    assert status == 500 and b"its size is" in body
    replacement = tmp_path / "same-bytes"
    replacement.write_bytes(path.read_bytes())
    os.replace(replacement, path)  # the same bytes, but not the file that was verified
    status, _, body = r.get(f"/v2/golden/blobs/{blob.digest}")
    assert status == 500 and b"changed since it was verified" in body
    assert r.logged(lambda line: " 500 " in line and "replaced" in line)
    path.unlink()
    path.symlink_to(folder / layout.INDEX_JSON)  # a planted link is never followed
    status, _, body = r.get(f"/v2/golden/blobs/{blob.digest}")
    assert status == 500


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "127.0.0.1:0"], "give a BUNDLE or --prefix DIR"),
        (["BUNDLE", "--listen", "127.0.0.1:0"], "serve needs --trust POLICY or --key PUB"),
        (["BUNDLE", "--key", "PUB", "--listen", "nowhere"], "is not HOST:PORT"),
        (["BUNDLE", "--prefix", "P", "--key", "PUB"], "give a BUNDLE or --prefix DIR"),
    ],
)
def test_usage_errors_exit_2(
    built: dict[str, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    subst = {"BUNDLE": str(built["tar"]), "PUB": str(built["pub"]), "P": str(tmp_path)}
    r = cli("serve", *[subst.get(a, a) for a in args])
    assert r.returncode == 2 and message in r.stderr, r.stderr


# ============================================================================ an installed site


def test_an_installed_site_serves_its_signed_blobs_rehashed(
    built: dict[str, Path], serving: list[Running], tmp_path: Path
) -> None:
    prefix = tmp_path / "site"
    r = cli("install", str(built["tar"]), "--prefix", str(prefix), "--key", str(built["pub"]),
            "--no-probe")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = descriptor(built["tar"])
    stored = [b for b in doc["blobs"] if b["paths"]]
    served = from_site(prefix, policy(built))
    assert (
        served.bundles[0]["digest"]
        == "sha256:"
        + hashlib.sha256(
            (prefix / "bundles/golden/1.0.0/.airgap/bundle.json").read_bytes()
        ).hexdigest()
    )
    assert set(served.catalog.blobs) == {b["digest"] for b in stored}
    assert served.bytes_verified == sum(b["size"] for b in stored)
    running = serve(serving, served)
    validator("serve").validate(started_json(served, running.server))
    for b in stored:
        status, _, body = running.get(f"/v2/golden/blobs/{b['digest']}")
        assert status == 200 and oci_client.digest_of(body) == b["digest"]
    # a store blob that no longer hashes to its name is left out and named
    victim = prefix / layout.SITE_BLOBS_DIR / stored[0]["digest"][7:]
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[-1] ^= 1
    victim.write_bytes(bytes(data))
    again = from_site(prefix, policy(built))
    assert stored[0]["digest"] not in again.catalog.blobs
    assert any("hashes to" in n for n in again.notes)
    # a policy the version's signatures do not meet: nothing to serve
    other = golden.write_public_key(tmp_path, seed=b"another key", name="other")
    with pytest.raises(InputError, match="nothing to serve"):
        from_site(prefix, policy_from_keys([other]))
