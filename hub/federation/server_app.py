"""The hub's Flower ServerApp (named in ``hub/federation/app/pyproject.toml``).

It runs in the SuperLink's process tree with the run config that ``gsco-hub federation run``
submitted, drives :class:`~hub.federation.rounds.Federation` and reports through the run's
progress file. A failure is written there with its code and plain message before it is raised,
so the submitting command can show why the run stopped (``flwr run`` itself does not say).
"""

from __future__ import annotations

import logging

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from gsco_common.errors import GscoError
from hub.federation.progress import ProgressWriter
from hub.federation.rounds import Federation
from hub.federation.settings import RunSettings

log = logging.getLogger(__name__)

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    settings = RunSettings.from_run_config(context.run_config)
    progress = ProgressWriter(settings.output)
    progress.write("started", task=settings.task, rounds=settings.num_rounds, strategy=settings.strategy)
    try:
        Federation(grid, settings, run_id=context.run_id).run()
    except GscoError as exc:
        progress.write("failed", code=exc.code, message=exc.message, hint=exc.hint)
        raise
    except Exception as exc:
        progress.write("failed", code="GSCO-700", message=f"the ServerApp crashed ({type(exc).__name__})")
        raise
