"""``site-agent join`` and ``site-agent federation ...``: the site's side of federated training."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from gsco_common.cli import JsonFlag, console, handle_errors, print_json
from gsco_common.errors import ConfigError
from site_agent.config import load_site_config
from site_agent.federation.approval import ApprovalStore, fab_hash_of
from site_agent.federation.node_keys import generate_node_keys, node_key_paths
from site_agent.federation.supernode import JoinOptions, join

SiteFolderOption = Annotated[Path, typer.Option("--site", help="Site folder.")]

federation_app = typer.Typer(
    name="federation",
    help="Federated training: the SuperNode key and the Flower apps this site agrees to run.",
    no_args_is_help=True,
)


@federation_app.command("keys")
@handle_errors
def keys(
    site_dir: Path = typer.Argument(..., help="Site folder."),
    json_output: JsonFlag = False,
) -> None:
    """Create the site's SuperNode authentication key pair (keys/supernode_key, keys/supernode_key.pub).

    Send the .pub file to the hub operator, who registers it with `gsco-hub federation register`.
    """
    found = generate_node_keys(site_dir)
    public = node_key_paths(site_dir)[1]
    if json_output:
        print_json({"public_key": str(public), "fingerprint": found})
        return
    console.print(f"SuperNode key pair written; public key: {public}", highlight=False, soft_wrap=True)
    console.print(f"fingerprint: {found}", highlight=False)
    console.print("next: send the .pub file to the hub operator for registration", highlight=False)


@federation_app.command("approve")
@handle_errors
def approve(
    site: SiteFolderOption,
    app_path: Path | None = typer.Argument(None, help="The Flower app folder or .fab file you reviewed."),
    fab_hash: str | None = typer.Option(None, "--hash", help="Approve by SHA-256 instead of a file."),
    json_output: JsonFlag = False,
) -> None:
    """Allow this site's SuperNode to run one Flower app (identified by the SHA-256 of its FAB).

    Messages of any other app, or of this app changed by one byte, are refused at the site.
    """
    if (app_path is None) == (fab_hash is None):
        raise ConfigError("give either the app folder / .fab file or --hash, not both")
    app_id, version = "", ""
    if app_path is not None:
        fab_hash, app_id, version = fab_hash_of(app_path)
    approved = ApprovalStore(site).approve(str(fab_hash), app_id, version)
    if json_output:
        print_json({"fab_hash": approved.fab_hash, "app": approved.app_id, "version": approved.version})
        return
    label = f"{approved.app_id} {approved.version}".strip() or "app"
    console.print(f"approved {label}: sha256:{approved.fab_hash}", highlight=False, soft_wrap=True)


@federation_app.command("revoke")
@handle_errors
def revoke(
    site: SiteFolderOption,
    fab_hash: str = typer.Argument(..., help="SHA-256 of the app to remove from the approved list."),
) -> None:
    """Stop running one approved Flower app (takes effect with the next message)."""
    if not ApprovalStore(site).revoke(fab_hash):
        raise ConfigError(
            "that app hash is not on the approved list", hint="see `site-agent federation apps`"
        )
    console.print("revoked", highlight=False)


@federation_app.command("apps")
@handle_errors
def apps(
    site: SiteFolderOption,
    json_output: JsonFlag = False,
) -> None:
    """List the Flower apps this site approved."""
    entries = ApprovalStore(site).list()
    if json_output:
        print_json([entry.__dict__ for entry in entries])
        return
    for entry in entries:
        console.print(
            f"sha256:{entry.fab_hash}  {entry.app_id} {entry.version}  ({entry.approved_at})", highlight=False
        )
    if not entries:
        console.print("no approved apps", highlight=False)


@handle_errors
def join_command(
    site: Path = typer.Option(..., "--site", help="Site folder (its site.yaml names the data)."),
    superlink: str | None = typer.Option(None, "--superlink", help="HOST:PORT of the hub's SuperLink."),
    insecure: bool = typer.Option(False, "--insecure", help="Plain HTTP, no node auth: loopback tests only."),
    root_certificates: Path | None = typer.Option(
        None, "--root-certificates", help="The hub's CA certificate (default: SITE_DIR/federation/ca.pem)."
    ),
    runtime_port: int | None = typer.Option(
        None, "--runtime-port", help="Local port of the SuperNode's API."
    ),
) -> None:
    """Run this site's Flower SuperNode until stopped (Ctrl-C or SIGTERM).

    TLS with the site's SuperNode key unless --insecure. Only apps approved with
    `site-agent federation approve` run; others are refused with a message to the hub.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    config = load_site_config(site)
    address = superlink or config.federation.superlink
    if not address:
        raise ConfigError(
            "no SuperLink address", hint="pass --superlink HOST:PORT or set federation.superlink"
        )
    options = JoinOptions(
        site_dir=site,
        superlink=address,
        insecure=insecure or config.federation.insecure,
        root_certificates=root_certificates or site / "federation" / "ca.pem",
        runtime_port=runtime_port,
    )
    console.print(
        f"joining {address} ({'insecure' if options.insecure else 'TLS + node auth'})", highlight=False
    )
    join(options)
    console.print("SuperNode stopped", highlight=False)
