"""The evaluation as a terminal table, a Markdown table, JSON and a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.table import Table  # noqa: E402

from hub.evaluation.disagreement import ANALYSED, NO_DISAGREEMENT  # noqa: E402
from hub.evaluation.evaluate import EvaluationReport, MethodResult  # noqa: E402
from hub.evaluation.significance import MCNEMAR, METRICS, MetricComparison  # noqa: E402
from hub.evaluation.statistics import Interval  # noqa: E402

HEADERS = ("method", "ACC [95 % CI]", "macro-F1 [95 % CI]", "AUC [95 % CI]", "note")
COMPARISON_HEADERS = ("method", "metric", "difference [95 % CI]", "p", "verdict")
DISAGREEMENT_HEADERS = (
    "method",
    "n",
    "ACC [95 % CI]",
    "balanced ACC [95 % CI]",
    "ACC - reference [95 % CI]",
    "right only by reference / method",
    "McNemar p",
    "verdict",
)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _with_ci(value: float | None, ci: Interval | None, sep: str) -> str:
    """``0.912 [0.887, 0.934]``; the value alone when no interval could be computed."""
    if value is None or ci is None:
        return _fmt(value)
    return f"{value:.3f}{sep}[{ci[0]:.3f}, {ci[1]:.3f}]"


def _cells(m: MethodResult, sep: str = " ") -> list[str]:
    values = (_with_ci(getattr(m, metric), getattr(m, f"{metric}_ci"), sep) for metric in METRICS)
    return [m.name, *values, m.note]


def _title(report: EvaluationReport) -> str:
    title = f"task {report.task_id}: {report.n} images, classes {report.class_counts}"
    if report.statistics is not None:
        title += f"; {report.statistics.resamples} bootstrap resamples, seed {report.statistics.seed}"
    return title


def rich_table(report: EvaluationReport) -> Table:
    table = Table(title=_title(report))
    for column in HEADERS:
        table.add_column(column, justify="left" if column in ("method", "note") else "right")
    for m in report.methods:
        table.add_row(*_cells(m, "\n"))  # the interval under the value keeps the table narrow
    return table


def markdown_table(report: EvaluationReport) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|---|---:|---:|---:|---|"]
    lines += ["| " + " | ".join(_cells(m)) + " |" for m in report.methods]
    return "\n".join(lines)


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.3f}"


def _comparisons(
    report: EvaluationReport, against_vote: bool = False
) -> list[tuple[str, str, MetricComparison]]:
    """``(method, metric, comparison)`` for each method and metric tested against the reference.

    With ``against_vote``: each arbiter and metric tested against the specialists' vote.
    """
    stats = report.statistics
    found = []
    tested = (stats.against_vote if against_vote else stats.comparisons) if stats is not None else []
    for c in tested:
        for metric, result in (("ACC", c.accuracy), ("macro-F1", c.macro_f1), ("AUC", c.auc)):
            if result is not None:
                found.append((c.method, metric, result))
    return found


def comparison_rows(report: EvaluationReport, sep: str = " ", against_vote: bool = False) -> list[list[str]]:
    """One row per method and metric: its difference to the reference (or to the vote)."""
    rows = []
    for method, metric, c in _comparisons(report, against_vote):
        ci = f"{sep}[{c.ci[0]:+.3f}, {c.ci[1]:+.3f}]" if c.ci is not None else ""
        p = "—" if c.p_value is None else f"{c.p_value:.3g}"
        rows.append([method, metric, _signed(c.difference) + ci, p, c.verdict])
    return rows


def comparison_notes(report: EvaluationReport) -> list[str]:
    """What the comparisons are against, which test each metric got and the discordant counts."""
    stats = report.statistics
    if stats is None or stats.reference is None:
        return []
    tests: dict[str, str] = {}
    for _, metric, result in _comparisons(report):
        tests.setdefault(metric, result.test)
    return [
        f"Reference: {stats.reference} ({stats.reference_rule}); difference = method - reference.",
        *(f"{metric}: {test}." for metric, test in tests.items()),
        "p-values are per comparison, not adjusted for the number of methods compared.",
        *(
            f"{c.method}: {c.accuracy.reference_only} cases right only by the reference, "
            f"{c.accuracy.method_only} right only by the method."
            for c in stats.comparisons
        ),
    ]


def _rich(title: str, headers: tuple[str, ...], left: tuple[str, ...], rows: list[list[str]]) -> Table | None:
    """A terminal table; the ``left`` columns left-aligned, the others right (None without rows)."""
    if not rows:
        return None
    table = Table(title=title)
    for column in headers:
        table.add_column(column, justify="left" if column in left else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _markdown(headers: tuple[str, ...], left: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines; the ``left`` columns left-aligned, the others right."""
    rule = "|" + "|".join("---" if column in left else "---:" for column in headers) + "|"
    return ["| " + " | ".join(headers) + " |", rule, *("| " + " | ".join(row) + " |" for row in rows)]


COMPARISON_LEFT = ("method", "metric", "verdict")


def comparison_table(report: EvaluationReport) -> Table | None:
    return _rich(
        "collaboration vs the best specialist",
        COMPARISON_HEADERS,
        COMPARISON_LEFT,
        comparison_rows(report, "\n"),
    )


