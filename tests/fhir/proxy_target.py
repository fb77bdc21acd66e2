"""The EHR server behind a proxy (issue 4 "Proxy mode ... tested with the built-in server as
the upstream"): the same Realm helper as tests/fhir/conftest.py, whose ``ehr`` server is a
proxy-mode server at PROXY_BASE in front of the built-in EHR server (in-process ASGI for
both). The proxy authenticates upstream with a system/*.cruds token of the test AS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
import pytest
from starlette.applications import Starlette

from smartrealm.fhir.proxy import build_proxy_server
from smartrealm.realm.config import RealmConfig, ResourceServerConfig
from tests.fhir.conftest import Realm
from tests.fhir.search_app import SERVER, SearchServer
from tests.guard.tokens import FakeAuthServer, details_entry

PROXY_BASE = "http://127.0.0.1:8711/fhir"
UPSTREAM_SCOPE = "system/*.cruds"


class TestAuthorityCredentials:
    """The proxy's upstream credentials: a real token of the test AS for the upstream."""

    __test__ = False

    def __init__(self, auth: FakeAuthServer, upstream: str) -> None:
        self.auth, self.upstream = auth, upstream

    def headers(self) -> dict[str, str]:
        token = self.auth.mint([self.upstream], UPSTREAM_SCOPE, details=[
            details_entry(self.upstream, UPSTREAM_SCOPE)])
        return {"Authorization": f"Bearer {token}"}


def proxied_realm(realm: RealmConfig, server_id: str = "ehr",
                  base_url: str = PROXY_BASE) -> RealmConfig:
    """``realm`` with server ``server_id`` replaced by a proxy in front of it."""
    original = realm.server(server_id)
    proxy = ResourceServerConfig(id=server_id, name=f"{original.name} (proxy)",
                                 base_url=base_url, mode="proxy", profile=original.profile,
                                 upstream=original.base_url)
    servers = tuple(proxy if rs.id == server_id else rs for rs in realm.resource_servers)
    return replace(realm, resource_servers=servers)


@pytest.fixture(scope="module")
def proxy_app(realm: RealmConfig, auth: FakeAuthServer,
              apps: dict[str, Starlette]) -> Starlette:
    upstream = httpx.AsyncClient(transport=httpx.ASGITransport(app=apps["ehr"]))
    return build_proxy_server(
        proxied_realm(realm), "ehr", http=auth.http(), upstream_http=upstream,
        credentials=TestAuthorityCredentials(auth, realm.server("ehr").base_url))


@pytest.fixture
async def proxy_rs(realm: RealmConfig, auth: FakeAuthServer, apps: dict[str, Starlette],
                   proxy_app: Starlette) -> AsyncIterator[Realm]:
    clients = {"ehr": httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy_app)),
               "imaging": httpx.AsyncClient(transport=httpx.ASGITransport(
                   app=apps["imaging"]))}
    yield Realm(proxied_realm(realm), auth, clients)
    for client in clients.values():
        await client.aclose()


@asynccontextmanager
async def proxied_search_server(direct: SearchServer, realm: RealmConfig,
                                auth: FakeAuthServer) -> AsyncIterator[SearchServer]:
    """``direct`` (tests/fhir/search_app.py) seen through a proxy at PROXY_BASE: same store,
    tokens minted for the proxy."""
    app = build_proxy_server(proxied_realm(realm, SERVER), SERVER, http=auth.http(),
                             upstream_http=direct.client,
                             credentials=TestAuthorityCredentials(auth, direct.base))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        yield SearchServer(proxied_realm(realm, SERVER), auth, direct.repository, client)
