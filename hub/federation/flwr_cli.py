"""The hub's use of Flower's ``flwr`` CLI, always with a project-owned ``FLWR_HOME``.

``flwr`` reads SuperLink connections from ``$FLWR_HOME/config.toml`` and, when the file is
missing, creates one pointing at Flower's cloud. The hub therefore writes its own file under
``GSCO_HOME/federation/flwr`` with a single connection named ``gsco`` and never touches the
user's ``~/.flwr``. Telemetry and update checks are off: hospitals are air-gapped. Every
command is called with ``--format json`` and its JSON is checked: ``flwr run`` can exit 0 for a
run that later fails, so the run's final status is always read back with ``flwr ls``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from gsco_common.errors import FederationError
from gsco_common.telemetry import QUIET_FLOWER_ENV

CONNECTION = "gsco"
CLI_TIMEOUT_S = 120.0


def venv_bin(name: str) -> str:
    """A console script installed beside this interpreter (``flwr``, ``flower-superlink``...)."""
    return str(Path(sys.executable).parent / name)


def flower_env(home: Path) -> dict[str, str]:
    """Environment for Flower processes: own ``FLWR_HOME``, quiet, this venv's scripts first on PATH."""
    home.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "FLWR_HOME": str(home), "PATH": path, **QUIET_FLOWER_ENV}


@dataclass(frozen=True)
class FlowerCli:
    """Run ``flwr`` against one SuperLink."""

    home: Path
    superlink: str
    insecure: bool = False
    root_certificates: Path | None = None

    def write_config(self) -> Path:
        connection: dict[str, Any] = {"address": self.superlink}
        if self.insecure:
            connection["insecure"] = True
        elif self.root_certificates is not None:
            connection["root-certificates"] = str(self.root_certificates.resolve())
        else:
            raise FederationError(
                "a TLS connection to the SuperLink needs the CA certificate",
                hint="pass --root-certificates CA.pem (from `gsco-hub federation certs`), or --insecure",
            )
        path = self.home / "config.toml"
        self.home.mkdir(parents=True, exist_ok=True)
        path.write_text(tomli_w.dumps({"superlink": {"default": CONNECTION, CONNECTION: connection}}))
        return path

    def call(self, *args: str, timeout: float = CLI_TIMEOUT_S) -> dict[str, Any]:
        """Run ``flwr ARGS --format json`` and return its JSON (raises on a failure it reports)."""
        self.write_config()
        command = [venv_bin("flwr"), *args, "--format", "json"]
        try:
            done = subprocess.run(  # noqa: S603  (fixed command line, no shell)
                command,
                env=flower_env(self.home),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise FederationError(f"`flwr {args[0]}` did not answer within {timeout:.0f} s") from None
        data = _last_json(done.stdout)
        if data is None or not data.get("success", False):
            message = (data or {}).get("error-message") or (
                done.stderr.strip().splitlines() or ["no output"]
            )[-1]
            raise FederationError(
                f"`flwr {' '.join(args[:2])}` failed: {message}",
                hint="check that the SuperLink runs and the address and certificates are right",
            )
        return data

    def submit(self, app_dir: Path, run_config_file: Path) -> int:
        data = self.call("run", str(app_dir), CONNECTION, "--run-config", str(run_config_file))
        return int(data["run-id"])

    def status(self, run_id: int) -> dict[str, Any]:
        runs = self.call("ls", CONNECTION, "--run-id", str(run_id))["runs"]
        if not runs:
            raise FederationError(f"the SuperLink does not know run {run_id}")
        return dict(runs[0])

    def stop(self, run_id: int) -> None:
        self.call("stop", str(run_id), CONNECTION)

    def register_node(self, public_key: Path) -> int:
        return int(self.call("supernode", "register", str(public_key.resolve()), CONNECTION)["node-id"])

    def nodes(self) -> list[dict[str, Any]]:
        return list(self.call("supernode", "ls", CONNECTION).get("nodes", []))


def _last_json(stdout: str) -> dict[str, Any] | None:
    """The JSON object ``flwr --format json`` printed (other output may precede it)."""
    start = stdout.find("{")
    while start != -1:
        try:
            value = json.loads(stdout[start:])
            return value if isinstance(value, dict) else None
        except json.JSONDecodeError:
            start = stdout.find("{", start + 1)
    return None
