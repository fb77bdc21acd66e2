"""The token endpoint: code binding, PKCE, single use, client authentication, resource
narrowing, headers (SMART §4, RFC 6749 §5.2, RFC 8707 §2.2)."""

from __future__ import annotations

import base64

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from smartrealm.oauth import pkce
from smartrealm.realm.config import RealmConfig
from tests.authz.conftest import Flow, authorize_code, exchange


def _error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert "no-store" in response.headers["cache-control"]
    assert response.headers["pragma"] == "no-cache"


@pytest.mark.parametrize("verifier", [None, "", "x" * 43, "short"])
async def test_wrong_or_missing_code_verifier_is_invalid_grant(
        ua: httpx.AsyncClient, realm: RealmConfig, verifier: str | None) -> None:
    flow = Flow(realm)
    code = await authorize_code(ua, flow)
    _error(await exchange(ua, flow, code, code_verifier=verifier), 400, "invalid_grant")


async def test_challenge_as_verifier_plain_attempt_fails(ua: httpx.AsyncClient,
                                                         realm: RealmConfig) -> None:
    flow = Flow(realm)
    code = await authorize_code(ua, flow)
    challenge = pkce.s256(flow.verifier)
    _error(await exchange(ua, flow, code, code_verifier=challenge), 400, "invalid_grant")


async def test_reused_code_is_invalid_grant(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = Flow(realm)
    code = await authorize_code(ua, flow)
    assert (await exchange(ua, flow, code)).status_code == 200
    _error(await exchange(ua, flow, code), 400, "invalid_grant")


async def test_failed_exchange_burns_the_code(ua: httpx.AsyncClient,
                                              realm: RealmConfig) -> None:
    flow = Flow(realm)
    code = await authorize_code(ua, flow)
    _error(await exchange(ua, flow, code, code_verifier="x" * 43), 400, "invalid_grant")
    _error(await exchange(ua, flow, code), 400, "invalid_grant")


async def test_unknown_code_and_wrong_redirect_uri_are_invalid_grant(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = Flow(realm)
    _error(await exchange(ua, flow, "not-a-code"), 400, "invalid_grant")
    code = await authorize_code(ua, flow)
    _error(await exchange(ua, flow, code, redirect_uri="http://127.0.0.1:8700/other"),
           400, "invalid_grant")


async def test_grant_type_errors(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = Flow(realm)
    _error(await exchange(ua, flow, "c", grant_type="password"), 400, "unsupported_grant_type")
    # A public client is never registered for Backend Services (SMART §9).
    _error(await exchange(ua, flow, "c", grant_type="client_credentials"), 400,
           "unauthorized_client")
    _error(await exchange(ua, flow, "c", grant_type=None), 400, "invalid_request")
    _error(await exchange(ua, flow, "c", redirect_uri=["a", "b"]), 400, "invalid_request")


async def test_non_form_body_is_invalid_request(ua: httpx.AsyncClient) -> None:
    _error(await ua.post("/token", json={"grant_type": "authorization_code"}), 400,
           "invalid_request")


async def test_unknown_client_is_invalid_client(ua: httpx.AsyncClient,
                                                realm: RealmConfig) -> None:
    flow = Flow(realm)
    _error(await exchange(ua, flow, "c", client_id="nobody"), 401, "invalid_client")
    _error(await exchange(ua, flow, "c", client_id=None), 401, "invalid_client")


async def _register(ua: httpx.AsyncClient, realm: RealmConfig, method: str) -> dict[str, str]:
    response = await ua.post("/register", json={
        "client_name": "other", "token_endpoint_auth_method": method,
        "redirect_uris": [f"{realm.auth_server.issuer}/demo-app/callback"]})
    assert response.status_code == 201, response.text
    data: dict[str, str] = response.json()
    return data


async def test_code_of_another_client_is_invalid_grant(ua: httpx.AsyncClient,
                                                       realm: RealmConfig) -> None:
    other = await _register(ua, realm, "none")
    flow = Flow(realm)
    code = await authorize_code(ua, flow)
    _error(await exchange(ua, flow, code, client_id=other["client_id"]), 400, "invalid_grant")


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


async def test_confidential_client_basic_and_post(ua: httpx.AsyncClient,
                                                  realm: RealmConfig) -> None:
    reg = await _register(ua, realm, "client_secret_basic")
    flow = Flow(realm, client_id=reg["client_id"])
    code = await authorize_code(ua, flow)
    data = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": flow.redirect_uri, "code_verifier": flow.verifier}
    ok = await ua.post("/token", data=data,
                       headers={"Authorization": _basic(reg["client_id"],
                                                        reg["client_secret"])})
    assert ok.status_code == 200, ok.text
    code = await authorize_code(ua, flow)
    ok = await ua.post("/token", data={**data, "code": code, "client_id": reg["client_id"],
                                       "client_secret": reg["client_secret"]})
    assert ok.status_code == 200, ok.text


async def test_confidential_client_bad_secret(ua: httpx.AsyncClient,
                                              realm: RealmConfig) -> None:
    reg = await _register(ua, realm, "client_secret_basic")
    flow = Flow(realm, client_id=reg["client_id"])
    bad = await ua.post("/token", data={"grant_type": "authorization_code", "code": "x"},
                        headers={"Authorization": _basic(reg["client_id"], "wrong")})
    _error(bad, 401, "invalid_client")
    assert bad.headers["www-authenticate"].startswith("Basic")
    # No secret at all: a confidential client may not act as a public one.
    _error(await exchange(ua, flow, "x"), 401, "invalid_client")
    post = await exchange(ua, flow, "x", client_secret="wrong")
    _error(post, 401, "invalid_client")
    assert "www-authenticate" not in post.headers


async def test_resource_narrows_the_audience(ua: httpx.AsyncClient,
                                             realm: RealmConfig) -> None:
    flow = Flow(realm, resources=("ehr", "imaging"))
    code = await authorize_code(ua, flow)
    img = realm.server("imaging").base_url
    body = (await exchange(ua, flow, code, resource=img + "/")).json()
    keys = KeySet.import_key_set((await ua.get("/jwks")).json())
    claims = jwt.decode(body["access_token"], keys).claims
    assert claims["aud"] == [img]
    assert [d["locations"] for d in body["authorization_details"]] == [[img]]
    assert body["patient"] == "img0012"  # one server: one id, top-level (seed rule)


async def test_resource_cannot_widen_the_audience(ua: httpx.AsyncClient,
                                                  realm: RealmConfig) -> None:
    flow = Flow(realm, resources=("ehr",))
    code = await authorize_code(ua, flow)
    response = await exchange(ua, flow, code, resource=realm.server("lab").base_url)
    _error(response, 400, "invalid_target")


async def test_cors_for_the_calling_origin(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = Flow(realm)
    code = await authorize_code(ua, flow)
    response = await ua.post("/token", headers={"Origin": "http://app.example"}, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": flow.redirect_uri,
        "code_verifier": flow.verifier, "client_id": flow.client_id})
    assert response.headers["access-control-allow-origin"] == "http://app.example"
    preflight = await ua.options("/token", headers={"Origin": "http://app.example"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://app.example"
