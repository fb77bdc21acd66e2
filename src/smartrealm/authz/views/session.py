"""The interaction session: what the authorization's pages (login, pickers, consent) share,
as one object injected into each page's view class (authz/views/interaction.py, picker.py,
consent_views.py), and the one place that moves an interaction to its next stage
(``proceed``, with ``flow.next_stage`` deciding which).

The interaction's state lives server-side, keyed by the hash of a random value in an
httpOnly, SameSite=Lax cookie scoped to ``/interaction``; every POST also carries the
interaction's CSRF token (hidden field ``csrf_token``). A POST for another stage than the
current one is sent back to the current stage's page.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import replace
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smartrealm.authz import flow
from smartrealm.authz.consent import remembered_approval
from smartrealm.authz.flow import AuthzContext
from smartrealm.authz.records import Interaction, User
from smartrealm.authz.views.web import Pages, Params, form_params
from smartrealm.core.defaults import INTERACTION_LIFETIME
from smartrealm.oauth.errors import OAuthError
from smartrealm.oauth.passwords import token_hash

COOKIE = "smartrealm_interaction"
STAGE_PAGES = {"login": "/interaction/login", "patient": "/interaction/patient",
               "encounter": "/interaction/encounter", "consent": "/interaction/consent"}


class InteractionSession:
    def __init__(self, ctx: AuthzContext, pages: Pages) -> None:
        self.ctx = ctx
        self.pages = pages
        self._secure = urlsplit(ctx.issuer).scheme == "https"

    def to_stage(self, stage: str) -> Response:
        return RedirectResponse(self.pages.path(STAGE_PAGES[stage]), status_code=303)

    def start(self, interaction: Interaction, stage: str) -> Response:
        """Store ``interaction`` under a fresh cookie value (a new key at each start and
        after login, so a planted cookie cannot be carried into a session)."""
        key = secrets.token_urlsafe(32)
        self.ctx.stores.interactions.create(token_hash(key), replace(interaction, stage=stage))
        response = self.to_stage(stage)
        response.set_cookie(COOKIE, key, max_age=INTERACTION_LIFETIME, httponly=True,
                            samesite="lax", secure=self._secure,
                            path=self.pages.path("/interaction"))
        return response

    def advance(self, key_hash: str, interaction: Interaction, stage: str) -> Response:
        self.ctx.stores.interactions.update(key_hash, replace(interaction, stage=stage))
        return self.to_stage(stage)

    def load(self, request: Request) -> tuple[str, Interaction] | Response:
        key = request.cookies.get(COOKIE)
        found = self.ctx.stores.interactions.get(token_hash(key), self.ctx.now()) if key else None
        # Other records share the store (the management page's sessions): not ours.
        if key is None or found is None or found.stage not in STAGE_PAGES:
            return self.pages.error("Sign-in expired", "This sign-in has expired or cookies "
                                    "are disabled. Start again from the application.")
        return token_hash(key), found

    def load_stage(self, request: Request, stage: str) -> tuple[str, Interaction] | Response:
        """A GET of ``stage``'s page: the interaction, or a redirect to its current page."""
        loaded = self.load(request)
        if isinstance(loaded, Response):
            return loaded
        if loaded[1].stage != stage:
            return self.to_stage(loaded[1].stage)
        return loaded

    async def post(self, request: Request, stage: str
                    ) -> tuple[str, Interaction, Params] | Response:
        """Load the interaction for a POST: right stage, valid CSRF token."""
        loaded = self.load(request)
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
            return self.to_stage(interaction.stage)
        return key_hash, interaction, form

    def to_client(self, key_hash: str | None, url: str) -> Response:
        if key_hash is not None:
            self.ctx.stores.interactions.delete(key_hash)
        return RedirectResponse(url, status_code=303)

    def deny(self, key_hash: str | None, interaction: Interaction,
              error: OAuthError) -> Response:
        req = interaction.pending
        url = error.redirect_url(req.redirect_uri, req.state, iss=self.ctx.issuer)
        return self.to_client(key_hash, url)

    async def proceed(self, key_hash: str | None, interaction: Interaction, user: User,
                      after: str) -> Response:
        """Go to the stage after ``after`` (``flow.next_stage`` decides); at the consent step
        a remembered consent that covers the request answers for the user. ``key_hash``
        None: the interaction is not stored yet (right after sign-in, which rotates the
        cookie)."""
        stage = flow.next_stage(self.ctx, interaction, user, after)
        if stage == "consent":
            offers, identity = flow.make_offers(self.ctx, interaction, user)
            interaction = replace(interaction, offers=offers, identity=identity)
            skipped = remembered_approval(self.ctx, interaction, user)
            if skipped is not None:
                grant = flow.build_grant(self.ctx, skipped, user)
                return self.to_client(key_hash, flow.issue_code(self.ctx, skipped, grant))
        if key_hash is None:
            return self.start(interaction, stage)
        return self.advance(key_hash, interaction, stage)

    def user(self, interaction: Interaction) -> User | None:
        return self.ctx.stores.users.get(interaction.username or "")

    def client_name(self, interaction: Interaction) -> str:
        client = self.ctx.stores.clients.get(interaction.pending.client_id)
        return client.name if client else ""
