"""A study repeated over seeds: each repeat's seeds and the figures across repeats (fast: no training)."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import pytest

from gsco_common.errors import StudyError
from hub.evaluation.significance import NAMED_REFERENCE_RULE
from hub.study.comparison import compare, comparison_lines
from hub.study.repeats import BEST, aggregate, mean_sd, with_repeats
from hub.study.repeats_report import reference_across_repeats, repeats_verdict
from hub.study.report import study_markdown
from hub.study.spec import REPEAT_SEED_STRIDE, parse_study
from hub.study.steps import Steps, Stopped
from site_agent.data.synthetic import write_synthetic_npz
from tests.hub.study.specs import site, tiny_study

CONSENSUS = "consensus (no generalist)"


def _method(name: str, kind: str, accuracy: float, auc: float | None = 0.9) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "accuracy": accuracy,
        "macro_f1": accuracy - 0.1,
        "auc": auc,
        "accuracy_ci": [accuracy - 0.02, accuracy + 0.02],
    }


def _arm(a: float, b: float, consensus: float, p: float | None, vote: float = 0.80) -> dict[str, Any]:
    """Two specialists, a vote and the consensus; the consensus' McNemar p against the better one."""
    comparisons = []
    if p is not None:
        difference = consensus - max(a, b)
        comparisons.append({"method": CONSENSUS, "accuracy": {"difference": difference, "p_value": p}})
    return {
        "methods": [
            _method("A v1", "specialist", a),
            _method("B v1", "specialist", b),
            _method("specialists' vote", "vote", vote, auc=None),
            _method(CONSENSUS, "consensus", consensus),
        ],
        "statistics": {"reference": "A v1" if a >= b else "B v1", "comparisons": comparisons},
        "consensus_weights": {"source": "fitted", "specialists": {"A v1": 0.5}},
    }


def test_mean_and_sample_sd_with_known_numbers() -> None:
    assert mean_sd([0.8, 0.9, 1.0]) == pytest.approx({"mean": 0.9, "sd": 0.1, "n": 3})
    assert mean_sd([0.7, None]) == {"mean": 0.7, "sd": None, "n": 1}
    assert mean_sd([None, None]) is None


def test_aggregate_means_sds_best_of_each_repeat_and_significance_counts() -> None:
    arms = [
        _arm(0.90, 0.80, 0.86, p=0.01),  # significantly below the best (A)
        _arm(0.70, 0.94, 0.97, p=0.03),  # significantly above the best (B)
        _arm(0.80, 0.86, 0.85, p=0.40),  # not significant
        _arm(0.80, 0.82, 0.83, p=None),  # no paired test reported
    ]
    result = aggregate(arms)
    assert result["repeats"] == 4 and result["alpha"] == 0.05
    rows = {row["name"]: row for row in result["methods"]}
    assert [row["name"] for row in result["methods"]] == [
        "A v1",
        "B v1",
        "specialists' vote",
        CONSENSUS,
        BEST,
    ]
    assert rows["A v1"]["accuracy"]["mean"] == pytest.approx(0.80)
    assert rows["A v1"]["accuracy"]["sd"] == pytest.approx(math.sqrt(0.02 / 3))
    assert rows[CONSENSUS]["accuracy"]["mean"] == pytest.approx(0.8775)
    assert rows[CONSENSUS]["macro_f1"]["mean"] == pytest.approx(0.7775)
    # the best specialist of each repeat: 0.90, 0.94, 0.86, 0.82
    assert rows[BEST]["accuracy"]["mean"] == pytest.approx(0.88)
    assert rows[BEST]["accuracy"]["sd"] == pytest.approx(math.sqrt(0.008 / 3))
    assert rows["specialists' vote"]["accuracy"] == {"mean": 0.8, "sd": 0.0, "n": 4}
    assert rows["specialists' vote"]["auc"] is None
    assert result["against_best"][CONSENSUS] == {
        "below": 1,
        "above": 1,
        "not_significant": 1,
        "untested": 1,
    }
    assert result["against_best"]["specialists' vote"]["untested"] == 4
    assert "A v1" not in result["against_best"]


