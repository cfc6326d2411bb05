"""Other decision rules for the consensus, replayed on the studies' per-case inputs.

Every study run leaves a ``cases.npz`` beside each evaluation.json (``gsco-hub evaluate
--cases-out``; not committed, so rerun the studies first): the specialists' probabilities,
retrieved labels and local competence on each evaluation image, and the same on the calibration
cases the weights were fitted on. Each rule
below is fitted on those calibration cases and scored on the evaluation images by the bar the
consensus must meet (``hub.study.bar``), next to the rule the hub uses now. After
``gsco-hub study docs/studies/NAME/study.yaml --out docs/studies/NAME`` for each study,
``.venv/bin/python bench/arbiter_alternatives.py --write-docs`` rewrites the "Consensus
alternatives" section of docs/results.md from their cases files.

The rule used now is replayed too, and must give the served consensus' weights, biases, source
and labels, or the script stops: a replay that drifted from the hub would make every comparison
meaningless. Evaluations whose weights came from the cards (no clean calibration set), studies
with a named reference (recipe studies, as in the bar) and the held-out shard studies (which test
the hub's rule alone) are left out; an evaluation that two studies share is counted once. For the
biased studies each rule's accuracy drop from the unbiased twin (``compare_with``) is set against
the plain vote's, per draw, as ``hub.study.draws`` counts it for the served consensus.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_parser  # noqa: E402
from bench.docs_section import publish  # noqa: E402
from bench.render_results import (  # noqa: E402
    CONFIRMATION,
    FRESH,
    HELD_OUT,
    STUDIES_DIR,
    TRIAL,
    load_report,
    study_names,
)
from gsco_common.errors import DataError  # noqa: E402
from gsco_runtime.arbiters.calibration import MIN_CASES_PER_CLASS  # noqa: E402
from gsco_runtime.arbiters.robust import robust_model  # noqa: E402
from gsco_runtime.arbiters.weights import EPS, ConsensusModel  # noqa: E402
from hub.evaluation.case_inputs import CaseInputs, DecisionInputs, load_case_inputs  # noqa: E402
from hub.evaluation.disagreement import labels_differ  # noqa: E402
from hub.evaluation.evaluate import majority_vote  # noqa: E402
from hub.evaluation.statistics import mcnemar_exact  # noqa: E402
from hub.study.bar import Draw  # noqa: E402
from hub.study.draws import DrawTally, tally  # noqa: E402
from hub.study.facts import baseline_name, reference_name  # noqa: E402
from hub.study.run import CASES_FILE, repeat_of  # noqa: E402

HEADING = "## Consensus alternatives (replayed on the studies' cases)"
ALPHA = 0.05
# The studies on which the alternatives were first looked at (2026-12-06): an evaluation any of
# them holds is "explored"; the others were kept apart to confirm a rule before adopting it.
EXPLORED = ("pneumonia-seeds", "biased-specialist-seeds", "biased-specialist")
# The fresh draws (bench/render_results.py's FRESH) are scored as a third group, never used to
# adopt a rule; the confirmation draws (CONFIRMATION) as a fourth, on which one rule was on trial;
# the trial draws (TRIAL) as a fifth, on which another is (docs/studies/README.md, "Trial draws").
GROUPS = ("explored", "kept apart", "fresh draws", "confirmation draws", "trial draws")
ON_TRIAL = "competence in the fit too"
SECOND_TRIAL = "weights fitted for the thresholds served"
SECOND_TRIAL_SETS = ("explored", "kept apart", "trial draws")
"""Where the second rule on trial must meet the adoption counts, all three, to replace the hub's."""

Rule = Callable[[CaseInputs], np.ndarray]


class Place(NamedTuple):
    """Where a study holds an evaluation: the study, the folder within it, and its twin study."""

    study: str
    where: str
    twin: str | None


