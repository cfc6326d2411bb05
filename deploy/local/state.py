"""What one run of the topology wrote: its databases, URLs, homes and generated secrets.

``STATE/topology.json`` (read by ``status``, ``start``, ``stop``, the tests and the operator) and
``STATE/secrets/NAME`` (mode 0600, one secret per file, never printed).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from gsco_common.errors import ConfigError

MARKER = ".gsco-topology"
STATE_FILE = "topology.json"


@dataclass(frozen=True)
class RunState:
    """The resolved facts of a run (everything a client needs, no secret)."""

    run_id: str
    state_dir: str
    mlflow_db: str
    hub_db: str
    mlflow_db_url: str
    hub_db_url: str
    mlflow_url: str
    superlink: str
    superlink_ca: str
    central_home: str
    central_key: str
    hub_config: str
    hubs: dict[str, str]
    """Replica name -> base URL."""
    object_store: str

    def save(self) -> None:
        (Path(self.state_dir) / STATE_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, state_dir: Path) -> RunState:
        path = state_dir / STATE_FILE
        if not path.is_file():
            raise ConfigError(f"no topology runs from {state_dir}", hint="start it with `make up`")
        return cls(**json.loads(path.read_text()))


class Secrets:
    """Generated passwords and tokens of a run, one 0600 file each under ``STATE/secrets``."""

    def __init__(self, state_dir: Path) -> None:
        self.folder = state_dir / "secrets"

    def path(self, name: str) -> Path:
        return self.folder / name

    def get(self, name: str) -> str:
        path = self.path(name)
        if not path.is_file():
            raise ConfigError(
                f"the secret {name} of this run is missing", hint="run `make down` and `make up`"
            )
        return path.read_text().strip()

    def put(self, name: str, value: str) -> str:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.path(name)
        path.touch(mode=0o600)
        path.write_text(value + "\n")
        return value

    def create(self, name: str) -> str:
        """A new random secret (URL-safe, 32 bytes of entropy)."""
        return self.put(name, secrets.token_urlsafe(32))
