"""A site that publishes straight to the registry's database records nothing of its own machine.

Over a database URI the publisher's ``RegistryConfig`` has the site's own home folder, so an
experiment it created would carry that folder (and the site user's name) as the central artifact
location. The central team creates each task's experiment instead (``tasks create``, and
``init`` for tasks that predate this), and a publisher over a database URI never creates one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from mlflow import MlflowClient

from gsco_common.errors import RegistryError
from registry.config import RegistryConfig
from registry.service import Registry
from registry.store import catalog
from tests.registry.bundles import make_bundle
from tests.registry.cli_home import cli, init_home
from tests.registry.conftest import LABELS, SiteKey
from tests.unavailable_server import unavailable_server

SITE_USER = "zzkowalczyk"


def _database_text(db: Path) -> bytes:
    """Every value of every table, MLflow's and the registry's, as lower-case bytes."""
    with sqlite3.connect(db) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        values = [str(v) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"') for v in row]
    return "\n".join(values).lower().encode()


def _site_side(tmp_path: Path, central: Path) -> RegistryConfig:
    """What ``site-agent publish --registry sqlite:///...`` resolves at a site whose home names its user."""
    site_home = tmp_path / "home" / SITE_USER / ".gsco"
    return RegistryConfig.resolve(
        home=site_home, tracking_uri=f"sqlite:///{central / 'registry.db'}", retries=0
    )


def test_a_site_publishing_over_the_database_leaves_no_path_of_its_own(
    tmp_path: Path, site_keys: dict[str, SiteKey]
) -> None:
    central = init_home(tmp_path / "central", {"site-a": site_keys["a"].public_path})
    bundle = make_bundle(tmp_path / "bundle", site_keys["a"].private, LABELS, backbone="direct-net")
    with Registry.open(_site_side(tmp_path, central)) as site_registry:
        published = site_registry.publish(bundle)
    assert (published.name, published.version, published.created) == (
        "pneumonia.direct-net.site-a",
        "1",
        True,
    )
    assert SITE_USER.encode() not in _database_text(central / "registry.db")
    assert [p.name for p in (central / "artifacts" / "pneumonia").rglob("model.onnx")] == ["model.onnx"]
    with Registry.open(RegistryConfig.resolve(home=central)) as registry:
        downloaded = registry.download_bundle(published.name, "1", tmp_path / "download")
    assert (downloaded / "model.onnx").read_bytes() == (bundle / "model.onnx").read_bytes()


def test_a_task_without_experiment_is_refused_over_the_database_until_init_creates_it(
    tmp_path: Path, site_keys: dict[str, SiteKey]
) -> None:
    central = init_home(tmp_path / "central", {"site-a": site_keys["a"].public_path})
    with (
        Registry.open(RegistryConfig.resolve(home=central)) as registry,
        registry.tables.session() as session,
    ):
        catalog.create_task(session, "legacy", LABELS, "chest X-ray")  # as tasks were created before
    uri = f"sqlite:///{central / 'registry.db'}"
    mlflow = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert mlflow.get_experiment_by_name("gsco-legacy") is None
    bundle = make_bundle(
        tmp_path / "bundle", site_keys["a"].private, LABELS, task="legacy", backbone="old-net"
    )
    with Registry.open(_site_side(tmp_path, central)) as site_registry:
        with pytest.raises(RegistryError, match="has no experiment in this registry database") as refused:
            site_registry.publish(bundle)
        assert "gsco-registry init" in (refused.value.hint or "")
        assert mlflow.get_experiment_by_name("gsco-legacy") is None
        assert mlflow.search_registered_models() == []

        assert cli(central, "init").exit_code == 0
        experiment = mlflow.get_experiment_by_name("gsco-legacy")
        assert experiment is not None
        assert experiment.artifact_location == (central / "artifacts" / "legacy").resolve().as_uri()
        assert site_registry.publish(bundle).version == "1"
    assert SITE_USER.encode() not in _database_text(central / "registry.db")


def test_tasks_create_makes_no_task_when_its_experiment_cannot_be_created(tmp_path: Path) -> None:
    central = init_home(tmp_path / "central", {})
    tables = f"sqlite:///{central / 'registry.db'}"
    with unavailable_server() as server:
        result = cli(
            central, "--tracking-uri", server.url, "--db-uri", tables,
            "tasks", "create", "offline", "--labels", ",".join(LABELS), "--modality", "chest X-ray",
        )  # fmt: skip
    assert result.exit_code == 8 and "error[GSCO-510]" in result.stderr, result.output
    assert server.received, "the experiment was never asked for"
    with Registry.open(RegistryConfig.resolve(home=central)) as registry:
        assert [task.task_id for task in registry.tasks()] == ["pneumonia"]
    assert (
        cli(central, "tasks", "create", "offline", "--labels", ",".join(LABELS), "--modality", "x").exit_code
        == 0
    )