@dataclass
class Evaluation:
    """One calibrated evaluation: its label, its per-case inputs, where studies hold it, the draw
    (task and shuffle seed) its shards were cut from, and its sites' training seeds."""

    label: str
    cases: CaseInputs
    places: list[Place]
    draw: Draw
    site_seeds: tuple[int, ...] = ()

    @property
    def studies(self) -> list[str]:
        """Every study that holds it, the first one first."""
        return [place.study for place in self.places]

    @property
    def group(self) -> str:
        """The first group, in this order, with a study that holds it: explored, confirmation
        draws, fresh draws, trial draws; else kept apart."""
        order = (
            ("explored", EXPLORED),
            ("confirmation draws", CONFIRMATION),
            ("fresh draws", FRESH),
            ("trial draws", TRIAL),
        )
        for group, studies in order:
            if any(study in studies for study in self.studies):
                return group
        return "kept apart"


def _digest(cases: CaseInputs) -> str:
    arrays = [cases.evaluation.labels, cases.evaluation.probabilities]
    if cases.calibration is not None:
        arrays += [cases.calibration.labels, cases.calibration.probabilities]
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()


def _draw(report: dict, where: str) -> tuple[Draw, tuple[int, ...]]:
    """The draw of the evaluation in folder ``where`` of a study, and its sites' training seeds."""
    runs = report.get("repeats")
    run = runs[repeat_of(Path(where)) - 1] if isinstance(runs, list) else report
    return (report["task"]["id"], run["seed"]), tuple(site["seed"] for site in run["sites"])


def evaluations(studies_dir: Path = STUDIES_DIR) -> list[Evaluation]:
    """The distinct calibrated evaluations of the studies without a named reference, in render order."""
    found: dict[str, Evaluation] = {}
    for study in study_names(studies_dir):
        folder = studies_dir / study
        report = load_report(studies_dir, study)
        # the list closed with the confirmation draws' trial: the held-out shard tests the hub's rule alone
        if study in HELD_OUT or reference_name(report)[1] == "reference":
            continue
        for path in sorted(folder.rglob(CASES_FILE)):
            try:
                cases = load_case_inputs(path)
            except DataError as exc:
                raise SystemExit(f"{path}: {exc.message}; rerun the study {study}") from None
            if cases.calibration is None or cases.model.source.startswith("card"):
                continue
            digest = _digest(cases)
            where = path.parent.relative_to(folder).as_posix()
            place = Place(study, where, baseline_name(report))
            if digest in found:
                found[digest].places.append(place)
                continue
            label = f"{study} / {'main' if where == '.' else where}"
            found[digest] = Evaluation(label, cases, [place], *_draw(report, where))
    return list(found.values())


def _card(cases: CaseInputs) -> ConsensusModel:
    num_classes = cases.evaluation.probabilities.shape[2]
    return ConsensusModel(cases.card_weights, cases.card_weights, np.zeros(num_classes), source="card")


def fit(
    cases: CaseInputs,
    fitted: DecisionInputs,
    rows: np.ndarray | None = None,
    *,
    weights_for_served_thresholds: bool = False,
) -> ConsensusModel:
    """The hub's guarded fit (:func:`robust_model`) on ``fitted`` (on ``rows`` of it when given).

    ``rows`` with fewer than the hub's minimum of cases of some class fall back to all cases;
    ``weights_for_served_thresholds`` as :func:`robust_model` has it.
    """
    counts = (
        np.bincount(fitted.labels[rows], minlength=fitted.probabilities.shape[2])
        if rows is not None
        else None
    )
    keep = slice(None) if counts is None or counts.min() < MIN_CASES_PER_CLASS else rows
    return robust_model(
        fitted.probabilities[:, keep],
        fitted.retrieved[:, keep] if fitted.retrieved is not None else None,
        fitted.labels[keep],
        _card(cases),
        cases.ceiling_pairs(),
        weights_for_served_thresholds=weights_for_served_thresholds,
    )


def _calibration(cases: CaseInputs) -> DecisionInputs:
    if cases.calibration is None:
        raise ValueError("the rules replay calibrated evaluations only")
    return cases.calibration


def pooled(model: ConsensusModel, inputs: DecisionInputs) -> np.ndarray:
    """The pool's labels on ``inputs``, each specialist's weight scaled by its local competence."""
    return model.predict_proba(inputs.probabilities, inputs.retrieved, inputs.competence).argmax(axis=1)


