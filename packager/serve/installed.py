"""`airgap serve --prefix DIR`: the installed, signed versions of a site, from its store.

What is served is decided by each installed version's own ``.airgap/bundle.json``: its sha256
must be the digest its receipt recorded, and its installed signatures must meet the policy (the
site's own when it keeps one, else ``--trust``/``--key``; a version that fails either is left
out and named). Only blobs that bundle.json lists are served, and only from the store
``DIR/blobs/sha256``.

The store's integrity rule is install's: a blob was hashed while it was written and is read-only
(0444) since; `audit --site` re-hashes. A server hands bytes to other machines, so it does not
take that on trust: every blob it serves is re-hashed at start (in parallel) and pinned by its
identity, as a bundle's are. A blob that does not hash to its name is left out and named.

Images: an image of a version is served (under its repository path, as for a bundle) when its
manifest (or kept index) and everything under it are in the store. `airgap install` stores the
blobs that have install paths (the model, kernels, wheels, files, the probe); image layers go
into an engine or a registry instead, so on such a site only the version's blobs are served, by
digest, under the repository NAME, and the images are named as not in the store.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packager.bundle import layout
from packager.bundle.checks import check_signatures
from packager.bundle.descriptor import Descriptor, parse_descriptor
from packager.bundle.errors import DescriptorError
from packager.bundle.verifier import MAX_MANIFEST_BYTES
from packager.errors import InputError
from packager.oci.reference import parse_reference
from packager.serve.catalog import BlobSource, Catalog, FileIdentity, Segment
from packager.serve.routes import is_name
from packager.serve.sources import MANIFEST_TYPES, Served, add_manifest, reachable
from packager.signing.trust import Policy
from packager.site.integrity import installed_signature_files
from packager.site.prefix import Prefix
from packager.site.safefs import Dir, SiteError
from packager.site.trust import policy_for_install
from packager.util.hashing import read_size
from packager.util.progress import Reporter


def from_site(
    prefix_path: Path, given: Policy | None, *, reporter: Reporter | None = None
) -> Served:
    rep = reporter or Reporter()
    t0 = time.perf_counter()
    policy = policy_for_install(prefix_path, given, "serve")
    served = Served(source=prefix_path, kind="site", catalog=Catalog())
    try:
        prefix = Prefix.open(prefix_path, create=False)
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"{prefix_path}: no such install prefix") from None
    with prefix:
        prefix.lock(exclusive=False, reporter=rep)  # an install in progress finishes first
        try:
            versions = list(_signed_versions(prefix, policy, served))
            store = prefix.sub(layout.SITE_BLOBS_DIR)
            if store is None:
                versions = []
                served.notes.append(f"{prefix_path} has no store")
            else:
                with store:
                    wanted = {
                        b.digest: (b.size, b.media_type) for _, doc in versions for b in doc.blobs
                    }
                    _hash_store(store, wanted, served, rep)
        finally:
            prefix.unlock()
    for _, doc in versions:
        _repositories(doc, served)
    served.verify_seconds = time.perf_counter() - t0
    if not served.catalog.blobs:
        raise InputError(
            f"{prefix_path}: nothing to serve (no installed version is signed by the policy's "
            "keys and has blobs in the store)",
            hint="; ".join(served.notes) or "install a bundle first",
        )
    return served


def _signed_versions(
    prefix: Prefix, policy: Policy, served: Served
) -> Iterator[tuple[str, Descriptor]]:
    bundles = prefix.bundles()
    if bundles is None:
        return
    with bundles:
        for name in prefix.names():
            for version, receipt in sorted(prefix.installed(name).items()):
                label = f"{name} {version}"
                try:
                    vd = bundles.walk(f"{name}/{version}")
                except (FileNotFoundError, SiteError):
                    served.notes.append(f"{label}: its folder is missing: not served")
                    continue
                with vd:
                    found = _signed_descriptor(vd, label, receipt.digest, policy, served)
                if found is not None:
                    doc, signers = found
                    served.bundles.append(
                        {"name": name, "version": version, "target": doc.bundle.target,
                         "digest": receipt.digest, "signers": signers}
                    )  # fmt: skip
                    yield receipt.digest, doc


def _signed_descriptor(
    vd: Dir, label: str, digest: str, policy: Policy, served: Served
) -> tuple[Descriptor, list[dict[str, str]]] | None:
    """The version's bundle.json when it is the one installed and signed to the policy."""
    meta = layout.installed_meta_path(layout.BUNDLE_JSON)
    try:
        raw = vd.read_small(meta, layout.MAX_BUNDLE_JSON_BYTES)
        files = installed_signature_files(vd)
    except SiteError as exc:
        served.notes.append(f"{label}: {exc.message}: not served")
        return None
    if raw is None or "sha256:" + hashlib.sha256(raw).hexdigest() != digest:
        served.notes.append(f"{label}: {meta} is missing or not the one installed: not served")
        return None
    verdict = check_signatures(raw, files, policy)
    if verdict.failures or not verdict.valid:
        why = "; ".join(f.message for f in verdict.failures[:3]) or "no valid signature"
        served.notes.append(f"{label}: its signatures do not meet the policy ({why}): not served")
        return None
    try:
        doc = parse_descriptor(raw)
    except DescriptorError as exc:
        served.notes.append(f"{label}: {exc.message}: not served")
        return None
    return doc, [{"keyid": k, "name": policy.name_of(k)} for k in verdict.valid]


