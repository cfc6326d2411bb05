"""In-process ``transformers`` backend, loading a vision-language model from a local folder.

Two paths:

- ``internvl`` (MedDr): InternVL-Chat checkpoints do not load into transformers' native InternVL
  classes, so the model is loaded with ``trust_remote_code`` (InternVL's remote-code files must sit
  beside the checkpoint) and asked through its own ``chat()``, which applies the checkpoint's
  Hermes-2 template with the system message "Answer the questions.". The image is MedDr's single
  448x448 tile (bicubic, ImageNet mean/std); decoding is greedy (one beam, no sampling).
- ``generic``: any ``AutoModelForImageTextToText`` whose processor has a chat template.

Nothing is downloaded: the folder must hold everything (``local_files_only``).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from gsco_common.errors import ConfigError, GeneralistError
from gsco_common.paths import not_there
from gsco_runtime.generalists.base import (
    DEFAULT_MAX_NEW_TOKENS,
    MEDDR_SYSTEM_MESSAGE,
    register_backend,
    to_pil_rgb,
)
from registry.bundle.preprocess import IMAGENET_MEAN, IMAGENET_STD

MEDDR_TILE = 448
_INTERNVL_MARKERS = ("internvl_chat", "InternVLChatModel")


def internvl_pixel_values(image: np.ndarray, size: int = MEDDR_TILE) -> torch.Tensor:
    """MedDr's input: one RGB tile ``[1, 3, S, S]``, bicubic resize, ImageNet mean/std."""
    tile = to_pil_rgb(image).resize((size, size), Image.Resampling.BICUBIC)
    array = np.asarray(tile, dtype=np.float32) / 255.0
    array = (array - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]


def detect_kind(model_dir: Path) -> str:
    """``internvl`` for InternVL-Chat checkpoints (remote code), else ``generic``."""
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise ConfigError(
            "the generalist model folder has no config.json", hint="point --model-dir at a checkpoint"
        )
    config = json.loads(config_path.read_text())
    markers = [str(config.get("model_type", "")), *(str(a) for a in config.get("architectures") or [])]
    return "internvl" if any(m in _INTERNVL_MARKERS for m in markers) else "generic"


class TransformersBackend:
    """Greedy generation with a local vision-language model (loaded once, calls serialised)."""

    def __init__(
        self,
        model_dir: Path,
        *,
        kind: str = "auto",
        device: str = "cpu",
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        max_time_s: float | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        if not self.model_dir.is_dir():
            raise ConfigError(
                f"the generalist model folder {not_there(self.model_dir, 'folder')}", hint="check --model-dir"
            )
        self.kind = detect_kind(self.model_dir) if kind == "auto" else kind
        if self.kind not in ("internvl", "generic"):
            raise ConfigError("generalist kind must be auto, internvl or generic")
        self.device = torch.device(device)
        self.max_new_tokens = max_new_tokens
        self.max_time_s = max_time_s
        self.name = f"transformers:{self.model_dir.name}"
        self._lock = threading.Lock()
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        try:
            if self.kind == "internvl":
                self._load_internvl(dtype)
            else:
                self._load_generic(dtype)
        except (OSError, ValueError, ImportError) as exc:
            raise GeneralistError(
                f"the {self.kind} model in {self.model_dir.name} cannot be loaded by transformers",
                hint="for MedDr put InternVL's remote-code files beside the checkpoint",
            ) from exc

    def _load_internvl(self, dtype: torch.dtype) -> None:
        from transformers import AutoModel, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(
            self.model_dir, trust_remote_code=True, local_files_only=True, use_fast=False
        )
        self._model = (
            AutoModel.from_pretrained(
                self.model_dir, trust_remote_code=True, local_files_only=True, dtype=dtype
            )
            .to(self.device)
            .eval()
        )
        self._dtype = dtype

    def _load_generic(self, dtype: torch.dtype) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self._processor = AutoProcessor.from_pretrained(self.model_dir, local_files_only=True)
        if not getattr(self._processor, "chat_template", None):
            raise ConfigError(
                "the generalist's processor has no chat template", hint="add chat_template to it"
            )
        self._model = (
            AutoModelForImageTextToText.from_pretrained(self.model_dir, local_files_only=True, dtype=dtype)
            .to(self.device)
            .eval()
        )

    def _generation_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"num_beams": 1, "do_sample": False, "max_new_tokens": self.max_new_tokens}
        if self.max_time_s is not None:
            config["max_time"] = self.max_time_s
        return config

    def generate(self, image: np.ndarray, prompt: str, *, system: str | None = None) -> str:
        """Greedy answer; the InternVL path takes its system message from the checkpoint's template."""
        with self._lock, torch.inference_mode():
            try:
                if self.kind == "internvl":
                    return self._generate_internvl(image, prompt)
                return self._generate_generic(image, prompt, system)
            except (RuntimeError, ValueError) as exc:
                raise GeneralistError(
                    f"the local generalist failed to generate: {type(exc).__name__}"
                ) from exc

    def _generate_internvl(self, image: np.ndarray, prompt: str) -> str:
        pixel_values = internvl_pixel_values(image).to(self.device, self._dtype)
        answer = self._model.chat(
            tokenizer=self._tokenizer,
            pixel_values=pixel_values,
            question=prompt,
            generation_config=self._generation_config(),
        )
        return str(answer)

    def _generate_generic(self, image: np.ndarray, prompt: str, system: str | None) -> str:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": [{"type": "text", "text": system or MEDDR_SYSTEM_MESSAGE}]},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]},
        ]
        text = self._processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = self._processor(images=to_pil_rgb(image), text=text, return_tensors="pt").to(self.device)
        output = self._model.generate(**inputs, **self._generation_config())
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return str(self._processor.decode(new_tokens, skip_special_tokens=True)).strip()


@register_backend("transformers")
def create_transformers(**kwargs: Any) -> TransformersBackend:
    return TransformersBackend(**kwargs)