def vote_comparison_table(report: EvaluationReport) -> Table | None:
    return _rich(
        "arbiters vs the specialists' vote",
        COMPARISON_HEADERS,
        COMPARISON_LEFT,
        comparison_rows(report, "\n", against_vote=True),
    )


def comparison_markdown(report: EvaluationReport) -> str:
    rows = comparison_rows(report)
    if not rows:
        return ""
    lines = _markdown(COMPARISON_HEADERS, COMPARISON_LEFT, rows)
    lines += ["", *(f"- {note}" for note in comparison_notes(report))]
    vote_rows = comparison_rows(report, against_vote=True)
    if vote_rows:
        lines += [
            "",
            "Each arbiter against the specialists' vote (difference = arbiter - vote, same tests):",
            "",
            *_markdown(COMPARISON_HEADERS, COMPARISON_LEFT, vote_rows),
        ]
    return "\n".join(lines)


def disagreement_lines(report: EvaluationReport) -> list[str]:
    """What the disagreement subset is, its size, the reference and whether it has intervals."""
    d = report.disagreement
    if d is None:
        return []
    if d.status == NO_DISAGREEMENT:
        why = " (only one specialist is served)" if d.specialists < 2 else ""
        return [
            f"Where the specialists disagree: no disagreement; the served specialists gave the same "
            f"label on all {d.of} cases{why}."
        ]
    lines = [
        f"Where the specialists disagree: {d.subset}, {d.n} of {d.of} cases "
        f"({100 * d.n / d.of:.1f} %), classes {d.class_counts}. Reference: {d.reference} "
        f"({d.reference_rule}); difference = method - reference, tested by {MCNEMAR} on the subset."
    ]
    if d.status == ANALYSED:
        lines.append(f"Intervals: {d.intervals}; {d.resamples} resamples, seed {d.seed}.")
    else:
        lines.append(
            f"Only {d.n} disagreements (fewer than {d.min_cases_for_intervals}): too few for confidence "
            "intervals, so none are given; the figures below are counts, not estimates."
        )
    return lines


def disagreement_rows(report: EvaluationReport, sep: str = " ") -> list[list[str]]:
    """One row per method on the disagreement subset, with its McNemar test against the reference."""
    d = report.disagreement
    if d is None:
        return []
    tests = {c.method: c.accuracy for c in d.comparisons}
    rows = []
    for m in d.methods:
        c = tests.get(m.name)
        versus = ["—", "—", "—", "reference" if m.name == d.reference else ""]
        if c is not None:
            ci = f"{sep}[{c.ci[0]:+.3f}, {c.ci[1]:+.3f}]" if c.ci is not None else ""
            p = "—" if c.p_value is None else f"{c.p_value:.3g}"
            versus = [_signed(c.difference) + ci, f"{c.reference_only} / {c.method_only}", p, c.verdict]
        rows.append(
            [
                m.name,
                str(m.n),
                f"{m.correct}/{m.n} = " + _with_ci(m.accuracy, m.accuracy_ci, sep),
                _with_ci(m.balanced_accuracy, m.balanced_accuracy_ci, sep),
                *versus,
            ]
        )
    return rows


def disagreement_table(report: EvaluationReport) -> Table | None:
    rows = disagreement_rows(report, "\n")
    return _rich("where the specialists disagree", DISAGREEMENT_HEADERS, ("method", "verdict"), rows)


def disagreement_markdown(report: EvaluationReport) -> str:
    lines = disagreement_lines(report)
    rows = disagreement_rows(report)
    if rows:
        lines += ["", *_markdown(DISAGREEMENT_HEADERS, ("method", "verdict"), rows)]
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


def error_bars(report: EvaluationReport, metric: str) -> np.ndarray:
    """``[2, M]`` distances from each bar to the ends of its 95 % CI (0 where there is none)."""
    bars = np.zeros((2, len(report.methods)))
    for i, m in enumerate(report.methods):
        value, ci = getattr(m, metric), getattr(m, f"{metric}_ci")
        if value is not None and ci is not None:
            bars[:, i] = [max(value - ci[0], 0.0), max(ci[1] - value, 0.0)]
    return bars


def save_chart(report: EvaluationReport, path: Path) -> Path:
    """Grouped bars (ACC, macro-F1, AUC) per method, with their 95 % bootstrap CIs as error bars."""
    names = [m.name for m in report.methods]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names) + 2), 4.2))
    width = 0.27
    for offset, metric in enumerate(METRICS):
        values = [getattr(m, metric) or 0.0 for m in report.methods]
        ax.bar(
            [i + (offset - 1) * width for i in range(len(names))],
            values,
            width,
            yerr=error_bars(report, metric),
            capsize=2,
            error_kw={"elinewidth": 0.8},
            label=metric,
        )
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.15)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_title(f"GSCo evaluation, task {report.task_id} (n={report.n}); bars: 95 % bootstrap CI")
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
    sections = [
        markdown_table(report),
        comparison_markdown(report),
        disagreement_markdown(report),
        "\n".join(arbitration_lines(report)),
    ]
    md_path.write_text("\n\n".join(section for section in sections if section) + "\n")
    return {"json": json_path, "markdown": md_path, "chart": save_chart(report, out_dir / "evaluation.png")}
