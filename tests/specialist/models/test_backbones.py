"""Every registered backbone builds on CPU and returns logits plus a pooled embedding."""

from __future__ import annotations

import logging

import pytest
import torch

from gsco_common.errors import ModelError
from registry.bundle.preprocess import Preprocessing
from specialist.models import create_specialist, get_spec, list_backbones

TEN = [
    "vgg16",
    "alexnet",
    "resnet18",
    "densenet121",
    "efficientnet_b4",
    "vit_b16",
    "clip_vit_b16",
    "eva02_vit_b",
    "dino_vit_b16",
    "sam_vit_b16",
]


def test_the_ten_paper_backbones_are_registered() -> None:
    assert sorted(TEN) == list_backbones()


@pytest.mark.parametrize("backbone", TEN)
def test_forward_gives_logits_and_pooled_embedding(backbone: str) -> None:
    torch.manual_seed(0)
    model = create_specialist(backbone, num_classes=3, image_size=32, pretrained=False).eval()
    size = model.image_size
    assert size == get_spec(backbone).valid_size(32)
    images = torch.randn(2, 3, size, size)
    with torch.inference_mode():
        logits, embedding = model(images)
        # The embedding is exactly what the network's own classifier sees.
        assert torch.allclose(model.net(images), logits, atol=1e-5)
    assert logits.shape == (2, 3)
    assert embedding.shape == (2, model.embedding_dim)
    assert torch.isfinite(embedding).all()
    assert isinstance(model.preprocessing, Preprocessing)
    assert model.preprocessing.input_size == size
    assert model.preprocessing.channels == "gray_to_rgb"
    assert model.build_args() == {"backbone": backbone, "num_classes": 3, "image_size": size}


def test_preprocessing_follows_the_pinned_pretrained_config() -> None:
    clip = get_spec("clip_vit_b16")
    assert clip.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    assert clip.interpolation == "bicubic"
    assert get_spec("vit_b16").mean == (0.5, 0.5, 0.5)
    assert get_spec("alexnet").mean == pytest.approx((0.485, 0.456, 0.406))


def test_eva02_is_the_papers_clip_vit_b16() -> None:
    """The paper's EVA-02 specialist is EVA-02-CLIP ViT-B/16, not the patch-14 MIM model."""
    spec = get_spec("eva02_vit_b")
    assert spec.source == "timm:eva02_base_patch16_clip_224.merged2b"
    assert spec.size_multiple == 16
    assert spec.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    model = create_specialist("eva02_vit_b", 2, 32, pretrained=False)
    assert type(model.net).__name__ == "Eva"
    assert model.net.patch_embed.patch_size == (16, 16)
    assert model.net.patch_embed.grid_size == (2, 2)
    assert model.embedding_dim == 768


@pytest.mark.parametrize(
    ("backbone", "requested", "used"),
    [
        ("vit_b16", 28, 32),
        ("vit_b16", 48, 48),
        ("eva02_vit_b", 32, 32),
        ("eva02_vit_b", 30, 32),
        ("eva02_vit_b", 40, 48),
        ("alexnet", 28, 63),
    ],
)
def test_sizes_are_rounded_up_to_a_valid_size(
    backbone: str, requested: int, used: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert get_spec(backbone).valid_size(requested) == used
    assert (f"using {used} instead of {requested}" in caplog.text) == (used != requested)


def test_resnet18_keeps_the_native_medmnist_size() -> None:
    model = create_specialist("resnet18", 2, 28, pretrained=False)
    assert model.preprocessing.input_size == 28
    assert model.preprocessing.interpolation == "bicubic"


def test_a_plain_timm_name_is_accepted() -> None:
    model = create_specialist("mobilenetv3_small_050", 4, 32, pretrained=False).eval()
    with torch.inference_mode():
        logits, embedding = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 4)
    assert embedding.shape == (2, model.embedding_dim)
    assert model.backbone == "mobilenetv3_small_050"


def test_a_fixed_size_timm_name_gets_img_size() -> None:
    model = create_specialist("vit_tiny_patch16_224", 2, 32, pretrained=False).eval()
    with torch.inference_mode():
        logits, _ = model(torch.randn(1, 3, 32, 32))
    assert logits.shape == (1, 2)


@pytest.mark.parametrize("name", ["resnet_does_not_exist", "hf-hub:timm/resnet18.a1_in1k", "../resnet18"])
def test_unknown_backbone_is_a_model_error(name: str) -> None:
    with pytest.raises(ModelError, match="unknown backbone") as info:
        create_specialist(name, 2, 32)
    assert "vit_b16" in str(info.value)


def test_fewer_than_two_classes_is_refused() -> None:
    with pytest.raises(ModelError, match="at least 2 classes"):
        create_specialist("resnet18", 1, 32)


def test_non_positive_size_is_refused() -> None:
    with pytest.raises(ModelError, match="positive"):
        create_specialist("resnet18", 2, 0)
