"""Command functions for images at the site; the CLI (packager/cli.py) wires them.

``airgap images BUNDLE [--json]``          :func:`images_command`
``airgap images BUNDLE --load``            :func:`load_command` (optional wiring)
``airgap images BUNDLE --push HOST:PORT``  :func:`push_command` (optional wiring)

Each returns the exit status (0) or raises a :class:`packager.errors.AirgapError`, which the CLI's
``main`` renders (exit 1 for a failed check such as a corrupt blob, 2 for input and service errors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape

from packager.bundle.reader import open_bundle
from packager.cli import render
from packager.site.images import (
    BundleImage,
    connect_docker,
    image_entries,
    load_into_docker,
    push_to_registry,
)


def images_report(bundle: Path) -> dict[str, Any]:
    """The ``--json`` document of ``airgap images``: the bundle and its images."""
    with open_bundle(bundle) as b:
        return _report(bundle, image_entries(b))


def _report(bundle: Path, images: list[BundleImage]) -> dict[str, Any]:
    return {
        "bundle": str(bundle),
        "images": [i.to_json() for i in images],
        "size": sum(i.size for i in images),
    }


def _image_lines(i: BundleImage) -> list[str]:
    lines = [
        f"[bold]{escape(i.ref)}[/bold]  {escape(i.role)}  {i.platform}  "
        f"{render.human_size(i.size)}  {len(i.layers)} layer{'s' if len(i.layers) != 1 else ''}",
        f"  manifest {i.manifest_digest}  [dim]{escape(i.manifest.blob.media_type)}[/dim]",
        f"  config   {i.config_digest}",
    ]
    if i.index is not None:
        platforms = ", ".join(sorted({m.platform for m in i.manifests if m.platform}))
        lines.append(f"  index    {i.index.digest}  [dim](kept: {escape(platforms)})[/dim]")
    elif i.chosen_from:
        lines.append(f"  index    {i.chosen_from}  [dim](chosen from; not in the bundle)[/dim]")
    return lines


def images_command(bundle: Path, as_json: bool) -> int:
    """``airgap images BUNDLE [--json]``: list the images with platform, size and digests."""
    with open_bundle(bundle) as b:
        images = image_entries(b)
    doc = _report(bundle, images)
    if as_json:
        render.emit_json(doc)
        return 0
    if not images:
        render.stdout.print(f"{escape(str(bundle))}: no container images")
        return 0
    for i in images:
        for line in _image_lines(i):
            render.stdout.print(line)
    render.stdout.print(
        f"{len(images)} image{'s' if len(images) != 1 else ''}, "
        f"{render.human_size(doc['size'])} (layers as stored)"
    )
    return 0


def load_command(bundle: Path, as_json: bool, *, timeout: float = 60.0) -> int:
    """Load every image into the Docker engine at $DOCKER_HOST, tagged with its reference."""
    client = connect_docker(timeout)
    try:
        with open_bundle(bundle) as b, render.reporter(enabled=not as_json) as rep:
            loaded = load_into_docker(b, client, progress=rep)
    finally:
        client.close()
    if as_json:
        render.emit_json({"bundle": str(bundle), "loaded": [x.to_json() for x in loaded]})
        return 0
    for x in loaded:
        render.stdout.print(
            f"{x.status:<7} {escape(x.tag or x.ref)}  {x.image_id}"
            + (f"  {render.human_size(x.bytes_sent)} streamed" if x.bytes_sent else "")
        )
    return 0


def push_command(
    bundle: Path,
    registry: str,
    *,
    insecure: bool,
    as_json: bool,
    retries: int = 3,
    timeout: float = 60.0,
) -> int:
    """Push every image to REGISTRY (HOST[:PORT]) with its digests unchanged."""
    with open_bundle(bundle) as b, render.reporter(enabled=not as_json) as rep:
        pushed = push_to_registry(
            b, registry, insecure=insecure, retries=retries, progress=rep, timeout=timeout
        )
    if as_json:
        render.emit_json(
            {"bundle": str(bundle), "registry": registry, "pushed": [p.to_json() for p in pushed]}
        )
        return 0
    for p in pushed:
        render.stdout.print(
            f"pushed {escape(p.destination)}  {p.digest}  "
            f"{len(p.uploaded)} blob(s) sent ({render.human_size(p.bytes_uploaded)}), "
            f"{len(p.present)} already there"
        )
    return 0
