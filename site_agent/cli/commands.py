"""Imports every command module so that each registers on the `site-agent` app."""

# Add one import per command module (each calls `@app.command(...)` on import).
from site_agent.cli import (  # noqa: E402,F401  # noqa: E402,F401
    evaluate_cmd,
    export_cmd,
    federation_cmd,  # noqa: E402,F401
    init_cmd,
    publish_cmd,
    train_cmd,
)
