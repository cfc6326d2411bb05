"""`hub.evaluation.evaluate`: the vote, the arbitration shares, and rows with a known answer.

The known answer: a bundle made by the site agent's real training and export is served, and the
hub's evaluation on the site's own held-out images must give the figures of the site's card.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gsco_common.errors import DataError
from gsco_runtime.config import RuntimeSettings
from gsco_runtime.engine import GscoRuntime
from gsco_runtime.pool.registry_source import RegistrySource
from hub.evaluation.case_inputs import load_case_inputs, save_case_inputs
from hub.evaluation.evaluate import Arbitration, evaluate, majority_vote
from site_agent.data.loader import load_site_data
from tests.gsco_runtime.world import make_world
from tests.site_bundle import LABELS, TASK, SiteBundle


def test_majority_vote_counts_argmaxes_and_breaks_ties_by_mean_probability() -> None:
    probs = np.array(
        [
            [[0.9, 0.1], [0.6, 0.4], [0.45, 0.55]],
            [[0.8, 0.2], [0.3, 0.7], [0.2, 0.8]],
            [[0.3, 0.7], [0.2, 0.8], [0.9, 0.1]],
        ]
    )  # [specialists, images, classes]
    assert majority_vote(probs).tolist() == [0, 1, 1]
    tie = np.array([[[0.9, 0.1]], [[0.4, 0.6]]])  # one vote each; class 0 has the higher mean
    assert majority_vote(tie).tolist() == [0]


def test_arbitration_shares() -> None:
    shares = Arbitration(disagreements=8, right=4, right_upheld=3, wrong=4, wrong_corrected=1).to_dict()
    assert shares == {
        "disagreements": 8,
        "right": 4,
        "right_upheld": 3,
        "wrong": 4,
        "wrong_corrected": 1,
        "share_right_and_upheld": 3 / 8,
        "share_wrong_and_corrected": 1 / 8,
        "upheld_when_right": 3 / 4,
        "corrected_when_wrong": 1 / 4,
    }
    none = Arbitration(disagreements=0, right=0, right_upheld=0, wrong=0, wrong_corrected=0).to_dict()
    assert [none[k] for k in ("share_right_and_upheld", "upheld_when_right", "corrected_when_wrong")] == [
        None
    ] * 3


@pytest.fixture(scope="module")
def runtime(site_bundle: SiteBundle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GscoRuntime]:
    """A registry serving only the site agent's real bundle, and a hub runtime (no case library)."""
    root = tmp_path_factory.mktemp("evaluate")
    world = make_world(root, sites=())
    world.adopt("bundle-site", site_bundle.public_key)
    world.new_task(LABELS, task_id=TASK)
    world.publish_folder(site_bundle.folder)
    served = GscoRuntime(RegistrySource(world.config), RuntimeSettings(home=root / "hub", threads=2))
    served.start([TASK])
    yield served
    served.close()


def test_the_specialist_row_gives_the_sites_card_figures(
    runtime: GscoRuntime, site_bundle: SiteBundle, tmp_path: Path
) -> None:
    card = json.loads((site_bundle.folder / "card.json").read_text())
    held_out = load_site_data(site_bundle.data, LABELS, site_bundle.seed).split(card["evaluation"]["split"])
    images = [held_out.image(i) for i in range(len(held_out))]
    report = evaluate(runtime, TASK, images, held_out.labels.astype(np.int64), keep_case_inputs=True)

    rows = {row.kind: row for row in report.methods}
    assert [row.kind for row in report.methods] == ["specialist", "vote", "consensus"]
    metrics = card["evaluation"]["metrics"]
    specialist = rows["specialist"]
    assert (specialist.accuracy, specialist.macro_f1, specialist.auc) == pytest.approx(
        (metrics["accuracy"]["value"], metrics["macro_f1"]["value"], metrics["auc"]["value"]), abs=1e-12
    )
    assert (rows["vote"].accuracy, rows["vote"].macro_f1) == (specialist.accuracy, specialist.macro_f1)
    assert report.n == len(images) and report.class_counts == np.bincount(held_out.labels).tolist()
    assert report.library_size == 0
    assert "no case library imported: RAD and the retrieval part of the consensus are off" in report.notes
    assert report.disagreement is not None and report.disagreement.status == "no disagreement"
    assert (report.disagreement.n, report.disagreement.of, report.disagreement.specialists) == (
        0,
        len(images),
        1,
    )
    # without a case library the per-case inputs hold no retrieval and no calibration cases
    assert report.case_inputs is not None and "case_inputs" not in report.to_dict()
    cases = load_case_inputs(save_case_inputs(tmp_path / "cases.npz", report.case_inputs))
    assert cases.evaluation.retrieved is None and cases.evaluation.competence is None
    assert cases.calibration is None and cases.model.source == "card"
    right = cases.evaluation.probabilities[0].argmax(axis=1) == held_out.labels
    assert right.mean() == specialist.accuracy


@pytest.mark.parametrize("count", [0, 3])
def test_images_without_one_label_each_are_refused(runtime: GscoRuntime, count: int) -> None:
    images = [np.zeros((28, 28), dtype=np.uint8)] * count
    with pytest.raises(DataError, match="evaluation needs images with one label each"):
        evaluate(runtime, TASK, images, np.zeros(2, dtype=np.int64))


def test_images_no_specialist_can_see_anything_in_are_refused(runtime: GscoRuntime) -> None:
    rng = np.random.default_rng(0)
    images: list[np.ndarray] = [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(4)]
    images[1] = np.full((28, 28), 7, np.uint8)
    images[3] = np.full((28, 28), np.nan, np.float32)
    with pytest.raises(DataError) as refused:
        evaluate(runtime, TASK, images, np.zeros(4, dtype=np.int64))
    assert refused.value.message == (
        "the evaluation set holds 2 image(s) no specialist can see anything in: "
        "image 2 is constant (every pixel has the same value); image 4 has NaN or infinite pixels"
    )
