"""Bad input over real sockets: every refusal is a protocol error with the exact code (OAuth
JSON or redirect, or a FHIR OperationOutcome), never a 500 and never a code or data."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from smartrealm.client.auth import AuthorizationRequest, exchange_code
from smartrealm.client.errors import InvalidGrant, TokenError
from smartrealm.oauth.keys import KeyRing
from smartrealm.oauth.tokens import TokenMinter
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine
from smartrealm.storage.key_store import SqlKeyStore
from tests.e2e.flow import REDIRECT_URI, SCOPE, App, authorize, register_app

pytestmark = pytest.mark.e2e


def _request(app: App, realm: RealmConfig, **override: str | None) -> dict[str, str | list[str]]:
    request = AuthorizationRequest.create(
        authorization_endpoint=app.authorization_endpoint, client_id=app.client_id,
        redirect_uri=REDIRECT_URI, scope=SCOPE,
        resources=[realm.server("ehr").base_url, realm.server("imaging").base_url])
    params: dict[str, str | list[str]] = {}
    for name, values in parse_qs(urlsplit(request.url).query).items():
        params[name] = values if len(values) > 1 else values[0]
    for name, value in override.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return params


def _redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text[:300]
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def test_unknown_client_gets_an_error_page(live_realm: RealmConfig,
                                                 http: httpx.AsyncClient) -> None:
    app = await register_app(http, live_realm)
    response = await http.get(app.authorization_endpoint,
                              params=_request(app, live_realm, client_id="no-such-client"))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "client" in response.text


async def test_wrong_redirect_uri_is_never_followed(live_realm: RealmConfig,
                                                    http: httpx.AsyncClient) -> None:
    app = await register_app(http, live_realm)
    params = _request(app, live_realm, redirect_uri="https://attacker.example/cb")
    response = await http.get(app.authorization_endpoint, params=params)
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_missing_pkce_is_invalid_request(live_realm: RealmConfig,
                                               http: httpx.AsyncClient) -> None:
    app = await register_app(http, live_realm)
    params = _request(app, live_realm, code_challenge=None, code_challenge_method=None)
    query = _redirect_query(await http.get(app.authorization_endpoint, params=params))
    assert query["error"] == "invalid_request"
    assert query["state"] == params["state"]
    assert "code" not in query


async def test_resource_the_as_does_not_govern_is_invalid_target(
        live_realm: RealmConfig, http: httpx.AsyncClient) -> None:
    app = await register_app(http, live_realm)
    params = _request(app, live_realm)
    params["resource"] = [live_realm.server("ehr").base_url, "https://elsewhere.example/fhir"]
    query = _redirect_query(await http.get(app.authorization_endpoint, params=params))
    assert query["error"] == "invalid_target"
    assert "code" not in query


async def test_wrong_code_verifier_is_invalid_grant(live_realm: RealmConfig,
                                                    http: httpx.AsyncClient) -> None:
    app = await register_app(http, live_realm)
    request, code = await authorize(http, app, resources=[live_realm.server("ehr").base_url])
    response = await http.post(app.token_endpoint, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "client_id": app.client_id, "code_verifier": "x" * 50})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "no-store" in response.headers["cache-control"]
    assert request.code_verifier != "x" * 50


async def test_reused_code_is_invalid_grant(live_realm: RealmConfig,
                                            http: httpx.AsyncClient) -> None:
    app = await register_app(http, live_realm)
    request, code = await authorize(http, app, resources=[live_realm.server("ehr").base_url])
    first = await exchange_code(http, app.token_endpoint, request, code, client_id=app.client_id)
    assert first.access_token
    with pytest.raises(TokenError) as info:
        await exchange_code(http, app.token_endpoint, request, code, client_id=app.client_id)
    assert isinstance(info.value.oauth, InvalidGrant)


async def test_unknown_grant_type_and_unknown_client_at_token(
        live_realm: RealmConfig, http: httpx.AsyncClient) -> None:
    token_url = live_realm.auth_server.token_endpoint
    response = await http.post(token_url, data={"grant_type": "password"})
    assert (response.status_code, response.json()["error"]) == (400, "unsupported_grant_type")
    response = await http.post(token_url, data={
        "grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT_URI,
        "client_id": "no-such-client", "code_verifier": "v" * 43})
    assert response.json()["error"] == "invalid_client"
    assert response.status_code in (400, 401)


# --------------------------------------------------------------- tokens at a resource server


def _minter(realm: RealmConfig, clock_offset: float = 0.0) -> TokenMinter:
    """The AS's own signing keys, read from its database: a token only the AS could make."""
    engine = make_engine(realm.database_url_for(None))
    keys = KeyRing(SqlKeyStore(engine).load())
    engine.dispose()
    return TokenMinter(realm.auth_server.issuer, keys, 300,
                       clock=lambda: time.time() + clock_offset)


async def _read_patient(http: httpx.AsyncClient, base: str, token: str) -> httpx.Response:
    return await http.get(f"{base}/Patient", params={"_count": "1"},
                          headers={"Authorization": f"Bearer {token}"})


async def test_valid_self_token_is_accepted(live_realm: RealmConfig,
                                            http: httpx.AsyncClient) -> None:
    """The control for the two tests below: the same kind of token, unaltered, works."""
    base = live_realm.server("ehr").base_url
    response = await _read_patient(http, base, _minter(live_realm).self_token(base))
    assert response.status_code == 200


async def test_expired_token_is_refused(live_realm: RealmConfig,
                                        http: httpx.AsyncClient) -> None:
    base = live_realm.server("ehr").base_url
    token = _minter(live_realm, clock_offset=-3600).self_token(base)
    response = await _read_patient(http, base, token)
    assert response.status_code == 401
    assert response.json()["resourceType"] == "OperationOutcome"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_tampered_signature_is_refused(live_realm: RealmConfig,
                                             http: httpx.AsyncClient) -> None:
    base = live_realm.server("ehr").base_url
    header, payload, signature = _minter(live_realm).self_token(base).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "system/*.cruds"  # escalate, keep the old signature
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    response = await _read_patient(http, base, f"{header}.{forged}.{signature}")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_token_for_another_server_is_refused(live_realm: RealmConfig,
                                                   http: httpx.AsyncClient) -> None:
    ehr, lab = live_realm.server("ehr").base_url, live_realm.server("lab").base_url
    response = await _read_patient(http, lab, _minter(live_realm).self_token(ehr))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_no_token_is_401_with_challenge(live_realm: RealmConfig,
                                              http: httpx.AsyncClient) -> None:
    response = await http.get(f"{live_realm.server('ehr').base_url}/Patient")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["resourceType"] == "OperationOutcome"
