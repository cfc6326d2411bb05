"""One exception hierarchy for the whole platform.

Every error a user can cause carries a stable ``code`` (documented in ``docs/errors.md``, a test
checks the catalogue is complete), a plain message that says what to do next, and the HTTP status
the hub maps it to. Messages never carry patient data or file paths of site data.
"""

from __future__ import annotations

from typing import ClassVar


class GscoError(Exception):
    """Base class: a failure with a stable code, a plain message and an exit/HTTP mapping.

    A subclass states its place in the catalogue in its class line, e.g.
    ``class DataError(GscoError, code="GSCO-200", http_status=400, exit_code=3)``; a status it
    leaves out is its parent's.
    """

    code: ClassVar[str] = "GSCO-000"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init_subclass__(
        cls, *, code: str, http_status: int | None = None, exit_code: int | None = None
    ) -> None:
        super().__init_subclass__()
        cls.code = code
        if http_status is not None:
            cls.http_status = http_status
        if exit_code is not None:
            cls.exit_code = exit_code

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}" + (f" ({self.hint})" if self.hint else "")


class ConfigError(GscoError, code="GSCO-100", http_status=400, exit_code=2):
    """A configuration file or environment variable is missing or invalid (names the key)."""


class DataError(GscoError, code="GSCO-200", http_status=400, exit_code=3):
    """Site data cannot be used: empty, unreadable, wrong labels, missing classes."""


class InputLimitError(DataError, code="GSCO-210", http_status=413, exit_code=2):
    """An input file is beyond a safety limit (pixel count, array size) or lies about its size."""


class ModelError(GscoError, code="GSCO-300", http_status=400, exit_code=4):
    """A backbone cannot be built, loaded or exported."""


class ExportError(GscoError, code="GSCO-310", http_status=400, exit_code=4):
    """Export failed: parity, anonymization or PHI scan."""


class PrivacyError(ExportError, code="GSCO-320"):
    """A string that could identify a patient, user, host or path was found in an artifact."""


class KeyMaterialError(GscoError, code="GSCO-400", http_status=400, exit_code=5):
    """A signing key is missing, unreadable, already present or the passphrase is wrong."""


class SignatureError(GscoError, code="GSCO-410", http_status=403, exit_code=6):
    """A bundle signature does not verify (tampered artifact or untrusted key)."""


class RegistryError(GscoError, code="GSCO-500", http_status=409, exit_code=7):
    """The registry refused an operation (unknown task, label mismatch, unknown version)."""


class RegistryUnavailableError(RegistryError, code="GSCO-510", http_status=503, exit_code=8):
    """The registry cannot be reached after the configured retries."""


class AuthError(RegistryError, code="GSCO-520", http_status=401, exit_code=9):
    """Credentials are missing or refused, or the site key is not enrolled / revoked."""


class PolicyError(RegistryError, code="GSCO-530", http_status=422, exit_code=10):
    """An approval policy check failed; ``failures`` lists every failing check."""

    def __init__(self, message: str, failures: list[str], *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.failures = failures


class CardError(RegistryError, code="GSCO-540", http_status=422, exit_code=7):
    """``card.json`` is not valid JSON, breaks the card schema or contradicts itself."""


class AuditError(RegistryError, code="GSCO-550", http_status=500, exit_code=13):
    """The audit log's hash chain is broken: an entry was edited or deleted outside the registry."""


class PermissionDeniedError(AuthError, code="GSCO-525", http_status=403):
    """The caller is known but its role may not do this (the hub's clinician vs admin)."""


class ServingStateError(RegistryError, code="GSCO-560", http_status=409, exit_code=14):
    """The signed approved set of a task is missing, forged, rolled back or contradicted."""


class RuntimeServiceError(GscoError, code="GSCO-600", http_status=503, exit_code=11):
    """The GSCo runtime cannot answer: no specialists loaded, generalist unavailable."""


class GeneralistError(RuntimeServiceError, code="GSCO-610", http_status=502):
    """The generalist backend failed, timed out or answered something unparseable."""


class RequestError(GscoError, code="GSCO-800", http_status=422, exit_code=14):
    """A request to the hub's HTTP API is malformed: a missing or invalid field or parameter."""


class NotFoundError(RequestError, code="GSCO-804", http_status=404):
    """The hub has no such task, diagnosis or reference case."""


class RequestTimeoutError(RequestError, code="GSCO-808", http_status=408):
    """A request body stalled: no byte of it arrived for the hub's ``body_timeout_s``."""


class PayloadTooLargeError(RequestError, code="GSCO-813", http_status=413):
    """An upload is larger than the hub's limit (``max_upload_mb``)."""


class ImageError(RequestError, code="GSCO-822", http_status=422, exit_code=2):
    """An image to diagnose (HTTP API or ``gsco-hub diagnose``) cannot be used.

    Not an image, truncated, no pixel data, too many pixels, NaN or constant pixels.
    """


class FederationError(GscoError, code="GSCO-700", http_status=500, exit_code=12):
    """A federated run could not start, lost too many sites or failed."""


class StudyError(GscoError, code="GSCO-710", http_status=500, exit_code=16):
    """A step of ``gsco-hub study`` (one of the real CLIs it runs) failed or printed no result."""


class TopologyError(GscoError, code="GSCO-900", http_status=500, exit_code=15):
    """A service of the native topology (``make up``) did not start, stay healthy or stop."""


def all_error_classes() -> list[type[GscoError]]:
    """Every error class of the catalogue (used by the docs-completeness test)."""
    seen: list[type[GscoError]] = []
    stack: list[type[GscoError]] = [GscoError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen
