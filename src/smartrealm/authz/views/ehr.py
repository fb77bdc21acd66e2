"""The EHR simulator at ``{issuer}/ehr``: a clinician signs in, finds a patient, picks a
registered app that has a launch URL and presses Launch; the browser goes to
``<app launch URL>?iss=<EHR base>&launch=<id>`` (SMART §6.1 step 1).

Server-rendered, no JavaScript, never framed (the AS's page headers). Its own session: a
random value in an httpOnly, SameSite=Strict cookie scoped to ``/ehr``, stored only as a
hash, replaced at sign-in (no session fixation); every POST carries the session's CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smartrealm.authz.flow import AuthzContext
from smartrealm.authz.launch import create_launch, ehr_of
from smartrealm.authz.launch_store import EhrSession
from smartrealm.authz.login_guard import LoginRefused
from smartrealm.authz.patients import PatientSummary
from smartrealm.authz.records import User
from smartrealm.authz.views.web import Pages, Params, form_params
from smartrealm.core.defaults import EHR_SESSION_LIFETIME as SESSION_LIFETIME
from smartrealm.core.defaults import EHR_SIGN_IN_LIFETIME as SIGN_IN_LIFETIME
from smartrealm.oauth.errors import OAuthError
from smartrealm.oauth.launch_input import LaunchInput
from smartrealm.oauth.passwords import token_hash

COOKIE = "smartrealm_ehr"


class EhrViews:
    def __init__(self, ctx: AuthzContext, pages: Pages) -> None:
        self.ctx, self.pages = ctx, pages
        self._secure = urlsplit(ctx.issuer).scheme == "https"
        self._sessions = ctx.stores.ehr.sessions

    # ------------------------------------------------------------------ sessions

    def _new_session(self, username: str | None) -> tuple[str, EhrSession]:
        """A fresh session; returns the cookie value (stored only as its hash)."""
        lifetime = SESSION_LIFETIME if username else SIGN_IN_LIFETIME
        session = EhrSession(secrets.token_urlsafe(32), self.ctx.now() + lifetime, username)
        key = secrets.token_urlsafe(32)
        self._sessions.create(token_hash(key), session)
        return key, session

    def _set_cookie(self, response: Response, key: str, session: EhrSession) -> None:
        response.set_cookie(COOKIE, key, max_age=session.expires_at - self.ctx.now(),
                            httponly=True, samesite="strict", secure=self._secure,
                            path=self.pages.path("/ehr"))

    def _session(self, request: Request) -> tuple[str, EhrSession] | None:
        key = request.cookies.get(COOKIE)
        found = self._sessions.get(token_hash(key), self.ctx.now()) if key else None
        return None if key is None or found is None else (token_hash(key), found)

    async def _post(self, request: Request) -> tuple[str, EhrSession, Params] | Response:
        loaded = self._session(request)
        if loaded is None:
            return self.pages.error("Session expired", "Your EHR session has expired. "
                                    "Open the EHR again.", 400)
        try:
            form = await form_params(request)
        except OAuthError:
            return self.pages.error("Bad request", "The form could not be read.")
        sent = form.get("csrf_token", [""])[0]
        if not hmac.compare_digest(sent.encode(), loaded[1].csrf.encode()):
            return self.pages.error("Bad request", "Missing or invalid CSRF token.", 403)
        return loaded[0], loaded[1], form

    def _home(self) -> Response:
        return RedirectResponse(self.pages.path("/ehr"), status_code=303)

    def _user(self, session: EhrSession) -> User | None:
        return self.ctx.stores.users.get(session.username) if session.username else None

    # ------------------------------------------------------------------ pages

    async def home(self, request: Request) -> Response:
        loaded = self._session(request)
        user = self._user(loaded[1]) if loaded else None
        if loaded is None or user is None:
            return self._login_page(loaded[1] if loaded else None)
        return await self._workspace(loaded[1], user, request.query_params.get("name", ""))

    def _login_page(self, session: EhrSession | None, error: str = "",
                    status: int = 200) -> Response:
        """The sign-in form; without a session, a new anonymous one carries its CSRF token."""
        key = None
        if session is None:
            key, session = self._new_session(None)
        response = self.pages.render("ehr_login.html", status=status,
                                     realm_name=self.ctx.realm.name, error=error,
                                     csrf_token=session.csrf)
        if key is not None:
            self._set_cookie(response, key, session)
        return response

    async def _workspace(self, session: EhrSession, user: User, name: str,
                         error: str = "", status: int = 200) -> Response:
        name = name.strip()[:100]
        patients = await self._patients(user, name)
        return self.pages.render(
            "ehr.html", status=status, realm_name=self.ctx.realm.name,
            user_name=user.display_name or user.username, name=name, patients=patients,
            apps=self._apps(), error=error, csrf_token=session.csrf)

    async def _patients(self, user: User, name: str) -> list[PatientSummary]:
        """A clinician searches the EHR; a patient (portal launch) sees only their own
        record, never the other patients' names."""
        ehr = ehr_of(self.ctx.realm, user)
        if not user.is_patient:
            return await self.ctx.patients.search(ehr, name or None)
        own = await self.ctx.patients.read(ehr, user.fhir_user.split("/", 1)[1])
        return [own] if own is not None else []

    def _apps(self) -> list[dict[str, str]]:
        apps = []
        for client_id, url in self.ctx.stores.ehr.app_launch_urls.all():
            client = self.ctx.stores.clients.get(client_id)
            if client is not None:
                apps.append({"client_id": client_id, "name": client.name, "url": url})
        return apps

    # ------------------------------------------------------------------ actions

    async def login(self, request: Request) -> Response:
        posted = await self._post(request)
        if isinstance(posted, Response):
            return posted
        key_hash, session, form = posted
        # The AS's lockout rules (lockout.py): slower answers, then a locked user name.
        user = await self.ctx.login_guard.sign_in(
            self.ctx.stores.users, form.get("username", [""])[0],
            form.get("password", [""])[0])
        if isinstance(user, LoginRefused):
            return self._login_page(session, user.message, user.status)
        # A new session key at sign-in: a cookie planted before cannot be carried over.
        self._sessions.delete(key_hash)
        response = self._home()
        self._set_cookie(response, *self._new_session(user.username))
        return response

    async def launch(self, request: Request) -> Response:
        posted = await self._post(request)
        if isinstance(posted, Response):
            return posted
        _, session, form = posted
        user = self._user(session)
        if user is None:
            return self._home()
        patient, client_id = form.get("patient", [""])[0], form.get("client_id", [""])[0]
        found = await self.ctx.patients.read(ehr_of(self.ctx.realm, user), patient)
        if found is None or not client_id:
            return await self._workspace(session, user, "", "Choose a patient and an app.",
                                         400)
        try:
            created = create_launch(self.ctx.realm, self.ctx.stores,
                                    LaunchInput(patient=found.id, client_id=client_id),
                                    user, self.ctx.now())
        except OAuthError as error:
            return await self._workspace(session, user, "", error.description, 400)
        return RedirectResponse(created.url, status_code=303)

    async def logout(self, request: Request) -> Response:
        posted = await self._post(request)
        if isinstance(posted, Response):
            return posted
        self._sessions.delete(posted[0])
        response = self._home()
        response.delete_cookie(COOKIE, path=self.pages.path("/ehr"))
        return response
