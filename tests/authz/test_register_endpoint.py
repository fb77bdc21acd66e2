"""``/register`` (RFC 7591 §3) as an anonymous caller and with initial access tokens: no
privilege without a token that allows it, every token failure 401 invalid_token (RFC 6750
§3.1), tokens spent only by successful registrations, and only ``application/json`` bodies
(a ``text/plain`` POST is a CORS simple request any page could send)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import httpx
import pytest

from smartrealm.authz.app import build_auth_server
from smartrealm.authz.stores.sql_initial_tokens import SqlInitialTokenStore
from smartrealm.oauth.registration import BACKEND_SERVICES, EHR_LAUNCH
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine
from tests.initial_tokens import bearer, initial_token
from tests.oauth.assertion_keys import ClientKey

KEY = ClientKey.generate("ES384", "ec-1")
APP = {"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "none"}
BACKEND = {"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
           "jwks": KEY.jwks(), "scope": "system/*.cruds"}


def _refused(response: httpx.Response, status: int, error: str) -> str:
    assert (response.status_code, response.json()["error"]) == (status, error), response.text
    return str(response.json()["error_description"])


@pytest.mark.parametrize(("meta", "field"), [
    (BACKEND, "grant_types"),
    ({**APP, "scope": "patient/*.rs system/*.cruds"}, "scope"),
    ({**APP, "initiate_login_uri": "https://app.example/launch"}, "initiate_login_uri"),
])
async def test_anonymous_requests_for_a_privilege_are_refused(
        ua: httpx.AsyncClient, meta: dict[str, Any], field: str) -> None:
    description = _refused(await ua.post("/register", json=meta), 400,
                           "invalid_client_metadata")
    assert field in description and "initial access token" in description


async def test_a_token_that_allows_backend_services(ua: httpx.AsyncClient,
                                                     realm: RealmConfig) -> None:
    headers = bearer(realm, BACKEND_SERVICES)
    response = await ua.post("/register", json=BACKEND, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["grant_types"] == ["client_credentials"]
    # Single use: the second registration with it is refused.
    again = await ua.post("/register", json=BACKEND, headers=headers)
    _refused(again, 401, "invalid_token")
    assert again.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


async def test_a_token_does_not_give_what_it_does_not_allow(ua: httpx.AsyncClient,
                                                             realm: RealmConfig) -> None:
    headers = bearer(realm, EHR_LAUNCH)
    _refused(await ua.post("/register", json=BACKEND, headers=headers), 400,
             "invalid_client_metadata")
    # A refused registration spends no use: the token still serves what it allows.
    launchable = {**APP, "initiate_login_uri": "https://app.example/launch"}
    assert (await ua.post("/register", json=launchable, headers=headers)).status_code == 201


async def test_a_use_limit(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    headers = bearer(realm, uses=2)
    assert [(await ua.post("/register", json=APP, headers=headers)).status_code
            for _ in range(3)] == [201, 201, 401]


@pytest.mark.parametrize("authorization", ["Bearer not-a-token", "Bearer EXPIRED"])
async def test_unknown_or_expired_tokens_are_invalid_token(
        ua: httpx.AsyncClient, realm: RealmConfig, authorization: str) -> None:
    if authorization.endswith("EXPIRED"):
        engine = make_engine(realm.database_url_for(None))
        value, _ = SqlInitialTokenStore.create(engine).issue(
            frozenset({BACKEND_SERVICES}), int(time.time()) - 1, 5, "", int(time.time()) - 60)
        authorization = f"Bearer {value}"
    response = await ua.post("/register", json=BACKEND, headers={"Authorization": authorization})
    _refused(response, 401, "invalid_token")


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer  "])
async def test_a_malformed_authorization_is_invalid_request(
        ua: httpx.AsyncClient, authorization: str) -> None:
    response = await ua.post("/register", json=APP, headers={"Authorization": authorization})
    _refused(response, 400, "invalid_request")


async def test_closed_registration_still_takes_initial_access_tokens(
        realm: RealmConfig) -> None:
    closed = replace(realm, dynamic_registration="closed")
    app = build_auth_server(closed)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://as") as c:
        _refused(await c.post("/register", json=APP), 403, "access_denied")
        token = initial_token(closed)
        response = await c.post("/register", json=APP,
                                headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 201, response.text


async def test_a_body_cannot_take_over_an_existing_client_id(ua: httpx.AsyncClient) -> None:
    response = await ua.post("/register", json={
        **APP, "client_id": "smartrealm-demo-app", "client_secret": "mine"})
    assert response.status_code == 201
    assert response.json()["client_id"] != "smartrealm-demo-app"
    assert "client_secret" not in response.json()


@pytest.mark.parametrize("content_type", [
    None, "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", "application/json-patch+json",
    "application/json; charset=latin-1", "application/jsonx",
])
async def test_only_json_bodies_are_accepted(ua: httpx.AsyncClient,
                                             content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    request = ua.build_request("POST", "/register", content=b'{"redirect_uris": '
                               b'["https://app.example/cb"]}', headers=headers)
    assert content_type is not None or "content-type" not in request.headers
    response = await ua.send(request)
    assert "application/json" in _refused(response, 400, "invalid_request")


@pytest.mark.parametrize("content_type", [
    "application/json", "Application/JSON", "application/json; charset=utf-8",
    'application/json;charset="UTF-8"',
])
async def test_json_with_parameters_is_accepted(ua: httpx.AsyncClient,
                                                content_type: str) -> None:
    response = await ua.post("/register", content=b'{"redirect_uris": '
                             b'["https://app.example/cb"]}',
                             headers={"Content-Type": content_type})
    assert response.status_code == 201, response.text
