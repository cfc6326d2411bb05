"""`gsco-hub evaluate`: every way of deciding, scored on the same labelled images.

Methods: each specialist alone, the specialists' majority vote, RAD alone (k-NN vote of the
retrieved cases), the consensus arbiter (with a case library also without its local competence,
an ablation that shows what competence changes on the same images) and, with a generalist, the
generalist zero-shot and GSCo (the generalist deciding with the specialists' and retrieved
labels). With a generalist the paper's arbitration analysis is added: among the cases where the
zero-shot answer and the specialists' majority disagree, how often the generalist was right and
kept its answer, and how often it was wrong and corrected itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from gsco_common.errors import DataError, GeneralistError
from gsco_runtime.arbiters.parser import parse_answer
from gsco_runtime.arbiters.prompts import zero_shot_prompt
from gsco_runtime.arbiters.retrieved import retrieval_features
from gsco_runtime.engine import GscoRuntime, assemble_evidence
from gsco_runtime.generalists.base import MEDDR_SYSTEM_MESSAGE
from gsco_runtime.image_checks import refuse_degenerate_images
from gsco_runtime.rad.retriever import Neighbours
from hub.evaluation.case_inputs import CaseInputs, DecisionInputs, collect_case_inputs
from hub.evaluation.disagreement import Disagreement, analyse
from hub.evaluation.metrics import method_scores
from hub.evaluation.significance import Scored, Statistics, assess, check_reference
from hub.evaluation.statistics import DEFAULT_RESAMPLES, MIN_RESAMPLES, Interval

Progress = Callable[[str, int, int], None]
WITHOUT_COMPETENCE = "consensus without local competence"
ABLATION_NOTE = "ablation: the same weights, no specialist's weight scaled by its local competence"


@dataclass(frozen=True)
class MethodResult:
    """One row of the table."""

    name: str
    kind: str
    accuracy: float
    macro_f1: float
    auc: float | None
    note: str = ""
    accuracy_ci: Interval | None = None
    macro_f1_ci: Interval | None = None
    auc_ci: Interval | None = None


@dataclass(frozen=True)
class Arbitration:
    """Zero-shot answer vs the specialists' majority, and what GSCo made of the disagreements."""

    disagreements: int
    right: int
    right_upheld: int
    wrong: int
    wrong_corrected: int

    def to_dict(self) -> dict[str, Any]:
        share = (lambda k: k / self.disagreements) if self.disagreements else (lambda k: None)
        return {
            **asdict(self),
            "share_right_and_upheld": share(self.right_upheld),
            "share_wrong_and_corrected": share(self.wrong_corrected),
            "upheld_when_right": self.right_upheld / self.right if self.right else None,
            "corrected_when_wrong": self.wrong_corrected / self.wrong if self.wrong else None,
        }


@dataclass
class EvaluationReport:
    task_id: str
    label_names: tuple[str, ...]
    n: int
    class_counts: list[int]
    library_size: int
    methods: list[MethodResult]
    consensus_weights: dict[str, Any]
    generalist: str | None = None
    arbitration: Arbitration | None = None
    notes: list[str] = field(default_factory=list)
    statistics: Statistics | None = None
    disagreement: Disagreement | None = None
    case_inputs: CaseInputs | None = None  # arrays for `--cases-out`, not part of the report's text

    def to_dict(self) -> dict[str, Any]:
        data = asdict(replace(self, case_inputs=None))
        del data["case_inputs"]
        data["arbitration"] = self.arbitration.to_dict() if self.arbitration else None
        data["statistics"] = self.statistics.to_dict() if self.statistics else None
        data["disagreement"] = self.disagreement.to_dict() if self.disagreement else None
        return data


