"""`site-agent`: what hospital IT runs inside the site. One module per command."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="site-agent",
    help="Train, evaluate, export, sign and publish specialist classifiers on a site's own data. "
    "Patient data never leaves this machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each command module registers itself on `app` (one module per command, as in Flower's CLI).
from site_agent.cli import commands as _commands  # noqa: E402,F401
