"""bench/training_recipes.py's generated verdict: it says when a recipe does not help (fast)."""

from __future__ import annotations

from bench.training_recipes import verdict


def test_verdict_says_help_hurt_or_no_help_from_the_balanced_accuracies() -> None:
    head = "vgg16 on pneumonia, recipe vgg: validation balanced accuracy"
    assert verdict("pneumonia", "vgg16", "recipe vgg", 0.5, 0.5) == (
        f"{head} 0.500 -> 0.500 (+0.0 points): the change does not help; both settings predict one class."
    )
    assert verdict("pneumonia", "vgg16", "recipe vgg", 0.5, 0.9) == (
        f"{head} 0.500 -> 0.900 (+40.0 points): the change helps; the baseline predicts one class, "
        "the change learns."
    )
    assert verdict("pneumonia", "vgg16", "recipe vgg", 0.8, 0.85).endswith(
        "(+5.0 points): the change helps in this run."
    )
    assert verdict("pneumonia", "vgg16", "recipe vgg", 0.8, 0.7).endswith(
        "(-10.0 points): the change hurts in this run; it does not help."
    )
    assert verdict("pneumonia", "vgg16", "recipe vgg", 0.8, 0.82).endswith(
        "(+2.0 points): the change does not help measurably (within 3 points, one run)."
    )
