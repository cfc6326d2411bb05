"""`gsco-registry audit show|verify` and `trust export`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from gsco_common.cli import JsonFlag, console, handle_errors, print_json, print_result
from registry.cli.context import open_registry
from registry.pinning import read_central_key_file

audit_app = typer.Typer(help="The append-only, hash-chained audit log.", no_args_is_help=True)
trust_app = typer.Typer(help="What hubs need to verify bundles offline.", no_args_is_help=True)


@audit_app.command("show")
@handle_errors
def audit_show(
    ctx: typer.Context,
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the newest N entries."),
    json_output: JsonFlag = False,
) -> None:
    """Print the audit log, oldest first."""
    with open_registry(ctx) as registry:
        entries = registry.audit_entries(limit)
    if json_output:
        print_json([entry.to_dict() for entry in entries])
        return
    for entry in entries:
        console.print(
            f"{entry.seq:>5}  {entry.at[:19]}Z  {entry.actor}  {entry.action}  {entry.subject}  "
            + json.dumps(entry.details, separators=(",", ":")),
            highlight=False,
            soft_wrap=True,
        )


@audit_app.command("verify")
@handle_errors
def audit_verify(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Recompute the hash chain; name the first broken entry (exit code 13) if any.

    Keep the printed head hash outside the registry: a shorter chain with another head means
    the newest entries were deleted.
    """
    with open_registry(ctx) as registry:
        report = registry.audit_verify()
    data = {"ok": True, "entries": report.entries, "head_hash": report.head_hash}
    print_result(json_output, data, f"audit log intact: {report.entries} entries, head {report.head_hash}")


@audit_app.command("checkpoint")
@handle_errors
def audit_checkpoint(
    ctx: typer.Context,
    reviewer: str = typer.Option("central-team", "--reviewer", help="Who signs (kept in the audit log)."),
) -> None:
    """Sign the current head with the central key, so a recomputed history before it is detected.

    approve and revoke do this too; run it after enrolling or revoking sites.
    """
    with open_registry(ctx) as registry:
        registry.checkpoint_audit(actor=f"reviewer:{reviewer}")
    console.print("audit head signed with the central key")


@trust_app.command("export")
@handle_errors
def trust_export(
    ctx: typer.Context,
    out: Path = typer.Argument(..., help="Where to write the trust store (JSON)."),
    central_key: Path | None = typer.Option(
        None, "--central-key", help="Central approval public key (default: GSCO_HOME/keys/approval.pub)."
    ),
) -> None:
    """Write the trust store (central key, active site keys, revoked digests) for a hub."""
    pem = read_central_key_file(central_key)
    with open_registry(ctx) as registry:
        store = registry.trust_store(pem)
    store.write(out)
    console.print(
        f"wrote {out.name}: {len(store.site_keys)} active site key(s), {len(store.revoked_digests)} revoked",
        highlight=False,
    )