def now(cases: CaseInputs) -> np.ndarray:
    """The hub's rule: the guarded fit, each specialist's weight scaled by its local competence."""
    return pooled(fit(cases, _calibration(cases)), cases.evaluation)


def drift(cases: CaseInputs) -> str | None:
    """How the replayed hub rule differs from the served consensus in ``cases``; None when it does not."""
    replayed, served = fit(cases, _calibration(cases)), cases.model
    if replayed.source != served.source:
        return f"source {replayed.source!r}, served {served.source!r}"
    for part in ("specialist_weights", "retrieval_weights", "bias"):
        if not np.allclose(getattr(replayed, part), getattr(served, part), rtol=1e-6, atol=1e-9):
            return f"{part} {getattr(replayed, part)}, served {getattr(served, part)}"
    if not np.array_equal(now(cases), cases.consensus.argmax(axis=1)):
        return "labels differ from the served consensus'"
    return None


def card_weights(cases: CaseInputs) -> np.ndarray:
    """No fit: the cards' weights, with local competence."""
    return pooled(_card(cases), cases.evaluation)


def _with_competence_in_probabilities(inputs: DecisionInputs) -> DecisionInputs:
    """``p ** competence``: its log is the competence-scaled log-probability the pool uses."""
    if inputs.competence is None:
        raise ValueError("competence needs a case library")
    scaled = np.clip(inputs.probabilities, EPS, 1.0) ** inputs.competence[:, :, None]
    return replace(inputs, probabilities=scaled, competence=None)


def competence_in_fit(cases: CaseInputs) -> np.ndarray:
    """The fit sees the competence-scaled specialists, as the pool uses them (no train/serve skew)."""
    model = fit(cases, _with_competence_in_probabilities(_calibration(cases)))
    return pooled(model, _with_competence_in_probabilities(cases.evaluation))


def weights_for_served_thresholds(cases: CaseInputs) -> np.ndarray:
    """The guarded fit, whose weights at the specialists' own thresholds are fitted for them.

    The hub fits weights and biases together, then resets the biases to zero (the specialists' own
    thresholds) unless moving them is a significant gain: a specialist that leans toward one class
    keeps the weight the fitted bias had made safe, and its lean tilts the served pool. Here the
    pool kept at zero biases has weights fitted with the biases held there; the moved thresholds,
    and the test that decides between the two, are the hub's.
    """
    return pooled(fit(cases, _calibration(cases), weights_for_served_thresholds=True), cases.evaluation)


def _labels_split(inputs: DecisionInputs, *, with_retrieval: bool) -> np.ndarray:
    votes = inputs.probabilities.argmax(axis=2)
    if with_retrieval and inputs.retrieved is not None:
        votes = np.concatenate([votes, inputs.retrieved.argmax(axis=2)])
    return labels_differ(votes)


def fit_where_sources_disagree(cases: CaseInputs) -> np.ndarray:
    """Fit only on the calibration cases where the specialists' or the retrieved labels differ.

    With zero biases and non-negative weights only those cases' decisions depend on the weights.
    """
    calibration = _calibration(cases)
    rows = np.flatnonzero(_labels_split(calibration, with_retrieval=True))
    return pooled(fit(cases, calibration, rows), cases.evaluation)


def fit_where_specialists_disagree(cases: CaseInputs) -> np.ndarray:
    """Fit only on the calibration cases where the specialists' labels differ (the bar's subset)."""
    calibration = _calibration(cases)
    rows = np.flatnonzero(_labels_split(calibration, with_retrieval=False))
    return pooled(fit(cases, calibration, rows), cases.evaluation)


def _sources(model: ConsensusModel, inputs: DecisionInputs) -> list[np.ndarray]:
    """Candidate labels: the pool, each specialist, each specialist's retrieval, the mean retrieval."""
    if inputs.retrieved is None:
        raise ValueError("the sources need a case library")
    return [
        pooled(model, inputs),
        *inputs.probabilities.argmax(axis=2),
        *inputs.retrieved.argmax(axis=2),
        inputs.retrieved.mean(axis=0).argmax(axis=1),
    ]


