"""The `airgap` command line: argument handling and rendering only; the work is in the stages."""

# No `from __future__ import annotations` here: typer reads these signatures at run time, and
# typer on Python 3.9 drops a required Annotated option given as a string. So they say
# Optional[X] (3.9 has no X | None at run time).
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from packager.cli import render
from packager.cli.options import JsonOpt, SigningKeyOpt
from packager.cli.term import shown
from packager.errors import AirgapError, InputError
from packager.util.fs import atomic_write_text

if TYPE_CHECKING:
    from packager.manifest.model import Manifest

app = typer.Typer(
    name="airgap",
    help="Signed offline bundles for AI inference deployments (Ascend/CANN and NVIDIA/CUDA).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from packager import __version__

        print(f"airgap {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """airgap: build, verify, install and probe offline AI inference bundles."""


@app.command()
def validate(
    manifest: Annotated[Path, typer.Argument(help="The manifest YAML file.")],
    as_json: JsonOpt = False,
) -> None:
    """Check a manifest's schema and its chip stack, before anything is fetched.

    Exit 0 valid (warnings allowed), 1 invalid, 2 unreadable.
    """
    from packager.commands.validate import validate as run

    report = run(manifest)
    render.show(report, as_json, render.validation)
    raise typer.Exit(0 if report.valid else 1)


def _valid_manifest(path: Path, as_json: bool) -> "Manifest":
    """The manifest for lock and build, or its findings rendered and exit 1. The model files
    are not scanned here: the lock reads each one once and finds AG700-AG702 itself."""
    from packager.commands.validate import validate as run_validate

    report = run_validate(path, scan_model=False)
    if not report.valid or report.manifest is None:
        if as_json:
            render.emit_json({"ok": False, "validation": report.to_json()})
        else:
            render.validation(report)
        raise typer.Exit(1)
    return report.manifest


@app.command()
def lock(
    manifest: Annotated[Path, typer.Argument(help="The manifest YAML file.")],
    check: Annotated[
        bool,
        typer.Option("--check", help="Do not write: re-resolve and name inputs that drifted."),
    ] = False,
    lock_file: Annotated[
        Optional[Path],
        typer.Option("--lock", help="Lock file (default: MANIFEST.lock.json beside it)."),
    ] = None,
    offline: Annotated[
        bool, typer.Option(help="Use only local inputs (wheelhouses, caches, local images).")
    ] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Hash every file again (ignore the stat cache).")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for a registry or an engine.")
    ] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Resolve every input to content digests and write MANIFEST.lock.json.

    Exit 0 locked (or, with --check, nothing drifted), 1 invalid manifest, pin mismatch,
    findings or drift, 2 an input that cannot be read or reached.
    """
    from packager.commands import lock as locking

    m = _valid_manifest(manifest, as_json)
    path = lock_file or locking.lock_path_for(manifest)
    with render.reporter(enabled=not as_json) as rep:
        report = locking.lock_command(
            m, path, check=check, use_cache=not no_cache, reporter=rep, offline=offline,
            timeout=timeout,
        )  # fmt: skip
    if isinstance(report, locking.DriftReport):
        render.show(report, as_json, render.drift)
    else:
        render.show(report, as_json, render.lock_result)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def build(
    manifest: Annotated[Path, typer.Argument(help="The manifest YAML file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("bundles"),
    key: Annotated[
        Optional[str],
        typer.Option(
            help="Private key (encrypted PEM; passphrase from AIRGAP_KEY_PASSPHRASE), or a key "
            "in a token: 'pkcs11:token=NAME;object=LABEL' (PIN from AIRGAP_PKCS11_PIN)."
        ),
    ] = None,
    unsigned: Annotated[
        bool, typer.Option(help="Build without a signature (says so everywhere).")
    ] = False,
    split: Annotated[
        Optional[str], typer.Option(help="Write parts of at most SIZE (4G, 700M, fat32).")
    ] = None,
    compress: Annotated[str, typer.Option(help="none (zstd: not yet).")] = "none",
    locked: Annotated[
        bool,
        typer.Option(
            help="Fail when the lock is missing (without it, a build with no lock locks and "
            "writes it); inputs that drifted from a lock always fail."
        ),
    ] = False,
    lock_file: Annotated[
        Optional[Path],
        typer.Option("--lock", help="The lock file (default: MANIFEST.lock.json beside it)."),
    ] = None,
    target: Annotated[Optional[str], typer.Option(help="Build only this target id.")] = None,
    layout_only: Annotated[
        bool, typer.Option("--layout-only", help="Write the OCI layout as a folder, no tar.")
    ] = False,
    offline: Annotated[bool, typer.Option(help="Use only local inputs.")] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for a registry or an engine.")
    ] = 60.0,
    all_platforms: Annotated[
        bool,
        typer.Option("--all-platforms", help="Keep every platform of a multi-arch image index."),
    ] = False,
    carry_trust: Annotated[
        Optional[Path],
        typer.Option(
            "--carry-trust",
            help="A signed trust policy the bundle carries; sites that keep a policy take it "
            "at install when their keys signed it.",
        ),
    ] = None,
    combined: Annotated[
        bool,
        typer.Option(
            "--combined",
            help="One bundle holding every target (each signed as its own bundle), what they "
            "share stored once; `install --target ID` installs one.",
        ),
    ] = False,
    base: Annotated[
        Optional[Path],
        typer.Option(
            "--base",
            help="Write a delta: carry only the blobs OLD lacks (OLD: a bundle, its parts "
            "index, a layout folder, or a site's have-list from `airgap list --have`).",
        ),
    ] = None,
    site_kit: Annotated[
        bool,
        typer.Option(
            "--site-kit/--no-site-kit",
            envvar="AIRGAP_SITE_KIT",
            help="Carry airgap itself for the target's platform and Python 3.9-3.13 at "
            "airgap/site/ (about 20 MB; run it with sh airgap/site/airgap BUNDLE COMMAND).",
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Build one signed, reproducible bundle per target: OCI layout + airgap/ descriptor.

    Builds from the lock beside the manifest (MANIFEST.lock.json); with none there it locks first
    and writes it. Inputs that drifted from the lock stop the build: `airgap lock` records them."""
    from packager.commands import build as build_stage
    from packager.signing.keys import open_signing_key

    if compress != "none":
        raise InputError(
            f"--compress {compress!r} is not supported yet",
            hint="weights and image layers barely compress; build with --compress none",
        )
    if key is None and not unsigned:
        raise InputError(
            "no signing key: give --key KEY (airgap key generate makes one) or --unsigned",
            hint="sites verify bundles against trusted keys; an unsigned bundle is for testing",
        )
    if key is not None and unsigned:
        raise InputError("--key and --unsigned contradict each other")
    m = _valid_manifest(manifest, as_json)
    carried = build_stage.carried_trust(carry_trust) if carry_trust is not None else None
    signing_key = open_signing_key(key) if key is not None else None
    split_bytes = build_stage.parse_split(split)
    with render.reporter(enabled=not as_json) as rep:
        result = build_stage.build(
            m,
            out=out,
            key=signing_key,
            locked=locked,
            lock_file=lock_file,
            split=split_bytes,
            layout_only=layout_only,
            target_id=target,
            reporter=rep,
            offline=offline,
            timeout=timeout,
            all_platforms=all_platforms,
            carry_trust=carried,
            combined=combined,
            base=base,
            site_kit=site_kit,
        )
    render.show(result, as_json, render.build_result)


BundleArg = Annotated[
    str,
    typer.Argument(
        help="A .airgap.tar, its parts index, a part, a layout folder, or a published bundle "
        "oci://HOST[:PORT]/REPO:TAG.",
        show_default=False,
    ),
]
CaCertOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--ca-cert",
        help="PEM CA certificate(s) the registry's TLS certificate is checked against, besides "
        "the system trust store.",
    ),
]
InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="Plain HTTP to a registry that is not on loopback (loopback registries without TLS "
        "need no flag). Logins are never sent over plain HTTP to another host.",
    ),
]


def _registry_options(insecure: bool, ca_cert: Optional[Path]) -> Any:
    from packager.oci.registry import RegistryOptions

    if insecure and ca_cert is not None:
        raise InputError("give --insecure (plain HTTP) or --ca-cert (TLS), not both")
    return RegistryOptions(insecure=insecure, ca_cert=ca_cert)


def _oci(source: str) -> Any:
    """An oci:// address parsed, or None for a path (the registry client, ssl included, is
    imported only for an address)."""
    from packager.oci.reference import is_oci_url

    if not is_oci_url(source):
        return None
    from packager.oci.registry import parse_oci_url

    return parse_oci_url(source)


def _no_registry_flags(source: str, insecure: bool, ca_cert: Optional[Path]) -> None:
    if insecure or ca_cert is not None:
        raise InputError(f"--insecure and --ca-cert apply to an oci:// address, not to {source!r}")


BundleTargetOpt = Annotated[
    Optional[str],
    typer.Option("--target", help="Which target of a combined bundle (build --combined)."),
]
DeltaBaseOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--base", help="A delta's base bundle: check the blobs the delta leaves out in it."
    ),
]
DeltaPrefixOpt = Annotated[
    Optional[Path],
    typer.Option("--prefix", help="A site: check the blobs a delta leaves out in its store."),
]


@app.command()
def inspect(
    bundle: BundleArg,
    insecure: InsecureOpt = False,
    ca_cert: CaCertOpt = None,
    target: BundleTargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List what a bundle holds by role, with sizes and digests (not a verification)."""
    from packager.commands.inspect_bundle import inspect_bundle, inspect_remote

    loc = _oci(bundle)
    if loc is not None:
        info = inspect_remote(loc, _registry_options(insecure, ca_cert))
    else:
        _no_registry_flags(bundle, insecure, ca_cert)
        info = inspect_bundle(Path(bundle), target)
    render.show(info, as_json, render.inspection)


@app.command()
def digest(
    bundle: Annotated[Path, typer.Argument(help="A bundle (tar, parts or folder).")],
    target: BundleTargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the content digest (sha256 of bundle.json): equal for rebuilds from one lock."""
    from packager.commands.inspect_bundle import content_digest

    d = content_digest(bundle, target)
    if as_json:
        render.emit_json({"bundle": str(bundle), "digest": d})
    else:
        render.plain(d)


def _policy(trust: Optional[Path], keys: Optional[list[Path]]) -> Any:
    from packager.commands.verify import policy_from_options

    return policy_from_options(trust, keys)


TrustOpt = Annotated[
    Optional[Path], typer.Option("--trust", help="Trust policy (airgap trust init).")
]
PubKeysOpt = Annotated[
    Optional[list[Path]],
    typer.Option("--key", help="A trusted public key (repeatable; threshold 1)."),
]


@app.command()
def verify(
    bundle: BundleArg,
    trust: TrustOpt = None,
    key: PubKeysOpt = None,
    insecure: InsecureOpt = False,
    ca_cert: CaCertOpt = None,
    target: BundleTargetOpt = None,
    base: DeltaBaseOpt = None,
    prefix: DeltaPrefixOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify parts, signatures (threshold, expiry, revocation), every blob, and consistency.

    From oci://: the signatures first (nothing else is fetched when they fail), then every blob.
    A delta (build --base) is verified whole only with its base (--base OLD or --prefix DIR).
    Exit 0 only when all hold; else 1, listing every failure.
    """
    from packager.commands.verify import verify as run
    from packager.commands.verify import verify_remote

    loc = _oci(bundle)
    with render.reporter(enabled=not as_json) as rep:
        if loc is not None:
            report = verify_remote(
                loc, trust, key, _registry_options(insecure, ca_cert), reporter=rep
            )
        else:
            _no_registry_flags(bundle, insecure, ca_cert)
            report = run(
                Path(bundle), trust, key, reporter=rep, target=target, base=base, prefix=prefix
            )
    render.show(report, as_json, render.verify_report)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def diff(
    old: Annotated[
        str,
        typer.Argument(
            help="The old version: a bundle (tar, parts index, part, folder), or NAME@VERSION "
            "installed under --prefix."
        ),
    ],
    new: Annotated[str, typer.Argument(help="The new version, the same kinds as OLD.")],
    prefix: Annotated[
        Optional[Path],
        typer.Option("--prefix", help="The install prefix NAME@VERSION arguments are read from."),
    ] = None,
    trust: TrustOpt = None,
    key: PubKeysOpt = None,
    target: BundleTargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What changed from OLD to NEW: manifest fields, blobs by role, images, kernels, wheels,
    and the bytes a delta would carry. Unverified unless --trust or --key is given (then each
    side's signatures must hold: exit 1 otherwise). --target picks the target of a combined
    bundle, or of a name installed for several targets."""
    from packager.commands.diff import diff as run

    report = run(old, new, prefix=prefix, policy=_policy(trust, key), target=target)
    render.show(report, as_json, render.diff_report)


@app.command()
def sign(
    bundle: Annotated[
        Path, typer.Argument(help="A .airgap.tar, its parts index, a part, or a layout folder.")
    ],
    key: SigningKeyOpt,
    as_json: JsonOpt = False,
) -> None:
    """Add a co-signature over bundle.json without rebuilding or rewriting any blob."""
    from packager.commands.sign import sign_bundle
    from packager.signing.keys import open_signing_key

    result = sign_bundle(bundle, open_signing_key(key))
    render.show(result, as_json, render.signed)


@app.command()
def audit(
    bundle: Annotated[
        Optional[Path], typer.Argument(help="A bundle (tar, parts or folder).", show_default=False)
    ] = None,
    trust: TrustOpt = None,
    key: PubKeysOpt = None,
    site: Annotated[
        Optional[Path],
        typer.Option(
            "--site",
            help="Audit an install prefix instead: the hash-chained audit log, and every "
            "installed file against its receipt (drift).",
        ),
    ] = None,
    html_out: Annotated[
        Optional[Path],
        typer.Option(
            "--html",
            help="Also write the officer's report: one self-contained HTML file (no scripts, "
            "nothing fetched), verdict first.",
        ),
    ] = None,
    probe_report: Annotated[
        Optional[Path],
        typer.Option(
            "--probe-report", help="A probe report (airgap probe --report FILE) for --html."
        ),
    ] = None,
    target: BundleTargetOpt = None,
    base: DeltaBaseOpt = None,
    prefix: DeltaPrefixOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Who signed and when, the build provenance, the SBOM summary and the verdict.

    With --site DIR: the audit log's chain, the drift of every installed version and, when the
    site keeps a trust policy, every installed version re-verified by it; exit 1 on any
    tampered entry, drifted file or version the policy no longer trusts.
    """
    from packager.cli import report_files

    if probe_report is not None and html_out is None:
        raise InputError("--probe-report goes into the HTML report: give --html FILE too")
    probe = report_files.probe(probe_report)
    if site is not None:
        if bundle is not None or base is not None or prefix is not None:
            raise InputError(
                "give a BUNDLE (with a delta's --base or --prefix) or --site DIR, not both"
            )
        from packager.site.integrity import audit_site

        result = audit_site(site, _policy(trust, key))
        if html_out is not None:
            report_files.site_html(html_out, result, result.policy, probe)
        render.show(result, as_json, render.site_audit)
        raise typer.Exit(0 if result.ok else 1)
    if bundle is None:
        raise InputError("audit needs a BUNDLE (or --site DIR for an install prefix)")
    from packager.commands.audit import audit_bundle

    audit_report = audit_bundle(bundle, _policy(trust, key), target, base=base, prefix=prefix)
    if html_out is not None:
        report_files.bundle_html(html_out, audit_report, probe)
    render.show(audit_report, as_json, render.audit)
    raise typer.Exit(audit_report.exit_code)


PrefixOpt = Annotated[
    Path,
    typer.Option(
        "--prefix",
        envvar="AIRGAP_PREFIX",
        show_envvar=True,
        help="The install prefix (site folder); default: $AIRGAP_PREFIX.",
    ),
]
SiteTargetOpt = Annotated[
    Optional[str],
    typer.Option(
        "--target",
        help="Which target's, where NAME is installed for several (or say NAME+TARGET).",
    ),
]


@app.command()
def install(
    bundle: BundleArg,
    prefix: PrefixOpt,
    trust: TrustOpt = None,
    key: PubKeysOpt = None,
    docker: Annotated[
        bool, typer.Option("--docker", help="Load the images into Docker ($DOCKER_HOST).")
    ] = False,
    containerd: Annotated[
        bool,
        typer.Option(
            "--containerd",
            help="Import the images into containerd (with ctr), unpacked for its snapshotter.",
        ),
    ] = False,
    namespace: Annotated[
        Optional[str],
        typer.Option(
            "--namespace",
            help="containerd namespace (default $CONTAINERD_NAMESPACE, else k8s.io: Kubernetes').",
        ),
    ] = None,
    address: Annotated[
        Optional[str],
        typer.Option(
            "--address",
            help="containerd's socket (default $CONTAINERD_ADDRESS, else "
            "/run/containerd/containerd.sock).",
        ),
    ] = None,
    snapshotter: Annotated[
        Optional[str],
        typer.Option(
            "--snapshotter",
            help="Unpack for this containerd snapshotter (default $CONTAINERD_SNAPSHOTTER, "
            "else overlayfs).",
        ),
    ] = None,
    podman: Annotated[
        bool, typer.Option("--podman", help="Load the images into Podman's storage.")
    ] = False,
    registry: Annotated[
        Optional[str],
        typer.Option("--registry", help="Push the images to HOST:PORT, digests unchanged."),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Plain HTTP to --registry, or to the oci:// registry installed from (not needed "
            "on loopback).",
        ),
    ] = False,
    ca_cert: CaCertOpt = None,
    no_probe: Annotated[
        bool, typer.Option("--no-probe", help="Do not probe the host after installing.")
    ] = False,
    allow_downgrade: Annotated[
        bool,
        typer.Option("--allow-downgrade", help="Install a version older than the current one."),
    ] = False,
    hf_cache: Annotated[
        Optional[Path],
        typer.Option(
            "--hf-cache",
            help="Also lay the weights out as a Hugging Face hub cache in DIR (hard links into "
            "the store): servers find them by hub id with HF_HUB_OFFLINE=1.",
        ),
    ] = None,
    target: Annotated[
        Optional[str],
        typer.Option(
            "--target",
            help="Which target of a combined bundle to install (a single-target bundle must "
            "be for it).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify, then install into PREFIX: store, lay out, switch current, receipt, audit log, probe.

    A site that keeps its own trust policy (airgap trust update --site) verifies against it;
    a signed policy the bundle carries is applied as a rotation.

    Exit 0 installed (probe WARN / NOT RUN included), 1 not verified, refused (anti-rollback,
    same version with other content, unsafe paths) or the probe FAILed or could not run (the
    install stays),
    2 an unusable prefix (unsafe, full) or bad input.
    """
    from packager.site.install import InstallOptions, install_bundle, runtime_options

    docker, containerd_target, podman = runtime_options(
        docker=docker, containerd=containerd, podman=podman,
        address=address, namespace=namespace, snapshotter=snapshotter,
    )  # fmt: skip
    policy = _policy(trust, key)  # None: the site's own policy (airgap trust update --site)
    loc = _oci(bundle)
    if insecure and registry is None and loc is None:
        raise InputError("--insecure applies to --registry HOST:PORT or an oci:// source only")
    if ca_cert is not None and loc is None:
        raise InputError("--ca-cert applies to an oci:// source only")
    options = InstallOptions(
        docker,
        registry,
        insecure,
        not no_probe,
        allow_downgrade,
        hf_cache,
        containerd_target,
        podman,
        target=target,
    )
    with render.reporter(enabled=not as_json) as rep:
        if loc is not None:
            from packager.site.remote import install_from_registry

            result = install_from_registry(
                loc, prefix, policy, options, _registry_options(insecure, ca_cert), reporter=rep
            )
        else:
            result = install_bundle(Path(bundle), prefix, policy, options, reporter=rep)
    render.show(result, as_json, render.install_result)
    raise typer.Exit(result.exit_code)


@app.command()
def publish(
    bundle: Annotated[
        Path, typer.Argument(help="A .airgap.tar, its parts index, a part, or a layout folder.")
    ],
    destination: Annotated[
        str,
        typer.Argument(
            help="oci://HOST[:PORT]/REPO[:TAG] (the tag defaults to the bundle's version).",
            show_default=False,
        ),
    ],
    trust: TrustOpt = None,
    key: PubKeysOpt = None,
    insecure: InsecureOpt = False,
    ca_cert: CaCertOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a bundle, then push all of it to a registry as one OCI index, for nodes to install.

    Images keep their digests, the model is its ModelPack artifact; blobs the registry has are
    not sent again. Logins come from the Docker config or AIRGAP_REGISTRY_USER /
    AIRGAP_REGISTRY_PASSWORD. Exit 0 published, 1 the bundle did not verify, 2 bad input or
    an unreachable or refusing registry.
    """
    from packager.commands.publish import publish as run
    from packager.commands.verify import require_policy
    from packager.oci.registry import parse_oci_url

    policy = require_policy(trust, key, "publish")
    dest = parse_oci_url(destination)
    with render.reporter(enabled=not as_json) as rep:
        result = run(bundle, dest, policy, _registry_options(insecure, ca_cert), reporter=rep)
    render.show(result, as_json, render.published)


@app.command("list")
def list_cmd(
    prefix: PrefixOpt,
    have: Annotated[
        bool,
        typer.Option(
            "--have",
            help="Print the have-list (JSON, schemas/have.schema.json): the blobs the store "
            "holds and the installed versions, for `airgap build --base have.json`.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The bundles installed under PREFIX: versions, the current one, digests, sizes."""
    if have:
        from packager.site.have import have_list

        render.emit_document(have_list(prefix).to_json())
        return
    from packager.site.manage import list_installed

    render.show(list_installed(prefix), as_json, render.site_list)


@app.command()
def uninstall(
    name: Annotated[str, typer.Argument(help="The bundle name.")],
    prefix: PrefixOpt,
    version: Annotated[
        Optional[str],
        typer.Option("--version", help="Remove this version only (not the current one)."),
    ] = None,
    all_versions: Annotated[
        bool,
        typer.Option("--all", help="Remove every version of NAME and its current link."),
    ] = False,
    target: SiteTargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove one version of NAME (--version), or every version and its current link (--all, or
    confirmed at a terminal). Blobs stay until gc."""
    from packager.site.manage import installed_versions
    from packager.site.manage import uninstall as run

    if version is not None and all_versions:
        raise InputError("give --version V or --all, not both")
    if version is None and not all_versions:
        versions = installed_versions(prefix, name, target)
        question = f"remove every installed version of {name} ({', '.join(versions)})?"
        if not (sys.stdin.isatty() and sys.stderr.isatty() and not as_json):
            raise InputError(
                f"uninstall {name} without --version would {question[:-1]}",
                hint="pass --all to remove every version, or --version V for one",
            )
        if not typer.confirm(question, default=False, err=True):
            raise typer.Exit(1)
    with render.reporter(enabled=not as_json) as rep:
        removed = run(prefix, name, version, target=target, reporter=rep)
    render.show(removed, as_json, lambda r: render.site_change("uninstall", r))


@app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="The bundle name.")],
    prefix: PrefixOpt,
    target: SiteTargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make the newest installed version older than the current one current again."""
    from packager.site.manage import rollback as run

    with render.reporter(enabled=not as_json) as rep:
        rolled = run(prefix, name, target=target, reporter=rep)
    render.show(rolled, as_json, lambda r: render.site_change("rollback", r))


@app.command()
def gc(prefix: PrefixOpt, as_json: JsonOpt = False) -> None:
    """Drop the store's blobs that no installed version references."""
    from packager.site.manage import gc as run

    with render.reporter(enabled=not as_json) as rep:
        collected = run(prefix, reporter=rep)
    render.show(collected, as_json, lambda r: render.site_change("gc", r))


@app.command()
def serve(
    bundle: Annotated[
        Optional[Path],
        typer.Argument(
            help="A .airgap.tar, its parts index, a part, or a layout folder.", show_default=False
        ),
    ] = None,
    prefix: Annotated[
        Optional[Path],
        typer.Option("--prefix", help="Serve an install prefix's signed, installed versions."),
    ] = None,
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            help="HOST:PORT to listen on (plain HTTP; port 0: any free one). Docker pulls "
            "from 127.0.0.1 as it is; podman/skopeo need --tls-verify=false, ctr --plain-http.",
        ),
    ] = "127.0.0.1:5000",
    trust: TrustOpt = None,
    key: PubKeysOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve a verified bundle (or an installed site) read-only as an OCI registry.

    docker/podman pull, skopeo copy and ctr pull --plain-http take its images by their original
    repository path and tag (without the registry host); the bundle itself is NAME:VERSION. One
    line per request on stderr; Ctrl-C stops. Exit 1 when the bundle does not verify, 2 bad input.
    """
    import signal

    from packager.commands import serve as serving

    with render.reporter(enabled=not as_json) as rep:
        served = serving.prepare(bundle, prefix, trust, key, reporter=rep)
    server = serving.start(served, listen, render.request_line)
    if as_json:
        render.emit_json(serving.started_json(served, server))
    else:
        render.serving(served, server.listen)

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # SIGINT too: a shell starts a background job with SIGINT ignored, and Ctrl-C must stop it
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    render.serving_stopped(server.stats)


@app.command()
def repair(
    prefix: PrefixOpt,
    name: Annotated[
        Optional[str], typer.Argument(help="Repair this bundle only (default: all).")
    ] = None,
    bundle: Annotated[
        Optional[Path],
        typer.Option(
            "--bundle",
            help="Take what the site no longer holds intact from this bundle (verified first).",
        ),
    ] = None,
    trust: TrustOpt = None,
    key: PubKeysOpt = None,
    target: SiteTargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Restore installed files that are damaged, missing or writable, from the store or a bundle.

    Each version is judged by its installed, signed bundle.json; content comes only from bytes
    that hash to it (the store, an intact installed copy, or the verified --bundle). Exit 0
    intact or repaired, 1 something could not be repaired (named, with what would repair it).
    """
    from packager.site.repair import repair_site

    policy = _policy(trust, key) if (trust is not None or key) else None
    with render.reporter(enabled=not as_json) as rep:
        result = repair_site(prefix, name, bundle, policy, target=target, reporter=rep)
    render.show(result, as_json, render.repair_result)
    raise typer.Exit(result.exit_code)


@app.command()
def images(
    bundle: Annotated[Path, typer.Argument(help="A bundle (tar, parts or folder).")],
    target: BundleTargetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the bundle's container images with platform, size and digests."""
    from packager.commands.images import list_images

    render.show(list_images(bundle, target), as_json, render.images)


@app.command(
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],
    },
    add_help_option=False,
)
def probe(ctx: typer.Context) -> None:
    """Probe this host (or a recorded one) against a bundle's requirements: PASS/WARN/FAIL/NOT RUN.

    Options: [--bundle B [--trust P | --key K] | --installed NAME [--target T] --prefix DIR]
    [--json] [--report FILE] [--sysroot DIR | --record DIR] [--timeout S] [--serve [--engine docker|podman]
    [--serve-network auto|publish|host]]. Exit 0 all pass, 1 a FAIL, 3 WARN or NOT RUN.
    A --bundle's kernels and smoke command run only when it verifies against --trust or --key;
    without them the hardware is checked and the rest is NOT RUN.
    """
    from packager.commands.probe import prepare, split_args
    from packager.compat.probe_facts import export_probe_facts
    from packager.probe.cli import main as probe_main
    from packager.site.manage import probe_args

    args = split_args(probe_args(list(ctx.args)))
    as_json = "--json" in args.argv
    with prepare(args, reporter=render.reporter(enabled=not as_json)) as run:
        if run.report is not None and not run.report.ok:
            render.show(run.report, as_json, render.verify_report)
            raise typer.Exit(1)
        code = probe_main(run.argv, export_probe_facts(), bundle_verified=run.verified)
    raise typer.Exit(code)


deploy_app = typer.Typer(
    help="Deployments of an installed bundle: Kubernetes or compose, from its serve section.",
    no_args_is_help=True,
)
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("render")
def deploy_render(
    installed: Annotated[str, typer.Option("--installed", help="The installed bundle's name.")],
    prefix: PrefixOpt,
    fmt: Annotated[str, typer.Option("--format", help="kube (a Deployment) or compose.")] = "kube",
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Write to FILE (default: stdout).")
    ] = None,
    registry: Annotated[
        Optional[str],
        typer.Option(
            "--registry", help="The site registry the images were pushed to (install --registry)."
        ),
    ] = None,
    host_port: Annotated[
        Optional[int],
        typer.Option("--host-port", help="Also publish the port on 127.0.0.1:PORT of the node."),
    ] = None,
    nodes: Annotated[
        Optional[int],
        typer.Option("--nodes", help="Nodes the server spans (default: the target's)."),
    ] = None,
    device_plugin: Annotated[
        str,
        typer.Option("--device-plugin", help="mind-cluster (default) or hami resource names."),
    ] = "mind-cluster",
    as_json: JsonOpt = False,
) -> None:
    """Render the installed bundle's server as a Kubernetes Deployment or a compose file: the image
    by digest, the device resources, the weights as a read-only host path of the installed
    version, the readiness probe and the environment."""
    from packager.commands.deploy import render as run

    result = run(
        prefix,
        installed,
        fmt,
        registry=registry,
        host_port=host_port,
        nodes=nodes,
        device_plugin=device_plugin,
    )
    if out is not None:
        atomic_write_text(out, result.text)
        result.output = out
    render.show(result, as_json, render.deploy_rendered)


@app.command()
def init(
    name: Annotated[str, typer.Argument(help="Bundle name, e.g. qwen2.5-7b-ascend.")],
    vendor: Annotated[
        Optional[str],
        typer.Option(help="Accelerator vendor: nvidia, huawei or none."),
    ] = None,
    chip: Annotated[
        Optional[list[str]],
        typer.Option(
            help="Chip id, e.g. h100 or ascend910b3; give it again for a manifest with one target "
            "per chip (e.g. --chip ascend910b3 --chip h100)."
        ),
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Where to write (default NAME.yaml).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a commented starter manifest that validates."""
    from packager.commands.init import starter_manifest

    if vendor is not None and vendor not in ("nvidia", "huawei", "none"):
        raise InputError(f"--vendor {vendor!r}: expected nvidia, huawei or none")
    text = starter_manifest(name, vendor, chip)
    target = out or Path(f"{name}.yaml")
    atomic_write_text(target, text, overwrite=force)
    render.stderr.print(f"wrote {shown(target)}; next: airgap validate {shown(target)}")
    if as_json:
        render.emit_json({"manifest": str(target), "name": name, "bytes": len(text.encode())})


from packager.cli.groups import kernels_app, key_app, trust_app  # noqa: E402

app.add_typer(trust_app, name="trust")
app.add_typer(kernels_app, name="kernels")
app.add_typer(key_app, name="key")


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry point: map airgap errors to exit codes, never a traceback.

    Click's standalone mode handles usage errors (exit 2) and ``typer.Exit``; everything that
    reaches us here is an AirgapError with a message and a hint, or a bug.
    """
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    try:
        app(args=args, prog_name="airgap")
    except AirgapError as exc:
        render.error(exc, as_json=as_json)
        sys.exit(exc.exit_code)
    except Exception as exc:
        if os.environ.get("AIRGAP_DEBUG"):
            raise
        render.internal_error(exc)
        sys.exit(70)


if __name__ == "__main__":
    main()
