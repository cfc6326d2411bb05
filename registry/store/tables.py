"""The registry's own tables (SQLAlchemy), next to MLflow's in the same database by default.

All names carry the ``gsco_`` prefix so they never collide with MLflow's tables. The schema is
versioned in ``gsco_schema_version``; :data:`SCHEMA_VERSION` is what this code writes and reads.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 2
"""2 added ``gsco_site_retired_keys`` (key rotation); ``gsco-registry init`` upgrades a version 1."""


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    __tablename__ = "gsco_schema_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TaskRow(Base):
    __tablename__ = "gsco_tasks"

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    labels: Mapped[list[str]] = mapped_column(JSON)
    modality: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class _KeyState:
    """A site signing key's PEM and its status; ``revoked_at`` is set when it stops being trusted."""

    public_key_pem: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SiteRow(_KeyState, Base):
    __tablename__ = "gsco_sites"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(80), unique=True)
    enrolled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RetiredKeyRow(_KeyState, Base):
    """A site's earlier signing key, replaced by ``sites rotate``: its bundles stay trusted until revoked."""

    __tablename__ = "gsco_site_retired_keys"

    fingerprint: Mapped[str] = mapped_column(String(80), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    retired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApprovalRow(Base):
    """One review decision on a model version: approved, rejected or revoked."""

    __tablename__ = "gsco_approvals"
    __table_args__ = (UniqueConstraint("model_name", "version", "decision", "decided_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(250))
    version: Mapped[str] = mapped_column(String(32))
    bundle_digest: Mapped[str] = mapped_column(String(80))
    decision: Mapped[str] = mapped_column(String(16))
    reviewer: Mapped[str] = mapped_column(String(120))
    note: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditRow(Base):
    """One hash-chained audit entry; see :mod:`registry.store.audit`."""

    __tablename__ = "gsco_audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(300))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))
