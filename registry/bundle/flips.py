"""Which mirror images a modality's anatomy allows: one table for training and test time.

A flip preserves the label only where the image has no canonical orientation. A mirrored chest
image moves the heart to the right (dextrocardia, a finding of its own); a vertically flipped
ultrasound puts the transducer at the bottom and the acoustic shadow above a lesion;
dermoscopy and microscopy have no orientation. The family is found from plain words of the
card's ``task.modality``; the first family that matches wins, so "chest ultrasound" is a chest
image. Training augmentation (``specialist.training.modality``) and test-time augmentation
(:mod:`registry.bundle.tta`) both read this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FlipRule:
    """One modality family's flips: ``default`` ones on in training under ``auto``; ``forbidden`` never."""

    family: str
    default: frozenset[str]
    forbidden: frozenset[str]
    reason: str

    @property
    def known(self) -> bool:
        return self is not UNKNOWN


UNKNOWN = FlipRule("unknown", frozenset(), frozenset(), "no rule for this modality: flips only on request")

RULES: tuple[tuple[tuple[str, ...], FlipRule], ...] = (
    (
        ("chest", "thora", "cxr", "lung", "heart", "cardiac"),
        FlipRule(
            "chest radiograph",
            frozenset(),
            frozenset({"hflip", "vflip"}),
            "a mirrored chest image swaps laterality (heart, aortic arch, gastric bubble)",
        ),
    ),
    (
        ("ultrasound", "sonograph", "echograph"),
        # left-right is permitted but not a training default: it did not help on the breast dev
        # data (docs/results.md, "Training recipes"), so a site turns it on itself
        FlipRule(
            "ultrasound",
            frozenset(),
            frozenset({"vflip"}),
            "the transducer is at the top and shadows fall below a lesion",
        ),
    ),
    (
        ("dermo", "dermato", "skin", "patholog", "histolog", "microscop", "cytolog", "blood smear"),
        FlipRule(
            "dermoscopy or microscopy",
            frozenset({"hflip", "vflip"}),
            frozenset(),
            "the image has no canonical orientation",
        ),
    ),
)
"""(words that identify the family in ``task.modality``, its rule), most specific first."""


def flip_rule(modality: str) -> FlipRule:
    """The rule of the first family whose words occur in ``modality`` (case-insensitive)."""
    text = modality.lower()
    for words, rule in RULES:
        if any(word in text for word in words):
            return rule
    return UNKNOWN
