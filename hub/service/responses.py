"""The one shape of every error answer: ``{"error": {"code": ..., "message": ...}}``."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from gsco_common.errors import GscoError


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers={"x-gsco-error": code}
    )


def gsco_error_response(exc: GscoError) -> JSONResponse:
    return error_response(exc.http_status, exc.code, str(exc))
