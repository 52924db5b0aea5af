"""Importing the images of a bundle into containerd: :func:`load_into_containerd`.

One OCI archive is built while it streams (``oci-layout``, every manifest, config and layer once,
then ``index.json``) and fed to ``ctr images import --snapshotter S -`` on its stdin. Why that
and not ``ctr content ingest`` + image records: ``ctr images import`` writes each blob straight
into containerd's content store (content-addressed: it is stored under the digest containerd
computes, so a blob is only found by the digest the manifest names when its bytes hash to it),
creates the images and unpacks them for the snapshotter, inside one lease, in one process; the
archive is never on disk here, and each blob is also hashed while it streams
(:func:`packager.site.images.listing.verified_chunks` holds its last chunk back until the digest
is checked: a corrupt blob is cut short and never committed).

Each image is named in ``index.json`` by the ``io.containerd.image.name`` annotation, with its
normalized reference (``docker.io/library/busybox:1.36``, what Kubernetes asks the CRI for), and
points at the platform manifest the bundle keeps: the digest ``airgap deploy render`` pins and
``ctr images ls`` shows. Blob members are named ``blobs/<run>/<hex>`` (containerd's ingest refs
come from the member names, so an import cut short never leaves a partial write that the next
import would resume). Afterwards every name must point at its manifest digest and the snapshot of
its layer chain must exist in the snapshotter: the image is unpacked, ready to run.
An image that containerd already has that way (same name, same digest, unpacked) is not streamed,
nor are the layers its content store holds already (an upgrade shares its base layers): the
import finds them there by digest. Should containerd collect one of those meanwhile (a layer no
image holds), the import fails and is run once more with every layer.
Before the stream, the folders of the content store and of the snapshotter (``ctr plugins ls
--detailed``) are checked for room, as Docker's storage is.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from packager.bundle import layout
from packager.bundle.reader import Bundle
from packager.errors import CheckFailed, InputError
from packager.oci.reference import SHA256_DIGEST
from packager.site.images import tarstream
from packager.site.images.docker import EngineError, room_needed
from packager.site.images.listing import (
    Blob,
    BundleImage,
    ImageError,
    image_entries,
    verified_chunks,
    verified_read,
)
from packager.site.images.runtime import (
    RuntimeImage,
    check_platform,
    check_room,
    feed_tool,
    host_platform,
    run_tool,
    runtime_name,
    tool_path,
)
from packager.util.progress import Reporter

DEFAULT_ADDRESS = "/run/containerd/containerd.sock"
#: the namespace the Kubernetes CRI plugin reads: images there are the node's images
DEFAULT_NAMESPACE = "k8s.io"
#: containerd's default snapshotter (ctr's when $CONTAINERD_SNAPSHOTTER is not set)
DEFAULT_SNAPSHOTTER = "overlayfs"
#: the annotation ``ctr images import`` names an image by (before org.opencontainers.image.ref.name)
NAME_ANNOTATION = "io.containerd.image.name"
SNAPSHOTTER_PLUGIN = "io.containerd.snapshotter.v1"

#: seconds ctr may take to import and unpack (it unpacks every layer before it exits)
IMPORT_TIMEOUT = 3 * 3600.0
#: seconds for a question (version, plugins, images, snapshots)
ASK_TIMEOUT = 60.0

_NAMESPACE = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*\Z")
_SNAPSHOTTER = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}\Z")

HINT = (
    "start containerd (`sudo systemctl start containerd`) and check it with `sudo ctr version`; "
    "if it listens elsewhere, give --address SOCKET (or set CONTAINERD_ADDRESS)"
)


@dataclass(frozen=True)
class ContainerdTarget:
    """Where images go: containerd's socket, the namespace, and the snapshotter to unpack for."""

    address: str
    namespace: str
    snapshotter: str

    @classmethod
    def from_options(
        cls,
        address: str | None,
        namespace: str | None,
        snapshotter: str | None,
        environ: Mapping[str, str] = os.environ,
    ) -> ContainerdTarget:
        """The options given, else ctr's own variables (CONTAINERD_ADDRESS, CONTAINERD_NAMESPACE,
        CONTAINERD_SNAPSHOTTER), else the socket of a system containerd, ``k8s.io`` and
        ``overlayfs``; an :class:`InputError` for a value that is not one."""
        addr = address or environ.get("CONTAINERD_ADDRESS") or DEFAULT_ADDRESS
        if addr.startswith("unix://"):
            addr = addr[len("unix://") :]
        if not addr or "\0" in addr or any(c.isspace() for c in addr):
            raise InputError(
                f"--address {addr!r} is not a socket path",
                hint=f"give containerd's socket, e.g. --address {DEFAULT_ADDRESS}",
            )
        ns = namespace or environ.get("CONTAINERD_NAMESPACE") or DEFAULT_NAMESPACE
        if not _NAMESPACE.match(ns):
            raise InputError(
                f"--namespace {ns!r} is not a containerd namespace",
                hint="letters and digits, with . _ - between them; Kubernetes uses k8s.io",
            )
        snap = snapshotter or environ.get("CONTAINERD_SNAPSHOTTER") or DEFAULT_SNAPSHOTTER
        if not _SNAPSHOTTER.match(snap):
            raise InputError(
                f"--snapshotter {snap!r} is not a snapshotter name",
                hint="e.g. overlayfs (the default) or native; `ctr plugins ls` lists them",
            )
        return cls(addr, ns, snap)

    def ctr(self, ctr: str, *args: str) -> list[str]:
        """The argv of ``ctr`` on this socket and namespace."""
        return [ctr, "--address", self.address, "--namespace", self.namespace, *args]

    def import_argv(self, ctr: str) -> list[str]:
        """``ctr images import`` of an archive on stdin, unpacked for the snapshotter."""
        return self.ctr(ctr, "images", "import", "--snapshotter", self.snapshotter, "-")

    def where(self) -> str:
        return f"containerd at {self.address} (namespace {self.namespace})"

    def to_json(self) -> dict[str, str]:
        return {
            "address": self.address,
            "namespace": self.namespace,
            "snapshotter": self.snapshotter,
        }


