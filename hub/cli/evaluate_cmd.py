"""`gsco-hub evaluate --task TASK --data DATA`: every decision method scored on labelled images."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gsco_runtime.cases.readers import read_cases
from gsco_runtime.evaluation.evaluate import evaluate
from gsco_runtime.evaluation.report import arbitration_lines, rich_table, write_outputs
from hub.cli.context import JSON_OPT, THREADS_OPT, GeneralistOptions, generalist_flags, task_runtime
from hub.cli.main import app
from registry.clikit import console, err_console, handle_errors, print_json


@app.command("evaluate")
@handle_errors
@generalist_flags
def evaluate_cmd(
    ctx: typer.Context,
    task: str = typer.Option(..., "--task", help="Task id whose approved specialists are evaluated."),
    data: Path = typer.Option(..., "--data", help="Labelled images: .npz, ImageFolder tree or CSV manifest."),
    split: str = typer.Option("test", "--split", help="Split of DATA to evaluate on."),
    kind: str = typer.Option("auto", "--kind", help="auto, npz, imagefolder or csv."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Evaluate on the first N images only."),
    out: Path | None = typer.Option(None, "--out", help="Folder for evaluation.json, .md and .png."),
    threads: int | None = THREADS_OPT,
    json_out: bool = JSON_OPT,
    *,
    generalist: GeneralistOptions,
) -> None:
    """ACC, macro-F1 and AUC of each specialist, their vote, RAD, consensus (and the generalist)."""
    with task_runtime(ctx, task, generalist, threads) as runtime:
        labels = runtime.task_spec(runtime.pool.snapshot(task)).label_names
        cases = read_cases(data, labels, split=split, kind=kind)
        images, truth = cases.images[:limit], cases.labels[:limit]
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err_console, transient=True) as bar:
            bars: dict[str, int] = {}

            def tick(stage: str, done: int, total: int) -> None:
                if stage not in bars:
                    bars[stage] = bar.add_task(stage, total=total)
                bar.update(bars[stage], completed=done)

            report = evaluate(runtime, task, images, truth, progress=tick)
    written = write_outputs(report, out) if out is not None else {}
    if json_out:
        print_json({**report.to_dict(), "files": {k: str(v) for k, v in written.items()}})
        return
    console.print(rich_table(report))
    for line in [*arbitration_lines(report), *report.notes]:
        console.print(line, highlight=False)
    for name, path in written.items():
        console.print(f"{name}: {path}", highlight=False)
