"""client_credentials with several servers (SMART §9 + design.md): like at /authorize, the
servers share one token only if each advertises ``auth-multi-aud-token`` in its own
smart-configuration (authz/multi_aud.py); otherwise ``invalid_target`` and no token."""

from __future__ import annotations

import httpx
import pytest

from smartrealm.oauth.registration import BACKEND_SERVICES
from smartrealm.realm.config import RealmConfig
from tests.authz.fhir_stub import FhirStub
from tests.initial_tokens import bearer
from tests.oauth.assertion_keys import ClientKey, assertion_form

KEY = ClientKey.generate("RS384", "rsa-1")


@pytest.fixture
async def backend(ua: httpx.AsyncClient, stub: FhirStub, realm: RealmConfig) -> str:
    stub.no_multi.add("lab")  # the lab does not accept multi-audience tokens
    response = await ua.post("/register", json={
        "client_name": "bulk", "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt", "jwks": KEY.jwks(),
        "scope": "system/*.rs"}, headers=bearer(realm, BACKEND_SERVICES))
    assert response.status_code == 201, response.text
    client_id: str = response.json()["client_id"]
    return client_id


async def _token(ua: httpx.AsyncClient, realm: RealmConfig, client_id: str,
                 servers: list[str]) -> httpx.Response:
    return await ua.post("/token", data=assertion_form(
        KEY.assertion(client_id, realm.auth_server.token_endpoint),
        grant_type="client_credentials", scope="system/*.rs",
        resource=[realm.server(s).base_url for s in servers]))


@pytest.mark.parametrize("servers", [["ehr", "lab"], ["lab", "imaging"], []])
async def test_a_server_without_the_capability_cannot_share(
        ua: httpx.AsyncClient, realm: RealmConfig, backend: str, servers: list[str]) -> None:
    response = await _token(ua, realm, backend, servers)  # [] = every server
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_target"
    assert realm.server("lab").base_url in response.json()["error_description"]
    assert "no-store" in response.headers["cache-control"]


@pytest.mark.parametrize("servers", [["ehr", "imaging"], ["lab"]])
async def test_capable_servers_or_a_single_one_get_a_token(
        ua: httpx.AsyncClient, realm: RealmConfig, backend: str, servers: list[str]) -> None:
    response = await _token(ua, realm, backend, servers)
    assert response.status_code == 200, response.text
    assert [d["locations"] for d in response.json()["authorization_details"]] == [
        [realm.server(s).base_url] for s in servers]
