"""`gsco-hub serve`: the HTTP service (FastAPI under uvicorn), one warm runtime per worker."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from gsco_common.cli import handle_errors
from hub.cli.context import hub_context
from hub.service.app import SETTINGS_ENV
from hub.service.database import HubDatabase
from hub.service.settings import load_settings
from registry.pinning import pinned_central_key, read_central_key_file

# A worker loads MLflow, onnxruntime and the specialists before it answers the parent's health
# pings; on a small machine that takes longer than uvicorn's 5 s default.
WORKER_STARTUP_S = 120


@handle_errors
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Worker processes (one runtime each)."),
    config: Path | None = typer.Option(None, "--config", help="YAML file of hub settings."),
) -> None:
    """Serve the web page and the HTTP API until interrupted.

    The validated settings travel to uvicorn's workers in an environment variable; uvicorn is
    started as ``python -m uvicorn`` (this process is replaced), because its worker processes
    re-import the main module and must not re-import this command line.
    """
    hub = hub_context(ctx)
    settings = load_settings(hub.registry, config, {"central_key": hub.central_key})
    # A worker that cannot pin the central key fails inside uvicorn, as a traceback: check it here.
    pinned_central_key(settings.registry.home, read_central_key_file(settings.central_key))
    # Create (or add to) the tables here, once: N workers doing it at once race for the DDL.
    HubDatabase(settings.database_url).close()
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "hub.service.app:app_from_env",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--timeout-worker-healthcheck",
        str(WORKER_STARTUP_S),
    ]
    sys.stdout.flush()
    os.execv(sys.executable, args)
