"""`python -m deploy.demo.federation`: one whole demo run, and the refusals before it starts anything.

The federation library (runs, refusals, sites lost mid-run) is tested on a module-scoped
federation in tests/federation/test_local_federation.py; here the entry point itself runs once,
as small as the demo allows (2 sites, 1 round, tiny generated data, timm's tiny test ViT), from
its own processes to the federated model in the registry. The other checks start no process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy.demo.federation import app
from gsco_common.keys import fingerprint, load_public_key
from gsco_common.processes import pid_alive
from hub.cli.main import app as hub_app
from hub.federation.publish import federation_key_paths
from registry.config import RegistryConfig
from registry.service import Registry
from site_agent.data.synthetic import write_synthetic_npz

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _options(tmp_path: Path, workdir: Path) -> list[str]:
    return ["--data", str(tmp_path / "any.npz"), "--home", str(tmp_path / "home"), "--workdir", str(workdir)]


def test_the_entry_point_runs_as_a_module_and_has_the_demo_options() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "deploy.demo.federation", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for option in ("--sites", "--rounds", "--data", "--strategy", "--labels", "--tls", "--workdir", "--home"):
        assert option in done.stdout


def test_without_a_key_passphrase_it_refuses_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GSCO_KEY_PASSPHRASE", raising=False)
    workdir = tmp_path / "demo"
    result = runner.invoke(
        app,
        ["--data", str(tmp_path / "any.npz"), "--home", str(tmp_path / "home"), "--workdir", str(workdir)],
    )
    assert result.exit_code == 12, result.output
    assert "error[GSCO-700]: the demo creates signing keys without prompting" in result.output
    assert "set GSCO_KEY_PASSPHRASE first" in result.output
    assert not workdir.exists()


def test_a_folder_with_an_earlier_demo_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GSCO_KEY_PASSPHRASE", "test-passphrase-123")
    workdir = tmp_path / "demo"
    (workdir / "sites").mkdir(parents=True)
    result = runner.invoke(
        app,
        ["--data", str(tmp_path / "any.npz"), "--home", str(tmp_path / "home"), "--workdir", str(workdir)],
    )
    assert result.exit_code == 7, result.output
    assert "error[GSCO-500]: the demo folder already holds sites from an earlier demo" in result.output
    assert sorted(path.name for path in workdir.iterdir()) == ["sites"]


def test_the_hub_cli_has_no_demo_command() -> None:
    result = runner.invoke(hub_app, ["federation", "--help"])
    assert result.exit_code == 0
    assert "demo" not in result.output


@pytest.mark.slow
def test_the_demo_runs_two_sites_for_one_round_and_publishes_the_federated_model(tmp_path: Path) -> None:
    data = write_synthetic_npz(tmp_path / "tiny.npz", n_per_class=40, val_per_class=10)
    home, workdir = tmp_path / "home", tmp_path / "demo"
    command = [sys.executable, "-m", "deploy.demo.federation", "--sites", "2", "--rounds", "1"]
    command += ["--data", str(data), "--backbone", "test_vit", "--image-size", "28", "--task", "demo-task"]
    command += ["--home", str(home), "--workdir", str(workdir), "--json"]
    env = {**os.environ, "GSCO_KEY_PASSPHRASE": "test-passphrase-123"}
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)

    bundle = report["bundle"]
    assert bundle["source"] == f"federation-{report['run']}" and bundle["status"] == "pending"
    assert bundle["name"] == f"demo-task.test_vit.federation-{report['run']}" and bundle["version"] == "1"
    assert report["result"]["rounds"] == 1
    assert [site["rounds_participated"] for site in report["result"]["sites"]] == [1, 1]
    assert report["stopped_pids"] and not [pid for pid in report["stopped_pids"] if pid_alive(pid)]

    with Registry.open(RegistryConfig.resolve(home=home)) as registry:
        ref, card = registry.show(bundle["name"], bundle["version"])
    assert ref.status == "pending" and ref.task == "demo-task"
    assert card["task"]["id"] == "demo-task" and card["task"]["labels"] == ["normal", "pneumonia"]
    assert card["model"]["backbone"] == "test_vit"
    assert card["federation"]["rounds"] == 1 and card["federation"]["strategy"] == "fedavg"
    site_keys = {
        fingerprint(load_public_key(workdir / "sites" / f"site-{i}" / "keys" / "site.pub")) for i in (1, 2)
    }
    assert {site["key_fingerprint"] for site in card["federation"]["sites"]} == site_keys
    assert card["site"]["key_fingerprint"] == fingerprint(load_public_key(federation_key_paths(home)[1]))
