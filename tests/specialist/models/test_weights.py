"""Pretrained weights come only from the local weights folder, with strict checks."""

from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path

import pytest
import safetensors.torch
import torch

from gsco_common.errors import ModelError
from registry.bundle.layout import file_sha256
from specialist.models import create_specialist, save_backbone_weights
from specialist.models.weights import WEIGHTS_ENV, resolve_weights_dir


def _outputs(model: torch.nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        return model.eval()(images)


def test_weights_round_trip_gives_identical_embeddings(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = create_specialist("resnet18", 2, 32, pretrained=False)
    save_backbone_weights(source, tmp_path / "resnet18.safetensors")
    torch.manual_seed(2)
    loaded = create_specialist("resnet18", 5, 32, weights_dir=tmp_path)
    images = torch.randn(2, 3, 32, 32)
    _, expected = _outputs(source, images)
    logits, embedding = _outputs(loaded, images)
    assert torch.equal(embedding, expected)
    assert logits.shape == (2, 5)  # the task-specific head is never loaded


def test_full_state_round_trip_through_a_pth_file(tmp_path: Path) -> None:
    source = create_specialist("densenet121", 3, 32, pretrained=False)
    torch.save({"state_dict": source.net.state_dict()}, tmp_path / "densenet121.pth")
    loaded = create_specialist("densenet121", 3, 32, weights_dir=tmp_path)
    loaded.net.get_submodule(loaded.head_name).load_state_dict(
        source.net.get_submodule(source.head_name).state_dict()
    )
    images = torch.randn(2, 3, 32, 32)
    assert all(
        torch.equal(a, b) for a, b in zip(_outputs(source, images), _outputs(loaded, images), strict=True)
    )


def test_vit_position_embeddings_are_resampled_to_the_used_size(tmp_path: Path) -> None:
    source = create_specialist("vit_b16", 2, 32, pretrained=False)
    save_backbone_weights(source, tmp_path / "vit_b16.safetensors")
    loaded = create_specialist("vit_b16", 2, 48, weights_dir=tmp_path)
    assert loaded.net.pos_embed.shape == (1, 1 + 9, 768)
    assert torch.equal(loaded.net.cls_token, source.net.cls_token)
    assert torch.equal(loaded.net.pos_embed[:, :1], source.net.pos_embed[:, :1])


def test_sam_position_embeddings_are_resampled_to_the_used_size(tmp_path: Path) -> None:
    source = create_specialist("sam_vit_b16", 2, 32, pretrained=False)
    save_backbone_weights(source, tmp_path / "sam_vit_b16.safetensors")
    loaded = create_specialist("sam_vit_b16", 2, 48, weights_dir=tmp_path)
    assert loaded.net.pos_embed.shape == (1, 3, 3, 768)
    global_attention = loaded.net.blocks[2].attn
    assert global_attention.rel_pos_h.shape[0] == 5
    logits, _ = _outputs(loaded, torch.randn(1, 3, 48, 48))
    assert torch.isfinite(logits).all()


def test_mismatching_weights_name_keys_and_shapes(tmp_path: Path) -> None:
    state = create_specialist("resnet18", 2, 32, pretrained=False).net.state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(3, 3, 3, 3)
    state["extra.weight"] = torch.zeros(1)
    del state["layer4.1.bn2.bias"]
    safetensors.torch.save_file(
        {k: v.contiguous() for k, v in state.items()}, tmp_path / "resnet18.safetensors"
    )
    with pytest.raises(ModelError) as info:
        create_specialist("resnet18", 2, 32, weights_dir=tmp_path)
    message = str(info.value)
    assert "missing in file: layer4.1.bn2.bias" in message
    assert "unexpected in file: extra.weight" in message
    assert "layer1.0.conv1.weight: file [3, 3, 3, 3] vs model [64, 64, 3, 3]" in message
    assert str(tmp_path) not in message


def test_weights_of_another_backbone_are_refused(tmp_path: Path) -> None:
    save_backbone_weights(create_specialist("resnet18", 2, 32, pretrained=False), tmp_path / "r.safetensors")
    (tmp_path / "r.safetensors").rename(tmp_path / "densenet121.safetensors")
    with pytest.raises(ModelError, match="does not fit backbone 'densenet121'"):
        create_specialist("densenet121", 2, 32, weights_dir=tmp_path)


@pytest.mark.parametrize("content", [b"not a checkpoint", b""])
def test_unreadable_weights_file_is_a_model_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "resnet18.pth").write_bytes(content)
    with pytest.raises(ModelError, match="cannot read weights file resnet18.pth"):
        create_specialist("resnet18", 2, 32, weights_dir=tmp_path)


def test_a_dict_with_other_keys_than_names_is_not_a_state_dict(tmp_path: Path) -> None:
    torch.save({1: torch.zeros(2)}, tmp_path / "resnet18.pt")
    with pytest.raises(ModelError, match="resnet18.pt does not hold a state dict of tensors"):
        create_specialist("resnet18", 2, 32, weights_dir=tmp_path)


def test_a_broken_link_or_a_folder_in_the_weights_folder_is_not_skipped(tmp_path: Path) -> None:
    (tmp_path / "resnet18.safetensors").symlink_to(tmp_path / "gone.safetensors")
    with pytest.raises(ModelError, match="resnet18.safetensors in the weights folder is not a readable file"):
        create_specialist("resnet18", 2, 32, weights_dir=tmp_path)
    (tmp_path / "resnet18.safetensors").unlink()
    (tmp_path / "resnet18.safetensors").mkdir()
    with pytest.raises(ModelError, match="resnet18.safetensors in the weights folder is not a readable file"):
        create_specialist("resnet18", 2, 32, weights_dir=tmp_path)


def test_no_weights_file_means_random_init_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        create_specialist("resnet18", 2, 32, weights_dir=tmp_path)
    assert "no pretrained weights for resnet18" in caplog.text


def test_missing_weights_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="weights folder does not exist"):
        create_specialist("resnet18", 2, 32, weights_dir=tmp_path / "absent")
    (tmp_path / "weights.npz").write_bytes(b"")
    with pytest.raises(ModelError, match="^the weights folder is a file, not a folder"):
        create_specialist("resnet18", 2, 32, weights_dir=tmp_path / "weights.npz")


