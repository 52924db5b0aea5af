"""The CLI's command groups besides the pipeline's own commands: `airgap trust ...`,
`airgap kernels ...` and `airgap key ...` (registered on the app by packager.cli.app). No
``from __future__ import annotations``: typer reads the annotations at run time (Python 3.9)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from packager.cli import render
from packager.cli.options import JsonOpt, SigningKeyOpt
from packager.cli.term import shown

trust_app = typer.Typer(
    help="Trust policies: trusted keys, threshold, revocations.", no_args_is_help=True
)


@trust_app.command("init")
def trust_init(
    policy: Annotated[Path, typer.Argument(help="The policy file to create.")],
    threshold: Annotated[
        Optional[int], typer.Option(min=1, help="Distinct trusted keys that must sign (1).")
    ] = None,
    max_age: Annotated[
        Optional[str], typer.Option(help="Refuse bundles older than this (90d, 52w).")
    ] = None,
    from_policy: Annotated[
        Optional[Path],
        typer.Option("--from", help="Start the next version of this policy (its keys, unsigned)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write an empty trust policy (version 1), or the next version of one (--from)."""
    from packager.commands import trust as trust_cmd

    version = trust_cmd.init_policy(policy, threshold, max_age, from_policy)
    render.stderr.print(
        f"wrote {shown(policy)} (version {version}); add keys with `airgap trust add "
        f"{shown(policy)} PUB --name NAME`, sign it with `airgap trust sign {shown(policy)} --key KEY`"
    )
    _edit_json(as_json, policy, "init", version=version)


def _edit_json(
    as_json: bool,
    policy: Path,
    action: str,
    *,
    keyid: Optional[str] = None,
    version: Optional[int] = None,
    dropped: int = 0,
) -> None:
    """``--json`` of a policy edit (schemas/trust-edit.schema.json): what was done to which
    file. Not the policy itself: an edit may leave it unusable until more keys are added
    (`airgap trust show` says so), and the edit still happened."""
    if as_json:
        render.emit_json(
            {
                "policy": str(policy),
                "action": action,
                "keyid": keyid,
                "version": version,
                "signatures_dropped": dropped,
            }
        )


def _dropped_note(policy: Path, dropped: int) -> None:
    if dropped:
        render.stderr.print(
            f"note: the edit dropped {dropped} signature(s) of {shown(policy)}: "
            "sign it again (airgap trust sign)"
        )


@trust_app.command("add")
def trust_add(
    policy: Annotated[Path, typer.Argument(help="The policy file.")],
    public_key: Annotated[Path, typer.Argument(help="A public key PEM.")],
    name: Annotated[str, typer.Option(help="Who holds the key.")],
    as_json: JsonOpt = False,
) -> None:
    """Trust a public key (an edit: the policy's signatures are dropped)."""
    from packager.commands import trust as trust_cmd

    edit = trust_cmd.add_key(policy, public_key, name)
    if not as_json:
        render.plain(edit.keyid)
    _dropped_note(policy, edit.signatures_dropped)
    _edit_json(as_json, policy, "add", keyid=edit.keyid, dropped=edit.signatures_dropped)


@trust_app.command("revoke")
def trust_revoke(
    policy: Annotated[Path, typer.Argument(help="The policy file.")],
    keyid: Annotated[str, typer.Argument(help="Keyid (or a unique prefix, or the key's name).")],
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key: bundles it signed no longer count its signature."""
    from packager.commands import trust as trust_cmd

    edit = trust_cmd.revoke_key(policy, keyid, reason)
    _dropped_note(policy, edit.signatures_dropped)
    _edit_json(as_json, policy, "revoke", keyid=edit.keyid, dropped=edit.signatures_dropped)


@trust_app.command("show")
def trust_show(
    policy: Annotated[Path, typer.Argument(help="The policy file.")],
    as_json: JsonOpt = False,
) -> None:
    """Show the trusted keys, threshold, revocations and max age."""
    from packager.commands import trust as trust_cmd

    render.show(trust_cmd.show(policy), as_json, render.trust_policy)


@trust_app.command("sign")
def trust_sign(
    policy: Annotated[Path, typer.Argument(help="The policy file (signed in place).")],
    key: SigningKeyOpt,
    as_json: JsonOpt = False,
) -> None:
    """Sign a trust policy: a site takes a new version only when a threshold of the keys it
    trusts now and a threshold of the new policy's own keys signed it."""
    from packager.commands import trust as trust_cmd
    from packager.signing.keys import open_signing_key

    render.show(trust_cmd.sign_policy(policy, open_signing_key(key)), as_json, render.policy_signed)


@trust_app.command("update")
def trust_update(
    policies: Annotated[
        list[Path], typer.Argument(help="New policies (a chain is applied in version order).")
    ],
    site: Annotated[Path, typer.Option("--site", help="The install prefix that keeps it.")],
    initial: Annotated[
        bool,
        typer.Option(
            "--initial", help="The site has no policy yet: take this one on the operator's word."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Replace the site's trust policy by rotation: each new version must be signed by a
    threshold of the current one's keys and of its own, and be higher (no rollback).

    Exit 0 applied (or nothing new), 1 refused (nothing changed), 2 bad input.
    """
    from packager.site.trust import update_site_trust

    render.show(update_site_trust(site, policies, initial=initial), as_json, render.trust_updated)


kernels_app = typer.Typer(
    help="Inference kernels: what a binary holds and where it runs.", no_args_is_help=True
)


@kernels_app.command("inspect")
def kernels_inspect(
    file: Annotated[
        Path,
        typer.Argument(help="A cubin, fatbin, PTX file, or an ELF object/.so embedding a fatbin."),
    ],
    kind: Annotated[
        Optional[str], typer.Option(help="The kind the manifest declares (cuda-fatbin, ...).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Read a kernel binary: format, SM archs (SASS/PTX, compression), kernel symbols.

    Exit 0 readable, 1 damaged entries, 2 not a CUDA file.
    """
    from packager.kernels.inspection import inspect_file

    info = inspect_file(file, kind)
    if as_json:
        render.emit_json(info.to_json(), ok=info.ok)
    else:
        render.plain(info.render_text())
    raise typer.Exit(0 if info.ok else 1)


key_app = typer.Typer(help="Signing keys.", no_args_is_help=True)


@key_app.command("generate")
def key_generate(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for NAME.key.pem and NAME.pub.pem.")
    ],
    name: Annotated[str, typer.Option(help="File name stem.")] = "airgap",
    algorithm: Annotated[str, typer.Option(help="ecdsa-p256 or ed25519.")] = "ecdsa-p256",
    as_json: JsonOpt = False,
) -> None:
    """Write an encrypted private key (passphrase from AIRGAP_KEY_PASSPHRASE or a prompt) and its
    public key; print the keyid."""
    from packager.commands.keys import generate_key_files

    kid, priv, pub = generate_key_files(out, name, algorithm)
    if as_json:
        render.emit_json(
            {"keyid": kid, "private_key": str(priv), "public_key": str(pub), "algorithm": algorithm}
        )
    else:
        render.stderr.print(f"wrote {shown(priv)} (encrypted) and {shown(pub)}")
        render.plain(kid)


@key_app.command("show")
def key_show(
    key: Annotated[
        str,
        typer.Argument(
            help="A public key PEM, a private key (asks for its passphrase), or a key in a "
            "token: 'pkcs11:token=NAME;object=LABEL'."
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Print a key's keyid and algorithm."""
    from packager.commands.keys import describe_key

    render.show(describe_key(key), as_json, render.key_info)
