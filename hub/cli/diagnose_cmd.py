"""`gsco-hub diagnose IMAGE --task TASK`: one decision, with its evidence, from the runtime."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from gsco_common.cli import JsonFlag, console, handle_errors, print_json
from gsco_common.errors import DataError
from gsco_common.paths import not_there
from gsco_runtime.cases.readers import read_image
from hub.cli.context import Threads, generalist_options, task_runtime


@handle_errors
def diagnose(
    ctx: typer.Context,
    image: Path = typer.Argument(..., help="Image file (PNG, JPEG, TIFF, BMP, GIF, WebP; not DICOM)."),
    task: str = typer.Option(..., "--task", help="Task id whose approved specialists decide."),
    report: bool = typer.Option(False, "--report", help="Also write a report (needs a generalist)."),
    threads: Threads = None,
    json_out: JsonFlag = False,
) -> None:
    """Diagnose one image with the task's approved specialists, retrieval and an arbiter."""
    if not image.is_file():
        raise DataError(f"the image file {not_there(image, 'file')}", hint="check the IMAGE path")
    pixels = read_image(image)
    with task_runtime(ctx, task, generalist_options(ctx), threads) as runtime:
        decision = runtime.diagnose(pixels, task)
        written = runtime.report(pixels, task) if report else None
    if json_out:
        print_json(
            {
                "decision": decision.to_dict(),
                "report": asdict(written) if written else None,
                "runtime": runtime.status(),
            }
        )
        return
    console.print(decision.render(), highlight=False, markup=False, soft_wrap=True)
    if written is not None:
        console.print(
            f"\nreport ({written.generalist}):\n{written.text}", highlight=False, markup=False, soft_wrap=True
        )
