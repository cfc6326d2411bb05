"""`gsco-registry`: verify, approve, reject and revoke published specialists; manage sites and tasks.

One module per resource (``setup_cmd``: init, tasks, sites; ``models_cmd``; ``review_cmd``:
verify, approve, reject, revoke, promote; ``audit_cmd``: audit, trust). Every command accepts the global
``--home`` / ``--tracking-uri`` / ``--db-uri`` options (see :mod:`registry.config`). This module
builds the app and registers the commands; the command modules never import it.
"""

from __future__ import annotations

import typer

from gsco_common.cli import DbUriOption, HomeOption, TrackingUriOption, handle_errors, top_level_app
from registry.cli import audit_cmd, models_cmd, review_cmd, setup_cmd
from registry.config import RegistryConfig

app = top_level_app(
    "gsco-registry", "The central team's registry of signed specialist bundles (MLflow-backed)."
)


@app.callback()
@handle_errors
def main(
    ctx: typer.Context,
    home: HomeOption = None,
    tracking_uri: TrackingUriOption = None,
    db_uri: DbUriOption = None,
) -> None:
    """Choose the registry every subcommand works on."""
    ctx.obj = RegistryConfig.resolve(home=home, tracking_uri=tracking_uri, db_uri=db_uri)


app.command("verify")(review_cmd.verify)
app.command("approve")(review_cmd.approve)
app.command("reject")(review_cmd.reject)
app.command("revoke")(review_cmd.revoke)
app.command("promote")(review_cmd.promote)
app.command("lift-revocation")(review_cmd.lift_revocation)
app.command("init")(setup_cmd.init)
app.add_typer(setup_cmd.tasks_app, name="tasks")
app.add_typer(setup_cmd.sites_app, name="sites")
app.add_typer(models_cmd.models_app, name="models")
app.add_typer(audit_cmd.audit_app, name="audit")
app.add_typer(audit_cmd.trust_app, name="trust")
