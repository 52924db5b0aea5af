"""`airgap install`: verify, refuse rollback, check space, stage, commit atomically, probe.

1. Cheap checks first (:class:`packager.bundle.verifier.Verifier`): parts, signatures, the
   descriptor, validity; then the install paths (:func:`packager.site.rules.plan_install`), the
   version rules against what the prefix holds, free space, and the container runtime (Docker,
   containerd or Podman) or the registry when asked for: a wrong key or an older version is
   refused in seconds, before any hashing.
   Then every blob is hashed: a bundle that fails leaves the prefix untouched (not even created).
2. The small files written (bundle.json, signatures, the covered airgap/ files) are the bytes
   that were verified, kept from the verification: nothing is read twice.
3. With the prefix locked: interrupted operations are recovered, and the installed versions
   decide (:func:`packager.site.rules.decide`): install, make current again, nothing to do, or
   refuse (older than current, or the same version with other content).
4. Free space (bytes and inodes) is checked for what the store lacks.
5. Blobs are streamed into ``DIR/blobs/sha256`` (hashed while written, capped at their signed
   size, fsynced, renamed), in parallel; the version's folder is laid out in
   ``DIR/.staging/<random>/tree`` as hard links into the store (copies where the file system has
   none), with ``.airgap/`` (bundle.json, signatures, attestation, sbom, probe).
6. Images go into Docker, containerd or Podman and a registry when asked, still before the commit: a failure there
   leaves the prefix as it was.
7. Commit: the folder is renamed to ``bundles/NAME/VERSION``, the receipt to
   ``receipts/NAME/VERSION.json``, ``current`` is switched by renaming a new link over it, and the
   audit log gets its entry. A crash before the receipt's rename leaves the previous state
   (the next run removes the folder its journal names); after it, the version is installed and a
   re-run finishes the switch.
8. The probe runs on the installed bundle (unless ``--no-probe``), after the lock is released.
   A probe FAIL makes the result's exit code 1; the install stays (it is complete and current):
   the operator reads the FAIL's remedy, fixes the host, and probes again, or rolls back.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packager import __version__
from packager.bundle import layout
from packager.bundle.reader import Bundle, FolderBundle, Member, TarBundle
from packager.bundle.verifier import Verifier, VerifyReport, failures_text
from packager.errors import AirgapError, CheckFailed, InputError
from packager.signing.trust import Policy
from packager.site import auditlog, checked, placing
from packager.site import trust as site_trust
from packager.site.have import StoreBlobs, check_present
from packager.site.hosttarget import target_for_host
from packager.site.prefix import Prefix, step
from packager.site.prestore import Prestore
from packager.site.receipts import InstalledFile, Receipt, record_images
from packager.site.rules import (
    Action,
    InstallPlan,
    UnsafeBundle,
    decide,
    plan_install,
)
from packager.site.safefs import Dir, SiteError, os_error
from packager.site.store import (
    BATCH_BLOBS,
    BATCH_BYTES,
    BATCH_MAX_BLOB,
    BlobStore,
    ContentMismatch,
    Span,
    sync_written,
)
from packager.util.progress import Reporter
from packager.util.timefmt import now_utc
from packager.util.units import human_size

if TYPE_CHECKING:
    from packager.site.images.containerd import ContainerdTarget

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: room kept free beyond what the install writes (receipts, the log, file system overhead)
SPACE_MARGIN = 8 * 1024 * 1024
MAX_META_BYTES = 64 * 1024 * 1024


class NotVerified(CheckFailed):
    """The bundle did not verify: nothing was written."""


class InstallRefused(CheckFailed):
    """Anti-rollback, the same version with other content, or an unsafe bundle: refused."""


@dataclass
class InstallOptions:
    docker: bool = False
    registry: str | None = None
    insecure: bool = False
    probe: bool = True
    allow_downgrade: bool = False
    #: also lay the weights out as a Hugging Face hub cache here (packager.site.hfcache)
    hf_cache: Path | None = None
    #: import the images into this containerd (packager.site.images.containerd)
    containerd: ContainerdTarget | None = None
    #: load the images into Podman's storage (packager.site.images.podman)
    podman: bool = False

    @property
    def runtime(self) -> str | None:
        """The one container runtime the images go into, if any."""
        if self.docker:
            return "docker"
        if self.containerd is not None:
            return "containerd"
        return "podman" if self.podman else None

    #: the bundle is a folder pulled into this prefix (packager.site.remote): its blobs go into
    #: the store by hard links (hashed again as linked), not copies
    adopt: bool = False
    #: which target of a combined bundle to install (packager.bundle.combined); for a
    #: single-target bundle, the target it must be for
    target: str | None = None


@dataclass
class InstallResult:
    bundle: Path | str  # a path, or the oci:// address it was pulled from
    prefix: Path
    name: str
    version: str
    target: str | None
    digest: str
    action: str  # installed | activated | unchanged
    previous: str | None  # the version that was current before
    signers: list[tuple[str, str]]
    files: int = 0
    install_bytes: int = 0
    blobs_written: int = 0
    blobs_present: int = 0
    bytes_written: int = 0
    linked: bool = True
    #: the modes and owner the bundle declares for its server (serve.install); None: the default
    modes: dict[str, Any] | None = None
    committed: bool = False  # the receipt is in place: the version is installed
    images: list[dict[str, Any]] = field(default_factory=list)
    probe: dict[str, Any] | None = None
    hf_cache: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    verify_seconds: float = 0.0
    seconds: float = 0.0
    #: install oci://...: what was fetched (packager.bundle.pull.PullResult.to_json)
    pulled: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        """0 installed (a probe WARN / NOT RUN included); 1 the probe FAILed or could not run."""
        if self.probe is not None and self.probe["exit_code"] not in (0, 3):
            return 1
        return 0

    @property
    def unit(self) -> str:
        return layout.site_unit(self.name, self.target)

    @property
    def version_dir(self) -> Path:
        return self.prefix / layout.SITE_BUNDLES_DIR / self.unit / self.version

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.exit_code == 0,
            "bundle": str(self.bundle),
            "prefix": str(self.prefix),
            "name": self.name,
            "version": self.version,
            "target": self.target,
            "installed_as": self.unit,
            "digest": self.digest,
            "action": self.action,
            "previous": self.previous,
            "current": self.version,
            "path": str(self.version_dir),
            "receipt": str(
                self.prefix
                / layout.SITE_RECEIPTS_DIR
                / self.unit
                / layout.receipt_name(self.version)
            ),
            "signers": [{"keyid": k, "name": n} for k, n in self.signers],
            "files": self.files,
            "install_bytes": self.install_bytes,
            "blobs_written": self.blobs_written,
            "blobs_present": self.blobs_present,
            "bytes_written": self.bytes_written,
            "hard_links": self.linked,
            "modes": self.modes,
            "images": self.images,
            "probe": self.probe,
            "hf_cache": self.hf_cache,
            "notes": self.notes,
            "verify_seconds": round(self.verify_seconds, 3),
            "seconds": round(self.seconds, 3),
            "pulled": self.pulled,
        }


def runtime_options(
    *,
    docker: bool,
    containerd: bool,
    podman: bool,
    address: str | None = None,
    namespace: str | None = None,
    snapshotter: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> tuple[bool, ContainerdTarget | None, bool]:
    """The runtime flags of `airgap install` checked: at most one runtime, containerd's options
    only with ``--containerd``; an :class:`InputError` (exit 2) saying which, else
    (docker, the containerd target, podman) for :class:`InstallOptions`."""
    chosen = [n for n, on in (("--docker", docker), ("--containerd", containerd),
                              ("--podman", podman)) if on]  # fmt: skip
    if len(chosen) > 1:
        raise InputError(
            f"{' and '.join(chosen)} were both given: the images go into one container runtime",
            hint="give one of --docker, --containerd, --podman (with --registry besides, if the "
            "images should also go to a registry); run the install again for another runtime",
        )
    given = [n for n, v in (("--address", address), ("--namespace", namespace),
                            ("--snapshotter", snapshotter)) if v is not None]  # fmt: skip
    if given and not containerd:
        raise InputError(
            f"{', '.join(given)} applies to --containerd only",
            hint="add --containerd, or leave the option out",
        )
    target = None
    if containerd:
        from packager.site.images.containerd import ContainerdTarget

        target = ContainerdTarget.from_options(address, namespace, snapshotter, environ)
    return docker, target, podman


def _workers() -> int:
    """Threads that store blobs: at least 4, so that the disk always has writes queued (large
    blobs go with O_DIRECT: each write waits for the disk); hashing takes the cores."""
    return min(8, max(4, os.cpu_count() or 4))


def not_verified(
    path: Path, report: VerifyReport, outcome: str = "nothing was installed"
) -> NotVerified:
    """The error for a bundle that did not verify: its failures and ``outcome``."""
    hint = "`airgap verify` lists every failure; get an intact copy of the bundle"
    store = report.base_checked_in
    if store is not None and any(f.subject.startswith(store + ":") for f in report.failures):
        hint = (
            "the site's store holds a damaged blob the delta needs: install the full bundle "
            "(it carries an intact copy); `airgap audit --site` names the versions that use it"
        )
    return NotVerified(f"{path} did not verify, {outcome}: {failures_text(report)}", hint=hint)


def install_bundle(
    path: Path,
    prefix_path: Path,
    policy: Policy | None,
    options: InstallOptions | None = None,
    *,
    reporter: Reporter | None = None,
) -> InstallResult:
    """Verify ``path`` against ``policy`` (None: the site's own, packager.site.trust) and install
    it under ``prefix_path`` (see the module).

    Raises :class:`NotVerified` / :class:`InstallRefused` (exit 1) with nothing written,
    :class:`SiteError` (exit 2) for a prefix that cannot be used (unsafe, full, unwritable).
    """
    try:
        return _install_bundle(path, prefix_path, policy, options, reporter=reporter)
    except (NotVerified, InstallRefused) as exc:
        _record_refusal(prefix_path, path, exc)
        raise


def _record_refusal(prefix_path: Path, path: Path, exc: CheckFailed) -> None:
    """A refused install is an event the site's log keeps (who tried what, and why), in a
    prefix that exists already; nothing else is written, and a log that cannot be written
    does not hide the refusal."""
    first = exc.message.splitlines()[0] if exc.message else type(exc).__name__
    detail = f"{path.name}: {first}"[:1000]
    try:
        with Prefix.open(prefix_path, create=False) as prefix:
            if prefix.root.kind(layout.SITE_AUDIT_LOG) is None:
                return  # not a site yet (or not one at all): nothing is created for a refusal
            with prefix.locked():
                auditlog.append(prefix.root, auditlog.REFUSED, None, None, None, detail)
    except (AirgapError, OSError):
        pass


def _install_bundle(
    path: Path,
    prefix_path: Path,
    policy: Policy | None,
    options: InstallOptions | None = None,
    *,
    reporter: Reporter | None = None,
) -> InstallResult:
    opts = options or InstallOptions()
    rep = reporter or Reporter()
    t0 = time.perf_counter()
    policy = site_trust.policy_for_install(prefix_path, policy)

    def choose(b: Bundle) -> str | None:
        return target_for_host(b, prefix_path, rep)

    # new large blobs are copied while they are verified (read once), unless they are adopted
    prestore = None if opts.adopt else Prestore(prefix_path)
    with (
        contextlib.ExitStack() as stack,
        Verifier(
            path, policy, reporter=rep, target=opts.target, choose_target=choose, copier=prestore
        ) as v,
    ):
        if prestore is not None:
            stack.callback(prestore.close)
        report = v.report
        if not v.preflight() or report.descriptor is None or report.digest is None:
            raise not_verified(path, report)
        chosen = v.target if opts.target is None else None
        b = v.bundle
        assert b is not None
        if report.descriptor.delta is not None:  # what it leaves out comes from the store
            v.base = stack.enter_context(
                contextlib.closing(_delta_base(path, prefix_path, v, opts))
            )
        signatures = [n for n in report.verified if n.startswith(layout.SIGNATURES_DIR + "/")]
        try:
            plan = plan_install(
                report.descriptor, signatures, layout.MODEL_SIGNATURE in b.members()
            )
        except UnsafeBundle as exc:
            raise InstallRefused(
                f"{path}: unsafe install paths, nothing was installed:\n  "
                + "\n  ".join(exc.problems[:20]),
                hint="the bundle's signer must fix its paths",
            ) from None
        if needs_writing(prefix_path, plan.unit, plan.version, report.digest, opts):
            _check_room_before(prefix_path, plan)
            _check_image_targets(opts)
            v.complete()
            if not report.ok:
                raise not_verified(path, report)
        result = InstallResult(
            path, prefix_path, plan.name, plan.version, plan.target, report.digest, "installed",
            None, report.signers, verify_seconds=report.seconds,
        )  # fmt: skip
        if chosen is not None:
            result.notes.append(
                f"a combined bundle: installed target {chosen}, the one this host's "
                "accelerators and platform fit (--target ID picks another)"
            )
        if report.descriptor.delta is not None:
            from packager.bundle.delta import not_carried

            base, left_out = report.descriptor.delta.base, not_carried(report.descriptor)
            result.notes.append(
                f"a delta from {base.name} {base.version}: {len(left_out)} blob(s) "
                f"({human_size(sum(x.size for x in left_out))}) are the store's"
            )
        with Prefix.open(prefix_path, create=True) as prefix, prefix.locked(reporter=rep):
            carried = _carried_trust(prefix, v)
            _install_locked(prefix, v, plan, opts, result, rep)
            if carried is not None:
                result.notes.append(carried.note)
                if carried.step is not None:
                    site_trust.write_site_policy(prefix, carried.policy, carried.step)
    if opts.hf_cache is not None and report.descriptor is not None:
        from packager.site.hfcache import layout_hf_cache

        rep.phase("laying out the Hugging Face cache")
        result.hf_cache = layout_hf_cache(prefix_path, report.descriptor, opts.hf_cache).to_json()
    if opts.probe and result.action != "unchanged":  # a no-op stays one (exit 0)
        rep.phase("probing")
        result.probe = run_probe(prefix_path, plan.unit)
    result.seconds = time.perf_counter() - t0
    if os.environ.get("AIRGAP_TEST_KILL_AFTER") is not None:  # TEST ONLY (see prefix.step)
        result.notes.append(f"test hook: {step.count} write steps")
    return result


def _delta_base(path: Path, prefix_path: Path, v: Verifier, opts: InstallOptions) -> StoreBlobs:
    """A delta installs only where the store holds every blob it leaves out (from any installed
    version); else it is refused here, before anything is hashed or written. Those blobs are
    hashed from the store by the verification (:class:`packager.site.have.StoreBlobs`)."""
    from packager.bundle.delta import missing, missing_files, needs_base

    doc = v.report.descriptor
    assert doc is not None and doc.delta is not None
    if opts.docker or opts.registry:
        raise InstallRefused(
            f"{path} is a delta: its image blobs are not all in it, so it cannot load images "
            "into Docker or a registry; nothing was installed",
            hint="install it without --docker/--registry, or install the full bundle",
        )
    store = StoreBlobs(prefix_path)
    absent, kit = missing(doc, store.has), missing_files(doc, store.has_kit)
    where = f"the store of {prefix_path}" + (" or its installed versions" if kit else "")
    if absent or kit:
        store.close()
        base = doc.delta.base
        raise InstallRefused(
            f"{path}: {needs_base(doc, absent, where, kit)}; nothing was installed",
            hint=f"install {base.name} {base.version} first, or install the full bundle",
        )
    return store


def _carried_trust(prefix: Prefix, v: Verifier) -> site_trust.CarriedTrust | None:
    """The signed trust policy the bundle carries (airgap/trust.json, a covered file), checked
    against the site's before anything is written (packager.site.trust.check_carried)."""
    report = v.report
    doc = report.descriptor
    assert doc is not None
    if not any(f.path == layout.CARRIED_TRUST for f in doc.files):
        return None
    if not report.blobs_checked:  # its bytes are verify's: complete it before anything is written
        v.complete()
        if not report.ok:
            raise not_verified(v.path, report)
    data = report.verified.get(layout.CARRIED_TRUST)
    if data is None:
        raise ContentMismatch(f"{layout.CARRIED_TRUST} was not verified; nothing was installed")
    b = v.bundle
    assert b is not None
    # every signature (verified keeps only those the current policy counted): the new policy
    # may count other keys; each is checked against bundle.json's verified bytes
    sigs = {
        n: b.read(n, 4096)
        for n, m in b.members().items()
        if layout.SIGNATURE_MEMBER.fullmatch(n) and m.kind == "file" and m.size <= 4096
    }
    try:
        return site_trust.check_carried(
            site_trust.site_policy(prefix), data, report.verified[layout.BUNDLE_JSON], sigs
        )
    except site_trust.TrustRefused as exc:
        raise InstallRefused(exc.message, hint=exc.hint) from None


def needs_writing(
    prefix_path: Path, name: str, version: str, digest: str, opts: InstallOptions
) -> bool:
    """The version rules against what the prefix holds now, before any hashing: an older
    version or the same version with other content is refused here (nothing written); False
    when nothing of the bundle will be written (already installed, or only made current again).
    The rules run again under the prefix's lock before anything changes."""
    if not prefix_path.exists():
        return True
    try:
        with Prefix.open(prefix_path, create=False) as prefix:
            installed = prefix.installed(name)
            current = prefix.current(name)
    except SiteError:
        return True  # an unusable prefix is named, with its reason, by the locked run
    decision = decide(
        version,
        digest,
        {v: r.digest for v, r in installed.items()},
        current,
        allow_downgrade=opts.allow_downgrade,
    )
    if decision.action is Action.REFUSE:
        raise InstallRefused(f"{name}: {decision.reason}; nothing was changed", hint=decision.hint)
    return decision.action is Action.INSTALL


def _check_room_before(prefix_path: Path, plan: InstallPlan) -> None:
    """Free space where the prefix is (or will be), for every blob: before hashing anything."""
    where = prefix_path
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        st = os.statvfs(where)
    except OSError:
        return
    need = sum(plan.blobs.values()) + plan.copy_bytes + SPACE_MARGIN
    free = st.f_bavail * st.f_frsize
    store = prefix_path / layout.SITE_BLOBS_DIR
    at = f"{store}{os.sep}"  # (50,000 blobs: a string and a stat each, not a Path)
    have = (
        sum(size for hexd, size in plan.blobs.items() if os.path.isfile(at + hexd))
        if store.is_dir()
        else 0
    )
    if free < need - have:
        raise SiteError(
            f"not enough free space in {where}: the install writes up to "
            f"{human_size(need - have - SPACE_MARGIN)}, {human_size(free)} free (keeping "
            f"{human_size(SPACE_MARGIN)} spare); nothing was changed",
            hint="free space there (`airgap gc --prefix` drops blobs no version uses), "
            "or install into a larger prefix",
        )


def _check_image_targets(opts: InstallOptions) -> None:
    """The container runtime answers and the registry is reachable, before hashing anything."""
    if opts.docker:
        from packager.site.images import connect_docker

        connect_docker(timeout=30).close()
    if opts.containerd is not None:
        from packager.site.images.containerd import check_containerd

        check_containerd(opts.containerd)
    if opts.podman:
        from packager.site.images.podman import check_podman

        check_podman()
    if opts.registry:
        from packager.site.images import check_registry

        check_registry(opts.registry, insecure=opts.insecure)


def _install_locked(
    prefix: Prefix,
    v: Verifier,
    plan: InstallPlan,
    opts: InstallOptions,
    result: InstallResult,
    rep: Reporter,
) -> None:
    b = v.bundle
    assert b is not None
    result.notes += prefix.prepare()
    installed = prefix.installed(plan.unit)
    current = prefix.current(plan.unit)
    result.previous = current
    decision = decide(
        plan.version,
        result.digest,
        {v: r.digest for v, r in installed.items()},
        current,
        allow_downgrade=opts.allow_downgrade,
    )
    if decision.action is Action.REFUSE:
        raise InstallRefused(
            f"{plan.unit}: {decision.reason}; nothing was changed", hint=decision.hint
        )
    if decision.action is Action.NOOP:
        result.action = "unchanged"
        result.notes.append(decision.reason)
        r = installed[plan.version]
        result.files, result.install_bytes, result.linked = len(r.files), r.size, r.linked
        result.images = _images(b, opts, rep)
        if result.images:
            _record_images(prefix, plan.unit, plan.version, result.images)
            auditlog.append(
                prefix.root, "images", plan.unit, plan.version, result.digest,
                _images_detail(result.images),
            )  # fmt: skip
        return
    if decision.action is Action.ACTIVATE:
        result.action = "activated"
        r = installed[plan.version]
        result.files, result.install_bytes, result.linked = len(r.files), r.size, r.linked
        result.images = _images(b, opts, rep)
        if result.images:
            _record_images(prefix, plan.unit, plan.version, result.images)
        prefix.switch_current(plan.unit, plan.version)
        action, detail = "activate", f"current: {current or 'none'} -> {plan.version}"
        if not any(
            e.get("action") == "install"
            and (e.get("name"), e.get("version"), e.get("digest"))
            == (plan.unit, plan.version, result.digest)
            for e in auditlog.read_entries(prefix.root)
        ):  # its install stopped after the receipt, before the switch: this run finishes it
            result.action, action = "installed", "install"
            detail = f"finished an install interrupted after its receipt; {detail}"
            result.notes.append("finished an earlier install that was interrupted")
        auditlog.append(prefix.root, action, plan.unit, plan.version, result.digest, detail)
        return
    with prefix.root.walk(layout.SITE_BUNDLES_DIR, create=True) as bd:
        nd = bd.maybe_sub(plan.unit)
        if nd is not None:
            with nd:
                if nd.kind(plan.version) is not None:
                    raise SiteError(
                        f"{nd.path_of(plan.version)} exists but {plan.unit} {plan.version} has "
                        "no receipt: not made by a complete airgap install; nothing was changed",
                        hint="move it away and run again",
                    )
    if not v.report.blobs_checked:  # the prefix changed since the first look: verify now
        v.complete()
        if not v.report.ok:
            raise not_verified(b.source, v.report)
    raw = v.report.verified[layout.BUNDLE_JSON]
    if isinstance(v.base, StoreBlobs) and v.base.changed():  # a delta's base, under the lock now
        raise ContentMismatch(
            f"{len(v.base.changed())} blob(s) of the store changed since they were checked "
            f"(first {v.base.changed()[0]}); nothing was installed",
            hint="run the install again: it checks them again",
        )
    store = BlobStore(prefix.root, create=True)
    try:
        present = {h: s for h, s in plan.blobs.items() if store.has(h, s)}
        missing = {h: s for h, s in plan.blobs.items() if h not in present}
        checked_already = set(v.base.good) if isinstance(v.base, StoreBlobs) else set()
        todo = {h: s for h, s in present.items() if h not in checked_already}
        confirmed: set[str] = set()
        if todo:  # linked, not written: their content is known before any link is made
            rep.phase("checking blobs already in the store", sum(todo.values()))
            record = checked.read_record(prefix.root)
            damaged, confirmed = check_present(store.dir, todo, record, rep.advance, _workers())
            missing.update(_restore(damaged, v, result))
        meta_bytes = sum(m.size or 4096 for m in plan.meta) + len(raw)
        _check_space(
            prefix,
            sum(missing.values()) + plan.copy_bytes + meta_bytes,
            # a hard link takes an inode on some file systems (tmpfs): count the files too
            len(missing) + len(plan.files) + len(plan.meta) + len(plan.dirs) + 8,
        )
        staging, sname = prefix.new_staging(
            {"op": "install", "name": plan.unit, "versions": [plan.version]}
        )
        try:
            with staging:
                _stage(
                    prefix, b, plan, v.report.verified, store, staging, missing, opts, result, rep,
                    v.copier if isinstance(v.copier, Prestore) else None,
                )  # fmt: skip
        except SiteError as exc:
            if not result.committed:
                was = f"{current} is still current" if current else "nothing was installed"
                exc.hint = f"{exc.hint + '; ' if exc.hint else ''}{was}"
            raise
        finally:
            result.notes += prefix.discard_staging(sname)
        _record_checked(prefix, store, set(missing) | confirmed, v, result)
    finally:
        store.close()


def _restore(damaged: dict[str, int], v: Verifier, result: InstallResult) -> dict[str, int]:
    """Store blobs that did not hash to their names: stored again from the bundle, which
    carries them (a delta's left-out blobs were checked by its verification already)."""
    doc = v.report.descriptor
    assert doc is not None
    if damaged and any(not doc.carried(b) for b in doc.blobs if b.hex in damaged):
        raise ContentMismatch(
            f"{len(damaged)} blob(s) of the store this delta needs are damaged (first "
            f"{min(damaged)}); nothing was installed",
            hint="`airgap audit --site` names them; install the full bundle",
        )
    if damaged:
        result.notes.append(
            f"{len(damaged)} blob(s) in the store did not hash to their names (damaged or "
            f"tampered: {', '.join(sorted(damaged)[:3])}) and were stored again from the bundle; "
            "versions installed before still link the damaged copies (`airgap audit --site`, "
            "`airgap repair`)"
        )
    return damaged


def _record_checked(
    prefix: Prefix, store: BlobStore, written: set[str], v: Verifier, result: InstallResult
) -> None:
    """Record the blobs whose content this install established (written, or found intact in
    the store: a delta's base blobs, the blobs already there) with their stat after linking
    (packager.site.checked): the next install reads none of them again unless they change."""
    good = written | (set(v.base.good) if isinstance(v.base, StoreBlobs) else set())
    try:
        checked.write_record(prefix.root, store.dir, good)
    except (OSError, SiteError) as exc:  # the install is done; the record only saves work
        result.notes.append(f"the store's record of checked blobs was not updated: {exc}")


def _check_space(prefix: Prefix, need_bytes: int, need_inodes: int) -> None:
    st = os.fstatvfs(prefix.root.fd)
    free = st.f_bavail * st.f_frsize
    need = need_bytes + SPACE_MARGIN
    if free < need:
        raise SiteError(
            f"not enough free space in {prefix.path}: the install writes {human_size(need_bytes)}, "
            f"{human_size(free)} free (keeping {human_size(SPACE_MARGIN)} spare); nothing was changed",
            hint="free space there (`airgap gc --prefix` drops blobs no version uses), "
            "or install into a larger prefix",
        )
    if st.f_files and st.f_favail < need_inodes:
        raise SiteError(
            f"not enough free inodes in {prefix.path}: the install makes up to {need_inodes} "
            f"files and folders, {st.f_favail} free; nothing was changed",
            hint="free inodes there (`airgap gc --prefix`), or install into another file system",
        )


def _stage(
    prefix: Prefix,
    b: Bundle,
    plan: InstallPlan,
    verified: dict[str, bytes],
    store: BlobStore,
    staging: Dir,
    missing: dict[str, int],
    opts: InstallOptions,
    result: InstallResult,
    rep: Reporter,
    prestore: Prestore | None = None,
) -> None:
    # blobs: the largest first, in parallel (hashlib and os.write release the GIL); those the
    # verification copied already (prestore) only get their names
    rep.phase("storing blobs", sum(missing.values()))
    todo = sorted(missing.items(), key=lambda kv: -kv[1])

    members = b.members()
    one_file = (
        os.open(b.parts[0], os.O_RDONLY | os.O_CLOEXEC)
        if isinstance(b, TarBundle) and len(b.parts) == 1
        else None
    )
    pulled = (
        Dir(os.open(b.source / layout.BLOBS_DIR, _DIR_FLAGS), str(b.source / layout.BLOBS_DIR))
        if opts.adopt and isinstance(b, FolderBundle)
        else None
    )

    def listed(member: str) -> Member:
        m = members.get(member)
        if m is None or m.kind != "file":
            raise ContentMismatch(f"{b.source}: {member} is gone since it was verified")
        return m

    def put(item: tuple[str, int]) -> None:
        hexd, size = item
        member = layout.blob_path("sha256:" + hexd)
        m = listed(member)
        if prestore is not None and prestore.take(hexd, size, staging, f"blob-{hexd}"):
            store.enter(hexd, staging, f"blob-{hexd}")
            rep.advance(size)
            step()
            return
        if pulled is not None and store.adopt(
            hexd, size, pulled, staging, what=member, progress=rep.advance
        ):
            return
        if one_file is not None:  # a range of the tar, read with pread
            span = Span(one_file, m.offset, m.size)
            store.put(hexd, size, span, staging, what=member, progress=rep.advance, step=step)
            return
        with b.open_fresh(member) as src:  # a layout folder's file (O_NOFOLLOW), or parts
            if isinstance(b, FolderBundle):
                fd = src.fileno()
                span = Span(fd, 0, os.fstat(fd).st_size)
                store.put(hexd, size, span, staging, what=member, progress=rep.advance, step=step)
            else:
                store.put(hexd, size, src, staging, what=member, progress=rep.advance, step=step)

    def read_small(hexd: str, size: int, member: str) -> bytes:
        """A small blob of the tar (one part or several, read in place), never more than its
        signed size."""
        m = listed(member)
        if m.size != size:
            raise ContentMismatch(
                f"{member}: the bundle holds {m.size} bytes, signed size is {size}"
            )
        data = b.read_small(member)  # a tar's member of at most BATCH_MAX_BLOB: never None
        return b"" if data is None else data  # (nothing read: put_batches names the short blob)

    # a tar's small blobs in batches, one file-system sync each (BlobStore.put_batches)
    batched = isinstance(b, TarBundle) and pulled is None
    large = [t for t in todo if not (batched and t[1] <= BATCH_MAX_BLOB)]
    small = [t for t in todo if batched and t[1] <= BATCH_MAX_BLOB]
    try:
        _parallel(put, large)
        batches = [
            [(h, s, layout.blob_path("sha256:" + h)) for h, s in batch]
            for batch in _store_batches(small)
        ]
        store.put_batches(batches, read_small, staging, progress=rep.advance, step=step)
    finally:
        if one_file is not None:
            os.close(one_file)
        if pulled is not None:
            pulled.close()
    store.dir.fsync()
    step()
    result.blobs_written = len(missing)
    result.blobs_present = len(plan.blobs) - len(missing)
    result.bytes_written = sum(missing.values())
    # the version's folder, in staging
    rep.phase("laying out files", plan.install_bytes)
    tree = staging.mkdir("tree")
    dirs: dict[str, Dir] = {"": tree}
    try:
        for d in plan.dirs:
            parent, _, leaf = d.rpartition("/")
            dirs[d] = dirs[parent].mkdir(leaf)
            step()
        files: list[InstalledFile] = []
        modes = plan.modes
        if modes.declared:
            result.modes = modes.to_json()
        for f in plan.files:
            parent, _, leaf = f.path.rpartition("/")
            if modes.linkable(f.path):
                if not placing.place(dirs[parent], leaf, store, f.sha256, f.size):
                    result.linked = False
            else:  # its own inode: the store's blob keeps its mode and owner
                result.linked = False
                placing.copy_blob(
                    dirs[parent], leaf, store, f.sha256, f.size, modes.file_mode(f.path)
                )
                placing.own(dirs[parent], leaf, modes)
            files.append(InstalledFile(f.path, f.sha256, f.size, True))
            rep.advance(f.size)
            step()
        unsynced: dict[str, list[str]] = {}  # folder -> the files written there, not synced
        for m in plan.meta:
            data = verified.get(m.source)  # the bytes verify checked, never a second read
            if data is None and m.optional:
                continue
            if data is None:
                raise ContentMismatch(f"{b.source}: {m.source} was not verified; nothing installed")
            sha = hashlib.sha256(data).hexdigest()
            if m.sha256 is not None and (sha != m.sha256 or len(data) != m.size):
                raise ContentMismatch(f"{b.source}: {m.source} does not match bundle.json")
            parent, _, leaf = m.path.rpartition("/")
            dirs[parent].write_file(leaf, data, modes.file, sync=False)  # synced below, at once
            unsynced.setdefault(parent, []).append(leaf)
            placing.own(dirs[parent], leaf, modes)
            files.append(InstalledFile(m.path, sha, len(data), False))
            step()
        try:
            sync_written([(dirs[parent], leaves) for parent, leaves in unsynced.items()])
        except OSError as exc:
            raise os_error(exc, tree.where) from None
        for rel in sorted(dirs, key=lambda k: -k.count("/")):
            dirs[rel].fsync()
            if rel:  # read-only; the version's own folder once it is in place (a move needs it)
                placing.set_dir(dirs[rel], modes)
            else:  # its owner now: a refusal leaves nothing in place
                placing.own_dir(dirs[rel], modes)
    finally:
        for opened in dirs.values():
            opened.close()
    step()
    # what list, audit and a re-run say too: every file of the version, its .airgap/ included
    result.files = len(files)
    result.install_bytes = sum(f.size for f in files)
    # images, before the commit: a failure leaves the prefix as it was
    result.images = _images(b, opts, rep)
    receipt = Receipt(
        name=plan.name,
        version=plan.version,
        target=plan.target,
        digest=result.digest,
        signers=[{"keyid": k, "name": n} for k, n in result.signers],
        installed=now_utc(),
        tool=__version__,
        files=files,
        linked=result.linked,
        images=result.images,
        read_only=True,
    )
    staging.write_file("receipt.json", receipt.to_bytes())
    staging.fsync()
    step()
    _commit(prefix, staging, plan, result)


def _store_batches(blobs: list[tuple[str, int]]) -> list[list[tuple[str, int]]]:
    """Small blobs ``(hex, size)`` grouped for :meth:`BlobStore.put_batches`: at most
    BATCH_BLOBS or BATCH_BYTES each (one sync each: the next batch is written meanwhile)."""
    out: list[list[tuple[str, int]]] = []
    size = 0
    for blob in blobs:
        if not out or len(out[-1]) >= BATCH_BLOBS or size + blob[1] > BATCH_BYTES:
            out.append([])
            size = 0
        out[-1].append(blob)
        size += blob[1]
    return out


def _parallel(fn: Any, items: list[Any]) -> None:
    """``fn`` over ``items`` in threads (hashlib and os.write release the GIL); the first failure
    (a full disk) cancels what has not started and is raised."""
    with ThreadPoolExecutor(_workers(), thread_name_prefix="install") as pool:
        futures = [pool.submit(fn, item) for item in items]
        try:
            for fut in as_completed(futures):
                fut.result()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


def _commit(prefix: Prefix, staging: Dir, plan: InstallPlan, result: InstallResult) -> None:
    with prefix.root.walk(f"{layout.SITE_BUNDLES_DIR}/{plan.unit}", create=True) as nd:
        if nd.kind(plan.version) is not None:
            raise SiteError(
                f"{nd.path_of(plan.version)} exists but {plan.unit} {plan.version} has no receipt",
                hint="not made by a complete airgap install: move it away and run again",
            )
        staging.rename("tree", nd, plan.version)
        with nd.sub(plan.version) as vd:  # its owner was set in staging
            os.fchmod(vd.fd, plan.modes.dir)
        step()
        nd.fsync()
        step()
    with prefix.root.walk(f"{layout.SITE_RECEIPTS_DIR}/{plan.unit}", create=True) as rd:
        staging.rename("receipt.json", rd, layout.receipt_name(plan.version))
        result.committed = True
        step()
        rd.fsync()
        step()
    prefix.switch_current(plan.unit, plan.version)
    names = ", ".join(n for _, n in result.signers)
    try:
        auditlog.append(
            prefix.root, "install", plan.unit, plan.version, result.digest,
            f"{result.files} files, {result.install_bytes} bytes; signed by {names}; "
            f"current: {result.previous or 'none'} -> {plan.version}",
        )  # fmt: skip
    except SiteError as exc:
        raise SiteError(
            f"{plan.unit} {plan.version} is installed and current, but its audit log entry "
            f"could not be written: {exc.message}",
            hint="fix that and run the same install again: it adds the missing entry",
        ) from None
    step()


def _images(b: Bundle, opts: InstallOptions, rep: Reporter) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not (opts.runtime or opts.registry):
        return out
    from packager.site.images import connect_docker, load_into_docker, push_to_registry

    if opts.docker:
        rep.phase("loading images into Docker")
        client = connect_docker()
        try:
            out += [
                {"into": "docker", **i.to_json()} for i in load_into_docker(b, client, progress=rep)
            ]
        finally:
            client.close()
    if opts.containerd is not None:
        from packager.site.images.containerd import load_into_containerd

        rep.phase(f"importing images into {opts.containerd.where()}")
        loaded = load_into_containerd(b, opts.containerd, progress=rep)
        out += [{"into": "containerd", **i.to_json()} for i in loaded]
    if opts.podman:
        from packager.site.images.podman import check_podman, load_into_podman

        rep.phase("loading images into Podman")
        loaded = load_into_podman(b, check_podman(), progress=rep)
        out += [{"into": "podman", **i.to_json()} for i in loaded]
    if opts.registry:
        rep.phase(f"pushing images to {opts.registry}")
        pushed = push_to_registry(b, opts.registry, insecure=opts.insecure, progress=rep)
        out += [{"into": opts.registry, **i.to_json()} for i in pushed]
    return out


def _record_images(prefix: Prefix, name: str, version: str, images: list[dict[str, Any]]) -> None:
    """The receipt of an installed version learns where a later install put its images."""
    with prefix.root.walk(layout.SITE_RECEIPTS_DIR, create=True) as rd:
        record_images(rd, name, version, images)


def _images_detail(images: list[dict[str, Any]]) -> str:
    return "images: " + ", ".join(f"{i['ref']} -> {i['into']}" for i in images)


def run_probe(prefix: Path, name: str) -> dict[str, Any]:
    """The probe on the installed bundle: its summary, the checks that did not pass, and the exit
    status (0 pass, 1 FAIL, 3 WARN / NOT RUN, 2 could not run)."""
    from packager.compat.probe_facts import export_probe_facts
    from packager.probe.cli import main as probe_main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = probe_main(
            ["--installed", name, "--prefix", str(prefix), "--json"], export_probe_facts()
        )
    doc: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        doc = json.loads(out.getvalue() or "{}")
    summary = doc.get("summary") or {}
    return {
        "exit_code": code,
        "status": summary.get("status", "ERROR" if code == 2 else None),
        "counts": summary.get("counts"),
        "checks": [c for c in doc.get("checks", []) if c.get("status") != "PASS"],
        "error": (err.getvalue().strip() or None) if code == 2 else None,
    }
