"""Bearer tokens with a role (``clinician`` or ``admin``), stored hashed in the hub database.

A token is 32 random bytes (URL-safe base64, prefix ``gsco_``); the database keeps only its
SHA-256, so a copy of the database does not let anyone in. The secret is returned once, by
:meth:`TokenStore.create`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from gsco_common.errors import AuthError, ConfigError, PermissionDeniedError, RegistryError
from hub.service.database import HubDatabase, TokenRow

CLINICIAN = "clinician"
ADMIN = "admin"
ROLES = (CLINICIAN, ADMIN)
PREFIX = "gsco_"


@dataclass(frozen=True)
class TokenInfo:
    """A token's public record (never the secret)."""

    id: int
    name: str
    role: str
    created_at: str
    revoked_at: str | None

    @property
    def actor(self) -> str:
        """How the audit trail names the holder: role, name and token id."""
        return f"{self.role}:{self.name}#{self.id}"

    def allows(self, role: str) -> bool:
        """Admins may do everything a clinician may."""
        return self.role == ADMIN or self.role == role

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _info(row: TokenRow) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        role=row.role,
        created_at=row.created_at.isoformat(),
        revoked_at=row.revoked_at.isoformat() if row.revoked_at else None,
    )


class TokenStore:
    """Create, list, revoke and check tokens."""

    def __init__(self, db: HubDatabase) -> None:
        self.db = db

    def create(self, role: str, name: str) -> tuple[TokenInfo, str]:
        """A new token: its record and the secret (shown once, never stored)."""
        if role not in ROLES:
            raise ConfigError(f"--role must be one of {', '.join(ROLES)}")
        if not name.strip() or len(name) > 120:
            raise ConfigError("--name must be 1 to 120 characters")
        secret = PREFIX + secrets.token_urlsafe(32)
        with self.db.session() as session:
            row = TokenRow(
                name=name.strip(), role=role, token_hash=_hash(secret), created_at=datetime.now(UTC)
            )
            session.add(row)
            session.flush()
            return _info(row), secret

    def list(self) -> list[TokenInfo]:
        with self.db.session() as session:
            return [_info(row) for row in session.scalars(select(TokenRow).order_by(TokenRow.id))]

    def revoke(self, token_id: int) -> TokenInfo:
        with self.db.session() as session:
            row = session.get(TokenRow, token_id)
            if row is None:
                raise RegistryError(f"no token with id {token_id}", hint="see `gsco-hub tokens list`")
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            return _info(row)

    def authenticate(self, secret: str | None, role: str) -> TokenInfo:
        """The caller's token if it is known, active and allowed ``role``; 401 / 403 errors otherwise."""
        if not secret:
            raise AuthError("a bearer token is required", hint="send 'Authorization: Bearer <token>'")
        with self.db.session() as session:
            row = session.scalars(select(TokenRow).where(TokenRow.token_hash == _hash(secret))).first()
            info = _info(row) if row is not None else None
        if info is None or info.revoked_at is not None:
            raise AuthError("the token is unknown or revoked", hint="ask an admin for a token")
        if not info.allows(role):
            raise PermissionDeniedError(f"this needs the {role} role", hint="use an admin token")
        return info
