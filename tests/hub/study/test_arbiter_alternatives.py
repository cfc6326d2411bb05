"""`bench/arbiter_alternatives.py`: which evaluations it replays, the bar's counts, two rules' answers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench import arbiter_alternatives as alternatives
from gsco_runtime.arbiters.weights import ConsensusModel
from hub.evaluation.case_inputs import CaseInputs, DecisionInputs, save_case_inputs
from hub.evaluation.significance import NAMED_REFERENCE_RULE
from hub.study.draws import DrawTally


def _onehot(labels: list[int], confidence: float = 0.9) -> np.ndarray:
    probs = np.full((len(labels), 2), 1.0 - confidence)
    probs[np.arange(len(labels)), labels] = confidence
    return probs


def _inputs(labels: list[int], said: list[list[int]], retrieved: list[list[int]]) -> DecisionInputs:
    return DecisionInputs(
        np.asarray(labels),
        np.stack([_onehot(s) for s in said]),
        np.stack([_onehot(r, 0.8) for r in retrieved]),
        # competence varies by specialist and case, so a pool that dropped it would answer otherwise
        0.6 + 0.15 * ((np.arange(len(said))[:, None] + np.arange(len(labels))[None, :]) % 3),
    )


def _cases(evaluated: DecisionInputs, calibration: DecisionInputs | None) -> CaseInputs:
    count = evaluated.probabilities.shape[0]
    weights = np.full(count, 1.0 / count)
    card = ConsensusModel(weights, weights, np.zeros(2), source="card")
    cases = CaseInputs(
        specialists=tuple(f"s{i} v1" for i in range(count)),
        label_names=("normal", "pneumonia"),
        evaluation=evaluated,
        consensus=np.zeros((evaluated.labels.shape[0], 2)),
        model=card,
        card_weights=weights,
        ceilings=np.full(count, np.nan),
        calibration=calibration,
    )
    if calibration is None:
        return cases
    served = alternatives.fit(cases, calibration)
    consensus = served.predict_proba(evaluated.probabilities, evaluated.retrieved, evaluated.competence)
    return replace(cases, model=served, consensus=consensus)


# Specialist 0 is right on every case; 1 and 2 each miss one of the first two. Specialist 2's
# retrieval is right everywhere, the others' retrieval says the opposite of the truth.
TRUTH = [0, 1, 0, 1, 0, 1]
SAID = [[0, 1, 0, 1, 0, 1], [1, 1, 0, 1, 0, 1], [0, 0, 0, 1, 0, 1]]
RETRIEVED = [[1, 0, 1, 0, 1, 0], [1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1]]


def test_a_tally_counts_what_the_bar_asks() -> None:
    cases = _cases(_inputs(TRUTH, SAID, RETRIEVED), None)
    tally = alternatives.Tally()
    # wrong on case 0 (a split case) and on case 5 (unanimous): below the vote (4 of 6 right, the
    # vote all 6), not significantly below the best (McNemar on 2 discordant cases)
    tally.add(cases, np.asarray([1, 1, 0, 1, 0, 0]))
    assert (tally.evaluations, tally.right, tally.below_vote, tally.significantly_below_best) == (1, 4, 1, 0)
    assert (tally.split_right, tally.split_vs_best) == (1, [0, 0, 1])  # 1 of the 2 split cases; best: 2
    tally.add(cases, np.asarray(TRUTH))
    assert (tally.evaluations, tally.right, tally.below_vote, tally.split_right) == (2, 10, 1, 3)
    assert tally.split_vs_best == [0, 1, 1]


def test_a_rule_replaces_the_hubs_only_when_every_count_allows() -> None:
    now = alternatives.Tally(evaluations=4, right=100, below_vote=1, split_right=20, split_vs_best=[2, 1, 1])
    better = replace(now, right=101, split_right=21)
    assert alternatives.improves_on(better, now)
    assert not alternatives.improves_on(replace(better, below_vote=2), now)
    assert not alternatives.improves_on(replace(better, significantly_below_best=1), now)
    assert not alternatives.improves_on(replace(better, split_right=20), now)  # more, not as many
    assert not alternatives.improves_on(replace(better, split_vs_best=[1, 2, 1]), now)
    assert not alternatives.improves_on(replace(better, right=99), now)


def _calibration_where_only_one_retrieval_settles_splits() -> DecisionInputs:
    """12 unanimous cases, everything right; 12 split cases, each specialist right on a third of them
    (so the majority is wrong), specialist 2's retrieval right and the other two retrievals wrong."""
    truth = [0, 1] * 12
    said: list[list[int]] = [[], [], []]
    retrieved: list[list[int]] = [[], [], []]
    for i, label in enumerate(truth):
        for s in range(3):
            right = i < 12 or (i - 12) % 3 == s
            said[s].append(label if right else 1 - label)
            retrieved[s].append(label if i < 12 or s == 2 else 1 - label)
    return _inputs(truth, said, retrieved)


