"""The federated bundle's card: pooled evaluation, participating sites, (epsilon, delta)."""

from __future__ import annotations

from typing import Any

import pytest

from hub.federation.publish import FEDERATION_LIMITATIONS, evaluation_from_sites, federation_section
from registry.bundle.card import Card
from registry.bundle.preprocess import Preprocessing
from site_agent.config import TaskConfig
from site_agent.export.card_builder import build_card

FP = "sha256:" + "1" * 64
NODE_FP = "sha256:" + "2" * 64


def site(site_fp: str, node_fp: str, accuracy: float | None, status: str = "active") -> dict[str, Any]:
    return {
        "node_fingerprint": node_fp,
        "site_fingerprint": site_fp,
        "train_examples": 200,
        "class_counts": [40, None],
        "held_out_split": "test",
        "rounds_participated": 3,
        "status": status,
        "final_metrics": {}
        if accuracy is None
        else {"examples": 40.0, "accuracy": accuracy, "balanced-accuracy": 0.7, "sensitivity": [0.5, 0.9]},
    }


def result(dp: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "label_names": ["normal", "pneumonia"],
        "seed": 0,
        "strategy": "fedprox",
        "rounds": 3,
        "local_epochs": 1,
        "sites": [
            site(FP, NODE_FP, 0.8),
            site(None, "sha256:" + "3" * 64, 0.6),
            site(None, "sha256:" + "4" * 64, None, status="left in round 2"),
        ],
        "final_metrics": {
            "examples": 80.0,
            "accuracy": 0.7,
            "balanced-accuracy": 0.7,
            "macro-f1": 0.65,
            "auc": 0.8,
            "ece": 0.05,
            "per_class": {"sensitivity": [0.5, 0.9], "specificity": [0.9, 0.5], "support": [20, 60]},
        },
        "dp": dp,
    }


def card_for(run: dict[str, Any]) -> dict[str, Any]:
    spec = Preprocessing(input_size=28, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    return build_card(
        task=TaskConfig(
            id="pneumonia",
            labels=run["label_names"],
            modality="chest X-ray",
            limitations=list(FEDERATION_LIMITATIONS),
        ),
        backbone="resnet18",
        embedding_dim=512,
        preprocessing=spec,
        opset=18,
        evaluation=evaluation_from_sites(run),
        epochs=3,
        best_epoch=3,
        seed=0,
        membership_auc=0.51,
        class_counts={"train": [80, 0]},
        key_fingerprint="sha256:" + "9" * 64,
        uid="f" * 32,
        dp_epsilon=(run["dp"] or {}).get("epsilon"),
        federation=federation_section(run),
    )


def test_card_lists_each_finishing_site_with_its_metrics() -> None:
    card = Card.from_dict(card_for(result(None))).data
    sites = card["federation"]["sites"]
    assert [entry["key_fingerprint"] for entry in sites] == [FP, "sha256:" + "3" * 64]
    assert sites[0]["node_key_fingerprint"] == NODE_FP
    assert sites[0]["metrics"] == {"examples": 40.0, "accuracy": 0.8, "balanced_accuracy": 0.7}
    evaluation = card["evaluation"]
    assert evaluation["split"] == "test" and evaluation["n"] == 80
    assert evaluation["metrics"]["balanced_accuracy"] == {"value": 0.7, "ci95": None}
    assert evaluation["per_class"][1]["sensitivity"]["value"] == pytest.approx(0.9)
    assert "dp" not in card["federation"] and card["training"]["dp_epsilon"] is None


def test_card_records_epsilon_and_delta_of_a_dp_run() -> None:
    dp = {"epsilon": 4.2, "delta": 1e-5, "noise_multiplier": 1.1, "clipping_norm": 0.5}
    card = Card.from_dict(card_for(result(dp))).data
    assert card["federation"]["dp"] == dp
    assert card["training"]["dp_epsilon"] == pytest.approx(4.2)
