"""Option types the command modules of the CLI share (typer reads them at run time, so no
``from __future__ import annotations`` here: Python 3.9 sites run this)."""

from typing import Annotated

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]

SigningKeyOpt = Annotated[
    str,
    typer.Option(
        "--key",
        help="Private key (passphrase from AIRGAP_KEY_PASSPHRASE) or "
        "'pkcs11:token=NAME;object=LABEL' (PIN from AIRGAP_PKCS11_PIN).",
    ),
]
