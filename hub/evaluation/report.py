"""The evaluation as a terminal table, a Markdown table, JSON and a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.table import Table  # noqa: E402

from hub.evaluation.evaluate import EvaluationReport  # noqa: E402

METRICS = ("accuracy", "macro_f1", "auc")


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def rich_table(report: EvaluationReport) -> Table:
    table = Table(title=f"task {report.task_id}: {report.n} images, classes {report.class_counts}")
    for column in ("method", "ACC", "macro-F1", "AUC", "note"):
        table.add_column(column, justify="left" if column in ("method", "note") else "right")
    for m in report.methods:
        table.add_row(m.name, _fmt(m.accuracy), _fmt(m.macro_f1), _fmt(m.auc), m.note)
    return table


def markdown_table(report: EvaluationReport) -> str:
    lines = ["| method | ACC | macro-F1 | AUC | note |", "|---|---:|---:|---:|---|"]
    for m in report.methods:
        lines.append(f"| {m.name} | {_fmt(m.accuracy)} | {_fmt(m.macro_f1)} | {_fmt(m.auc)} | {m.note} |")
    return "\n".join(lines)


def arbitration_lines(report: EvaluationReport) -> list[str]:
    if report.arbitration is None:
        return []
    a = report.arbitration.to_dict()
    upheld, corrected = a["share_right_and_upheld"], a["share_wrong_and_corrected"]

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.1f} %"

    return [
        f"zero-shot vs specialists' majority disagree on {a['disagreements']} of {report.n} images",
        f"generalist right and upheld its answer: {a['right_upheld']} ({pct(upheld)})",
        f"generalist wrong and corrected itself: {a['wrong_corrected']} ({pct(corrected)})",
    ]


def save_chart(report: EvaluationReport, path: Path) -> Path:
    """Grouped bars (ACC, macro-F1, AUC) per method."""
    names = [m.name for m in report.methods]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names) + 2), 4.2))
    width = 0.27
    for offset, metric in enumerate(METRICS):
        values = [getattr(m, metric) or 0.0 for m in report.methods]
        ax.bar([i + (offset - 1) * width for i in range(len(names))], values, width, label=metric)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.15)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_title(f"GSCo evaluation, task {report.task_id} (n={report.n})")
    ax.legend(loc="upper center", ncol=len(METRICS), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_outputs(report: EvaluationReport, out_dir: Path) -> dict[str, Path]:
    """``evaluation.json``, ``evaluation.md`` and ``evaluation.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "evaluation.json"
    json_path.write_text(json.dumps(report.to_dict(), indent=2))
    md_path = out_dir / "evaluation.md"
    md_path.write_text(markdown_table(report) + "\n\n" + "\n".join(arbitration_lines(report)) + "\n")
    return {"json": json_path, "markdown": md_path, "chart": save_chart(report, out_dir / "evaluation.png")}