def _study(index: int, arm: dict[str, Any], other: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run of a study; ``other`` is its variant's arm (by default one that moves a little per index)."""
    site = {
        "name": "site-a",
        "seed": REPEAT_SEED_STRIDE * index,
        "model": "t.resnet18.site-a v1",
        "best_epoch": 1,
        "val": {"balanced_accuracy": 0.7, "auc": 0.8},
        "training_set_digest": f"sha256:{index}",
        "training": {},
        "backbone": "resnet18",
        "image_size": 16,
        "epochs": 1,
        "shard": {"dataset": "syn", "split": "train", "range": [0, 1], "images": 30 + index,
                  "class_counts": [15, 15 + index]},
    }  # fmt: skip
    facts = {
        "library": {"source": "disjoint shard", "dataset": "syn", "split": "train", "range": [0, 1],
                    "images": 9, "class_counts": [4, 5], "source_digest": "sha256:11",
                    "same_digest_as_training_of": []},
        "evaluation": {"dataset": "syn", "split": "val", "range": [0, 1], "images": 8, "class_counts": [4, 4],
                       "shift": {}},
        "evaluation_n": 8,
        "evaluation_class_counts": [4, 4],
        "notes": [],
    }  # fmt: skip
    other = other or _arm(0.7, 0.6, 0.65 + index / 100, p=0.5)
    variant = {"name": "other", "title": "Other library", "description": "", "evidence_for": "",
               "not_evidence_for": "", **facts, **other}  # fmt: skip
    return {
        "study": "t",
        "title": "T",
        "description": "",
        "evidence_for": "",
        "not_evidence_for": "",
        "spec_yaml": "name: t\n",
        "task": {"id": "t", "labels": ["a", "b"], "modality": "m"},
        "seed": index,
        "datasets": {"syn": {"file": "syn.npz", "sha256": "sha256:00"}},
        "sites": [site],
        **facts,
        **arm,
        "variants": [variant],
        "seconds_per_step": {"train": 10.0 + index, "evaluate": 2.0},
    }  # fmt: skip


def test_with_repeats_keeps_the_first_repeat_on_top_and_aggregates_main_and_variants() -> None:
    runs = [_study(0, _arm(0.9, 0.8, 0.86, 0.01)), _study(1, _arm(0.8, 0.9, 0.92, 0.3))]
    result = with_repeats(runs)
    assert result["methods"] == runs[0]["methods"] and result["seed"] == 0
    assert [r["seed"] for r in result["repeats"]] == [0, 1]
    assert [r["sites"][0]["seed"] for r in result["repeats"]] == [0, REPEAT_SEED_STRIDE]
    assert [r["sites"][0]["images"] for r in result["repeats"]] == [30, 31]
    assert [r["seconds"] for r in result["repeats"]] == [12.0, 13.0]
    assert [r["repeat"] for r in result["per_repeat"]] == [1, 2]
    assert result["per_repeat"][1]["methods"] == runs[1]["methods"]
    assert result["per_repeat"][1]["consensus_weights"] == {"source": "fitted", "specialists": {"A v1": 0.5}}
    assert result["across_repeats"]["against_best"][CONSENSUS] == {
        "below": 1,
        "above": 0,
        "not_significant": 1,
        "untested": 0,
    }
    variant = result["variants"][0]
    assert variant["name"] == "other" and len(variant["per_repeat"]) == 2
    consensus = next(m for m in variant["across_repeats"]["methods"] if m["name"] == CONSENSUS)
    assert consensus["accuracy"]["mean"] == pytest.approx(0.655)

    report = study_markdown(result)
    assert "## Across 2 repeats (mean ± sd; the intervals are each repeat's)" in report
    assert f"| {CONSENSUS} | 0.890 ± 0.042 | 0.790 ± 0.042 | 0.900 ± 0.000 | 1 / 0 / 1 / 0 |" in report
    assert f"| {BEST} | 0.900 ± 0.000 | 0.800 ± 0.000 | 0.900 ± 0.000 | — |" in report
    assert (
        "| 2 | 1 | site-a 100 | B v1 0.900 (0.880–0.920) | 0.800 (0.780–0.820) | 0.920 (0.900–0.940) "
        in report
    )
    assert (
        "**Across repeats.** The consensus arbiter's accuracy was 0.890 ± 0.042 (mean ± sd over 2 repeats) "
        "against 0.900 ± 0.000 for the best specialist of each repeat" in report
    )
    assert (
        "significantly below the best specialist in 1 of 2 repeats and significantly above it in 0" in report
    )


def test_two_repeated_studies_compare_their_means_and_the_repeats_run_with_the_same_seeds() -> None:
    baseline = with_repeats([_study(0, _arm(0.9, 0.8, 0.86, 0.01)), _study(1, _arm(0.8, 0.9, 0.92, 0.3))])
    runs = [
        _study(0, _arm(0.9, 0.8, 0.85, 0.01, vote=0.70)),  # consensus -1 point, vote -10: dropped less
        _study(1, _arm(0.8, 0.9, 0.80, 0.01, vote=0.78)),  # consensus -12 points, vote -2: dropped more
    ]
    comparison = compare(baseline, with_repeats(runs))
    assert comparison["accuracy"]["consensus"] == pytest.approx(
        {"baseline": 0.89, "this": 0.825, "drop": 0.065}
    )
    assert comparison["accuracy"]["vote"] == pytest.approx({"baseline": 0.80, "this": 0.74, "drop": 0.06})
    assert comparison["accuracy"]["best specialist"] == pytest.approx(
        {"baseline": 0.9, "this": 0.9, "drop": 0.0}
    )
    assert comparison["repeats"] == {"paired": 2, "consensus_drop_smaller": 1}
    lines = comparison_lines(with_repeats(runs), baseline)
    assert lines[0].endswith("(same design, no biased site; mean accuracy across repeats):")
    assert lines[-1] == (
        "Accuracy changed by -6.5 points for the consensus and by -6.0 points for the majority vote: the "
        "collaboration's drop is NOT smaller than the vote's. Repeat by repeat, over the 2 repeats run with "
        "the same seeds in both studies, it was smaller in 1."
    )
    other_seed = with_repeats([runs[0], {**runs[1], "seed": 7}])
    assert compare(baseline, other_seed)["repeats"] == {"paired": 1, "consensus_drop_smaller": 1}
    # a study run once is compared on its one run, without repeats
    assert "repeats" not in compare(runs[0], runs[1])


def test_each_repeat_keeps_its_tests_against_the_vote() -> None:
    tested = _arm(0.9, 0.8, 0.86, 0.01)
    tested["statistics"]["against_vote"] = [{"method": CONSENSUS, "accuracy": {"p_value": 0.2}}]
    result = with_repeats([_study(0, tested), _study(1, _arm(0.8, 0.9, 0.92, 0.3))])
    assert result["per_repeat"][0]["statistics"]["against_vote"] == tested["statistics"]["against_vote"]
    assert result["per_repeat"][1]["statistics"]["against_vote"] == []


def test_a_variant_is_compared_with_the_baseline_variant_of_the_same_name() -> None:
    baseline = with_repeats([_study(0, _arm(0.9, 0.8, 0.86, 0.01)), _study(1, _arm(0.8, 0.9, 0.92, 0.3))])
    main = _arm(0.9, 0.8, 0.86, 0.01)  # the main arms do not move: only the variant has a drop
    runs = [  # the baseline's variant: consensus 0.65 and 0.66, vote 0.80
        _study(0, main, other=_arm(0.7, 0.6, 0.64, 0.5, vote=0.70)),  # consensus -1 point, vote -10
        _study(1, main, other=_arm(0.7, 0.6, 0.60, 0.5, vote=0.78)),  # consensus -6 points, vote -2
    ]
    result = with_repeats(runs)
    comparison = compare(baseline, result, "other")
    assert comparison["accuracy"]["consensus"] == pytest.approx(
        {"baseline": 0.655, "this": 0.62, "drop": 0.035}
    )
    assert comparison["accuracy"]["vote"] == pytest.approx({"baseline": 0.80, "this": 0.74, "drop": 0.06})
    assert comparison["repeats"] == {"paired": 2, "consensus_drop_smaller": 1}
    assert compare(baseline, result, "missing") is None
    assert comparison_lines(result, baseline, "missing") == []
    report = study_markdown(result, baseline)
    assert (
        "Accuracy against the same variant (`other`) of the study `t` (same design, no biased site; mean "
        "accuracy across repeats):" in report
    )
    assert (
        "Accuracy changed by -3.5 points for the consensus and by -6.0 points for the majority vote: the "
        "collaboration's drop is smaller than the vote's. Repeat by repeat, over the 2 repeats run with the "
        "same seeds in both studies, it was smaller in 1." in report
    )


def test_repeat_changes_the_shuffle_and_every_site_seed_only() -> None:
    sites = [site("site-a", 0.0, 0.5, seed=1), site("site-b", 0.5, 0.8, seed=2)]
    library = {"shard": {"dataset": "syn", "range": [0.8, 1.0]}}
    spec = parse_study(tiny_study(seed=5, repeats=3, sites=sites, library=library), Path("."))
    assert spec.repeat(0) == spec
    third = spec.repeat(2)
    assert third.seed == 7
    assert [s.seed for s in third.sites] == [1 + 2 * REPEAT_SEED_STRIDE, 2 + 2 * REPEAT_SEED_STRIDE]
    assert third.model_copy(update={"seed": 5, "sites": spec.sites}) == spec
    with pytest.raises(ValueError, match="repeat 3 of a study with 3"):
        spec.repeat(3)


def test_run_study_runs_each_repeat_in_its_own_home_and_writes_the_aggregate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repeat plumbing of run_study; each repeat's real flow is the e2e test's (one repeat)."""
    from hub.study import run

    spec = parse_study(tiny_study(repeats=2), tmp_path)
    calls: list[tuple[int, int, Path, Path]] = []
    announced: list[str] = []

    def one_run(repeat: Any, _text: str, out: Path, work: Path, announce: Any, _stop: Any) -> dict[str, Any]:
        index = len(calls)
        calls.append((repeat.seed, repeat.sites[0].seed, out, work))
        announce("registry: init", 1.0)
        return _study(index, _arm(0.9, 0.8, 0.86 + index / 100, 0.5))

    monkeypatch.setattr(run, "_run_once", one_run)
    out, staged = tmp_path / "out", tmp_path / "work" / "report"
    result = run.run_study(spec, "name: t\n", out, tmp_path / "work", lambda step, _s: announced.append(step))
    assert calls == [
        (0, 0, staged, tmp_path / "work" / "repeat-1"),
        (1, REPEAT_SEED_STRIDE, staged / "repeats" / "2", tmp_path / "work" / "repeat-2"),
    ]
    assert announced == ["repeat 1/2: registry: init", "repeat 2/2: registry: init"]
    written = json.loads((out / "study.json").read_text())
    assert written == json.loads(json.dumps(result))
    assert len(written["per_repeat"]) == 2 and written["across_repeats"]["repeats"] == 2
    assert "Across 2 repeats" in (out / "study.md").read_text()


def test_the_repeat_of_an_evaluation_folder_is_read_back_from_where_it_was_written() -> None:
    from hub.study.run import repeat_of, repeat_out

    out = Path("docs/studies/s")
    for index in range(3):
        for arm in ("", "variants/balanced-evaluation"):
            assert repeat_of((repeat_out(out, index) / arm).relative_to(out)) == index + 1


def test_a_study_that_fails_leaves_out_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Repeat 1 writes its evaluation, repeat 2 fails: --out keeps the last complete run's files."""
    from hub.study import run

    spec = parse_study(tiny_study(repeats=2), tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "evaluation.json").write_text("earlier run")
    (out / "study.json").write_text("earlier run")

    def one_run(repeat: Any, _text: str, where: Path, *_: Any) -> dict[str, Any]:
        if repeat.seed == 1:
            raise StudyError("step 'hub: evaluate' failed: exited with code 2")
        where.mkdir(parents=True)
        (where / "evaluation.json").write_text("this run")  # as gsco-hub evaluate --out writes it
        return _study(0, _arm(0.9, 0.8, 0.86, 0.5))

    monkeypatch.setattr(run, "_run_once", one_run)
    with pytest.raises(StudyError, match=r"^repeat 2/2: step 'hub: evaluate' failed"):
        run.run_study(spec, "name: t\n", out, tmp_path / "work", lambda *_: None)
    assert sorted(p.name for p in out.iterdir()) == ["evaluation.json", "study.json"]
    assert (out / "evaluation.json").read_text() == (out / "study.json").read_text() == "earlier run"
    assert (tmp_path / "work" / "report" / "evaluation.json").read_text() == "this run"  # kept for a look


def test_a_finished_study_replaces_the_files_of_its_earlier_run_in_out(tmp_path: Path) -> None:
    from hub.study.outputs import move_into

    staged, out = tmp_path / "work" / "report", tmp_path / "out"
    for folder, text in ((staged, "this run"), (out, "earlier run")):
        (folder / "repeats" / "2").mkdir(parents=True)
        (folder / "evaluation.json").write_text(text)
        (folder / "repeats" / "2" / "cases.npz").write_text(text)
    (out / "notes.txt").write_text("the operator's")
    move_into(staged, out)
    assert (
        (out / "evaluation.json").read_text()
        == (out / "repeats" / "2" / "cases.npz").read_text()
        == "this run"
    )
    assert (out / "notes.txt").read_text() == "the operator's"
    assert [p for p in staged.rglob("*") if p.is_file()] == []


def test_a_report_that_cannot_be_written_whole_leaves_out_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills while the third file is copied: nothing in --out changes, nothing is lost."""
    import errno
    import shutil

    from hub.study import outputs

    staged, out = tmp_path / "work" / "report", tmp_path / "out"
    for folder, text in ((staged, "this run"), (out, "earlier run")):
        folder.mkdir(parents=True)
        (folder / "evaluation.json").write_text(text)
        (folder / "study.json").write_text(text)
    (staged / "repeats" / "2").mkdir(parents=True)
    (staged / "repeats" / "2" / "cases.npz").write_text("this run")
    copies: list[str] = []
    copy = shutil.copyfile

    def copy_until_full(source: Path, target: Path) -> None:
        if len(copies) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        copies.append(Path(source).name)
        copy(source, target)

    monkeypatch.setattr(outputs.shutil, "copyfile", copy_until_full)
    with pytest.raises(StudyError) as caught:
        outputs.move_into(staged, out)
    assert copies == ["evaluation.json", "cases.npz"]  # sorted: the repeat's file came second
    full = "No space left on device"
    assert caught.value.message == f"could not write the study's report into --out {out}: {full}"
    assert caught.value.hint == f"--out is as it was; the finished report is in {staged}"
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["evaluation.json", "study.json"]
    assert (out / "evaluation.json").read_text() == (out / "study.json").read_text() == "earlier run"
    assert sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file()) == [
        "evaluation.json",
        "repeats/2/cases.npz",
        "study.json",
    ]


def test_jobs_run_the_repeats_at_once_and_keep_them_in_repeat_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.study import run

    spec = parse_study(tiny_study(repeats=2), tmp_path)
    both_running = threading.Barrier(2, timeout=10)
    second_done = threading.Event()

    def one_run(repeat: Any, *_: Any) -> dict[str, Any]:
        index = repeat.seed  # the study's seed is 0: repeat r shuffles with seed r
        both_running.wait()  # broken, and the study fails, unless both repeats run at once
        if index == 0:
            assert second_done.wait(10)  # the first repeat finishes last
        result = _study(index, _arm(0.9, 0.8, 0.86 + index / 100, 0.5))
        second_done.set()
        return result

    monkeypatch.setattr(run, "_run_once", one_run)
    result = run.run_study(spec, "name: t\n", tmp_path / "out", tmp_path / "work", lambda *_: None, jobs=2)
    assert [r["seed"] for r in result["repeats"]] == [0, 1]
    consensus = [
        next(m["accuracy"] for m in r["methods"] if m["kind"] == "consensus") for r in result["per_repeat"]
    ]
    assert consensus == [0.86, 0.87]


def _next_step(work: Path, announce: Any, stop: threading.Event, stopped: list[str]) -> None:
    """A repeat's next step, run by a real :class:`Steps`; its refusal goes into ``stopped``."""
    try:
        Steps({}, work / "logs", announce, stop=stop).run("site-a: export", "gsco-hub", "--help")
    except Stopped as error:
        stopped.append(str(error))
        raise


def test_the_first_repeat_to_fail_stops_the_others_before_their_next_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.study import run

    spec = parse_study(tiny_study(repeats=3), tmp_path)
    begun: list[int] = []
    stopped: list[str] = []

    def one_run(repeat: Any, _text: str, _out: Path, work: Path, announce: Any, stop: Any) -> dict[str, Any]:
        begun.append(repeat.seed)
        if repeat.seed == 1:
            raise StudyError("step 'site-a: train resnet18 16 px, 1 epoch(s)' failed: exited with code 3")
        assert stop.wait(10)  # repeat 1 is between two steps when repeat 2 fails
        _next_step(work, announce, stop, stopped)
        return _study(0, _arm(0.9, 0.8, 0.86, 0.5))

    monkeypatch.setattr(run, "_run_once", one_run)
    with pytest.raises(
        StudyError, match=r"^repeat 2/3: step 'site-a: train resnet18 16 px, 1 epoch\(s\)' failed"
    ):
        run.run_study(spec, "name: t\n", tmp_path / "out", tmp_path / "work", lambda *_: None, jobs=2)
    assert sorted(begun) == [0, 1]  # repeat 3 never began
    assert stopped == ["step 'site-a: export' not started: another repeat of the study failed"]  # repeat 1
    assert not (tmp_path / "work" / "repeat-1" / "logs").exists()  # the stopped step ran nothing
    assert not (tmp_path / "out" / "study.json").exists()


def test_repeats_that_fail_at_once_are_each_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two repeats' steps fail while both run: the first is the error, the other is in its hint."""
    from hub.study import run

    spec = parse_study(tiny_study(repeats=3), tmp_path)
    both_running = threading.Barrier(2, timeout=10)

    def one_run(repeat: Any, _text: str, _out: Path, work: Path, announce: Any, stop: Any) -> dict[str, Any]:
        both_running.wait()
        if repeat.seed == 1:
            assert stop.wait(10)  # repeat 2's step was running when repeat 1's failure stopped it
            raise StudyError("step 'site-b: train resnet18 16 px, 1 epoch(s)' failed: exited with code 9")
        raise StudyError("step 'site-a: export' failed: exited with code 3", hint="stderr ends with: boom")

    monkeypatch.setattr(run, "_run_once", one_run)
    with pytest.raises(StudyError) as raised:
        run.run_study(spec, "name: t\n", tmp_path / "out", tmp_path / "work", lambda *_: None, jobs=2)
    assert raised.value.message == "repeat 1/3: step 'site-a: export' failed: exited with code 3"
    assert raised.value.hint == (
        "stderr ends with: boom\n"
        "also failed: repeat 2/3: step 'site-b: train resnet18 16 px, 1 epoch(s)' failed: exited with code 9"
    )


def test_an_interrupt_while_the_repeats_run_stops_each_before_its_next_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.study import run

    spec = parse_study(tiny_study(repeats=3), tmp_path)
    in_flight = threading.Barrier(3, timeout=10)  # two repeats and the interrupted wait
    begun: list[int] = []
    stopped: list[str] = []

    def one_run(repeat: Any, _text: str, _out: Path, work: Path, announce: Any, stop: Any) -> dict[str, Any]:
        begun.append(repeat.seed)
        in_flight.wait()
        assert stop.wait(10)
        _next_step(work, announce, stop, stopped)
        return _study(0, _arm(0.9, 0.8, 0.86, 0.5))

    def interrupted(_futures: Any) -> None:
        in_flight.wait()
        raise KeyboardInterrupt  # as Ctrl-C does in the main thread while it waits

    monkeypatch.setattr(run, "_run_once", one_run)
    monkeypatch.setattr(run, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run.run_study(spec, "name: t\n", tmp_path / "out", tmp_path / "work", lambda *_: None, jobs=2)
    for thread in threading.enumerate():
        if thread.name.startswith("study-repeat"):
            thread.join(10)
    assert sorted(begun) == [0, 1]  # repeat 3 never began
    assert stopped == ["step 'site-a: export' not started: another repeat of the study failed"] * 2


def test_a_stopped_run_writes_its_shards_but_starts_no_step(tmp_path: Path) -> None:
    from hub.study import run

    write_synthetic_npz(tmp_path / "syn.npz", n_per_class=30, size=16, val_per_class=8)
    spec = parse_study(tiny_study(), tmp_path)
    stop = threading.Event()
    stop.set()
    announced: list[str] = []
    with pytest.raises(Stopped, match=r"^step 'registry: init' not started: another repeat"):
        run._run_once(
            spec, "", tmp_path / "out", tmp_path / "work", lambda step, _s: announced.append(step), stop
        )
    assert announced == ["shards written and checked for overlaps"]
    assert not (tmp_path / "work" / "logs").exists() and not (tmp_path / "out").exists()


def _with_subset(arm: dict[str, Any], consensus_right: int, best_right: int, p: float) -> dict[str, Any]:
    """``arm`` with a 20-image disagreement subset (reference A v1) as `gsco-hub evaluate` writes it."""
    rows = [
        {"name": "A v1", "kind": "specialist", "correct": best_right, "accuracy": best_right / 20},
        {"name": CONSENSUS, "kind": "consensus", "correct": consensus_right,
         "accuracy": consensus_right / 20},
    ]  # fmt: skip
    test = {"difference": (consensus_right - best_right) / 20, "p_value": p}
    comparisons = [{"method": CONSENSUS, "kind": "consensus", "accuracy": test}]
    block = {"status": "analysed", "n": 20, "reference": "A v1", "methods": rows, "comparisons": comparisons}
    return {**arm, "disagreement": block}


def test_aggregate_counts_the_repeats_where_the_consensus_beats_the_best_where_specialists_disagree() -> None:
    arms = [
        _with_subset(_arm(0.9, 0.8, 0.9, 0.5), 16, 10, 0.004),  # above
        _with_subset(_arm(0.9, 0.8, 0.9, 0.5), 11, 10, 0.8),  # not significant
        _with_subset(_arm(0.9, 0.8, 0.9, 0.5), 4, 10, 0.01),  # below
    ]
    subset = aggregate(arms)["disagreement"]
    assert subset["counts"] == {"below": 1, "above": 1, "not_significant": 1, "untested": 0}
    assert subset["consensus"]["mean"] == pytest.approx(31 / 60)
    assert subset["best"] == {"mean": 0.5, "sd": 0.0, "n": 3}
    assert subset["n"]["mean"] == 20
    assert aggregate([arms[0], _arm(0.9, 0.8, 0.9, 0.5)])["disagreement"] is None  # a repeat without it


def _named(b_difference: float, p: float) -> dict[str, Any]:
    """A recipe-study arm: A named as the reference, B compared with it (its McNemar p given)."""
    arm = _arm(0.80, 0.80 + b_difference, 0.80, p=None)
    arm["statistics"] = {
        "reference": "A v1",
        "reference_rule": NAMED_REFERENCE_RULE,
        "comparisons": [{"method": "B v1", "accuracy": {"difference": b_difference, "p_value": p}}],
    }
    return arm


def test_aggregate_counts_each_specialist_against_a_named_reference_across_repeats() -> None:
    arms = [_named(0.04, 0.001), _named(0.02, 0.30), _named(-0.03, 0.02)]
    block = aggregate(arms)["against_reference"]
    assert block["reference"] == "A v1"
    assert list(block["specialists"]) == ["B v1"]  # the reference is not compared with itself
    row = block["specialists"]["B v1"]
    assert row["counts"] == {"below": 1, "above": 1, "not_significant": 1, "untested": 0}
    assert row["difference"]["mean"] == pytest.approx(0.01)
    assert row["difference"]["sd"] == pytest.approx(math.sqrt((0.03**2 + 0.01**2 + 0.04**2) / 2))
    line = reference_across_repeats(aggregate(arms))
    assert line == (
        "Accuracy against the reference (A v1), mean ± sd of the difference over the repeats "
        "(McNemar, p < 0.05): B v1 +1.0 ± 3.6 points, significantly above in 1 of 3 repeats and below in 1."
    )
    assert aggregate(arms)["test"] == "McNemar on accuracy, against the named reference"
    assert "significantly below the reference in 0 of 3 repeats" in repeats_verdict(aggregate(arms))


def test_without_a_named_reference_there_is_no_reference_block() -> None:
    arms = [_arm(0.90, 0.80, 0.86, p=0.01), _arm(0.70, 0.94, 0.97, p=0.03)]
    assert aggregate(arms)["against_reference"] is None
    assert reference_across_repeats(aggregate(arms)) is None
    assert "significantly below the best specialist in 1 of 2 repeats" in repeats_verdict(aggregate(arms))


def test_a_repeated_recipe_study_counts_each_specialist_against_the_reference_in_its_tables() -> None:
    runs = [
        _study(i, _named(diff, p)) for i, (diff, p) in enumerate([(0.04, 0.001), (0.02, 0.30), (-0.03, 0.02)])
    ]
    report = study_markdown(with_repeats(runs))
    assert "untested against the reference |" in report
    assert "| B v1 | 0.810 ± 0.036 | 0.710 ± 0.036 | 0.900 ± 0.000 | 1 / 1 / 1 / 0 |" in report
    assert "consensus ΔACC vs reference, points (CI), McNemar p |" in report
    assert "**Against the reference across repeats.** Accuracy against the reference (A v1)" in report


def test_the_busy_threads_note_counts_a_sites_own_thread_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub.cli import study_cmd

    sites = [site("site-a", 0.0, 0.5), site("site-b", 0.0, 0.5, training={"num_threads": 3})]
    spec = parse_study(tiny_study(repeats=2, threads=2, sites=sites), tmp_path)
    monkeypatch.setattr(study_cmd, "_cores", lambda: 6)
    study_cmd._note_jobs(2, spec)
    assert capsys.readouterr().err == ""  # 6 busy threads fit 6 cores
    monkeypatch.setattr(study_cmd, "_cores", lambda: 5)
    study_cmd._note_jobs(2, spec)
    assert capsys.readouterr().err == (
        "note: 2 repeat(s) x 3 thread(s) = 6 busy threads on 5 CPU core(s): steps will be slower, "
        "the results the same\n"
    )
