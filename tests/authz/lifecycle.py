"""Helpers of the token-lifecycle tests (introspection, revocation): a confidential client,
the resource servers' credentials, and the calls."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import httpx

from smartrealm.core.rs_clients import rs_client_id
from smartrealm.realm.config import RealmConfig
from smartrealm.storage.rs_credentials import resource_server_secret
from tests.authz.conftest import Flow, authorize_code, exchange

OFFLINE = "launch/patient offline_access patient/Patient.rs patient/Observation.rs"
MULTI = ("launch/patient openid fhirUser offline_access patient/Patient.rs "
         "patient/Observation.rs patient/ImagingStudy.rs")


def basic(client_id: str, secret: str) -> dict[str, str]:
    """RFC 6749 §2.3.1: both parts form-encoded, then Basic."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def rs_auth(realm: RealmConfig, server_id: str) -> dict[str, str]:
    return basic(rs_client_id(server_id), resource_server_secret(realm, server_id))


@dataclass(frozen=True)
class Confidential:
    client_id: str
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return basic(self.client_id, self.secret)


async def register_confidential(ua: httpx.AsyncClient) -> Confidential:
    response = await ua.post("/register", json={
        "client_name": "resource owner's backend", "token_endpoint_auth_method":
        "client_secret_basic", "redirect_uris": ["http://127.0.0.1:9/cb"]})
    assert response.status_code == 201, response.text
    body = response.json()
    return Confidential(body["client_id"], body["client_secret"])


async def tokens(ua: httpx.AsyncClient, realm: RealmConfig, scope: str = OFFLINE,
                 resources: tuple[str, ...] = ("ehr",)) -> dict[str, Any]:
    """One authorization for the demo app (the ``patient`` user): the token response."""
    flow = Flow(realm, scope=scope, resources=resources)
    response = await exchange(ua, flow, await authorize_code(ua, flow))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def introspect(ua: httpx.AsyncClient, token: str, headers: dict[str, str],
                     **extra: str) -> httpx.Response:
    return await ua.post("/introspect", data={"token": token, **extra}, headers=headers)


async def revoke(ua: httpx.AsyncClient, token: str, client_id: str = "smartrealm-demo-app",
                 **extra: str) -> httpx.Response:
    return await ua.post("/revoke", data={"token": token, "client_id": client_id, **extra})


async def refresh(ua: httpx.AsyncClient, token: str,
                  client_id: str = "smartrealm-demo-app") -> httpx.Response:
    return await ua.post("/token", data={"grant_type": "refresh_token", "refresh_token": token,
                                         "client_id": client_id})
