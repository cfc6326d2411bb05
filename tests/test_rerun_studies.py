"""bench/rerun_studies.py: every study reruns after the one it compares with; --only renders nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.render_results import ORDER
from bench.rerun_studies import check_order, compared_with
from tests.hub.study.specs import tiny_study

ROOT = Path(__file__).resolve().parents[1]


def test_the_order_is_planned_from_the_study_files_without_their_data(tmp_path: Path) -> None:
    for name, twin in (("twin", None), ("biased", "twin")):
        (tmp_path / name).mkdir()
        study = {**tiny_study(name=name), "datasets": {"syn": "../../nowhere/syn.npz"}}
        if twin:
            study["compare_with"] = f"../{twin}/study.json"
        (tmp_path / name / "study.yaml").write_text(yaml.safe_dump(study))
    assert compared_with("biased", tmp_path) == "twin"
    check_order(("twin", "biased"), tmp_path)
    with pytest.raises(SystemExit, match="biased compares with twin, which does not come before"):
        check_order(("biased", "twin"), tmp_path)


def test_each_shipped_study_comes_after_the_study_it_compares_with() -> None:
    assert compared_with("biased-specialist") == "pneumonia"
    assert compared_with("pneumonia") is None
    check_order(ORDER)
    swapped = ("biased-specialist", "pneumonia")
    with pytest.raises(
        SystemExit, match="biased-specialist compares with pneumonia, which does not come before"
    ):
        check_order(swapped)


def _dry_run(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "bench/rerun_studies.py", "--dry-run", *args],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.splitlines()


def test_a_full_rerun_runs_every_study_in_order_then_both_renderers() -> None:
    lines = _dry_run("--jobs", "3")
    assert lines[: len(ORDER)] == [
        f"$ gsco-hub study docs/studies/{name}/study.yaml --out docs/studies/{name} --jobs 3"
        for name in ORDER
    ]
    assert [line.split()[-2:] for line in lines[len(ORDER) :]] == [
        ["bench/render_results.py", "--write"],
        ["bench/arbiter_alternatives.py", "--write-docs"],
    ]


def test_a_partial_rerun_runs_the_named_studies_in_order_and_renders_nothing() -> None:
    lines = _dry_run("--only", "biased-specialist", "pneumonia")
    assert lines == [
        "$ gsco-hub study docs/studies/pneumonia/study.yaml --out docs/studies/pneumonia --jobs 1",
        "$ gsco-hub study docs/studies/biased-specialist/study.yaml --out docs/studies/biased-specialist"
        " --jobs 1",
        "results.md not regenerated (--only): render it once every study has rerun on this machine",
    ]
