"""`gsco-registry verify|approve|reject|revoke NAME VERSION`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import typer
from rich.table import Table

from registry.cli.context import JSON_OPTION, open_registry
from registry.cli.main import app
from registry.clikit import console, handle_errors, print_json, print_result
from registry.errors import SignatureError
from registry.policy.policy import load_policy
from registry.service import Registry
from registry.store.models import VersionRef

REVIEWER_ENV = "GSCO_REVIEWER"
NAME_ARG = typer.Argument(..., help="Registered model name (TASK.BACKBONE.SOURCE).")
VERSION_ARG = typer.Argument(..., help="Version number.")


def _reviewer(value: str | None) -> str:
    return value or os.environ.get(REVIEWER_ENV) or "central-team"


@app.command("verify")
@handle_errors
def verify(
    ctx: typer.Context, name: str = NAME_ARG, version: str = VERSION_ARG, json_output: bool = JSON_OPTION
) -> None:
    """Check a version as a hub would: both signatures, enrolled active key, approval record.

    Exit code 0 when approved; otherwise the report is printed and the exit code is 6.
    The MLflow alias is shown but never counts.
    """
    with open_registry(ctx) as registry:
        result = registry.verify(name, version)
    if json_output:
        print_json(result.to_dict())
    else:
        table = Table("check", "result")
        for check, outcome in result.checks.items():
            table.add_row(check, "[green]ok[/]" if outcome == "ok" else f"[red]{outcome}[/]")
        console.print(table)
        alias = "set" if result.ref.has_approved_alias else "not set"
        verdict = "[green]APPROVED[/]" if result.approved else "[red]NOT approved[/]"
        console.print(f"{name} version {version}: {verdict} (alias `approved` {alias})", highlight=False)
    if not result.approved:
        raise typer.Exit(SignatureError.exit_code)


@app.command("approve")
@handle_errors
def approve(
    ctx: typer.Context,
    name: str = NAME_ARG,
    version: str = VERSION_ARG,
    reviewer: str = typer.Option(..., "--reviewer", help="Who approves (kept in the audit log)."),
    note: str = typer.Option("", "--note", help="Free-text note for the audit log."),
    policy_file: Path | None = typer.Option(None, "--policy", help="Policy YAML overriding the defaults."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Run the approval policy; on pass sign with the central key and set the `approved` alias."""
    policy = load_policy(policy_file)
    with open_registry(ctx) as registry, console.status("running the approval checks"):
        ref, results = registry.approve(name, version, reviewer=reviewer, note=note, policy=policy)
    if json_output:
        print_json({**ref.to_dict(), "checks": [r.to_dict() for r in results]})
        return
    for result in results:
        console.print(f"  {result.status:7} {result.name}", highlight=False)
    console.print(f"approved {ref.name} version {ref.version}; approval.sig stored, alias `approved` set")


def _closing_command(command: str, action: Callable[..., VersionRef], done: str, doc: str) -> None:
    """Register `reject` or `revoke`: the same flags, another registry call and message."""

    @app.command(command, help=doc)
    @handle_errors
    def close(
        ctx: typer.Context,
        name: str = NAME_ARG,
        version: str = VERSION_ARG,
        reason: str = typer.Option(..., "--reason", help="Why (kept in the audit log)."),
        reviewer: str | None = typer.Option(
            None, "--reviewer", help=f"Who {command}s (default: {REVIEWER_ENV})."
        ),
        json_output: bool = JSON_OPTION,
    ) -> None:
        with open_registry(ctx) as registry:
            ref = action(registry, name, version, reason=reason, reviewer=_reviewer(reviewer))
        print_result(json_output, ref.to_dict(), f"{done} {ref.name} version {ref.version}")


_closing_command("reject", Registry.reject, "rejected", "Reject a pending version.")
_closing_command(
    "revoke",
    Registry.revoke,
    "revoked",
    "Revoke a version: hubs drop it at their next poll (its digest joins the revocation list).",
)
