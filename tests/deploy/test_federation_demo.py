"""`python -m deploy.demo.federation`: the entry point runs, and refuses before it starts anything.

The whole federation runs in tests/federation/test_local_federation.py; these checks start no process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy.demo.federation import app
from hub.cli.main import app as hub_app

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
