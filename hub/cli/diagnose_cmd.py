"""`gsco-hub diagnose IMAGE --task TASK`: one decision, with its evidence, from the runtime."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from gsco_runtime.cases.readers import read_image
from hub.cli.context import (
    DEVICE_OPT,
    GENERALIST_OPT,
    JSON_OPT,
    MAX_TOKENS_OPT,
    MODEL_DIR_OPT,
    MODEL_OPT,
    RETRIES_OPT,
    THREADS_OPT,
    TIMEOUT_OPT,
    URL_OPT,
    GeneralistOptions,
    build_runtime,
    hub_context,
    warn_about_pool,
)
from hub.cli.main import app
from registry.clikit import console, handle_errors, print_json
from registry.errors import DataError


@app.command("diagnose")
@handle_errors
def diagnose(
    ctx: typer.Context,
    image: Path = typer.Argument(..., help="Image file (PNG, JPEG, TIFF, BMP)."),
    task: str = typer.Option(..., "--task", help="Task id whose approved specialists decide."),
    report: bool = typer.Option(False, "--report", help="Also write a report (needs a generalist)."),
    threads: int | None = THREADS_OPT,
    json_out: bool = JSON_OPT,
    generalist: str = GENERALIST_OPT,
    generalist_url: str | None = URL_OPT,
    generalist_model: str = MODEL_OPT,
    model_dir: Path | None = MODEL_DIR_OPT,
    device: str = DEVICE_OPT,
    generalist_timeout: float = TIMEOUT_OPT,
    generalist_retries: int = RETRIES_OPT,
    max_tokens: int = MAX_TOKENS_OPT,
) -> None:
    """Diagnose one image with the task's approved specialists, retrieval and an arbiter."""
    if not image.is_file():
        raise DataError("the image file was not found", hint="check the IMAGE path")
    pixels = read_image(image)
    options = GeneralistOptions(
        generalist,
        generalist_url,
        generalist_model,
        model_dir,
        device,
        generalist_timeout,
        generalist_retries,
        max_tokens,
    )
    runtime = build_runtime(hub_context(ctx), options, threads)
    try:
        runtime.pool.watch([task])
        warn_about_pool(runtime)
        decision = runtime.diagnose(pixels, task)
        written = runtime.report(pixels, task) if report else None
    finally:
        runtime.close()
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
