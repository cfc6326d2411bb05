from __future__ import annotations

from gsco_runtime.arbiters.prompts import (
    SimilarCase,
    SpecialistView,
    gsco_prompt,
    report_prompt,
    zero_shot_prompt,
)


def test_gsco_prompt_keeps_meddrs_sentences_per_specialist() -> None:
    prompt = gsco_prompt(
        "chest X-ray",
        ["normal", "pneumonia"],
        [
            SpecialistView("pneumonia", (SimilarCase("pneumonia"), SimilarCase("normal"))),
            SpecialistView("pneumonia", (SimilarCase("pneumonia"),)),
        ],
    )
    assert prompt == (
        "You are a helpful medical assistant. Your task is disease diagnosis. You are given a chest X-ray "
        "image. The possible diagnoses are: 'normal', 'pneumonia'. The diagnosis of specialist model 1 is "
        "pneumonia. The diagnoses of the most similar cases it retrieved are pneumonia,normal. The diagnosis "
        "of specialist model 2 is pneumonia. The diagnoses of the most similar cases it retrieved are "
        "pneumonia. The response should only contain one option."
    )
    assert "\n" not in prompt


def test_zero_shot_prompt_leaves_out_the_evidence() -> None:
    prompt = zero_shot_prompt("pathology", ["normal", "tumor"])
    assert prompt.endswith(
        "The possible diagnoses are: 'normal', 'tumor'. The response should only contain one option."
    )
    assert "similar cases" not in prompt and "specialist" not in prompt


def test_report_prompt_carries_each_specialists_block() -> None:
    views = [
        SpecialistView("pneumonia", (SimilarCase("pneumonia", "Patchy opacity."),), 0.91),
        SpecialistView("normal", (SimilarCase("normal"),), 0.6),
    ]
    assert report_prompt("chest X-ray", views) == (
        "You are a helpful medical assistant. Write a short diagnostic report for this chest X-ray image, "
        "with a findings section and an impression. "
        "The diagnosis of specialist model 1 is pneumonia (probability 0.91). The diagnoses of the most "
        'similar cases it retrieved are pneumonia. Their reports: case 1 (pneumonia): "Patchy opacity.". '
        "The diagnosis of specialist model 2 is normal (probability 0.60). The diagnoses of the most "
        "similar cases it retrieved are normal. "
        "Describe only what the image and these findings support."
    )
    alone = report_prompt("chest X-ray", [SpecialistView("normal", (), 0.7)])
    assert "specialist model 1 is normal (probability 0.70). No similar cases are available." in alone
