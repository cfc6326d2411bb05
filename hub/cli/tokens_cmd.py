"""`gsco-hub tokens create|list|revoke` and `gsco-hub audit show|verify`: tokens (stored hashed), audit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from gsco_common.cli import JsonFlag, console, handle_errors, print_json, print_result
from hub.cli.context import hub_context
from hub.service.audit import HubRecords
from hub.service.database import HubDatabase
from hub.service.settings import load_settings
from hub.service.tokens import TokenStore

tokens_app = typer.Typer(
    help="Bearer tokens of the hub service (roles clinician, admin).", no_args_is_help=True
)
audit_app = typer.Typer(
    help="The hub's audit trail (diagnoses, reviews, reports), hash-chained.", no_args_is_help=True
)
CONFIG_OPT = typer.Option(None, "--config", help="YAML file of hub settings (for db_url).")


@contextmanager
def _database(ctx: typer.Context, config: Path | None) -> Iterator[HubDatabase]:
    """The hub database of the chosen settings, closed when the block ends (also on an error)."""
    db = HubDatabase(load_settings(hub_context(ctx).registry, config).database_url)
    try:
        yield db
    finally:
        db.close()


@tokens_app.command("create")
@handle_errors
def create(
    ctx: typer.Context,
    role: str = typer.Option(..., "--role", help="clinician or admin."),
    name: str = typer.Option(..., "--name", help="Who holds the token (shown in the audit trail)."),
    config: Path | None = CONFIG_OPT,
    json_out: JsonFlag = False,
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    with _database(ctx, config) as db:
        info, secret = TokenStore(db).create(role, name)
    print_result(json_out, {**info.to_dict(), "token": secret}, secret)


@tokens_app.command("list")
@handle_errors
def list_tokens(ctx: typer.Context, config: Path | None = CONFIG_OPT, json_out: JsonFlag = False) -> None:
    """List tokens (never their secrets)."""
    with _database(ctx, config) as db:
        infos = TokenStore(db).list()
    if json_out:
        print_json([i.to_dict() for i in infos])
        return
    for i in infos:
        state = f"revoked {i.revoked_at}" if i.revoked_at else "active"
        console.print(f"{i.id}\t{i.role}\t{i.name}\t{i.created_at}\t{state}", highlight=False)


@tokens_app.command("revoke")
@handle_errors
def revoke(
    ctx: typer.Context,
    token_id: int = typer.Argument(..., help="Token id (see `tokens list`)."),
    config: Path | None = CONFIG_OPT,
    json_out: JsonFlag = False,
) -> None:
    """Revoke a token; requests with it get 401 at once."""
    with _database(ctx, config) as db:
        info = TokenStore(db).revoke(token_id)
    print_result(json_out, info.to_dict(), f"token {info.id} ({info.name}) revoked")


@audit_app.command("show")
@handle_errors
def show(
    ctx: typer.Context,
    limit: int = typer.Option(100, "--limit", min=1, help="Newest entries to show."),
    config: Path | None = CONFIG_OPT,
    json_out: JsonFlag = False,
) -> None:
    """Show the hub's audit trail (who, when, task, image SHA-256, models, decision, review)."""
    with _database(ctx, config) as db:
        entries = HubRecords(db).entries(limit)
    if json_out:
        print_json(entries)
        return
    for e in entries:
        label = (e["review"] or e["decision"] or {}).get("label", "")
        console.print(
            f"{e['seq']}\t{e['at']}\t{e['actor']}\t{e['action']}\t{e['task_id']}\t{label}", highlight=False
        )


@audit_app.command("verify")
@handle_errors
def verify(ctx: typer.Context, config: Path | None = CONFIG_OPT, json_out: JsonFlag = False) -> None:
    """Recompute the audit trail's hash chain; name the first broken entry (exit code 13) if any.

    Keep the printed head hash outside the hub database: a shorter chain with another head means
    the newest entries were deleted.
    """
    with _database(ctx, config) as db:
        report = HubRecords(db).verify()
    data = {"ok": True, "entries": report.entries, "head_hash": report.head_hash}
    print_result(json_out, data, f"audit trail intact: {report.entries} entries, head {report.head_hash}")
