"""From planted DICOM data to a published bundle: nothing identifying leaves the site.

The dataset's folder name, file names and DICOM tags (patient names and ids, accession numbers,
institution, physician, study/series/instance UIDs) carry planted strings. After `site-agent
export` and `site-agent publish`, none of those byte strings may appear in any bundle file, in any
file of the registry home (database and artifact store), nor in any text MLflow stores (params,
tags, run and version metadata), read back with plain SQL. Generated data: the test needs
planted identifiers, so ../shared/data is not used here.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import typer
import yaml
from typer.testing import CliRunner, Result

from registry.cli.main import app as registry_app
from registry.config import RegistryConfig
from registry.service import Registry
from site_agent.cli.main import app as site_app
from site_agent.data.synthetic import synthetic_images
from tests.site_agent.dicom_files import write_dicom
from tests.unavailable_server import unavailable_server

pytestmark = pytest.mark.slow
runner = CliRunner()
LABELS = ["normal", "pneumonia"]
ROOT_NAME = "StMungoInfirmary_PACS_export"
SURNAME, GIVEN = "Kowalczykowa", "Zbigniewa"
PHYSICIAN = "Quackenbushey"
INSTITUTION = "St Mungo Infirmary"


def planted_dicom(folder: Path, per_class: int = 40) -> tuple[Path, set[str]]:
    """A DICOM folder + labels.csv whose names and tags carry planted identifiers."""
    root = folder / ROOT_NAME
    labels = np.repeat(np.arange(len(LABELS)), per_class)
    images = synthetic_images(labels, 16, len(LABELS), np.random.default_rng(0))
    uids: list[str] = []
    rows = []
    for index, (label, image) in enumerate(zip(labels, images, strict=True)):
        name = f"ward7/{SURNAME}{index}_MRN-77{index:04d}.dcm"
        path = write_dicom(
            root / name,
            image,
            patient_id=f"MRN-77{index:04d}",
            patient_name=f"{SURNAME}{index}^{GIVEN}",
            accession=f"ACC9{index:05d}",
            institution=INSTITUTION,
            physician=f"{PHYSICIAN}^Anna",
        )
        header = pydicom.dcmread(path)
        uids += [str(header.SOPInstanceUID), str(header.StudyInstanceUID), str(header.SeriesInstanceUID)]
        rows.append({"path": name, "label": LABELS[label]})
    with (root / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label"])
        writer.writeheader()
        writer.writerows(rows)
    planted = {ROOT_NAME, str(root), SURNAME, GIVEN, PHYSICIAN, INSTITUTION, "ward7/", *uids}
    planted |= {f"MRN-77{i:04d}" for i in range(len(labels))}
    planted |= {f"ACC9{i:05d}" for i in range(len(labels))}
    return root, planted


def invoke(app: typer.Typer, *args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env=env)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A site trained on planted data, and an embedded registry that knows the task and the site."""
    folder = tmp_path_factory.mktemp("planted")
    print("[data] generated DICOM data with planted identifiers (not ../shared/data)")
    data_root, planted = planted_dicom(folder)
    site_dir, home = folder / "site", folder / "registry-home"
    made = invoke(site_app, "init", str(site_dir), "--name", "Planted Site", "--task", "pneumonia",
                  "--labels", ",".join(LABELS), "--modality", "chest radiograph")  # fmt: skip
    assert made.exit_code == 0, made.output
    config = yaml.safe_load((site_dir / "site.yaml").read_text())
    config["data"] = {"path": str(data_root), "kind": "dicom"}
    config["registry"]["home"] = str(home)
    (site_dir / "site.yaml").write_text(yaml.safe_dump(config))
    for args in (
        ["init"],
        ["tasks", "create", "pneumonia", "--labels", ",".join(LABELS), "--modality", "chest radiograph"],
        ["sites", "enroll", "planted-site", "--public-key", str(site_dir / "keys" / "site.pub")],
    ):
        assert invoke(registry_app, "--home", str(home), *args).exit_code == 0
    train_args = ["--backbone", "resnet18", "--image-size", "28", "--epochs", "1", "--batch-size", "16"]
    trained = invoke(site_app, "train", "--site", str(site_dir), *train_args, "--device", "cpu", "--json")
    assert trained.exit_code == 0, trained.output
    run_dir = Path(json.loads(trained.stdout)[0]["run_dir"])
    return {"site_dir": site_dir, "home": home, "run_dir": run_dir, "planted": planted, "config": config}


def _with_site_yaml(site: dict, **task: object) -> dict:
    config = json.loads(json.dumps(site["config"]))
    config["task"].update(task.get("task", {}))
    config["export"]["deny_list"] = task.get("deny_list", [])
    (site["site_dir"] / "site.yaml").write_text(yaml.safe_dump(config))
    return config


def test_identifying_text_aborts_export_naming_the_field_not_the_value(site: dict) -> None:
    try:
        _with_site_yaml(site, task={"intended_use": f"Triage at {INSTITUTION} for {SURNAME}3"})
        leaked = invoke(site_app, "export", str(site["run_dir"]))
        assert leaked.exit_code == 4, leaked.output
        assert "error[GSCO-320]" in leaked.stderr and "card.task.intended_use" in leaked.stderr
        assert SURNAME not in leaked.output and INSTITUTION not in leaked.output
        _with_site_yaml(site, deny_list=["Chest Radiograph"])
        denied = invoke(site_app, "export", str(site["run_dir"]))
        assert denied.exit_code == 4 and "card.task.modality" in denied.stderr
        assert not (site["run_dir"] / "bundle").exists()
    finally:
        _with_site_yaml(site)


