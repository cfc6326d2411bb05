"""The topology's configuration: defaults < YAML file < ``GSCO_TOPOLOGY_*`` environment.

Validated with pydantic before anything starts; an error names the key and where to fix it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gsco_common.errors import ConfigError
from gsco_common.net import free_port

ENV_PREFIX = "GSCO_TOPOLOGY_"
DEFAULT_FILE = Path(__file__).with_name("topology.yaml")
ROOT = Path(__file__).resolve().parents[2]
_USER = re.compile(r"^[a-z][a-z0-9-]{1,31}$")


class TopologyConfig(BaseModel):
    """Where every service of the native topology listens and keeps its state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: Path = Path(".topology")
    postgres_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    host: str = "127.0.0.1"
    mlflow_port: int = Field(default=5000, ge=1, le=65535)
    mlflow_admin: str = "gsco-admin"
    mlflow_users: tuple[str, ...] = ("site-a", "site-b", "hub")
    object_store: Literal["local", "s3"] = "local"
    s3_bucket_url: str | None = None
    s3_endpoint_url: str | None = None
    superlink_port: int = Field(default=9092, ge=1, le=65535)
    hub_replicas: int = Field(default=2, ge=1, le=16)
    hub_base_port: int = Field(default=8081, ge=1, le=65535 - 16)
    poll_interval_s: float = Field(default=10.0, gt=0)
    start_timeout_s: float = Field(default=180.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> TopologyConfig:
        if not self.postgres_url.startswith("postgresql+psycopg2://"):
            raise ValueError("postgres_url: must be a postgresql+psycopg2:// URL")
        if self.object_store == "s3" and not (self.s3_bucket_url or "").startswith("s3://"):
            raise ValueError("s3_bucket_url: object_store s3 needs an s3://bucket URL")
        for user in (self.mlflow_admin, *self.mlflow_users):
            if not _USER.match(user):
                raise ValueError(f"mlflow_users: {user!r} is not a lower-case account name")
        return self

    @property
    def hub_ports(self) -> list[int]:
        return [self.hub_base_port + i for i in range(self.hub_replicas)]

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"


def _key_of(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if not location and ": " in message:
        location, message = message.split(": ", 1)
    return f"{location}: {message}"


def load_config(config_file: Path | None = None) -> TopologyConfig:
    """Merge the file (default ``deploy/local/topology.yaml``) and the environment; validate."""
    path = config_file or DEFAULT_FILE
    if not path.is_file():
        raise ConfigError(f"the topology config {path} does not exist", hint="pass --config FILE")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        raise ConfigError(f"the topology config {path} is not valid YAML", hint="fix the file") from None
    if not isinstance(values, dict):
        raise ConfigError(f"the topology config {path} must be a mapping of key: value")
    for key in TopologyConfig.model_fields:
        value = os.environ.get(ENV_PREFIX + key.upper())
        if value:
            values[key] = value.split(",") if key == "mlflow_users" else value
    try:
        return TopologyConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(
            f"topology setting {_key_of(exc.errors()[0])}",
            hint=f"fix {path.name} or the {ENV_PREFIX}<KEY> environment variable",
        ) from None


def scratch_env(state_dir: Path, poll_interval_s: float) -> dict[str, str]:
    """This environment, set to run ``python -m deploy.local.topology`` on a scratch state folder.

    ``state_dir`` and free loopback ports keep it apart from any other topology; PYTHONPATH is
    :data:`ROOT`. The end-to-end test and ``bench/topology.py`` start their topologies with it.
    """
    settings = {
        "state_dir": state_dir,
        "mlflow_port": free_port(),
        "superlink_port": free_port(),
        "hub_base_port": free_port(),
        "poll_interval_s": poll_interval_s,
    }
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        **{ENV_PREFIX + key.upper(): str(value) for key, value in settings.items()},
    }
