"""`gsco-hub`: the hub's command line. One module per command or sub-app.

Global options choose the registry exactly as ``gsco-registry`` does (``--home`` /
``--tracking-uri`` / ``--db-uri``, else ``GSCO_HOME`` / ``GSCO_TRACKING_URI`` /
``GSCO_REGISTRY_DB``). Sub-apps (``cases``, and ``federation`` from its own module) are added
with ``add_typer``; commands register themselves on :data:`app` when their module is imported.
"""

from __future__ import annotations

from pathlib import Path

import typer

from hub.cli.context import HubContext
from registry.config import RegistryConfig

app = typer.Typer(
    name="gsco-hub",
    help="The GSCo hub: specialists from the registry, a case library, and a diagnosis with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None, "--home", help="Registry and hub home. Default: GSCO_HOME or ~/.gsco."
    ),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow tracking server or database URI. Default: GSCO_TRACKING_URI."
    ),
    db_uri: str | None = typer.Option(
        None,
        "--db-uri",
        help="Database of the registry's own tables (with a server). Default: GSCO_REGISTRY_DB.",
    ),
    central_key: Path | None = typer.Option(
        None,
        "--central-key",
        help="Pin the central approval public key (PEM). Default: the registry home's keys/approval.pub.",
    ),
) -> None:
    """Choose the registry the hub serves from."""
    config = RegistryConfig.resolve(home=home, tracking_uri=tracking_uri, db_uri=db_uri, retries=1)
    ctx.obj = HubContext(registry=config, central_key=central_key)


from hub.cli import cases_cmd, diagnose_cmd, evaluate_cmd  # noqa: E402,F401  (commands register on import)

app.add_typer(cases_cmd.cases_app, name="cases")

from hub.cli import federation_cmd  # noqa: E402  (the `federation` sub-app)

app.add_typer(federation_cmd.federation_app, name="federation")
