"""`gsco-hub`: the hub's command line. One module per command or sub-app.

Global options choose the registry exactly as ``gsco-registry`` does (``--home`` /
``--tracking-uri`` / ``--db-uri``, else ``GSCO_HOME`` / ``GSCO_TRACKING_URI`` /
``GSCO_REGISTRY_DB``). This module builds the app, adds the sub-apps (``cases``, ``federation``)
and registers the commands of the command modules, which never import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gsco_common.cli import DbUriOption, HomeOption, TrackingUriOption, top_level_app
from hub.cli import cases_cmd, diagnose_cmd, evaluate_cmd, federation_cmd, serve_cmd, study_cmd, tokens_cmd
from hub.cli.context import GeneralistCommand, HubContext
from registry.config import RegistryConfig

app = top_level_app(
    "gsco-hub",
    "The GSCo hub: specialists from the registry, a case library, and a diagnosis with evidence.",
)


@app.callback()
def main(
    ctx: typer.Context,
    home: HomeOption = None,
    tracking_uri: TrackingUriOption = None,
    db_uri: DbUriOption = None,
    central_key: Annotated[
        Path | None,
        typer.Option(
            "--central-key",
            help="Pin the central approval public key (PEM). Default: the registry home's keys/approval.pub.",
        ),
    ] = None,
) -> None:
    """Choose the registry the hub serves from."""
    registry = RegistryConfig.resolve(home=home, tracking_uri=tracking_uri, db_uri=db_uri, retries=1)
    ctx.obj = HubContext(registry=registry, central_key=central_key)


app.command("diagnose", cls=GeneralistCommand)(diagnose_cmd.diagnose)
app.command("evaluate", cls=GeneralistCommand)(evaluate_cmd.evaluate_cmd)
app.command("study")(study_cmd.study)
app.add_typer(cases_cmd.cases_app, name="cases")
app.add_typer(federation_cmd.federation_app, name="federation")
app.command("serve")(serve_cmd.serve)
app.add_typer(tokens_cmd.tokens_app, name="tokens")
app.add_typer(tokens_cmd.audit_app, name="audit")