def _texts_in_sqlite(db: Path) -> list[tuple[str, str]]:
    """Every text value of every table (MLflow's and the registry's), via plain SQL."""
    found = []
    with sqlite3.connect(db) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            columns = [c[0] for c in cursor.description]
            for row in cursor:
                found += [
                    (f"{table}.{col}", str(value)) for col, value in zip(columns, row, strict=True) if value
                ]
    return found


def test_export_and_publish_leak_no_planted_identifier(site: dict) -> None:
    exported = invoke(site_app, "export", str(site["run_dir"]), "--json")
    assert exported.exit_code == 0, exported.output
    bundle = site["run_dir"] / "bundle"
    assert sorted(p.name for p in bundle.iterdir()) == ["card.json", "model.onnx", "site.sig"]
    published = invoke(site_app, "publish", str(site["run_dir"]), "--json")
    assert published.exit_code == 0, published.output
    result = json.loads(published.stdout)
    assert (result["name"], result["version"], result["created"]) == (
        "pneumonia.resnet18.planted-site",
        "1",
        True,
    )

    needles = [p.lower().encode() for p in site["planted"]]
    files = [*bundle.iterdir(), *(p for p in site["home"].rglob("*") if p.is_file())]
    assert any(p.name == "model.onnx" for p in site["home"].rglob("*"))
    for path in files:
        data = path.read_bytes().lower()
        leaks = [n for n in needles if n in data]
        assert not leaks, f"{path.name} contains {len(leaks)} planted identifier(s)"
    texts = _texts_in_sqlite(site["home"] / "registry.db")
    assert any(column == "model_version_tags.key" for column, _ in texts)
    assert any(column == "tags.key" for column, _ in texts)
    for column, value in texts:
        lowered = value.lower().encode()
        assert not any(n in lowered for n in needles), f"MLflow column {column} holds a planted identifier"


def test_the_published_bundle_verifies_with_the_third_party_cli(site: dict, tmp_path: Path) -> None:
    with Registry.open(RegistryConfig.resolve(home=site["home"])) as registry:
        bundle = registry.download_bundle("pneumonia.resnet18.planted-site", "1", tmp_path / "published")
    command = [
        str(Path(sys.executable).with_name("model_signing")), "verify", "key", str(bundle),
        "--signature", str(bundle / "site.sig"), "--public_key", str(site["site_dir"] / "keys" / "site.pub"),
    ]  # fmt: skip
    checked = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr


def test_publish_again_is_idempotent_and_refusals_are_clear(site: dict, tmp_path: Path) -> None:
    again = invoke(site_app, "publish", str(site["run_dir"]), "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["created"] is False
    empty_run = site["site_dir"] / "runs" / "no-bundle"
    empty_run.mkdir(exist_ok=True)
    not_a_run = invoke(site_app, "publish", str(empty_run))
    assert not_a_run.exit_code == 2
    assert not_a_run.stderr.startswith(f"error[GSCO-100]: not a run folder (no config.yaml in {empty_run})")
    (empty_run / "config.yaml").write_text("{}")
    assert invoke(site_app, "publish", str(empty_run)).exit_code == 4  # a run, not exported yet
    env = {"GSCO_REGISTRY_DB": f"sqlite:///{site['home'] / 'registry.db'}", "GSCO_REGISTRY_RETRIES": "1",
           "GSCO_REGISTRY_BACKOFF": "0.01"}  # fmt: skip
    with unavailable_server() as server:
        offline = invoke(site_app, "publish", str(site["run_dir"]), "--registry", server.url, env=env)
    assert offline.exit_code == 8 and "error[GSCO-510]" in offline.stderr and "2 attempts" in offline.stderr
    assert len(server.received) == 2  # what the server saw, not what the configuration says
    missing = invoke(site_app, "publish", str(site["run_dir"]), "--registry", str(tmp_path / "no-registry"))
    assert missing.exit_code == 7 and "gsco-registry init" in missing.stderr
    # A server address without its scheme reads as a folder: refused, though GSCO_REGISTRY_DB
    # names the real tables (before, it published into a new folder of that name, exit 0).
    typo = tmp_path / "registry.example.org:5000"
    mistyped = invoke(site_app, "publish", str(site["run_dir"]), "--registry", str(typo), env=env)
    assert mistyped.exit_code == 7
    assert f"error[GSCO-500]: --registry {typo}: no registry there (no registry.db)" in mistyped.stderr
    assert not typo.exists()
    server_too = {**env, "GSCO_TRACKING_URI": "http://127.0.0.1:9"}  # the folder wins, no retries
    mistyped = invoke(site_app, "publish", str(site["run_dir"]), "--registry", str(typo), env=server_too)
    assert mistyped.exit_code == 7 and "no registry there (no registry.db)" in mistyped.stderr
    assert invoke(registry_app, "--home", str(site["home"]), "sites", "revoke", "planted-site").exit_code == 0
    revoked = invoke(site_app, "publish", str(site["run_dir"]))
    assert revoked.exit_code == 9 and "error[GSCO-520]" in revoked.stderr and "revoked" in revoked.stderr
