"""``airgap probe`` / ``python3 airgap/probe``: detect the machine, check a bundle's requirements.

Exit status: 0 every check passed, 1 a check failed, 3 the worst is a WARN or a NOT RUN,
2 a usage or input error (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn

from . import __version__, cluster
from .bundle import BundleError, Requirements, load
from .checks import run_checks
from .chipfacts import FactsError, load_facts
from .detect import detect
from .kernels import kernel_checks, smoke_checks
from .report import build, render_text, to_json_text, visible, write_atomic
from .system import DEFAULT_TIMEOUT, LiveSystem, RecordingSystem, SysrootSystem, System


class UsageError(Exception):
    """Bad arguments or input: exit 2 with one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see --help)")


def _parser(prog: str) -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description=(
            "Detect this machine (host, NVIDIA GPUs, Ascend NPUs, container engine) and check a "
            "bundle's requirements. Exit 0 all pass, 1 a check failed, 3 the worst is WARN or "
            "NOT RUN, 2 usage or input error."
        ),
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--bundle",
        metavar="B",
        help="a bundle folder (holding airgap/bundle.json), a .tar bundle, or a bundle.json",
    )
    src.add_argument(
        "--installed",
        metavar="NAME",
        help="an installed bundle: PREFIX/bundles/NAME/current/.airgap/bundle.json",
    )
    src.add_argument(
        "--no-bundle",
        action="store_true",
        help="check no bundle, even when the probe runs from inside one",
    )
    p.add_argument(
        "--prefix",
        metavar="DIR",
        default=os.environ.get("AIRGAP_PREFIX") or ".",
        help="the install prefix: where free disk is measured and --installed looks "
        "(default: $AIRGAP_PREFIX, else .)",
    )
    p.add_argument(
        "--cluster",
        metavar="REPORT",
        nargs="+",
        help="compare the --report files of every node of a multi-node deployment (same driver, "
        "CANN, firmware and weights; unique NPU addresses, links up; InfiniBand and GPU "
        "topology) and name the node that differs",
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON document")
    p.add_argument("--report", metavar="FILE", help="also write the JSON report to FILE")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--sysroot", metavar="DIR", help="read a recorded machine (made by --record) instead"
    )
    mode.add_argument(
        "--record",
        metavar="DIR",
        help="record this machine into DIR (a new folder) to be replayed with --sysroot",
    )
    p.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"the longest one command may run (default: {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="also start the installed bundle's server (its `serve` section) with the weights "
        "mounted read-only, wait for readiness and run its golden checks (needs --installed)",
    )
    p.add_argument(
        "--engine",
        choices=("docker", "podman"),
        default="docker",
        help="the container engine --serve uses (default: docker)",
    )
    p.add_argument(
        "--serve-network",
        choices=("auto", "publish", "host"),
        default="auto",
        help="publish the server's port on 127.0.0.1 only, or share the host's network "
        "(auto: publish when the engine has a bridge network)",
    )
    p.add_argument("--version", action="version", version=f"airgap probe {__version__}")
    return p


