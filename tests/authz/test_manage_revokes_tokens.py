"""/manage "Revoke" ends the app's access tokens through the token registry, not only its
refresh tokens and remembered consent (SMART §1.1 management_endpoint; docs/behaviour.md
"Managing access"): every generation of a refreshed grant, and nothing of other apps."""

from __future__ import annotations

import httpx

from smartrealm.realm.config import RealmConfig
from tests.authz.conftest import Flow, authorize_code, exchange
from tests.authz.lifecycle import OFFLINE, rs_auth
from tests.authz.test_consent_remembered import csrf_of, manage_login


async def _grant(ua: httpx.AsyncClient, flow: Flow) -> dict[str, str]:
    response = await exchange(ua, flow, await authorize_code(ua, flow))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _refresh(ua: httpx.AsyncClient, flow: Flow, refresh_token: str) -> httpx.Response:
    return await ua.post("/token", data={"grant_type": "refresh_token",
                                         "client_id": flow.client_id,
                                         "refresh_token": refresh_token})


async def _active(ua: httpx.AsyncClient, realm: RealmConfig, token: str) -> bool:
    response = await ua.post("/introspect", data={"token": token},
                             headers=rs_auth(realm, "ehr"))
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


async def test_revoking_an_app_ends_every_access_token_of_its_grants(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    demo = Flow(realm, scope=OFFLINE)
    registered = await ua.post("/register", json={
        "client_name": "other app", "redirect_uris": [demo.redirect_uri],
        "token_endpoint_auth_method": "none"})
    other = Flow(realm, scope=OFFLINE, client_id=registered.json()["client_id"])
    first = await _grant(ua, demo)
    refreshed = (await _refresh(ua, demo, first["refresh_token"])).json()
    untouched = await _grant(ua, other)
    tokens = [first["access_token"], refreshed["access_token"], untouched["access_token"]]
    assert [await _active(ua, realm, t) for t in tokens] == [True, True, True]

    page = await manage_login(ua)
    revoked = await ua.post("/manage", follow_redirects=True, data={
        "csrf_token": csrf_of(page), "action": "revoke", "client_id": demo.client_id})
    assert revoked.status_code == 200

    assert [await _active(ua, realm, t) for t in tokens] == [False, False, True]
    ended = await _refresh(ua, demo, refreshed["refresh_token"])
    assert ended.status_code == 400 and ended.json()["error"] == "invalid_grant"
    assert (await _refresh(ua, other, untouched["refresh_token"])).status_code == 200