def majority_vote(probs: np.ndarray) -> np.ndarray:
    """Most frequent argmax over specialists ``[S, N, C]``; ties go to the higher mean probability."""
    num_classes = probs.shape[2]
    counts = np.stack([(probs.argmax(axis=2) == c).sum(axis=0) for c in range(num_classes)], axis=1)
    return np.argmax(counts + 0.5 * probs.mean(axis=0), axis=1)


def evaluate(
    runtime: GscoRuntime,
    task_id: str,
    images: Sequence[np.ndarray],
    labels: np.ndarray,
    *,
    progress: Progress | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    reference: str | None = None,
    keep_case_inputs: bool = False,
) -> EvaluationReport:
    """Score every method on ``images`` / ``labels`` with the task's current specialists.

    Every row gets bootstrap CIs from ``resamples`` seeded resamples, and the collaboration
    methods a paired test against the best specialist, or against the specialist named
    ``reference`` (then every other specialist too) (:mod:`hub.evaluation.significance`);
    the same again on the cases where the specialists disagree (:mod:`hub.evaluation.disagreement`).
    With ``keep_case_inputs`` the report also carries the consensus' per-case inputs
    (:mod:`hub.evaluation.case_inputs`).
    """
    if len(images) == 0 or len(images) != labels.shape[0]:
        raise DataError("evaluation needs images with one label each")
    if resamples < MIN_RESAMPLES:
        raise DataError(f"the bootstrap needs at least {MIN_RESAMPLES} resamples, got {resamples}")
    refuse_degenerate_images(images, "the evaluation set")
    tick: Progress = progress or (lambda stage, done, total: None)
    snapshot = runtime.pool.snapshot(task_id)
    names = [f"{s.info.name} v{s.info.version}" for s in snapshot.specialists]
    if reference is not None:
        check_reference(reference, names)  # before any image is predicted
    task = runtime.task_spec(snapshot)
    retriever = runtime.retriever(task_id)
    num_classes = task.num_classes
    probs, neighbours = [], []
    for index, specialist in enumerate(snapshot.specialists):
        tick("specialists", index, len(snapshot.specialists))
        p, embeddings = specialist.predict_many(images)
        probs.append(p)
        if retriever is not None:
            entry = retriever.ensure(specialist.info.model_digest, specialist.predict_many)
            sims, rows = entry.index.search(embeddings, retriever.k)
            neighbours.append([Neighbours(r[r >= 0], s[r >= 0]) for r, s in zip(rows, sims, strict=True)])
    tick("specialists", len(snapshot.specialists), len(snapshot.specialists))
    stacked = np.stack(probs)
    stacked_dists, competence = (
        retrieval_features(retriever, snapshot.specialists, neighbours, num_classes)
        if retriever is not None
        else (None, None)
    )

    scored = [Scored(n, "specialist", p.argmax(axis=1), p) for n, p in zip(names, probs, strict=True)]
    scored.append(Scored("specialists' vote", "vote", majority_vote(stacked), stacked.mean(axis=0)))
    if retriever is not None and stacked_dists is not None:
        rad = stacked_dists.mean(axis=0)
        scored.append(Scored(f"RAD only (k={retriever.k})", "rad", rad.argmax(axis=1), rad))
    model = runtime.consensus.model_for(snapshot.specialists, retriever)
    consensus = model.predict_proba(stacked, stacked_dists, competence)
    scored.append(
        Scored("consensus (no generalist)", "consensus", consensus.argmax(axis=1), consensus, model.source)
    )
    if competence is not None:
        plain = model.predict_proba(stacked, stacked_dists)
        scored.append(Scored(WITHOUT_COMPETENCE, "ablation", plain.argmax(axis=1), plain, ABLATION_NOTE))
    report = EvaluationReport(
        task_id=task_id,
        label_names=task.label_names,
        n=len(images),
        class_counts=np.bincount(labels, minlength=num_classes).tolist(),
        library_size=len(retriever.library) if retriever is not None else 0,
        methods=[],
        consensus_weights=model.describe([s.info.key for s in snapshot.specialists]),
    )
    if keep_case_inputs:
        evaluated = DecisionInputs(labels, stacked, stacked_dists, competence)
        calibrates = runtime.consensus.calibrate_on_library
        report.case_inputs = collect_case_inputs(
            snapshot.specialists, retriever, evaluated, consensus, model, calibrates=calibrates
        )
    report.notes.append(f"consensus weights: {model.source}")
    if retriever is None:
        report.notes.append("no case library imported: RAD and the retrieval part of the consensus are off")
    if runtime.generalist is not None:
        scored += _generalist_rows(
            runtime, report, task, images, labels, snapshot.specialists, probs, neighbours, tick
        )
    tick("bootstrap", 0, 1)
    cis, report.statistics = assess(
        labels, scored, num_classes, count=resamples, seed=seed, reference=reference
    )
    report.disagreement = analyse(
        labels, scored, num_classes, count=resamples, seed=seed, named_reference=reference
    )
    tick("bootstrap", 1, 1)
    report.methods = [
        MethodResult(
            m.name, m.kind, **method_scores(labels, m.predicted, m.scores, num_classes), note=m.note, **ci
        )
        for m, ci in zip(scored, cis, strict=True)
    ]
    return report


