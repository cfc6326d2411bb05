"""The federated bundle's card: pooled evaluation, participating sites, (epsilon, delta)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from flwr.app import ConfigRecord

from gsco_common.errors import FederationError, PrivacyError
from gsco_common.keys import load_public_key, public_pem
from gsco_runtime.arbiters.calibration import unusable_reason
from gsco_runtime.cases.library import build_library
from gsco_runtime.cases.readers import RawCases
from gsco_runtime.pool.card import read_specialist_info
from gsco_runtime.pool.source import BundleRef
from hub.federation.orchestrate import RunOutcome
from hub.federation.publish import (
    FEDERATION_LIMITATIONS,
    bundle_run,
    create_federation_key,
    evaluation_from_sites,
    federated_privacy,
    federation_key_paths,
    federation_section,
    hub_privacy,
    training_sets,
)
from hub.federation.rounds import CHECKPOINTS, GLOBAL_CHECKPOINT, _training_set_digest
from registry.bundle.card import NOTION_HUB, NOTION_SITE, Card
from registry.bundle.layout import SITE_SIG
from registry.bundle.preprocess import Preprocessing
from registry.bundle.signing import verify_bundle
from registry.store.catalog import TaskInfo
from specialist.export.card_builder import build_card
from specialist.models.factory import create_specialist
from specialist.task import TaskConfig

FP = "sha256:" + "1" * 64
NODE_FP = "sha256:" + "2" * 64
DATA = ["sha256:" + c * 64 for c in "abc"]
"""The three sites' training-set digests, as each site computed it."""


