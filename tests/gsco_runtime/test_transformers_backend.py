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
from gsco_runtime.arbiters.prompts import SimilarCase, SpecialistView, gsco_prompt
from gsco_runtime.generalists import create_backend
from gsco_runtime.generalists.base import MEDDR_SYSTEM_MESSAGE
from gsco_runtime.generalists.transformers_local import (
    TransformersBackend,
    detect_kind,
    internvl_pixel_values,
)
from registry.bundle.preprocess import IMAGENET_MEAN, IMAGENET_STD

LABELS = ("normal", "pneumonia")
SPECIAL = ["<unk>", "<pad>", "<s>", "</s>", "<image>", "<|im_start|>", "<|im_end|>"]


def runtime_prompt(finding: str) -> str:
    """The GSCo prompt the meddr arbiter builds when the retrieved cases and specialists say ``finding``."""
    return gsco_prompt("chest radiograph", LABELS, [SpecialistView(finding, (SimilarCase(finding),))])


def _vocabulary() -> list[str]:
    """Every word of the runtime's prompts and of the system message gets its own token id."""
    from tokenizers import pre_tokenizers

    texts = [runtime_prompt(label) for label in LABELS] + [MEDDR_SYSTEM_MESSAGE, "system user assistant"]
    words = [word for text in texts for word, _ in pre_tokenizers.Whitespace().pre_tokenize_str(text)]
    return [*SPECIAL, *dict.fromkeys(words)]


WORDS = _vocabulary()
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
    core.add_special_tokens(SPECIAL)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens={"image_token": "<image>"},
    )
    # one toy size for both towers
    tiny = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    vision = CLIPVisionConfig(**tiny, image_size=30, patch_size=15, projection_dim=32)
    text = LlamaConfig(
        **tiny,
        vocab_size=len(WORDS),
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=vocab["<pad>"],
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
    )
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=vocab["<image>"])
    torch.manual_seed(3)  # a seed whose random weights answer the two test prompts differently
    model = LlavaForConditionalGeneration(config).eval()
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


def _contains(sequence: list[int], part: list[int]) -> bool:
    return any(sequence[i : i + len(part)] == part for i in range(len(sequence) - len(part) + 1))


def test_generic_vlm_answers_the_prompt_the_runtime_built(tiny_llava: Path) -> None:
    from transformers import AutoTokenizer

    backend = create_backend("transformers", model_dir=tiny_llava, max_new_tokens=4)
    assert isinstance(backend, TransformersBackend) and backend.kind == "generic"
    tokenizer = AutoTokenizer.from_pretrained(tiny_llava)
    image = (np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)
    received: list[list[int]] = []  # input_ids of every forward pass; the first is the whole prompt
    hook = backend._model.register_forward_pre_hook(
        lambda _module, _args, kwargs: received.append(kwargs["input_ids"][0].tolist()), with_kwargs=True
    )
    answers: dict[str, str] = {}
    try:
        for finding in LABELS:
            prompt = runtime_prompt(finding)
            received.clear()
            answers[finding] = backend.generate(image, prompt)
            assert _contains(received[0], tokenizer.encode(prompt, add_special_tokens=False)), finding
            system = tokenizer.encode(MEDDR_SYSTEM_MESSAGE, add_special_tokens=False)
            assert _contains(received[0], system), finding
            assert backend.generate(image, prompt) == answers[finding]  # greedy: reproducible
    finally:
        hook.remove()
    # with the final norm zeroed (the old test) every logit was 0 and both answers were equal
    assert answers["normal"] != answers["pneumonia"], answers


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
    import json

    import torch
    from transformers import PreTrainedModel

    from .configuration_tiny_chat import TinyChatConfig


    class TinyChatModel(PreTrainedModel):
        """Stands in for InternVL-Chat's remote code: its chat() reports what the backend handed it.

        The question as token ids of the tokenizer it was given, the tile's shape and mean, and
        the generation settings: what the backend controls. The real chat() (template, image
        tokens, decoding) is MedDr's code and is not exercised here (docs/runtime.md).
        """

        config_class = TinyChatConfig

        def __init__(self, config):
            super().__init__(config)
            self.scale = torch.nn.Parameter(torch.ones(1))
            self.post_init()

        def chat(self, tokenizer, pixel_values, question, generation_config):
            return json.dumps({
                "question_ids": tokenizer.encode(question, add_special_tokens=False),
                "tile": list(pixel_values.shape),
                "bright": float(pixel_values.mean() * self.scale) > 0,
                "greedy": not generation_config["do_sample"] and generation_config["num_beams"] == 1,
            })
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


def test_internvl_chat_gets_the_runtime_prompt_and_the_meddr_tile(tiny_internvl: Path) -> None:
    from transformers import AutoTokenizer

    assert detect_kind(tiny_internvl) == "internvl"
    backend = TransformersBackend(tiny_internvl)
    tokenizer = AutoTokenizer.from_pretrained(tiny_internvl)
    bright = np.full((28, 28), 250, np.uint8)
    dark = np.zeros((28, 28), np.uint8)
    for finding, image, is_bright in (("normal", dark, False), ("pneumonia", bright, True)):
        prompt = runtime_prompt(finding)
        asked = json.loads(backend.generate(image, prompt))
        assert asked == {
            "question_ids": tokenizer.encode(prompt, add_special_tokens=False),
            "tile": [1, 3, 448, 448],
            "bright": is_bright,
            "greedy": True,
        }
        assert (
            tokenizer.convert_ids_to_tokens(asked["question_ids"]).count(finding) == 3
        )  # options, RAD, MoED


def test_missing_folder_or_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        TransformersBackend(tmp_path / "absent")
    with pytest.raises(ConfigError, match="config.json"):
        TransformersBackend(tmp_path)
