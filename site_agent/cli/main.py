"""`site-agent`: what hospital IT runs inside the site. One module per command.

This module builds the app and registers the commands of the command modules; they never import
it (so there is no import circle and no registration by import side effect).
"""

from __future__ import annotations

from gsco_common.cli import top_level_app
from site_agent.cli import (
    backbones_cmd,
    evaluate_cmd,
    export_cmd,
    federation_cmd,
    init_cmd,
    publish_cmd,
    rotate_key_cmd,
    train_cmd,
)

app = top_level_app(
    "site-agent",
    "Train, evaluate, export, sign and publish specialist classifiers on a site's own data. "
    "Patient data never leaves this machine.",
)
app.command("backbones")(backbones_cmd.backbones)
app.command("evaluate")(evaluate_cmd.evaluate)
app.command("export")(export_cmd.export)
app.add_typer(federation_cmd.federation_app, name="federation")
app.command("join")(federation_cmd.join_command)
app.command("init")(init_cmd.init)
app.command("publish")(publish_cmd.publish)
app.command("rotate-key")(rotate_key_cmd.rotate_key)
app.command("train")(train_cmd.train)
