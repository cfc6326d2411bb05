"""The hub database (SQLAlchemy): access tokens, stored decisions, their reviews and the audit trail.

SQLite under the hub home by default, a PostgreSQL URL in production (several replicas then
share tokens, decisions and audit). Tables carry the ``hub_`` prefix so the hub database may
be the registry's database too without a collision.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    cast,
    create_engine,
    event,
    inspect,
    select,
)
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from gsco_common.errors import ConfigError


class Base(DeclarativeBase):
    pass


class TokenRow(Base):
    """An access token: only its SHA-256 is stored; the secret is shown once when created."""

    __tablename__ = "hub_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DecisionRow(Base):
    """A decision as returned to the clinician (never the image); its reviews are :class:`ReviewRow`.

    ``review`` held the one review a hub kept before it kept them all; opening the database moves
    it to ``hub_reviews`` (:func:`_move_single_reviews`), so it is empty afterwards.
    """

    __tablename__ = "hub_decisions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict] = mapped_column(JSON)
    review: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class ReviewRow(Base):
    """One clinician review of a decision; a decision reviewed again keeps every earlier one."""

    __tablename__ = "hub_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decision_id: Mapped[str] = mapped_column(String(40), ForeignKey(DecisionRow.id), index=True)
    body: Mapped[dict] = mapped_column(JSON)


class AuditRow(Base):
    """One audit entry: who did what, on which task, with which image hash, models and outcome.

    Entries are hash-chained (``prev_hash`` is the previous entry's ``entry_hash``, see
    :mod:`hub.service.audit`); ``at`` is stored as ISO text so that the hashed value is exactly
    the stored one on every database.
    """

    __tablename__ = "hub_audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(140))
    action: Mapped[str] = mapped_column(String(32))
    task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    image_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class HubDatabase:
    """Engine and sessions of the hub database; creates the tables on first use."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            folder = Path(url.removeprefix("sqlite:///")).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"hub setting db_url: the SQLite file's folder {folder} cannot be made ({exc.strerror})",
                    hint="check db_url / GSCO_HUB_DB_URL (by default under the hub home, --home / GSCO_HOME)",
                ) from None
        try:
            self.engine: Engine = create_engine(url, pool_pre_ping=True)
        except (ArgumentError, ImportError) as exc:  # the URL itself is never echoed: it may hold a password
            raise ConfigError(
                f"hub setting db_url: not a usable database URL ({type(exc).__name__})",
                hint="e.g. sqlite:////var/lib/gsco/hub.db or postgresql+psycopg2://user@host/db",
            ) from None
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            Base.metadata.create_all(self.engine)
            audit_columns = {c["name"] for c in inspect(self.engine).get_columns(AuditRow.__tablename__)}
        except OperationalError:
            raise ConfigError(
                "the hub database cannot be opened", hint="check db_url / GSCO_HUB_DB_URL"
            ) from None
        if "entry_hash" not in audit_columns:
            raise ConfigError(
                "the hub database's audit table predates the hash-chained audit trail",
                hint="export it with `gsco-hub audit show --json`, then start with a new db_url",
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        with self.session() as session:
            _move_single_reviews(session)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on an error."""
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()


def _move_single_reviews(session: Session) -> None:
    """Move reviews a hub stored on the decision itself into ``hub_reviews`` (once; then none is left)."""
    # a JSON column stores Python None as JSON null, which SQL's IS NULL does not match
    stored = DecisionRow.review.is_not(None) & (cast(DecisionRow.review, String) != "null")
    for row in session.scalars(select(DecisionRow).where(stored)):
        session.add(ReviewRow(decision_id=row.id, body=row.review))
        row.review = None


def _sqlite_pragmas(connection: object, _record: object) -> None:
    """WAL and a busy timeout: several worker processes share one SQLite file."""
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
