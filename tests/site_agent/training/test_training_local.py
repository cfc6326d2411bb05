"""The federation entry point (train_local, FedProx) and the prediction helper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from specialist.data import SiteData
from specialist.inputs import PreparedImages
from specialist.models.factory import create_specialist
from specialist.models.specialist import Specialist
from specialist.predict import predict
from specialist.training.config import TrainingConfig
from specialist.training.loop import train_local


def _model(seed: int = 0) -> Specialist:
    torch.manual_seed(seed)
    return create_specialist("resnet18", 2, 28, pretrained=False)


def _distance(model: Specialist, reference: dict[str, torch.Tensor]) -> float:
    return sum(float((p.detach() - reference[n]).pow(2).sum()) for n, p in model.named_parameters())


def test_train_local_trains_in_place_and_reports(
    tiny_site_data: SiteData, fast_training: TrainingConfig
) -> None:
    model = _model()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    split = tiny_site_data.split("train")
    result = train_local(model, split, model.preprocessing, fast_training, epochs=1, seed=3)
    assert set(result) == {"train_loss", "num_examples", "images_per_s", "seconds"}
    assert result["num_examples"] == len(split) and np.isfinite(result["train_loss"])
    assert _distance(model, before) > 0
    again = _model()
    train_local(again, split, again.preprocessing, fast_training, epochs=1, seed=3)
    for name, tensor in again.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name])


def test_fedprox_term_keeps_weights_near_the_global_model(
    tiny_site_data: SiteData, fast_training: TrainingConfig
) -> None:
    split = tiny_site_data.split("train")
    options = fast_training.model_copy(update={"lr": 0.01})
    plain, prox = _model(), _model()
    reference = {name: p.detach().clone() for name, p in plain.named_parameters()}
    train_local(plain, split, plain.preprocessing, options, epochs=1)
    train_local(prox, split, prox.preprocessing, options, epochs=1, proximal_mu=100.0, reference=reference)
    assert _distance(prox, reference) < _distance(plain, reference)


def test_predict_returns_ordered_probabilities_and_embeddings(tiny_site_data: SiteData) -> None:
    model = _model().train()
    split = tiny_site_data.split("val")
    probs, embeddings = predict(model, split, model.preprocessing, batch_size=5)
    assert probs.shape == (len(split), 2) and embeddings.shape == (len(split), model.embedding_dim)
    assert probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert model.training, "predict restores the model's mode"
    prepared = PreparedImages(split, model.preprocessing)
    assert prepared.cached
    cached_probs, cached_embeddings = predict(model, prepared, model.preprocessing, batch_size=64)
    np.testing.assert_allclose(cached_probs, probs, atol=1e-5)
    np.testing.assert_allclose(cached_embeddings, embeddings, atol=1e-4)
    model.eval()
    with torch.no_grad():
        logits, _ = model(prepared.batch(np.array([3])))
    assert torch.softmax(logits, 1)[0].numpy() == pytest.approx(probs[3], abs=1e-5)


def test_uncached_inputs_equal_cached_inputs(tiny_site_data: SiteData) -> None:
    split = tiny_site_data.split("val")
    spec = _model().preprocessing
    cached, lazy = PreparedImages(split, spec), PreparedImages(split, spec, cache_mb=0)
    assert cached.cached and not lazy.cached
    indices = np.array([4, 0, 2])
    assert torch.equal(cached.batch(indices), lazy.batch(indices))
    assert cached.label_batch(indices).tolist() == split.labels[indices].tolist()