def _own_bundle() -> str | None:
    """The bundle.json beside the probe's folder, when the probe runs from inside a bundle
    (``airgap/probe/`` next to ``airgap/bundle.json``, or ``.airgap/`` of an installed one)."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidate = os.path.join(os.path.dirname(here), "bundle.json")
    return candidate if os.path.isfile(candidate) else None


def _requirements(args: argparse.Namespace) -> Requirements | None:
    if args.installed is not None:
        return load(None, args.installed, args.prefix)
    if args.bundle is not None:
        return load(args.bundle, None, args.prefix)
    if args.no_bundle:
        return None
    own = _own_bundle()
    return load(own, None, args.prefix) if own else None


def _system(args: argparse.Namespace) -> System:
    if args.sysroot is not None:
        if not os.path.isdir(args.sysroot):
            raise UsageError(f"--sysroot {args.sysroot}: no such folder")
        if not os.path.isfile(os.path.join(args.sysroot, "machine.json")):
            raise UsageError(f"--sysroot {args.sysroot}: not a recorded machine (no machine.json)")
        return SysrootSystem(args.sysroot)
    if args.record is not None:
        if os.path.exists(args.record) and (
            not os.path.isdir(args.record) or os.listdir(args.record)
        ):
            raise UsageError(f"--record {args.record}: exists and is not an empty folder")
        return RecordingSystem(args.timeout)
    return LiveSystem(args.timeout)


def _output(args: argparse.Namespace, doc: dict[str, Any], text: str, table: str) -> int:
    if args.report:
        try:
            write_atomic(args.report, text)
        except OSError as exc:
            raise UsageError(
                f"--report {args.report}: cannot write: {exc.strerror or exc}"
            ) from None
    sys.stdout.write(text if args.json else table)
    sys.stdout.flush()
    code: int = doc["summary"]["exit_code"]
    return code


def _cluster(args: argparse.Namespace) -> int:
    for opt in ("bundle", "installed", "sysroot", "record"):
        if getattr(args, opt) is not None:
            raise UsageError(f"--cluster compares reports: it takes no --{opt}")
    try:
        doc = cluster.run(list(args.cluster))
    except cluster.ClusterError as exc:
        raise UsageError(str(exc)) from None
    return _output(args, doc, to_json_text(doc), cluster.render_text(doc))


def _run(argv: list[str], facts: dict[str, Any] | None, prog: str, bundle_verified: bool) -> int:
    args = _parser(prog).parse_args(argv)
    if not args.timeout > 0:
        raise UsageError("--timeout must be more than 0 seconds")
    if args.cluster is not None:
        return _cluster(args)
    if args.serve and args.installed is None:
        raise UsageError(
            "--serve needs --installed NAME --prefix DIR: it mounts the installed weights"
        )
    if args.installed is not None and not os.path.isdir(args.prefix):
        raise UsageError(f"--prefix {args.prefix}: no such folder")
    try:
        pf, facts_source = load_facts(facts)
    except FactsError as exc:
        raise UsageError(str(exc)) from None
    req = _requirements(args)
    system = _system(args)
    network = (req is not None and req.nodes > 1) or isinstance(system, RecordingSystem)
    det = detect(system, pf, args.prefix, network=network)
    checks = run_checks(det, req, pf)
    if req is not None:
        # before the summary: the kernels' test vectors on this host's device, and the smoke
        # command; both only from a bundle verified by the caller, or an installed one (verified
        # when it was installed, and read-only since)
        verified = bundle_verified or args.installed is not None
        live, limit = args.sysroot is None, max(60.0, args.timeout)
        checks += kernel_checks(req, live=live, timeout=limit, verified=verified)
        checks += smoke_checks(req, live=live, timeout=limit, verified=verified)
    serve_doc = None
    if args.serve:
        from .serve_checks import serve_checks

        serve_rows, serve_doc = serve_checks(
            req,
            live=args.sysroot is None,
            engine=args.engine,
            network=args.serve_network,
            timeout=max(60.0, args.timeout),
            progress=None if args.json else _progress,
        )
        checks += serve_rows
    doc = build(
        det,
        checks,
        req,
        mode=system.mode,
        sysroot=system.root,
        facts_source=facts_source,
    )
    if serve_doc is not None:
        doc["serve"] = serve_doc
    text = to_json_text(doc)
    if isinstance(system, RecordingSystem):
        try:
            system.save(args.record)
            write_atomic(os.path.join(args.record, "report.json"), text)
        except OSError as exc:
            raise UsageError(
                f"--record {args.record}: cannot write: {exc.strerror or exc}"
            ) from None
        print(f"recorded this machine in {args.record}", file=sys.stderr)
    return _output(args, doc, text, render_text(doc))


def _progress(line: str) -> None:
    print(f"serve: {line}", file=sys.stderr, flush=True)


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return visible(lines[0] if lines else text.strip())


def main(
    argv: list[str],
    facts: dict[str, Any] | None = None,
    prog: str = "airgap probe",
    *,
    bundle_verified: bool = False,
) -> int:
    """Run the probe with command-line arguments ``argv`` (without the program name).

    ``bundle_verified``: the caller verified the ``--bundle`` against a trust policy or key (the
    full ``airgap probe --trust/--key``); only then are its kernels and smoke command run. The
    standalone probe has no signature code: it checks the hardware and says the rest was not run.

    ``facts``: the chip facts (``packager.compat.probe_facts.export_probe_facts()``); None reads
    ``facts.json`` beside the probe. Returns the exit status; never raises (but SystemExit is
    not raised either: --help and --version return 0).
    """
    try:
        return _run(list(argv), facts, prog, bundle_verified)
    except (UsageError, BundleError) as exc:
        print(f"{prog}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line, and how to report it
        print(
            f"{prog}: internal error: {type(exc).__name__}: {_one_line(str(exc))} "
            "(please report it with the output of --record DIR)",
            file=sys.stderr,
        )
        return 2
