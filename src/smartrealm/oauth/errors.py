"""OAuth 2 errors that render themselves (RFC 6749 §4.1.2.1, §5.2; RFC 7591 §3.2.2;
RFC 8707 §2; OIDC Core §3.1.2.6).

Call sites raise ``InvalidGrant("code was already used")``; the class knows its RFC code and
HTTP status, and builds the JSON body, the headers and the error redirect. No call site types
an error string.
"""

# ruff: noqa: N818  (exception names are the RFC error codes, not *Error)
from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit, urlunsplit

from smartrealm.core.defaults import OUTAGE_RETRY_AFTER

# Every token-endpoint answer, errors included, must not be cached (SMART §4.1, RFC 6749 §5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """Base class: ``error`` is the RFC code, ``status`` the HTTP status of a JSON answer."""

    error = "invalid_request"
    status = 400

    def __init__(self, description: str = "", *, status: int | None = None) -> None:
        super().__init__(description or self.error)
        self.description = description
        if status is not None:
            self.status = status

    def body(self) -> dict[str, str]:
        data = {"error": self.error}
        if self.description:
            data["error_description"] = self.description
        return data

    def json_bytes(self) -> bytes:
        return json.dumps(self.body()).encode()

    def headers(self, *, basic_auth_used: bool = False) -> dict[str, str]:
        return {**NO_STORE, "Content-Type": "application/json"}

    def redirect_url(self, redirect_uri: str, state: str | None, iss: str | None = None) -> str:
        """The error redirect of RFC 6749 §4.1.2.1: ``state`` echoed when the request had one;
        ``iss`` added per RFC 9207 so the client can tell which AS answered."""
        params = dict(self.body())
        if state is not None:
            params["state"] = state
        if iss is not None:
            params["iss"] = iss
        return add_query(redirect_uri, params)


def add_query(url: str, params: dict[str, str]) -> str:
    """Append ``params`` to ``url``, keeping any query the registered redirect URI has."""
    parts = urlsplit(url)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed (RFC 6749 §5.2): 401, and a ``WWW-Authenticate`` challenge
    when the client tried HTTP Basic."""

    error = "invalid_client"
    status = 401

    def headers(self, *, basic_auth_used: bool = False) -> dict[str, str]:
        headers = super().headers()
        if basic_auth_used:
            headers["WWW-Authenticate"] = 'Basic realm="token", charset="UTF-8"'
        return headers


class TooManyFailures(InvalidClient):
    """Client authentication refused without a check because this client_id failed too often
    from this caller (oauth/client_auth.py). RFC 6749 §5.2 has no code for it: the code stays
    ``invalid_client`` (what happened), the status is 429 with ``Retry-After`` (RFC 6585 §4),
    so a client's retry logic backs off instead of reporting a wrong secret."""

    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed client authentications; try again later")
        self.retry_after = max(1, retry_after)

    def headers(self, *, basic_auth_used: bool = False) -> dict[str, str]:
        return {**OAuthError.headers(self), "Retry-After": str(self.retry_after)}


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the requested resource is invalid, missing, unknown or malformed."""

    error = "invalid_target"


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 403


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class ServerError(OAuthError):
    error = "server_error"
    status = 500


class TemporarilyUnavailable(OAuthError):
    """RFC 6749 §4.1.2.1: the server cannot handle the request now (its database is out);
    the client may retry after ``Retry-After`` seconds."""

    error = "temporarily_unavailable"
    status = 503

    def headers(self, *, basic_auth_used: bool = False) -> dict[str, str]:
        return {**super().headers(), "Retry-After": str(OUTAGE_RETRY_AFTER)}


class LoginRequired(OAuthError):
    """OIDC Core §3.1.2.6: ``prompt=none`` but the user must log in (no SSO session here)."""

    error = "login_required"


class InvalidClientMetadata(OAuthError):
    error = "invalid_client_metadata"


class InvalidRedirectUri(OAuthError):
    error = "invalid_redirect_uri"


class UnapprovedSoftwareStatement(OAuthError):
    """RFC 7591 §3.2.2: the software statement is not approved for use by this server."""

    error = "unapproved_software_statement"


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1: the AS does not revoke tokens of the type the hint names."""

    error = "unsupported_token_type"


class InvalidToken(OAuthError):
    """RFC 6750 §3.1: the Bearer token a caller authenticated with is not active (RFC 7662
    §2.3 answers a bad Bearer token at the introspection endpoint this way)."""

    error = "invalid_token"
    status = 401

    def headers(self, *, basic_auth_used: bool = False) -> dict[str, str]:
        return {**super().headers(),
                "WWW-Authenticate": 'Bearer error="invalid_token", '
                                    'error_description="the access token is not active"'}
