"""Service settings: defaults < YAML file (``--config``) < ``GSCO_HUB_*`` environment < flags.

Validated with pydantic at start-up; an error names the offending key, so a typo in the file
stops the service before it listens instead of surfacing as a wrong limit later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from gsco_common.errors import ConfigError
from gsco_common.settings import validated
from registry.config import RegistryConfig

ENV_PREFIX = "GSCO_HUB_"
MB = 1024 * 1024


class ServiceSettings(BaseModel):
    """What the service serves, where it keeps its records, and the limits of an upload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    registry: RegistryConfig
    central_key: Path | None = None
    db_url: str | None = None
    """SQLAlchemy URL of the hub database (tokens, decisions, audit); default SQLite under the home."""
    tasks: tuple[str, ...] | None = None
    """Tasks to serve; default every task the registry knows (re-read on each refresh)."""
    poll_interval_s: float = Field(default=10.0, gt=0)
    threads: int | None = Field(default=None, ge=1, le=256)
    max_upload_mb: float = Field(default=20.0, gt=0, le=2048)
    max_pixels: int = Field(default=50_000_000, ge=1)
    body_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """Longest pause allowed between two pieces of a request body before 408 (slow-body attacks)."""
    low_confidence_below: float = Field(default=0.6, ge=0, le=1)
    webhook_secret: str | None = Field(default=None, min_length=16)
    generalist_url: str | None = None
    """OpenAI-compatible generalist server (vLLM / lmdeploy serving MedDr); none: consensus only."""
    generalist_model: str = "MedDr"
    webhook_max_age_s: int = Field(default=300, ge=1)

    @property
    def home(self) -> Path:
        return self.registry.home

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home / 'hub' / 'hub.db'}"


def load_settings(
    registry: RegistryConfig, config_file: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> ServiceSettings:
    """Merge file, environment and ``overrides`` (None values ignored); ``ConfigError`` names the key."""
    values: dict[str, Any] = {}
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError("the --config file does not exist", hint="pass a YAML file of hub settings")
        try:
            loaded = yaml.safe_load(config_file.read_text()) or {}
        except yaml.YAMLError:
            raise ConfigError("the --config file is not valid YAML", hint="fix the file") from None
        if not isinstance(loaded, dict):
            raise ConfigError("the --config file must be a mapping of setting: value")
        values.update(loaded)
    for key in ServiceSettings.model_fields:
        env = ENV_PREFIX + key.upper()
        if key != "registry" and os.environ.get(env):
            values[key] = os.environ[env]
    if isinstance(values.get("tasks"), str):
        values["tasks"] = [t.strip() for t in values["tasks"].split(",") if t.strip()]
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    values["registry"] = registry
    return validated(
        ServiceSettings,
        values,
        what="hub setting ",
        hint=lambda key: f"fix the --config file or {ENV_PREFIX}{key.upper()}",
    )
