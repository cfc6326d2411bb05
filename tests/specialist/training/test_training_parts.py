"""Schedule, augmentation, class weights, checkpoints and RNG state: the loop's building blocks."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from gsco_common.errors import ConfigError, ModelError
from registry.bundle.preprocess import Preprocessing
from specialist.training.augment import Augmenter
from specialist.training.checkpoint import capture_rng, load_checkpoint, restore_rng, save_atomic
from specialist.training.config import AugmentationConfig, TrainingConfig
from specialist.training.device import select_device
from specialist.training.loop import class_weights, epoch_batches, make_loss, make_optimizer, proximal_term
from specialist.training.schedule import warmup_cosine, warmup_cosine_factor


def test_warmup_is_linear_then_cosine_decays_to_the_floor() -> None:
    factors = [warmup_cosine_factor(step, 100, 10, 0.01) for step in range(101)]
    assert factors[:10] == pytest.approx([(step + 1) / 10 for step in range(10)])
    assert factors[10] == pytest.approx(1.0)
    assert factors[55] == pytest.approx(0.01 + 0.99 * 0.5)
    assert factors[100] == pytest.approx(0.01)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))


def test_scheduler_drives_the_optimizer_per_step() -> None:
    parameter = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW([parameter], lr=0.1)
    scheduler = warmup_cosine(optimizer, total_steps=20, warmup_fraction=0.1, min_lr_ratio=0.0)
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.05)
    assert rates[1] == pytest.approx(0.1)
    assert rates[-1] < 0.002


def _asymmetric_batch() -> tuple[torch.Tensor, Preprocessing]:
    spec = Preprocessing(input_size=16)
    unit = torch.zeros(4, 3, 16, 16)
    unit[:, :, 4:12, 1:5] = 1.0  # a bright bar on the left only
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    return (unit - mean) / std, spec


def test_augmentation_never_flips_unless_asked() -> None:
    batch, spec = _asymmetric_batch()
    geometric_only = AugmentationConfig(
        rotation_deg=0, translate=0, scale=(1.0, 1.0), brightness=0, contrast=0
    )
    assert not Augmenter(geometric_only, spec, modality="synthetic").active
    assert torch.equal(
        Augmenter(geometric_only, spec, modality="synthetic")(batch, torch.Generator().manual_seed(0)), batch
    )
    flipping = Augmenter(geometric_only.model_copy(update={"hflip": True}), spec, modality="synthetic")
    out = flipping(batch.repeat(8, 1, 1, 1), torch.Generator().manual_seed(0))
    left = out[:, 0, :, :8].mean(dim=(1, 2))
    right = out[:, 0, :, 8:].mean(dim=(1, 2))
    assert bool((right > left).any()) and bool((left > right).any())


def test_default_augmentation_is_light_seeded_and_keeps_laterality() -> None:
    batch, spec = _asymmetric_batch()
    config = AugmentationConfig()
    assert config.hflip == "auto" and config.vflip == "auto"
    augmenter = Augmenter(config, spec, modality="paediatric chest X-ray")
    first = augmenter(batch, torch.Generator().manual_seed(5))
    again = augmenter(batch, torch.Generator().manual_seed(5))
    other = augmenter(batch, torch.Generator().manual_seed(6))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert not torch.equal(first, batch)
    # the bar stays on the left: no mirrored chest X-rays
    assert bool((first[:, 0, :, :8].mean(dim=(1, 2)) > first[:, 0, :, 8:].mean(dim=(1, 2))).all())
    low = (0 - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)
    high = (1 - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)
    assert bool((first >= low - 1e-5).all()) and bool((first <= high + 1e-5).all())


def test_class_weights_follow_inverse_frequency_powers() -> None:
    labels = np.array([0, 0, 0, 1])
    assert class_weights(labels, 2, "balanced").tolist() == pytest.approx([4 / (2 * 3), 4 / (2 * 1)])
    sqrt = class_weights(labels, 2, "sqrt").numpy()
    assert sqrt[1] / sqrt[0] == pytest.approx(3**0.5)
    assert float((sqrt[labels]).mean()) == pytest.approx(1.0)
    assert class_weights(labels, 2, "none").tolist() == pytest.approx([1.0, 1.0])
    assert class_weights(np.array([0, 1, 2]), 3, "balanced").tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_loss_is_class_weighted_by_default() -> None:
    labels = np.array([0, 0, 0, 1])
    default = make_loss(labels, 2, TrainingConfig(), torch.device("cpu"))
    assert default.weight is not None and float(default.weight[1]) > float(default.weight[0])
    assert make_loss(labels, 2, TrainingConfig(class_weights="none"), torch.device("cpu")).weight is None


def test_epoch_batches_are_seeded_per_epoch_and_skip_a_lonely_last_image() -> None:
    first = epoch_batches(33, 16, seed=0, epoch=0)
    assert [len(b) for b in first] == [16, 16]
    assert torch.equal(torch.cat(first), torch.cat(epoch_batches(33, 16, seed=0, epoch=0)))
    assert not torch.equal(torch.cat(first), torch.cat(epoch_batches(33, 16, seed=0, epoch=1)))
    assert sorted(torch.cat(epoch_batches(34, 16, seed=0, epoch=0)).tolist()) == list(range(34))


def test_optimizer_skips_weight_decay_on_biases_and_norms() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    optimizer = make_optimizer(model, lr=0.01, weight_decay=0.05)
    assert isinstance(optimizer, torch.optim.AdamW)
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.05 and len(decayed["params"]) == 1
    assert plain["weight_decay"] == 0.0 and len(plain["params"]) == 3


def test_proximal_term_is_the_squared_distance() -> None:
    model = torch.nn.Linear(2, 1)
    reference = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    expected = sum(float(p.detach().pow(2).sum()) for p in model.parameters())
    assert float(proximal_term(model, reference).detach()) == pytest.approx(expected)


def test_atomic_checkpoint_round_trip_and_corruption(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "last.pt"
    save_atomic({"weights": torch.arange(4), "epoch": 3, "history": [{"loss": 0.5, "auc": None}]}, path)
    save_atomic({"weights": torch.arange(5), "epoch": 4, "history": []}, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 4 and torch.equal(loaded["weights"], torch.arange(5))
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="corrupt"):
        load_checkpoint(path)
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_rng_state_survives_a_checkpoint(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    save_atomic({"rng": capture_rng()}, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    restore_rng(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_device_selection_is_explicit() -> None:
    assert select_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            select_device("cuda")


def test_augmentation_probability_leaves_some_images_untouched() -> None:
    batch, spec = _asymmetric_batch()
    batch = batch.repeat(16, 1, 1, 1)
    never = Augmenter(AugmentationConfig(probability=0.0), spec, modality="synthetic")
    assert not never.active and torch.equal(never(batch, torch.Generator().manual_seed(0)), batch)
    half = Augmenter(AugmentationConfig(probability=0.5), spec, modality="synthetic")(
        batch, torch.Generator().manual_seed(0)
    )
    unchanged = [bool(torch.equal(half[i], batch[i])) for i in range(len(batch))]
    assert any(unchanged) and not all(unchanged)
