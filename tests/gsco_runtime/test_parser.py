from __future__ import annotations

import pytest

from gsco_runtime.arbiters.parser import parse_answer

OPTIONS = ("normal", "pneumonia")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("pneumonia", 1),
        ("Pneumonia.", 1),
        ("'normal'", 0),
        ("The diagnosis is NORMAL", 0),
        ("  The answer: pneumonia\n", 1),
        ("abnormal finding", None),  # whole words only: 'normal' inside 'abnormal' does not count
        ("pneumonias", None),
        ("normal or pneumonia", None),  # two options named: ambiguous
        ("", None),
        ("I cannot tell", None),
    ],
)
def test_maps_free_text_to_exactly_one_option(answer: str, expected: int | None) -> None:
    assert parse_answer(answer, OPTIONS) == expected


def test_synonyms_from_the_task_definition() -> None:
    synonyms = {"normal": ["no pneumonia", "healthy"], "pneumonia": ["consolidation"]}
    assert parse_answer("Healthy lungs", OPTIONS, synonyms) == 0
    assert parse_answer("right lower lobe consolidation", OPTIONS, synonyms) == 1
    # the longer synonym hides the option name inside it
    assert parse_answer("No pneumonia.", OPTIONS, synonyms) == 0
    assert parse_answer("healthy, or maybe consolidation", OPTIONS, synonyms) is None


def test_multi_word_and_underscore_labels() -> None:
    options = ("malignant", "normal_or_benign")
    assert parse_answer("Normal or benign", options) == 1
    assert parse_answer("normal  or\nbenign", options) == 1
    assert parse_answer("malignant", options) == 0
