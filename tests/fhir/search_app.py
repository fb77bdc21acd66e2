"""A FHIR app (the realm's "ehr" server) over a store each test fills itself, on SQLite and
PostgreSQL (``sql_url``), called in-process over ASGI with tokens from a FakeAuthServer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from smartrealm.fhir.app import create_app
from smartrealm.fhir.settings import FhirSettings
from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.guard import checker_for_server
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine
from tests.guard.tokens import FakeAuthServer, details_entry

SERVER = "ehr"


class SearchServer:
    def __init__(self, realm: RealmConfig, auth: FakeAuthServer,
                 repository: SqlResourceRepository, client: httpx.AsyncClient) -> None:
        self.auth = auth
        self.repository = repository
        self.client = client
        self.base = realm.server(SERVER).base_url

    def load(self, resources: list[dict[str, Any]]) -> None:
        self.repository.bulk_load(resources)

    def token(self, scope: str, patient: str | None = None) -> str:
        return self.auth.mint([self.base], scope,
                              details=[details_entry(self.base, scope, patient)])

    async def get(self, path: str, token: str, **headers: str) -> httpx.Response:
        return await self.client.get(f"{self.base}/{path}",
                                     headers={"Authorization": f"Bearer {token}", **headers})

    async def post_search(self, resource_type: str, form: str, token: str) -> httpx.Response:
        return await self.client.post(
            f"{self.base}/{resource_type}/_search", content=form,
            headers={"Authorization": f"Bearer {token}",
                     "Content-Type": "application/x-www-form-urlencoded"})

    async def bundle(self, path: str, token: str) -> dict[str, Any]:
        response = await self.get(path, token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def entry_ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return sorted(f"{e['resource']['resourceType']}/{e['resource']['id']}"
                  for e in bundle.get("entry", []) if e["search"]["mode"] == mode)


@pytest.fixture
async def search_server(sql_url: str, realm: RealmConfig,
                 auth: FakeAuthServer) -> AsyncIterator[SearchServer]:
    engine = make_engine(sql_url)
    repository = SqlResourceRepository(engine)
    repository.create_tables()
    validator = checker_for_server(realm, SERVER, auth.http())
    fhir = create_app(FhirSettings(realm, SERVER), repository, validator)
    path = urlsplit(realm.server(SERVER).base_url).path
    app = Starlette(routes=[Mount(path, app=fhir)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        yield SearchServer(realm, auth, repository, client)
    engine.dispose()
