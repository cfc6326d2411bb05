"""The FastAPI app: state, lifespan (warm runtime), error shape, metrics, routes and the web page.

Every 4xx / 5xx answer has the same JSON body, ``{"error": {"code": ..., "message": ...}}``,
with the stable codes of ``docs/errors.md``; an unexpected failure is logged once by the
metrics middleware (which counts it as a 500) and answered with code GSCO-000 and no internal
detail. Of a request with a body (an upload, a review's comment) the log gets the traceback
without the exceptions' messages: libraries quote the values they fail on (pydicom, highdicom:
``Unable to convert '19761231-19770101' to 'DA' object``), and those may be a patient's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match, Mount

from gsco_common.errors import GscoError
from hub.service import routes_admin, routes_clinical
from hub.service.audit import HubRecords
from hub.service.body_limit import BodyLimit
from hub.service.database import HubDatabase
from hub.service.dicom_sr import hub_version
from hub.service.fhir import r4_models
from hub.service.headers import add_protective_headers
from hub.service.intake import quiet_dicom_value_checks
from hub.service.metrics import CONTENT_TYPE, ServiceMetrics
from hub.service.responses import error_response, gsco_error_response
from hub.service.runtime import ServiceRuntime
from hub.service.settings import ServiceSettings
from hub.service.tokens import TokenStore

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parents[1] / "web"
SETTINGS_ENV = "GSCO_HUB_SERVE_SETTINGS"


@dataclass
class HubState:
    """What the routes use: settings, database stores, the warm runtime and the metrics."""

    settings: ServiceSettings
    db: HubDatabase
    tokens: TokenStore
    records: HubRecords
    runtime: ServiceRuntime
    metrics: ServiceMetrics


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GscoError)
    async def gsco_error(request: Request, exc: GscoError) -> JSONResponse:
        return gsco_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"])
        return error_response(422, "GSCO-800", f"invalid request: {where}: {first['msg']}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code in (404, 405):
            taken = _api_methods_on(request)
            if taken and request.method not in taken:
                return _method_not_allowed(request, taken)
            if exc.status_code == 405:  # the static page's mounts
                return _method_not_allowed(request, list(STATIC_METHODS))
            return error_response(404, "GSCO-804", str(exc.detail))
        # FastAPI answers a body it cannot decode (a JSON body that is not UTF-8) with 400:
        # a malformed request, GSCO-800, which is a 422 everywhere else.
        status = 422 if exc.status_code == 400 else exc.status_code
        return error_response(status, "GSCO-800", str(exc.detail))


STREAMED_BODIES = {("POST", "/v1/diagnoses"), ("POST", "/v1/reports"), ("POST", "/v1/admin/webhook")}
"""Routes that read their (large) bodies as a capped stream themselves (``form.read_capped``)."""
CLIENT_CLOSED = 499
"""What the metrics count for a request whose client left before it was read (nginx's code)."""
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
STATIC_METHODS = ("GET", "HEAD")
"""What the page's static mounts serve: every path no API route takes is theirs."""


def _api_methods_on(request: Request) -> list[str]:
    """The methods the API's routes take on the request's path (none: not an API path).

    A method no route takes goes on to the static mount at ``/``, which answers 404 for GET and
    405 naming no methods otherwise, so the routes (all but the mounts) are asked for each method.
    """
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    return [
        method
        for method in HTTP_METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


def _method_not_allowed(request: Request, taken: list[str]) -> JSONResponse:
    allowed = ", ".join(taken)
    answer = error_response(
        405, "GSCO-800", f"{request.method} is not allowed on {request.url.path}; it takes {allowed}"
    )
    answer.headers["Allow"] = allowed
    return answer


BODY_METHODS = ("POST", "PUT", "PATCH")
"""Requests whose body (an upload, free text) an exception's message may quote."""


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Log an unhandled failure once and answer GSCO-000 without internal detail."""
    if request.method in BODY_METHODS:
        log.error(
            "unexpected failure on %s %s (exception messages left out: they may quote the request)\n%s",
            request.method,
            request.url.path,
            _without_messages(exc),
        )
    else:
        log.error("unexpected failure on %s", request.url.path, exc_info=exc)
    return error_response(500, "GSCO-000", "internal error; the hub's log has the details")


def _without_messages(exc: BaseException) -> str:
    """The traceback of ``exc`` and of the exceptions it chains, each by its type and frames only."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_list(traceback.extract_tb(current.__traceback__)))
        kind = type(current)
        parts.append(f"Traceback (most recent call last):\n{frames}{kind.__module__}.{kind.__qualname__}\n")
        if current.__cause__ is not None:
            current = current.__cause__
            parts.append("\nThe above exception was the direct cause of the following exception:\n\n")
        elif current.__context__ is not None and not current.__suppress_context__:
            current = current.__context__
            parts.append("\nDuring handling of the above exception, another exception occurred:\n\n")
        else:
            current = None
    if len(parts) % 2 == 0:  # a cycle ended the walk after a link
        parts.pop()
    return "".join(reversed(parts)).rstrip("\n")


def _route_of(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")


def create_app(settings: ServiceSettings) -> FastAPI:
    """The hub app for ``settings``; the runtime starts (and loads the specialists) in the lifespan."""
    quiet_dicom_value_checks()
    db = HubDatabase(settings.database_url)
    swaps: list[ServiceMetrics] = []
    runtime = ServiceRuntime(settings, on_swap=lambda: swaps[0].swaps.inc())
    metrics = ServiceMetrics(runtime.models_loaded, runtime.cache_age_s)
    swaps.append(metrics)
    state = HubState(settings, db, TokenStore(db), HubRecords(db), runtime, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(runtime.start)  # the loop stays free meanwhile
        app.state.fhir_models = threading.Thread(target=r4_models, name="fhir-r4-models", daemon=True)
        app.state.fhir_models.start()  # seconds of imports, off the first FHIR answer's path
        yield
        runtime.close()
        db.close()

    app = FastAPI(
        title="GSCo hub",
        version=hub_version(),
        description="Decision support from approved specialists, similar cases and a generalist. "
        "AI generated, not for clinical use without clinician review.",
        lifespan=lifespan,
        # Swagger UI and ReDoc load their scripts from a public CDN, on the origin whose page keeps
        # the clinician's token: only the schema is served (``/openapi.json``).
        docs_url=None,
        redoc_url=None,
    )
    app.state.hub = state
    _install_error_handlers(app)
    app.add_middleware(BodyLimit, streamed=STREAMED_BODIES, idle_timeout_s=settings.body_timeout_s)

    @app.middleware("http")
    async def measure(request: Request, call_next: Any) -> Response:
        start = time.perf_counter()
        try:
            response = await call_next(request)
        except ClientDisconnect:  # the client went away mid-body: nobody to answer, nothing broke
            log.info("the client closed the connection before its request to %s was read", request.url.path)
            response = error_response(CLIENT_CLOSED, "GSCO-800", "the client closed the connection")
        except Exception as exc:  # answered here, so it is counted and Starlette does not log it again
            response = _unexpected(request, exc)
        route = _route_of(request)
        metrics.requests.labels(route=route, status=str(response.status_code)).inc()
        metrics.latency.labels(route=route).observe(time.perf_counter() - start)
        if response.status_code >= 400:
            metrics.errors.labels(code=response.headers.get("x-gsco-error", str(response.status_code))).inc()
        add_protective_headers(request.url.path, response.headers)
        return response

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """Ready to answer: every served task has an approved specialist (from the cache: degraded)."""
        ready = runtime.readiness()
        body = {"status": ready.status, "reason": ready.reason, "tasks": runtime.models_loaded()}
        return JSONResponse(body, status_code=200 if ready.ready else 503)

    @app.get("/metrics", tags=["health"], response_class=Response)
    def prometheus() -> Response:
        """Prometheus text format."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    app.include_router(routes_clinical.router)
    app.include_router(routes_admin.router)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    return app


def app_from_env() -> FastAPI:
    """Uvicorn's factory in each worker process: settings come from ``GSCO_HUB_SERVE_SETTINGS``."""
    return create_app(ServiceSettings.model_validate(json.loads(os.environ[SETTINGS_ENV])))
