"""`site-agent init`: documented site.yaml, encrypted 0600 key pair, fingerprint, no overwrite."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gsco_common.keys import fingerprint, load_private_key, load_public_key
from site_agent.cli.main import app
from site_agent.config import load_site_config

runner = CliRunner()
ARGS = [
    "--name",
    "North Clinic",
    "--task",
    "pneumonia-cxr",
    "--labels",
    "normal, pneumonia",
    "--modality",
    "chest X-ray",
]


def test_init_writes_config_and_keys(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = runner.invoke(app, ["init", str(site), *ARGS])
    assert result.exit_code == 0, result.output
    private, public = site / "keys" / "site.key", site / "keys" / "site.pub"
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    expected = fingerprint(load_public_key(public))
    assert expected in result.output
    key = load_private_key(private, os.environ["GSCO_KEY_PASSPHRASE"].encode())
    assert fingerprint(key.public_key()) == expected
    assert b"ENCRYPTED" in private.read_bytes()
    config = load_site_config(site)
    assert config.name == "North Clinic" and config.task.id == "pneumonia-cxr"
    assert config.task.labels == ["normal", "pneumonia"] and config.task.modality == "chest X-ray"
    text = (site / "site.yaml").read_text()
    assert text.count("\n#") + text.count("  #") > 20, "site.yaml is documented with comments"


def test_init_json_output(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "s"), *ARGS, "--json"])
    assert result.exit_code == 0, result.output
    assert '"fingerprint": "sha256:' in result.stdout


def test_init_refuses_to_overwrite_a_key(tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert runner.invoke(app, ["init", str(site), *ARGS]).exit_code == 0
    key_before = (site / "keys" / "site.key").read_bytes()
    (site / "site.yaml").unlink()
    result = runner.invoke(app, ["init", str(site), *ARGS])
    assert result.exit_code == 5
    assert "error[GSCO-400]" in result.output and "refusing to overwrite" in result.output
    assert "Traceback" not in result.output
    assert (site / "keys" / "site.key").read_bytes() == key_before
    assert not (site / "site.yaml").exists()


def test_init_refuses_to_overwrite_site_yaml(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "site.yaml").write_text("name: mine\n")
    result = runner.invoke(app, ["init", str(site), *ARGS])
    assert result.exit_code == 2 and "already has a site.yaml" in result.output
    assert (site / "site.yaml").read_text() == "name: mine\n"
    assert not (site / "keys").exists()


def test_init_rejects_bad_values_naming_the_key(tmp_path: Path) -> None:
    site = tmp_path / "site"
    one_label = ["--name", "x", "--task", "t", "--labels", "only", "--modality", "m"]
    result = runner.invoke(app, ["init", str(site), *one_label])
    assert result.exit_code == 2 and "task.labels" in result.output
    bad_task = ["--name", "x", "--task", "bad task id!", "--labels", "a,b", "--modality", "m"]
    result = runner.invoke(app, ["init", str(site), *bad_task])
    assert result.exit_code == 2 and "task.id" in result.output
    duplicate = ["--name", "x", "--task", "t", "--labels", "a,a", "--modality", "m"]
    assert "distinct" in runner.invoke(app, ["init", str(site), *duplicate]).output
    assert not site.exists()


def test_init_rejects_a_short_passphrase_before_writing(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = runner.invoke(app, ["init", str(site), *ARGS], env={"GSCO_KEY_PASSPHRASE": "short"})
    assert result.exit_code == 5 and "at least 8" in result.output
    assert not (site / "keys" / "site.key").exists() and not (site / "site.yaml").exists()


@pytest.mark.filterwarnings("ignore::getpass.GetPassWarning")
def test_init_prompts_for_the_passphrase_when_unset(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {"GSCO_KEY_PASSPHRASE": None}
    result = runner.invoke(
        app, ["init", str(site), *ARGS], env=env, input="a-long-passphrase\na-long-passphrase\n"
    )
    assert result.exit_code == 0, result.output
    load_private_key(site / "keys" / "site.key", b"a-long-passphrase")


@pytest.mark.filterwarnings("ignore::getpass.GetPassWarning")
def test_init_without_passphrase_or_terminal_is_gsco_400(tmp_path: Path) -> None:
    """stdin at end of input (``</dev/null``, systemd): error[GSCO-400], exit 5, not "Aborted."."""
    site = tmp_path / "site"
    result = runner.invoke(app, ["init", str(site), *ARGS], env={"GSCO_KEY_PASSPHRASE": None}, input="")
    assert result.exit_code == 5, result.output
    assert "error[GSCO-400]" in result.output and "GSCO_KEY_PASSPHRASE" in result.output
    assert not site.exists()


def test_init_on_an_existing_file_is_a_clear_error(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.write_text("not a folder")
    result = runner.invoke(app, ["init", str(site), *ARGS], env={"GSCO_KEY_PASSPHRASE": "a-long-passphrase"})
    assert result.exit_code == 2, result.output
    assert "error[GSCO-100]" in result.output and "not a folder" in result.output
    assert "Traceback" not in result.output and site.read_text() == "not a folder"
