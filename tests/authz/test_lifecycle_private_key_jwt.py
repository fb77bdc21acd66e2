"""private_key_jwt client authentication at /introspect (RFC 7662 §2.1) and /revoke (RFC 7009
§2.1), as at /token (SMART §4.5): the same verifier, keys and jti replay cache. ``aud`` may be
the token endpoint (what SMART clients send), the endpoint itself or the issuer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from smartrealm.oauth.registration import BACKEND_SERVICES
from smartrealm.realm.config import RealmConfig
from tests.initial_tokens import bearer
from tests.oauth.assertion_keys import ClientKey, assertion_form

KEY = ClientKey.generate("ES384", "ec-1")
STRANGER = ClientKey.generate("ES384", "ec-1")  # same kid, another key


@pytest.fixture
async def backend(ua: httpx.AsyncClient, realm: RealmConfig) -> str:
    response = await ua.post("/register", json={
        "client_name": "bulk", "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt", "jwks": KEY.jwks(),
        "scope": "system/*.rs"}, headers=bearer(realm, BACKEND_SERVICES))
    assert response.status_code == 201, response.text
    client_id: str = response.json()["client_id"]
    return client_id


async def _access_token(ua: httpx.AsyncClient, realm: RealmConfig, client_id: str) -> str:
    response = await ua.post("/token", data=assertion_form(
        KEY.assertion(client_id, realm.auth_server.token_endpoint),
        grant_type="client_credentials", scope="system/*.rs",
        resource=realm.server("ehr").base_url))
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def _introspect(ua: httpx.AsyncClient, token: str, assertion: str,
                      **extra: str) -> httpx.Response:
    return await ua.post("/introspect", data=assertion_form(assertion, token=token, **extra))


def _error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error


@pytest.mark.parametrize("audience", ["token", "introspect", "issuer"])
async def test_introspection_with_an_assertion(ua: httpx.AsyncClient, realm: RealmConfig,
                                               backend: str, audience: str) -> None:
    auth = realm.auth_server
    aud = {"token": auth.token_endpoint, "introspect": auth.introspection_endpoint,
           "issuer": auth.issuer}[audience]
    token = await _access_token(ua, realm, backend)
    response = await _introspect(ua, token, KEY.assertion(backend, aud))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["active"] is True and body["client_id"] == backend
    assert body["scope"] == "system/*.rs"


async def test_assertion_failures_are_invalid_client(ua: httpx.AsyncClient,
                                                     realm: RealmConfig, backend: str) -> None:
    auth = realm.auth_server
    token = await _access_token(ua, realm, backend)
    for assertion in (STRANGER.assertion(backend, auth.token_endpoint),  # wrong key
                      KEY.assertion(backend, auth.token_endpoint, exp=None),
                      KEY.assertion("nobody", auth.token_endpoint)):
        _error(await _introspect(ua, token, assertion), 401, "invalid_client")
        _error(await ua.post("/revoke", data=assertion_form(assertion, token=token)), 401,
               "invalid_client")
    # Meant for the other endpoint.
    _error(await _introspect(ua, token, KEY.assertion(backend, auth.revocation_endpoint)),
           401, "invalid_client")
    _error(await ua.post("/revoke", data=assertion_form(
        KEY.assertion(backend, auth.introspection_endpoint), token=token)), 401,
        "invalid_client")
    both = await _introspect(ua, token, KEY.assertion(backend, auth.token_endpoint),
                             client_secret="x")
    _error(both, 400, "invalid_request")


async def test_a_jti_is_used_once_across_endpoints(ua: httpx.AsyncClient, realm: RealmConfig,
                                                   backend: str) -> None:
    token = await _access_token(ua, realm, backend)
    assertion = KEY.assertion(backend, realm.auth_server.token_endpoint)
    assert (await _introspect(ua, token, assertion)).status_code == 200
    _error(await _introspect(ua, token, assertion), 401, "invalid_client")
    _error(await ua.post("/revoke", data=assertion_form(assertion, token=token)), 401,
           "invalid_client")
    replay = await ua.post("/token", data=assertion_form(
        assertion, grant_type="client_credentials", scope="system/*.rs"))
    _error(replay, 401, "invalid_client")


async def test_revocation_with_an_assertion(ua: httpx.AsyncClient, realm: RealmConfig,
                                            backend: str) -> None:
    auth = realm.auth_server
    token = await _access_token(ua, realm, backend)
    revoked = await ua.post("/revoke", data=assertion_form(
        KEY.assertion(backend, auth.revocation_endpoint), token=token,
        token_type_hint="access_token"))
    assert revoked.status_code == 200, revoked.text
    after = await _introspect(ua, token, KEY.assertion(backend, auth.token_endpoint))
    assert after.json() == {"active": False}


async def test_discovery_lists_private_key_jwt_for_both(ua: httpx.AsyncClient) -> None:
    doc = (await ua.get("/.well-known/openid-configuration")).json()
    assert "private_key_jwt" in doc["introspection_endpoint_auth_methods_supported"]
    assert "private_key_jwt" in doc["revocation_endpoint_auth_methods_supported"]
    for name in ("introspection", "revocation"):
        assert doc[f"{name}_endpoint_auth_signing_alg_values_supported"] == doc[
            "token_endpoint_auth_signing_alg_values_supported"]
