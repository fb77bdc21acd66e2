"""HTTP side of the EHR launch: ``POST {issuer}/api/launch`` (create a launch) and
``GET {issuer}/smart-style.json`` (the SMART Style document, §4.4).

The launch API is for the EHR: its caller authenticates with HTTP Basic as a realm user (the
clinician at the EHR) and creates launches for that user only; the answer is the launch id,
the EHR base URL (``iss``) and the app's launch URL carrying both (§6.1 step 1).
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartrealm.authz.flow import AuthzContext
from smartrealm.authz.launch import create_launch, ehr_of
from smartrealm.authz.login_guard import WRONG, LoginRefused
from smartrealm.authz.records import User
from smartrealm.authz.views.ehr import EhrViews
from smartrealm.authz.views.web import Pages, no_store_json, oauth_error
from smartrealm.core.basic_auth import parse_basic
from smartrealm.core.defaults import LAUNCH_API_MAX_BODY as MAX_BODY
from smartrealm.oauth.errors import AccessDenied, InvalidRequest, OAuthError
from smartrealm.oauth.launch_input import LaunchInput, parse_launch_input
from smartrealm.oauth.smart_style import STYLE_PATH, style_document

BASIC_CHALLENGE = 'Basic realm="smartrealm launch API", charset="UTF-8"'


class LaunchApi:
    def __init__(self, ctx: AuthzContext) -> None:
        self.ctx = ctx

    async def _operator(self, request: Request) -> User | LoginRefused:
        """The Basic credentials' user, under the AS's lockout rules (lockout.py)."""
        credentials = parse_basic(request.headers.get("authorization"))  # RFC 7617 as is
        if credentials is None:
            return WRONG
        return await self.ctx.login_guard.sign_in(self.ctx.stores.users, *credentials)

    async def create(self, request: Request) -> Response:
        user = await self._operator(request)
        if isinstance(user, LoginRefused):
            error = AccessDenied(f"sign in with HTTP Basic as a realm user: {user.message}",
                                 status=user.status)
            return oauth_error(error, endpoint="/api/launch",
                               extra_headers={"WWW-Authenticate": BASIC_CHALLENGE})
        try:
            spec = parse_launch_input(await self._json(request))
            await self._check(spec, user)
            created = create_launch(self.ctx.realm, self.ctx.stores, spec, user,
                                    self.ctx.now())
        except OAuthError as error:
            return oauth_error(error, endpoint="/api/launch")
        return no_store_json({"launch": created.launch_id, "iss": created.iss,
                              "url": created.url,
                              "expires_in": created.expires_at - self.ctx.now()}, status=201)

    @staticmethod
    async def _json(request: Request) -> object:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise InvalidRequest("the body must be application/json")
        body = await request.body()
        if len(body) > MAX_BODY:
            raise InvalidRequest("request body too large")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # absurd nesting too
            raise InvalidRequest("the body is not valid JSON") from None

    async def _check(self, spec: LaunchInput, user: User) -> None:
        if spec.user is not None and spec.user != user.username:
            raise AccessDenied("a launch can only be created for the signed-in user")
        # The patient must exist on the EHR now; it is looked up again at authorization.
        if await self.ctx.patients.read(ehr_of(self.ctx.realm, user), spec.patient) is None:
            raise InvalidRequest(f"patient {spec.patient} was not found on the EHR")

    async def style(self, request: Request) -> Response:
        """§4.4 smart_style_url: JSON, readable from any origin; the URL apps get is
        versioned, so the document may be cached."""
        return Response(style_document(), media_type="application/json",
                        headers={"Access-Control-Allow-Origin": "*",
                                 "Cache-Control": "public, max-age=86400"})


def launch_routes(ctx: AuthzContext, pages: Pages) -> list[Route]:
    api, ehr = LaunchApi(ctx), EhrViews(ctx, pages)
    p = pages.path
    return [
        Route(p("/api/launch"), api.create, methods=["POST"]),
        Route(p(STYLE_PATH), api.style, methods=["GET"]),
        Route(p("/ehr"), ehr.home, methods=["GET"]),
        Route(p("/ehr/login"), ehr.login, methods=["POST"]),
        Route(p("/ehr/launch"), ehr.launch, methods=["POST"]),
        Route(p("/ehr/logout"), ehr.logout, methods=["POST"]),
    ]
