"""Backbones and specialist classifiers: a registry of stable names and one factory."""

from specialist.models.factory import create_specialist
from specialist.models.registry import BackboneSpec, get_spec, list_backbones, register_backbone
from specialist.models.specialist import Specialist
from specialist.models.weights import load_backbone_weights, save_backbone_weights

__all__ = [
    "BackboneSpec",
    "Specialist",
    "create_specialist",
    "get_spec",
    "list_backbones",
    "load_backbone_weights",
    "register_backbone",
    "save_backbone_weights",
]
