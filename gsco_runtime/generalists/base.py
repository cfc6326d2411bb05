"""Generalist backends: a vision-language model that answers a prompt about one image.

Backends register a factory under a name (``openai``, ``transformers``) and are built with
:func:`create_backend`. Every failure surfaces as :class:`~gsco_common.errors.GeneralistError`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from PIL import Image

from gsco_common.errors import ConfigError
from registry.bundle.preprocess import to_unit_float

# MedDr's system message (its public evaluation code); a backend uses it when a caller gives none.
MEDDR_SYSTEM_MESSAGE = "Answer the questions."
DEFAULT_MAX_NEW_TOKENS = 512


class GeneralistBackend(Protocol):
    """Answers ``prompt`` about ``image`` with greedy decoding; ``name`` describes the model."""

    name: str

    def generate(self, image: np.ndarray, prompt: str, *, system: str | None = None) -> str: ...


def to_pil_rgb(image: np.ndarray) -> Image.Image:
    """A raw image (gray or colour, uint8 / uint16 / float) as an 8-bit RGB PIL image."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    unit = to_unit_float(image)
    pixels = np.round(unit * 255.0).astype(np.uint8)
    return Image.fromarray(pixels).convert("RGB")


def png_data_url(image: np.ndarray) -> str:
    """The image as a ``data:image/png;base64,...`` URL (OpenAI ``image_url`` content part)."""
    buffer = io.BytesIO()
    to_pil_rgb(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


BackendFactory = Callable[..., GeneralistBackend]
_BACKENDS: dict[str, BackendFactory] = {}


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    def decorator(factory: BackendFactory) -> BackendFactory:
        _BACKENDS[name] = factory
        return factory

    return decorator


def list_backends() -> list[str]:
    return sorted(_BACKENDS)


def create_backend(name: str, **kwargs: Any) -> GeneralistBackend:
    """Build the backend registered under ``name`` with its keyword settings."""
    if name not in _BACKENDS:
        raise ConfigError(f"unknown generalist backend {name!r}", hint=f"choose one of {list_backends()}")
    return _BACKENDS[name](**kwargs)