# ============================================================================ pure


def chain_id(diff_ids: list[str]) -> str:
    """The OCI ChainID of a layer stack: what containerd names the unpacked snapshot."""
    if not diff_ids:
        raise ValueError("an image without layers has no chain")
    chain = diff_ids[0]
    for d in diff_ids[1:]:
        chain = "sha256:" + hashlib.sha256(f"{chain} {d}".encode()).hexdigest()
    return chain


def parse_snapshotters(text: str) -> dict[str, str]:
    """``ctr plugins ls``: snapshotter -> its status (``ok``, ``skip``, ``error``)."""
    out: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 4 and cols[0] == SNAPSHOTTER_PLUGIN:
            out[cols[1]] = cols[-1]
    return out


def parse_images(text: str) -> dict[str, str]:
    """``ctr images ls``: image name -> the digest it points at."""
    out: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 3 and SHA256_DIGEST.match(cols[2]):
            out[cols[0]] = cols[2]
    return out


def parse_plugin_roots(text: str) -> dict[str, str]:
    """``ctr plugins ls --detailed``: ``TYPE/ID`` -> the ``root`` folder the plugin exports."""
    out: dict[str, str] = {}
    kind = ident = None
    for line in text.splitlines():
        cols = line.split()
        if len(cols) == 2 and cols[0] == "Type:":
            kind, ident = cols[1], None
        elif len(cols) == 2 and cols[0] == "ID:":
            ident = cols[1]
        elif len(cols) == 2 and cols[0] == "root" and kind and ident:
            out[f"{kind}/{ident}"] = cols[1]
    return out


