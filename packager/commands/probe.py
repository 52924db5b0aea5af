"""`airgap probe`: the standalone probe (packager.probe, stdlib only) behind the full tool's
verification. With ``--trust POLICY`` or ``--key PUB`` the ``--bundle`` is verified first (every
signature and blob, as ``airgap verify``); only a verified bundle's kernels and smoke command run.
A parts index or a part is probed through its verified ``bundle.json`` (hardware and requirements;
its kernels need the whole archive or an installed bundle)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from packager.bundle import layout
from packager.bundle.reader import parts_of
from packager.bundle.verifier import VerifyReport
from packager.commands.verify import policy_from_options, verify_bundle
from packager.errors import InputError
from packager.util.progress import Reporter


@dataclass(frozen=True)
class ProbeArgs:
    """The probe's own arguments, and the verification options taken out of them."""

    argv: list[str]
    bundle: Path | None
    trust: Path | None
    keys: list[Path]


def _value(argv: list[str], i: int, opt: str) -> tuple[str, int]:
    arg = argv[i]
    if arg.startswith(opt + "="):
        return arg[len(opt) + 1 :], i + 1
    if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
        raise InputError(f"{opt} needs a value", hint="see airgap probe --help")
    return argv[i + 1], i + 2


def split_args(argv: list[str]) -> ProbeArgs:
    """Take ``--trust P`` and ``--key K`` (repeatable) out of the probe's arguments (pure)."""
    rest: list[str] = []
    trust: Path | None = None
    keys: list[Path] = []
    bundle: Path | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        opt = arg.split("=", 1)[0]
        if opt in ("--trust", "--key"):
            value, i = _value(argv, i, opt)
            if opt == "--trust":
                if trust is not None:
                    raise InputError("--trust is given twice", hint="give one trust policy")
                trust = Path(value)
            else:
                keys.append(Path(value))
            continue
        if opt == "--bundle":
            value, nxt = _value(argv, i, opt)
            bundle = Path(value)
            rest += argv[i:nxt]
            i = nxt
            continue
        rest.append(arg)
        i += 1
    if (trust is not None or keys) and bundle is None:
        raise InputError(
            "--trust/--key verify a --bundle before its kernels and smoke test run",
            hint="an --installed bundle was verified when it was installed; probe it without them",
        )
    return ProbeArgs(rest, bundle, trust, keys)


@dataclass
class Prepared:
    argv: list[str]
    verified: bool
    report: VerifyReport | None


@contextmanager
def prepare(args: ProbeArgs, *, reporter: Reporter | None = None) -> Iterator[Prepared]:
    """Verify the ``--bundle`` when a policy is given; a parts bundle (verified or not) is handed
    to the probe as its ``bundle.json`` in a private temporary folder."""
    policy = policy_from_options(args.trust, args.keys or None)
    report = None
    if policy is not None and args.bundle is not None:
        with reporter if reporter is not None else Reporter() as rep:  # closed before probing
            report = verify_bundle(args.bundle, policy, reporter=rep)
        if not report.ok:
            yield Prepared(args.argv, False, report)
            return
    if args.bundle is None or not _is_parts(args.bundle):
        yield Prepared(args.argv, report is not None, report)
        return
    with tempfile.TemporaryDirectory(prefix="airgap-probe-") as tmp:
        descriptor = _descriptor_bytes(args.bundle, report)
        path = Path(tmp) / "bundle.json"
        path.write_bytes(descriptor)  # a private folder of our own: no one else writes here
        yield Prepared(_replace_bundle(args.argv, str(path)), report is not None, report)


def _is_parts(path: Path) -> bool:
    if path.is_dir():
        return False
    try:
        parts, index = parts_of(path)
    except InputError:
        return False
    return index is not None or len(parts) > 1


def _descriptor_bytes(bundle: Path, report: VerifyReport | None) -> bytes:
    if report is not None and layout.BUNDLE_JSON in report.verified:
        return report.verified[layout.BUNDLE_JSON]
    from packager.bundle.reader import open_bundle

    b = open_bundle(bundle)
    try:
        return b.descriptor_bytes()
    finally:
        b.close()


def _replace_bundle(argv: list[str], path: str) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--bundle":
            out += ["--bundle", path]
            skip = True
        elif arg.startswith("--bundle="):
            out.append(f"--bundle={path}")
        else:
            out.append(arg)
    return out
