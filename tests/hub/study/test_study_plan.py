"""The study file, its shards and the up-front overlap refusal (no training: fast)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from gsco_common.errors import ConfigError, DataError
from hub.cli.main import app
from hub.study.outputs import check_out
from hub.study.plan import plan_shards
from hub.study.shards import apply_shift, select
from hub.study.spec import ShardSpec, ShiftSpec, load_study, parse_study
from site_agent.data.synthetic import write_synthetic_npz
from tests.damaged_npz import damaged_split
from tests.hub.study.specs import site, tiny_study


@pytest.fixture(scope="module")
def syn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("study")
    write_synthetic_npz(folder / "syn.npz", n_per_class=50, size=16, val_per_class=10)
    return folder


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (
            {
                "sites": [
                    {
                        "name": "site-a",
                        "backbone": "resnet18",
                        "image_size": 4,
                        "epochs": 1,
                        "shard": {"dataset": "syn"},
                    }
                ]
            },
            "sites.0.image_size",
        ),  # fmt: skip
        ({"library": {"shard": {"dataset": "syn", "range": [0.6, 0.2]}}}, "library.shard.range"),
        ({"evaluation": {"shard": {"dataset": "other"}}}, "evaluation.shard.dataset"),
        ({"library": {}}, "library"),
        ({"library": {"site": "site-z"}}, "library.site"),
        (
            {"evaluation": {"shard": {"dataset": "syn", "label_skew": {"c": 0.5}}}},
            "evaluation.shard.label_skew",
        ),
        ({"unknown_key": 1}, "unknown_key"),
        ({"reference_site": "site-z"}, "reference_site"),
        ({"reference_site": "site-a", "compare_with": "other/study.json"}, "reference_site"),
        ({"task": {"id": "tiny", "labels": ["a"], "modality": "x"}}, "task.labels"),
        ({"task": {"id": "tiny", "labels": ["a", "a"], "modality": "x"}}, "task.labels"),
        ({"task": {"id": "tiny", "labels": ["a,b", "c"], "modality": "x"}}, "task.labels"),
        ({"task": {"id": "tiny", "labels": ["a", " b"], "modality": "x"}}, "task.labels"),
        ({"task": {"id": "tiny", "labels": ["a", "b"], "modality": "x" * 201}}, "task.modality"),
        ({"seed": -1}, "seed"),
        ({"sites": [{**site("site-a", 0.0, 0.5), "seed": -1}]}, "sites.0.seed"),
    ],
)
def test_validation_errors_name_the_key(change: dict[str, Any], key: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_study(tiny_study(**change), tmp_path)
    assert caught.value.message.startswith(f"{key}:"), caught.value.message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backbone": "resnet1800"}, "sites.1.backbone: unknown backbone 'resnet1800'"),
        ({"training": {"lr": 0}}, "sites.1.training.lr: Input should be greater than 0"),
        ({"training": {"lr_typo": 0.1}}, "sites.1.training.lr_typo: Extra inputs are not permitted"),
        ({"image_size": 12}, "sites.1.image_size: Input should be greater than or equal to 16"),
        ({"training": {"recipe": "typo"}}, "sites.1.training.recipe 'typo' is unknown"),
        (
            {"training": {"augmentation": {"hflip": True}}},
            "sites.1.training.augmentation.hflip is on, but task.modality 'paediatric chest X-ray' is a",
        ),
        ({"training": {"tta": "hflip"}}, "sites.1.training.tta: hflip is not allowed for modality"),
    ],
)
def test_every_sites_backbone_and_training_are_checked_before_any_trains(
    change: dict[str, Any], message: str, tmp_path: Path
) -> None:
    """As `site-agent train` checks them, for a chest X-ray task (no mirrored images)."""
    sites = [site("site-a", 0.0, 0.25), site("site-b", 0.25, 0.5, **change)]
    task = {"id": "tiny", "labels": ["a", "b"], "modality": "paediatric chest X-ray"}
    with pytest.raises(ConfigError) as caught:
        parse_study(tiny_study(sites=sites, task=task), tmp_path)
    assert caught.value.message.startswith(message), caught.value.message
    assert parse_study(tiny_study(sites=sites[:1], task=task), tmp_path).sites[0].name == "site-a"


def _write_split(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    np.savez(path, train_images=images, train_labels=labels)
    return path


def test_a_bad_data_set_is_named_in_one_error(syn: Path, tmp_path: Path) -> None:
    images = np.zeros((4, 8, 8), dtype=np.uint8)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes((syn / "syn.npz").read_bytes()[:200])
    single = tmp_path / "single.npy"
    np.save(single, images)
    no_labels = tmp_path / "no-labels.npz"
    np.savez(no_labels, train_images=images)
    cases = [
        (truncated, "truncated.npz cannot be read as an .npz data set"),
        (single, "single.npy cannot be read as an .npz data set"),
        (no_labels, "no-labels.npz has no train_labels"),
        (damaged_split(tmp_path / "damaged.npz"), "damaged.npz cannot be read as an .npz data set"),
        (
            _write_split(tmp_path / "short.npz", images, np.zeros(3)),
            "short.npz: train has 4 images but 3 labels",
        ),
        (
            _write_split(tmp_path / "negative.npz", images, np.array([0, 1, -1, 0])),
            "negative.npz: train labels must be indices 0..1 of the task's labels, found -1..1",
        ),
        (
            _write_split(tmp_path / "three.npz", images, np.array([0, 1, 2, 0])),
            "three.npz: train labels must be indices 0..1 of the task's labels, found 0..2",
        ),
    ]
    for path, message in cases:
        spec = parse_study(tiny_study(datasets={"syn": str(path)}), tmp_path)
        with pytest.raises(DataError) as caught:
            plan_shards(spec)
        assert caught.value.message.startswith(message), caught.value.message


def test_relative_paths_resolve_against_the_study_file(syn: Path) -> None:
    spec = parse_study(tiny_study(), syn)
    assert spec.datasets["syn"] == syn / "syn.npz"


def test_missing_dataset_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("name: tiny\n")
    with pytest.raises(ConfigError, match="^title: Field required"):
        load_study(tmp_path / "s.yaml")
    import yaml

    (tmp_path / "s.yaml").write_text(yaml.safe_dump(tiny_study()))
    with pytest.raises(ConfigError, match="^datasets.syn: no file at"):
        load_study(tmp_path / "s.yaml")


def test_cli_reports_a_bad_study_file_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("name: tiny\ntitle: t\nsites: []\n")
    result = CliRunner().invoke(app, ["study", str(tmp_path / "s.yaml"), "--work", str(tmp_path / "w")])
    assert result.exit_code == 2
    assert "error[GSCO-100]: task: Field required" in result.output
    assert "Traceback" not in result.output


def _report(study: str) -> dict[str, Any]:
    return {"study": study, "spec_yaml": "", "task": {}, "sites": [], "methods": []}


def test_out_may_hold_an_earlier_run_of_the_same_study_only(syn: Path, tmp_path: Path) -> None:
    variant = {"name": "again", "title": "Again", "evaluation": {"shard": {"dataset": "syn", "split": "val"}}}
    spec = parse_study(tiny_study(repeats=2, variants=[variant]), syn)
    out = tmp_path / "out"
    check_out(spec, out)  # not there yet
    (out / "variants" / "again").mkdir(parents=True)
    (out / "repeats" / "2" / "variants" / "again").mkdir(parents=True)
    (out / "variants" / ".DS_Store").write_text("")  # a file is no run's output
    (out / "study.json").write_text(json.dumps(_report("tiny")))
    check_out(spec, out)  # a rerun into its own folder
    check_out(spec, Path(os.path.relpath(out)))
    (out / "repeats" / "3").mkdir()
    with pytest.raises(ConfigError, match="holds repeats/3, which this study does not have"):
        check_out(spec, out)
    (out / "repeats" / "3").rmdir()
    (out / "study.json").write_text('{"study": "tin')
    unreadable = "--out holds a study.json not of 'tiny': .*not readable as a study report"
    with pytest.raises(ConfigError, match=unreadable):
        check_out(spec, out)


def test_the_cli_refuses_outputs_and_inputs_that_would_fail_or_mix_studies_before_any_work(
    syn: Path, tmp_path: Path
) -> None:
    import yaml

    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(tiny_study(datasets={"syn": str(syn / "syn.npz")})))
    a_file = tmp_path / "a-file"
    a_file.write_text("kept")
    other = tmp_path / "other"
    other.mkdir()
    (other / "study.json").write_text(json.dumps(_report("breast")))
    stale = tmp_path / "stale"
    (stale / "variants" / "old-variant").mkdir(parents=True)
    work = tmp_path / "work"

    def refused(*args: str) -> str:
        result = CliRunner().invoke(app, ["study", *args])
        assert result.exit_code == ConfigError.exit_code and "Traceback" not in result.output
        return result.output

    assert "--out must name a folder: 'a-file' is a file" in refused(str(study), "--out", str(a_file))
    assert "--work must name a folder: 'a-file' is a file" in refused(str(study), "--work", str(a_file / "w"))
    assert f"--out {other} holds the report of 'breast', not of 'tiny'" in refused(
        str(study), "--out", str(other)
    )
    assert f"--out {stale} holds variants/old-variant, which this study does not have" in refused(
        str(study), "--out", str(stale), "--work", str(work)
    )
    broken = tmp_path / "broken.json"
    broken.write_text('{"study": "pneu')
    (tmp_path / "compare.yaml").write_text(
        yaml.safe_dump(tiny_study(datasets={"syn": str(syn / "syn.npz")}, compare_with=str(broken)))
    )
    assert f"compare_with: {broken}: not readable as a study report" in refused(
        str(tmp_path / "compare.yaml"), "--work", str(work)
    )
    (tmp_path / "folder.yaml").write_text(
        yaml.safe_dump(tiny_study(datasets={"syn": str(syn / "syn.npz")}, compare_with=str(other)))
    )
    folder_named = refused(str(tmp_path / "folder.yaml"), "--work", str(work))
    assert f"compare_with: {other} is not a file" in folder_named
    (tmp_path / "latin1.yaml").write_bytes("name: tiny\ntitle: caf\xe9\n".encode("latin-1"))
    assert "latin1.yaml is not UTF-8 text" in refused(str(tmp_path / "latin1.yaml"), "--work", str(work))
    assert a_file.read_text() == "kept" and not work.exists()
    assert sorted(p.name for p in other.iterdir()) == ["study.json"]


def test_library_overlapping_a_site_is_refused_up_front(syn: Path) -> None:
    spec = parse_study(tiny_study(library={"shard": {"dataset": "syn", "range": [0.4, 1.0]}}), syn)
    with pytest.raises(ConfigError) as caught:
        plan_shards(spec)
    # 10 % of the 100 shuffled training images lie in both [0, 0.5) and [0.4, 1.0)
    assert caught.value.message.startswith("library.shard shares 10 images with sites.0.shard")


def test_evaluation_overlapping_training_is_refused(syn: Path) -> None:
    spec = parse_study(
        tiny_study(evaluation={"shard": {"dataset": "syn", "split": "train", "range": [0.9, 1.0]}}), syn
    )
    with pytest.raises(ConfigError, match="^evaluation.shard shares 10 images with library.shard"):
        plan_shards(spec)


def test_disjoint_plan_and_the_deliberate_site_library(syn: Path) -> None:
    shards = plan_shards(parse_study(tiny_study(), syn))
    assert shards.sites["site-a"].indices.size == 50 and shards.main.library.indices.size == 50
    assert np.intersect1d(shards.sites["site-a"].indices, shards.main.library.indices).size == 0
    assert shards.main.evaluation.indices.size == 20
    own = plan_shards(parse_study(tiny_study(library={"site": "site-a"}), syn))
    assert own.main.library is own.sites["site-a"]


def test_a_variant_draws_the_same_images_wherever_the_study_file_lists_it(syn: Path) -> None:
    balanced = {"name": "balanced", "title": "B", "evaluation": {"shard": {"dataset": "syn", "split": "val",
                "label_skew": {"b": 0.5}, "max_images": 8}}}  # fmt: skip
    other = {"name": "other", "title": "O", "library": {"site": "site-a"}}
    first = plan_shards(parse_study(tiny_study(variants=[balanced, other]), syn))
    second = plan_shards(parse_study(tiny_study(variants=[other, balanced]), syn))
    drawn = [next(a for a in shards.arms if a.name == "balanced").evaluation for shards in (first, second)]
    assert drawn[0].key == drawn[1].key == "variants.balanced.evaluation.shard"
    assert drawn[0].class_counts(2) == [4, 4]
    assert np.array_equal(drawn[0].indices, drawn[1].indices)


def test_label_skew_and_max_images_give_known_counts() -> None:
    labels = np.repeat([0, 1], 100)
    skewed = select("s", ShardSpec(dataset="d", label_skew={"b": 0.9}), labels, ("a", "b"), seed=0)
    assert skewed.class_counts(2) == [11, 100]  # all 100 "b", 0.1 / 0.9 * 100 = 11 "a"
    capped = select("s", ShardSpec(dataset="d", max_images=20), labels, ("a", "b"), seed=0)
    assert capped.class_counts(2) == [10, 10]
    again = select("s", ShardSpec(dataset="d", label_skew={"b": 0.9}), labels, ("a", "b"), seed=0)
    assert np.array_equal(again.indices, skewed.indices)


def test_a_shard_with_one_class_is_refused() -> None:
    labels = np.repeat([0, 1], [2, 200])
    with pytest.raises(ConfigError, match="^s: the shard holds"):
        select("s", ShardSpec(dataset="d", range=(0.0, 0.005)), labels, ("a", "b"), seed=0)


def test_shift_known_answers() -> None:
    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4) * 7
    assert apply_shift(images, ShiftSpec(), seed=0) is images
    down = apply_shift(images, ShiftSpec(downsample=2), seed=0)
    # each 2x2 block becomes its mean: block (0, 0) of image 0 holds 0, 7, 28, 35 -> 17.5 -> 18
    assert down[0, 0, 0] == down[0, 1, 1] == 18
    gamma = apply_shift(np.array([[[0, 255, 64]]], dtype=np.uint8), ShiftSpec(gamma=2.0), seed=0)
    assert gamma.tolist() == [[[0, 255, 16]]]  # (64 / 255) ** 2 * 255 = 16.06
