"""`gsco-hub cases import`: load the hub's reference case library for a task."""

from __future__ import annotations

from pathlib import Path

import typer

from gsco_common.cli import JsonFlag, console, handle_errors, print_json
from gsco_common.errors import ConfigError, RegistryError
from gsco_runtime.cases.library import build_library, library_dir, save_library
from gsco_runtime.cases.readers import read_cases
from hub.cli.context import hub_context
from registry.bundle.provenance import source_digest
from registry.service import Registry

cases_app = typer.Typer(
    help="The case library: de-identified reference cases used for retrieval.", no_args_is_help=True
)


def task_labels(ctx: typer.Context, task: str, labels: str | None) -> tuple[str, ...]:
    """Labels from ``--labels``, else the registry's definition of the task (they must agree)."""
    given = tuple(label.strip() for label in labels.split(",")) if labels else None
    try:
        with Registry.open(hub_context(ctx).registry) as registry:
            known = {t.task_id: t for t in registry.tasks()}
    except RegistryError:
        if given is None:
            raise
        return given
    if task not in known:
        raise ConfigError(
            f"the registry has no task {task!r}", hint="create it with `gsco-registry tasks create`"
        )
    registered = tuple(known[task].labels)
    if given is not None and given != registered:
        raise ConfigError(f"--labels {list(given)} differ from the registry's task labels {list(registered)}")
    return registered


@cases_app.command("import")
@handle_errors
def import_cases(
    ctx: typer.Context,
    task: str = typer.Option(..., "--task", help="Task id (labels come from the registry)."),
    data: Path = typer.Option(
        ..., "--data", help="Cases: MedMNIST-style .npz, ImageFolder tree or CSV manifest."
    ),
    split: str = typer.Option(
        "train", "--split", help="Split to import (train, val or test): one the specialists did not train on."
    ),
    kind: str = typer.Option("auto", "--kind", help="auto, npz, imagefolder or csv."),
    labels: str | None = typer.Option(
        None, "--labels", help="Comma-separated labels when no registry is reachable."
    ),
    json_out: JsonFlag = False,
) -> None:
    """Import a labelled case collection as the task's case library (replaces the previous one)."""
    label_names = task_labels(ctx, task, labels)
    raw = read_cases(data, label_names, split=split, kind=kind)
    library = build_library(task, label_names, raw, source_digest(data, split))
    home = hub_context(ctx).home
    save_library(library, home)
    summary = {
        "task": task,
        "cases": len(library),
        "class_counts": dict(zip(label_names, library.class_counts(), strict=True)),
        "digest": library.digest,
        "source_digest": library.source_digest,
        "with_reports": sum(1 for report in library.reports if report),
    }
    if json_out:
        print_json(summary)
        return
    console.print(f"imported {len(library)} cases for task {task}: {summary['class_counts']}")
    console.print(
        f"library digest {library.digest[:23]}... stored in {library_dir(home, task)}", highlight=False
    )