# Two split cases on which the majority of the specialists is wrong and specialist 2's retrieval
# right, then a unanimous case.
SPLIT_TRUTH = [1, 0, 1]
SPLIT_SAID = [[1, 0, 1], [0, 1, 1], [0, 1, 1]]
SPLIT_RETRIEVED = [[0, 1, 1], [0, 1, 1], [1, 0, 1]]


def test_the_selector_follows_the_source_best_on_the_calibration_splits() -> None:
    calibration = _calibration_where_only_one_retrieval_settles_splits()
    cases = _cases(_inputs(SPLIT_TRUTH, SPLIT_SAID, SPLIT_RETRIEVED), calibration)
    pooled = alternatives.pooled(cases.model, cases.evaluation)
    assert pooled.tolist() == [0, 0, 0]  # the fitted pool goes with the majority on the splits
    assert alternatives.split_cases_selector(cases).tolist() == [1, 0, 1]


def test_dawid_skene_weighs_each_label_by_its_confusion_matrix() -> None:
    cases = _cases(
        _inputs(SPLIT_TRUTH, SPLIT_SAID, SPLIT_RETRIEVED),
        _calibration_where_only_one_retrieval_settles_splits(),
    )
    # four of the six labels on case 0 say 0, but the two retrievals that were wrong on every
    # calibration split carry nothing and the one that was always right outweighs the specialists
    assert alternatives.dawid_skene(cases).tolist() == [1, 0, 1]


def _study(
    folder: Path, name: str, named_reference: bool = False, *, twin: str | None = None, seeds: int = 1
) -> Path:
    """A study folder with a minimal study.json: ``twin`` is its ``compare_with``, ``seeds`` its repeats."""
    statistics = {"reference": "s0 v1", "reference_rule": NAMED_REFERENCE_RULE} if named_reference else {}
    result = {
        "study": name,
        "spec_yaml": f"compare_with: ../{twin}/study.json\n" if twin else "",
        "task": {"id": "pneumonia"},
        "seed": 0,
        **(
            {"repeats": [{"seed": r, "sites": [{"seed": 10 * r}]} for r in range(seeds)]} if seeds > 1 else {}
        ),
        "sites": [{"seed": 0}],
        "methods": [{"kind": "specialist", "name": "s0 v1", "accuracy": 1.0}],
        "statistics": statistics,
    }
    (folder / name).mkdir(parents=True)
    (folder / name / "study.json").write_text(json.dumps(result))
    return folder / name


