"""The in-process transformers backend, end to end on tiny models built here (no downloads)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gsco_common.errors import ConfigError
from gsco_runtime.arbiters.parser import parse_answer
from gsco_runtime.generalists import create_backend
from gsco_runtime.generalists.transformers_local import (
    TransformersBackend,
    detect_kind,
    internvl_pixel_values,
)
from registry.bundle.preprocess import IMAGENET_MEAN, IMAGENET_STD

# "pneumonia" is token 0: with the final norm zeroed, every logit is 0 and greedy decoding picks it.
WORDS = [
    "pneumonia",
    "<unk>",
    "<pad>",
    "<s>",
    "</s>",
    "<image>",
    "<|im_start|>",
    "<|im_end|>",
    "system",
    "user",
    "assistant",
    "normal",
    "answer",
    "the",
    "questions",
    ".",
    "'",
    ",",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "<|im_end|>{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised LLaVA (CLIP vision + Llama text) saved with its processor."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    vocab = {word: i for i, word in enumerate(WORDS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens={"image_token": "<image>"},
    )
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=30,
        patch_size=15,
        projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=len(WORDS),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=2,
        bos_token_id=3,
        eos_token_id=4,
    )
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=vocab["<image>"])
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    with torch.no_grad():
        dict(model.named_parameters())["model.language_model.norm.weight"].zero_()
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30}),
        tokenizer=tokenizer,
        patch_size=15,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    folder = tmp_path_factory.mktemp("tiny-llava")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_generic_vlm_generates_end_to_end(tiny_llava: Path) -> None:
    backend = create_backend("transformers", model_dir=tiny_llava, max_new_tokens=4)
    assert isinstance(backend, TransformersBackend) and backend.kind == "generic"
    image = (np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)
    first = backend.generate(image, "normal or pneumonia ?")
    second = backend.generate(image, "normal or pneumonia ?")
    assert first == second == "pneumonia pneumonia pneumonia pneumonia"  # greedy, max_new_tokens=4
    assert parse_answer(first, ("normal", "pneumonia")) == 1


def test_internvl_tile_is_448_bicubic_imagenet() -> None:
    image = (np.random.default_rng(1).random((28, 28)) * 255).astype(np.uint8)
    pixels = internvl_pixel_values(image)
    assert pixels.shape == (1, 3, 448, 448) and pixels.dtype == torch.float32
    reference = np.asarray(Image.fromarray(image).convert("RGB").resize((448, 448), Image.Resampling.BICUBIC))
    expected = (reference / 255.0 - np.asarray(IMAGENET_MEAN)) / np.asarray(IMAGENET_STD)
    assert np.allclose(pixels[0].numpy().transpose(1, 2, 0), expected, atol=1e-5)


REMOTE_CONFIG = textwrap.dedent("""
    from transformers import PretrainedConfig


    class TinyChatConfig(PretrainedConfig):
        model_type = "internvl_chat"
""")
REMOTE_MODEL = textwrap.dedent('''
    import torch
    from transformers import PreTrainedModel

    from .configuration_tiny_chat import TinyChatConfig


    class TinyChatModel(PreTrainedModel):
        """Stands in for InternVL-Chat's remote code: a chat() taking pixel values and a question."""

        config_class = TinyChatConfig

        def __init__(self, config):
            super().__init__(config)
            self.scale = torch.nn.Parameter(torch.ones(1))
            self.post_init()

        def chat(self, tokenizer, pixel_values, question, generation_config):
            assert tuple(pixel_values.shape) == (1, 3, 448, 448)
            assert generation_config["do_sample"] is False and generation_config["num_beams"] == 1
            return "pneumonia" if float(pixel_values.mean() * self.scale) > 0 else "normal"
''')


@pytest.fixture(scope="module")
def tiny_internvl(tmp_path_factory: pytest.TempPathFactory, tiny_llava: Path) -> Path:
    """An InternVL-Chat-style checkpoint: remote-code files beside the weights (trust_remote_code path)."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny-internvl")
    (folder / "configuration_tiny_chat.py").write_text(REMOTE_CONFIG)
    (folder / "modeling_tiny_chat.py").write_text(REMOTE_MODEL)
    config = {
        "model_type": "internvl_chat",
        "architectures": ["InternVLChatModel"],
        "auto_map": {
            "AutoConfig": "configuration_tiny_chat.TinyChatConfig",
            "AutoModel": "modeling_tiny_chat.TinyChatModel",
        },
    }
    (folder / "config.json").write_text(json.dumps(config))
    from safetensors.torch import save_file

    save_file({"scale": torch.ones(1)}, str(folder / "model.safetensors"))
    AutoTokenizer.from_pretrained(tiny_llava).save_pretrained(folder)
    return folder


def test_internvl_checkpoint_loads_through_remote_code_and_chats(tiny_internvl: Path) -> None:
    assert detect_kind(tiny_internvl) == "internvl"
    backend = TransformersBackend(tiny_internvl)
    bright = np.full((28, 28), 250, np.uint8)
    dark = np.zeros((28, 28), np.uint8)
    assert backend.generate(bright, "q") == "pneumonia"
    assert backend.generate(dark, "q") == "normal"


def test_missing_folder_or_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        TransformersBackend(tmp_path / "absent")
    with pytest.raises(ConfigError, match="config.json"):
        TransformersBackend(tmp_path)
