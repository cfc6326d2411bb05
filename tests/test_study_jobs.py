"""bench/study_jobs.py: what counts as the same results of two runs of a study."""

from __future__ import annotations

import json
from pathlib import Path

from bench.study_jobs import compare_outputs, pool_bound


def _write(out: Path, cases: bytes, seconds: float, accuracy: float = 0.9) -> None:
    (out / "repeats" / "2").mkdir(parents=True)
    (out / "cases.npz").write_bytes(cases)
    (out / "repeats" / "2" / "evaluation.json").write_text('{"accuracy": 0.8}')
    facts = {
        "methods": [{"name": "consensus", "accuracy": accuracy}],
        "seconds_per_step": {"registry: init": seconds},
        "repeats": [{"repeat": 1, "seed": 0, "seconds": seconds * 10}],
    }
    (out / "study.json").write_text(json.dumps(facts))
    (out / "study.md").write_text(f"registry: init took {seconds} s")


def test_runs_that_differ_only_in_their_timings_are_the_same(tmp_path: Path) -> None:
    _write(tmp_path / "one", b"cases", seconds=3.1)
    _write(tmp_path / "many", b"cases", seconds=5.7)
    assert compare_outputs(tmp_path / "one", tmp_path / "many") == (3, [])


def test_a_changed_byte_a_changed_score_or_a_missing_file_differs(tmp_path: Path) -> None:
    _write(tmp_path / "one", b"cases", seconds=3.1)
    _write(tmp_path / "many", b"casez", seconds=3.1, accuracy=0.91)
    (tmp_path / "many" / "repeats" / "2" / "evaluation.json").unlink()
    assert compare_outputs(tmp_path / "one", tmp_path / "many") == (
        3,
        ["cases.npz", "repeats/2/evaluation.json (one side only)", "study.json"],
    )


def test_the_pool_bound_hands_the_repeats_out_in_order_to_the_first_free_job() -> None:
    # repeats 1 and 2 start together; repeat 3 follows repeat 1, the first to finish
    assert pool_bound([198.0, 246.0, 252.0], 2) == 450.0
    assert pool_bound([300.0, 100.0, 100.0], 2) == 300.0  # repeats 2 and 3 share one job
    assert pool_bound([198.0, 246.0, 252.0], 1) == 696.0
