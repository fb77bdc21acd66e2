from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from smartrealm.oauth import errors

CASES = [
    (errors.InvalidRequest, "invalid_request", 400),
    (errors.InvalidClient, "invalid_client", 401),
    (errors.InvalidGrant, "invalid_grant", 400),
    (errors.UnauthorizedClient, "unauthorized_client", 400),
    (errors.UnsupportedGrantType, "unsupported_grant_type", 400),
    (errors.InvalidScope, "invalid_scope", 400),
    (errors.InvalidTarget, "invalid_target", 400),
    (errors.AccessDenied, "access_denied", 403),
    (errors.UnsupportedResponseType, "unsupported_response_type", 400),
    (errors.ServerError, "server_error", 500),
    (errors.InvalidClientMetadata, "invalid_client_metadata", 400),
    (errors.InvalidRedirectUri, "invalid_redirect_uri", 400),
]


@pytest.mark.parametrize(("cls", "code", "status"), CASES)
def test_each_error_renders_itself(cls: type[errors.OAuthError], code: str,
                                   status: int) -> None:
    error = cls("why")
    assert error.status == status
    assert json.loads(error.json_bytes()) == {"error": code, "error_description": "why"}
    headers = error.headers()
    assert headers["Cache-Control"] == "no-store" and headers["Pragma"] == "no-cache"
    url = error.redirect_url("https://app.example/cb?x=1", "s1", iss="https://as")
    query = parse_qs(urlsplit(url).query)
    assert query == {"x": ["1"], "error": [code], "error_description": ["why"],
                     "state": ["s1"], "iss": ["https://as"]}


def test_invalid_client_challenges_only_after_basic() -> None:
    assert "WWW-Authenticate" not in errors.InvalidClient().headers()
    assert errors.InvalidClient().headers(basic_auth_used=True)["WWW-Authenticate"].startswith(
        "Basic")


def test_redirect_without_state_and_status_override() -> None:
    url = errors.InvalidScope().redirect_url("https://app.example/cb", None)
    assert parse_qs(urlsplit(url).query) == {"error": ["invalid_scope"]}
    assert errors.AccessDenied("closed", status=401).status == 401
