"""``/authorize`` and the sign-in page behind it: login → (patient picker) → (encounter
picker) → consent → redirect. The pages' plumbing (cookie, CSRF, stages) is in session.py,
the pickers in picker.py, the consent page in consent.py. Pages work without JavaScript.

Sign-in failures are slowed down and lock the user name for a while (lockout.py); the
authorization stays on the login page meanwhile, so the app's flow can still finish.
"""

from __future__ import annotations

import secrets
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smartrealm.authz import flow
from smartrealm.authz.launch import launch_claimer, launch_login
from smartrealm.authz.login_guard import LoginRefused
from smartrealm.authz.records import Interaction
from smartrealm.authz.views.session import InteractionSession
from smartrealm.authz.views.web import count_oauth_error, form_params, query_params
from smartrealm.core.defaults import INTERACTION_LIFETIME
from smartrealm.oauth.endpoints.authorize import (
    ErrorPage,
    ErrorRedirect,
    validate_authorize,
)
from smartrealm.oauth.errors import OAuthError


class LoginViews:
    """``/authorize`` (every check before anything is shown) and the sign-in page."""

    def __init__(self, session: InteractionSession) -> None:
        self.session, self.ctx, self.pages = session, session.ctx, session.pages

    # ------------------------------------------------------------------ /authorize

    async def authorize(self, request: Request) -> Response:
        """SMART §3.1: GET and POST; every check runs before anything is shown."""
        try:
            params = query_params(request) if request.method == "GET" else \
                await form_params(request)
            req = await validate_authorize(params, self.ctx.realm, self.ctx.stores.clients.get,
                                           launch_claimer(self.ctx.stores, self.ctx.now),
                                           shared_audience=self.ctx.multi_aud)
        except ErrorPage as exc:
            count_oauth_error("/authorize", exc.error)
            return self.pages.error("Invalid request", exc.error.description)
        except ErrorRedirect as exc:
            count_oauth_error("/authorize", exc.error)
            return RedirectResponse(exc.url(self.ctx.issuer), status_code=303)
        except OAuthError as exc:
            count_oauth_error("/authorize", exc)
            return self.pages.error("Invalid request", exc.description)
        request.state.client_id = req.client.client_id  # a registered client: safe to log
        interaction = Interaction(csrf=secrets.token_urlsafe(32),
                                  expires_at=self.ctx.now() + INTERACTION_LIFETIME,
                                  request=flow.pending_request(req))
        return self.session.start(interaction, "login")

    # ------------------------------------------------------------------ login

    def _login_page(self, interaction: Interaction, error: str = "",
                    status: int = 200) -> Response:
        return self.pages.render(
            "login.html", status=status, realm_name=self.ctx.realm.name,
            client_name=self.session.client_name(interaction), error=error,
            servers=flow.audience(self.ctx, interaction), csrf_token=interaction.csrf)

    async def login_page(self, request: Request) -> Response:
        loaded = self.session.load_stage(request, "login")
        if isinstance(loaded, Response):
            return loaded
        return self._login_page(loaded[1])

    async def login(self, request: Request) -> Response:
        posted = await self.session.post(request, "login")
        if isinstance(posted, Response):
            return posted
        key_hash, interaction, form = posted
        user = await self.ctx.login_guard.sign_in(
            self.ctx.stores.users, form.get("username", [""])[0],
            form.get("password", [""])[0])
        if isinstance(user, LoginRefused):
            return self._login_page(interaction, user.message, user.status)
        self.ctx.stores.interactions.delete(key_hash)
        interaction = replace(interaction, username=user.username, auth_time=self.ctx.now())
        launched = await launch_login(self.ctx.realm, self.ctx.patients,  # EHR launch (§6.1)
                                      self.ctx.stores.patient_index, interaction, user)
        if isinstance(launched, OAuthError):
            return self.session.deny(key_hash, interaction, launched)
        if launched is not None:  # the launch fixes patient and encounter: no pickers
            return await self.session.proceed(None, launched, user, "encounter")
        if not flow.needs_picker(interaction, user):
            interaction = replace(interaction,
                                  patients=await flow.own_patient(self.ctx, interaction, user))
        return await self.session.proceed(None, interaction, user, "login")
