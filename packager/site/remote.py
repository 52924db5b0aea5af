"""`airgap install oci://HOST/REPO:TAG`: a node installs a published bundle from the site registry.

The bundle is pulled (:mod:`packager.bundle.pull`: signatures first) into
``PREFIX/.pull/<files manifest hex>/``, blobs the prefix's store holds hard-linked from it, the
rest fetched; then the ordinary install (:func:`packager.site.install.install_bundle`) verifies
the folder exactly as it verifies a tar and installs it. An installed version that is current
fetches nothing beyond its descriptor and signatures. A killed run leaves the folder: the next
run keeps its whole blobs and fetches the rest; the folder is removed once installed.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from packager.bundle import layout
from packager.bundle.pull import Puller, PullResult, remove_folder
from packager.errors import CheckFailed
from packager.oci.registry import OciLocation, RegistryOptions
from packager.signing.trust import Policy
from packager.site import trust as site_trust
from packager.site.install import InstallOptions, InstallResult, install_bundle, needs_writing
from packager.util.progress import Reporter


def install_from_registry(
    loc: OciLocation,
    prefix_path: Path,
    policy: Policy | None,
    options: InstallOptions,
    registry: RegistryOptions,
    *,
    reporter: Reporter | None = None,
) -> InstallResult:
    rep = reporter or Reporter()
    t0 = time.perf_counter()
    policy = site_trust.policy_for_install(prefix_path, policy)
    with Puller(loc, policy, registry, reporter=rep) as puller:
        pulled = puller.signed()
        doc = pulled.descriptor
        carries_trust = any(f.path == layout.CARRIED_TRUST for f in doc.files)
        want = (
            options.docker
            or options.registry is not None
            or carries_trust
            or needs_writing(
                prefix_path,
                layout.site_unit(doc.bundle.name, doc.bundle.target),
                doc.bundle.version,
                pulled.digest,
                options,
            )
        )
        folder = _pull_folder(prefix_path, pulled)
        store = prefix_path / layout.SITE_BLOBS_DIR
        puller.content(
            pulled, folder, store=store if store.is_dir() else None, files=want, blobs=want
        )
    options = dataclasses.replace(options, adopt=True)
    try:
        result = install_bundle(folder, prefix_path, policy, options, reporter=rep)
    except CheckFailed:
        remove_folder(folder)  # not verified or refused: a re-run would be refused again
        raise
    remove_folder(folder)
    result.bundle = str(loc)
    result.pulled = pulled.to_json()
    result.seconds = time.perf_counter() - t0  # the pull included
    return result


def _pull_folder(prefix_path: Path, pulled: PullResult) -> Path:
    top = prefix_path / layout.SITE_PULL_DIR
    top.mkdir(parents=True, exist_ok=True, mode=0o700)
    return top / pulled.index_digest.split(":", 1)[1]