def site(
    site_fp: str | None,
    node_fp: str,
    accuracy: float | None,
    status: str = "active",
    data: str | None = None,
    rounds: int = 3,
) -> dict[str, Any]:
    return {
        "node_fingerprint": node_fp,
        "site_fingerprint": site_fp,
        "train_examples": 200,
        "class_counts": [40, None],
        "held_out_split": "test",
        "training_set_digest": data,
        "rounds_participated": rounds,
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
            site(FP, NODE_FP, 0.8, data=DATA[0]),
            site(None, "sha256:" + "3" * 64, 0.6, data=DATA[1]),
            site(None, "sha256:" + "4" * 64, None, status="left in round 2", data=DATA[2], rounds=1),
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
    """The card as ``bundle_run`` builds it (federation section and combined training-set digest)."""
    spec = Preprocessing(input_size=28, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    return build_card(
        task=TaskConfig(
            id="pneumonia",
            labels=run["label_names"],
            modality="chest X-ray",
            limitations=[*FEDERATION_LIMITATIONS, *federated_privacy(run)[1]],
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
        dp_epsilon=(federated_privacy(run)[0] or {}).get("epsilon"),
        federation=federation_section(run),
        training_set_digest=training_sets(run)[1],
        privacy=federated_privacy(run)[0],
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


def test_card_records_each_training_sites_data_digest_and_their_combination() -> None:
    card = Card.from_dict(card_for(result(None)))
    listed = card.data["federation"]["training_sets"]
    # every site that trained, the one that left in round 2 too (its data is in the model)
    assert listed == [
        {"key_fingerprint": FP, "training_set_digest": DATA[0]},
        {"key_fingerprint": "sha256:" + "3" * 64, "training_set_digest": DATA[1]},
        {"key_fingerprint": "sha256:" + "4" * 64, "training_set_digest": DATA[2]},
    ]
    combined = hashlib.sha256("\n".join(["gsco-data-combined-v1", *DATA]).encode()).hexdigest()
    assert card.training_set_digest == "sha256:" + combined
    assert card.training_set_digests == ("sha256:" + combined, *DATA)
    shuffled = result(None)
    shuffled["sites"].reverse()
    assert training_sets(shuffled)[1] == card.training_set_digest  # order-free


def test_a_site_without_a_digest_leaves_the_card_without_a_combined_one() -> None:
    run = result(None)
    run["sites"][1]["training_set_digest"] = None  # an older site agent
    run["sites"][2]["rounds_participated"] = 0  # joined but never trained: not listed
    card = Card.from_dict(card_for(run))
    assert card.training_set_digest is None
    assert card.data["federation"]["training_sets"] == [
        {"key_fingerprint": FP, "training_set_digest": DATA[0]}
    ]
    assert card.training_set_digests == (DATA[0],)


def test_card_records_epsilon_and_delta_of_a_dp_run() -> None:
    dp = {"epsilon": 4.2, "delta": 1e-5, "noise_multiplier": 1.1, "clipping_norm": 0.5}
    card = Card.from_dict(card_for(result({**dp, "accounting": "rdp"}))).data
    assert card["federation"]["dp"] == dp
    assert card["training"]["dp_epsilon"] == pytest.approx(4.2)
    assert card["training"]["privacy"] == {
        "notion": "update-level (clipping and noise at the hub)",
        "epsilon": 4.2, "delta": 1e-5, "accountant": "rdp", "noise_multiplier": 1.1,
    }  # fmt: skip
    assert "privacy" not in Card.from_dict(card_for(result(None))).data["training"]


def _finished_run(tmp_path: Path) -> RunOutcome:
    """A run folder as the ServerApp leaves it: the global checkpoint and the run's result."""
    model = create_specialist("resnet18", 2, 28, pretrained=False)
    out_dir = tmp_path / "run"
    (out_dir / CHECKPOINTS).mkdir(parents=True)
    build = {"backbone": "resnet18", "num_classes": 2, "image_size": 28}
    torch.save({"build": build, "state_dict": model.state_dict()}, out_dir / CHECKPOINTS / GLOBAL_CHECKPOINT)
    return RunOutcome("run-1", out_dir, 1, {**result(None), "task": "pneumonia"})


def test_a_federated_bundle_is_scanned_with_the_deny_list_and_names_the_sites_data(tmp_path: Path) -> None:
    home = tmp_path / "home"
    create_federation_key(home)
    outcome = _finished_run(tmp_path)
    task = TaskInfo("pneumonia", ("normal", "pneumonia"), "chest X-ray of St Elsewhere")
    with pytest.raises(PrivacyError) as refused:
        bundle_run(outcome, task, home, deny_list=["st elsewhere"])
    assert refused.value.code == "GSCO-320"
    assert "modality" in refused.value.message and "Elsewhere" not in refused.value.message
    assert not (outcome.out_dir / "bundle").exists()
    bundle = bundle_run(outcome, task, home, deny_list=["another hospital"])
    public = public_pem(load_public_key(federation_key_paths(home)[1]))
    verify_bundle(bundle, public, bundle / SITE_SIG)

    # the hub's consensus fit refuses a library imported from any participating site's training data
    info = read_specialist_info(BundleRef("pneumonia", "federation-run-1", "1"), bundle)
    served = [SimpleNamespace(info=info)]
    raw = RawCases(images=[np.full((4, 4), i, np.uint8) for i in range(20)], labels=np.arange(20) % 2)
    for digest in DATA:
        library = build_library("pneumonia", ("normal", "pneumonia"), raw, source_digest=digest)
        assert unusable_reason(served, library) == "library overlaps training data of federation-run-1"  # type: ignore[arg-type]
    other = build_library("pneumonia", ("normal", "pneumonia"), raw, source_digest="sha256:" + "d" * 64)
    assert unusable_reason(served, other) is None  # type: ignore[arg-type]


def test_a_malformed_training_set_digest_from_a_site_is_refused() -> None:
    assert _training_set_digest(ConfigRecord({"training-set-digest": DATA[0]})) == DATA[0]
    assert _training_set_digest(ConfigRecord({"held-out": "test"})) == ""  # an older site agent
    with pytest.raises(FederationError, match="malformed training-set digest"):
        _training_set_digest(ConfigRecord({"training-set-digest": "/data/site/train.npz"}))


def dp_sgd(epsilon: float, delta: float = 1e-5) -> dict[str, Any]:
    """A DP-SGD site's last train reply as the hub records it (``site.dp_sgd``)."""
    return {
        "epsilon": epsilon, "epsilon_budget": 8.0, "delta": delta, "accountant": "rdp",
        "max_grad_norm": 1.0, "noise_multiplier": 0.9, "sample_rate": 0.125, "steps": 16,
        "budget_exhausted": False,
    }  # fmt: skip


def dp_sgd_run(*per_site: dict[str, Any] | None, hub: dict[str, Any] | None = None) -> dict[str, Any]:
    """``result`` whose two finishing sites report ``per_site`` (the third never finished a round)."""
    run = result(hub)
    for site_entry, figures in zip(run["sites"], per_site, strict=False):
        site_entry["dp_sgd"] = figures
    run["sites"][2]["rounds_participated"] = 0
    return run


HUB_DP = {"epsilon": 4.2, "delta": 1e-6, "noise_multiplier": 1.1, "clipping_norm": 0.5, "accounting": "rdp"}


def test_every_site_with_dp_sgd_makes_the_card_sample_level_with_the_largest_epsilon() -> None:
    run = dp_sgd_run(dp_sgd(2.5), dp_sgd(3.75, delta=2e-5))
    card = Card.from_dict(card_for(run)).data
    privacy = card["training"]["privacy"]
    assert privacy["notion"] == NOTION_SITE
    assert (privacy["epsilon"], privacy["delta"], privacy["accountant"]) == (3.75, 2e-5, "rdp")
    assert card["training"]["dp_epsilon"] == 3.75
    assert [(s["key_fingerprint"], s["epsilon"]) for s in privacy["sites"]] == [
        (FP, 2.5),
        ("sha256:" + "3" * 64, 3.75),
    ]
    assert privacy["sites"][0]["steps"] == 16 and "update_level" not in privacy
    assert federated_privacy(run)[1] == []


def test_dp_sgd_at_every_site_and_dp_at_the_hub_is_both_with_both_sets_of_figures() -> None:
    run = dp_sgd_run(dp_sgd(2.5), dp_sgd(3.75), hub=HUB_DP)
    privacy = Card.from_dict(card_for(run)).data["training"]["privacy"]
    assert privacy["notion"] == "both"
    assert privacy["epsilon"] == 3.75 and len(privacy["sites"]) == 2
    assert privacy["update_level"] == {
        "epsilon": 4.2, "delta": 1e-6, "accountant": "rdp", "noise_multiplier": 1.1
    }  # fmt: skip


@pytest.mark.parametrize("hub", [HUB_DP, None])
def test_dp_sgd_at_only_some_sites_gives_no_sample_level_guarantee(hub: dict[str, Any] | None) -> None:
    run = dp_sgd_run(dp_sgd(2.5), None, hub=hub)
    privacy, notes = federated_privacy(run)
    card = Card.from_dict(card_for(run)).data
    if hub is None:
        assert privacy is None and "privacy" not in card["training"]
    else:
        assert privacy == hub_privacy(hub) and privacy["notion"] == NOTION_HUB
    assert notes == [
        "Only 1 of 2 participating sites trained with DP-SGD: no sample-level differential privacy "
        "guarantee holds for the model" + ("; the hub's update-level guarantee does." if hub else ".")
    ]


def test_the_published_card_says_when_only_some_sites_ran_dp_sgd(tmp_path: Path) -> None:
    home = tmp_path / "home"
    create_federation_key(home)
    outcome = _finished_run(tmp_path)
    outcome.result.update(dp_sgd_run(dp_sgd(2.5), None))
    task = TaskInfo("pneumonia", ("normal", "pneumonia"), "chest X-ray")
    card = Card.read(bundle_run(outcome, task, home)).data
    assert "privacy" not in card["training"] and card["training"]["dp_epsilon"] is None
    assert card["task"]["limitations"][-1].startswith("Only 1 of 2 participating sites trained with DP-SGD")
