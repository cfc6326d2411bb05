"""`gsco-registry init`, `tasks create|list`, `sites enroll|list|revoke|rotate|keys|revoke-key`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gsco_common.cli import JsonFlag, console, handle_errors, print_json, print_result, print_table
from gsco_common.errors import KeyMaterialError
from gsco_common.paths import not_there
from registry.cli.context import AuditReason, config_of, open_registry
from registry.service import Registry

tasks_app = typer.Typer(help="Tasks: the ordered label sets bundles are published for.", no_args_is_help=True)
sites_app = typer.Typer(help="Enrolled sites and their signing keys.", no_args_is_help=True)

# Arguments that several site commands share, declared once.
SiteName = Annotated[str, typer.Argument(help="Site name.")]


@handle_errors
def init(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Create the registry database and the central approval key (passphrase: GSCO_KEY_PASSPHRASE).

    Safe to re-run: existing tables and an existing key are kept.
    """
    config = config_of(ctx)
    registry, result = Registry.init(config)
    registry.close()
    data = {
        "registry": config.describe(),
        "approval_key_created": result.created_key,
        "approval_key_fingerprint": result.approval_fingerprint,
    }
    if json_output:
        print_json(data)
        return
    state = "created" if result.created_key else "kept existing"
    console.print(
        f"registry ready ({config.describe()}); approval key {state}: {result.approval_fingerprint}"
    )


@tasks_app.command("create")
@handle_errors
def tasks_create(
    ctx: typer.Context,
    task_id: str = typer.Argument(..., metavar="TASK", help="Task id, e.g. pneumonia."),
    labels: str = typer.Option(..., "--labels", help="Ordered, comma-separated label names."),
    modality: str = typer.Option(..., "--modality", help='Imaging modality, e.g. "chest X-ray".'),
    json_output: JsonFlag = False,
) -> None:
    """Create a task; every bundle of it must carry exactly these labels in this order."""
    with open_registry(ctx) as registry:
        task = registry.create_task(task_id, labels.split(","), modality)
    print_result(
        json_output, task.to_dict(), f"task {task.task_id}: {', '.join(task.labels)} ({task.modality})"
    )


@tasks_app.command("list")
@handle_errors
def tasks_list(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """List the tasks."""
    with open_registry(ctx) as registry:
        tasks = registry.tasks()
    rows = [(task.task_id, ", ".join(task.labels), task.modality) for task in tasks]
    print_table(json_output, [task.to_dict() for task in tasks], ("task", "labels", "modality"), rows)


@sites_app.command("enroll")
@handle_errors
def sites_enroll(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Site name (lowercase letters, digits, '-')."),
    public_key: Path = typer.Option(..., "--public-key", help="The site's keys/site.pub (PEM)."),
    json_output: JsonFlag = False,
) -> None:
    """Enroll a site's public key: bundles it signs may then be published."""
    pem = _read_public_key(public_key)
    with open_registry(ctx) as registry:
        site = registry.enroll_site(name, pem)
    print_result(json_output, site.to_dict(), f"enrolled {site.name}: {site.fingerprint}")


@sites_app.command("list")
@handle_errors
def sites_list(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """List enrolled sites with their key fingerprints and status."""
    with open_registry(ctx) as registry:
        sites = registry.sites()
    rows = [(site.name, site.status, site.fingerprint) for site in sites]
    print_table(json_output, [site.to_dict() for site in sites], ("site", "status", "key fingerprint"), rows)


@sites_app.command("revoke")
@handle_errors
def sites_revoke(
    ctx: typer.Context,
    name: SiteName,
    reason: AuditReason = "",
    json_output: JsonFlag = False,
) -> None:
    """Revoke a site's key: its bundles can no longer be published, approved or served."""
    with open_registry(ctx) as registry:
        site = registry.revoke_site(name, reason)
    print_result(json_output, site.to_dict(), f"revoked {site.name} ({site.fingerprint})")


@sites_app.command("rotate")
@handle_errors
def sites_rotate(
    ctx: typer.Context,
    name: SiteName,
    public_key: Path = typer.Option(..., "--public-key", help="The site's new keys/site.pub (PEM)."),
    json_output: JsonFlag = False,
) -> None:
    """Enroll a site's new signing key; the old key is retired.

    New bundles must be signed with the new key. Bundles signed with the old key stay trusted
    until `gsco-registry sites revoke-key NAME OLD_FINGERPRINT`.
    """
    pem = _read_public_key(public_key)
    with open_registry(ctx) as registry:
        site, retired = registry.rotate_site_key(name, pem)
    print_result(
        json_output,
        {**site.to_dict(), "retired_fingerprint": retired.fingerprint},
        f"rotated {site.name}: new key {site.fingerprint}; retired {retired.fingerprint}",
    )


@sites_app.command("keys")
@handle_errors
def sites_keys(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Every site key: current (the site's status), retired or revoked."""
    with open_registry(ctx) as registry:
        current = [{**site.to_dict(), "key": "current"} for site in registry.sites()]
        retired = [{**key.to_dict(), "name": key.site, "key": "retired"} for key in registry.retired_keys()]
    rows = [{k: row[k] for k in ("name", "key", "status", "fingerprint")} for row in current + retired]
    cells = [[str(value) for value in row.values()] for row in rows]
    print_table(json_output, rows, ("site", "key", "status", "fingerprint"), cells)


@sites_app.command("revoke-key")
@handle_errors
def sites_revoke_key(
    ctx: typer.Context,
    name: SiteName,
    fingerprint: str = typer.Argument(..., help="The retired key's fingerprint (sha256:...)."),
    reason: AuditReason = "",
    json_output: JsonFlag = False,
) -> None:
    """Revoke a site's retired key: the bundles it signed are no longer served."""
    with open_registry(ctx) as registry:
        key = registry.revoke_retired_key(name, fingerprint, reason)
    print_result(json_output, key.to_dict(), f"revoked the retired key {key.fingerprint} of {key.site}")


def _read_public_key(path: Path) -> bytes:
    if not path.is_file():
        raise KeyMaterialError(f"public key file {path.name} {not_there(path, 'file')}")
    return path.read_bytes()
