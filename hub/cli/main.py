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
from registry.clikit import registry_options, top_level_app
from registry.config import RegistryConfig

app = top_level_app(
    "gsco-hub",
    "The GSCo hub: specialists from the registry, a case library, and a diagnosis with evidence.",
)


@app.callback()
@registry_options(
    home="Registry and hub home. Default: GSCO_HOME or ~/.gsco.",
    tracking_uri="MLflow tracking server or database URI. Default: GSCO_TRACKING_URI.",
    db_uri="Database of the registry's own tables (with a server). Default: GSCO_REGISTRY_DB.",
    retries=1,
)
def main(
    ctx: typer.Context,
    *,
    config: RegistryConfig,
    central_key: Path | None = typer.Option(
        None,
        "--central-key",
        help="Pin the central approval public key (PEM). Default: the registry home's keys/approval.pub.",
    ),
) -> None:
    """Choose the registry the hub serves from."""
    ctx.obj = HubContext(registry=config, central_key=central_key)


from hub.cli import cases_cmd, diagnose_cmd, evaluate_cmd  # noqa: E402,F401  (commands register on import)

app.add_typer(cases_cmd.cases_app, name="cases")

from hub.cli import federation_cmd  # noqa: E402  (the `federation` sub-app)

app.add_typer(federation_cmd.federation_app, name="federation")
