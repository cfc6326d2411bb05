"""`site-agent backbones`: the names `training.backbones` takes (the docs and site.yaml point to it)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from site_agent.cli.main import app

runner = CliRunner()

PAPER_BACKBONES = [
    "alexnet",
    "clip_vit_b16",
    "densenet121",
    "dino_vit_b16",
    "efficientnet_b4",
    "eva02_vit_b",
    "resnet18",
    "sam_vit_b16",
    "vgg16",
    "vit_b16",
]


def test_backbones_lists_the_papers_ten_with_sizes_and_weights_origin() -> None:
    result = runner.invoke(app, ["backbones", "--json"])
    assert result.exit_code == 0, result.output
    listed = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert sorted(listed) == PAPER_BACKBONES
    assert listed["vit_b16"] == {
        "name": "vit_b16",
        "min_size": 32,
        "size_multiple": 16,
        "weights_source": "timm:vit_base_patch16_224.augreg2_in21k_ft_in1k",
    }
    assert listed["alexnet"]["weights_source"] == "torchvision:alexnet IMAGENET1K_V1"


def test_backbones_table_for_people() -> None:
    result = runner.invoke(app, ["backbones"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if " resnet18 " in line)
    assert ">= 16" in row and "timm:resnet18.a1_in1k" in row
