"""The runtime and `site-agent evaluate` turn the same image into the same input and logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gsco_runtime.pool.cache import BundleCache
from gsco_runtime.pool.pool import SpecialistPool
from gsco_runtime.pool.registry_source import RegistrySource
from specialist.data import LabelledImages
from specialist.inputs import PreparedImages
from specialist.predict import predict
from tests.gsco_runtime.world import World, exported


@pytest.mark.parametrize("backbone", ["test_resnet", "test_efficientnet"])
def test_identical_inputs_and_logits_through_both_paths(world: World, tmp_path: Path, backbone: str) -> None:
    task = world.new_task()
    world.publish(task, backbone, "site-a", seed=7)
    pool = SpecialistPool(RegistrySource(world.config), BundleCache(tmp_path / "cache"))
    pool.watch([task])
    (specialist,) = pool.snapshot(task).specialists
    _, model = exported(backbone, 7)

    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 256, (45, 37), dtype=np.uint8),  # odd size: resize and interpolation matter
        rng.integers(0, 256, (28, 28, 3), dtype=np.uint8),  # colour input
        rng.integers(0, 65536, (64, 64), dtype=np.uint16),  # 16-bit
    ]
    split = LabelledImages(load_image=lambda i: images[i], labels=np.zeros(len(images), dtype=np.int64))
    site_inputs = PreparedImages(split, model.preprocessing).batch(np.arange(len(images))).numpy()
    runtime_inputs = np.stack([specialist.prepare(image) for image in images])
    assert np.array_equal(site_inputs, runtime_inputs)  # bit for bit: one implementation
    assert specialist.info.preprocessing == model.preprocessing  # the card carries it

    with torch.inference_mode():
        torch_logits = model(torch.from_numpy(site_inputs))[0].numpy()
    onnx_logits, _ = specialist.run(runtime_inputs)
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4, rtol=1e-4)

    site_probs, site_embeddings = predict(model, split, model.preprocessing)
    runtime_probs, runtime_embeddings = specialist.predict_many(images)
    np.testing.assert_allclose(runtime_probs, site_probs, atol=1e-5)
    np.testing.assert_allclose(runtime_embeddings, site_embeddings, atol=1e-4, rtol=1e-4)
