"""The demo app's pages in-process (httpx.ASGITransport / Starlette's TestClient): the
answers that need no realm behind them — launch checks, callback errors, redirects, headers,
and how the AS process serves it next to the AS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from smartrealm.authz.app import build_auth_server
from smartrealm.authz.stores.sql_launch import sql_ehr_stores
from smartrealm.client import AuthorizationRequest, TokenSet
from smartrealm.demoapp import DemoMount, create_app, demo_launch_urls, demo_settings, with_demo_app
from smartrealm.demoapp.sessions import SessionStore
from smartrealm.demoapp.settings import STANDALONE_SCOPE, DemoSettings
from smartrealm.demoapp.views import COOKIE
from smartrealm.realm.config import RealmConfig, load_config
from smartrealm.realm.runner import AUTH_SERVER, free_ports
from smartrealm.storage import make_engine


@pytest.fixture
def realm(tmp_path: Path) -> RealmConfig:
    """The default realm on free ports where nothing listens."""
    base = load_config()
    ports = free_ports([AUTH_SERVER, *(rs.id for rs in base.resource_servers)])
    return base.relocated(ports, tmp_path)


@pytest.fixture
def settings(realm: RealmConfig) -> DemoSettings:
    found = demo_settings(realm)
    assert found is not None
    return found


@pytest.fixture
async def client(settings: DemoSettings) -> AsyncIterator[tuple[httpx.AsyncClient, SessionStore]]:
    sessions = SessionStore()
    async with httpx.AsyncClient(timeout=5.0) as outbound:
        app = create_app(settings, outbound, sessions)
        transport = httpx.ASGITransport(app=app)
        origin = settings.base_url.removesuffix(settings.path)
        async with httpx.AsyncClient(transport=transport, base_url=origin) as http:
            yield http, sessions


async def test_the_bare_path_goes_to_the_start_page(
        client: tuple[httpx.AsyncClient, SessionStore]) -> None:
    http, _ = client
    response = await http.get("/demo-app")
    assert response.status_code == 303
    assert response.headers["location"].endswith("/demo-app/")


@pytest.mark.parametrize("query", [{}, {"iss": "http://127.0.0.1:1/fhir"}, {"launch": "x"},
                                   {"iss": "h" * 3000, "launch": "x"}])
async def test_a_launch_without_iss_and_launch_is_refused(
        client: tuple[httpx.AsyncClient, SessionStore], query: dict[str, str]) -> None:
    http, sessions = client
    response = await http.get("/demo-app/launch", params=query)
    assert response.status_code == 400
    assert "The launch needs the iss and launch parameters" in response.text
    assert len(sessions) == 0


async def test_an_untrusted_iss_is_refused_before_any_request(
        client: tuple[httpx.AsyncClient, SessionStore]) -> None:
    http, sessions = client
    response = await http.get("/demo-app/launch", params={
        "iss": "https://evil.example/fhir", "launch": "abc"})
    assert response.status_code == 400
    assert "Launch refused" in response.text
    assert "https://evil.example/fhir is not a server this app trusts" in response.text
    assert len(sessions) == 0 and COOKIE not in response.headers.get("set-cookie", "")


async def test_a_realm_server_that_does_not_answer_is_a_readable_502(
        client: tuple[httpx.AsyncClient, SessionStore], settings: DemoSettings) -> None:
    http, _ = client
    for response in (await http.get("/demo-app/"),
                     await http.get("/demo-app/launch", params={"iss": settings.ehr_base,
                                                                "launch": "abc"}),
                     await http.post("/demo-app/connect")):
        assert response.status_code == 502
        assert "Discovery failed" in response.text
        assert settings.ehr_base in response.text


async def test_pages_carry_strict_headers(client: tuple[httpx.AsyncClient, SessionStore],
                                          settings: DemoSettings) -> None:
    http, _ = client
    response = await http.get("/demo-app/callback")
    csp = response.headers["content-security-policy"]
    as_origin = settings.authorization_endpoint.removesuffix("/authorize")
    assert f"form-action 'self' {as_origin};" in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"


async def test_record_and_callback_without_a_session(
        client: tuple[httpx.AsyncClient, SessionStore]) -> None:
    http, _ = client
    record = await http.get("/demo-app/record")
    assert record.status_code == 303 and record.headers["location"].endswith("/demo-app/")
    callback = await http.get("/demo-app/callback", params={"code": "c", "state": "s"})
    assert callback.status_code == 400
    assert "No authorization in progress" in callback.text


def _pending(settings: DemoSettings, sessions: SessionStore) -> tuple[str, AuthorizationRequest]:
    key, session = sessions.create()
    session.pending = AuthorizationRequest.create(
        authorization_endpoint=settings.authorization_endpoint, client_id=settings.client_id,
        redirect_uri=settings.redirect_uri, scope=STANDALONE_SCOPE,
        resources=[settings.ehr_base, settings.imaging_base])
    return key, session.pending


@pytest.mark.parametrize(("params", "status", "text"), [
    ({"error": "access_denied", "error_description": "the user said no"}, 403,
     "The authorization was declined: the user said no."),
    ({"error": "invalid_scope"}, 400, "Authorization failed"),
    ({}, 400, "callback has no single code parameter"),
])
async def test_callback_errors_are_readable(
        client: tuple[httpx.AsyncClient, SessionStore], settings: DemoSettings,
        params: dict[str, str], status: int, text: str) -> None:
    http, sessions = client
    key, pending = _pending(settings, sessions)
    response = await http.get("/demo-app/callback", params={"state": pending.state, **params},
                              headers={"Cookie": f"{COOKIE}={key}"})
    assert response.status_code == status
    assert text in response.text


async def test_a_foreign_state_is_refused(client: tuple[httpx.AsyncClient, SessionStore],
                                          settings: DemoSettings) -> None:
    http, sessions = client
    key, _ = _pending(settings, sessions)
    response = await http.get("/demo-app/callback",
                              params={"state": "someone-else", "error": "access_denied"},
                              headers={"Cookie": f"{COOKIE}={key}"})
    assert response.status_code == 400
    assert "state mismatch" in response.text


async def test_sign_out_ends_the_session(client: tuple[httpx.AsyncClient, SessionStore],
                                         settings: DemoSettings) -> None:
    http, sessions = client
    key, _ = _pending(settings, sessions)
    response = await http.post("/demo-app/sign-out", headers={"Cookie": f"{COOKIE}={key}"})
    assert response.status_code == 303
    assert sessions.get(key) is None
    assert f'{COOKIE}=""' in response.headers["set-cookie"]


@asynccontextmanager
async def lifespan_of(app: ASGIApp) -> AsyncIterator[None]:
    """Drive the ASGI lifespan protocol as uvicorn does (startup, then shutdown)."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(message: MutableMapping[str, Any]) -> None:
        await outbox.put(dict(message))

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                    "state": {}}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    yield
    await inbox.put({"type": "lifespan.shutdown"})
    assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
    await task


