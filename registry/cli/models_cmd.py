"""`gsco-registry models list|show`."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from gsco_common.cli import JsonFlag, console, handle_errors, print_json
from registry.cli.context import open_registry

models_app = typer.Typer(help="Published specialist versions.", no_args_is_help=True)


def _metric(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@models_app.command("list")
@handle_errors
def models_list(
    ctx: typer.Context,
    status: str | None = typer.Option(None, "--status", help="pending | approved | rejected | revoked."),
    task: str | None = typer.Option(None, "--task", help="Only this task."),
    json_output: JsonFlag = False,
) -> None:
    """List published versions with status and headline metrics."""
    with open_registry(ctx) as registry:
        refs = registry.versions(status=status, task=task)
    if json_output:
        print_json([ref.to_dict() for ref in refs])
        return
    table = Table("version", "status", "alias", "auc", "bal. acc.")
    table.add_column("name", overflow="fold")
    for ref in refs:
        table.add_row(
            ref.version,
            ref.status,
            ", ".join(ref.aliases),
            _metric(ref.metrics.get("auc")),
            _metric(ref.metrics.get("balanced_accuracy")),
            ref.name,
        )
    console.print(table)


@models_app.command("show")
@handle_errors
def models_show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Registered model name (TASK.BACKBONE.SOURCE)."),
    version: str = typer.Argument(..., help="Version number."),
    json_output: JsonFlag = False,
) -> None:
    """Show one version: tags, status, alias and its model card."""
    with open_registry(ctx) as registry:
        ref, card = registry.show(name, version)
        decisions = registry.decisions(name, version)
    data = {**ref.to_dict(), "decisions": decisions, "card": card}
    if json_output:
        print_json(data)
        return
    console.print(f"[bold]{ref.name}[/] version {ref.version}: {ref.status}", highlight=False, soft_wrap=True)
    for key in ("task", "backbone", "source", "site_fingerprint", "bundle_digest", "model_uid"):
        console.print(f"  {key}: {data[key]}", highlight=False, soft_wrap=True)
    console.print(f"  aliases: {', '.join(ref.aliases) or '-'}; decisions: {', '.join(decisions) or '-'}")
    console.print_json(json.dumps(card))
