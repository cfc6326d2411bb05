"""Translate MLflow failures into the project's errors, and retry while the registry is away.

GSCo retries on its own (exponential backoff, ``RegistryConfig.retries``), so MLflow's built-in
HTTP retries are turned off unless ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` is set explicitly;
otherwise an unreachable server would take minutes to report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import requests
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import OperationalError

from gsco_common.errors import AuthError, RegistryError, RegistryUnavailableError

T = TypeVar("T")

_AUTH_CODES = {"UNAUTHENTICATED", "PERMISSION_DENIED"}
_UNAVAILABLE_CODES = {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}


def mlflow_client_defaults() -> None:
    """Default MLflow's HTTP retries, timeout, progress bars and run links to what suits GSCo.

    MLflow would otherwise print run links on stdout, which ``--json`` output must not carry.
    Explicitly set environment variables win.
    """
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def translate_mlflow_error(exc: MlflowException, *, action: str) -> RegistryError:
    """Map an MLflow error to ours; the message names the action, not the URL."""
    if exc.error_code in _AUTH_CODES:
        return AuthError(
            f"{action}: the registry refused the credentials",
            hint="set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to an account with access",
        )
    # RetryError: the server answered 429/5xx (MLflow's status retry list, e.g. a proxy's 503 while
    # the registry restarts) until MLflow's own retries ran out: as unavailable as a refused socket.
    away = (
        requests.exceptions.ConnectionError
        | requests.exceptions.Timeout
        | requests.exceptions.RetryError
        | OperationalError
    )
    unreachable = any(isinstance(cause, away) for cause in _causes(exc))
    if unreachable or exc.error_code in _UNAVAILABLE_CODES:
        return RegistryUnavailableError(f"{action}: the registry cannot be reached")
    if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
        return RegistryError(f"{action}: not found in the registry", hint="see `gsco-registry models list`")
    return RegistryError(f"{action}: the registry refused the request ({exc.error_code})")


@contextmanager
def mlflow_errors(action: str) -> Iterator[None]:
    try:
        yield
    except MlflowException as exc:
        raise translate_mlflow_error(exc, action=action) from None


def with_retries(call: Callable[[], T], *, retries: int, backoff_s: float, action: str) -> T:
    """Run ``call``; on :class:`RegistryUnavailableError` wait 1, 2, 4 ... x ``backoff_s`` and retry."""
    for attempt in range(retries):
        try:
            return call()
        except RegistryUnavailableError:
            time.sleep(backoff_s * 2**attempt)
    try:
        return call()
    except RegistryUnavailableError:
        raise RegistryUnavailableError(
            f"{action}: the registry is unreachable (gave up after {retries + 1} attempts)",
            hint="check the registry URI and that the server and its database are running, then retry",
        ) from None
