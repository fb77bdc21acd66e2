"""The management endpoint, ``GET/POST {issuer}/manage`` (SMART §1.1 ``management_endpoint``:
"where the user can manage sharing"; §13 "remind users which apps hold offline access").

The user signs in (same lockout rules as the authorization's login), then sees the apps
whose consent is remembered and the apps holding live refresh tokens, and can revoke an
app: its remembered consent is forgotten and every grant family it holds for this user
ends (refresh tokens and the access tokens issued with them).

The session is server-side (the interaction store, stage ``manage``) behind an httpOnly
cookie scoped to ``/manage``; every POST carries its CSRF token (``csrf_token``) and an
``action``: ``login`` (``username``, ``password``), ``revoke`` (``client_id``) or
``logout``.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smartrealm.authz.flow import AuthzContext
from smartrealm.authz.login_guard import LoginRefused
from smartrealm.authz.records import Interaction
from smartrealm.authz.views.scope_labels import describe
from smartrealm.authz.views.web import Pages, Params, form_params
from smartrealm.core.defaults import INTERACTION_LIFETIME
from smartrealm.oauth.errors import OAuthError
from smartrealm.oauth.passwords import token_hash

COOKIE = "smartrealm_manage"
STAGE = "manage"


class ManageViews:
    def __init__(self, ctx: AuthzContext, pages: Pages) -> None:
        self.ctx = ctx
        self.pages = pages
        self._secure = urlsplit(ctx.issuer).scheme == "https"

    def _session(self, request: Request) -> tuple[str, Interaction] | None:
        key = request.cookies.get(COOKIE)
        found = self.ctx.stores.interactions.get(token_hash(key), self.ctx.now()) if key else None
        if key is None or found is None or found.stage != STAGE:
            return None
        return token_hash(key), found

    def _new_session(self, username: str | None) -> tuple[str, Interaction]:
        """A fresh session under a fresh cookie value (also after sign-in: no fixation)."""
        key = secrets.token_urlsafe(32)
        session = Interaction(csrf=secrets.token_urlsafe(32), request=None, stage=STAGE,
                              expires_at=self.ctx.now() + INTERACTION_LIFETIME,
                              username=username)
        self.ctx.stores.interactions.create(token_hash(key), session)
        return key, session

    def _set_cookie(self, response: Response, key: str) -> None:
        response.set_cookie(COOKIE, key, max_age=INTERACTION_LIFETIME, httponly=True,
                            samesite="lax", secure=self._secure, path=self.pages.path("/manage"))

    def _login(self, session: Interaction | None, error: str = "",
               status: int = 200) -> Response:
        key = None
        if session is None:
            key, session = self._new_session(None)
        response = self.pages.render("manage_login.html", status=status, error=error,
                                     realm_name=self.ctx.realm.name, csrf_token=session.csrf)
        if key is not None:
            self._set_cookie(response, key)
        return response

    def _back(self, **query: str) -> Response:
        suffix = f"?{urlencode(query)}" if query else ""
        return RedirectResponse(self.pages.path("/manage") + suffix, status_code=303)

    async def page(self, request: Request) -> Response:
        loaded = self._session(request)
        if loaded is None or loaded[1].username is None:
            return self._login(loaded[1] if loaded else None)
        session = loaded[1]
        username = session.username or ""
        revoked = self.ctx.stores.clients.get(request.query_params.get("revoked", ""))
        return self.pages.render(
            "manage.html", user=username, csrf_token=session.csrf,
            consents=[(c, self._name(c.client_id), {sid: [describe(s) for s in scopes]
                                                     for sid, scopes in c.approved.items()})
                      for c in self.ctx.stores.consents.list_for(username)],
            apps=[(a, self._name(a.client_id))
                  for a in self.ctx.stores.app_access.active(username, self.ctx.now())],
            revoked=revoked.name if revoked else "")

    def _name(self, client_id: str) -> str:
        client = self.ctx.stores.clients.get(client_id)
        return client.name if client and client.name else client_id

    async def post(self, request: Request) -> Response:
        loaded = self._session(request)
        if loaded is None:
            return self._back()  # expired: start again from the page
        key_hash, session = loaded
        try:
            form = await form_params(request)
        except OAuthError:
            return self.pages.error("Bad request", "The form could not be read.")
        sent = form.get("csrf_token", [""])[0]
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            return self.pages.error("Bad request", "Missing or invalid CSRF token.", 403)
        action = form.get("action", [""])[0]
        if action == "login" and session.username is None:
            return await self._sign_in(key_hash, session, form)
        if action == "revoke" and session.username is not None:
            return self._revoke(session.username, form.get("client_id", [""])[0])
        if action == "logout":
            self.ctx.stores.interactions.delete(key_hash)
            return self._back()
        return self.pages.error("Bad request", "Unknown action.")

    async def _sign_in(self, key_hash: str, session: Interaction, form: Params) -> Response:
        user = await self.ctx.login_guard.sign_in(
            self.ctx.stores.users, form.get("username", [""])[0],
            form.get("password", [""])[0])
        if isinstance(user, LoginRefused):
            return self._login(session, user.message, user.status)
        self.ctx.stores.interactions.delete(key_hash)
        response = self._back()
        self._set_cookie(response, self._new_session(user.username)[0])
        return response

    def _revoke(self, username: str, client_id: str) -> Response:
        forgotten = self.ctx.stores.consents.delete(username, client_id)
        ended = self.ctx.stores.app_access.revoke(username, client_id, self.ctx.now())
        for family in ended:  # and the family's access tokens (RFC 7009 §2.1 "SHOULD")
            self.ctx.stores.tokens.revoke_family(family)
        return self._back(revoked=client_id) if forgotten or ended else self._back()
