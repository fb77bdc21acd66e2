"""Token endpoint (spec §4.2-§4.5, §12.5) and dynamic registration (RFC 7591), against the
recording server: the exact form a conformant client sends, and typed refusals."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from smartrealm.client import (
    AuthorizationRequest,
    ClientUsageError,
    InvalidClient,
    InvalidGrant,
    RegistrationError,
    TokenError,
    TokenSet,
    exchange_code,
    refresh,
    register_client,
)
from tests.client.conftest import Live

TOKEN_PATH = "/as/token"


def token_body(**extra: Any) -> dict[str, Any]:
    return {
        "access_token": "at-1",
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "launch/patient patient/*.rs offline_access",
        "refresh_token": "rt-1",
        **extra,
    }


def request_for(live: Live) -> AuthorizationRequest:
    return AuthorizationRequest.create(
        authorization_endpoint=f"{live.origin}/as/authorize",
        client_id="app",
        redirect_uri="https://app.example/cb",
        scope="launch/patient patient/*.rs offline_access",
        resources=[live.base("ehr"), live.base("imaging")],
    )


async def test_public_client_form_is_exactly_what_spec_expects(
    live: Live, http: httpx.AsyncClient
) -> None:
    live.recorder.token_response = (200, token_body(patient="p0012"))
    request = request_for(live)
    tokens = await exchange_code(
        http, f"{live.origin}{TOKEN_PATH}", request, "the-code", client_id="app"
    )
    seen = live.recorder.last(TOKEN_PATH)
    assert seen.method == "POST"
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in seen.headers
    assert sorted(seen.form) == sorted(
        [
            ("grant_type", "authorization_code"),
            ("code", "the-code"),
            ("redirect_uri", "https://app.example/cb"),
            ("code_verifier", request.code_verifier),
            ("client_id", "app"),
        ]
    )
    assert tokens.access_token == "at-1" and tokens.patient == "p0012"
    assert tokens.refresh_token == "rt-1" and tokens.expires_in == 3600


async def test_confidential_client_uses_basic_and_omits_client_id(
    live: Live, http: httpx.AsyncClient
) -> None:
    live.recorder.token_response = (200, token_body())
    request = request_for(live)
    await exchange_code(
        http, f"{live.origin}{TOKEN_PATH}", request, "c", client_id="app", client_secret="s3cret"
    )
    seen = live.recorder.last(TOKEN_PATH)
    assert seen.headers["authorization"] == "Basic " + base64.b64encode(b"app:s3cret").decode()
    assert sorted(seen.form) == sorted(
        [
            ("grant_type", "authorization_code"),
            ("code", "c"),
            ("redirect_uri", "https://app.example/cb"),
            ("code_verifier", request.code_verifier),
        ]
    )


async def test_resources_may_narrow_the_audience(live: Live, http: httpx.AsyncClient) -> None:
    live.recorder.token_response = (200, token_body())
    await exchange_code(
        http,
        f"{live.origin}{TOKEN_PATH}",
        request_for(live),
        "c",
        client_id="app",
        resources=[live.base("imaging")],
    )
    assert ("resource", live.base("imaging")) in live.recorder.last(TOKEN_PATH).form


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [(400, "invalid_grant", InvalidGrant), (401, "invalid_client", InvalidClient)],
)
async def test_oauth_error_is_token_error_with_mapped_cause(
    live: Live, http: httpx.AsyncClient, status: int, code: str, cls: type[Exception]
) -> None:
    live.recorder.token_response = (status, {"error": code, "error_description": "nope"})
    with pytest.raises(TokenError) as caught:
        await exchange_code(
            http, f"{live.origin}{TOKEN_PATH}", request_for(live), "c", client_id="app"
        )
    error = caught.value
    assert error.status == status and error.error == code and error.description == "nope"
    assert type(error.oauth) is cls and error.__cause__ is error.oauth


@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [
        (500, {"message": "boom"}, "HTTP 500 without an OAuth error"),
        (200, {"token_type": "Bearer"}, "access_token is missing"),
        (200, {"access_token": "a", "token_type": "DPoP"}, "not Bearer"),
        (200, token_body(expires_in="soon"), "expires_in"),
        (200, token_body(fhirContext="Patient/1"), "fhirContext is not an array"),
    ],
)
async def test_malformed_responses_are_token_errors(
    live: Live, http: httpx.AsyncClient, status: int, body: dict[str, Any], problem: str
) -> None:
    live.recorder.token_response = (status, body)
    with pytest.raises(TokenError, match=problem) as caught:
        await exchange_code(
            http, f"{live.origin}{TOKEN_PATH}", request_for(live), "c", client_id="app"
        )
    assert caught.value.oauth is None


async def test_transport_failure_is_a_token_error(live: Live, http: httpx.AsyncClient) -> None:
    with pytest.raises(TokenError, match="ConnectError"):
        await exchange_code(
            http, "http://127.0.0.1:9/token", request_for(live), "c", client_id="app"
        )


async def test_client_id_must_match_the_request(live: Live, http: httpx.AsyncClient) -> None:
    with pytest.raises(ClientUsageError):
        await exchange_code(
            http, f"{live.origin}{TOKEN_PATH}", request_for(live), "c", client_id="other"
        )


async def test_refresh_form_and_carried_over_fields(live: Live, http: httpx.AsyncClient) -> None:
    details = [{"type": "smart_on_fhir", "locations": [live.base("ehr")], "patient": "p1"}]
    old = TokenSet.from_response(token_body(patient="p1", authorization_details=details))
    live.recorder.token_response = (
        200,
        {
            "access_token": "at-2",
            "token_type": "bearer",
            "expires_in": 3600,
            "scope": "patient/*.rs",
        },
    )
    new = await refresh(
        http, f"{live.origin}{TOKEN_PATH}", old, client_id="app", scope="patient/*.rs"
    )
    assert sorted(live.recorder.last(TOKEN_PATH).form) == sorted(
        [
            ("grant_type", "refresh_token"),
            ("refresh_token", "rt-1"),
            ("scope", "patient/*.rs"),
            ("client_id", "app"),
        ]
    )
    assert new.access_token == "at-2" and new.refresh_token == "rt-1"  # not rotated: kept
    assert new.patient == "p1" and new.authorization_details == tuple(details)


async def test_refresh_rotation_and_confidential(live: Live, http: httpx.AsyncClient) -> None:
    old = TokenSet.from_response(token_body())
    live.recorder.token_response = (200, token_body(refresh_token="rt-2", patient="p9"))
    new = await refresh(http, f"{live.origin}{TOKEN_PATH}", old, client_id="app", client_secret="s")
    seen = live.recorder.last(TOKEN_PATH)
    assert sorted(seen.form) == [("grant_type", "refresh_token"), ("refresh_token", "rt-1")]
    assert seen.headers["authorization"].startswith("Basic ")
    assert new.refresh_token == "rt-2" and new.patient == "p9"


async def test_refresh_without_refresh_token(live: Live, http: httpx.AsyncClient) -> None:
    old = TokenSet.from_response({"access_token": "a", "token_type": "Bearer"})
    with pytest.raises(ClientUsageError, match="no refresh_token"):
        await refresh(http, f"{live.origin}{TOKEN_PATH}", old, client_id="app")


async def test_register_public_client(live: Live, http: httpx.AsyncClient) -> None:
    info = await register_client(
        http,
        f"{live.origin}/as/register",
        redirect_uris=["https://app.example/cb"],
        client_name="Demo",
        scope="patient/*.rs",
    )
    assert info["client_id"] == "client-123"
    seen = live.recorder.last("/as/register")
    assert seen.headers["content-type"] == "application/json"
    assert json.loads(seen.body) == {
        "redirect_uris": ["https://app.example/cb"],
        "client_name": "Demo",
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "patient/*.rs",
    }


async def test_registration_error_is_typed(live: Live, http: httpx.AsyncClient) -> None:
    with pytest.raises(RegistrationError) as caught:
        await register_client(
            http,
            f"{live.origin}/as/register",
            redirect_uris=["http://bad.example/cb"],
            client_name="Demo",
        )
    assert caught.value.error == "invalid_redirect_uri" and caught.value.status == 400
