"""Engine, sessions and schema version of the registry's own tables.

Database failures are translated at this boundary: an unreachable server becomes
:class:`RegistryUnavailableError` (retried by callers), refused credentials :class:`AuthError`.
Messages never echo the URL, which may carry a password.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gsco_common.errors import AuthError, ConfigError, RegistryError, RegistryUnavailableError
from registry.store.tables import SCHEMA_VERSION, ApprovalRow, AuditRow, Base, SchemaVersion

_AUTH_MARKERS = ("password authentication failed", "no password supplied", "authentication failed")


def translate_db_error(exc: DBAPIError) -> RegistryError:
    """Map a driver error to the project's error (never including the URL)."""
    text = str(exc.orig) if exc.orig is not None else str(exc)
    if any(marker in text for marker in _AUTH_MARKERS):
        return AuthError(
            "the registry database refused the credentials", hint="check the user and password in the DB URL"
        )
    if isinstance(exc, OperationalError):
        return RegistryUnavailableError(
            "the registry database cannot be reached", hint="check that the database server is running"
        )
    return RegistryError(f"the registry database refused the operation ({exc.__class__.__name__})")


def _unusable_url(exc: Exception) -> ConfigError:
    if isinstance(exc, ImportError):
        return ConfigError(
            f"registry.db_uri (else the tracking URI) needs the database driver {exc.name}, "
            "which is not installed",
            hint="use postgresql+psycopg2://USER@HOST:5432/DB (psycopg2 is installed)",
        )
    return ConfigError(
        f"registry.db_uri (else the tracking URI) is not a usable database URL ({exc.__class__.__name__})",
        hint="use sqlite:///PATH or postgresql+psycopg2://USER@HOST:5432/DB",
    )


def _url(uri: str) -> URL:
    try:
        return make_url(uri)
    except (ArgumentError, ValueError) as exc:
        raise _unusable_url(exc) from None


def _sqlite_path(uri: str) -> Path | None:
    url = _url(uri)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def _engine(uri: str) -> Engine:
    url = _url(uri)
    connect_args = {"connect_timeout": 5} if url.get_backend_name() == "postgresql" else {}
    try:
        engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        raise _unusable_url(exc) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def has_history(uri: str) -> bool:
    """Whether the database at ``uri`` already holds registry history: audit entries or decisions."""
    path = _sqlite_path(uri)
    if path is not None and not path.is_file():
        return False
    engine = _engine(uri)
    try:
        present = set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            return any(
                conn.execute(select(table).limit(1)).first() is not None
                for table in (AuditRow, ApprovalRow)
                if table.__tablename__ in present
            )
    except DBAPIError as exc:
        raise translate_db_error(exc) from None
    finally:
        engine.dispose()


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.close()


class Tables:
    """Access to the own tables of one database."""

    def __init__(self, uri: str, *, create: bool = False) -> None:
        path = _sqlite_path(uri)
        if path is not None and not create and not path.is_file():
            raise RegistryError(
                "no registry database here", hint="run `gsco-registry init` (or check --home / GSCO_HOME)"
            )
        self.engine = _engine(uri)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if create:
            self._create_schema()
        else:
            self._check_schema()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except DBAPIError as exc:
            session.rollback()
            raise translate_db_error(exc) from None
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _create_schema(self) -> None:
        try:
            Base.metadata.create_all(self.engine)
        except DBAPIError as exc:
            raise translate_db_error(exc) from None
        with self.session() as session:
            versions = session.scalars(select(SchemaVersion.version)).all()
            found = max(versions, default=None)
            if found in _ADDITIVE_UPGRADES:  # create_all above added the newer tables
                session.add(SchemaVersion(version=SCHEMA_VERSION, applied_at=datetime.now(UTC)))
            elif found != SCHEMA_VERSION:
                raise _version_error(found)

    def _check_schema(self) -> None:
        try:
            present = inspect(self.engine).has_table(SchemaVersion.__tablename__)
        except DBAPIError as exc:
            raise translate_db_error(exc) from None
        if not present:
            raise RegistryError("the registry tables are not initialised", hint="run `gsco-registry init`")
        with self.session() as session:
            version = max(session.scalars(select(SchemaVersion.version)).all(), default=None)
        if version != SCHEMA_VERSION:
            raise _version_error(version)

    def dispose(self) -> None:
        self.engine.dispose()


_ADDITIVE_UPGRADES: frozenset[int | None] = frozenset({None, 1})
"""Versions ``init`` brings to :data:`SCHEMA_VERSION` by creating tables only (None: a new database)."""


def _version_error(found: int | None) -> RegistryError:
    return RegistryError(
        f"the registry tables have schema version {found}, this software needs {SCHEMA_VERSION}",
        hint="upgrade gsco on every machine that uses this registry; then run `gsco-registry init` once",
    )
