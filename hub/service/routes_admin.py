"""Admin routes (audit trail, refresh) and the MLflow webhook target."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from hub.service import webhook
from hub.service.auth import require
from hub.service.form import read_capped
from hub.service.tokens import ADMIN, TokenInfo

router = APIRouter(prefix="/v1", tags=["admin"])
admin = require(ADMIN)
WEBHOOK_MAX_BYTES = 1024 * 1024


@router.get("/audit")
def audit(
    request: Request, limit: int = Query(100, ge=1, le=10_000), _: TokenInfo = Depends(admin)
) -> dict[str, Any]:
    """The newest audit entries (diagnoses, reviews, reports), oldest first."""
    return {"entries": request.app.state.hub.records.entries(limit)}


@router.post("/admin/refresh")
async def refresh(request: Request, _: TokenInfo = Depends(admin)) -> dict[str, Any]:
    """Re-poll the registry now: approvals and revocations apply before this answers."""
    return {"tasks": await run_in_threadpool(request.app.state.hub.runtime.refresh)}


@router.post("/admin/webhook")
async def mlflow_webhook(request: Request) -> dict[str, Any]:
    """MLflow model-registry webhook target (HMAC-verified); a delivery triggers a refresh."""
    hub = request.app.state.hub
    body = await read_capped(request.stream(), WEBHOOK_MAX_BYTES)
    webhook.verify(hub.settings.webhook_secret, dict(request.headers), body, hub.settings.webhook_max_age_s)
    return {"tasks": await run_in_threadpool(hub.runtime.refresh)}