def server_version(text: str) -> str | None:
    """The server's version from ``ctr version``."""
    server = text.split("Server:", 1)
    if len(server) < 2:
        return None
    m = re.search(r"Version:\s*(\S+)", server[1])
    return m.group(1) if m else None


def archive_index(entries: list[tuple[str, Blob]]) -> bytes:
    """The archive's ``index.json``: each (name, manifest) as a descriptor named for
    ``ctr images import``; no platform (the manifest is the platform's already)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": layout.OCI_INDEX,
        "manifests": [
            {
                "mediaType": blob.media_type,
                "digest": blob.digest,
                "size": blob.size,
                "annotations": {NAME_ANNOTATION: name},
            }
            for name, blob in entries
        ],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def archive_blobs(
    images: list[BundleImage], held: frozenset[str] = frozenset()
) -> list[tuple[BundleImage, Blob, str]]:
    """Every blob the archive holds, each once: (the image that brings it, blob, what it is).
    Layers in ``held`` (containerd has them) are left out; manifests and configs never are."""
    seen: set[str] = set()
    out: list[tuple[BundleImage, Blob, str]] = []
    for image in images:
        m = image.manifest
        for blob, what in [(m.blob, "manifest"), (m.config, "image config")] + [
            (b, "layer") for b in m.layers
        ]:
            if blob.digest not in seen and not (what == "layer" and blob.digest in held):
                seen.add(blob.digest)
                out.append((image, blob, what))
    return out


def archive_size(blobs: list[tuple[BundleImage, Blob, str]], index: bytes) -> int:
    return (
        tarstream.member_size(len(layout.OCI_LAYOUT_CONTENT))
        + sum(tarstream.member_size(b.size) for _, b, _ in blobs)
        + tarstream.member_size(len(index))
        + len(tarstream.END)
    )


def oci_archive(
    bundle: Bundle,
    blobs: list[tuple[BundleImage, Blob, str]],
    index: bytes,
    run: str,
    sent: Callable[[int], None],
    dest: str,
) -> Iterator[bytes]:
    """The OCI archive, built while it streams: every blob verified as it passes."""
    yield tarstream.member(layout.OCI_LAYOUT, layout.OCI_LAYOUT_CONTENT)
    for image, blob, what in blobs:
        yield tarstream.header(f"blobs/{run}/{blob.digest.split(':', 1)[1]}", blob.size)
        for chunk in verified_chunks(bundle, image.ref, blob, what, dest):
            sent(len(chunk))
            yield chunk
        yield tarstream.padding(blob.size)
    yield tarstream.member(layout.INDEX_JSON, index)  # last: nothing is named before it
    yield tarstream.END


# ============================================================================ containerd


def check_containerd(target: ContainerdTarget) -> str:
    """containerd answers on its socket and has the snapshotter: before any blob is read.
    Returns the server's version; an :class:`EngineError` naming the socket and the cause."""
    ctr = tool_path("ctr", "containerd", "containerd")
    if not os.path.exists(target.address):
        raise EngineError(f"no containerd socket at {target.address}", hint=HINT)
    what = f"{target.where()} does not answer"
    version = server_version(
        run_tool(target.ctr(ctr, "version"), what=what, hint=HINT, timeout=ASK_TIMEOUT)
    )
    plugins = run_tool(target.ctr(ctr, "plugins", "ls"), what=what, hint=HINT, timeout=ASK_TIMEOUT)
    snapshotters = parse_snapshotters(plugins)
    status = snapshotters.get(target.snapshotter)
    if status != "ok":
        usable = sorted(n for n, s in snapshotters.items() if s == "ok")
        raise EngineError(
            f"{target.where()}: snapshotter {target.snapshotter!r} is "
            + (f"not usable (plugin status {status})" if status else "not there"),
            hint=f"give --snapshotter with one that is: {', '.join(usable) or 'none'} "
            "(Kubernetes nodes use the one their CRI config names)",
        )
    return version or "?"


