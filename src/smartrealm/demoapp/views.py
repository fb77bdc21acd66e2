"""The demo app's pages: start (discovery + Connect), EHR launch, callback, record."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smartrealm.client import (
    AccessDenied,
    AuthorizationError,
    AuthorizationRequest,
    CallbackError,
    SmartClientError,
    StateMismatch,
    TokenError,
    exchange_code,
    parse_callback,
)
from smartrealm.core.defaults import DEMO_MAX_LAUNCH_PARAM as MAX_LAUNCH_PARAM
from smartrealm.demoapp.connect import (
    Discovered,
    discover_realm,
    ehr_launch_request,
    standalone_request,
)
from smartrealm.demoapp.pages import Pages
from smartrealm.demoapp.record import ehr_column, imaging_column
from smartrealm.demoapp.sessions import DemoSession, SessionStore

COOKIE = "smartrealm_demo"


class DemoViews:
    def __init__(self, pages: Pages, sessions: SessionStore,
                 http: Callable[[], httpx.AsyncClient]) -> None:
        self.pages, self.sessions, self._http = pages, sessions, http
        self.settings = pages.settings

    # ------------------------------------------------------------------ helpers

    def _path(self, suffix: str = "/") -> str:
        return self.settings.path + suffix

    def _session(self, request: Request) -> DemoSession | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def _redirect(self, url: str, new_key: str | None = None) -> RedirectResponse:
        response = RedirectResponse(url, status_code=303, headers=self.pages.headers())
        if new_key is not None:
            response.set_cookie(COOKIE, new_key, max_age=self.sessions.lifetime,
                                httponly=True, samesite="lax", path=self.settings.path,
                                secure=self.settings.secure_cookie)
        return response

    async def _discover(self, start: str | None = None) -> Discovered | Response:
        try:
            return await discover_realm(self._http(), self.settings, start)
        except SmartClientError as error:
            return self.pages.error("Discovery failed", str(error), 502)

    # ------------------------------------------------------------------ pages

    async def to_start(self, request: Request) -> Response:
        return self._redirect(self._path())

    async def start(self, request: Request) -> Response:
        found = await self._discover()
        if isinstance(found, Response):
            return found
        session = self._session(request)
        return self.pages.render("start.html", found=found,
                                 connected=session is not None and session.tokens is not None)

    async def connect(self, request: Request) -> Response:
        """The Connect button: one authorization for both servers (standalone launch)."""
        found = await self._discover()
        if isinstance(found, Response):
            return found
        try:
            auth = standalone_request(self.settings, found)
        except SmartClientError as error:
            return self.pages.error("Cannot connect", str(error), 502)
        return self._begin(request, auth, found, "standalone")

    async def launch(self, request: Request) -> Response:
        """EHR launch (spec §6.1): ``iss`` must be one of the realm's servers."""
        iss = request.query_params.get("iss", "")
        launch = request.query_params.get("launch", "")
        if not iss or not launch or max(len(iss), len(launch)) > MAX_LAUNCH_PARAM:
            return self.pages.error("Launch failed", "The launch needs the iss and launch "
                                    "parameters (SMART App Launch §6.1).")
        if not self.settings.trusts(iss):
            return self.pages.error("Launch refused", f"{iss} is not a server this app "
                                    "trusts; it only launches from this realm's servers.")
        found = await self._discover(iss)
        if isinstance(found, Response):
            return found
        try:
            auth = ehr_launch_request(self.settings, found, iss, launch)
        except SmartClientError as error:
            return self.pages.error("Cannot connect", str(error), 502)
        return self._begin(request, auth, found, "ehr")

    def _begin(self, request: Request, auth: AuthorizationRequest, found: Discovered,
               kind: str) -> Response:
        """A fresh session per authorization (nothing from before carries over); the
        browser goes to the authorization endpoint."""
        self.sessions.delete(request.cookies.get(COOKIE))
        key, session = self.sessions.create()
        session.pending, session.servers, session.launch_kind = auth, found.connections, kind
        session.token_endpoint = found.decision.token_endpoint or ""
        return self._redirect(auth.url, key)

    async def callback(self, request: Request) -> Response:
        session = self._session(request)
        if session is None or session.pending is None:
            return self.pages.error("No authorization in progress", "This browser has no "
                                    "pending authorization (it may have expired). Start "
                                    "again from the demo app's first page.")
        auth = session.pending
        try:
            code = parse_callback(str(request.url), auth)
        except AccessDenied as error:
            return self.pages.error("Access denied", "The authorization was declined: "
                                    f"{error.description or 'access_denied'}.", 403)
        except StateMismatch:
            return self.pages.error("Authorization refused", "The answer does not belong "
                                    "to this browser's request (state mismatch).")
        except (AuthorizationError, CallbackError) as error:
            return self.pages.error("Authorization failed", str(error))
        session.pending = None  # state and verifier are used once
        try:
            session.tokens = await exchange_code(self._http(), session.token_endpoint, auth,
                                                 code, client_id=self.settings.client_id)
        except TokenError as error:
            return self.pages.error("Token request failed", str(error), 502)
        return self._redirect(self._path("/record"))

    async def record(self, request: Request) -> Response:
        session = self._session(request)
        if session is None or session.tokens is None:
            return self._redirect(self._path())
        tokens, http = session.tokens, self._http()
        servers = {connection.role: connection for connection in session.servers}
        if "ehr" not in servers or "imaging" not in servers:
            return self._redirect(self._path())
        ehr_data, imaging_data = await asyncio.gather(
            ehr_column(http, tokens, servers["ehr"]),
            imaging_column(http, tokens, servers["imaging"]))
        return self.pages.render("record.html", ehr=ehr_data, imaging=imaging_data,
                                 launch_kind=session.launch_kind,
                                 granted=tokens.scope.split())

    async def sign_out(self, request: Request) -> Response:
        self.sessions.delete(request.cookies.get(COOKIE))
        response = self._redirect(self._path())
        response.delete_cookie(COOKIE, path=self.settings.path)
        return response
