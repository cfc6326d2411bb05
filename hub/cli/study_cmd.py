"""`gsco-hub study STUDY.yaml`: train, publish, approve, import and evaluate as a study file says."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import typer

from gsco_common.cli import JsonFlag, console, err_console, handle_errors, print_json
from gsco_common.errors import ConfigError
from gsco_common.paths import check_output_folder
from hub.study.facts import load_baseline
from hub.study.outputs import check_out
from hub.study.report import verdict
from hub.study.run import run_study
from hub.study.spec import StudySpec, load_study


@handle_errors
def study(
    study_file: Path = typer.Argument(
        ..., help="The study (YAML): task, data sets, sites, library, evaluation."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for evaluation.* and study.json/.md. Default: ./study-<name>."
    ),
    work: Path | None = typer.Option(
        None,
        "--work",
        help="Work folder (shards, registry, sites; outside the repository). Default: a new temporary one.",
    ),
    keep_work: bool = typer.Option(False, "--keep-work", help="Keep the work folder after a successful run."),
    jobs: int = typer.Option(
        1,
        "--jobs",
        min=1,
        help="Repeats run at once, each in its own home (a study with `repeats`). Same results as one "
        "at a time; each site trains with the study's `threads`: keep jobs x threads within the CPU cores.",
    ),
    json_out: JsonFlag = False,
) -> None:
    """Run a study through the real CLIs in a fresh home and write its report."""
    spec = load_study(study_file)
    load_baseline(spec.compare_with)  # a broken one stops the study now, not after training
    out = out or Path(f"study-{spec.name}")
    check_out(spec, out)
    check_output_folder("--work", work)
    work = work or Path(tempfile.mkdtemp(prefix=f"gsco-study-{spec.name}-"))
    if work.exists() and any(work.iterdir()):
        raise ConfigError(
            f"--work {work} is not empty: a study starts in a fresh home", hint="pick an empty folder"
        )
    err_console.print(f"study {spec.name}: work folder {work}", highlight=False)
    _note_jobs(jobs, spec)

    def announce(step: str, seconds: float) -> None:
        err_console.print(f"[green]✓[/] {step} [dim]({seconds:.1f} s)[/]", highlight=False)

    result = run_study(spec, study_file.read_text(encoding="utf-8"), out, work, announce, jobs=jobs)
    if not keep_work:
        shutil.rmtree(work)
    files = {
        name: str(out / name)
        for name in ("evaluation.json", "evaluation.md", "evaluation.png", "study.json", "study.md")
    }
    if json_out:
        print_json({"study": spec.name, "files": files, "methods": result["methods"]})
        return
    console.print(verdict(result), highlight=False)
    for path in files.values():
        console.print(path, highlight=False)


def _cores() -> int:
    return os.cpu_count() or 1


def _note_jobs(jobs: int, spec: StudySpec) -> None:
    """Say when ``--jobs`` cannot help: fewer repeats than jobs, or more threads than CPU cores."""
    at_once = min(jobs, spec.repeats)
    if jobs > spec.repeats:
        err_console.print(
            f"note: --jobs {jobs}, but the study has {spec.repeats} repeat(s): {at_once} at a time",
            soft_wrap=True,
        )
    threads = max(site.training.get("num_threads", spec.threads) for site in spec.sites)
    busy, cores = at_once * threads, _cores()
    if busy > cores:
        err_console.print(
            f"note: {at_once} repeat(s) x {threads} thread(s) = {busy} busy threads on {cores} CPU core(s): "
            "steps will be slower, the results the same",
            soft_wrap=True,
        )
