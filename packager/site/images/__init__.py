"""Container images at the site: list them, load them into Docker, containerd or Podman, push them
to a registry.

Everything here reads the bundle as it travels (a layout folder, one ``.airgap.tar``, its parts
index or any part, through :func:`packager.bundle.reader.open_bundle`) and never unpacks it:
manifests are read with bounded sizes and their sha256 checked; configs and layers are streamed
member by member, in chunks of :data:`CHUNK_SIZE`, hashed while they stream.

:mod:`.listing`
    :func:`image_entries`: the images ``index.json`` lists, read from their manifests
    (:class:`BundleImage`), and the verified stream of a blob that loading and pushing share.
:mod:`.docker`
    :func:`load_into_docker`: a docker-archive built on the fly and streamed into the engine,
    after :func:`check_engine_room`; :func:`connect_docker`.
:mod:`.registry`
    :func:`push_to_registry`: every blob and manifest with its digest unchanged, then the tag.
:mod:`.containerd`
    :func:`load_into_containerd`: an OCI archive built on the fly and streamed into
    ``ctr images import``, unpacked for the snapshotter, after :func:`check_containerd`.
:mod:`.podman`
    :func:`load_into_podman`: each image pulled by digest from :mod:`.loopback`, a registry on
    127.0.0.1 that serves the bundle for the length of the load, after :func:`check_podman`.
:mod:`.runtime`, :mod:`.tarstream`
    what those share: running ``ctr`` and ``podman``, tar pieces built while they stream.
"""

from __future__ import annotations

from packager.oci.registry import RegistryError
from packager.site.images.docker import (
    EngineError,
    LoadedImage,
    RoomCheck,
    check_engine_room,
    connect_docker,
    load_into_docker,
)
from packager.site.images.listing import (
    CHUNK_SIZE,
    Blob,
    BundleImage,
    ImageError,
    ImageManifest,
    image_entries,
)
from packager.site.images.registry import (
    PushedImage,
    check_registry,
    push_to_registry,
)

__all__ = [
    "CHUNK_SIZE",
    "Blob",
    "BundleImage",
    "EngineError",
    "ImageError",
    "ImageManifest",
    "LoadedImage",
    "PushedImage",
    "RegistryError",
    "RoomCheck",
    "check_engine_room",
    "check_registry",
    "connect_docker",
    "image_entries",
    "load_into_docker",
    "push_to_registry",
]
