"""Imports every command module so that each registers on the `site-agent` app."""

# Add one import per command module (each calls `@app.command(...)` on import).
