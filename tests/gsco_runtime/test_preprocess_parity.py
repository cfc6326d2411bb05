"""The runtime and `site-agent evaluate` turn the same image into the same input and logits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gsco_runtime.pool.cache import BundleCache
from gsco_runtime.pool.pool import SpecialistPool
from gsco_runtime.pool.registry_source import RegistrySource
from site_agent.data.loader import load_site_data
from specialist.data import LabelledImages
from specialist.export.card_builder import evaluation_section
from specialist.inputs import PreparedImages
from specialist.predict import predict
from tests.gsco_runtime.world import World, exported
from tests.site_bundle import LABELS, TASK, SiteBundle


@pytest.mark.parametrize("backbone", ["test_resnet", "test_efficientnet"])
def test_identical_inputs_and_logits_through_both_paths(world: World, tmp_path: Path, backbone: str) -> None:
    """World-made bundles (``bench/world.py``, through the same ``export_specialist``): the real
    specialists are all the ViT, and this test needs the convolutional backbones (batch norm
    folded at export) next to the torch model each bundle was exported from."""
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


def test_the_served_site_bundle_reproduces_its_card_on_the_sites_held_out_images(
    world: World, site_bundle: SiteBundle, site_model: tuple[str, str], tmp_path: Path
) -> None:
    """A bundle from `site-agent` training and export: the hub's outputs give the card's figures."""
    pool = SpecialistPool(RegistrySource(world.config), BundleCache(tmp_path / "cache"))
    pool.watch([TASK])
    (specialist,) = pool.snapshot(TASK).specialists
    card = json.loads((site_bundle.folder / "card.json").read_text())
    assert (specialist.info.name, specialist.info.version) == site_model
    assert specialist.info.model_uid == site_bundle.report.model_uid

    evaluation = card["evaluation"]
    held_out = load_site_data(site_bundle.data, LABELS, site_bundle.seed).split(evaluation["split"])
    probs, _ = specialist.predict_many([held_out.image(i) for i in range(len(held_out))])
    bootstrap = evaluation["bootstrap"]
    again = evaluation_section(
        held_out.labels,
        probs,
        LABELS,
        split=evaluation["split"],
        resamples=bootstrap["resamples"],
        seed=bootstrap["seed"],
    )
    assert again == evaluation
