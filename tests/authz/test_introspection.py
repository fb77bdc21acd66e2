"""Token introspection (RFC 7662, SMART §7.1, spec §14 items 7 and 8): who may ask, what an
active answer holds, each resource server's own view, and exactly {"active": false} for
everything else."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from smartrealm.realm.config import RealmConfig
from smartrealm.storage.rs_credentials import resource_server_secret
from tests.authz.lifecycle import (
    MULTI,
    OFFLINE,
    basic,
    introspect,
    register_confidential,
    rs_auth,
    tokens,
)

INACTIVE = {"active": False}


def _ok(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, object] = response.json()
    return body


def _error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert "no-store" in response.headers["cache-control"]


async def test_active_access_token_echoes_the_token_response(ua: httpx.AsyncClient,
                                                             realm: RealmConfig) -> None:
    sent = await tokens(ua, realm, scope="launch/patient openid fhirUser "
                                         "patient/Patient.rs patient/Observation.rs")
    app = await register_confidential(ua)
    body = _ok(await introspect(ua, sent["access_token"], app.headers))
    claims = _claims(sent["access_token"])
    assert body["active"] is True and body["token_type"] == "Bearer"
    # §7.1: scope identical to the token response; client_id; exp consistent with expires_in.
    assert body["scope"] == sent["scope"]
    assert body["client_id"] == "smartrealm-demo-app"
    assert body["exp"] == claims["exp"] and body["iat"] == claims["iat"]
    assert body["exp"] - body["iat"] == sent["expires_in"]
    # With an id_token: iss and sub equal the id_token's; fhirUser too.
    id_token = _claims(sent["id_token"])
    assert body["iss"] == id_token["iss"] == realm.auth_server.issuer
    assert body["sub"] == id_token["sub"] == "patient"
    assert body["fhirUser"] == id_token["fhirUser"]
    # Launch context and the multi-server members (spec §14 item 7).
    assert body["patient"] == sent["patient"] == "p0012"
    assert body["need_patient_banner"] == sent["need_patient_banner"]
    assert body["aud"] == [realm.server("ehr").base_url]
    assert body["authorization_details"] == sent["authorization_details"]
    assert "jti" not in body and "access_token" not in body


async def test_each_server_sees_its_own_scope_and_patient(ua: httpx.AsyncClient,
                                                          realm: RealmConfig) -> None:
    sent = await tokens(ua, realm, scope=MULTI, resources=("ehr", "imaging"))
    token = sent["access_token"]
    ehr = _ok(await introspect(ua, token, rs_auth(realm, "ehr")))
    imaging = _ok(await introspect(ua, token, rs_auth(realm, "imaging")))
    details = {d["locations"][0]: d for d in sent["authorization_details"]}
    assert ehr["patient"] == "p0012" and imaging["patient"] == "img0012"
    # Its own data scopes, plus the scopes of no server (SMART §7.1: as in the response).
    identity = ["openid", "fhirUser", "offline_access"]
    assert str(ehr["scope"]).split() == details[realm.server("ehr").base_url][
        "scope"].split() + identity
    assert str(imaging["scope"]).split() == details[realm.server("imaging").base_url][
        "scope"].split() + identity
    assert "patient/ImagingStudy.rs" in str(imaging["scope"]).split()
    assert "patient/ImagingStudy.rs" not in str(ehr["scope"]).split()
    # Everything else is the same token.
    for name in ("client_id", "exp", "iat", "sub", "iss", "aud", "authorization_details",
                 "fhirContext"):
        assert ehr[name] == imaging[name]
    # Any other caller sees the token response: union scope, no top-level patient.
    other = _ok(await introspect(ua, token, (await register_confidential(ua)).headers))
    assert other["scope"] == sent["scope"] and "patient" not in other
    assert other["fhirContext"] == sent["fhirContext"]


async def test_a_server_outside_the_audience_sees_an_inactive_token(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    sent = await tokens(ua, realm, resources=("ehr",))
    assert _ok(await introspect(ua, sent["access_token"], rs_auth(realm, "lab"))) == INACTIVE


async def test_bearer_token_authenticates_the_caller(ua: httpx.AsyncClient,
                                                     realm: RealmConfig) -> None:
    # SMART §7.1: "a Bearer token SHALL work".
    caller = (await tokens(ua, realm))["access_token"]
    target = (await tokens(ua, realm))["access_token"]
    bearer = {"Authorization": f"Bearer {caller}"}
    assert _ok(await introspect(ua, target, bearer))["active"] is True
    assert _ok(await introspect(ua, "garbage", bearer)) == INACTIVE


async def test_refresh_tokens_are_introspected(ua: httpx.AsyncClient,
                                               realm: RealmConfig) -> None:
    sent = await tokens(ua, realm, scope=OFFLINE)
    auth = (await register_confidential(ua)).headers
    body = _ok(await introspect(ua, sent["refresh_token"], auth,
                                token_type_hint="refresh_token"))
    assert body["active"] is True and body["scope"] == sent["scope"]
    assert body["client_id"] == "smartrealm-demo-app" and body["patient"] == "p0012"
    assert isinstance(body["exp"], int) and "token_type" not in body
    # Found without the hint too; a rotated refresh token is inactive.
    assert _ok(await introspect(ua, sent["refresh_token"], auth))["active"] is True
    rotated = await ua.post("/token", data={"grant_type": "refresh_token",
                                            "refresh_token": sent["refresh_token"],
                                            "client_id": "smartrealm-demo-app"})
    assert rotated.status_code == 200
    assert _ok(await introspect(ua, sent["refresh_token"], auth)) == INACTIVE
    assert _ok(await introspect(ua, rotated.json()["refresh_token"], auth))["active"] is True


@pytest.mark.parametrize("token", ["not-a-token", "a.b.c", "eyJhbGciOiJub25lIn0.e30.",
                                   "x" * 20000, "ünïcode"])
async def test_unknown_and_malformed_tokens_are_exactly_inactive(
        ua: httpx.AsyncClient, realm: RealmConfig, token: str) -> None:
    assert _ok(await introspect(ua, token, rs_auth(realm, "ehr"))) == INACTIVE


async def test_forged_and_expired_tokens_are_inactive(ua: httpx.AsyncClient,
                                                      realm: RealmConfig) -> None:
    token = (await tokens(ua, realm))["access_token"]
    header, _payload, signature = token.split(".")
    claims = _claims(token)
    claims["scope"] = "patient/*.cruds"
    forged = f"{header}.{_b64(claims)}.{signature}"
    assert _ok(await introspect(ua, forged, rs_auth(realm, "ehr"))) == INACTIVE
    # An id_token is signed by the same key but is not an access token.
    id_token = (await tokens(ua, realm, scope="openid fhirUser launch/patient "
                                              "patient/Patient.rs"))["id_token"]
    assert _ok(await introspect(ua, id_token, rs_auth(realm, "ehr"))) == INACTIVE


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Digest abc"}, {"Authorization": "Basic !!!"},
    basic("rs:ehr", "wrong"), basic("rs:nope", "x"), basic("unknown-client", "x"),
])
async def test_unauthenticated_callers_get_invalid_client(
        ua: httpx.AsyncClient, realm: RealmConfig, headers: dict[str, str]) -> None:
    token = (await tokens(ua, realm))["access_token"]
    response = await introspect(ua, token, headers)
    _error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_public_client_and_wrong_secret_get_invalid_client(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    token = (await tokens(ua, realm))["access_token"]
    # The right secret with the rs: client_id not form-encoded (RFC 6749 §2.3.1): Basic
    # splits at the first colon (RFC 7617), so this is client "rs", not server ehr.
    raw = f"rs:ehr:{resource_server_secret(realm, 'ehr')}".encode()
    unencoded = {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    _error(await introspect(ua, token, unencoded), 401, "invalid_client")
    public = await ua.post("/introspect", data={"token": token,
                                                "client_id": "smartrealm-demo-app"})
    _error(public, 401, "invalid_client")
    app = await register_confidential(ua)
    _error(await introspect(ua, token, basic(app.client_id, "wrong")), 401, "invalid_client")
    # client_secret_post works as well as Basic, for clients and resource servers.
    posted = await ua.post("/introspect", data={"token": token, "client_id": app.client_id,
                                                "client_secret": app.secret})
    assert _ok(posted)["active"] is True


async def test_inactive_bearer_token_gets_invalid_token(ua: httpx.AsyncClient,
                                                        realm: RealmConfig) -> None:
    token = (await tokens(ua, realm))["access_token"]
    response = await introspect(ua, token, {"Authorization": "Bearer not-active"})
    _error(response, 401, "invalid_token")
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


async def test_request_errors(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    auth = rs_auth(realm, "ehr")
    _error(await ua.post("/introspect", data={}, headers=auth), 400, "invalid_request")
    _error(await ua.post("/introspect", data={"token": ""}, headers=auth), 400,
           "invalid_request")
    _error(await ua.post("/introspect", content="token=a&token=b", headers={
        **auth, "Content-Type": "application/x-www-form-urlencoded"}), 400, "invalid_request")
    _error(await ua.post("/introspect", json={"token": "x"}, headers=auth), 400,
           "invalid_request")
    both = await ua.post("/introspect", data={"token": "x", "client_id": "a"},
                         headers={"Authorization": "Bearer y"})
    _error(both, 400, "invalid_request")
    assert (await ua.get("/introspect")).status_code == 405


async def test_discovery_names_both_endpoints(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/smart-configuration"):
        doc = (await ua.get(path)).json()
        assert doc["introspection_endpoint"] == f"{realm.auth_server.issuer}/introspect"
        assert doc["revocation_endpoint"] == f"{realm.auth_server.issuer}/revoke"
        assert doc["introspection_endpoint_auth_methods_supported"] == [
            "client_secret_basic", "client_secret_post", "private_key_jwt"]
        assert doc["revocation_endpoint_auth_methods_supported"] == [
            "none", "client_secret_basic", "client_secret_post", "private_key_jwt"]
    # Cached for less than a new key's pre-publication (oauth/key_rotation.py).
    assert (await ua.get("/jwks")).headers["cache-control"] == "public, max-age=10"


def _claims(jwt: str) -> dict[str, object]:
    payload = jwt.split(".")[1]
    data: dict[str, object] = json.loads(base64.urlsafe_b64decode(
        payload + "=" * (-len(payload) % 4)))
    return data


def _b64(claims: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