def test_each_distinct_calibrated_evaluation_is_replayed_once(tmp_path: Path) -> None:
    calibration = _inputs(TRUTH * 3, [s * 3 for s in SAID], [r * 3 for r in RETRIEVED])
    shared = _cases(_inputs(TRUTH, SAID, RETRIEVED), calibration)
    other = _cases(_inputs(TRUTH[:4], [s[:4] for s in SAID], [r[:4] for r in RETRIEVED]), calibration)
    save_case_inputs(_study(tmp_path, "pneumonia") / "cases.npz", shared)
    seeds = _study(tmp_path, "pneumonia-seeds")
    save_case_inputs(seeds / "cases.npz", shared)  # the same evaluation in its seeds twin
    save_case_inputs(seeds / "variants" / "balanced-evaluation" / "cases.npz", other)
    save_case_inputs(seeds / "variants" / "card" / "cases.npz", replace(other, calibration=None))
    suspect = replace(other.model, source="card (library looks like training data of s0)")
    save_case_inputs(seeds / "variants" / "suspect" / "cases.npz", replace(other, model=suspect))
    save_case_inputs(_study(tmp_path, "recipes-pneumonia", named_reference=True) / "cases.npz", other)
    # kept apart: other images (the same in reverse order), the explored ones' calibration cases
    shifted = _inputs(TRUTH[::-1], [s[::-1] for s in SAID], [r[::-1] for r in RETRIEVED])
    save_case_inputs(_study(tmp_path, "breast") / "cases.npz", _cases(shifted, calibration))
    _study(tmp_path, "biased-specialist")  # a study without cases files adds nothing
    # a fresh draw: other specialists' outputs (case 0 flipped for specialist 1), other calibration
    fresh_said = [SAID[0], [0, *SAID[1][1:]], SAID[2]]
    fresh_calibration = _inputs(TRUTH * 4, [s * 4 for s in SAID], [r * 4 for r in RETRIEVED])
    fresh = _cases(_inputs(TRUTH, fresh_said, RETRIEVED), fresh_calibration)
    save_case_inputs(_study(tmp_path, "pneumonia-two-sites") / "cases.npz", fresh)
    # a confirmation draw: the fresh one's evaluation images, fitted on other calibration cases
    confirmation_calibration = _inputs(TRUTH * 5, [s * 5 for s in SAID], [r * 5 for r in RETRIEVED])
    confirmation = _cases(_inputs(TRUTH, fresh_said, RETRIEVED), confirmation_calibration)
    save_case_inputs(_study(tmp_path, "pneumonia-confirm-seeds") / "cases.npz", confirmation)
    # a held-out shard study tests the hub's rule alone: its evaluations are not replayed
    save_case_inputs(
        _study(tmp_path, "pneumonia-holdout-seeds") / "cases.npz", _cases(shifted, fresh_calibration)
    )

    found = alternatives.evaluations(tmp_path)
    assert [(e.label, e.studies, e.group) for e in found] == [
        ("pneumonia / main", ["pneumonia", "pneumonia-seeds"], "explored"),  # its seeds twin was explored
        ("pneumonia-seeds / variants/balanced-evaluation", ["pneumonia-seeds"], "explored"),
        ("breast / main", ["breast"], "kept apart"),
        ("pneumonia-two-sites / main", ["pneumonia-two-sites"], "fresh draws"),
        ("pneumonia-confirm-seeds / main", ["pneumonia-confirm-seeds"], "confirmation draws"),
    ]
    assert alternatives.shared_with_explored(found, "kept apart") == (1, 0)
    # the fresh draw has its own calibration cases, but specialists 0 and 2 said what they said there
    assert alternatives.shared_with_explored(found, "fresh draws") == (0, 1)
    tallies, predictions = alternatives.replay(found)
    assert (
        predictions[alternatives.NOW]["breast / main"].tolist() == alternatives.now(found[2].cases).tolist()
    )
    now = tallies[alternatives.NOW]
    assert [now[group].evaluations for group in alternatives.GROUPS] == [2, 1, 1, 1, 0]
    lines = alternatives.section(found)
    verdict = next(i for i, line in enumerate(lines) if line.startswith("A rule replaces the hub's only if"))
    shared = lines[verdict - 2]
    assert "explored set: 1 of these 1 have the calibration cases of an explored evaluation" in shared
    assert "and 0 of 1 share at least one specialist's outputs on the same images" in shared
    # the verdict follows the explored and kept-apart tallies only: a rule is named on a set
    # exactly when it improves there, and the fresh draws adopt nothing
    for group, label in (
        ("explored", "Met on the explored set: "),
        ("kept apart", "Met on the kept-apart set: "),
    ):
        met = [
            n for n, _ in alternatives.RULES[1:] if alternatives.improves_on(tallies[n][group], now[group])
        ]
        assert f"{label}{', '.join(met) or 'none'}." in lines[verdict]
    assert lines[verdict + 2].startswith("Fresh draws (1: pneumonia-two-sites, ")
    fresh_now = now["fresh draws"]
    assert lines[verdict + 6] == (
        f"| {alternatives.NOW} | {fresh_now.right} (+0) | {fresh_now.below_vote} of 1 | "
        f"{fresh_now.significantly_below_best} | {fresh_now.split_right} (+0) | "
        f"{' / '.join(map(str, fresh_now.split_vs_best))} | no biased study |"
    )
    fresh_met = [
        n
        for n, _ in alternatives.RULES[1:]
        if alternatives.improves_on(tallies[n]["fresh draws"], now["fresh draws"])
    ]
    fresh_met_line = next(i for i, line in enumerate(lines) if line.startswith("Met on the fresh draws"))
    assert lines[fresh_met_line] == (
        f"Met on the fresh draws: {', '.join(fresh_met) or 'none'} (by the same counts against "
        '"now"; reported, not adopted).'
    )
    assert lines[fresh_met_line + 2].startswith("Confirmation draws (1: pneumonia-two-sites-confirm, ")
    trial = alternatives.improves_on(
        tallies[alternatives.ON_TRIAL]["confirmation draws"], now["confirmation draws"]
    )
    assert lines[-1].startswith(
        f'The rule on trial, {alternatives.ON_TRIAL}, against "now" by the adoption counts: '
        + ("it meets them, so it replaces" if trial else "it does not meet them, so it does not replace")
    )
    # without a fresh or confirmation study the section ends with the verdict
    assert alternatives.section(found[:3])[-1].startswith("A rule replaces the hub's only if, on both sets")


