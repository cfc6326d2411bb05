"""RAD as the GSCo paper defines it: retrieval per specialist, per-specialist evidence everywhere.

Each specialist searches the case library in its own embedding space; the cases shown with a
decision are fused by rank, never by comparing cosines across spaces; the generalist prompt
lists each specialist's retrieved cases with their labels and reports; the consensus pools each
specialist's own retrieval vote with weights fitted on the calibration cases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from gsco_common.errors import PrivacyError
from gsco_runtime.arbiters.base import Evidence, SpecialistEvidence
from gsco_runtime.arbiters.prompts import MAX_REPORT_CHARS, SimilarCase, SpecialistView, gsco_prompt
from gsco_runtime.arbiters.retrieved import neighbour_labels
from gsco_runtime.arbiters.weights import neighbour_distribution
from gsco_runtime.cases.library import build_library, save_library
from gsco_runtime.cases.readers import RawCases
from gsco_runtime.config import RuntimeSettings
from gsco_runtime.engine import GscoRuntime
from gsco_runtime.pool.registry_source import RegistrySource
from gsco_runtime.rad.retriever import Neighbours, Retriever, fuse_by_rank
from gsco_runtime.task import TaskSpec
from hub.evaluation.evaluate import evaluate
from tests.gsco_runtime.world import LABELS, MODALITY, World, sample_images
from tests.site_bundle import SiteBundle, publish_real

REPORTS = ("Right lower lobe consolidation.", "", "Clear lungs,\n no effusion.", "Patchy opacity left.")


def _library(tmp_path: Path) -> Retriever:
    """Four cases: image ``i`` is constant ``i``; labels normal, normal, pneumonia, pneumonia."""
    raw = RawCases(
        images=[np.full((4, 4), i, np.uint8) for i in range(4)],
        labels=np.array([0, 0, 1, 1]),
        case_ids=["A1", "A2", "A3", "A4"],
        reports=list(REPORTS),
    )
    return Retriever(build_library("rad-task", LABELS, raw), tmp_path / "cache", k=2)


def _embedder(order: Sequence[int]):  # noqa: ANN202 - a PredictFn
    """Image ``i`` at angle ``0.3 * order[i]`` on the unit circle: each embedding space its own geometry."""

    def predict(images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        angles = np.array([0.3 * order[int(image[0, 0])] for image in images])
        embeddings = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
        return np.full((len(images), 2), 0.5, np.float32), embeddings

    return predict


def test_each_specialist_retrieves_in_its_own_embedding_space(tmp_path: Path) -> None:
    retriever = _library(tmp_path)
    first, second = _embedder([0, 1, 2, 3]), _embedder([3, 2, 1, 0])
    query = np.array([1.0, 0.0], np.float32)
    found_first = retriever.search("sha256:first", first, query)
    found_second = retriever.search("sha256:second", second, query)
    assert found_first.rows.tolist() == [0, 1] and found_second.rows.tolist() == [3, 2]
    assert found_first.similarities == pytest.approx([1.0, math.cos(0.3)], abs=1e-6)
    assert retriever.indexes_in_memory == 2
    assert len(list((tmp_path / "cache" / "rad").iterdir())) == 2  # one cached index per model digest


def test_shown_cases_are_fused_by_rank_never_by_cosine_across_spaces(tmp_path: Path) -> None:
    retriever = _library(tmp_path)
    retriever.k = 3
    # specialist b's cosines are all higher, but they are in another space: they must not win
    a = Neighbours(rows=np.array([0, 1]), similarities=np.array([0.5, 0.4]))
    b = Neighbours(rows=np.array([2, 0]), similarities=np.array([0.99, 0.98]))
    fused = fuse_by_rank([("a", a), ("b", b)], retriever)
    assert [(c.case_id, c.label, c.similarity, c.specialist) for c in fused] == [
        ("A1", "normal", 0.5, "a"),
        ("A3", "pneumonia", 0.99, "b"),
        ("A2", "normal", 0.4, "a"),
    ]
    assert fuse_by_rank([("a", a), ("b", None)], None) == ()


def test_the_gsco_prompt_lists_each_specialists_cases_with_their_reports() -> None:
    views = [
        SpecialistView("normal", (SimilarCase("normal", "Clear lungs."), SimilarCase("normal", ""))),
        SpecialistView("pneumonia", (SimilarCase("pneumonia", 'Opacity, "dense".'), SimilarCase("normal"))),
        SpecialistView("pneumonia"),
    ]
    assert gsco_prompt("chest X-ray", ["normal", "pneumonia"], views) == (
        "You are a helpful medical assistant. Your task is disease diagnosis. You are given a chest X-ray "
        "image. The possible diagnoses are: 'normal', 'pneumonia'. "
        "The diagnosis of specialist model 1 is normal. The diagnoses of the most similar cases it "
        'retrieved are normal,normal. Their reports: case 1 (normal): "Clear lungs.". '
        "The diagnosis of specialist model 2 is pneumonia. The diagnoses of the most similar cases it "
        "retrieved are pneumonia,normal. Their reports: case 1 (pneumonia): \"Opacity, 'dense'.\". "
        "The diagnosis of specialist model 3 is pneumonia. "
        "The response should only contain one option."
    )
    long = gsco_prompt("x", ["a"], [SpecialistView("a", (SimilarCase("a", "word " * 200),))])
    cut = ("word " * 200)[: MAX_REPORT_CHARS - 3]  # 59 words and "wo"
    assert f': "{cut}...".' in long and long.count("wo") == 60


def test_evidence_gives_the_generalist_each_specialists_own_cases_and_reports(tmp_path: Path) -> None:
    retriever = _library(tmp_path)
    query = np.array([1.0, 0.0], np.float32)
    found = [
        retriever.search(digest, predict, query)
        for digest, predict in (
            ("sha256:first", _embedder([0, 1, 2, 3])),
            ("sha256:second", _embedder([3, 2, 1, 0])),
        )
    ]
    evidence = Evidence(
        task=TaskSpec("rad-task", LABELS, MODALITY),
        image=np.zeros((4, 4), np.uint8),
        specialists=tuple(
            SpecialistEvidence(None, np.array(p), n)  # type: ignore[arg-type]  # the model is not needed here
            for p, n in zip(([0.8, 0.2], [0.3, 0.7]), found, strict=True)
        ),
        retriever=retriever,
        retrieved=(),
    )
    assert evidence.specialist_views() == [
        SpecialistView(
            "normal", (SimilarCase("normal", "Right lower lobe consolidation."), SimilarCase("normal", ""))
        ),
        SpecialistView(
            "pneumonia",
            (
                SimilarCase("pneumonia", "Patchy opacity left."),
                SimilarCase("pneumonia", "Clear lungs, no effusion."),
            ),
        ),
    ]


def _serve_two_with_library(
    world: World, real: tuple[SiteBundle, ...], settings: RuntimeSettings
) -> tuple[str, GscoRuntime]:
    """Two real specialists under a new task, a 40-case library, and a started runtime serving them."""
    task = world.new_task()
    publish_real(world, task, real[0])
    publish_real(world, task, real[1])
    raw = RawCases(images=sample_images(40, seed=5), labels=np.arange(40) % 2)
    save_library(build_library(task, LABELS, raw), settings.home)
    runtime = GscoRuntime(RegistrySource(world.config), settings)
    runtime.start([task])
    return task, runtime


def test_the_consensus_pools_each_specialists_own_retrieval_vote(
    world: World, real: tuple[SiteBundle, ...], settings: RuntimeSettings, tmp_path: Path
) -> None:
    task, runtime = _serve_two_with_library(world, real, settings)
    try:
        snapshot = runtime.pool.snapshot(task)
        evidence = runtime.evidence(sample_images(1, seed=99)[0], snapshot, {})
        model = runtime.consensus.model_for(snapshot.specialists, evidence.retriever)
        outcome = runtime.consensus.decide(evidence)
    finally:
        runtime.close()
    assert model.source.startswith("calibrated") and model.retrieval_weights.shape == (2,)
    assert outcome.consensus_weights == model.source
    retriever = evidence.retriever
    assert retriever is not None
    rows = [item.neighbours.rows.tolist() for item in evidence.specialists if item.neighbours is not None]
    assert len(rows) == 2 and rows[0] != rows[1]  # two embedding spaces, two neighbour lists
    dists = np.stack(
        [
            neighbour_distribution(
                *neighbour_labels([item.neighbours], retriever.library.labels, retriever.k), 2
            )
            for item in evidence.specialists
        ]
    )
    probs = np.stack([item.probabilities[None, :] for item in evidence.specialists])
    # each specialist's weight scaled by (right + 1) / (retrieved + 2) on the cases it retrieved
    competence = []
    for item in evidence.specialists:
        assert item.neighbours is not None
        own = retriever.ensure(item.specialist.info.model_digest, item.specialist.predict_many).probabilities
        right = sum(int(own[r].argmax() == retriever.library.labels[r]) for r in item.neighbours.rows)
        competence.append([(right + 1) / (len(item.neighbours.rows) + 2)])
    expected = model.predict_proba(probs, dists, np.array(competence))[0]
    assert outcome.probabilities == pytest.approx(expected, abs=1e-12)
    assert not np.allclose(expected, model.predict_proba(probs, dists)[0])  # competence moved it


def test_identifying_report_text_is_refused_at_import_naming_only_the_row() -> None:
    raw = RawCases(
        images=[np.full((4, 4), i, np.uint8) for i in range(3)],
        labels=np.array([0, 1, 0]),
        reports=["Clear lungs.", "Seen with Mrs. Keller on 2019-03-14.", "  Small\neffusion. "],
    )
    with pytest.raises(PrivacyError) as refused:
        build_library("rad-task", LABELS, raw)
    assert refused.value.message == "the report text of case row(s) 2 looks identifying"
    assert "Keller" not in str(refused.value)
    raw.reports[1] = "Consolidation."
    assert build_library("rad-task", LABELS, raw).reports == (
        "Clear lungs.",
        "Consolidation.",
        "Small effusion.",
    )


def test_evaluate_scores_exactly_the_consensus_that_serving_decides(
    world: World, real: tuple[SiteBundle, ...], settings: RuntimeSettings
) -> None:
    """Label each image with the served consensus decision: the evaluation's consensus row must score 1.0.

    Local competence flips some of these decisions (checked first), so an evaluation that pooled
    without it, or with other features than serving, would miss those images.
    """
    task, runtime = _serve_two_with_library(world, real, settings)
    images = sample_images(60, seed=11)
    try:
        snapshot = runtime.pool.snapshot(task)
        served, flipped = [], 0
        for image in images:
            evidence = runtime.evidence(image, snapshot, {})
            model = runtime.consensus.model_for(snapshot.specialists, evidence.retriever)
            served.append(runtime.consensus.decide(evidence).label_index)
            probs = np.stack([item.probabilities[None, :] for item in evidence.specialists])
            dists = np.stack(
                [
                    neighbour_distribution(
                        *neighbour_labels([item.neighbours], evidence.retriever.library.labels, 10), 2
                    )
                    for item in evidence.specialists
                    if item.neighbours is not None and evidence.retriever is not None
                ]
            )
            flipped += int(model.predict_proba(probs, dists)[0].argmax() != served[-1])
        report = evaluate(runtime, task, images, np.array(served))
    finally:
        runtime.close()
    assert flipped > 0  # competence decided some of these images
    rows = {row.kind: row for row in report.methods}
    assert rows["consensus"].accuracy == 1.0
    assert rows["ablation"].accuracy == pytest.approx(1 - flipped / len(images))  # the flipped ones
