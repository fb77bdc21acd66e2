"""FHIR errors: every failure is an OperationOutcome with the right HTTP status.

Call sites raise ``Forbidden("...")``; the class knows its status, its issue code
(http://hl7.org/fhir/valueset-issue-type.html) and, for 401/403, its RFC 6750 challenge."""

# The classes are named after the HTTP status they render (like oauth.errors' RFC codes).
# ruff: noqa: N818

from __future__ import annotations

from typing import Any, ClassVar

from smartrealm.core.defaults import OUTAGE_RETRY_AFTER


def operation_outcome(severity: str, code: str, diagnostics: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


class FhirError(Exception):
    """Base class: ``status`` and ``code`` are fixed per subclass."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "exception"

    def __init__(self, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics

    def outcome(self) -> dict[str, Any]:
        return operation_outcome("error", self.code, self.diagnostics)

    def headers(self, realm: str) -> dict[str, str]:
        """Extra response headers; ``realm`` is the server's base URL (RFC 6750 §3)."""
        return {}


class BadRequest(FhirError):
    status = 400
    code = "invalid"


class TooCostly(BadRequest):
    """A well-formed request larger than the server agrees to evaluate (a search over its
    limits, fhir/search/limits.py)."""

    code = "too-costly"


class Unauthorized(FhirError):
    """No usable token (RFC 6750 §3.1). ``error`` is None when no token was sent at all."""

    status = 401
    code = "login"

    def __init__(self, diagnostics: str, *, error: str | None = "invalid_token") -> None:
        super().__init__(diagnostics)
        self.error = error

    def headers(self, realm: str) -> dict[str, str]:
        return {"WWW-Authenticate": bearer_challenge(realm, self.error, self.diagnostics)}


class Forbidden(FhirError):
    """A valid token whose scopes do not cover the request (RFC 6750 §3.1, spec §4.6)."""

    status = 403
    code = "forbidden"

    def headers(self, realm: str) -> dict[str, str]:
        return {"WWW-Authenticate": bearer_challenge(realm, "insufficient_scope",
                                                     self.diagnostics)}


class NotFound(FhirError):
    status = 404
    code = "not-found"


class MethodNotAllowed(FhirError):
    status = 405
    code = "not-supported"


class Conflict(FhirError):
    """A concurrent write changed the resource first (FHIR R4 http.html#concurrency)."""

    status = 409
    code = "conflict"


class Gone(FhirError):
    status = 410
    code = "deleted"


class PreconditionFailed(FhirError):
    """``If-Match`` names a version that is not the current one (R4 http.html#concurrency)."""

    status = 412
    code = "conflict"


class MultipleMatches(PreconditionFailed):
    """A conditional create whose criteria match more than one resource (R4
    http.html#ccreate: "412 Precondition Failed ... criteria were not selective enough")."""

    code = "multiple-matches"


class PayloadTooLarge(FhirError):
    status = 413
    code = "too-costly"


class UnsupportedMediaType(FhirError):
    status = 415
    code = "not-supported"


class Unprocessable(FhirError):
    status = 422
    code = "processing"


class ServiceUnavailable(FhirError):
    """The server cannot answer now (its database or the AS's keys are out of reach); the
    client may retry after ``Retry-After`` seconds."""

    status = 503
    code = "transient"

    def headers(self, realm: str) -> dict[str, str]:
        return {"Retry-After": str(OUTAGE_RETRY_AFTER)}


class InternalError(FhirError):
    """Something we did not expect: the body never says what (no stack traces, no data)."""

    status = 500
    code = "exception"


def bearer_challenge(realm: str, error: str | None, description: str) -> str:
    """``Bearer realm="...", error="...", error_description="..."``. RFC 6750 §3 restricts
    the attribute values to printable ASCII without ``"`` and ``\\``."""
    parts = [f'realm="{_quoted(realm)}"']
    if error is not None:
        parts.append(f'error="{error}"')
        parts.append(f'error_description="{_quoted(description)}"')
    return "Bearer " + ", ".join(parts)


def _quoted(value: str) -> str:
    return "".join(ch for ch in value if 0x20 <= ord(ch) < 0x7F and ch not in '"\\')
