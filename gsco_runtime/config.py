"""Runtime settings: ``<home>/hub/runtime.yaml`` < environment < explicit overrides (flags).

Validated at load; an error names the offending key.
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
from gsco_runtime.rad.index import IndexSettings

RUNTIME_FILE = Path("hub") / "runtime.yaml"
ENV_OVERRIDES = {
    "GSCO_RUNTIME_THREADS": "threads",
    "GSCO_POLL_INTERVAL_S": "poll_interval_s",
    "GSCO_RUNTIME_CACHE": "cache_dir",
}


class RuntimeSettings(BaseModel):
    """How the runtime loads, batches and retrieves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path
    cache_dir: Path | None = None
    poll_interval_s: float = Field(default=10.0, gt=0)
    threads: int = Field(default=2, ge=1, le=256)
    max_batch: int = Field(default=16, ge=1, le=1024)
    max_wait_ms: float = Field(default=2.0, ge=0, le=1000)
    k: int = Field(default=10, ge=1, le=1000)
    exact_threshold: int = Field(default=IndexSettings.exact_threshold, ge=1)
    hnsw_m: int = Field(default=IndexSettings.hnsw_m, ge=4, le=256)
    ef_construction: int = Field(default=IndexSettings.ef_construction, ge=8)
    ef_search: int = Field(default=IndexSettings.ef_search, ge=8)
    generalist_timeout_s: float = Field(default=120.0, gt=0)

    @property
    def resolved_cache_dir(self) -> Path:
        return self.cache_dir or self.home / "hub" / "cache"

    @property
    def index_settings(self) -> IndexSettings:
        return IndexSettings(self.exact_threshold, self.hnsw_m, self.ef_construction, self.ef_search)


def load_runtime_settings(home: Path, overrides: Mapping[str, Any] | None = None) -> RuntimeSettings:
    """Merge the file, the environment and ``overrides`` (None values ignored) and validate."""
    values: dict[str, Any] = {}
    path = home / RUNTIME_FILE
    if path.is_file():
        try:
            values.update(yaml.safe_load(path.read_text()) or {})
        except yaml.YAMLError as exc:
            raise ConfigError("hub/runtime.yaml is not valid YAML", hint="fix the file") from exc
    values.update({key: os.environ[env] for env, key in ENV_OVERRIDES.items() if os.environ.get(env)})
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    values["home"] = home
    return validated(
        RuntimeSettings, values, what="runtime setting ", hint="fix hub/runtime.yaml or the flag"
    )
