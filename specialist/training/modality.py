"""Which flips a modality's anatomy allows: the augmentation's flip rules per imaging modality.

A flip is a label-preserving augmentation only where the image has no canonical orientation.
A mirrored chest X-ray moves the heart to the right (dextrocardia, a finding of its own); a
vertically flipped ultrasound puts the transducer at the bottom and the acoustic shadow above a
lesion. Dermoscopy and microscopy have no orientation, so both flips are on there. The rule is
chosen from ``task.modality`` (plain words in ``site.yaml``); an unknown modality gets no flips
unless the site asks for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gsco_common.errors import ConfigError
from specialist.training.config import AugmentationConfig

Axis = Literal["hflip", "vflip"]


@dataclass(frozen=True)
class FlipRule:
    """Flips for one modality family: ``allowed`` ones are on under ``auto``; ``forbidden`` ones refused."""

    family: str
    allowed: frozenset[str]
    forbidden: frozenset[str]
    reason: str


UNKNOWN = FlipRule("unknown", frozenset(), frozenset(), "no rule for this modality: flips only on request")

# (words that identify the family in task.modality, its rule); the first match wins
RULES: tuple[tuple[tuple[str, ...], FlipRule], ...] = (
    (
        ("chest", "thora", "cxr", "lung"),
        FlipRule(
            "chest radiograph",
            frozenset(),
            frozenset({"hflip", "vflip"}),
            "a mirrored chest image swaps laterality (heart, aortic arch, gastric bubble)",
        ),
    ),
    (
        ("ultrasound", "sonograph", "echograph"),
        # left-right is permitted but not automatic: it did not help on the breast dev data
        # (docs/results.md, "Training recipes"), so a site turns it on itself
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


def flip_rule(modality: str) -> FlipRule:
    """The rule of the first family whose words occur in ``modality`` (case-insensitive)."""
    text = modality.lower()
    for words, rule in RULES:
        if any(word in text for word in words):
            return rule
    return UNKNOWN


def resolve_flips(config: AugmentationConfig, modality: str) -> AugmentationConfig:
    """``config`` with concrete flips: ``auto`` takes the modality's rule, an explicit flip is checked.

    Raises:
        ConfigError: the site asks for a flip the modality's anatomy forbids (names the key).
    """
    rule = flip_rule(modality)
    resolved: dict[str, bool] = {}
    for axis in ("hflip", "vflip"):
        value = getattr(config, axis)
        if value == "auto":
            resolved[axis] = axis in rule.allowed
        elif value and axis in rule.forbidden and config.enabled:
            raise ConfigError(
                f"training.augmentation.{axis} is on, but task.modality {modality!r} is a "
                f"{rule.family}: {rule.reason}",
                hint=f"set training.augmentation.{axis} to auto or false",
            )
        else:
            resolved[axis] = bool(value)
    return config.model_copy(update=resolved)