def split_cases_selector(cases: CaseInputs) -> np.ndarray:
    """Unanimous specialists decide; on a split, the source most often right on the calibration splits."""
    calibration, evaluated = _calibration(cases), cases.evaluation
    model = fit(cases, calibration)
    split = _labels_split(calibration, with_retrieval=False)
    right = [int((s[split] == calibration.labels[split]).sum()) for s in _sources(model, calibration)]
    chosen = _sources(model, evaluated)[int(np.argmax(right))]  # ties: the pool first
    labels = evaluated.probabilities.argmax(axis=2)
    return np.where(_labels_split(evaluated, with_retrieval=False), chosen, labels[0])


def dawid_skene(cases: CaseInputs) -> np.ndarray:
    """Every specialist's and retrieval's label through its confusion matrix on the calibration cases.

    Add-one smoothed; a uniform class prior, so the calibration set's class balance is not assumed.
    """
    calibration, evaluated = _calibration(cases), cases.evaluation
    if calibration.retrieved is None or evaluated.retrieved is None:
        raise ValueError("Dawid-Skene here needs the retrieved labels")
    num_classes = calibration.probabilities.shape[2]
    fitted = np.concatenate([calibration.probabilities.argmax(axis=2), calibration.retrieved.argmax(axis=2)])
    confusion = np.stack(
        [
            [
                np.bincount(said[calibration.labels == c], minlength=num_classes) + 1.0
                for c in range(num_classes)
            ]
            for said in fitted
        ]
    )
    confusion /= confusion.sum(axis=2, keepdims=True)  # [source, true class, said]
    said = np.concatenate([evaluated.probabilities.argmax(axis=2), evaluated.retrieved.argmax(axis=2)])
    log_posterior = sum(np.log(confusion[s][:, said[s]]).T for s in range(said.shape[0]))
    return np.asarray(log_posterior).argmax(axis=1)


def _without_prevalence(inputs: DecisionInputs, shares: np.ndarray) -> DecisionInputs:
    if inputs.retrieved is None:
        raise ValueError("the prevalence correction needs retrieved labels")
    corrected = inputs.retrieved / shares
    return replace(inputs, retrieved=corrected / corrected.sum(axis=2, keepdims=True))


def retrieval_without_prevalence(cases: CaseInputs) -> np.ndarray:
    """Retrieved label distributions divided by the library's class shares (add-one smoothed)."""
    calibration = _calibration(cases)
    num_classes = calibration.probabilities.shape[2]
    counts = np.bincount(calibration.labels, minlength=num_classes)
    shares = (counts + 1.0) / (counts.sum() + num_classes)
    model = fit(cases, _without_prevalence(calibration, shares))
    return pooled(model, _without_prevalence(cases.evaluation, shares))


NOW = "now: guarded fit, local competence at use"
RULES: tuple[tuple[str, Rule], ...] = (
    (NOW, now),
    ("card weights, no fit", card_weights),
    ("competence in the fit too", competence_in_fit),
    ("fit only where any source disagrees", fit_where_sources_disagree),
    ("fit only where the specialists disagree", fit_where_specialists_disagree),
    ("split cases: the source best on the calibration splits", split_cases_selector),
    ("Dawid-Skene confusion matrices, uniform prior", dawid_skene),
    ("retrieval divided by the library's class shares", retrieval_without_prevalence),
    ("weights fitted for the thresholds served", weights_for_served_thresholds),
)


@dataclass
class Tally:
    """The bar's counts for one rule over a set of evaluations."""

    evaluations: int = 0
    right: int = 0
    below_vote: int = 0
    significantly_below_best: int = 0
    split_right: int = 0
    split_vs_best: list[int] = field(default_factory=lambda: [0, 0, 0])  # above, level, below

    def add(self, cases: CaseInputs, predicted: np.ndarray) -> None:
        evaluated = cases.evaluation
        labels = evaluated.labels
        said = evaluated.probabilities.argmax(axis=2)
        best = said[int(np.argmax((said == labels).sum(axis=1)))]
        right, best_right = predicted == labels, best == labels
        split = labels_differ(said)
        self.evaluations += 1
        self.right += int(right.sum())
        self.below_vote += int(right.sum() < (majority_vote(evaluated.probabilities) == labels).sum())
        below = right.sum() < best_right.sum() and mcnemar_exact(best_right, right).p_value < ALPHA
        self.significantly_below_best += int(below)
        if split.any():
            ours, theirs = int(right[split].sum()), int(best_right[split].sum())
            self.split_right += ours
            self.split_vs_best[0 if ours > theirs else 1 if ours == theirs else 2] += 1


