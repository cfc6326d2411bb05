"""Confusion-matrix and ROC figures for a run folder (matplotlib, headless Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from specialist.metrics import roc_points  # noqa: E402


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], label_names: Sequence[str], path: Path) -> None:
    """Counts with true labels as rows and predictions as columns."""
    counts = np.asarray(matrix)
    size = max(3.5, 1.0 + 0.8 * len(label_names))
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    ticks = np.arange(len(label_names))
    axes.set_xticks(ticks, labels=list(label_names), rotation=45, ha="right")
    axes.set_yticks(ticks, labels=list(label_names))
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    threshold = counts.max() / 2 if counts.size else 0
    for row in range(counts.shape[0]):
        for column in range(counts.shape[1]):
            colour = "white" if counts[row, column] > threshold else "black"
            axes.text(column, row, str(counts[row, column]), ha="center", va="center", color=colour)
    axes.set_title("confusion matrix")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_roc(labels: np.ndarray, probs: np.ndarray, label_names: Sequence[str], path: Path) -> None:
    """ROC of the positive class (binary) or one-vs-rest curves per class."""
    labels = np.asarray(labels).reshape(-1)
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    classes = [1] if probs.shape[1] == 2 else list(range(probs.shape[1]))
    for cls in classes:
        positives = labels == cls
        if positives.all() or not positives.any():
            continue
        fpr, tpr, _ = roc_points(positives, probs[:, cls])
        axes.plot(fpr, tpr, label=str(label_names[cls]))
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    axes.set_xlabel("1 - specificity")
    axes.set_ylabel("sensitivity")
    axes.set_title("ROC")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
