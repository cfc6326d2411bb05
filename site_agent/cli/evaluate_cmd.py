"""``site-agent evaluate``: metrics of a run's best model on a split of the site's data."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from gsco_common.cli import JsonFlag, console, handle_errors, print_json
from site_agent.config import data_override


class Split(StrEnum):
    val = "val"
    test = "test"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def metrics_tables(metrics: dict[str, Any]) -> list[Table]:
    """Summary, per-class and confusion-matrix tables."""
    summary = Table(title=f"metrics (n={metrics['n']})")
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "auc", "ece"):
        summary.add_row(key, _fmt(metrics[key]))
    point = metrics.get("operating_point")
    if point:
        summary.add_row("Youden threshold", f"{point['threshold']:.4f}")
    per_class = Table(title="per class")
    for column in ("label", "support", "sensitivity", "specificity", "auc"):
        per_class.add_column(column, justify="left" if column == "label" else "right")
    for label, values in metrics["per_class"].items():
        per_class.add_row(
            label,
            str(values["support"]),
            _fmt(values["sensitivity"]),
            _fmt(values["specificity"]),
            _fmt(values["auc"]),
        )
    matrix = Table(title="confusion matrix (rows: true, columns: predicted)")
    matrix.add_column("")
    for label in metrics["label_names"]:
        matrix.add_column(label, justify="right")
    for label, row in zip(metrics["label_names"], metrics["confusion_matrix"], strict=True):
        matrix.add_row(label, *(str(count) for count in row))
    return [summary, per_class, matrix]


@handle_errors
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run folder (SITE_DIR/runs/<run-id>)."),
    data: Path | None = typer.Option(None, "--data", help="Data to evaluate on; default: the run's data."),
    split: Split = typer.Option(Split.val, "--split", help="Which split to evaluate."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    json_output: JsonFlag = False,
) -> None:
    """Evaluate the run's best checkpoint with the card's preprocessing (as the hub will run it)."""
    # torch and timm load here, not at import: `site-agent --help` stays fast.
    from site_agent.data.loader import load_site_data
    from site_agent.training.run_dir import load_model, load_run
    from specialist.metrics import compute_metrics
    from specialist.predict import predict

    info = load_run(run_dir)
    data_config = info.data if data is None else data_override(info.data, data)
    images = load_site_data(data_config, info.label_names, info.seed).split(split.value)
    probs, _ = predict(load_model(run_dir), images, info.preprocessing, batch_size, tta=info.training.tta)
    metrics = compute_metrics(images.labels, probs, info.label_names)
    if json_output:
        print_json(
            {"run_id": info.run_id, "backbone": info.backbone, "split": split.value, "metrics": metrics}
        )
        return
    console.print(f"{info.run_id} ({info.backbone}), split {split.value}", highlight=False)
    for table in metrics_tables(metrics):
        console.print(table)
