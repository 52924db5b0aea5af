"""The `airgap` entry point: `airgap verify` on a short path, everything else through the typer app.

Verifying a bundle is what a site runs most, often in scripts, and for a bundle of a few GB the
interpreter's start-up is a visible share of the time: the typer app (typer, rich and
every command's options) costs more CPU than hashing half a GB. So ``verify BUNDLE (--key PUB ...
| --trust POLICY) [--json]``, exactly that, runs here with only what verification needs;
anything else (help, another option, a usage error) goes to the typer app, which defines the
command's options and messages. Both run packager.commands.verify and render the same way.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import NamedTuple


class VerifyArgs(NamedTuple):
    bundle: Path
    trust: Path | None
    keys: list[Path]
    as_json: bool


def parse_verify(args: list[str]) -> VerifyArgs | None:
    """``verify BUNDLE`` with ``--key PUB`` (repeatable), ``--trust POLICY`` and ``--json`` in any
    order (``--opt=value`` too); None for anything else, which the typer app handles."""
    if not args or args[0] != "verify":
        return None
    bundle: str | None = None
    trust: str | None = None
    keys: list[str] = []
    as_json = False
    rest = args[1:]
    i = 0
    while i < len(rest):
        a = rest[i]
        name, eq, value = a.partition("=")
        if a == "--json":
            as_json = True
        elif name in ("--key", "--trust") and a.startswith("--"):
            if not eq:
                if i + 1 >= len(rest) or rest[i + 1].startswith("-"):
                    return None
                i += 1
                value = rest[i]
            if not value:
                return None
            if name == "--key":
                keys.append(value)
            elif trust is None:
                trust = value
            else:
                return None
        elif a.startswith("-") or bundle is not None:
            return None
        else:
            bundle = a
        i += 1
    if bundle is None or (trust is None and not keys) or bundle.startswith("oci://"):
        return None  # an oci:// address is pulled by the full command
    return VerifyArgs(
        Path(bundle), Path(trust) if trust else None, [Path(k) for k in keys], as_json
    )


def _verify(v: VerifyArgs) -> int:
    from packager.commands.verify import verify
    from packager.errors import AirgapError

    try:
        if v.as_json:
            report = verify(v.bundle, v.trust, v.keys or None)
            from packager.cli.jsonout import emit_json

            emit_json(report.to_json())
        else:
            from packager.cli import render

            with render.reporter(enabled=True) as rep:
                report = verify(v.bundle, v.trust, v.keys or None, reporter=rep)
            render.verify_report(report)
    except AirgapError as exc:
        from packager.cli import render

        render.error(exc, as_json=v.as_json)
        return exc.exit_code
    except Exception as exc:
        if os.environ.get("AIRGAP_DEBUG"):
            raise
        from packager.cli import render

        render.internal_error(exc)
        return 70
    return 0 if report.ok else 1


#: the cyclic collector's thresholds for a command that runs once and ends (gc.set_threshold):
#: a young-generation pass every 100,000 allocations, not 700; the older ones as by default
ONE_SHOT_GC = (100_000, 10, 10)


def tune_collector(args: list[str]) -> None:
    """Collect cycles less often in a command that runs once and ends: a descriptor of 50,000
    files is about a million objects that live to the end, and the default thresholds
    (700, 10, 10) walked them again and again (10-25 % of the CPU of lock, build and verify at
    that scale). Cycles are still collected; at 50,000 files build's peak RSS is unchanged and
    lock's grows by about 20 MiB. `airgap serve` runs for days: it keeps the default."""
    if args[:1] != ["serve"]:
        gc.set_threshold(*ONE_SHOT_GC)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    tune_collector(args)
    fast = parse_verify(args)
    if fast is not None:
        sys.exit(_verify(fast))
    from packager.cli.app import main as app_main

    app_main(args)
