"""The hub's Flower SuperLink: TLS and SuperNode authentication unless ``insecure`` is asked for.

One HTTP port serves Flower's Fleet (SuperNodes), Control (``flwr``) and Runtime (ServerApp)
APIs. The SuperLink never installs app dependencies at run time (air-gapped hospitals: no
``uv sync``), keeps its state in a SQLite file (registered SuperNodes survive restarts) and
runs with the hub's own ``FLWR_HOME``, telemetry and update checks off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gsco_common.errors import ConfigError
from hub.federation.certs import CertPaths
from hub.federation.flwr_cli import FlowerCli, flower_env, venv_bin
from hub.federation.processes import ManagedProcess, start_process, wait_for_port

IN_MEMORY = ":flwr-in-memory:"


@dataclass(frozen=True)
class SuperLinkConfig:
    """Where the SuperLink listens and with which security."""

    home: Path
    host: str = "127.0.0.1"
    port: int = 9092
    insecure: bool = False
    certs_dir: Path | None = None
    in_memory: bool = False

    @property
    def address(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"{host}:{self.port}"

    @property
    def database(self) -> str:
        """SQLite file (registered SuperNodes survive restarts) or Flower's faster in-memory state."""
        return IN_MEMORY if self.in_memory else str(self.home / "superlink.db")

    def certs(self) -> CertPaths:
        if self.certs_dir is None:
            raise ConfigError(
                "TLS needs the SuperLink certificates",
                hint="create them with `gsco-hub federation certs DIR` and pass --certs DIR (or --insecure)",
            )
        paths = CertPaths.in_dir(self.certs_dir)
        missing = [p.name for p in (paths.ca_cert, paths.server_cert, paths.server_key) if not p.is_file()]
        if missing:
            raise ConfigError(
                f"missing in the certificates folder: {', '.join(missing)}",
                hint="create them with `gsco-hub federation certs DIR`",
            )
        return paths

    def command(self) -> list[str]:
        command = [
            venv_bin("flower-superlink"),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--database",
            self.database,
            "--disable-runtime-dependency-installation",
        ]
        if self.insecure:
            return [*command, "--insecure"]
        certs = self.certs()
        return [
            *command,
            "--ssl-ca-certfile",
            str(certs.ca_cert),
            "--ssl-certfile",
            str(certs.server_cert),
            "--ssl-keyfile",
            str(certs.server_key),
            "--enable-supernode-auth",
        ]

    def flwr(self) -> FlowerCli:
        """The ``flwr`` CLI connected to this SuperLink."""
        ca = None if self.insecure else self.certs().ca_cert
        return FlowerCli(self.home / "flwr", self.address, insecure=self.insecure, root_certificates=ca)


def start_superlink(config: SuperLinkConfig, log_path: Path) -> ManagedProcess:
    """Start the SuperLink and return once its port accepts connections."""
    config.home.mkdir(parents=True, exist_ok=True)
    process = start_process("SuperLink", config.command(), flower_env(config.home / "flwr"), log_path)
    wait_for_port(config.port, process)
    return process
