"""The settings a run trains with: the backbone's recipe applied, flips resolved, TTA checked.

One place for what ``site-agent train`` refuses before a run folder exists, so a study file can
be checked the same way before any of its sites trains.
"""

from __future__ import annotations

from gsco_common.errors import ConfigError
from registry.bundle.tta import tta_problem
from specialist.training.config import TrainingConfig
from specialist.training.modality import resolve_flips
from specialist.training.recipes import recipe_for


def effective_training(backbone: str, training: TrainingConfig, modality: str) -> TrainingConfig:
    """``training`` as ``backbone`` trains with it for a task of ``modality``.

    Raises:
        ConfigError: an unknown recipe, a flip or a test-time augmentation the modality forbids
            (each names its ``training.`` key).
    """
    recipe = recipe_for(backbone, training.recipe)
    augmentation = resolve_flips(training.augmentation, modality)
    effective = recipe.apply(training).model_copy(
        update={"backbones": [backbone], "augmentation": augmentation}
    )
    refusal = tta_problem(effective.tta, modality)
    if refusal:
        raise ConfigError(f"training.tta: {refusal}", hint="set training.tta: none for this task")
    return effective
