"""The federation demo: a SuperLink and N SuperNodes on loopback, one run, then every process stopped.

    GSCO_KEY_PASSPHRASE=... python -m deploy.demo.federation --home /tmp/gsco-demo --data DEV.npz --rounds 2

Run from the repository root. The registry options are those of ``gsco-hub`` (``--home`` /
``--tracking-uri`` / ``--db-uri``, else ``GSCO_HOME`` / ``GSCO_TRACKING_URI`` /
``GSCO_REGISTRY_DB``); the demo's folder defaults to ``HOME/federation/demo``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from deploy.demo.local_federation import DemoTask, run_demo
from gsco_common.cli import (
    DbUriOption,
    HomeOption,
    JsonFlag,
    TrackingUriOption,
    console,
    handle_errors,
    print_json,
    top_level_app,
)
from hub.cli.federation_options import (
    BackboneOption,
    ImageSizeOption,
    RoundsOption,
    StrategyOption,
    run_settings,
)
from hub.cli.run_progress import ProgressPrinter, sigterm_as_interrupt
from registry.config import RegistryConfig

app = top_level_app("python -m deploy.demo.federation", __doc__.splitlines()[0])


class DemoProgressPrinter(ProgressPrinter):
    """The run's events as ``gsco-hub federation run`` shows them, plus the demo's own steps."""

    def _line(self, event: dict[str, Any]) -> str | None:
        if event["event"] == "demo":
            return f"demo: {event['step']}"
        return super()._line(event)


@app.command()
@handle_errors
def demo(
    sites: int = typer.Option(2, "--sites", min=1, max=8, help="Number of SuperNodes (sites)."),
    rounds: RoundsOption = 3,
    data: Path = typer.Option(..., "--data", help="MedMNIST-style .npz to split into non-IID site slices."),
    backbone: BackboneOption = "resnet18",
    image_size: ImageSizeOption = 28,
    strategy: StrategyOption = "fedavg",
    task: str = typer.Option("pneumonia", "--task", help="Task id of the demo."),
    labels: str = typer.Option(
        "normal,pneumonia", "--labels", help="Ordered labels (npz class i = label i)."
    ),
    modality: str = typer.Option("paediatric chest X-ray", "--modality", help="Imaging modality."),
    limit: int | None = typer.Option(None, "--limit", help="Use at most this many images in total."),
    tls: bool = typer.Option(False, "--tls", help="TLS and SuperNode authentication on loopback too."),
    workdir: Path | None = typer.Option(
        None, "--workdir", help="Demo folder (default: HOME/federation/demo)."
    ),
    home: HomeOption = None,
    tracking_uri: TrackingUriOption = None,
    db_uri: DbUriOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Run everything on this machine: a SuperLink and N SuperNodes on loopback, then stop them all."""
    registry = RegistryConfig.resolve(home=home, tracking_uri=tracking_uri, db_uri=db_uri, retries=1)
    folder = workdir or registry.home / "federation" / "demo"
    demo_task = DemoTask(task, tuple(label.strip() for label in labels.split(",")), modality)
    settings = run_settings(task, backbone, image_size, rounds, strategy, min_sites=sites)
    sigterm_as_interrupt()
    with DemoProgressPrinter(rounds, json_output) as printer:
        report = run_demo(
            data, folder, registry, settings, sites, printer, task=demo_task, tls=tls, limit=limit
        )
    if json_output:
        print_json(report)
        return
    bundle = report["bundle"]
    console.print(f"published {bundle['name']} version {bundle['version']}", highlight=False)
    console.print(f"stopped and checked {len(report['stopped_pids'])} processes: none left", highlight=False)
    console.print(json.dumps(report["result"]["final_metrics"], indent=2), highlight=False)


if __name__ == "__main__":
    app()
