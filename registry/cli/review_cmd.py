"""`gsco-registry verify|approve|reject|revoke NAME VERSION`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gsco_common.cli import JsonFlag, console, handle_errors, print_json, print_result
from gsco_common.errors import ConfigError, SignatureError
from registry.cli.context import AuditReason, open_registry
from registry.policy.policy import load_policy
from registry.service import Registry
from registry.store.models import VersionRef

REVIEWER_ENV = "GSCO_REVIEWER"
ModelName = Annotated[str, typer.Argument(help="Registered model name (TASK.BACKBONE.SOURCE).")]
VersionNumber = Annotated[str, typer.Argument(help="Version number.")]


def _reviewer(value: str | None) -> str:
    return value or os.environ.get(REVIEWER_ENV) or "central-team"


@handle_errors
def verify(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="Registered model name (TASK.BACKBONE.SOURCE)."),
    version: str | None = typer.Argument(None, help="Version number."),
    check_all: bool = typer.Option(
        False, "--all", help="Check the whole trust state against the audit log and signed checkpoints."
    ),
    json_output: JsonFlag = False,
) -> None:
    """Check a version as a hub would (signatures, active key, approval record, signed set).

    With ``--all``: the trust tables against the audit log and its signed checkpoints, and every
    task's aliases against its signed approved set.

    Exit code 0 when approved (all consistent); otherwise the report is printed and the exit
    code is 6. The MLflow alias is shown but never counts.
    """
    if check_all:
        _verify_all(ctx, json_output)
        return
    if name is None or version is None:
        raise ConfigError("give NAME VERSION, or --all")
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


def _verify_all(ctx: typer.Context, json_output: bool) -> None:
    with open_registry(ctx) as registry:
        problems = registry.trust_problems()
        for task in registry.tasks():
            problems += [
                f"task {task.task_id}: {line}" for line in registry.alias_disagreements(task.task_id)
            ]
    if json_output:
        print_json({"ok": not problems, "problems": problems})
    else:
        for line in problems:
            console.print(f"[red]disagrees[/]: {line}", highlight=False, soft_wrap=True)
        if not problems:
            console.print("trust state consistent with the audit log and the signed approved sets")
    if problems:
        raise typer.Exit(SignatureError.exit_code)


@handle_errors
def approve(
    ctx: typer.Context,
    name: ModelName,
    version: VersionNumber,
    reviewer: str = typer.Option(..., "--reviewer", help="Who approves (kept in the audit log)."),
    note: str = typer.Option("", "--note", help="Free-text note for the audit log."),
    policy_file: Path | None = typer.Option(None, "--policy", help="Policy YAML overriding the defaults."),
    json_output: JsonFlag = False,
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


def _closing_command(
    command: str, action: Callable[..., VersionRef], done: str, doc: str
) -> Callable[..., None]:
    """The `reject`, `revoke` or `promote` command: the same flags, another registry call and message."""

    @handle_errors
    def close(
        ctx: typer.Context,
        name: ModelName,
        version: VersionNumber,
        reason: AuditReason,
        reviewer: str | None = typer.Option(
            None, "--reviewer", help=f"Who {command}s (default: {REVIEWER_ENV})."
        ),
        json_output: JsonFlag = False,
    ) -> None:
        with open_registry(ctx) as registry:
            ref = action(registry, name, version, reason=reason, reviewer=_reviewer(reviewer))
        print_result(json_output, ref.to_dict(), f"{done} {ref.name} version {ref.version}")

    close.__doc__ = doc
    return close


reject = _closing_command("reject", Registry.reject, "rejected", "Reject a pending version.")
promote = _closing_command(
    "promote",
    Registry.promote,
    "promoted",
    "Serve an earlier approved version again: a new signed approved set (hubs ignore hand-moved aliases).",
)
revoke = _closing_command(
    "revoke",
    Registry.revoke,
    "revoked",
    "Revoke a version: hubs drop it at their next poll (its digest joins the revocation list).",
)


@handle_errors
def lift_revocation(
    ctx: typer.Context,
    model_digest: str = typer.Argument(..., help="sha256:<hex> of the revoked model.onnx."),
    reason: str = typer.Option(..., "--reason", help="Why the model may be approved again (audited)."),
    reviewer: str | None = typer.Option(None, "--reviewer", help=f"Who lifts it (default: {REVIEWER_ENV})."),
    json_output: JsonFlag = False,
) -> None:
    """Let a revoked model content be approved again (a new version still needs `approve`)."""
    with open_registry(ctx) as registry:
        registry.lift_revocation(model_digest, reason=reason, reviewer=_reviewer(reviewer))
    print_result(
        json_output, {"model_digest": model_digest, "lifted": True}, f"lifted revocation of {model_digest}"
    )
