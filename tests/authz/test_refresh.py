"""Grant ``refresh_token`` (SMART §4.3): rotation, reuse revokes the family, narrowing."""

from __future__ import annotations

import httpx

from smartrealm.realm.config import RealmConfig
from tests.authz.conftest import Flow, authorize_code, exchange

SCOPE = "launch/patient offline_access patient/Patient.rs patient/Observation.rs"


async def _refresh(ua: httpx.AsyncClient, flow: Flow, token: str,
                   **extra: str) -> httpx.Response:
    return await ua.post("/token", data={"grant_type": "refresh_token", "refresh_token": token,
                                         "client_id": flow.client_id, **extra})


async def _first(ua: httpx.AsyncClient, flow: Flow) -> dict[str, object]:
    body: dict[str, object] = (await exchange(ua, flow, await authorize_code(ua, flow))).json()
    return body


async def test_no_refresh_token_without_offline_access(ua: httpx.AsyncClient,
                                                       realm: RealmConfig) -> None:
    body = await _first(ua, Flow(realm))
    assert "refresh_token" not in body


async def test_refresh_rotates_and_keeps_context(ua: httpx.AsyncClient,
                                                 realm: RealmConfig) -> None:
    flow = Flow(realm, scope=SCOPE, resources=("ehr", "imaging"))
    first = await _first(ua, flow)
    response = await _refresh(ua, flow, str(first["refresh_token"]))
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["cache-control"]
    body = response.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["scope"] == first["scope"] and body["expires_in"] > 0
    assert body["fhirContext"] == first["fhirContext"]
    assert body["authorization_details"] == first["authorization_details"]


async def test_replayed_refresh_token_revokes_the_family(ua: httpx.AsyncClient,
                                                         realm: RealmConfig) -> None:
    flow = Flow(realm, scope=SCOPE)
    first = await _first(ua, flow)
    second = (await _refresh(ua, flow, str(first["refresh_token"]))).json()
    replay = await _refresh(ua, flow, str(first["refresh_token"]))
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    revoked = await _refresh(ua, flow, second["refresh_token"])
    assert revoked.json()["error"] == "invalid_grant"


async def test_refresh_scope_may_narrow_but_not_widen(ua: httpx.AsyncClient,
                                                      realm: RealmConfig) -> None:
    flow = Flow(realm, scope=SCOPE)
    first = await _first(ua, flow)
    same = await _refresh(ua, flow, str(first["refresh_token"]), scope=str(first["scope"]))
    assert same.status_code == 200
    narrow = await _refresh(ua, flow, same.json()["refresh_token"],
                            scope="patient/Patient.rs")
    assert narrow.json()["scope"] == "patient/Patient.rs"
    # The new refresh token still carries the whole original grant.
    full = await _refresh(ua, flow, narrow.json()["refresh_token"])
    assert full.json()["scope"] == first["scope"]
    wide = await _refresh(ua, flow, full.json()["refresh_token"],
                          scope="patient/Patient.rs user/*.cruds")
    assert wide.status_code == 400 and wide.json()["error"] == "invalid_scope"


async def test_refresh_token_is_bound_to_its_client(ua: httpx.AsyncClient,
                                                    realm: RealmConfig) -> None:
    flow = Flow(realm, scope=SCOPE)
    first = await _first(ua, flow)
    other = (await ua.post("/register", json={
        "token_endpoint_auth_method": "none",
        "redirect_uris": ["http://127.0.0.1:9/cb"]})).json()["client_id"]
    stolen = await ua.post("/token", data={"grant_type": "refresh_token", "client_id": other,
                                           "refresh_token": first["refresh_token"]})
    assert stolen.json()["error"] == "invalid_grant"


async def test_unknown_refresh_token(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    response = await _refresh(ua, Flow(realm), "nope")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    missing = await ua.post("/token", data={"grant_type": "refresh_token",
                                            "client_id": "smartrealm-demo-app"})
    assert missing.json()["error"] == "invalid_request"