async def test_the_as_process_serves_both(realm: RealmConfig) -> None:
    events: list[str] = []

    async def home(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("the AS")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        events.append("AS started")
        yield
        events.append("AS stopped")

    app = with_demo_app(realm, Starlette(routes=[Route("/{rest:path}", home)],
                                         lifespan=lifespan))
    assert isinstance(app, DemoMount)
    async with lifespan_of(app):
        assert events == ["AS started"]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.get("/authorize")).text == "the AS"
            assert (await http.get("/demo-apps")).text == "the AS"  # only the exact prefix
            assert (await http.get("/demo-app")).status_code == 303
            # The demo app's own client was opened by the shared lifespan: discovery runs
            # and fails readably, as nothing listens on the realm's ports.
            start = await http.get("/demo-app/")
            assert start.status_code == 502 and "Discovery failed" in start.text
    assert events == ["AS started", "AS stopped"]


def test_without_its_client_the_as_is_served_alone(realm: RealmConfig) -> None:
    main = Starlette()
    assert with_demo_app(replace(realm, clients=()), main) is main


def _launch_urls(realm: RealmConfig) -> list[tuple[str, str]]:
    return sql_ehr_stores(make_engine(realm.database_url_for(None))).app_launch_urls.all()


def test_the_demo_client_gets_its_launch_url(realm: RealmConfig,
                                             settings: DemoSettings) -> None:
    build_auth_server(realm, launch_urls=demo_launch_urls(realm))
    assert _launch_urls(realm) == [("smartrealm-demo-app", settings.launch_url)]
    assert settings.launch_url == realm.auth_server.issuer + "/demo-app/launch"


def test_a_configured_launch_url_wins(realm: RealmConfig) -> None:
    clients = tuple(replace(c, launch_url="https://app.example/launch") for c in realm.clients)
    assert demo_launch_urls(replace(realm, clients=clients)) == {}
    # the AS seeds the configured one (seed_launch_urls)


async def test_a_session_without_its_servers_goes_back_to_the_start(
        client: tuple[httpx.AsyncClient, SessionStore]) -> None:
    http, sessions = client
    key, session = sessions.create()
    session.tokens = TokenSet.from_response({"access_token": "t", "token_type": "Bearer"})
    response = await http.get("/demo-app/record", headers={"Cookie": f"{COOKIE}={key}"})
    assert response.status_code == 303 and response.headers["location"].endswith("/demo-app/")
