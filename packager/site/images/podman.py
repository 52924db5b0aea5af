"""Loading the images of a bundle into Podman's storage: :func:`load_into_podman`.

Podman is daemonless: its storage is whatever ``podman`` is configured to use here (root's or the
user's, or ``CONTAINERS_STORAGE_CONF``). Each image is pulled by its manifest digest from a
registry served on loopback for the length of the load (:mod:`.loopback`: why not ``podman load``
is said there), streamed from the bundle and verified as it streams; then it is tagged with its
normalized reference and the loopback name is dropped. Podman's image ID must equal the config
digest and its digest the manifest digest. An image Podman has already (its ID, with this manifest
digest) is only tagged. Before pulling, the room in Podman's graph root is checked as for Docker.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

from packager.bundle.reader import Bundle
from packager.errors import CheckFailed
from packager.oci.reference import Platform
from packager.site.images.docker import EngineError, room_needed
from packager.site.images.listing import BundleImage, image_entries
from packager.site.images.loopback import LoopbackRegistry
from packager.site.images.runtime import (
    RuntimeImage,
    check_platform,
    check_room,
    run_tool,
    runtime_name,
    said,
    tool_path,
)
from packager.util.progress import Reporter

#: seconds Podman may take to pull and unpack one image
PULL_TIMEOUT = 3 * 3600.0
ASK_TIMEOUT = 120.0

HINT = (
    "check Podman with `podman info`: its storage must be usable by this user "
    "(CONTAINERS_STORAGE_CONF points at another storage.conf)"
)


@dataclass(frozen=True)
class PodmanStore:
    """What ``podman info`` says about the storage images go into."""

    version: str
    graph_root: str | None
    driver: str | None
    platform: Platform | None

    def where(self) -> str:
        return f"Podman's storage {self.graph_root or '(unknown)'}"


def parse_info(text: str) -> PodmanStore:
    """``podman info --format json`` -> :class:`PodmanStore`; an :class:`EngineError` when it is
    not that document."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise EngineError("`podman info --format json` did not answer a JSON object", hint=HINT)

    def text_at(section: str, key: str) -> str | None:
        part = doc.get(section)
        value = part.get(key) if isinstance(part, dict) else None
        return value if isinstance(value, str) and value else None

    return PodmanStore(
        version=text_at("version", "Version") or "?",
        graph_root=text_at("store", "graphRoot"),
        driver=text_at("store", "graphDriverName"),
        platform=Platform.of(text_at("host", "os"), text_at("host", "arch")),
    )


def check_podman() -> PodmanStore:
    """Podman runs and its storage answers: before any blob is read."""
    podman = tool_path("podman", "podman", "Podman")
    return parse_info(
        run_tool(
            [podman, "info", "--format", "json"],
            what="Podman cannot be used",
            hint=HINT,
            timeout=ASK_TIMEOUT,
        )
    )


def pull_argv(podman: str, reference: str) -> list[str]:
    """Pull one image from the loopback registry: plain HTTP there, the ID on stdout."""
    return [podman, "pull", "--quiet", "--tls-verify=false", reference]


