"""The `airgap` command line: argument handling and rendering only; the work is in the stages."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from packager import __version__, render
from packager.errors import AirgapError, InputError
from packager.fsutil import atomic_write_text

app = typer.Typer(
    name="airgap",
    help="Signed offline bundles for AI inference deployments (Ascend/CANN and NVIDIA/CUDA).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def _version(value: bool) -> None:
    if value:
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
    from packager.validate import validate as run

    report = run(manifest)
    if as_json:
        render.emit_json(report.to_json())
    else:
        render.validation(report)
    raise typer.Exit(0 if report.valid else 1)


@app.command()
def init(
    name: Annotated[str, typer.Argument(help="Bundle name, e.g. qwen2.5-7b-ascend.")],
    vendor: Annotated[
        str | None,
        typer.Option(help="Accelerator vendor: nvidia, huawei or none."),
    ] = None,
    chip: Annotated[str | None, typer.Option(help="Chip id, e.g. h100 or ascend910b3.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Where to write (default NAME.yaml).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
) -> None:
    """Write a commented starter manifest that validates."""
    from packager.starter import starter_manifest

    if vendor is not None and vendor not in ("nvidia", "huawei", "none"):
        raise InputError(f"--vendor {vendor!r}: expected nvidia, huawei or none")
    text = starter_manifest(name, vendor, chip)
    target = out or Path(f"{name}.yaml")
    atomic_write_text(target, text, overwrite=force)
    render.stderr.print(f"wrote {target}; next: airgap validate {target}")


def main(argv: list[str] | None = None) -> None:
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
        render.stderr.print(
            f"[bold red]internal error:[/bold red] {type(exc).__name__}: {exc}\n"
            "  hint: this is a bug in airgap; rerun with AIRGAP_DEBUG=1 for the traceback "
            "and report it"
        )
        sys.exit(70)


if __name__ == "__main__":
    main()
