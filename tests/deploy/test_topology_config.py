"""The topology's configuration: file < environment, validated, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy.local.config import ROOT, load_config, scratch_env
from deploy.local.topology import app
from gsco_common.errors import ConfigError

runner = CliRunner()


def test_the_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file = tmp_path / "topology.yaml"
    config_file.write_text("hub_replicas: 3\nmlflow_port: 5100\n")
    monkeypatch.setenv("GSCO_TOPOLOGY_MLFLOW_PORT", "5200")
    monkeypatch.setenv("GSCO_TOPOLOGY_MLFLOW_USERS", "site-x,hub")
    config = load_config(config_file)
    assert (config.hub_replicas, config.mlflow_port, config.mlflow_users) == (3, 5200, ("site-x", "hub"))
    assert config.hub_ports == [8081, 8082, 8083]
    assert load_config().object_store == "local"  # the shipped deploy/local/topology.yaml


def test_a_scratch_environment_is_what_load_config_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = scratch_env(tmp_path / "state", 2.5)
    assert env["PYTHONPATH"] == str(ROOT) and (ROOT / "deploy" / "local" / "topology.py").is_file()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = load_config()
    assert (config.state_dir, config.poll_interval_s) == (tmp_path / "state", 2.5)
    ports = {"MLFLOW_PORT": config.mlflow_port, "SUPERLINK_PORT": config.superlink_port}
    ports["HUB_BASE_PORT"] = config.hub_base_port
    assert ports == {name: int(env[f"GSCO_TOPOLOGY_{name}"]) for name in ports}


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("hub_replicas: 99\n", "hub_replicas"),
        ("hub_replica: 2\n", "hub_replica"),
        ("object_store: s3\n", "s3_bucket_url"),
        ("postgres_url: sqlite:///x.db\n", "postgres_url"),
        ("mlflow_users: [Site A, hub]\n", "mlflow_users"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_key(tmp_path: Path, content: str, key: str) -> None:
    config_file = tmp_path / "topology.yaml"
    config_file.write_text(content)
    with pytest.raises(ConfigError, match=rf"^topology setting {key}: "):
        load_config(config_file)
    result = runner.invoke(app, ["up", "--config", str(config_file)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith(f"error[GSCO-100]: topology setting {key}: ")


def test_up_refuses_a_state_folder_it_did_not_make(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "precious").mkdir()
    monkeypatch.setenv("GSCO_TOPOLOGY_STATE_DIR", str(tmp_path / "precious"))
    result = runner.invoke(app, ["up"])
    assert result.exit_code == 2 and "no .gsco-topology marker" in result.stderr
    assert (tmp_path / "precious").is_dir()
