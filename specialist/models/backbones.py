"""The ten backbones of the GSCo paper, registered under stable names.

timm tags are pinned so that mean/std match the checkpoint a site is expected to place in its
weights folder (see :mod:`specialist.models.weights`). AlexNet comes from torchvision because
timm has none.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from registry.bundle.preprocess import IMAGENET_MEAN, IMAGENET_STD
from specialist.models.registry import BackboneNet, register_backbone, register_timm

register_timm("vgg16", "vgg16.tv_in1k")
register_timm("resnet18", "resnet18.a1_in1k", min_size=16)
register_timm("densenet121", "densenet121.ra_in1k")
register_timm("efficientnet_b4", "efficientnet_b4.ra2_in1k", min_size=16)
register_timm("vit_b16", "vit_base_patch16_224.augreg2_in21k_ft_in1k", patch=16)
register_timm("clip_vit_b16", "vit_base_patch16_clip_224.openai", patch=16)
# The paper's EVA-02 specialist is the CLIP ViT-B/16 (EVA-02-CLIP), not the patch-14 MIM model.
register_timm("eva02_vit_b", "eva02_base_patch16_clip_224.merged2b", patch=16)
register_timm("dino_vit_b16", "vit_base_patch16_224.dino", patch=16)
register_timm("sam_vit_b16", "samvit_base_patch16.sa1b", patch=16)


def _alexnet_embed(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Torchvision AlexNet up to (and including) the second 4096-d layer."""
    x = torch.flatten(net.avgpool(net.features(x)), 1)
    return net.classifier[:-1](x)


@register_backbone(
    "alexnet",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    interpolation="bilinear",
    min_size=63,
    source="torchvision:alexnet IMAGENET1K_V1",
)
def _alexnet(num_classes: int, image_size: int) -> BackboneNet:
    net = torchvision.models.alexnet(weights=None, num_classes=num_classes)
    return BackboneNet(net=net, head="classifier.6", embed=_alexnet_embed)
