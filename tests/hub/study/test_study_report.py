"""The study report read from numbers, and a failing step's report (fast: no training)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gsco_common.errors import StudyError
from hub.evaluation.significance import NAMED_REFERENCE_RULE
from hub.study.comparison import compare, comparison_lines, skewed_weight_lines
from hub.study.facts import interval, paired
from hub.study.report import (
    against_reference,
    disagreement_lines,
    disagreement_verdict,
    method_table,
    verdict,
)
from hub.study.steps import Steps, study_env


def _method(name: str, kind: str, accuracy: float, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "accuracy": accuracy,
        "macro_f1": accuracy - 0.01,
        "auc": 0.9,
        **extra,
    }


def _result(
    consensus: float, vote: float, statistics: dict[str, Any] | None = None, **consensus_extra: Any
) -> dict[str, Any]:
    return {
        "statistics": statistics,
        "study": "s",
        "methods": [
            _method("A v1", "specialist", 0.90),
            _method("B v1", "specialist", 0.80),
            _method("specialists' vote", "vote", vote),
            _method("RAD only (k=10)", "rad", 0.85),
            _method("consensus (no generalist)", "consensus", consensus, **consensus_extra),
        ],
        "consensus_weights": {"source": "shrunk toward card weights"},
    }


def test_verdict_states_the_differences_from_the_numbers() -> None:
    text = verdict(_result(0.88, 0.86))
    assert "accuracy 0.880 against 0.900 for the best single specialist (A v1): -2.0 points" in text
    assert "No paired test was reported" in text
    assert "Against the specialists' majority vote (0.860) it is +2.0 points." in text
    assert "Against RAD only (0.850) it is +3.0 points." in text
    assert text.endswith("Consensus weights: shrunk toward card weights.")


def test_verdict_and_table_use_intervals_and_paired_tests_when_reported() -> None:
    comparison = {
        "method": "consensus (no generalist)",
        "accuracy": {"difference": 0.02, "ci": [0.005, 0.035], "p_value": 0.011},
        "auc": {"difference": -0.001, "ci": [-0.01, 0.008], "p_value": 0.8},
    }
    result = _result(0.92, 0.86, {"comparisons": [comparison]}, accuracy_ci=[0.9, 0.94])
    assert "The paired test (McNemar) puts it significantly above (p = 0.011)." in verdict(result)
    table = method_table(result)
    assert table[-1] == (
        "| consensus (no generalist) | 0.920 (0.900–0.940) | 0.910 | 0.900 "
        "| +2.0 (+0.5 to +3.5), p 0.011 | -0.1 (-1.0 to +0.8), p 0.8 |  |"
    )
    assert table[2].startswith("| A v1 (best specialist) | 0.900 | 0.890 | 0.900 | — | — |")
    comparison["accuracy"]["p_value"] = 0.4
    assert "finds no significant difference (p = 0.4)" in verdict(result)


def test_a_named_reference_is_labelled_and_every_specialist_compared_with_it() -> None:
    comparisons = [
        {"method": "A v1", "accuracy": {"difference": 0.1, "ci": [0.04, 0.16], "p_value": 0.002}},
        {"method": "consensus (no generalist)", "accuracy": {"difference": 0.08, "p_value": 0.03}},
    ]
    statistics = {
        "reference": "B v1",
        "reference_rule": NAMED_REFERENCE_RULE,
        "comparisons": comparisons,
    }
    result = _result(0.88, 0.86, statistics)
    table = method_table(result)
    assert "ΔACC vs reference, points (CI), McNemar p" in table[0]
    assert table[2].startswith("| A v1 | 0.900 | 0.890 | 0.900 | +10.0 (+4.0 to +16.0), p 0.002 | — |")
    assert table[3].startswith("| B v1 (reference) | 0.800 |")
    text = verdict(result)
    assert "accuracy 0.880 against 0.800 for the reference (B v1): +8.0 points" in text
    assert "puts it significantly above (p = 0.03)" in text
    assert against_reference(result) == (
        "Accuracy against the reference (B v1): "
        "A v1 +10.0 points (McNemar p = 0.002, significantly above at 0.05)."
    )
    comparisons[0]["accuracy"]["verdict"] = "significantly above at 0.01"  # the evaluation's own words win
    assert str(against_reference(result)).endswith("(McNemar p = 0.002, significantly above at 0.01).")
    comparisons[0]["accuracy"] = {"difference": -0.01, "p_value": 0.7}
    assert against_reference(result) == (
        "Accuracy against the reference (B v1): "
        "A v1 -1.0 points (McNemar p = 0.7, not significantly different)."
    )
    assert against_reference(_result(0.88, 0.86)) is None  # the best specialist: no such line


def test_interval_and_paired_read_the_evaluation_keys() -> None:
    assert interval({"auc_ci": [0.1, 0.2]}, "auc") == (0.1, 0.2)
    assert interval({"auc_ci": None}, "auc") is None
    assert interval({}, "accuracy") is None
    assert paired({"statistics": None}, "x") is None
    assert paired({"statistics": {"comparisons": [{"method": "x", "auc": {"p_value": 1}}]}}, "x", "auc") == {
        "p_value": 1
    }


def test_biased_comparison_drop_and_sentence() -> None:
    baseline, biased = _result(0.92, 0.91), _result(0.90, 0.85)
    rows = compare(baseline, biased)["accuracy"]
    assert rows["consensus"]["drop"] == pytest.approx(0.02)
    assert rows["vote"]["drop"] == pytest.approx(0.06)
    assert comparison_lines(biased, None) == []
    lines = comparison_lines(biased, baseline)
    assert lines[-1] == (
        "Accuracy changed by -2.0 points for the consensus and by -6.0 points for the majority vote: "
        "the collaboration's drop is smaller than the vote's."
    )
    worse = comparison_lines(_result(0.80, 0.90), baseline)
    assert "drop is NOT smaller than the vote's" in worse[-1]
    level = comparison_lines(_result(0.9196, 0.90), baseline)  # a drop of 0.04 points
    assert "| consensus | 0.920 | 0.920 | +0.0 points |" in level
    assert level[-1].startswith("Accuracy changed by +0.0 points for the consensus")


def _weights(skewed: float) -> dict[str, Any]:
    return {
        "source": "calibrated (shrunk)",
        "specialists": {"t.net.site-a/1": 0.5, "t.net.site-c/1": skewed},
        "retrieval": {"t.net.site-a/1": 0.25, "t.net.site-c/1": 0.0},
        "bias": [0.0, 0.0],
    }


def test_the_weight_on_a_label_skewed_site_is_reported_against_the_unbiased_twin() -> None:
    sites = [
        {"name": "site-a", "model": "t.net.site-a v1", "shard": {"label_skew": {}}},
        {"name": "site-c", "model": "t.net.site-c v1", "shard": {"label_skew": {"pneumonia": 0.97}}},
    ]
    baseline = {**_result(0.92, 0.91), "consensus_weights": _weights(0.75)}
    biased = {**_result(0.90, 0.85), "consensus_weights": _weights(0.25), "sites": sites}
    assert comparison_lines(biased, baseline)[-1] == (
        "Weight on site-c (trained on a label-skewed shard), its prediction and its retrieval as a share "
        "of all the consensus' weights: 25.0 %, against 50.0 % in the unbiased study."
    )
    # repeated: one share per repeat, and in how many repeats it was lower than in the twin
    baseline["per_repeat"] = [{"consensus_weights": _weights(w)} for w in (0.75, 0.25, 0.75)]
    biased["per_repeat"] = [{"consensus_weights": _weights(w)} for w in (0.25, 0.75, 0.25)]
    seeds = [{"seed": s, "sites": [{"seed": s}]} for s in (0, 1, 2)]
    baseline["repeats"], biased["repeats"] = seeds, [*seeds[:2], {"seed": 9, "sites": [{"seed": 9}]}]
    assert skewed_weight_lines(biased, baseline) == [
        "Weight on site-c (trained on a label-skewed shard), its prediction and its retrieval as a share "
        "of all the consensus' weights: 25.0 %, 50.0 % and 25.0 % (repeat by repeat), against 50.0 %, "
        "25.0 % and 50.0 % (repeat by repeat) in the unbiased study: lower in 1 of 2 repeats run with the "
        "same seeds."
    ]  # the third repeat ran with other seeds: not paired
    # weights from the cards' source alone (no numbers) or no skewed site: no line
    biased["per_repeat"][1]["consensus_weights"] = {"source": "card"}
    assert skewed_weight_lines(biased, baseline) == []
    assert skewed_weight_lines({**biased, "sites": sites[:1]}, baseline) == []


def test_a_failing_step_reports_command_exit_code_and_stderr(tmp_path: Path) -> None:
    announced: list[str] = []
    steps = Steps(study_env(tmp_path), tmp_path / "logs", lambda title, _s: announced.append(title))
    missing = str(tmp_path / "no-site")
    with pytest.raises(StudyError) as caught:
        steps.run("site-x: train", "site-agent", "train", "--site", missing)
    assert caught.value.message == (
        f"step 'site-x: train' failed: `site-agent train --site {missing}` exited with code 2"
    )
    assert "error[GSCO-100]: no site.yaml in the site folder" in str(caught.value.hint)
    assert announced == []
    assert (tmp_path / "logs" / "01-site-agent-train.log").is_file()


def test_study_env_keeps_everything_in_the_work_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the operator's own registry, hub database and caches: a study must not write there
    for name in (
        "GSCO_TRACKING_URI",
        "GSCO_REGISTRY_DB",
        "GSCO_HUB_DB_URL",
        "GSCO_RUNTIME_CACHE",
        "GSCO_HOME",
    ):
        monkeypatch.setenv(name, "postgresql://central-registry.example/gsco")
    monkeypatch.setenv("PATH_FOR_THE_TOOLS", "kept")
    env = study_env(tmp_path)
    assert sorted(name for name in env if name.startswith("GSCO_")) == ["GSCO_HOME", "GSCO_KEY_PASSPHRASE"]
    assert env["PATH_FOR_THE_TOOLS"] == "kept"
    for key in ("GSCO_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "TMPDIR"):
        assert env[key].startswith(str(tmp_path))
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true" and len(env["GSCO_KEY_PASSPHRASE"]) == 32


def _disagreement(consensus_right: int, p: float | None, status: str = "analysed") -> dict[str, Any]:
    """A disagreement block as `gsco-hub evaluate` writes it: 20 cases, reference A v1 right on 10."""
    rows = [
        {"name": "A v1", "kind": "specialist", "n": 20, "correct": 10, "accuracy": 0.5,
         "balanced_accuracy": 0.5, "accuracy_ci": [0.3, 0.7], "balanced_accuracy_ci": [0.3, 0.7]},
        {"name": "consensus (no generalist)", "kind": "consensus", "n": 20, "correct": consensus_right,
         "accuracy": consensus_right / 20, "balanced_accuracy": None, "accuracy_ci": None,
         "balanced_accuracy_ci": None},
    ]  # fmt: skip
    test = {"difference": (consensus_right - 10) / 20, "ci": None, "p_value": p}
    return {
        "status": status,
        "n": 20,
        "of": 100,
        "class_counts": [8, 12],
        "reference": "A v1",
        "min_cases_for_intervals": 10,
        "methods": rows,
        "comparisons": [{"method": "consensus (no generalist)", "kind": "consensus", "accuracy": test}],
    }


def test_disagreement_subset_table_and_verdict_from_the_evaluation_block() -> None:
    arm = {**_result(0.92, 0.86), "disagreement": _disagreement(16, 0.004)}
    assert disagreement_verdict(arm) == (
        "On the 20 of 100 images where the specialists' labels differ, the consensus arbiter was right on "
        "16, accuracy 0.800, against 10, 0.500 (0.300–0.700), for the best specialist (A v1): +30.0 points. "
        "McNemar puts it significantly above (p = 0.004)."
    )
    lines = disagreement_lines(arm, ["x", "y"], "##")
    assert lines[0] == "## Where the specialists disagree (20 of 100 images: x 8, y 12)"
    assert "| A v1 (best specialist) | 10/20 | 0.500 (0.300–0.700) | 0.500 (0.300–0.700) | — |" in lines
    assert "| consensus (no generalist) | 16/20 | 0.800 | — | +30.0, p 0.004 |" in lines
    arm["disagreement"] = _disagreement(11, 0.8)
    assert disagreement_verdict(arm).endswith(
        "McNemar finds no significant difference (p = 0.8): not shown to be above it."
    )
    arm["disagreement"] = _disagreement(4, 0.01)
    assert disagreement_verdict(arm).endswith("McNemar puts it significantly below (p = 0.01).")
    arm["disagreement"] = {"status": "no disagreement", "of": 100, "n": 0, "class_counts": [0, 0]}
    assert disagreement_verdict(arm) == (
        "The specialists gave the same label on all 100 images: there is no subset to judge."
    )
    arm["disagreement"]["specialists"] = 1
    assert disagreement_verdict(arm) == "Only one specialist was served: there is no disagreement subset."
    assert disagreement_lines(_result(0.9, 0.9), ["x", "y"], "##") == []  # an evaluation without the block