def _hash_store(
    store: Dir, wanted: dict[str, tuple[int, str]], served: Served, rep: Reporter
) -> None:
    """Re-hash every wanted blob (digest -> size, media type) the store holds at its size; pin
    the ones that match into the catalog, manifests also read into memory."""
    present: dict[str, FileIdentity] = {}
    for digest, (size, _) in sorted(wanted.items()):
        hexd = digest[7:]
        st = store.lstat(hexd)
        if st is not None and stat.S_ISREG(st.st_mode) and st.st_size == size:
            present[digest] = FileIdentity.of(store.path_of(hexd), st)
    rep.phase("hashing the store", sum(i.size for i in present.values()))

    def check(item: tuple[str, FileIdentity]) -> tuple[str, bytes | None, str | None]:
        digest, ident = item
        keep = wanted[digest][1] in MANIFEST_TYPES and ident.size <= MAX_MANIFEST_BYTES
        data = bytearray()
        h = hashlib.sha256()
        fd = store.open_read(digest[7:])
        try:
            why = ident.changed(os.fstat(fd))
            ask = read_size(ident.size)
            while why is None and (chunk := os.read(fd, ask)):
                h.update(chunk)
                if keep:
                    data += chunk
                rep.advance(len(chunk))
            why = why or ident.changed(os.fstat(fd))
        finally:
            os.close(fd)
        if why is None and "sha256:" + h.hexdigest() != digest:
            why = f"it hashes to sha256:{h.hexdigest()}"
        return digest, bytes(data) if keep else None, why

    with ThreadPoolExecutor(min(8, max(2, os.cpu_count() or 2))) as pool:
        results = list(pool.map(check, present.items()))
    for digest, data, why in results:
        if why is not None:
            served.notes.append(f"{present[digest].path}: {why}: not served")
            continue
        ident = present[digest]
        served.catalog.blobs[digest] = BlobSource(
            digest, ident.size, (Segment(ident, 0, ident.size),)
        )
        served.bytes_verified += ident.size
        if data is not None:
            add_manifest(served.catalog, digest, wanted[digest][1], data)


def _repositories(doc: Descriptor, served: Served) -> None:
    cat = served.catalog
    label = f"{doc.name} {doc.version}"
    for image in doc.images:
        top = next(
            (d for d in (image.index_digest, image.manifest_digest) if d in cat.manifests), None
        )
        ref = parse_reference(image.ref)
        if top is None or not is_name(ref.repository):
            served.notes.append(f"{label}: image {image.ref} is not in the store: not served")
            continue
        manifests, blobs, missing = reachable(cat, top)
        if missing:
            served.notes.append(
                f"{label}: image {image.ref}: {len(missing)} of its blobs are not in the store "
                "(install keeps image layers in the engine or registry): not served"
            )
            continue
        cat.add(ref.repository, ref.tag, top, manifests, blobs, f"image {image.ref}")
    if not is_name(doc.name):
        served.notes.append(f"{label}: the name cannot be a repository name: not served")
        return
    mine = {b.digest for b in doc.blobs if b.digest in cat.blobs}
    cat.add(doc.name, None, None, mine & set(cat.manifests), mine, f"bundle {label}")
