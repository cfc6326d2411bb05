"""`gsco-hub tokens`, `audit show|verify` and `serve --workers 2` (a real subprocess on loopback)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from gsco_common.keys import generate_key_pair
from gsco_common.net import free_port
from hub.cli import serve_cmd
from hub.cli.main import app
from hub.service.database import HubDatabase
from registry.pinning import PINNED_KEY_RELPATH
from tests.hub.service.conftest import Hub

runner = CliRunner()


def _hub(home: Path, *args: str) -> list[str]:
    return ["--home", str(home), *args]


def test_tokens_create_list_revoke(tmp_path: Path) -> None:
    created = runner.invoke(
        app, _hub(tmp_path, "tokens", "create", "--role", "clinician", "--name", "dr-a", "--json")
    )
    assert created.exit_code == 0, created.output
    info = json.loads(created.stdout)
    assert info["token"].startswith("gsco_") and info["role"] == "clinician" and info["revoked_at"] is None
    listed = runner.invoke(app, _hub(tmp_path, "tokens", "list", "--json"))
    assert info["token"] not in listed.stdout
    assert [(t["id"], t["name"]) for t in json.loads(listed.stdout)] == [(info["id"], "dr-a")]
    assert info["token"] not in (tmp_path / "hub" / "hub.db").read_bytes().decode("latin-1")
    revoked = runner.invoke(app, _hub(tmp_path, "tokens", "revoke", str(info["id"]), "--json"))
    assert revoked.exit_code == 0 and json.loads(revoked.stdout)["revoked_at"]
    wrong = runner.invoke(app, _hub(tmp_path, "tokens", "create", "--role", "root", "--name", "x"))
    assert wrong.exit_code == 2 and "error[GSCO-100]" in wrong.stderr
    missing = runner.invoke(app, _hub(tmp_path, "tokens", "revoke", "99"))
    assert missing.exit_code == 7 and "no token with id 99" in missing.stderr


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text("max_upload_mb: -1\n")
    result = runner.invoke(app, _hub(tmp_path, "tokens", "list", "--config", str(config)))
    assert result.exit_code == 2 and "hub setting max_upload_mb" in result.stderr


def test_a_bad_db_url_names_the_setting_without_a_traceback(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    config = tmp_path / "hub.yaml"
    for db_url, message in (
        ("notaurl", "error[GSCO-100]: hub setting db_url: not a usable database URL (ArgumentError)"),
        (
            "postgresql+nosuchdriver://u:secret@h/db",
            "error[GSCO-100]: hub setting db_url: not a usable database URL",
        ),
        (
            f"sqlite:///{a_file}/hub.db",
            f"error[GSCO-100]: hub setting db_url: the SQLite file's folder {a_file} cannot be made",
        ),
    ):
        config.write_text(f"db_url: {db_url}\n")
        result = runner.invoke(app, _hub(tmp_path, "tokens", "list", "--config", str(config)))
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(message)
        assert "secret" not in result.output and "Traceback" not in result.output


def test_serve_creates_missing_tables_once_before_its_workers_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers that each add a missing table race for the DDL: serve adds it before they start."""
    database = tmp_path / "hub" / "hub.db"
    HubDatabase(f"sqlite:///{database}").close()
    with sqlite3.connect(database) as connection:  # a database from before the review history
        connection.execute("DROP TABLE hub_reviews")
    started: list[list[str]] = []

    def execv(path: str, args: list[str]) -> None:
        with sqlite3.connect(database) as connection:
            tables = {
                row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        assert "hub_reviews" in tables
        started.append(args)

    monkeypatch.setattr(serve_cmd.os, "execv", execv)
    _pin_a_central_key(tmp_path)
    result = runner.invoke(app, _hub(tmp_path, "serve", "--workers", "3"))
    assert result.exit_code == 0, result.output
    assert len(started) == 1 and started[0][started[0].index("--workers") + 1] == "3"


def _pin_a_central_key(home: Path) -> None:
    (home / PINNED_KEY_RELPATH).parent.mkdir(parents=True)
    generate_key_pair(home / "central.key", home / PINNED_KEY_RELPATH, b"central-passphrase")


def test_serve_refuses_a_central_key_it_cannot_pin_before_uvicorn_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, each of these was a traceback from inside uvicorn's worker, exit 1."""
    started: list[list[str]] = []
    monkeypatch.setattr(serve_cmd.os, "execv", lambda _path, args: started.append(args))
    not_a_key = tmp_path / "data.npz"
    not_a_key.write_bytes(b"PK\x03\x04 no key")
    for flags, message in (
        ([], "error[GSCO-400]: no pinned central approval key"),
        (
            ["--central-key", str(tmp_path / "nosuch.pem")],
            "error[GSCO-400]: the --central-key file does not exist",
        ),
        (["--central-key", str(not_a_key)], "error[GSCO-400]: "),
    ):
        result = runner.invoke(app, [*flags, *_hub(tmp_path, "serve")])
        assert (result.exit_code, result.stderr.splitlines()[0][: len(message)]) == (5, message), (
            result.output
        )
        assert "Traceback" not in result.output
    assert started == []
    assert not (tmp_path / "hub").exists()  # no hub database made for a hub that cannot start


@pytest.mark.parametrize("port", ["0", "65536", "99999"])
def test_serve_refuses_a_port_outside_1_to_65535(tmp_path: Path, port: str) -> None:
    result = runner.invoke(app, _hub(tmp_path, "serve", "--port", port))
    assert result.exit_code == 2 and "Invalid value for '--port'" in result.output


def test_serve_with_two_workers_and_audit_show(hub: Hub) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gsco-hub"),
            "--home",
            str(hub.world.config.home),
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        ready = None
        while time.time() < deadline:
            try:
                ready = httpx.get(f"{url}/readyz", timeout=5)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        assert ready is not None and ready.json()["status"] == "ready"
        headers = {"Authorization": f"Bearer {hub.clinician}"}
        tasks = httpx.get(f"{url}/v1/tasks", headers=headers, timeout=30).json()["tasks"]
        assert hub.task in {t["task_id"] for t in tasks}
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0]
    assert "Started parent process" in output or "Started server process" in output
    assert hub.clinician not in output

    shown = runner.invoke(app, _hub(hub.world.config.home, "audit", "show", "--json"))
    assert shown.exit_code == 0, shown.output
    entries = json.loads(shown.stdout)
    assert all(
        set(e) == {"seq", "at", "actor", "action", "task_id", "image_sha256", "models", "decision", "review"}
        for e in entries
    )
    verified = runner.invoke(app, _hub(hub.world.config.home, "audit", "verify", "--json"))
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["entries"] >= len(entries)