def _main_evaluation(study: str, seed: int) -> alternatives.Evaluation:
    """The main arm of ``study`` (one run, no twin), calibrated on the shared calibration cases."""
    calibration = _inputs(TRUTH * 3, [s * 3 for s in SAID], [r * 3 for r in RETRIEVED])
    cases = _cases(_inputs(TRUTH, SAID, RETRIEVED), calibration)
    place = alternatives.Place(study, ".", None)
    return alternatives.Evaluation(f"{study} / main", cases, [place], ("pneumonia", seed))


@pytest.mark.parametrize("meets", [True, False])
def test_the_trial_verdict_follows_the_adoption_counts(monkeypatch: pytest.MonkeyPatch, meets: bool) -> None:
    found = [_main_evaluation("pneumonia-confirm-seeds", 30)]
    monkeypatch.setattr(alternatives, "improves_on", lambda rule, reference: meets)
    verdict = alternatives.section(found)[-1]
    assert verdict == (
        f'The rule on trial, {alternatives.ON_TRIAL}, against "now" by the adoption counts: '
        + (
            "it meets them, so it replaces the hub's rule (the change to the hub's fit and a rerun of "
            "every study follow). Met here: " + ", ".join(n for n, _ in alternatives.RULES[1:]) + "."
            if meets
            else "it does not meet them, so it does not replace the hub's rule. Met here: none."
        )
    )


def test_a_replay_that_drifts_from_the_served_consensus_stops(tmp_path: Path) -> None:
    calibration = _inputs(TRUTH * 3, [s * 3 for s in SAID], [r * 3 for r in RETRIEVED])
    cases = _cases(_inputs(TRUTH, SAID, RETRIEVED), calibration)
    assert alternatives.drift(cases) is None
    flipped = replace(cases, consensus=cases.consensus[:, ::-1])
    assert alternatives.drift(flipped) == "labels differ from the served consensus'"
    heavier = replace(cases.model, specialist_weights=cases.model.specialist_weights * 1.01)
    assert alternatives.drift(replace(cases, model=heavier)).startswith("specialist_weights ")
    renamed = replace(cases.model, source="calibrated (shrunk, thresholds moved)")
    assert alternatives.drift(replace(cases, model=renamed)).startswith("source ")
    save_case_inputs(_study(tmp_path, "pneumonia") / "cases.npz", flipped)
    with pytest.raises(
        SystemExit, match="pneumonia / main: the replayed hub rule differs from the served one"
    ):
        alternatives.replay(alternatives.evaluations(tmp_path))


def test_a_fit_on_too_few_cases_of_a_class_is_the_hubs_fit() -> None:
    calibration = _calibration_where_only_one_retrieval_settles_splits()
    cases = _cases(_inputs(SPLIT_TRUTH, SPLIT_SAID, SPLIT_RETRIEVED), calibration)
    everything = alternatives.fit(cases, calibration)
    few = alternatives.fit(cases, calibration, np.arange(12, 24))  # 6 cases of each class: below 8
    assert np.array_equal(few.specialist_weights, everything.specialist_weights)
    enough = alternatives.fit(cases, calibration, np.arange(4, 24))  # 10 of each
    assert not np.array_equal(enough.retrieval_weights, everything.retrieval_weights)


