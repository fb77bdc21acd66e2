"""The demo app as a Starlette app, and how `smartrealm serve` puts it next to the AS.

``create_app(settings, http=None)``: routes under ``settings.path`` (``/demo-app``); its
own ``httpx.AsyncClient`` (the realm's CA trusted, realm/tls.py) lives for the app's
lifespan unless the caller passes one. ``with_demo_app(realm, auth_server)`` serves both in
the AS process: paths under the demo app's prefix go to it, everything else to the AS. The
demo app never touches the AS's database: ``demo_launch_urls(realm)`` is handed to the AS
(``build_auth_server(..., launch_urls=...)``) by whoever assembles the process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from smartrealm.core.defaults import DEMO_HTTP_TIMEOUT as HTTP_TIMEOUT
from smartrealm.demoapp.pages import make_pages
from smartrealm.demoapp.sessions import SessionStore
from smartrealm.demoapp.settings import DemoSettings, demo_settings
from smartrealm.demoapp.views import DemoViews
from smartrealm.realm.config import RealmConfig


class _Client:
    """The outbound client: the caller's, or one opened for the lifespan."""

    def __init__(self, given: httpx.AsyncClient | None) -> None:
        self.current = given

    def __call__(self) -> httpx.AsyncClient:
        if self.current is None:
            raise RuntimeError("the demo app's HTTP client is used outside its lifespan")
        return self.current


def create_app(settings: DemoSettings, http: httpx.AsyncClient | None = None,
               sessions: SessionStore | None = None) -> Starlette:
    client = _Client(http)
    store = SessionStore() if sessions is None else sessions  # an empty store is falsy
    views = DemoViews(make_pages(settings), store, client)
    p = settings.path
    routes = [
        Route(p, views.to_start, methods=["GET"]),
        Route(p + "/", views.start, methods=["GET"]),
        Route(p + "/connect", views.connect, methods=["POST"]),
        Route(p + "/launch", views.launch, methods=["GET"]),
        Route(p + "/callback", views.callback, methods=["GET"]),
        Route(p + "/record", views.record, methods=["GET"]),
        Route(p + "/sign-out", views.sign_out, methods=["POST"]),
    ]

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if http is not None:
            yield
            return
        async with httpx.AsyncClient(verify=settings.verify, timeout=HTTP_TIMEOUT) as own:
            client.current = own
            try:
                yield
            finally:
                client.current = None

    return Starlette(routes=routes, lifespan=lifespan)


class DemoMount:
    """One ASGI app for the AS process: the demo app under its prefix, the AS elsewhere;
    the lifespan runs both apps' lifespans."""

    def __init__(self, prefix: str, demo: Starlette, main: Starlette) -> None:
        self.prefix, self.demo, self.main = prefix, demo, main

        @asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            async with AsyncExitStack() as stack:
                await stack.enter_async_context(main.router.lifespan_context(main))
                await stack.enter_async_context(demo.router.lifespan_context(demo))
                yield

        self._lifespan: ASGIApp = Starlette(lifespan=lifespan)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        if path == self.prefix or path.startswith(self.prefix + "/"):
            await self.demo(scope, receive, send)
            return
        await self.main(scope, receive, send)


def with_demo_app(realm: RealmConfig, auth_server: Starlette) -> ASGIApp:
    """The AS, plus the demo app when the realm registers a client for it."""
    settings = demo_settings(realm)
    if settings is None:
        return auth_server
    return DemoMount(settings.path, create_app(settings), auth_server)


def demo_launch_urls(realm: RealmConfig) -> dict[str, str]:
    """{client_id: launch URL} of the demo app, for the AS to seed (``build_auth_server``'s
    ``launch_urls``) so that the EHR simulator offers it (SMART §6.1); empty when the realm
    has no demo app or configures the client's ``launch_url`` itself (that one wins)."""
    settings = demo_settings(realm)
    if settings is None:
        return {}
    client = next(c for c in realm.clients if c.client_id == settings.client_id)
    return {} if client.launch_url else {settings.client_id: settings.launch_url}
