"""Token revocation (RFC 7009, spec §7.2, §14 item 28) and the two replays that revoke a
grant family: a replayed authorization code (RFC 6749 §4.1.2) and a replayed refresh token
(OAuth 2.1 §4.3.1)."""

from __future__ import annotations

import httpx
import pytest

from smartrealm.realm.config import RealmConfig
from tests.authz.conftest import Flow, authorize_code, exchange
from tests.authz.lifecycle import (
    OFFLINE,
    basic,
    introspect,
    refresh,
    register_confidential,
    revoke,
    rs_auth,
    tokens,
)


def _revoked_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"


def _error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert "no-store" in response.headers["cache-control"]


async def _active(ua: httpx.AsyncClient, realm: RealmConfig, token: str) -> bool:
    response = await introspect(ua, token, rs_auth(realm, "ehr"))
    assert response.status_code == 200
    return bool(response.json()["active"])


async def test_revoking_an_access_token_ends_that_token_only(ua: httpx.AsyncClient,
                                                             realm: RealmConfig) -> None:
    sent = await tokens(ua, realm, scope=OFFLINE)
    _revoked_ok(await revoke(ua, sent["access_token"], token_type_hint="access_token"))
    assert (await introspect(ua, sent["access_token"], rs_auth(realm, "ehr"))).json() == {
        "active": False}
    # The refresh token still works and its new access token is active.
    renewed = await refresh(ua, sent["refresh_token"])
    assert renewed.status_code == 200
    assert await _active(ua, realm, renewed.json()["access_token"])
    # Revoking it again is harmless.
    _revoked_ok(await revoke(ua, sent["access_token"]))


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token"])
async def test_revoking_a_refresh_token_ends_the_whole_family(
        ua: httpx.AsyncClient, realm: RealmConfig, hint: str | None) -> None:
    first = await tokens(ua, realm, scope=OFFLINE)
    second = (await refresh(ua, first["refresh_token"])).json()
    extra = {"token_type_hint": hint} if hint else {}
    _revoked_ok(await revoke(ua, second["refresh_token"], **extra))
    assert not await _active(ua, realm, first["access_token"])
    assert not await _active(ua, realm, second["access_token"])
    assert not await _active(ua, realm, second["refresh_token"])
    _error(await refresh(ua, second["refresh_token"]), 400, "invalid_grant")


async def test_other_families_are_untouched(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    one, two = await tokens(ua, realm, scope=OFFLINE), await tokens(ua, realm, scope=OFFLINE)
    _revoked_ok(await revoke(ua, one["refresh_token"]))
    assert await _active(ua, realm, two["access_token"])
    assert (await refresh(ua, two["refresh_token"])).status_code == 200


@pytest.mark.parametrize("token", ["unknown", "a.b.c", "", "x" * 5000])
async def test_unknown_tokens_answer_200(ua: httpx.AsyncClient, token: str) -> None:
    if token:
        _revoked_ok(await revoke(ua, token))
    else:
        _error(await revoke(ua, token), 400, "invalid_request")


async def test_unsupported_hint_is_refused(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    sent = await tokens(ua, realm)
    _error(await revoke(ua, sent["access_token"], token_type_hint="id_token"), 400,
           "unsupported_token_type")
    assert await _active(ua, realm, sent["access_token"])


async def test_another_clients_token_is_refused(ua: httpx.AsyncClient,
                                                realm: RealmConfig) -> None:
    sent = await tokens(ua, realm, scope=OFFLINE)
    other = await register_confidential(ua)
    for token in (sent["access_token"], sent["refresh_token"]):
        response = await ua.post("/revoke", data={"token": token}, headers=other.headers)
        _error(response, 400, "unauthorized_client")
        assert await _active(ua, realm, token)


async def test_client_authentication(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    sent = await tokens(ua, realm)
    response = await ua.post("/revoke", data={"token": sent["access_token"]})
    _error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")
    _error(await revoke(ua, sent["access_token"], client_id="nobody"), 401, "invalid_client")
    owner = await register_confidential(ua)
    _error(await ua.post("/revoke", data={"token": "x"}, headers=basic(owner.client_id, "no")),
           401, "invalid_client")
    # A resource server's identity is for introspection only.
    _error(await ua.post("/revoke", data={"token": "x"}, headers=rs_auth(realm, "ehr")),
           401, "invalid_client")
    _error(await ua.post("/revoke", json={"token": "x"}), 400, "invalid_request")


async def test_cors_for_browser_apps(ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    sent = await tokens(ua, realm)
    origin = {"Origin": "http://127.0.0.1:9"}
    response = await ua.post("/revoke", data={"token": sent["access_token"],
                                              "client_id": "smartrealm-demo-app"},
                             headers=origin)
    assert response.headers["access-control-allow-origin"] == "http://127.0.0.1:9"
    preflight = await ua.options("/revoke", headers={
        **origin, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-methods"] == "POST"


async def test_replayed_code_revokes_what_it_issued(ua: httpx.AsyncClient,
                                                    realm: RealmConfig) -> None:
    flow = Flow(realm, scope=OFFLINE)
    code = await authorize_code(ua, flow)
    first = (await exchange(ua, flow, code)).json()
    assert await _active(ua, realm, first["access_token"])
    _error(await exchange(ua, flow, code), 400, "invalid_grant")
    assert not await _active(ua, realm, first["access_token"])
    assert not await _active(ua, realm, first["refresh_token"])
    _error(await refresh(ua, first["refresh_token"]), 400, "invalid_grant")


async def test_replayed_code_also_revokes_tokens_refreshed_since(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = Flow(realm, scope=OFFLINE)
    code = await authorize_code(ua, flow)
    first = (await exchange(ua, flow, code)).json()
    second = (await refresh(ua, first["refresh_token"])).json()
    _error(await exchange(ua, flow, code), 400, "invalid_grant")
    assert not await _active(ua, realm, second["access_token"])
    _error(await refresh(ua, second["refresh_token"]), 400, "invalid_grant")


async def test_failed_first_exchange_leaves_nothing_to_revoke(ua: httpx.AsyncClient,
                                                              realm: RealmConfig) -> None:
    flow = Flow(realm)
    code = await authorize_code(ua, flow)
    _error(await exchange(ua, flow, code, code_verifier="x" * 43), 400, "invalid_grant")
    _error(await exchange(ua, flow, code), 400, "invalid_grant")
    other = await tokens(ua, realm)
    assert await _active(ua, realm, other["access_token"])


async def test_replayed_refresh_token_revokes_the_family_access_tokens(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    first = await tokens(ua, realm, scope=OFFLINE)
    second = (await refresh(ua, first["refresh_token"])).json()
    _error(await refresh(ua, first["refresh_token"]), 400, "invalid_grant")
    assert not await _active(ua, realm, first["access_token"])
    assert not await _active(ua, realm, second["access_token"])


async def test_unknown_refresh_token_revokes_nothing(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    """An unknown refresh token must not revoke anything."""
    sent = await tokens(ua, realm, scope=OFFLINE)
    _error(await refresh(ua, "never-issued"), 400, "invalid_grant")
    assert await _active(ua, realm, sent["access_token"])