def test_the_rules_inputs_transform_as_documented() -> None:
    inputs = DecisionInputs(
        np.asarray([0, 1]),
        np.asarray([[[0.8, 0.2], [0.4, 0.6]], [[0.7, 0.3], [0.9, 0.1]]]),
        np.asarray([[[0.75, 0.25], [0.5, 0.5]], [[0.6, 0.4], [0.75, 0.25]]]),
        np.asarray([[0.5, 1.0], [0.25, 0.75]]),
    )
    scaled = alternatives._with_competence_in_probabilities(inputs)
    assert scaled.competence is None
    assert np.allclose(
        np.log(scaled.probabilities), inputs.competence[:, :, None] * np.log(inputs.probabilities)
    )
    balanced = alternatives._without_prevalence(inputs, np.asarray([0.75, 0.25]))
    assert np.allclose(balanced.retrieved[0, 0], [0.5, 0.5]) and np.allclose(
        balanced.retrieved[1, 1], [0.5, 0.5]
    )
    assert np.allclose(balanced.retrieved[0, 1], [0.25, 0.75])
    # case 0: every specialist and every retrieval says 0; case 1: the specialists say 1 and 0
    assert alternatives._labels_split(inputs, with_retrieval=False).tolist() == [False, True]
    assert alternatives._labels_split(inputs, with_retrieval=True).tolist() == [False, True]
    unanimous = replace(inputs, probabilities=inputs.probabilities[:, :1], retrieved=inputs.retrieved[:, :1])
    disagreeing = replace(unanimous, retrieved=unanimous.retrieved[:, :, ::-1])
    assert alternatives._labels_split(disagreeing, with_retrieval=False).tolist() == [False]
    assert alternatives._labels_split(disagreeing, with_retrieval=True).tolist() == [True]


def test_without_cases_files_the_script_says_to_rerun_the_studies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["arbiter_alternatives.py"])
    monkeypatch.setattr(alternatives, "evaluations", lambda: [])
    with pytest.raises(
        SystemExit, match="no calibrated cases.npz under docs/studies: rerun the studies first"
    ):
        alternatives.main()


def test_a_trial_of_a_rule_that_is_not_in_the_list_stops_the_script(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["arbiter_alternatives.py"])
    monkeypatch.setattr(alternatives, "ON_TRIAL", "competence in the fit, too")
    with pytest.raises(SystemExit, match="ON_TRIAL names no rule: 'competence in the fit, too'"):
        alternatives.main()


def test_a_broken_cases_file_or_study_report_stops_the_script_naming_the_file(tmp_path: Path) -> None:
    folder = _study(tmp_path, "pneumonia")
    broken = folder / "variants" / "balanced-evaluation" / "cases.npz"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(SystemExit) as stopped:
        alternatives.evaluations(tmp_path)
    assert str(stopped.value) == (
        f"{broken}: cases.npz is not a case-inputs file of `gsco-hub evaluate --cases-out`; "
        "rerun the study pneumonia"
    )
    (folder / "study.json").write_text('{"study": "pneu')
    with pytest.raises(SystemExit, match=r"study.json: not readable as a study report \(Unterminated string"):
        alternatives.evaluations(tmp_path)
    (folder / "study.json").write_text('{"study": "pneumonia", "methods": []}')
    with pytest.raises(
        SystemExit, match="not a study report of this version \\(no spec_yaml, task, sites\\)"
    ):
        alternatives.evaluations(tmp_path)
    (folder / "study.json").write_text("[]")
    with pytest.raises(SystemExit, match="no study, spec_yaml, task, sites, methods"):
        alternatives.evaluations(tmp_path)


