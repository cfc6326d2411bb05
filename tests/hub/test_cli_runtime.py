"""`gsco-hub cases import`, `diagnose` and `evaluate` against a real registry and bundles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from bench import arbiter_alternatives as alternatives
from gsco_common.errors import ConfigError, DataError
from hub.cli.main import app
from hub.evaluation.case_inputs import load_case_inputs
from hub.evaluation.evaluate import WITHOUT_COMPETENCE
from registry.bundle.provenance import source_digest
from tests.damaged_npz import write_damaged_npz
from tests.damaged_png import DAMAGED_PNG
from tests.gsco_runtime.chat_server import ChatServer, start_chat_server
from tests.gsco_runtime.world import World
from tests.site_bundle import SiteBundle, make_real_world, publish_real

runner = CliRunner()
UNREACHABLE = "postgresql+psycopg2://hub@127.0.0.1:9/mlflow"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, real_specialists: tuple[SiteBundle, ...]) -> World:
    return make_real_world(tmp_path_factory.mktemp("cli-world"), real_specialists)


@pytest.fixture(scope="module")
def task(world: World, real_specialists: tuple[SiteBundle, ...]) -> str:
    """Two of the real specialists, approved."""
    task_id = world.new_task()
    publish_real(world, task_id, real_specialists[0])
    publish_real(world, task_id, real_specialists[1])
    return task_id


@pytest.fixture(scope="module")
def cases_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("cases") / "cases.npz"
    np.savez(
        path,
        train_images=rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        train_labels=(np.arange(30) % 2).reshape(-1, 1),
        val_images=rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        val_labels=(np.arange(12) % 2).reshape(-1, 1),
    )
    return path


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "query.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def server() -> Iterator[ChatServer]:
    state, http = start_chat_server()
    yield state
    http.shutdown()


def _hub(world: World, *args: str) -> list[str]:
    return ["--home", str(world.config.home), *args]


def _import(world: World, task: str, cases_npz: Path) -> None:
    result = runner.invoke(
        app, _hub(world, "cases", "import", "--task", task, "--data", str(cases_npz), "--json")
    )
    assert result.exit_code == 0, result.output


def _import_and_evaluate(world: World, task: str, cases_npz: Path, *flags: str) -> list[str]:
    """Import the cases, then the arguments of `evaluate` on their validation split with ``flags``."""
    _import(world, task, cases_npz)
    return _hub(world, "evaluate", "--task", task, "--data", str(cases_npz), "--split", "val", *flags)


def test_cases_import_takes_labels_from_the_registry(world: World, task: str, cases_npz: Path) -> None:
    args = _hub(world, "cases", "import", "--task", task, "--data", str(cases_npz), "--json")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["cases"] == 30 and summary["class_counts"] == {"normal": 15, "pneumonia": 15}
    assert (world.config.home / "hub" / "cases" / task / "cases.json").is_file()

    wrong = runner.invoke(app, [*args, "--labels", "benign,malignant"])
    assert wrong.exit_code == 2 and "error[GSCO-100]" in wrong.stderr
    unknown = runner.invoke(app, _hub(world, "cases", "import", "--task", "nope", "--data", str(cases_npz)))
    assert unknown.exit_code == 2 and "no task 'nope'" in unknown.stderr


def test_diagnose_prints_the_decision(world: World, task: str, cases_npz: Path, image: Path) -> None:
    _import(world, task, cases_npz)
    text = runner.invoke(app, _hub(world, "diagnose", str(image), "--task", task))
    assert text.exit_code == 0, text.output
    assert "AI generated, not for clinical use" in text.stdout and "no generalist" in text.stdout
    result = runner.invoke(app, _hub(world, "diagnose", str(image), "--task", task, "--json"))
    payload = json.loads(result.stdout)
    decision = payload["decision"]
    assert decision["arbiter"] == "consensus (no generalist)" and len(decision["specialists"]) == 2
    assert len(decision["retrieved"]) == 10 and payload["runtime"]["registry_reachable"] is True

    no_generalist = runner.invoke(app, _hub(world, "diagnose", str(image), "--task", task, "--report"))
    assert no_generalist.exit_code == 11 and "needs a generalist" in no_generalist.stderr
    missing = runner.invoke(app, _hub(world, "diagnose", "absent.png", "--task", task))
    assert missing.exit_code == 3 and "error[GSCO-200]" in missing.stderr
    typo = runner.invoke(app, _hub(world, "diagnose", str(image), "--task", "nope"))
    assert typo.exit_code == 14 and typo.stdout == ""
    assert typo.stderr.splitlines()[:2] == [
        "error[GSCO-804]: the registry has no task 'nope'",
        "hint: `gsco-registry tasks list` shows its tasks",
    ]


def test_diagnose_refuses_a_constant_image_instead_of_labelling_it(
    world: World, task: str, tmp_path: Path
) -> None:
    constant = tmp_path / "constant.png"
    Image.fromarray(np.full((28, 28), 128, dtype=np.uint8)).save(constant)
    refused = runner.invoke(app, _hub(world, "diagnose", str(constant), "--task", task, "--json"))
    assert refused.exit_code == 2 and refused.stdout == ""
    assert "error[GSCO-822]: the image is constant (every pixel has the same value)" in refused.stderr


@pytest.mark.parametrize("damage", sorted(DAMAGED_PNG))
def test_diagnose_refuses_a_damaged_png_in_one_line(tmp_path: Path, damage: str) -> None:
    """The image is read before any runtime starts: no registry needed. Pillow raises ValueError /
    SyntaxError for these files, which were tracebacks."""
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(DAMAGED_PNG[damage]())
    refused = runner.invoke(app, ["--home", str(tmp_path), "diagnose", str(damaged), "--task", "t"])
    assert refused.exit_code == 3 and refused.stdout == ""
    assert refused.stderr.splitlines()[0] == "error[GSCO-200]: damaged.png cannot be read as an image"
    assert "Traceback" not in refused.output


def test_diagnose_given_a_folder_says_so_not_that_the_image_is_missing(tmp_path: Path) -> None:
    refused = runner.invoke(app, ["--home", str(tmp_path), "diagnose", str(tmp_path), "--task", "t"])
    assert refused.exit_code == 3
    assert refused.stderr.splitlines()[0] == "error[GSCO-200]: the image file is a folder, not a file"


def test_diagnose_with_an_openai_generalist(world: World, task: str, image: Path, server: ChatServer) -> None:
    args = _hub(
        world,
        "diagnose",
        str(image),
        "--task",
        task,
        "--json",
        "--report",
        "--generalist",
        "openai",
        "--generalist-url",
        server.url,
        "--generalist-timeout",
        "20",
    )
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (
        payload["decision"]["arbiter"] == "meddr" and payload["decision"]["generalist_answer"] == "pneumonia"
    )
    assert payload["report"]["text"] == "pneumonia" and server.shape_errors == []
    bad = runner.invoke(app, _hub(world, "diagnose", str(image), "--task", task, "--generalist", "openai"))
    assert bad.exit_code == 2 and "--generalist-url" in bad.stderr


def test_diagnose_serves_from_cache_when_the_registry_is_down(world: World, task: str, image: Path) -> None:
    assert (
        runner.invoke(app, _hub(world, "diagnose", str(image), "--task", task)).exit_code == 0
    )  # fills the cache
    args = _hub(world, "--tracking-uri", UNREACHABLE, "diagnose", str(image), "--task", task, "--json")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "serving verified copies from the local cache" in result.stderr
    status = json.loads(result.stdout)["runtime"]
    assert status["registry_reachable"] is False and status["serving_from_cache"] is True


def test_evaluate_table_json_and_chart(world: World, task: str, cases_npz: Path, tmp_path: Path) -> None:
    args = _import_and_evaluate(
        world,
        task,
        cases_npz,
        "--out",
        str(tmp_path / "eval"),
        "--bootstrap",
        "1000",
        "--seed",
        "7",
        "--json",
    )
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    kinds = [m["kind"] for m in report["methods"]]
    assert kinds == ["specialist", "specialist", "vote", "rad", "consensus", "ablation"]
    assert report["n"] == 12 and report["arbitration"] is None
    assert all(0.0 <= m["macro_f1"] <= 1.0 and m["auc"] is not None for m in report["methods"])
    for m in report["methods"]:
        for metric in ("accuracy", "macro_f1"):
            low, high = m[f"{metric}_ci"]
            assert low <= m[metric] <= high
    stats = report["statistics"]
    assert (stats["resamples"], stats["seed"], stats["level"]) == (1000, 7, 0.95)
    accuracies = {m["name"]: m["accuracy"] for m in report["methods"] if m["kind"] == "specialist"}
    assert stats["reference"] == max(accuracies, key=accuracies.__getitem__)
    assert [c["kind"] for c in stats["comparisons"]] == ["vote", "rad", "consensus", "ablation"]
    for comparison in stats["comparisons"]:
        accuracy = comparison["accuracy"]
        assert accuracy["test"].startswith("exact McNemar") and 0.0 <= accuracy["p_value"] <= 1.0
        assert comparison["auc"]["test"].startswith("DeLong")
        assert accuracy["verdict"] in {"not significantly different", "significantly above at 0.05"} | {
            "significantly below at 0.05"
        }
    against_vote = [(c["method"], c["reference"]) for c in stats["against_vote"]]
    assert against_vote == [
        ("consensus (no generalist)", "specialists' vote"),
        (WITHOUT_COMPETENCE, "specialists' vote"),
    ]
    assert json.loads((tmp_path / "eval" / "evaluation.json").read_text())["statistics"] == stats
    assert {p.name for p in (tmp_path / "eval").iterdir()} == {
        "evaluation.json",
        "evaluation.md",
        "evaluation.png",
    }
    markdown = (tmp_path / "eval" / "evaluation.md").read_text()
    consensus = next(m for m in report["methods"] if m["kind"] == "consensus")
    low, high = consensus["accuracy_ci"]
    assert f"| {consensus['accuracy']:.3f} [{low:.3f}, {high:.3f}] |" in markdown
    assert f"- Reference: {stats['reference']} (the best specialist: highest accuracy" in markdown
    disagreement = report["disagreement"]
    assert (disagreement["of"], disagreement["reference"], disagreement["specialists"]) == (
        12,
        stats["reference"],
        2,
    )
    assert "Where the specialists disagree: " in markdown
    assert "Each arbiter against the specialists' vote (difference = arbiter - vote, same tests):" in markdown
    table = runner.invoke(app, args[:-1])
    assert "arbiters vs the specialists' vote" in table.stdout
    assert "consensus (no generalist)" in table.stdout and "RAD only" in table.stdout
    assert "ACC [95 %" in table.stdout and "McNemar" in table.stdout
    assert "Where the specialists disagree: " in table.stdout
    again = json.loads(runner.invoke(app, args).stdout)["statistics"]
    assert again == stats  # seeded: the same intervals and p-values
    too_few = runner.invoke(app, [*args[:-5], "--bootstrap", "999"])  # less --bootstrap 1000 --seed 7 --json
    assert too_few.exit_code == 2 and "'--bootstrap': 999 is not in the range x>=1000" in too_few.output
    other = next(name for name in accuracies if name != stats["reference"])
    named = json.loads(runner.invoke(app, [*args, "--reference", other]).stdout)["statistics"]
    assert (named["reference"], named["reference_rule"]) == (
        other,
        "named before the evaluation (`--reference`)",
    )
    assert [(c["method"], c["reference"]) for c in named["comparisons"]] == [
        (stats["reference"], other),
        *((c["method"], other) for c in stats["comparisons"]),
    ]
    unknown = runner.invoke(app, [*args, "--reference", "nobody v1"])
    assert unknown.exit_code == DataError.exit_code
    assert "no served specialist is named 'nobody v1'" in unknown.output
    assert "Traceback" not in unknown.output


def test_evaluate_with_a_generalist_adds_zero_shot_gsco_and_arbitration(
    world: World, task: str, cases_npz: Path, server: ChatServer
) -> None:
    args = _import_and_evaluate(
        world,
        task,
        cases_npz,
        "--limit",
        "6",
        "--json",
        "--generalist",
        "openai",
        "--generalist-url",
        server.url,
    )
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {m["kind"]: m for m in report["methods"]}
    assert rows["generalist"]["accuracy"] == pytest.approx(
        0.5
    )  # always answers "pneumonia"; labels alternate
    assert rows["gsco"]["accuracy"] == pytest.approx(0.5)
    comparisons = {c["kind"]: c for c in report["statistics"]["comparisons"]}
    # the zero-shot row is no collaboration
    assert list(comparisons) == ["vote", "rad", "consensus", "ablation", "gsco"]
    assert comparisons["gsco"]["auc"] is None and rows["gsco"]["auc_ci"] is None  # no scores, no AUC
    arbitration = report["arbitration"]
    assert arbitration["disagreements"] == arbitration["right"] + arbitration["wrong"]
    assert len(server.requests) == 12 and server.shape_errors == []  # zero-shot + GSCo per image


def test_evaluate_writes_each_cases_decision_inputs(
    world: World, task: str, cases_npz: Path, tmp_path: Path
) -> None:
    path = tmp_path / "cases.npz"
    # --kind is the data format here, not the generalist's
    flags = ("--kind", "npz", "--generalist", "none", "--cases-out", str(path), "--json")
    result = runner.invoke(app, _import_and_evaluate(world, task, cases_npz, *flags))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["files"] == {"cases": str(path)} and report["generalist"] is None
    with np.load(path, allow_pickle=False) as archive:  # model outputs and labels, nothing else
        assert set(archive.files) == {
            "format_version", "specialists", "label_names", "consensus", "specialist_weights",
            "retrieval_weights", "bias", "source", "card_weights", "ceilings", "labels",
            "probabilities", "retrieved", "competence", "calibration_labels",
            "calibration_probabilities", "calibration_retrieved", "calibration_competence",
        }  # fmt: skip
    cases = load_case_inputs(path)
    methods = {m["name"]: m for m in report["methods"]}
    evaluated = cases.evaluation
    assert evaluated.labels.tolist() == [0, 1] * 6 and cases.label_names == ("normal", "pneumonia")
    assert evaluated.probabilities.shape == evaluated.retrieved.shape == (2, 12, 2)

    def accuracy(predicted: np.ndarray) -> float:
        return float((predicted == evaluated.labels).mean())

    # every row of the report follows from the file alone
    for name, probs in zip(cases.specialists, evaluated.probabilities, strict=True):
        assert accuracy(probs.argmax(axis=1)) == methods[name]["accuracy"]
    rad = next(m for m in report["methods"] if m["kind"] == "rad")
    assert accuracy(evaluated.retrieved.mean(axis=0).argmax(axis=1)) == rad["accuracy"]
    model = cases.model
    consensus = model.predict_proba(evaluated.probabilities, evaluated.retrieved, evaluated.competence)
    assert np.allclose(consensus, cases.consensus)
    assert accuracy(cases.consensus.argmax(axis=1)) == methods["consensus (no generalist)"]["accuracy"]
    plain = model.predict_proba(evaluated.probabilities, evaluated.retrieved).argmax(axis=1)
    assert accuracy(plain) == methods[WITHOUT_COMPETENCE]["accuracy"]
    assert model.describe(list(report["consensus_weights"]["specialists"])) == report["consensus_weights"]
    # the weights were fitted on the library's 30 cases: their inputs are in the file, and the
    # hub's fit on them gives the served weights and labels back
    assert model.source.startswith("calibrated")
    assert cases.calibration is not None and cases.calibration.labels.tolist() == [0, 1] * 15
    assert cases.calibration.probabilities.shape == (2, 30, 2)
    assert cases.card_weights.sum() == pytest.approx(1.0) and cases.ceilings.shape == (2,)
    assert alternatives.drift(cases) is None

    for wrong in (tmp_path / "cases.csv", tmp_path / "folder.npz"):
        (tmp_path / "folder.npz").mkdir(exist_ok=True)
        refused = runner.invoke(app, _hub(world, "evaluate", "--task", task, "--data", str(cases_npz),
                                          "--split", "val", "--cases-out", str(wrong)))  # fmt: skip
        assert refused.exit_code == ConfigError.exit_code
        assert f"--cases-out must name a .npz file, not '{wrong.name}'" in refused.output
        assert "Traceback" not in refused.output and not (tmp_path / "cases.csv").exists()


def test_evaluate_refuses_bad_outputs_and_references_before_any_work(
    world: World, task: str, cases_npz: Path, tmp_path: Path, server: ChatServer
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("kept")
    cases = tmp_path / "cases.npz"
    evaluate = _hub(world, "evaluate", "--task", task, "--data", str(cases_npz), "--split", "val",
                    "--generalist", "openai", "--generalist-url", server.url)  # fmt: skip
    for flags, message in (
        (("--out", str(a_file)), "--out must name a folder: 'a-file' is a file"),
        (("--cases-out", str(a_file / "cases.npz")), "--cases-out must name a folder: 'a-file' is a file"),
        (("--reference", "nope v1", "--cases-out", str(cases)), "no served specialist is named 'nope v1'"),
    ):
        refused = runner.invoke(app, [*evaluate, *flags])
        assert refused.exit_code == (ConfigError if "folder" in message else DataError).exit_code
        assert message in refused.output and "Traceback" not in refused.output
        assert a_file.read_text() == "kept" and not cases.exists()
        assert server.requests == []  # refused before any image went to the generalist
    negative = runner.invoke(app, [*evaluate, "--seed", "-1"])
    assert negative.exit_code == 2 and "-1 is not in the range x>=0" in negative.output


def test_a_file_that_is_not_case_inputs_is_refused_by_name(cases_npz: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cases.npz is not a case-inputs file"):
        load_case_inputs(cases_npz)  # an image collection
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(DataError, match="array.npy is not a case-inputs file"):
        load_case_inputs(tmp_path / "array.npy")
    np.savez(tmp_path / "partial.npz", format_version=np.asarray(1))
    with pytest.raises(DataError, match="partial.npz lacks 'specialist_weights'"):
        load_case_inputs(tmp_path / "partial.npz")
    (tmp_path / "truncated.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="truncated.npz is not a case-inputs file"):
        load_case_inputs(tmp_path / "truncated.npz")
    damaged = write_damaged_npz(
        tmp_path / "damaged.npz", format_version=np.asarray(1), bias=np.random.default_rng(0).random(500)
    )
    with pytest.raises(DataError, match="damaged.npz is not a case-inputs file"):
        load_case_inputs(damaged)
    np.savez(tmp_path / "text-version.npz", format_version=np.asarray("one"))
    with pytest.raises(DataError, match="text-version.npz is not a case-inputs file"):
        load_case_inputs(tmp_path / "text-version.npz")
    np.savez(tmp_path / "newer.npz", format_version=np.asarray(2))
    with pytest.raises(DataError, match="newer.npz has case-inputs format 2; this version reads 1"):
        load_case_inputs(tmp_path / "newer.npz")


def test_a_library_from_the_specialists_training_split_never_calibrates(
    world: World, real_specialists: tuple[SiteBundle, ...], cases_npz: Path, image: Path, tmp_path: Path
) -> None:
    task = world.new_task()
    trained_on = source_digest(cases_npz, "train")

    def names_the_cases_file(card: dict[str, Any]) -> None:
        # no real specialist was trained on this test's cases file: its site's card says it was
        card["data"]["training_set_digest"] = trained_on

    name, _ = publish_real(world, task, real_specialists[0], card_edit=names_the_cases_file)
    publish_real(world, task, real_specialists[1])
    imported = runner.invoke(
        app, _hub(world, "cases", "import", "--task", task, "--data", str(cases_npz), "--json")
    )
    assert json.loads(imported.stdout)["source_digest"] == trained_on
    evaluate = ["evaluate", "--task", task, "--data", str(cases_npz), "--split", "val", "--json"]
    report = json.loads(runner.invoke(app, _hub(world, *evaluate, "--out", str(tmp_path / "e"))).stdout)
    refused = f"card (library overlaps training data of {name})"
    consensus = next(m for m in report["methods"] if m["kind"] == "consensus")
    assert consensus["note"] == refused and report["consensus_weights"]["source"] == refused
    assert f"consensus weights: {refused}" in report["notes"]
    diagnosis = runner.invoke(app, _hub(world, "diagnose", str(image), "--task", task, "--json"))
    assert json.loads(diagnosis.stdout)["decision"]["consensus_weights"] == refused

    args = ["cases", "import", "--task", task, "--data", str(cases_npz), "--split", "val"]
    assert runner.invoke(app, _hub(world, *args)).exit_code == 0
    report = json.loads(runner.invoke(app, _hub(world, *evaluate, "--out", str(tmp_path / "f"))).stdout)
    assert report["consensus_weights"]["source"] == "card (too few calibration cases)"
