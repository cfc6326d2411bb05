"""Per-backbone training recipes: which backbone gets which, what they change, what the card records."""

from __future__ import annotations

import pytest
import torch

from gsco_common.errors import ConfigError
from specialist.models.factory import create_specialist
from specialist.training.config import TrainingConfig
from specialist.training.recipes import RECIPES, card_recipe, recipe_for


@pytest.mark.parametrize(
    ("backbone", "choice", "expected"),
    [
        ("resnet18", "auto", "default"),
        ("vit_b16", "auto", "default"),
        ("efficientnet_b0", "auto", "efficientnet"),
        ("efficientnet_b4", "auto", "efficientnet"),
        ("vgg16", "auto", "default"),
        ("vgg16", "vgg", "vgg"),
        ("efficientnet_b0", "default", "default"),
        ("resnet18", "vgg", "vgg"),
    ],
)
def test_each_backbone_gets_its_recipe_unless_one_is_named(backbone: str, choice: str, expected: str) -> None:
    assert recipe_for(backbone, choice).name == expected


def test_an_unknown_recipe_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="training.recipe 'fast' is unknown"):
        recipe_for("resnet18", "fast")


def test_a_recipe_scales_the_sites_learning_rate_and_names_itself() -> None:
    applied = RECIPES["vgg"].apply(TrainingConfig(lr=2e-3))
    assert applied.recipe == "vgg" and applied.lr == pytest.approx(2e-4)
    assert RECIPES["default"].apply(TrainingConfig(lr=2e-3)).lr == 2e-3


def test_zero_head_starts_at_zero_logits_and_library_keeps_the_initialisation() -> None:
    torch.manual_seed(0)
    model = create_specialist("resnet18", 2, 16, pretrained=False)
    model.eval()
    images = torch.randn(4, 3, 16, 16)
    before = model(images)[0]
    RECIPES["default"].init_head(model)
    assert torch.equal(model(images)[0], before) and before.abs().max() > 0
    RECIPES["efficientnet"].init_head(model)
    logits, embedding = model(images)
    assert torch.equal(logits, torch.zeros(4, 2)) and embedding.abs().max() > 0


def test_the_card_section_holds_the_recipe_and_the_settings_it_trained_with() -> None:
    training = RECIPES["vgg"].apply(TrainingConfig(augmentation={"hflip": False, "vflip": False}))
    section = card_recipe(training)
    assert section is not None
    assert {key: section[key] for key in ("name", "head_init", "lr_scale", "lr")} == {
        "name": "vgg",
        "head_init": "zero",
        "lr_scale": 0.1,
        "lr": pytest.approx(1e-4),
    }
    assert section["augmentation"]["hflip"] is False and section["class_weights"] == "balanced"
    assert card_recipe(TrainingConfig()) is None  # a run from before recipes records none