def _inspect(podman: str, image_id: str) -> dict[str, Any] | None:
    """``podman image inspect`` of an image ID; None when Podman has no such image."""
    try:
        r = subprocess.run(
            [podman, "image", "exists", image_id],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=ASK_TIMEOUT, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineError(
            f"Podman does not answer `podman image exists`: {exc}", hint=HINT
        ) from None
    if r.returncode == 1:
        return None
    out = run_tool(
        [podman, "image", "inspect", "--format", "json", image_id],
        what=f"Podman: inspecting image {image_id}",
        hint=HINT,
        timeout=ASK_TIMEOUT,
    )
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    if not isinstance(doc, list) or len(doc) != 1 or not isinstance(doc[0], dict):
        raise EngineError(f"Podman: `podman image inspect {image_id}` gave no image", hint=HINT)
    found: dict[str, Any] = doc[0]
    return found


def has_manifest(found: dict[str, Any], manifest_digest: str) -> bool:
    """Podman's image carries this manifest digest (its Digest, or one of its RepoDigests)."""
    if found.get("Digest") == manifest_digest:
        return True
    repo_digests = found.get("RepoDigests")
    return isinstance(repo_digests, list) and any(
        isinstance(d, str) and d.endswith("@" + manifest_digest) for d in repo_digests
    )


def _check_room(bundle: Bundle, store: PodmanStore, todo: list[BundleImage], rep: Reporter) -> None:
    check_room(
        store.graph_root,
        room_needed(bundle, todo, store.driver),
        f"loading {len(todo)} image(s) into {store.where()} (driver {store.driver or '?'})",
        "free space there (`podman system prune`, remove unused images) or move Podman's "
        "graphroot to a larger disk; then run the load again",
        rep,
    )


def load_into_podman(
    bundle: Bundle, store: PodmanStore, *, progress: Reporter | None = None
) -> list[RuntimeImage]:
    """Load every image of ``bundle`` into Podman's storage (see the module), tagged with its
    normalized reference (a reference with only a digest gets no tag, as in Docker).

    A blob that does not match its digest raises :class:`BlobMismatch` and Podman keeps nothing
    of that image; Podman refusing raises :class:`EngineError` with its own words; an image whose
    ID or digest is not the bundle's afterwards raises :class:`CheckFailed`.
    """
    reporter = progress or Reporter()
    images = image_entries(bundle)
    if not images:
        return []
    podman = tool_path("podman", "podman", "Podman")
    for image in images:
        check_platform(image, store.platform, store.where())
    present = {
        i.manifest_digest
        for i in images
        if (found := _inspect(podman, i.config_digest)) is not None
        and has_manifest(found, i.manifest_digest)
    }
    todo: list[BundleImage] = []
    for i in images:
        if i.manifest_digest not in present and all(
            t.manifest_digest != i.manifest_digest for t in todo
        ):
            todo.append(i)
    if todo:
        _check_room(bundle, store, todo, reporter)
    sent: dict[str, int] = {}
    out: list[RuntimeImage] = []
    where = {"store": store.graph_root or ""}
    for image in images:
        status = "present"
        pulled_as = None
        if image.manifest_digest not in present:
            sent[image.ref], pulled_as = _pull(bundle, podman, image, store, reporter)
            present.add(image.manifest_digest)
            status = "loaded"
        name = _tag(podman, image)
        if pulled_as is not None:  # the loopback name goes once the image has its own
            run_tool(
                [podman, "untag", image.config_digest.split(":", 1)[1], pulled_as],
                what=f"image {image.ref}: Podman could not drop the name {pulled_as}",
                hint=HINT,
                timeout=ASK_TIMEOUT,
            )
        found = _inspect(podman, image.config_digest)
        if found is None or not has_manifest(found, image.manifest_digest):
            raise CheckFailed(
                f"image {image.ref}: after the load, Podman has no image {image.config_digest} "
                f"with the manifest {image.manifest_digest}",
                hint="check `podman image inspect`; Podman changed the image while loading it",
            )
        out.append(
            RuntimeImage(
                image.ref, name, image.manifest_digest, image.config_digest, status,
                sent.get(image.ref, 0), where,
            )
        )  # fmt: skip
    return out


def _pull(
    bundle: Bundle, podman: str, image: BundleImage, store: PodmanStore, reporter: Reporter
) -> tuple[int, str]:
    """Pull one image from a loopback registry; the bytes it streamed and the name it got."""
    reporter.phase(f"load {image.ref} into Podman", image.manifest.blob.size + image.size)
    counted = 0

    def count(n: int) -> None:
        nonlocal counted
        counted += n
        reporter.advance(n)

    with LoopbackRegistry(bundle, [image], count, store.where()) as registry:
        reference = registry.reference(image.manifest_digest)
        try:
            r = subprocess.run(
                pull_argv(podman, reference),
                stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                timeout=PULL_TIMEOUT, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EngineError(
                f"image {image.ref}: `podman pull` failed: {exc}", hint=HINT
            ) from None
        if registry.failure is not None:
            raise registry.failure
        if r.returncode != 0:
            raise EngineError(
                f"image {image.ref}: Podman refused it (exit {r.returncode}): "
                f"{said(r.stderr or r.stdout)}",
                hint=HINT,
            )
    got = (r.stdout.strip().splitlines() or [""])[-1]
    if "sha256:" + got != image.config_digest:
        raise CheckFailed(
            f"image {image.ref}: Podman's image ID is {got or 'missing'}, the bundle's config "
            f"digest is {image.config_digest}",
            hint="Podman changed the image while loading it; report this with `podman info`",
        )
    return counted, reference


def _tag(podman: str, image: BundleImage) -> str | None:
    """Tag the image with its normalized reference (moving the tag if it named another image)."""
    name = runtime_name(image.ref, image.manifest_digest)
    if "@" in name:  # a reference with only a digest: no tag, as docker does
        return None
    run_tool(
        [podman, "tag", image.config_digest.split(":", 1)[1], name],
        what=f"image {image.ref}: Podman could not tag it {name}",
        hint=HINT,
        timeout=ASK_TIMEOUT,
    )
    return name
