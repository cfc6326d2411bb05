"""Membership-inference audit: known outcomes (memorised images, a constant model), CI, calibration."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from specialist.export.membership import class_reference, membership_audit
from specialist.metrics import nll_per_example


def _losses(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        probs = torch.softmax(model(images), dim=1).double().numpy()
    return nll_per_example(probs, labels.numpy())


def _images(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, 3, 8, 8, generator=generator), torch.randint(0, 2, (count,), generator=generator)


def test_a_model_that_memorised_a_handful_of_images_is_exposed() -> None:
    torch.manual_seed(0)
    members, member_labels = _images(12, seed=1)  # random labels: only memorising can fit them
    outsiders, outsider_labels = _images(40, seed=2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 256), nn.ReLU(), nn.Linear(256, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(members), member_labels).backward()
        optimizer.step()
    audit = membership_audit(
        _losses(model, members, member_labels),
        _losses(model, outsiders, outsider_labels),
        member_labels=member_labels.numpy(),
        nonmember_labels=outsider_labels.numpy(),
        non_members_from="test",
        seed=0,
    )
    assert audit["auc"] > 0.9
    assert audit["ci95"][0] <= audit["auc"] <= audit["ci95"][1] and audit["ci95"][0] > 0.7
    # 12 members, both classes below 10: no size that would give them back beside the card's class counts
    assert torch.bincount(member_labels).tolist() == [5, 7] and torch.bincount(outsider_labels).min() >= 10
    assert (audit["members"], audit["non_members"]) == ("<10", 40)
    sampling = {"members_from": "train", "non_members_from": "test", "method": "uniform without replacement"}
    assert audit["sampling"] == {**sampling, "seed": 0}


def test_a_model_with_constant_outputs_reveals_nothing() -> None:
    constant = nn.Sequential(nn.Flatten(), nn.Linear(192, 2))
    nn.init.zeros_(constant[1].weight)
    nn.init.constant_(constant[1].bias, 0.3)
    members, member_labels = _images(20, seed=3)
    outsiders, outsider_labels = _images(20, seed=4)
    member_labels[:] = 1
    outsider_labels[:] = 1
    audit = membership_audit(
        _losses(constant, members, member_labels),
        _losses(constant, outsiders, outsider_labels),
        member_labels=member_labels.numpy(),
        nonmember_labels=outsider_labels.numpy(),
        non_members_from="val",
        seed=0,
        calibration=(np.full(5, 0.7), np.ones(5, int)),
    )
    assert audit["auc"] == 0.5 and audit["ci95"] == [0.5, 0.5]
    assert audit["calibrated"]["auc"] == 0.5 and audit["members"] == 20 and audit["non_members"] == 20
    assert audit["calibrated"]["reference_images"] == "<10"


def test_bootstrap_interval_is_seeded() -> None:
    rng = np.random.default_rng(0)
    members, outsiders = rng.gamma(1.0, 0.5, 50), rng.gamma(1.0, 0.7, 50)
    labels = {
        "member_labels": np.zeros(50, int),
        "nonmember_labels": np.zeros(50, int),
        "non_members_from": "test",
    }
    first = membership_audit(members, outsiders, **labels, seed=3)
    assert first == membership_audit(members, outsiders, **labels, seed=3)
    assert first["ci95"] != membership_audit(members, outsiders, **labels, seed=4)["ci95"]


def test_calibration_removes_a_class_difficulty_that_the_plain_attack_mistakes_for_membership() -> None:
    # members are mostly of the easy class 0, non-members mostly of the hard class 1; within a
    # class, members and non-members have the same loss distribution: no memorisation at all
    rng = np.random.default_rng(0)
    member_labels = np.r_[np.zeros(80, int), np.ones(20, int)]
    outsider_labels = np.r_[np.zeros(20, int), np.ones(80, int)]
    offsets = np.array([0.1, 2.0])
    members = offsets[member_labels] + rng.normal(0, 0.05, 100)
    outsiders = offsets[outsider_labels] + rng.normal(0, 0.05, 100)
    reference_labels = np.r_[np.zeros(50, int), np.ones(50, int)]
    reference = offsets[reference_labels] + rng.normal(0, 0.05, 100)
    audit = membership_audit(
        members, outsiders, member_labels=member_labels, nonmember_labels=outsider_labels,
        non_members_from="test", seed=0, calibration=(reference, reference_labels),
    )  # fmt: skip
    assert audit["auc"] > 0.75
    assert abs(audit["calibrated"]["auc"] - 0.5) < 0.1
    np.testing.assert_allclose(class_reference(reference, reference_labels, 2), offsets, atol=0.03)
