"""One exception hierarchy for the whole platform.

Every error a user can cause carries a stable ``code`` (documented in ``docs/errors.md``, a test
checks the catalogue is complete), a plain message that says what to do next, and the HTTP status
the hub maps it to. Messages never carry patient data or file paths of site data.
"""

from __future__ import annotations


class GscoError(Exception):
    """Base class: a failure with a stable code, a plain message and an exit/HTTP mapping."""

    code: str = "GSCO-000"
    http_status: int = 500
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}" + (f" ({self.hint})" if self.hint else "")


class ConfigError(GscoError):
    """A configuration file or environment variable is missing or invalid (names the key)."""

    code = "GSCO-100"
    http_status = 400
    exit_code = 2


class DataError(GscoError):
    """Site data cannot be used: empty, unreadable, wrong labels, missing classes."""

    code = "GSCO-200"
    http_status = 400
    exit_code = 3


class InputLimitError(DataError):
    """An input file is beyond a safety limit (pixel count, array size) or lies about its size."""

    code = "GSCO-210"
    http_status = 413
    exit_code = 2


class ModelError(GscoError):
    """A backbone cannot be built, loaded or exported."""

    code = "GSCO-300"
    http_status = 400
    exit_code = 4


class ExportError(GscoError):
    """Export failed: parity, anonymization or PHI scan."""

    code = "GSCO-310"
    http_status = 400
    exit_code = 4


class PrivacyError(ExportError):
    """A string that could identify a patient, user, host or path was found in an artifact."""

    code = "GSCO-320"


class KeyMaterialError(GscoError):
    """A signing key is missing, unreadable, already present or the passphrase is wrong."""

    code = "GSCO-400"
    http_status = 400
    exit_code = 5


class SignatureError(GscoError):
    """A bundle signature does not verify (tampered artifact or untrusted key)."""

    code = "GSCO-410"
    http_status = 403
    exit_code = 6


class RegistryError(GscoError):
    """The registry refused an operation (unknown task, label mismatch, unknown version)."""

    code = "GSCO-500"
    http_status = 409
    exit_code = 7


class RegistryUnavailableError(RegistryError):
    """The registry cannot be reached after the configured retries."""

    code = "GSCO-510"
    http_status = 503
    exit_code = 8


class AuthError(RegistryError):
    """Credentials are missing or refused, or the site key is not enrolled / revoked."""

    code = "GSCO-520"
    http_status = 401
    exit_code = 9


class PolicyError(RegistryError):
    """An approval policy check failed; ``failures`` lists every failing check."""

    code = "GSCO-530"
    http_status = 422
    exit_code = 10

    def __init__(self, message: str, failures: list[str], *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.failures = failures


class CardError(RegistryError):
    """``card.json`` is not valid JSON, breaks the card schema or contradicts itself."""

    code = "GSCO-540"
    http_status = 422
    exit_code = 7


class AuditError(RegistryError):
    """The audit log's hash chain is broken: an entry was edited or deleted outside the registry."""

    code = "GSCO-550"
    http_status = 500
    exit_code = 13


class PermissionDeniedError(AuthError):
    """The caller is known but its role may not do this (the hub's clinician vs admin)."""

    code = "GSCO-525"
    http_status = 403


class ServingStateError(RegistryError):
    """The signed approved set of a task is missing, forged, rolled back or contradicted."""

    code = "GSCO-560"
    http_status = 409
    exit_code = 14


class RuntimeServiceError(GscoError):
    """The GSCo runtime cannot answer: no specialists loaded, generalist unavailable."""

    code = "GSCO-600"
    http_status = 503
    exit_code = 11


class GeneralistError(RuntimeServiceError):
    """The generalist backend failed, timed out or answered something unparseable."""

    code = "GSCO-610"
    http_status = 502


class RequestError(GscoError):
    """A request to the hub's HTTP API is malformed: a missing or invalid field or parameter."""

    code = "GSCO-800"
    http_status = 422
    exit_code = 14


class NotFoundError(RequestError):
    """The hub has no such task, diagnosis or reference case."""

    code = "GSCO-804"
    http_status = 404


class PayloadTooLargeError(RequestError):
    """An upload is larger than the hub's limit (``max_upload_mb``)."""

    code = "GSCO-813"
    http_status = 413


class ImageError(RequestError):
    """An image to diagnose (HTTP API or ``gsco-hub diagnose``) cannot be used.

    Not an image, truncated, no pixel data, too many pixels, NaN or constant pixels.
    """

    code = "GSCO-822"
    http_status = 422
    exit_code = 2


class FederationError(GscoError):
    """A federated run could not start, lost too many sites or failed."""

    code = "GSCO-700"
    http_status = 500
    exit_code = 12


class StudyError(GscoError):
    """A step of ``gsco-hub study`` (one of the real CLIs it runs) failed or printed no result."""

    code = "GSCO-710"
    http_status = 500
    exit_code = 16


class TopologyError(GscoError):
    """A service of the native topology (``make up``) did not start, stay healthy or stop."""

    code = "GSCO-900"
    http_status = 500
    exit_code = 15


def all_error_classes() -> list[type[GscoError]]:
    """Every error class of the catalogue (used by the docs-completeness test)."""
    seen: list[type[GscoError]] = []
    stack: list[type[GscoError]] = [GscoError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen
