"""``site-agent publish RUN_DIR``: upload the run's signed bundle to the registry."""

from __future__ import annotations

from pathlib import Path

import typer

from gsco_common.cli import JsonFlag, console, handle_errors, print_json


@handle_errors
def publish(
    run_dir: Path = typer.Argument(..., help="A run folder with an exported bundle/."),
    registry: str | None = typer.Option(
        None,
        "--registry",
        help="Tracking URI (https://..., or a database such as sqlite:///... where the central "
        "team has created the task) or an embedded registry home folder. "
        "Default: site.yaml registry: (GSCO_TRACKING_URI / GSCO_HOME).",
    ),
    json_output: JsonFlag = False,
) -> None:
    """Publish RUN_DIR/bundle; prints the registered model name and version (pending approval)."""
    from site_agent.publish.publisher import publish_run

    result = publish_run(run_dir, registry=registry)
    if json_output:
        print_json(result.to_dict())
        return
    state = "published" if result.created else "already published"
    console.print(f"{state}: {result.name} version {result.version} ({result.status})", highlight=False)
