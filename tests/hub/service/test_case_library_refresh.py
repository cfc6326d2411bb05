"""A `cases import` while the hub runs is served after the next refresh (poll or admin call)."""

from __future__ import annotations

import numpy as np

from gsco_runtime.cases.library import build_library, load_library, save_library
from gsco_runtime.cases.readers import RawCases
from tests.hub.service.conftest import LABELS, Hub, query_image


def _similar_case_ids(hub: Hub) -> set[str]:
    with hub.client(hub.clinician) as client:
        answer = client.post(
            "/v1/diagnoses", data={"task_id": hub.task}, files={"image": ("x.png", query_image(3))}
        )
    assert answer.status_code == 200, answer.text
    return {case["case_id"] for case in answer.json()["similar_cases"]}


def _refresh(hub: Hub) -> None:
    with hub.client(hub.admin) as client:
        assert client.post("/v1/admin/refresh").status_code == 200


def test_a_new_case_library_is_served_after_a_refresh(hub: Hub) -> None:
    home = hub.world.config.home
    served = load_library(home, hub.task)
    assert served is not None
    _refresh(hub)
    before = _similar_case_ids(hub)
    assert before and before <= set(served.case_ids)
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(12)]
    ids = [f"new-{i}" for i in range(12)]
    save_library(build_library(hub.task, LABELS, RawCases(images, np.arange(12) % 2, case_ids=ids)), home)
    try:
        _refresh(hub)
        after = _similar_case_ids(hub)
        assert after and after <= set(ids)
    finally:
        raw = RawCases(list(served.images), served.labels, case_ids=None)
        restored = build_library(hub.task, LABELS, raw, served.source_digest)
        assert restored.digest == served.digest  # the library the other tests of this hub expect
        save_library(restored, home)
        _refresh(hub)
    assert _similar_case_ids(hub) == before
