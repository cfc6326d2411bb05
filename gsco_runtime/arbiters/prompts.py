"""Prompts sent to the generalist, faithful to the public MedDr evaluation code.

MedDr's GSCo prompt is one line: the options quoted and separated by ", ", the retrieved cases'
labels and the specialists' labels each joined by "," without spaces.
"""

from __future__ import annotations

from collections.abc import Sequence

_INTRO = (
    "You are a helpful medical assistant. Your task is disease diagnosis. You are given a {modality} image."
)
_OPTIONS = "The possible diagnoses are: {options}."
_ONE_OPTION = "The response should only contain one option."


def quoted_options(options: Sequence[str]) -> str:
    return ", ".join(f"'{option}'" for option in options)


def gsco_prompt(
    modality: str, options: Sequence[str], rad_labels: Sequence[str], moed_labels: Sequence[str]
) -> str:
    """The GSCo prompt: options, retrieved cases' diagnoses and the specialists' diagnoses."""
    return " ".join(
        [
            _INTRO.format(modality=modality),
            _OPTIONS.format(options=quoted_options(options)),
            f"The diagnoses of the most similar cases are {','.join(rad_labels)}.",
            f"The diagnoses of the specialist models are {','.join(moed_labels)}.",
            _ONE_OPTION,
        ]
    )


def zero_shot_prompt(modality: str, options: Sequence[str]) -> str:
    """The same question without retrieved cases or specialists (the generalist alone)."""
    return " ".join(
        [_INTRO.format(modality=modality), _OPTIONS.format(options=quoted_options(options)), _ONE_OPTION]
    )


def report_prompt(
    modality: str, findings: Sequence[tuple[str, str, float]], rad_labels: Sequence[str]
) -> str:
    """Ask for a short report, giving each specialist's finding ``(model, label, probability)``."""
    listed = "; ".join(f"{model}: {label} (probability {prob:.2f})" for model, label, prob in findings)
    similar = ",".join(rad_labels) if rad_labels else "none available"
    return (
        f"You are a helpful medical assistant. Write a short diagnostic report for this {modality} image, "
        f"with a findings section and an impression. The specialist models found: {listed}. "
        f"The diagnoses of the most similar cases are {similar}. "
        "Describe only what the image and these findings support."
    )
