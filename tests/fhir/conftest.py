"""A seeded realm (default realm config, data under a temp dir) with the EHR and imaging
servers built by build_resource_server, validating tokens from a FakeAuthServer's JWKS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from smartrealm.fhir.app import build_resource_server
from smartrealm.fhir.sql.repository import SqlResourceRepository
from smartrealm.realm.config import RealmConfig, load_config
from smartrealm.storage import make_engine
from tests.fhir.search_app import search_server  # noqa: F401  (a fixture)
from tests.fhir.sql_repo import Ticker
from tests.guard.tokens import FakeAuthServer, details_entry, new_key


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> RealmConfig:
    return replace(load_config(), data_dir=Path(tmp_path_factory.mktemp("realm")))


@pytest.fixture(scope="module")
def auth(realm: RealmConfig) -> FakeAuthServer:
    return FakeAuthServer(realm.auth_server.issuer, key=new_key("k1"))


@pytest.fixture(scope="module")
def apps(realm: RealmConfig, auth: FakeAuthServer) -> dict[str, Starlette]:
    return {sid: build_resource_server(realm, sid, http=auth.http())
            for sid in ("ehr", "imaging")}


class Realm:
    """HTTP clients for the servers plus token minting."""

    def __init__(self, realm: RealmConfig, auth: FakeAuthServer,
                 clients: dict[str, httpx.AsyncClient]) -> None:
        self.config = realm
        self.auth = auth
        self.clients = clients
        self.ehr = realm.server("ehr").base_url
        self.imaging = realm.server("imaging").base_url

    def token(self, scope: str, *, server: str = "ehr", patient: str | None = None,
              **extra: Any) -> str:
        base = self.config.server(server).base_url
        return self.auth.mint([base], scope,
                              details=[details_entry(base, scope, patient)], **extra)

    async def get(self, url: str, token: str | None = None, **headers: str) -> httpx.Response:
        client = self.clients["imaging" if url.startswith(self.imaging) else "ehr"]
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return await client.get(url, headers=headers)


@pytest.fixture
async def rs(realm: RealmConfig, auth: FakeAuthServer,
             apps: dict[str, Starlette]) -> AsyncIterator[Realm]:
    clients = {sid: httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
               for sid, app in apps.items()}
    yield Realm(realm, auth, clients)
    for client in clients.values():
        await client.aclose()


# One SQL repository per test on every backend (``sql_url``: SQLite and PostgreSQL).
@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
def repo(sql_url: str, ticker: Ticker) -> Iterator[SqlResourceRepository]:
    engine = make_engine(sql_url)
    repository = SqlResourceRepository(engine, clock=ticker)
    repository.create_tables()
    yield repository
    engine.dispose()
