"""Backbone registry: stable names mapped to frozen specs, filled by a decorator (timm style).

A :class:`BackboneSpec` says how to build a network for ``(num_classes, image_size)``, which
normalisation and interpolation its pretrained weights expect, and which input sizes it accepts.
Any other timm model name is accepted as a pass-through and described from timm's own
pretrained config, so the card always carries the preprocessing the weights were trained with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import timm
import torch
from torch import nn

from gsco_common.errors import ModelError

log = logging.getLogger(__name__)

Embed = Callable[[nn.Module, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class BackboneNet:
    """A built network and how to read it: ``embed(net, x)`` gives pooled pre-logits features.

    ``head`` is the dotted name of the final ``nn.Linear`` inside ``net`` that maps the
    embedding to logits; weight loading skips it because its shape depends on the task.
    """

    net: nn.Module
    head: str
    embed: Embed


Builder = Callable[[int, int], BackboneNet]


@dataclass(frozen=True)
class BackboneSpec:
    """Everything the factory needs to know about one backbone.

    Attributes:
        name: stable name used in configs, cards and the weights folder.
        builder: ``(num_classes, image_size) -> BackboneNet``; never downloads anything.
        mean, std, interpolation: what the pretrained weights expect (timm's pretrained cfg).
        min_size: smallest input size the architecture survives.
        size_multiple: input sizes must be a multiple of this (the patch size of ViTs).
        source: where matching pretrained weights come from (documentation only).
    """

    name: str
    builder: Builder
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str
    min_size: int = 32
    size_multiple: int = 1
    source: str = ""

    def valid_size(self, requested: int) -> int:
        """The input size actually used: ``requested`` rounded up to the nearest valid size."""
        if requested < 1:
            raise ModelError(f"image size must be a positive number of pixels, got {requested}")
        size = max(requested, self.min_size)
        size = -(-size // self.size_multiple) * self.size_multiple
        if size != requested:
            rule = f"sizes >= {self.min_size}" + (
                f" that are multiples of {self.size_multiple}" if self.size_multiple > 1 else ""
            )
            log.warning("backbone %s accepts %s; using %d instead of %d", self.name, rule, size, requested)
        return size


_REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(
    name: str,
    *,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    interpolation: str,
    min_size: int = 32,
    size_multiple: int = 1,
    source: str = "",
) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder`` under the stable ``name``."""

    def decorate(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ModelError(f"backbone {name!r} is registered twice")
        _REGISTRY[name] = BackboneSpec(
            name=name,
            builder=builder,
            mean=_triple(mean),
            std=_triple(std),
            interpolation=_interpolation(interpolation),
            min_size=min_size,
            size_multiple=size_multiple,
            source=source,
        )
        return builder

    return decorate


def list_backbones() -> list[str]:
    """The stable backbone names (any timm model name is accepted as well)."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> BackboneSpec:
    """The spec for a stable name, or a pass-through spec for a plain timm model name."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name and ":" not in name and "/" not in name and timm.is_model(name):
        return timm_passthrough_spec(name)
    raise ModelError(
        f"unknown backbone {name!r}",
        hint=f"use one of {', '.join(list_backbones())} or a timm model name (timm.list_models())",
    )


def timm_embed(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Pooled pre-logits features of a timm model (the input of its classifier)."""
    return net.forward_head(net.forward_features(x), pre_logits=True)


def timm_net(timm_name: str, num_classes: int, *, img_size: int | None = None) -> BackboneNet:
    """Build a timm model with random weights (``pretrained=False`` always: no downloads)."""
    kwargs = {"img_size": img_size} if img_size is not None else {}
    try:
        net = timm.create_model(
            timm_name, pretrained=False, num_classes=num_classes, exportable=True, **kwargs
        )
    except (TypeError, ValueError, RuntimeError, AssertionError) as exc:
        raise ModelError(f"timm cannot build {timm_name!r} for this configuration: {exc}") from exc
    head = net.pretrained_cfg.get("classifier")
    if not isinstance(head, str) or not isinstance(_submodule(net, head), nn.Linear):
        raise ModelError(
            f"timm model {timm_name!r} has no single linear classifier",
            hint="choose a model with one classification head",
        )
    return BackboneNet(net=net, head=head, embed=timm_embed)


def timm_passthrough_spec(timm_name: str) -> BackboneSpec:
    """Describe an unregistered timm model from its pretrained config."""
    cfg = timm.models.get_pretrained_cfg(timm_name)
    if cfg is None:
        raise ModelError(f"timm has no pretrained config for {timm_name!r}")
    fixed = bool(cfg.fixed_input_size)

    def build(num_classes: int, image_size: int) -> BackboneNet:
        return timm_net(timm_name, num_classes, img_size=image_size if fixed else None)

    return BackboneSpec(
        name=timm_name,
        builder=build,
        mean=_triple(cfg.mean),
        std=_triple(cfg.std),
        interpolation=_interpolation(cfg.interpolation),
        min_size=32,
        source=f"timm:{timm_name}",
    )


def register_timm(name: str, timm_name: str, *, min_size: int = 32, patch: int | None = None) -> None:
    """Register a timm model under a stable name, with the mean/std of the pinned weights tag.

    ``patch`` marks ViT-family models: they get ``img_size`` and need a multiple of the patch
    (at least two patches per side).
    """
    cfg = timm.models.get_pretrained_cfg(timm_name)

    def build(num_classes: int, image_size: int) -> BackboneNet:
        return timm_net(timm_name, num_classes, img_size=image_size if patch else None)

    register_backbone(
        name,
        mean=cfg.mean,
        std=cfg.std,
        interpolation=cfg.interpolation,
        min_size=2 * patch if patch else min_size,
        size_multiple=patch or 1,
        source=f"timm:{timm_name}",
    )(build)


def _submodule(net: nn.Module, name: str) -> nn.Module | None:
    try:
        return net.get_submodule(name)
    except AttributeError:
        return None


def _triple(values: tuple[float, ...] | list[float]) -> tuple[float, float, float]:
    items = tuple(float(v) for v in values)
    if len(items) == 1:
        items = items * 3
    if len(items) != 3:
        raise ModelError(f"expected 3 normalisation values, got {len(items)}")
    return items  # type: ignore[return-value]


def _interpolation(name: str | None) -> str:
    return name if name in ("bilinear", "bicubic", "nearest") else "bilinear"
