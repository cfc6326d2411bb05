"""The specialist classifier: a backbone that returns logits and a pooled embedding."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gsco_common.errors import ModelError
from registry.bundle.preprocess import Preprocessing
from specialist.models.registry import BackboneNet


class Specialist(nn.Module):
    """``forward(image[N,3,S,S]) -> (logits[N,C], embedding[N,D])``.

    The embedding is the classifier's input (pooled pre-logits features): the runtime uses it to
    retrieve similar cases, so logits are always computed from exactly this tensor.

    Attributes:
        net: the wrapped timm / torchvision network (its ``state_dict`` is the weights format).
        head_name: dotted name of the classifier ``nn.Linear`` inside ``net``.
        backbone: stable backbone name.
        num_classes: number of output classes.
        embedding_dim: size ``D`` of the embedding.
        preprocessing: how raw images become inputs (input size is the size actually used).
        pretrained: ``{"file", "sha256"}`` of the local weights file it started from, else None.
    """

    def __init__(self, built: BackboneNet, *, backbone: str, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.net = built.net
        self.head_name = built.head
        self._embed = built.embed
        head = self.net.get_submodule(built.head)
        if not isinstance(head, nn.Linear):
            raise ModelError(f"backbone {backbone!r}: classifier {built.head!r} is not a linear layer")
        self.backbone = backbone
        self.num_classes = int(head.out_features)
        self.embedding_dim = int(head.in_features)
        self.preprocessing = preprocessing
        self.pretrained: dict[str, str] | None = None

    @property
    def image_size(self) -> int:
        return self.preprocessing.input_size

    def build_args(self) -> dict[str, Any]:
        """Arguments that rebuild this architecture with ``create_specialist(**args)``."""
        return {"backbone": self.backbone, "num_classes": self.num_classes, "image_size": self.image_size}

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self._embed(self.net, image)
        logits = self.net.get_submodule(self.head_name)(embedding)
        return logits, embedding
