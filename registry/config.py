"""Where the registry lives: embedded (one home folder) or a tracking server plus a database.

Precedence: command-line flag > environment variable > default.

* Embedded (default): ``sqlite:///GSCO_HOME/registry.db`` holds MLflow's tables and the
  registry's own tables; bundles go to ``GSCO_HOME/artifacts``; no server.
* Server: ``--tracking-uri http://...`` (or ``GSCO_TRACKING_URI``) points at ``mlflow server``
  (PostgreSQL backend, proxied artifacts, basic auth from ``MLFLOW_TRACKING_USERNAME`` /
  ``MLFLOW_TRACKING_PASSWORD``). The registry's own tables then need their database URL too:
  ``--db-uri`` / ``GSCO_REGISTRY_DB`` (site.yaml: ``registry.db_uri``), normally the same
  PostgreSQL database, e.g. ``postgresql+psycopg2://user@host:5432/mlflow``.
* Retries while the registry is unreachable: ``GSCO_REGISTRY_RETRIES`` (default 4) with
  exponential backoff from ``GSCO_REGISTRY_BACKOFF`` seconds (default 0.5).
* A database URI as tracking URI (``sqlite:///...``, ``postgresql+psycopg2://...``) talks to
  that database directly, without a server; the own tables default to the same database.

``GSCO_HOME/keys`` always holds the central approval key pair on the central team's machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gsco_common.errors import ConfigError

HOME_ENV = "GSCO_HOME"
TRACKING_ENV = "GSCO_TRACKING_URI"
DB_ENV = "GSCO_REGISTRY_DB"
RETRIES_ENV = "GSCO_REGISTRY_RETRIES"
BACKOFF_ENV = "GSCO_REGISTRY_BACKOFF"
DEFAULT_HOME = Path("~/.gsco")
DB_FILE = "registry.db"
TRACKING_SCHEMES = ("http://", "https://", "sqlite:", "postgresql", "mysql")
"""What a tracking URI starts with: an MLflow server, or the database of one (used without a server)."""
ARTIFACTS_DIR = "artifacts"
APPROVAL_KEY = "approval.key"
APPROVAL_PUB = "approval.pub"


class RegistryChoice(BaseModel):
    """Where a user chose the registry to be (``site.yaml``'s ``registry:``); unset keys fall back.

    :meth:`RegistryConfig.resolve` turns the choice into the resolved location (environment, then
    the embedded default fill what is unset).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    home: Path | None = None
    tracking_uri: str | None = None
    db_uri: str | None = None


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


class RegistryConfig(BaseModel):
    """Resolved registry location; build it with :meth:`resolve`."""

    model_config = ConfigDict(frozen=True)

    home: Path
    tracking_uri: str | None = None
    db_uri: str | None = None
    retries: int = Field(default=4, ge=0, le=20)
    backoff_s: float = Field(default=0.5, ge=0.0, le=60.0)

    @classmethod
    def resolve(
        cls,
        *,
        home: Path | str | None = None,
        tracking_uri: str | None = None,
        db_uri: str | None = None,
        retries: int | None = None,
        backoff_s: float | None = None,
    ) -> RegistryConfig:
        """Apply flag > environment > default for every setting."""
        home_value = home or os.environ.get(HOME_ENV) or DEFAULT_HOME
        extra: dict[str, object] = {}
        for key, value, env in (("retries", retries, RETRIES_ENV), ("backoff_s", backoff_s, BACKOFF_ENV)):
            if value is not None or os.environ.get(env):
                extra[key] = value if value is not None else os.environ[env]
        tracking = tracking_uri or os.environ.get(TRACKING_ENV) or None
        if tracking is not None and not tracking.startswith(TRACKING_SCHEMES):
            raise ConfigError(  # the URI is not echoed: it may hold a password
                "registry setting tracking_uri is neither an MLflow server's URL nor a database URL",
                hint=f"it starts with {', '.join(TRACKING_SCHEMES)} (--tracking-uri / {TRACKING_ENV} / "
                "site.yaml registry.tracking_uri); an embedded registry is a folder: --home",
            )
        try:
            return cls(
                home=Path(home_value).expanduser().resolve(),
                tracking_uri=tracking,
                db_uri=db_uri or os.environ.get(DB_ENV) or None,
                **extra,  # type: ignore[arg-type]
            )
        except ValidationError as exc:
            keys = ", ".join(str(err["loc"][0]) for err in exc.errors())
            raise ConfigError(
                f"invalid registry setting: {keys}", hint=f"check {RETRIES_ENV} / {BACKOFF_ENV}"
            ) from None

    @property
    def embedded(self) -> bool:
        return self.tracking_uri is None

    @property
    def server(self) -> bool:
        return self.tracking_uri is not None and _is_http(self.tracking_uri)

    @property
    def mlflow_uri(self) -> str:
        """The URI handed to ``MlflowClient`` as tracking and registry URI."""
        if self.tracking_uri is None:
            return f"sqlite:///{self.home / DB_FILE}"
        return self.tracking_uri

    @property
    def tables_uri(self) -> str:
        """SQLAlchemy URL of the registry's own tables (sites, approvals, audit)."""
        if self.db_uri:
            return self.db_uri
        if self.server:
            raise ConfigError(
                "registry.db_uri is required with a tracking server: the registry's own tables "
                "(sites, approvals, audit) live in a database",
                hint=f"pass --db-uri or set {DB_ENV} (site.yaml: registry.db_uri)",
            )
        return self.mlflow_uri

    @property
    def artifact_root(self) -> Path | None:
        """Local artifact folder for bundles; ``None`` when the server stores artifacts."""
        return None if self.server else self.home / ARTIFACTS_DIR

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def approval_key_path(self) -> Path:
        return self.keys_dir / APPROVAL_KEY

    @property
    def approval_pub_path(self) -> Path:
        return self.keys_dir / APPROVAL_PUB

    def describe(self) -> str:
        """A short, credential-free description for messages."""
        if self.embedded:
            return "embedded registry (GSCO_HOME)"
        return "registry server" if self.server else "registry database"
