"""The training augmentation's flips for a task: ``auto`` resolved, forbidden ones refused.

The rules per imaging modality are :mod:`registry.bundle.flips` (shared with test-time
augmentation); an unknown modality gets no flips unless the site asks for them.
"""

from __future__ import annotations

from gsco_common.errors import ConfigError
from registry.bundle.flips import flip_rule
from specialist.training.config import AugmentationConfig


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
            resolved[axis] = axis in rule.default
        elif value and axis in rule.forbidden and config.enabled:
            raise ConfigError(
                f"training.augmentation.{axis} is on, but task.modality {modality!r} is a "
                f"{rule.family}: {rule.reason}",
                hint=f"set training.augmentation.{axis} to auto or false",
            )
        else:
            resolved[axis] = bool(value)
    return config.model_copy(update=resolved)