def _generalist_rows(
    runtime: GscoRuntime,
    report: EvaluationReport,
    task: Any,
    images: Sequence[np.ndarray],
    labels: np.ndarray,
    specialists: Sequence[Any],
    probs: list[np.ndarray],
    neighbours: list[list[Neighbours]],
    tick: Progress,
) -> list[Scored]:
    """Zero-shot and GSCo rows; the arbitration analysis goes into ``report`` (one call each per image)."""
    backend = runtime.generalist
    if backend is None:
        return []
    retriever = runtime.retriever(task.task_id)
    prompt = zero_shot_prompt(task.modality, task.label_names)
    zero_shot = np.full(len(images), -1)
    gsco = np.zeros(len(images), dtype=np.int64)
    fallbacks = 0
    for i, image in enumerate(images):
        tick("generalist", i, len(images))
        try:
            answer = parse_answer(
                backend.generate(image, prompt, system=MEDDR_SYSTEM_MESSAGE), task.label_names, task.synonyms
            )
        except GeneralistError:
            answer = None
        zero_shot[i] = -1 if answer is None else answer
        outputs = [
            (s, probs[j][i], neighbours[j][i] if neighbours else None) for j, s in enumerate(specialists)
        ]
        outcome = runtime.arbiter.decide(assemble_evidence(task, image, outputs, retriever))
        gsco[i] = outcome.label_index
        fallbacks += outcome.fallback_reason is not None
    tick("generalist", len(images), len(images))
    unparsed = int((zero_shot < 0).sum())
    report.generalist = backend.name
    report.arbitration = arbitration(zero_shot, majority_vote(np.stack(probs)), gsco, labels)
    return [
        Scored(
            f"{backend.name} zero-shot",
            "generalist",
            zero_shot,
            None,
            f"{unparsed} unparseable" if unparsed else "",
        ),
        Scored(
            "GSCo (generalist decides)",
            "gsco",
            gsco,
            None,
            f"{fallbacks} fell back to consensus" if fallbacks else "",
        ),
    ]


def arbitration(
    zero_shot: np.ndarray, majority: np.ndarray, gsco: np.ndarray, labels: np.ndarray
) -> Arbitration:
    """Disagreements of zero-shot answer (-1: unparseable) and majority; what GSCo made of them."""
    disagree = zero_shot != majority
    right = disagree & (zero_shot == labels)
    wrong = disagree & (zero_shot != labels)
    return Arbitration(
        disagreements=int(disagree.sum()),
        right=int(right.sum()),
        right_upheld=int((right & (gsco == zero_shot)).sum()),
        wrong=int(wrong.sum()),
        wrong_corrected=int((wrong & (gsco == labels)).sum()),
    )
