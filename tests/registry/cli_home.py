"""`gsco-registry` invoked in-process on a registry home, and a home set up with a task and sites."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from registry.cli.main import app
from tests.registry.conftest import LABELS

runner = CliRunner()


def cli(home: Path, *args: str) -> Result:
    return runner.invoke(app, ["--home", str(home), *args])


def init_home(folder: Path, sites: dict[str, Path]) -> Path:
    """``init``, the pneumonia task and every site in ``sites`` (name -> public key file) enrolled."""
    for args in (
        ["init"],
        ["tasks", "create", "pneumonia", "--labels", ",".join(LABELS), "--modality", "chest X-ray"],
        *(["sites", "enroll", name, "--public-key", str(public)] for name, public in sites.items()),
    ):
        result = cli(folder, *args)
        assert result.exit_code == 0, result.output
    return folder