Predictions = dict[str, dict[str, np.ndarray]]
"""Per rule, its labels on each evaluation (by the evaluation's label)."""


def replay(found: list[Evaluation]) -> tuple[dict[str, dict[str, Tally]], Predictions]:
    """Per rule, the tallies of each group's evaluations, and its labels on each."""
    tallies = {name: {group: Tally() for group in GROUPS} for name, _ in RULES}
    predictions: Predictions = {name: {} for name, _ in RULES}
    for evaluation in found:
        if (differs := drift(evaluation.cases)) is not None:
            raise SystemExit(
                f"{evaluation.label}: the replayed hub rule differs from the served one: {differs}"
            )
        for name, rule in RULES:
            predicted = rule(evaluation.cases)
            predictions[name][evaluation.label] = predicted
            tallies[name][evaluation.group].add(evaluation.cases, predicted)
    return tallies, predictions


def twin_pairs(found: list[Evaluation]) -> list[tuple[Evaluation, Evaluation]]:
    """Each biased study's evaluation with its unbiased twin's (``compare_with``): same folder, same
    draw and training seeds, as ``hub.study.draws`` pairs them.

    A pair that two studies share (a study and repeat 1 of its seeds twin) is listed once.
    """
    at = {(place.study, place.where): e for e in found for place in e.places}
    pairs: dict[tuple[str, str], tuple[Evaluation, Evaluation]] = {}
    for biased in found:
        for place in biased.places:
            twin = at.get((place.twin, place.where))
            if twin is None:
                continue
            if twin.draw != biased.draw:
                raise SystemExit(f"{biased.label} and its twin {twin.label} were cut from other draws")
            if twin.site_seeds != biased.site_seeds:
                raise SystemExit(f"{biased.label} and its twin {twin.label} trained with other seeds")
            pairs[(twin.label, biased.label)] = (twin, biased)
    return list(pairs.values())


def _lost(said: dict[str, np.ndarray], twin: Evaluation, biased: Evaluation) -> int:
    """Images right on ``twin`` minus those right on ``biased``, by the labels ``said`` gives each."""
    return sum(
        sign * int((said[e.label] == e.cases.evaluation.labels).sum())
        for sign, e in ((1, twin), (-1, biased))
    )


def drop_tallies(
    pairs: list[tuple[Evaluation, Evaluation]], predictions: Predictions
) -> dict[str, dict[str, DrawTally]]:
    """Per rule and group: per draw, images the vote lost from twin to biased minus those the rule lost.

    The count ``hub.study.draws`` makes for the served consensus, here for every rule; a pair
    belongs to its biased evaluation's group.
    """
    votes = {e.label: majority_vote(e.cases.evaluation.probabilities) for pair in pairs for e in pair}
    found: dict[str, dict[str, DrawTally]] = {}
    for name, _ in RULES:
        gaps: dict[str, list[tuple[Draw, int]]] = {group: [] for group in GROUPS}
        for twin, biased in pairs:
            gap = _lost(votes, twin, biased) - _lost(predictions[name], twin, biased)
            gaps[biased.group].append((biased.draw, gap))
        found[name] = {group: tally(scores) for group, scores in gaps.items()}
    return found


def _specialist_digests(cases: CaseInputs) -> set[str]:
    labels = cases.evaluation.labels.tobytes()
    return {hashlib.sha256(labels + p.tobytes()).hexdigest() for p in cases.evaluation.probabilities}


def _calibration_digest(cases: CaseInputs) -> str:
    calibration = _calibration(cases)
    return hashlib.sha256(calibration.labels.tobytes() + calibration.probabilities.tobytes()).hexdigest()