def test_weights_folder_from_the_environment(tmp_path: Path) -> None:
    assert resolve_weights_dir(None, {WEIGHTS_ENV: str(tmp_path)}) == tmp_path
    assert resolve_weights_dir(tmp_path, {WEIGHTS_ENV: "/nonexistent"}) == tmp_path
    assert resolve_weights_dir(None, {}) is None


def test_the_weights_file_name_and_digest_are_recorded_and_a_pinned_digest_is_checked(tmp_path: Path) -> None:
    source = create_specialist("resnet18", 2, 32, pretrained=False)
    path = tmp_path / "resnet18.safetensors"
    save_backbone_weights(source, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_sha256(path) == digest
    assert create_specialist("resnet18", 2, 32, pretrained=False).pretrained is None
    loaded = create_specialist(
        "resnet18", 2, 32, weights_dir=tmp_path, weights_sha256=f"sha256:{digest.upper()}"
    )
    assert loaded.pretrained == {"file": "resnet18.safetensors", "sha256": digest}
    with pytest.raises(
        ModelError,
        match=f"resnet18.safetensors has sha256 {digest}, but training.weights_sha256 pins {'0' * 64}",
    ):
        create_specialist("resnet18", 2, 32, weights_dir=tmp_path, weights_sha256="0" * 64)


def test_the_loaded_tensors_are_those_of_the_recorded_digest_when_the_file_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file swapped after it was first opened: the digest and the weights must still agree."""
    path = tmp_path / "resnet18.pth"
    torch.manual_seed(1)
    first = create_specialist("resnet18", 2, 32, pretrained=False)
    torch.save(first.net.state_dict(), path)
    digest = file_sha256(path)
    torch.manual_seed(2)
    replacement = io.BytesIO()
    torch.save(create_specialist("resnet18", 2, 32, pretrained=False).net.state_dict(), replacement)
    opened: list[str] = []
    real_open = io.open

    def open_then_replace(file: object, *args: object, **kwargs: object) -> object:
        handle = real_open(file, *args, **kwargs)  # type: ignore[call-overload]
        if Path(str(file)) == path:  # an atomic swap: this handle reads the old file, later opens the new
            opened.append(str(file))
            with real_open(tmp_path / "swap.tmp", "wb") as swap:
                swap.write(replacement.getvalue())
            os.replace(tmp_path / "swap.tmp", path)
        return handle

    monkeypatch.setattr(io, "open", open_then_replace)
    monkeypatch.setattr("builtins.open", open_then_replace)
    loaded = create_specialist("resnet18", 2, 32, weights_dir=tmp_path, weights_sha256=digest)
    monkeypatch.undo()
    assert opened  # the swap happened
    assert loaded.pretrained == {"file": "resnet18.pth", "sha256": digest}
    images = torch.randn(2, 3, 32, 32)
    assert torch.equal(_outputs(loaded, images)[1], _outputs(first, images)[1])


def test_a_pinned_digest_without_its_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(
        ModelError, match="pins pretrained weights for resnet18, but there is no resnet18.safetensors"
    ):
        create_specialist("resnet18", 2, 32, weights_dir=tmp_path, weights_sha256="ab" * 32)
    with pytest.raises(ModelError, match="pins pretrained weights for resnet18"):
        create_specialist("resnet18", 2, 32, weights_sha256="ab" * 32)


@pytest.mark.parametrize(
    "where", ["https://huggingface.co/timm/resnet18.a1_in1k", "hf-hub:timm/resnet18.a1_in1k", "s3://bucket/w"]
)
def test_a_download_location_is_refused_with_a_clear_message(where: str) -> None:
    with pytest.raises(ModelError, match="never downloaded"):
        create_specialist("resnet18", 2, 32, weights_dir=Path(where))
    with pytest.raises(ModelError, match="never downloaded"):
        resolve_weights_dir(None, {WEIGHTS_ENV: where})
