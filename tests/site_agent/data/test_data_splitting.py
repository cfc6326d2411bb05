import numpy as np
import pytest

from gsco_common.errors import DataError
from site_agent.data.splitting import assign_splits

FRACTIONS = {"val": 0.15, "test": 0.15}


def _labels(counts: list[int]) -> list[int]:
    return [label for label, count in enumerate(counts) for _ in range(count)]


def test_same_seed_same_split_other_seed_other_split() -> None:
    labels = _labels([100, 60])
    none = [None] * len(labels)
    first = assign_splits(labels, none, none, FRACTIONS, seed=7)
    assert first == assign_splits(labels, none, none, FRACTIONS, seed=7)
    assert first != assign_splits(labels, none, none, FRACTIONS, seed=8)


def test_stratified_by_label() -> None:
    labels = _labels([200, 40, 20])
    none = [None] * len(labels)
    splits = np.array(assign_splits(labels, none, none, FRACTIONS, seed=0))
    for label, count in enumerate([200, 40, 20]):
        mine = splits[np.array(labels) == label]
        assert (mine == "val").sum() == (mine == "test").sum() == int(count * 0.15 + 0.5)


def test_patient_groups_stay_together_and_strata_roughly_hold() -> None:
    rng = np.random.default_rng(0)
    patients = [f"p{index}" for index in rng.integers(0, 80, size=400)]
    labels = [int(patient[1:]) % 2 for patient in patients]
    splits = assign_splits(labels, [None] * 400, patients, FRACTIONS, seed=3)
    seen: dict[str, set[str]] = {}
    for patient, split in zip(patients, splits, strict=True):
        seen.setdefault(patient, set()).add(split)
    assert all(len(found) == 1 for found in seen.values())
    shares = {name: splits.count(name) / 400 for name in ("val", "test")}
    assert all(0.08 < share < 0.25 for share in shares.values())


def test_given_splits_are_kept_and_only_missing_ones_carved() -> None:
    labels = _labels([50, 50])
    given = ["val" if index % 4 == 0 else "train" for index in range(100)]
    none = [None] * 100
    splits = assign_splits(labels, given, none, FRACTIONS, seed=0)
    assert [split for split, stated in zip(splits, given, strict=True) if stated == "val"] == ["val"] * 25
    assert splits.count("val") == 25
    # pool (given 'train'): 37 of class 0 and 38 of class 1 -> 6 + 6 carved as test
    assert splits.count("test") == 12


def test_zero_fraction_carves_nothing() -> None:
    labels = _labels([10, 10])
    none = [None] * 20
    splits = assign_splits(labels, none, none, {"val": 0.2, "test": 0.0}, seed=0)
    assert "test" not in splits and splits.count("val") == 4


def test_leaking_given_split_is_refused() -> None:
    with pytest.raises(DataError, match="1 patient"):
        assign_splits([0, 1], ["train", "val"], ["p1", "p1"], FRACTIONS, seed=0)
