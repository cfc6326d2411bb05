"""`gsco-registry`: verify, approve, reject and revoke published specialists; manage sites and tasks.

One module per resource (``setup_cmd``: init, tasks, sites; ``models_cmd``; ``review_cmd``:
verify, approve, reject, revoke; ``audit_cmd``: audit, trust). Every command accepts the global
``--home`` / ``--tracking-uri`` / ``--db-uri`` options (see :mod:`registry.config`).
"""

from __future__ import annotations

import typer

from registry.clikit import registry_options, top_level_app
from registry.config import RegistryConfig

app = top_level_app(
    "gsco-registry", "The central team's registry of signed specialist bundles (MLflow-backed)."
)


@app.callback()
@registry_options(
    home="Registry home (embedded database, artifacts, keys). Default: GSCO_HOME or ~/.gsco.",
    tracking_uri="MLflow tracking server or database URI. Default: GSCO_TRACKING_URI, else embedded.",
    db_uri="Database of the registry's own tables (needed with a server). Default: GSCO_REGISTRY_DB.",
)
def main(ctx: typer.Context, *, config: RegistryConfig) -> None:
    """Choose the registry every subcommand works on."""
    ctx.obj = config


from registry.cli import audit_cmd, models_cmd, review_cmd, setup_cmd  # noqa: E402,F401

app.add_typer(setup_cmd.tasks_app, name="tasks")
app.add_typer(setup_cmd.sites_app, name="sites")
app.add_typer(models_cmd.models_app, name="models")
app.add_typer(audit_cmd.audit_app, name="audit")
app.add_typer(audit_cmd.trust_app, name="trust")
