"""FastAPI dependencies for bearer-token auth: ``clinician`` for clinical routes, ``admin`` for the rest."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.service.tokens import TokenInfo

bearer = HTTPBearer(auto_error=False, description="A token from `gsco-hub tokens create`.")


def require(role: str) -> Callable[..., TokenInfo]:
    """A dependency returning the caller's token info (401 without a valid token, 403 wrong role)."""

    def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> TokenInfo:
        secret = credentials.credentials if credentials is not None else None
        return request.app.state.hub.tokens.authenticate(secret, role)

    return dependency
