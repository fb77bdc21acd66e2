"""``/authorize`` and the pages behind it: login → (patient picker) → consent → redirect.

The interaction's state lives server-side, keyed by the hash of a random value in an
httpOnly, SameSite=Lax cookie scoped to ``/interaction``; every POST also carries the
interaction's CSRF token (hidden field ``csrf_token``). Pages work without JavaScript.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import replace
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smartrealm.authz import flow
from smartrealm.authz.flow import AuthzContext
from smartrealm.authz.records import INTERACTION_LIFETIME, MAX_LOGIN_FAILURES, Interaction, User
from smartrealm.authz.web import Pages, Params, form_params, query_params
from smartrealm.oauth.endpoints.authorize import ErrorPage, ErrorRedirect, validate_authorize
from smartrealm.oauth.errors import AccessDenied, OAuthError
from smartrealm.oauth.passwords import token_hash, verify_secret

COOKIE = "smartrealm_interaction"
STAGE_PAGES = {"login": "/interaction/login", "patient": "/interaction/patient",
               "consent": "/interaction/consent"}


class InteractionViews:
    def __init__(self, ctx: AuthzContext, pages: Pages) -> None:
        self.ctx = ctx
        self.pages = pages
        self._secure = urlsplit(ctx.issuer).scheme == "https"

    # ------------------------------------------------------------------ plumbing

    def _to_stage(self, stage: str) -> Response:
        return RedirectResponse(self.pages.path(STAGE_PAGES[stage]), status_code=303)

    def _start(self, interaction: Interaction, stage: str) -> Response:
        """Store ``interaction`` under a fresh cookie value (a new key at each start and
        after login, so a planted cookie cannot be carried into a session)."""
        key = secrets.token_urlsafe(32)
        self.ctx.stores.interactions.create(token_hash(key), replace(interaction, stage=stage))
        response = self._to_stage(stage)
        response.set_cookie(COOKIE, key, max_age=INTERACTION_LIFETIME, httponly=True,
                            samesite="lax", secure=self._secure,
                            path=self.pages.path("/interaction"))
        return response

    def _load(self, request: Request) -> tuple[str, Interaction] | Response:
        key = request.cookies.get(COOKIE)
        found = self.ctx.stores.interactions.get(token_hash(key), self.ctx.now()) if key else None
        if key is None or found is None:
            return self.pages.error("Sign-in expired", "This sign-in has expired or cookies "
                                    "are disabled. Start again from the application.")
        return token_hash(key), found

    async def _post(self, request: Request, stage: str
                    ) -> tuple[str, Interaction, Params] | Response:
        """Load the interaction for a POST: right stage, valid CSRF token."""
        loaded = self._load(request)
        if isinstance(loaded, Response):
            return loaded
        key_hash, interaction = loaded
        try:
            form = await form_params(request)
        except OAuthError:
            return self.pages.error("Bad request", "The form could not be read.")
        sent = form.get("csrf_token", [""])[0]
        if not hmac.compare_digest(sent.encode(), interaction.csrf.encode()):
            return self.pages.error("Bad request", "Missing or invalid CSRF token.", 403)
        if interaction.stage != stage:
            return self._to_stage(interaction.stage)
        return key_hash, interaction, form

    def _to_client(self, key_hash: str, url: str) -> Response:
        self.ctx.stores.interactions.delete(key_hash)
        return RedirectResponse(url, status_code=303)

    def _deny(self, key_hash: str, interaction: Interaction, error: OAuthError) -> Response:
        req = interaction.request
        url = error.redirect_url(req["redirect_uri"], req["state"], iss=self.ctx.issuer)
        return self._to_client(key_hash, url)

    def _user(self, interaction: Interaction) -> User | None:
        return self.ctx.stores.users.get(interaction.username or "")

    # ------------------------------------------------------------------ /authorize

    async def authorize(self, request: Request) -> Response:
        """SMART §3.1: GET and POST; every check runs before anything is shown."""
        try:
            params = query_params(request) if request.method == "GET" else \
                await form_params(request)
            req = validate_authorize(params, self.ctx.realm, self.ctx.stores.clients.get)
        except ErrorPage as exc:
            return self.pages.error("Invalid request", exc.error.description)
        except ErrorRedirect as exc:
            return RedirectResponse(exc.url(self.ctx.issuer), status_code=303)
        except OAuthError as exc:
            return self.pages.error("Invalid request", exc.description)
        interaction = Interaction(csrf=secrets.token_urlsafe(32),
                                  expires_at=self.ctx.now() + INTERACTION_LIFETIME,
                                  request=flow.request_data(req))
        return self._start(interaction, "login")

    # ------------------------------------------------------------------ login

    def _login_page(self, interaction: Interaction, error: str = "",
                    status: int = 200) -> Response:
        client = self.ctx.stores.clients.get(interaction.request["client_id"])
        return self.pages.render(
            "login.html", status=status, realm_name=self.ctx.realm.name,
            client_name=client.name if client else "", error=error,
            servers=flow.audience(self.ctx, interaction), csrf_token=interaction.csrf)

    async def login_page(self, request: Request) -> Response:
        loaded = self._load(request)
        if isinstance(loaded, Response):
            return loaded
        _, interaction = loaded
        if interaction.stage != "login":
            return self._to_stage(interaction.stage)
        return self._login_page(interaction)

    async def login(self, request: Request) -> Response:
        posted = await self._post(request, "login")
        if isinstance(posted, Response):
            return posted
        key_hash, interaction, form = posted
        username = form.get("username", [""])[0]
        user = self.ctx.stores.users.get(username)
        if not verify_secret(form.get("password", [""])[0], user.password_hash if user else None):
            return self._login_failed(key_hash, interaction)
        assert user is not None
        self.ctx.stores.interactions.delete(key_hash)
        interaction = replace(interaction, username=user.username, auth_time=self.ctx.now())
        if flow.needs_picker(interaction, user):
            return self._start(interaction, "patient")
        patients = await flow.own_patient(self.ctx, interaction, user)
        return self._start(self._with_offers(replace(interaction, patients=patients), user),
                           "consent")

    def _login_failed(self, key_hash: str, interaction: Interaction) -> Response:
        failures = interaction.failures + 1
        if failures >= MAX_LOGIN_FAILURES:
            return self._deny(key_hash, interaction, AccessDenied("too many failed sign-ins"))
        interaction = replace(interaction, failures=failures)
        self.ctx.stores.interactions.update(key_hash, interaction)
        return self._login_page(interaction, "Wrong user name or password.", 401)

    def _with_offers(self, interaction: Interaction, user: User) -> Interaction:
        offers, identity = flow.make_offers(self.ctx, interaction, user)
        return replace(interaction, offers=offers, identity=identity)

    # ------------------------------------------------------------------ patient picker

    async def patient_page(self, request: Request) -> Response:
        loaded = self._load(request)
        if isinstance(loaded, Response):
            return loaded
        _, interaction = loaded
        if interaction.stage != "patient":
            return self._to_stage(interaction.stage)
        return await self._picker(interaction, request.query_params.get("name", "").strip())

    async def _picker(self, interaction: Interaction, name: str, error: str = "",
                      status: int = 200) -> Response:
        user = self._user(interaction)
        assert user is not None
        home = self.ctx.realm.server(user.fhir_user_server)
        patients = await self.ctx.patients.search(home, name or None)
        client = self.ctx.stores.clients.get(interaction.request["client_id"])
        return self.pages.render(
            "patient.html", status=status, user_name=user.display_name or user.username,
            client_name=client.name if client else "", name=name, patients=patients,
            error=error, csrf_token=interaction.csrf)

    async def pick_patient(self, request: Request) -> Response:
        posted = await self._post(request, "patient")
        if isinstance(posted, Response):
            return posted
        key_hash, interaction, form = posted
        user = self._user(interaction)
        assert user is not None
        patients = await flow.find_patient(self.ctx, interaction, user,
                                           form.get("patient", [""])[0])
        if patients is None:
            return await self._picker(interaction, "", "Choose a patient from the list.", 400)
        interaction = self._with_offers(replace(interaction, patients=patients), user)
        interaction = replace(interaction, stage="consent")
        self.ctx.stores.interactions.update(key_hash, interaction)
        return self._to_stage("consent")

    # ------------------------------------------------------------------ consent

    async def consent_page(self, request: Request) -> Response:
        loaded = self._load(request)
        if isinstance(loaded, Response):
            return loaded
        _, interaction = loaded
        if interaction.stage != "consent":
            return self._to_stage(interaction.stage)
        user = self._user(interaction)
        client = self.ctx.stores.clients.get(interaction.request["client_id"])
        return self.pages.render(
            "consent.html", client_name=client.name if client else "",
            user_name=(user.display_name or user.username) if user else "",
            offers=interaction.offers, identity=interaction.identity,
            csrf_token=interaction.csrf)

    async def decide(self, request: Request) -> Response:
        posted = await self._post(request, "consent")
        if isinstance(posted, Response):
            return posted
        key_hash, interaction, form = posted
        decision = form.get("decision", [""])[0]
        if decision == "deny":
            return self._deny(key_hash, interaction, AccessDenied("the user denied access"))
        user = self._user(interaction)
        if decision != "approve" or user is None:
            return self.pages.error("Bad request", "Choose Allow or Deny.")
        grant = flow.build_grant(self.ctx, interaction, user)
        return self._to_client(key_hash, flow.issue_code(self.ctx, interaction, grant))
