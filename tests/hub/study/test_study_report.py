"""The study report read from numbers, and a failing step's report (fast: no training)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gsco_common.errors import StudyError
from hub.study.report import compare, comparison_lines, interval, method_table, paired, verdict
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


def test_study_env_keeps_everything_in_the_work_folder(tmp_path: Path) -> None:
    env = study_env(tmp_path)
    for key in ("GSCO_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "TMPDIR"):
        assert env[key].startswith(str(tmp_path))
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true" and len(env["GSCO_KEY_PASSPHRASE"]) == 32