def shared_with_explored(found: list[Evaluation], group: str) -> tuple[int, int]:
    """The group's evaluations with an explored one's calibration cases, and with one of its
    specialists' outputs on the same images: not looked at is not independent."""
    explored = [e.cases for e in found if e.group == "explored"]
    calibrations = {_calibration_digest(c) for c in explored}
    outputs = set().union(*(_specialist_digests(c) for c in explored)) if explored else set()
    kept = [e.cases for e in found if e.group == group]
    return (
        sum(_calibration_digest(c) in calibrations for c in kept),
        sum(bool(_specialist_digests(c) & outputs) for c in kept),
    )


def _drop_cell(drops: DrawTally) -> str:
    if drops.ahead + drops.level + drops.behind == 0:
        return "no biased study"
    return f"{drops.ahead} / {drops.level} / {drops.behind}"


def table(
    tallies: dict[str, dict[str, Tally]], drops: dict[str, dict[str, DrawTally]], group: str
) -> list[str]:
    reference = tallies[NOW][group]
    lines = [
        "| rule | images right (vs now) | below the vote | significantly below the best "
        "| split cases right (vs now) | split cases: above / level / below the best "
        "| biased drop vs the vote's, per draw: smaller / level / larger |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, _ in RULES:
        t = tallies[name][group]
        above, level, below = t.split_vs_best
        lines.append(
            f"| {name} | {t.right} ({t.right - reference.right:+d}) | {t.below_vote} of {t.evaluations} | "
            f"{t.significantly_below_best} | {t.split_right} ({t.split_right - reference.split_right:+d}) | "
            f"{above} / {level} / {below} | {_drop_cell(drops[name][group])} |"
        )
    return lines


def improves_on(rule: Tally, reference: Tally) -> bool:
    """The adoption rule, fixed before any alternative was scored.

    Never significantly below the best specialist; below the vote in no more evaluations; more
    split cases right and above the best there in at least as many; at least as many images right.
    """
    return (
        rule.significantly_below_best == 0
        and rule.below_vote <= reference.below_vote
        and rule.split_right > reference.split_right
        and rule.split_vs_best[0] >= reference.split_vs_best[0]
        and rule.right >= reference.right
    )


def section(found: list[Evaluation]) -> list[str]:
    """The docs section: a table per group of evaluations, the adoption verdict, the trial's verdict."""
    tallies, predictions = replay(found)
    drops = drop_tallies(twin_pairs(found), predictions)
    reference = tallies[NOW]
    groups = {group: [e.label for e in found if e.group == group] for group in GROUPS}
    passed = {
        group: [
            name for name, _ in RULES if name != NOW and improves_on(tallies[name][group], reference[group])
        ]
        for group in GROUPS
    }
    adopted = [name for name in passed["explored"] if name in passed["kept apart"]]
    same_calibration, same_outputs = shared_with_explored(found, "kept apart")
    kept = len(groups["kept apart"])
    lines = [
        HEADING,
        "",
        "From the studies' `cases.npz` files (`gsco-hub evaluate --cases-out`). Each rule but the card "
        "weights is fitted on an evaluation's calibration cases, and every rule is scored on its "
        "images; \"now\" replays the hub's rule and gives the served consensus' weights and labels. "
        "The best specialist is the most accurate on each evaluation set; split cases are the images "
        "where the specialists' labels differ. Distinct calibrated evaluations of the studies without "
        "a named reference (a shared one counts once). The last column counts a biased study's draw only "
        "where both its evaluation and its twin's were calibrated; the per-draw paragraph of the "
        "clinical studies counts every draw with the served consensus.",
        "",
        f"Evaluations the rules were first looked at on ({len(groups['explored'])}: {', '.join(EXPLORED)}):",
        "",
        *table(tallies, drops, "explored"),
        "",
        f"Evaluations kept apart to confirm a rule before adopting it ({kept}):",
        "",
        *table(tallies, drops, "kept apart"),
        "",
        "Kept apart means not looked at while the rules were chosen, not independent of the explored "
        f"set: {same_calibration} of these {kept} have the calibration cases of an "
        f"explored evaluation (the same specialists and library, other images), and {same_outputs} of "
        f"{kept} share at least one specialist's outputs on the same images with one "
        "(the same site trained the same way, another site changed).",
        "",
        "A rule replaces the hub's only if, on both sets, it is never significantly below the best "
        "specialist, below the vote in no more evaluations, gets more split cases right and is above "
        "the best there in at least as many evaluations, and gets at least as many images right. "
        f"Met on the explored set: {', '.join(passed['explored']) or 'none'}. Met on the kept-apart "
        f"set: {', '.join(passed['kept apart']) or 'none'}. "
        + (f"Both: {', '.join(adopted)}." if adopted else "On both: none, so the hub's rule stays."),
    ]
    if groups["fresh draws"]:
        lines += [
            "",
            f"Fresh draws ({len(groups['fresh draws'])}: {', '.join(FRESH)}), studies written and "
            "committed before their first run, on seeds no earlier study used (`docs/studies/README.md`, "
            '"Fresh draws"); they test the rules as they stood and adopt none:',
            "",
            *table(tallies, drops, "fresh draws"),
            "",
            f"Met on the fresh draws: {', '.join(passed['fresh draws']) or 'none'} (by the same counts "
            'against "now"; reported, not adopted).',
        ]
    if groups["confirmation draws"]:
        verdict = (
            "it meets them, so it replaces the hub's rule (the change to the hub's fit and a rerun of "
            "every study follow)"
            if ON_TRIAL in passed["confirmation draws"]
            else "it does not meet them, so it does not replace the hub's rule"
        )
        lines += [
            "",
            f"Confirmation draws ({len(groups['confirmation draws'])}: {', '.join(CONFIRMATION)}), "
            "studies written and committed before their first run, on seeds no earlier study used "
            f'(`docs/studies/README.md`, "Confirmation draws"), to try one rule, {ON_TRIAL}:',
            "",
            *table(tallies, drops, "confirmation draws"),
            "",
            f'The rule on trial, {ON_TRIAL}, against "now" by the adoption counts: {verdict}. '
            f"Met here: {', '.join(passed['confirmation draws']) or 'none'}.",
        ]
    if groups["trial draws"]:
        lines += ["", *second_trial(tallies, drops, passed, len(groups["trial draws"]))]
    return lines


def second_trial(
    tallies: dict[str, dict[str, Tally]],
    drops: dict[str, dict[str, DrawTally]],
    passed: dict[str, list[str]],
    count: int,
) -> list[str]:
    """The trial draws' table and the registered verdict on the second rule on trial."""
    met = [group for group in SECOND_TRIAL_SETS if SECOND_TRIAL in passed[group]]
    verdict = (
        "it meets them on all three, so it replaces the hub's rule (the change to the hub's fit and a "
        "rerun of every study follow)"
        if len(met) == len(SECOND_TRIAL_SETS)
        else f"it meets them on {', '.join(met) or 'none of them'}, not on all three, so the hub's rule stays"
    )
    return [
        f"Trial draws ({count}: {', '.join(TRIAL)}), studies written and committed before their first "
        "run, on seeds no earlier study used, evaluated on a held-out shard of `train` "
        f'(`docs/studies/README.md`, "Trial draws"), to try one rule, {SECOND_TRIAL}:',
        "",
        *table(tallies, drops, "trial draws"),
        "",
        f'The rule on trial, {SECOND_TRIAL}, against "now" by the adoption counts, registered to be met '
        f"on the explored set, the kept-apart set and these draws: {verdict}. "
        f"Met here: {', '.join(passed['trial draws']) or 'none'}.",
    ]


def main() -> None:
    args = bench_parser(__doc__).parse_args()
    for name, trial in (("ON_TRIAL", ON_TRIAL), ("SECOND_TRIAL", SECOND_TRIAL)):
        if trial not in dict(RULES):
            raise SystemExit(f"{name} names no rule: {trial!r}")
    missing = set(EXPLORED) - set(study_names())
    if missing:
        raise SystemExit(f"EXPLORED names studies that are not in docs/studies: {sorted(missing)}")
    found = evaluations()
    if not found:
        raise SystemExit(
            "no calibrated cases.npz under docs/studies: rerun the studies first "
            "(gsco-hub study docs/studies/NAME/study.yaml --out docs/studies/NAME)"
        )
    publish(section(found), "results.md", "Results", write=args.write_docs)


if __name__ == "__main__":
    main()