def test_the_biased_drop_is_counted_per_draw_for_every_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calibration = _inputs(TRUTH * 3, [s * 3 for s in SAID], [r * 3 for r in RETRIEVED])
    twin = _cases(_inputs(TRUTH, SAID, RETRIEVED), calibration)
    # the biased site (specialist 2) says pneumonia for everything: the vote loses case 0 (6 -> 5)
    skewed = [SAID[0], SAID[1], [1] * 6]
    biased = _cases(_inputs(TRUTH, skewed, RETRIEVED), calibration)
    second_twin = _cases(_inputs(TRUTH[:4], [s[:4] for s in SAID], [r[:4] for r in RETRIEVED]), calibration)
    save_case_inputs(_study(tmp_path, "pneumonia") / "cases.npz", twin)
    save_case_inputs(_study(tmp_path, "biased-specialist", twin="pneumonia") / "cases.npz", biased)
    seeds = _study(tmp_path, "pneumonia-seeds", seeds=2)
    save_case_inputs(seeds / "cases.npz", twin)  # repeat 1 is the single-run study's evaluation
    save_case_inputs(seeds / "repeats" / "2" / "cases.npz", second_twin)
    biased_seeds = _study(tmp_path, "biased-specialist-seeds", twin="pneumonia-seeds", seeds=2)
    save_case_inputs(biased_seeds / "cases.npz", biased)
    # on repeat 2 specialist 2 gets case 1 right too: the vote stays at 4 of 4
    second_said = [SAID[0][:4], SAID[1][:4], [0, 1, 0, 1]]
    second_biased = _cases(_inputs(TRUTH[:4], second_said, [r[:4] for r in RETRIEVED]), calibration)
    save_case_inputs(biased_seeds / "repeats" / "2" / "cases.npz", second_biased)
    found = alternatives.evaluations(tmp_path)
    pairs = alternatives.twin_pairs(found)
    # the single-run pair is repeat 1's pair: counted once; draws are (task, shuffle seed)
    assert [(t.label, b.label, b.draw) for t, b in pairs] == [
        ("pneumonia / main", "biased-specialist / main", ("pneumonia", 0)),
        ("pneumonia-seeds / repeats/2", "biased-specialist-seeds / repeats/2", ("pneumonia", 1)),
    ]
    # a rule that is always right loses nothing: its drop is smaller in draw 0, level in draw 1.
    # One that follows specialist 2 goes from 5 to 3 of 6 on draw 0 (2 lost, the vote 1) and from
    # 3 to 4 of 4 on draw 1 (1 gained, the vote none).
    labels = {e.label: e.cases.evaluation.labels for e in found}
    said = {e.label: e.cases.evaluation.probabilities[2].argmax(axis=1) for e in found}
    rules = (("right", None), ("follows specialist 2", None))
    monkeypatch.setattr(alternatives, "RULES", rules)
    drops = alternatives.drop_tallies(pairs, {"right": labels, "follows specialist 2": said})
    assert drops["right"]["explored"] == DrawTally(ahead=1, level=1, behind=0)
    assert drops["follows specialist 2"]["explored"] == DrawTally(ahead=1, level=0, behind=1)
    assert drops["right"]["kept apart"] == DrawTally(0, 0, 0)
    assert alternatives._drop_cell(drops["right"]["explored"]) == "1 / 1 / 0"
    assert alternatives._drop_cell(drops["right"]["kept apart"]) == "no biased study"
    # a twin cut from another draw is a broken study pair, not a comparison
    report = json.loads((biased_seeds / "study.json").read_text())
    runs = report["repeats"]
    (biased_seeds / "study.json").write_text(
        json.dumps({**report, "repeats": [runs[0], {**runs[1], "seed": 7}]})
    )
    with pytest.raises(SystemExit, match="biased-specialist-seeds / repeats/2 and its twin .* other draws"):
        alternatives.twin_pairs(alternatives.evaluations(tmp_path))
    # so is one whose sites trained with other seeds
    other_seeds = {**runs[1], "sites": [{"seed": 11}]}
    (biased_seeds / "study.json").write_text(json.dumps({**report, "repeats": [runs[0], other_seeds]}))
    with pytest.raises(SystemExit, match="biased-specialist-seeds / repeats/2 and its twin .* other seeds"):
        alternatives.twin_pairs(alternatives.evaluations(tmp_path))


@pytest.mark.parametrize(
    ("met", "verdict"),
    [
        (
            ("explored", "kept apart", "trial draws"),
            "it meets them on all three, so it replaces the hub's rule (the change to the hub's fit "
            "and a rerun of every study follow).",
        ),
        (
            ("explored", "trial draws"),
            "it meets them on explored, trial draws, not on all three, so the hub's rule stays.",
        ),
        ((), "it meets them on none of them, not on all three, so the hub's rule stays."),
    ],
)
def test_the_second_trial_needs_the_counts_on_every_registered_set(
    met: tuple[str, ...], verdict: str
) -> None:
    found = [_main_evaluation("pneumonia-trial-seeds", 50)]
    assert found[0].group == "trial draws"
    tallies, predictions = alternatives.replay(found)
    drops = alternatives.drop_tallies([], predictions)
    passed = {group: [alternatives.SECOND_TRIAL] if group in met else [] for group in alternatives.GROUPS}
    lines = alternatives.second_trial(tallies, drops, passed, 1)
    assert lines[0].startswith("Trial draws (1: pneumonia-two-sites-trial, pneumonia-trial-seeds, ")
    assert lines[-1] == (
        f'The rule on trial, {alternatives.SECOND_TRIAL}, against "now" by the adoption counts, registered '
        f"to be met on the explored set, the kept-apart set and these draws: {verdict} Met here: "
        + (alternatives.SECOND_TRIAL if "trial draws" in met else "none")
        + "."
    )
    # the whole section ends with it when a trial draw is among the evaluations
    assert alternatives.section(found)[-1].startswith(f"The rule on trial, {alternatives.SECOND_TRIAL}, ")
