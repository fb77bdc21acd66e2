"""Typed errors of the client library. Every failure the library reports is a
``SmartClientError``; callers never have to catch ``Exception`` or an ``httpx`` error.

Layout:
* discovery / brands / registration failures have one class each;
* OAuth error *codes* (RFC 6749 §4.1.2.1, §5.2; RFC 8707 ``invalid_target``) have one
  ``AuthorizationError`` subclass each. The authorize redirect raises them directly; the token
  endpoint raises ``TokenError`` whose ``oauth`` attribute (also ``__cause__``) is the mapped
  subclass, so ``except TokenError`` catches every token-endpoint failure, transport included;
* FHIR API failures are ``FhirClientError``s; HTTP error statuses are ``FhirError`` with the
  parsed OperationOutcome (spec §4.6).
"""

# The class names follow the OAuth error codes and the public API the apps use
# (``InvalidGrant``, ``StateMismatch``), not pep8-naming's "Error" suffix.
# ruff: noqa: N818

from __future__ import annotations

from typing import Any, ClassVar


class SmartClientError(Exception):
    """Base class of every error raised by ``smartrealm.client``."""


class ClientUsageError(SmartClientError, ValueError):
    """The caller passed arguments the protocol does not allow (caught before any request)."""


class DiscoveryError(SmartClientError):
    """Neither ``.well-known/smart-configuration`` nor ``/metadata`` gave a usable
    configuration (spec §1.1, §1.5)."""


class BrandsError(SmartClientError):
    """The User-access Brands bundle could not be fetched or resolved (spec §2)."""


class TokenReuseNotPossible(SmartClientError):
    """One token cannot be used at every requested server; ``reasons`` names each server
    and why (the reuse rule: same AS endpoints and ``auth-multi-aud-token`` everywhere)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("token reuse not possible: " + "; ".join(reasons))
        self.reasons = list(reasons)


class RegistrationError(SmartClientError):
    """Dynamic client registration failed (RFC 7591 §3.2.2 error codes such as
    ``invalid_redirect_uri`` / ``invalid_client_metadata``; ``error`` is None on transport
    or malformed-response failures)."""

    def __init__(self, message: str, *, error: str | None = None, status: int | None = None):
        super().__init__(message)
        self.error = error
        self.status = status


class CallbackError(SmartClientError):
    """The redirect back to the app is malformed (no code, repeated parameters)."""


class StateMismatch(CallbackError):
    """The callback's ``state`` is missing or differs from the one sent: a possible CSRF
    (spec §3.2: the app SHALL validate state)."""


# --- OAuth error codes ------------------------------------------------------------------


class AuthorizationError(SmartClientError):
    """An OAuth error response. Subclasses fix ``code``; an unknown code yields this base
    class with ``error`` set to whatever the server sent."""

    code: ClassVar[str | None] = None

    def __init__(self, error: str, description: str | None = None) -> None:
        text = f"{error}: {description}" if description else error
        super().__init__(text)
        self.error = error
        self.description = description


class AccessDenied(AuthorizationError):
    code = "access_denied"


class InvalidRequest(AuthorizationError):
    code = "invalid_request"


class InvalidScope(AuthorizationError):
    code = "invalid_scope"


class InvalidTarget(AuthorizationError):
    code = "invalid_target"


class UnauthorizedClient(AuthorizationError):
    code = "unauthorized_client"


class InvalidClient(AuthorizationError):
    code = "invalid_client"


class InvalidGrant(AuthorizationError):
    code = "invalid_grant"


class UnsupportedGrantType(AuthorizationError):
    code = "unsupported_grant_type"


class UnsupportedResponseType(AuthorizationError):
    code = "unsupported_response_type"


class ServerError(AuthorizationError):
    code = "server_error"


class TemporarilyUnavailable(AuthorizationError):
    code = "temporarily_unavailable"


OAUTH_ERROR_CLASSES: dict[str, type[AuthorizationError]] = {
    cls.code: cls
    for cls in (
        AccessDenied,
        InvalidRequest,
        InvalidScope,
        InvalidTarget,
        UnauthorizedClient,
        InvalidClient,
        InvalidGrant,
        UnsupportedGrantType,
        UnsupportedResponseType,
        ServerError,
        TemporarilyUnavailable,
    )
    if cls.code is not None
}


def authorization_error(error: str, description: str | None = None) -> AuthorizationError:
    """The exception for an OAuth ``error`` code: its subclass, or the base class for a
    code this library does not know (e.g. OIDC ``login_required``)."""
    cls = OAUTH_ERROR_CLASSES.get(error, AuthorizationError)
    return cls(error, description)


class TokenError(SmartClientError):
    """The token endpoint refused or failed. ``oauth`` is the mapped ``AuthorizationError``
    when the server answered with an OAuth error body (RFC 6749 §5.2), else None
    (transport failure, non-JSON body, malformed success response)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        oauth: AuthorizationError | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.oauth = oauth

    @property
    def error(self) -> str | None:
        return self.oauth.error if self.oauth is not None else None

    @property
    def description(self) -> str | None:
        return self.oauth.description if self.oauth is not None else None