def _diff_ids(bundle: Bundle, image: BundleImage) -> list[str]:
    """The config's ``rootfs.diff_ids``, read bounded and checked against the config digest."""
    config = image.manifest.config
    raw = verified_read(bundle, image.ref, config, "image config")
    try:
        doc = json.loads(raw)
        ids = doc["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError):
        raise ImageError(
            f"image {image.ref}: its config {config.digest} has no rootfs.diff_ids"
        ) from None
    if not isinstance(ids, list) or not all(
        isinstance(i, str) and SHA256_DIGEST.match(i) for i in ids
    ):
        raise ImageError(f"image {image.ref}: its config {config.digest} has no valid diff_ids")
    return list(ids)


def _check_room(
    bundle: Bundle, ctr: str, target: ContainerdTarget, todo: list[BundleImage], rep: Reporter
) -> None:
    """The content store and the snapshotter's folder have room for the blobs and the unpacked
    layers (the native snapshotter keeps a full copy per layer, as Docker's vfs): each is checked
    for the whole, which is exact when they share a disk (the usual case) and cautious when not."""
    needed = room_needed(bundle, todo, "vfs" if target.snapshotter == "native" else None)
    roots = parse_plugin_roots(
        run_tool(
            target.ctr(ctr, "plugins", "ls", "--detailed"),
            what=f"{target.where()} does not answer",
            hint=HINT,
            timeout=ASK_TIMEOUT,
        )
    )
    for plugin in (
        "io.containerd.content.v1/content",
        f"{SNAPSHOTTER_PLUGIN}/{target.snapshotter}",
    ):
        check_room(
            roots.get(plugin),
            needed,
            f"importing {len(todo)} image(s) into containerd's {plugin}, unpacked for "
            f"{target.snapshotter}",
            "free space there (`ctr -n NAMESPACE images rm` of unused images, then containerd's "
            "garbage collection) or move containerd's root to a larger disk",
            rep,
        )


def _has_snapshot(ctr: str, target: ContainerdTarget, key: str | None) -> bool:
    if key is None:
        return True
    try:
        run_tool(
            target.ctr(ctr, "snapshots", "--snapshotter", target.snapshotter, "info", key),
            what="",
            hint="",
            timeout=ASK_TIMEOUT,
        )
    except EngineError:
        return False
    return True


def _content_now(ctr: str, target: ContainerdTarget) -> frozenset[str]:
    """The blobs containerd holds in the namespace."""
    out = run_tool(
        target.ctr(ctr, "content", "ls", "--quiet"),
        what=f"{target.where()}: listing its content",
        hint=HINT,
        timeout=ASK_TIMEOUT,
    )
    return frozenset(d for d in out.split() if SHA256_DIGEST.match(d))


def _import(
    bundle: Bundle,
    ctr: str,
    target: ContainerdTarget,
    todo: list[BundleImage],
    index: bytes,
    held: frozenset[str],
    count: int,
    reporter: Reporter,
) -> dict[str, int]:
    """One ``ctr images import`` of ``todo``, without the layers containerd ``held``; the bytes
    streamed per image."""
    blobs = archive_blobs(todo, held)
    sent_by: dict[str, int] = {}
    for image, blob, _ in blobs:
        sent_by[image.ref] = sent_by.get(image.ref, 0) + blob.size
    reporter.phase(
        f"import {count} image(s) into containerd ({target.namespace}, unpacked for "
        f"{target.snapshotter})",
        archive_size(blobs, index),
    )
    dest = target.where()
    feed_tool(
        target.import_argv(ctr),
        oci_archive(bundle, blobs, index, secrets.token_hex(8), reporter.advance, dest),
        what=f"importing into {dest}",
        hint="containerd's log (`journalctl -u containerd`) says more; " + HINT,
        timeout=IMPORT_TIMEOUT,
    )
    return sent_by


def _images_now(ctr: str, target: ContainerdTarget) -> dict[str, str]:
    return parse_images(
        run_tool(
            target.ctr(ctr, "images", "ls"),
            what=f"{target.where()}: listing its images",
            hint=HINT,
            timeout=ASK_TIMEOUT,
        )
    )


def load_into_containerd(
    bundle: Bundle, target: ContainerdTarget, *, progress: Reporter | None = None
) -> list[RuntimeImage]:
    """Import every image of ``bundle`` into containerd (see the module): named by its normalized
    reference, pointing at its manifest digest, unpacked for ``target.snapshotter``.

    A blob that does not match its digest raises :class:`BlobMismatch` and containerd keeps no
    image of this import; containerd that does not answer, or refuses, raises
    :class:`EngineError` with ctr's own words; an image that is not as expected afterwards
    raises :class:`CheckFailed`.
    """
    reporter = progress or Reporter()
    images = image_entries(bundle)
    if not images:
        return []
    ctr = tool_path("ctr", "containerd", "containerd")
    host = host_platform()
    for image in images:
        check_platform(image, host, target.where())
    names = {i.ref: runtime_name(i.ref, i.manifest_digest) for i in images}
    diff_ids = {i.ref: _diff_ids(bundle, i) for i in images}
    # what the unpacked image is in the snapshotter (an image without layers has none)
    chains = {ref: chain_id(ids) if ids else None for ref, ids in diff_ids.items()}
    for i in images:
        for j in images:
            if names[i.ref] == names[j.ref] and i.manifest_digest != j.manifest_digest:
                raise ImageError(
                    f"images {i.ref} and {j.ref} of the bundle are both {names[i.ref]} in "
                    "containerd, with other manifests"
                )
    have = _images_now(ctr, target)
    present = {
        i.ref
        for i in images
        if have.get(names[i.ref]) == i.manifest_digest and _has_snapshot(ctr, target, chains[i.ref])
    }
    todo = [i for i in images if i.ref not in present]
    sent_by: dict[str, int] = {}
    if todo:
        _check_room(bundle, ctr, target, todo, reporter)
        entries: list[tuple[str, Blob]] = []
        for i in todo:
            if all(n != names[i.ref] for n, _ in entries):
                entries.append((names[i.ref], i.manifest.blob))
        index = archive_index(entries)
        held = _content_now(ctr, target)
        try:
            sent_by = _import(bundle, ctr, target, todo, index, held, len(entries), reporter)
        except EngineError:
            if not held:
                raise
            # a layer containerd had was collected meanwhile (nothing held it): all of them again
            reporter.note("containerd lost layers it had during the import; sending them all")
            sent_by = _import(bundle, ctr, target, todo, index, frozenset(), len(entries), reporter)
        have = _images_now(ctr, target)
    out: list[RuntimeImage] = []
    for i in images:
        name = names[i.ref]
        if have.get(name) != i.manifest_digest:
            raise CheckFailed(
                f"image {i.ref}: after the import, {target.where()} names {name} "
                f"{have.get(name) or 'nothing'}, not the manifest {i.manifest_digest}",
                hint="check `ctr -n NAMESPACE images ls`; containerd's log says more",
            )
        if i.ref not in present and not _has_snapshot(ctr, target, chains[i.ref]):
            raise CheckFailed(
                f"image {i.ref}: imported into {target.where()} but not unpacked for the "
                f"{target.snapshotter} snapshotter (no snapshot {chains[i.ref]})",
                hint="check the snapshotter (`ctr plugins ls`) and containerd's log",
            )
        status = "present" if i.ref in present else "loaded"
        out.append(
            RuntimeImage(
                i.ref, name, i.manifest_digest, i.config_digest, status,
                sent_by.get(i.ref, 0), target.to_json(),
            )
        )  # fmt: skip
    return out
