"""Imports every command module so that each registers on the `site-agent` app."""

# Add one import per command module (each calls `@app.command(...)` on import).
from site_agent.cli import (  # noqa: F401
    evaluate_cmd,
    export_cmd,
    federation_cmd,
    init_cmd,
    publish_cmd,
    train_cmd,
)