# --- FHIR API ---------------------------------------------------------------------------


class FhirClientError(SmartClientError):
    """Base of every failure of a ``FhirSession`` call."""


class FhirTransportError(FhirClientError):
    """No HTTP response at all (connection refused, timeout)."""


class FhirResponseError(FhirClientError):
    """A 2xx response that is not the FHIR JSON expected (wrong resourceType, not JSON)."""


class ForeignNextLink(FhirClientError):
    """A Bundle ``next`` link leaves the server's base. The token is not sent there
    (spec §4.6: do not blindly follow references with the token)."""

    def __init__(self, url: str, base_url: str) -> None:
        super().__init__(f"next link {url!r} is not on {base_url!r}; not following it")
        self.url = url
        self.base_url = base_url


class FhirError(FhirClientError):
    """An HTTP error status from the FHIR server; ``outcome`` is the OperationOutcome body
    when the server sent one."""

    def __init__(self, status: int, outcome: dict[str, Any] | None = None) -> None:
        super().__init__(f"HTTP {status}: {_outcome_text(outcome)}")
        self.status = status
        self.outcome = outcome


class _ChallengedError(FhirError):
    """A FHIR error that carries an RFC 6750 ``WWW-Authenticate: Bearer`` challenge."""

    def __init__(
        self,
        status: int,
        outcome: dict[str, Any] | None = None,
        challenge: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, outcome)
        self.challenge: dict[str, str] = dict(challenge or {})

    @property
    def error(self) -> str | None:
        """RFC 6750 §3.1 code: ``invalid_token``, ``insufficient_scope``, or None when the
        request carried no token."""
        return self.challenge.get("error")

    @property
    def error_description(self) -> str | None:
        return self.challenge.get("error_description")


class FhirUnauthorized(_ChallengedError):
    """401: no token, or the token is invalid/expired/not for this server."""


class FhirForbidden(_ChallengedError):
    """403: the token is valid but its scopes at this server do not cover the request."""


class FhirNotFound(FhirError):
    """404: unknown resource (or hidden from this token)."""


def _outcome_text(outcome: dict[str, Any] | None) -> str:
    if not outcome:
        return "no OperationOutcome"
    issues = outcome.get("issue")
    if not isinstance(issues, list):
        return "OperationOutcome without issues"
    parts = [_issue_text(issue) for issue in issues if isinstance(issue, dict)]
    return "; ".join(parts) or "OperationOutcome without issues"


def _issue_text(issue: dict[str, Any]) -> str:
    details = issue.get("details")
    detail = issue.get("diagnostics") or (
        details.get("text") if isinstance(details, dict) else None
    )
    code = str(issue.get("code", "?"))
    return f"{code}: {detail}" if detail else code


# --- EHR launch (spec §6.1) -------------------------------------------------------------


class LaunchRequestError(SmartClientError):
    """The EHR's request to the app's launch URL lacks a single ``iss`` or ``launch``, or
    ``iss`` is not an absolute http(s) URL (spec §6.1)."""


class UntrustedIssuer(LaunchRequestError):
    """The launch's ``iss`` is not on the app's allow-list: the app must not discover it or
    send the user's authorization there (spec §6.1, recommended client check)."""

    def __init__(self, iss: str) -> None:
        super().__init__(f"launch iss {iss!r} is not an allowed FHIR server")
        self.iss = iss


# --- more FHIR statuses (R4 http.html) ---------------------------------------------------


class FhirBadRequest(FhirError):
    """400: the request could not be parsed or failed validation."""


class FhirMethodNotAllowed(FhirError):
    """405: the server does not offer this interaction (e.g. a write on a read-only one)."""


class FhirConflict(FhirError):
    """409: a version conflict (update without If-Match racing another writer)."""


class FhirGone(FhirError):
    """410: the resource was deleted."""


class FhirPreconditionFailed(FhirError):
    """412: the ``If-Match`` version is no longer current."""


class FhirUnprocessable(FhirError):
    """422: the resource violates the server's profile or business rules."""


class FhirServerError(FhirError):
    """5xx: the server failed; the request may be retried later."""


FHIR_STATUS_CLASSES: dict[int, type[FhirError]] = {
    400: FhirBadRequest,
    404: FhirNotFound,
    405: FhirMethodNotAllowed,
    409: FhirConflict,
    410: FhirGone,
    412: FhirPreconditionFailed,
    422: FhirUnprocessable,
}
