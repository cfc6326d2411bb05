"""Card schema and consistency checks: what a central team relies on to approve a model."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from gsco_common.errors import CardError
from registry.bundle.card import Card, card_problems, card_strings, suppress_count, write_card
from tests.registry.bundles import card_for

FP = "sha256:" + "ab" * 32
LABELS = ["normal", "pneumonia"]


@pytest.fixture
def card() -> dict:
    return card_for(LABELS, FP)


def test_valid_card_round_trips_with_typed_access(card: dict, tmp_path: Path) -> None:
    write_card(card, tmp_path)
    loaded = Card.read(tmp_path)
    assert loaded.data == card  # every field round-trips, not only the typed ones below
    assert loaded.labels == tuple(LABELS)
    assert loaded.preprocessing.input_size == 8
    assert loaded.key_fingerprint == FP
    assert loaded.headline_metrics()["auc"] == pytest.approx(0.9)
    assert not loaded.federated
    assert loaded.training_set_digest is None


def test_the_training_set_digest_is_recorded_and_checked(card: dict) -> None:
    digest = "sha256:" + "cd" * 32
    card["data"]["training_set_digest"] = digest
    assert Card.from_dict(card).training_set_digest == digest
    card["data"]["training_set_digest"] = "/data/hospital/train.npz"
    assert any("card.data.training_set_digest" in p for p in card_problems(card))


def test_small_counts_are_suppressed() -> None:
    assert suppress_count(9) == "<10"
    assert suppress_count(0) == "<10"
    assert suppress_count(10) == 10


def test_an_unsuppressed_small_count_is_refused(card: dict) -> None:
    card["data"]["class_counts"]["train"]["normal"] = 7
    assert any("card.data.class_counts.train.normal" in p for p in card_problems(card))


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda c: c["task"].pop("intended_use"), "card.task"),
        (lambda c: c["site"].update(path="/data/hospital"), "card.site"),
        (lambda c: c.update(created="2024-01-01"), "card"),
        (
            lambda c: c["training"].update(membership_inference_auc=1.5),
            "card.training.membership_inference_auc",
        ),
        (lambda c: c["model"].update(opset=13), "card.model.opset"),
        (lambda c: c["model"].update(num_classes=3), "card.model.num_classes"),
        (lambda c: c["model"]["outputs"].update(embedding=["batch", 9]), "card.model.outputs.embedding"),
        (lambda c: c["evaluation"]["per_class"].reverse(), "card.evaluation.per_class"),
        (lambda c: c["preprocessing"].update(input_size=16), "card.model.input.shape"),
    ],
)
def test_schema_and_consistency_problems_name_the_field(card: dict, mutate, field: str) -> None:
    broken = copy.deepcopy(card)
    mutate(broken)
    problems = card_problems(broken)
    assert problems and any(p.startswith(field) for p in problems), problems
    with pytest.raises(CardError):
        Card.from_dict(broken)


def test_a_card_that_is_not_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "card.json").write_text("{not json")
    with pytest.raises(CardError, match="not valid JSON"):
        Card.read(tmp_path)
    with pytest.raises(CardError, match="no card.json"):
        Card.read(tmp_path / "missing")


def test_federated_card_lists_sites_and_their_metrics(card: dict) -> None:
    card["federation"] = {
        "strategy": "fedavg",
        "rounds": 3,
        "sites": [{"key_fingerprint": FP, "metrics": {"accuracy": 0.8, "auc": None}}],
    }
    assert Card.from_dict(card).federated


def test_card_strings_yield_every_text_value_with_its_field() -> None:
    nested = {
        "task": {"id": "pneumonia", "labels": ["normal", "pneumonia"], "notes": [{"text": "x"}]},
        "metrics": {"auc": 0.9, "n": 12, "ok": True, "missing": None},
        "site": {"key_fingerprint": FP},
    }
    assert list(card_strings(nested)) == [
        ("card.task.id", "pneumonia"),
        ("card.task.labels[0]", "normal"),
        ("card.task.labels[1]", "pneumonia"),
        ("card.task.notes[0].text", "x"),
        ("card.site.key_fingerprint", FP),
    ]


def test_card_strings_reach_every_text_of_a_real_card(card: dict) -> None:
    fields = dict(card_strings(card))
    texts = [value for value in _leaves(card) if isinstance(value, str)]
    assert sorted(fields.values()) == sorted(texts) and len(fields) == len(texts)


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for child in value.values() for leaf in _leaves(child)]
    if isinstance(value, list):
        return [leaf for child in value for leaf in _leaves(child)]
    return [value]


def test_tta_is_recorded_and_refused_where_a_mirror_changes_laterality(card: dict) -> None:
    assert Card.from_dict(card).tta == "none"  # cards without the field: no test-time augmentation
    card["task"]["modality"] = "breast ultrasound"
    card["inference"] = {"tta": "hflip"}
    assert Card.from_dict(card).tta == "hflip"
    for modality in ("chest X-ray", "chest ultrasound", "CT", "knee radiograph"):
        card["task"]["modality"] = modality
        problems = card_problems(card)
        assert len(problems) == 1 and problems[0].startswith("card.inference.tta: hflip is not allowed"), (
            problems
        )
    card["task"]["modality"] = "breast ultrasound"
    card["inference"] = {"tta": "vflip"}
    assert any(p.startswith("card.inference.tta") for p in card_problems(card))


def test_pretrained_weights_are_recorded_by_file_name_and_digest(card: dict) -> None:
    assert Card.from_dict(card).pretrained is None
    entry = {"file": "resnet18.safetensors", "sha256": "ab" * 32, "origin": "central team, release 3"}
    card["training"]["pretrained"] = entry
    assert Card.from_dict(card).pretrained == entry
    card["training"]["pretrained"] = {**entry, "file": "/data/weights/resnet18.safetensors"}
    assert any(p.startswith("card.training.pretrained.file") for p in card_problems(card))
    card["training"]["pretrained"] = {**entry, "sha256": "xyz"}
    assert any(p.startswith("card.training.pretrained.sha256") for p in card_problems(card))
