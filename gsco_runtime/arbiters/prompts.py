"""Prompts sent to the generalist.

The GSCo prompt follows the paper's RAD: every specialist retrieves similar cases in its *own*
embedding space, and the prompt lists, per specialist, its diagnosis and the labels of the k
cases it retrieved (with the case library's report text where there is one). The wording of
the sentences is MedDr's public evaluation prompt (options quoted and separated by ", ",
labels joined by "," without spaces). The report prompt (``diagnose --report``) carries the
same per-specialist blocks, each with the specialist's probability. Specialists are numbered in
pool order, never named, and no case id reaches the generalist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

_INTRO = (
    "You are a helpful medical assistant. Your task is disease diagnosis. You are given a {modality} image."
)
_OPTIONS = "The possible diagnoses are: {options}."
_ONE_OPTION = "The response should only contain one option."
MAX_REPORT_CHARS = 300
"""A retrieved case's report is cut to this many characters in the prompt."""


@dataclass(frozen=True)
class SimilarCase:
    """A retrieved reference case as the generalist sees it: its label and report ("" if none)."""

    label: str
    report: str = ""


@dataclass(frozen=True)
class SpecialistView:
    """One specialist's diagnosis and the cases it retrieved in its own space, most similar first."""

    label: str
    similar: tuple[SimilarCase, ...] = ()
    probability: float | None = None
    """The specialist's probability of ``label``; only the report prompt shows it (MedDr's GSCo
    wording has none)."""


def quoted_options(options: Sequence[str]) -> str:
    return ", ".join(f"'{option}'" for option in options)


def _report(text: str) -> str:
    """One line, at most :data:`MAX_REPORT_CHARS` characters, double quotes made single."""
    line = " ".join(text.split()).replace('"', "'")
    return line if len(line) <= MAX_REPORT_CHARS else line[: MAX_REPORT_CHARS - 3].rstrip() + "..."


def _specialist_sentences(number: int, view: SpecialistView) -> str:
    """One specialist's block: its diagnosis, then the labels and reports of the cases it retrieved."""
    probability = "" if view.probability is None else f" (probability {view.probability:.2f})"
    sentences = [f"The diagnosis of specialist model {number} is {view.label}{probability}."]
    if view.similar:
        labels = ",".join(case.label for case in view.similar)
        sentences.append(f"The diagnoses of the most similar cases it retrieved are {labels}.")
        reports = [
            f'case {i} ({case.label}): "{_report(case.report)}"'
            for i, case in enumerate(view.similar, start=1)
            if case.report.strip()
        ]
        if reports:
            sentences.append(f"Their reports: {'; '.join(reports)}.")
    return " ".join(sentences)


def gsco_prompt(modality: str, options: Sequence[str], views: Sequence[SpecialistView]) -> str:
    """The GSCo prompt: options, then per specialist its diagnosis and its retrieved cases."""
    return " ".join(
        [
            _INTRO.format(modality=modality),
            _OPTIONS.format(options=quoted_options(options)),
            *(_specialist_sentences(number, view) for number, view in enumerate(views, start=1)),
            _ONE_OPTION,
        ]
    )


def zero_shot_prompt(modality: str, options: Sequence[str]) -> str:
    """The same question without retrieved cases or specialists (the generalist alone)."""
    return " ".join(
        [_INTRO.format(modality=modality), _OPTIONS.format(options=quoted_options(options)), _ONE_OPTION]
    )


def report_prompt(modality: str, views: Sequence[SpecialistView]) -> str:
    """Ask for a short report; per specialist the same block as the GSCo prompt, with its probability."""
    blocks = [_specialist_sentences(number, view) for number, view in enumerate(views, start=1)]
    if not any(view.similar for view in views):
        blocks.append("No similar cases are available.")
    return " ".join(
        [
            f"You are a helpful medical assistant. Write a short diagnostic report for this {modality} "
            "image, with a findings section and an impression.",
            *blocks,
            "Describe only what the image and these findings support.",
        ]
    )
