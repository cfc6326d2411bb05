"""`gsco-hub evaluate --task TASK --data DATA`: every decision method scored on labelled images."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gsco_common.cli import JsonFlag, console, err_console, handle_errors, print_json
from gsco_common.errors import ConfigError
from gsco_common.paths import check_output_folder
from gsco_runtime.cases.readers import read_cases
from hub.cli.context import Threads, generalist_options, task_runtime
from hub.evaluation.case_inputs import save_case_inputs
from hub.evaluation.evaluate import evaluate
from hub.evaluation.report import (
    arbitration_lines,
    comparison_notes,
    comparison_table,
    disagreement_lines,
    disagreement_table,
    rich_table,
    vote_comparison_table,
    write_outputs,
)
from hub.evaluation.statistics import DEFAULT_RESAMPLES, MIN_RESAMPLES


@handle_errors
def evaluate_cmd(
    ctx: typer.Context,
    task: str = typer.Option(..., "--task", help="Task id whose approved specialists are evaluated."),
    data: Path = typer.Option(..., "--data", help="Labelled images: .npz, ImageFolder tree or CSV manifest."),
    split: str = typer.Option("test", "--split", help="Split of DATA to evaluate on."),
    kind: str = typer.Option("auto", "--kind", help="auto, npz, imagefolder or csv."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Evaluate on the first N images only."),
    out: Path | None = typer.Option(None, "--out", help="Folder for evaluation.json, .md and .png."),
    cases_out: Path | None = typer.Option(
        None,
        "--cases-out",
        help="Also write each case's decision inputs (specialists' probabilities, retrieved labels, "
        "competence, consensus; and the calibration cases') to this .npz, for offline analysis.",
    ),
    bootstrap: int = typer.Option(
        DEFAULT_RESAMPLES,
        "--bootstrap",
        min=MIN_RESAMPLES,
        help="Bootstrap resamples for the 95 % confidence intervals and paired comparisons.",
    ),
    seed: int = typer.Option(
        0, "--seed", min=0, help="Seed of the bootstrap resamples (same seed, same intervals)."
    ),
    reference: str | None = typer.Option(
        None,
        "--reference",
        help="Compare every method with this specialist (as listed, e.g. 'pneumonia.resnet18.site-a v1'), "
        "named before seeing results; default: the best specialist on this evaluation set.",
    ),
    threads: Threads = None,
    json_out: JsonFlag = False,
) -> None:
    """ACC, macro-F1 and AUC with 95 % CIs per method; collaboration tested against the best specialist."""
    if cases_out is not None and (cases_out.suffix != ".npz" or cases_out.is_dir()):
        raise ConfigError(f"--cases-out must name a .npz file, not {cases_out.name!r}")
    check_output_folder("--out", out)
    check_output_folder("--cases-out", cases_out.parent if cases_out is not None else None)
    with task_runtime(ctx, task, generalist_options(ctx), threads) as runtime:
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

            report = evaluate(
                runtime,
                task,
                images,
                truth,
                progress=tick,
                resamples=bootstrap,
                seed=seed,
                reference=reference,
                keep_case_inputs=cases_out is not None,
            )
    written = write_outputs(report, out) if out is not None else {}
    if cases_out is not None and report.case_inputs is not None:
        written["cases"] = save_case_inputs(cases_out, report.case_inputs)
    if json_out:
        print_json({**report.to_dict(), "files": {k: str(v) for k, v in written.items()}})
        return
    console.print(rich_table(report))
    for table in (comparison_table(report), vote_comparison_table(report)):
        if table is not None:
            console.print(table)
    disagreements = disagreement_table(report)
    if disagreements is not None:
        console.print(disagreements)
    notes = [*comparison_notes(report), *disagreement_lines(report), *arbitration_lines(report)]
    for line in [*notes, *report.notes]:
        console.print(line, highlight=False)
    for name, path in written.items():
        console.print(f"{name}: {path}", highlight=False)
