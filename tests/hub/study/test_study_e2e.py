"""A tiny study through the real CLIs (subprocesses, fresh home) on generated data.

One site, 1 epoch at 16 px, a case library that is the site's own training shard plus a
variant with a disjoint library: the hub must refuse to calibrate on the first and say so.
Two repeats, run at once (``--jobs``), each in its own home.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bench import arbiter_alternatives as alternatives
from hub.cli.main import app
from hub.evaluation.case_inputs import load_case_inputs
from hub.study.spec import REPEAT_SEED_STRIDE
from site_agent.data.synthetic import write_synthetic_npz

STUDY = {
    "name": "tiny",
    "title": "Tiny synthetic study",
    "task": {"id": "tiny", "labels": ["a", "b"], "modality": "synthetic pattern"},
    "datasets": {"syn": "syn.npz"},
    "approval_policy": "policy.yaml",
    "repeats": 2,
    "sites": [
        {
            "name": "site-a",
            "backbone": "resnet18",
            "image_size": 16,
            "epochs": 1,
            "shard": {"dataset": "syn", "range": [0.0, 0.6]},
            "training": {"batch_size": 16},
        },
    ],  # fmt: skip
    "library": {"site": "site-a"},
    "evaluation": {"shard": {"dataset": "syn", "split": "val"}},
    "reference_site": "site-a",
    "variants": [
        {
            "name": "disjoint",
            "title": "Disjoint library",
            "library": {"shard": {"dataset": "syn", "range": [0.6, 1.0]}},
        },
    ],  # fmt: skip
}


@pytest.mark.slow
def test_tiny_study_runs_the_real_flow_and_writes_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_synthetic_npz(tmp_path / "syn.npz", n_per_class=30, size=16, val_per_class=8)
    # a 1-epoch model on 36 images may sit below the default floor: the test is about the flow
    (tmp_path / "policy.yaml").write_text("checks:\n  metric_floor: false\n")
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(STUDY))
    out = tmp_path / "out"
    monkeypatch.setattr("hub.cli.study_cmd._cores", lambda: 1)
    result = CliRunner().invoke(
        app,
        [
            "study",
            str(tmp_path / "study.yaml"),
            "--out",
            str(out),
            "--work",
            str(tmp_path / "work"),
            "--jobs",
            "3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "note: --jobs 3, but the study has 2 repeat(s): 2 at a time" in result.stderr
    assert "note: 2 repeat(s) x 1 thread(s) = 2 busy threads on 1 CPU core(s)" in result.stderr
    printed = json.loads(result.stdout)
    for name in ("evaluation.json", "evaluation.md", "evaluation.png", "study.json", "study.md"):
        assert (out / name).is_file(), name
    assert (out / "variants" / "disjoint" / "evaluation.json").is_file()
    assert not (tmp_path / "work").exists()  # removed after a successful run without --keep-work

    study = json.loads((out / "study.json").read_text())
    assert printed["methods"] == study["methods"]
    site = study["sites"][0]
    assert site["shard"]["images"] == 36 and site["shard"]["class_counts"] == [15, 21]  # seeded shuffle
    assert site["model"] == "tiny.resnet18.site-a v1"
    assert site["training_set_digest"].startswith("sha256:")
    kinds = [m["kind"] for m in study["methods"]]
    assert kinds == ["specialist", "vote", "rad", "consensus", "ablation"]
    # the library is the site's own training file: same digest, the hub refuses to fit on it
    assert study["library"]["same_digest_as_training_of"] == ["site-a"]
    assert study["consensus_weights"]["source"].startswith("card (library overlaps training data of")
    assert study["statistics"]["reference"] == site["model"]  # CIs and paired tests are carried over
    # the reference site was named: every arm's evaluation ran with --reference
    assert study["statistics"]["reference_rule"] == "named before the evaluation (`--reference`)"
    assert study["variants"][0]["statistics"]["reference_rule"] == study["statistics"]["reference_rule"]
    assert study["methods"][0]["accuracy_ci"] is not None
    disjoint = study["variants"][0]
    assert disjoint["library"]["same_digest_as_training_of"] == []
    assert disjoint["library"]["images"] == 24 and disjoint["evaluation"]["images"] == 16
    assert "overlaps training data" not in disjoint["consensus_weights"]["source"]
    # each evaluation's per-case inputs lie beside it; only a calibrated arm has calibration cases
    main_cases = load_case_inputs(out / "cases.npz")
    assert main_cases.calibration is None and main_cases.model.source == study["consensus_weights"]["source"]
    disjoint_cases = load_case_inputs(out / "variants" / "disjoint" / "cases.npz")
    assert disjoint_cases.calibration is not None and disjoint_cases.calibration.labels.shape == (24,)
    assert alternatives.drift(disjoint_cases) is None  # the replay gives the served weights and labels
    for cases, arm in ((main_cases, study), (disjoint_cases, disjoint)):
        consensus = next(m for m in arm["methods"] if m["kind"] == "consensus")
        right = cases.consensus.argmax(axis=1) == cases.evaluation.labels
        assert cases.evaluation.labels.shape == (16,) and right.mean() == consensus["accuracy"]
    # the second repeat ran in its own home, on its own shuffle and seeds
    assert [r["seed"] for r in study["repeats"]] == [0, 1]
    second = study["repeats"][1]["sites"][0]
    assert second["seed"] == REPEAT_SEED_STRIDE
    assert second["training_set_digest"] != site["training_set_digest"]
    second_cases = load_case_inputs(out / "repeats" / "2" / "cases.npz")
    second_consensus = next(m for m in study["per_repeat"][1]["methods"] if m["kind"] == "consensus")
    right = second_cases.consensus.argmax(axis=1) == second_cases.evaluation.labels
    assert right.mean() == second_consensus["accuracy"]
    assert (out / "repeats" / "2" / "variants" / "disjoint" / "evaluation.json").is_file()
    report = (out / "study.md").read_text()
    assert report.startswith("# Tiny synthetic study\n")
    assert study["environment"]["python"] == platform.python_version()
    assert f"Environment: Python {platform.python_version()}, torch " in report
    assert "**Verdict, repeat 1 of 2.** The consensus arbiter reached accuracy" in report
    assert "**Across repeats.** " in report
    assert "# Disjoint library" in report and "```yaml" in report
    # the evaluation's disagreement subset is carried over: one served specialist, so no subset
    assert study["disagreement"]["status"] == "no disagreement"
    assert "Only one specialist was served: there is no disagreement subset." in report
