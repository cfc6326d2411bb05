"""Per-backbone training recipes: what a backbone needs beyond the site's training defaults.

``training.recipe: auto`` picks the backbone's recipe (``default`` for backbones without one);
a recipe name picks that one for any backbone. A recipe changes only what it must, relative to
the site's settings (a learning-rate *scale*, not a fixed rate), and the run records the result:
``config.yaml`` holds the effective settings and the card's ``training.recipe`` the recipe's
name and values. Why each recipe exists, and what it was measured against, is in
docs/results.md ("Training recipes").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from gsco_common.errors import ConfigError
from specialist.models.specialist import Specialist
from specialist.training.config import TrainingConfig

HeadInit = Literal["library", "zero"]
# the settings a card's training.recipe records next to the recipe's own values
CARD_SETTINGS = (
    "lr",
    "weight_decay",
    "warmup_fraction",
    "min_lr_ratio",
    "batch_size",
    "class_weights",
    "label_smoothing",
)


@dataclass(frozen=True)
class Recipe:
    """A named set of changes to the site's training settings.

    Attributes:
        name: stable name (recorded in the card).
        head_init: ``zero`` starts the classifier at zero logits (loss ln C); ``library`` keeps
            timm's / torchvision's initialisation.
        lr_scale: multiplies ``training.lr``.
    """

    name: str
    head_init: HeadInit = "library"
    lr_scale: float = 1.0

    def apply(self, training: TrainingConfig) -> TrainingConfig:
        """The effective settings: ``training`` with this recipe's changes and its name."""
        return training.model_copy(update={"recipe": self.name, "lr": training.lr * self.lr_scale})

    def init_head(self, model: Specialist) -> None:
        """Initialise the classifier as the recipe says (before training starts, never on resume)."""
        if self.head_init == "zero":
            head = model.net.get_submodule(model.head_name)
            with torch.no_grad():
                head.weight.zero_()
                if head.bias is not None:
                    head.bias.zero_()

    def values(self) -> dict[str, Any]:
        return {"head_init": self.head_init, "lr_scale": self.lr_scale}


RECIPES = {
    recipe.name: recipe
    for recipe in (
        Recipe("default"),
        # timm's EfficientNet head is drawn with range 1/sqrt(num_classes): with two classes the
        # first logits are about +-10 and the first epochs only undo that (train loss 7-10).
        Recipe("efficientnet", head_init="zero"),
        # no BatchNorm: 13 plain conv layers at AdamW 1e-3 learned nothing in one epoch. Measured
        # against the default (bench/training_recipes.py) it did not help either, so vgg16 does not
        # get it under auto; select it by name.
        Recipe("vgg", head_init="zero", lr_scale=0.1),
    )
}
BACKBONE_RECIPES = {
    "efficientnet_b0": "efficientnet",
    "efficientnet_b4": "efficientnet",
}


def recipe_for(backbone: str, choice: str) -> Recipe:
    """The recipe ``training.recipe`` (``auto`` or a name) gives ``backbone``.

    Raises:
        ConfigError: an unknown recipe name (names the key and the known ones).
    """
    name = BACKBONE_RECIPES.get(backbone, "default") if choice == "auto" else choice
    if name not in RECIPES:
        raise ConfigError(
            f"training.recipe {choice!r} is unknown",
            hint=f"use auto or one of {', '.join(sorted(RECIPES))}",
        )
    return RECIPES[name]


def card_recipe(training: TrainingConfig) -> dict[str, Any] | None:
    """The card's ``training.recipe``: the recipe's name and values, and the settings it trained with.

    None for a run from before recipes (its ``config.yaml`` has no resolved recipe name).
    """
    recipe = RECIPES.get(training.recipe)
    if recipe is None:
        return None
    augmentation = training.augmentation
    return {
        "name": recipe.name,
        **recipe.values(),
        **{key: getattr(training, key) for key in CARD_SETTINGS},
        "augmentation": augmentation.model_dump(mode="json") if augmentation.enabled else None,
    }
