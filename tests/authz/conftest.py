"""Fixtures: the default realm on a temporary SQLite database, the real AS app built by
``build_auth_server``, and an in-test FHIR stub for the AS's patient lookups."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from smartrealm.authz.app import build_auth_server
from smartrealm.authz.records import Stores
from smartrealm.authz.stores.memory import memory_stores
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.oauth import pkce
from smartrealm.oauth.keys import KeyRing, ensure_keys
from smartrealm.realm.config import RealmConfig, load_config
from smartrealm.storage import make_engine
from smartrealm.storage.key_store import SqlKeyStore
from tests.authz.fhir_stub import FhirStub

CLIENT_ID = "smartrealm-demo-app"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def realm(tmp_path: Path) -> RealmConfig:
    return load_config(None).relocated({}, tmp_path)


@pytest.fixture
def keys(realm: RealmConfig) -> KeyRing:
    store = SqlKeyStore(make_engine(realm.database_url_for(None)))
    store.create_tables()
    return ensure_keys(store)


@pytest.fixture
def stub(realm: RealmConfig, keys: KeyRing) -> FhirStub:
    return FhirStub(realm, keys)


@pytest.fixture
async def app(realm: RealmConfig, stub: FhirStub) -> AsyncIterator[Starlette]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stub.app())) as fhir:
        yield build_auth_server(realm, http=fhir)


@pytest.fixture
async def ua(app: Starlette, realm: RealmConfig) -> AsyncIterator[httpx.AsyncClient]:
    """A scripted user agent (and app) talking to the AS in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=realm.auth_server.issuer) as c:
        yield c


@dataclass
class Flow:
    """The app's side of one authorization: its parameters and PKCE verifier."""

    realm: RealmConfig
    verifier: str = field(default_factory=pkce.new_verifier)
    state: str = "st-0123456789abcdef0123456789"
    scope: str = "launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs"
    resources: tuple[str, ...] = ("ehr",)
    client_id: str = CLIENT_ID

    @property
    def redirect_uri(self) -> str:
        return f"{self.realm.auth_server.issuer}/demo-app/callback"

    def params(self, **overrides: str | list[str] | None) -> dict[str, str | list[str]]:
        params: dict[str, str | list[str] | None] = {
            "response_type": "code", "client_id": self.client_id,
            "redirect_uri": self.redirect_uri, "scope": self.scope, "state": self.state,
            "code_challenge": pkce.s256(self.verifier), "code_challenge_method": "S256",
            "resource": [self.realm.server(s).base_url for s in self.resources],
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}


def csrf(html: str) -> str:
    match = CSRF.search(html)
    assert match, html
    return match.group(1)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return {k: v[0] for k, v in query.items()}


async def start(ua: httpx.AsyncClient, flow: Flow, **overrides: str | list[str] | None
                ) -> httpx.Response:
    """GET /authorize and follow to the login page."""
    return await ua.get("/authorize", params=flow.params(**overrides), follow_redirects=True)


async def login(ua: httpx.AsyncClient, page: httpx.Response, username: str,
                password: str) -> httpx.Response:
    return await ua.post("/interaction/login", follow_redirects=True, data={
        "csrf_token": csrf(page.text), "username": username, "password": password})


async def approve(ua: httpx.AsyncClient, page: httpx.Response,
                  decision: str = "approve") -> httpx.Response:
    return await ua.post("/interaction/consent",
                         data={"csrf_token": csrf(page.text), "decision": decision})


async def authorize_code(ua: httpx.AsyncClient, flow: Flow, username: str = "patient",
                         password: str = "patient-demo", patient: str | None = None) -> str:
    page = await login(ua, await start(ua, flow), username, password)
    if patient is not None:
        page = await ua.post("/interaction/patient", follow_redirects=True,
                             data={"csrf_token": csrf(page.text), "patient": patient})
    params = redirect_params(await approve(ua, page))
    assert params["state"] == flow.state
    return params["code"]


async def exchange(ua: httpx.AsyncClient, flow: Flow, code: str,
                   **overrides: str | list[str] | None) -> httpx.Response:
    data: dict[str, str | list[str] | None] = {
        "grant_type": "authorization_code", "code": code, "redirect_uri": flow.redirect_uri,
        "code_verifier": flow.verifier, "client_id": flow.client_id}
    data.update(overrides)
    return await ua.post("/token", data={k: v for k, v in data.items() if v is not None})


@pytest.fixture(params=["sqlite", "postgres", "memory"])
def contract_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """The AS's stores on every backend the contract suites hold for: SQLite, a real
    PostgreSQL, and the in-memory stores (authz/stores/memory.py)."""
    if request.param == "memory":
        yield memory_stores()
        return
    url = (f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite"
           else str(request.getfixturevalue("pg_url")))
    engine = make_engine(url)
    yield sql_stores(engine)
    engine.dispose()
