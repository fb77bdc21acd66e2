"""The AS's JSON endpoints: token, discovery (RFC 8414, OIDC and SMART), JWKS, brands,
registration."""

from __future__ import annotations

import hashlib
import json

from starlette.requests import Request
from starlette.responses import Response

from smartrealm.authz.client_guard import RequestClients, client_auth
from smartrealm.authz.client_keys import ClientJwksCache
from smartrealm.authz.flow import AuthzContext
from smartrealm.authz.launch import launch_url_metadata, with_launch_url
from smartrealm.authz.views.web import (
    bearer_token,
    cors_for,
    form_params,
    json_body,
    no_store_json,
    oauth_error,
    public_json,
)
from smartrealm.core.media_types import FHIR_JSON
from smartrealm.oauth.assertions import AssertionVerifier, request_assertion
from smartrealm.oauth.endpoints.token import (
    issue_tokens,
    new_context,
    run_token_checks,
)
from smartrealm.oauth.errors import (
    AccessDenied,
    InvalidClientMetadata,
    InvalidToken,
    OAuthError,
)
from smartrealm.oauth.key_rotation import JWKS_CACHE_CONTROL
from smartrealm.oauth.lifecycle import TokenLifecycle
from smartrealm.oauth.metadata import authorization_server_metadata, smart_configuration
from smartrealm.oauth.registration import ANONYMOUS, Authority, register
from smartrealm.realm.brands import build_brands_bundle
from smartrealm.serving.metrics import TOKENS_ISSUED


class Endpoints:
    def __init__(self, ctx: AuthzContext, client_keys: ClientJwksCache) -> None:
        self.ctx = ctx
        self.client_keys = client_keys
        brands = build_brands_bundle(ctx.realm)
        self._brands = json.dumps(brands).encode()
        # Weak ETag: the bundle is a function of the configuration only.
        self._brands_etag = 'W/"' + hashlib.sha256(self._brands).hexdigest()[:32] + '"'

    async def token(self, request: Request) -> Response:
        """SMART §4: no-store headers on every answer; CORS for the calling origin."""
        cors = cors_for(request)
        authorization = request.headers.get("authorization")
        basic = (authorization or "").lower().startswith("basic ")
        try:
            params = await form_params(request)
            stores = self.ctx.stores
            clients = RequestClients(stores.clients)
            now = self.ctx.now()
            assertion = request_assertion(params)
            assertions = AssertionVerifier(
                self.ctx.realm.auth_server.token_endpoint, stores.replays,
                await self.client_keys.keys_for_request(assertion, clients), now,
                parsed=assertion)
            context = new_context(params, authorization, self.ctx.realm,
                                  client_auth(self.ctx, request, clients), stores.codes,
                                  stores.refresh_tokens, now, assertions=assertions,
                                  lifecycle=TokenLifecycle(stores.tokens, stores.refresh_tokens),
                                  shared_audience=self.ctx.multi_aud)
            grant = await run_token_checks(context)
            body = issue_tokens(context, grant, self.ctx.minter)
            TOKENS_ISSUED.labels(context.one("grant_type") or "").inc()
            if context.client is not None:  # authenticated: safe to log
                request.state.client_id = context.client.client_id
        except OAuthError as error:
            return oauth_error(error, endpoint="/token", basic_auth_used=basic,
                               extra_headers=cors)
        return no_store_json(body, extra_headers=cors)

    async def token_preflight(self, request: Request) -> Response:
        headers = {**cors_for(request), "Access-Control-Allow-Methods": "POST",
                   "Access-Control-Allow-Headers": "Authorization, Content-Type",
                   "Access-Control-Max-Age": "600"}
        return Response(status_code=204, headers=headers)

    async def openid_configuration(self, request: Request) -> Response:
        """OIDC Discovery §4; the same members as RFC 8414 (oauth/metadata.py)."""
        return public_json(authorization_server_metadata(self.ctx.realm))

    async def oauth_authorization_server(self, request: Request) -> Response:
        """RFC 8414 §3 (routed at the §3.1 path, oauth/metadata.py ``rfc8414_paths``)."""
        return public_json(authorization_server_metadata(self.ctx.realm))

    async def smart_configuration(self, request: Request) -> Response:
        return public_json(smart_configuration(self.ctx.realm))

    async def jwks(self, request: Request) -> Response:
        response = public_json(self.ctx.keys.jwks())
        # Shorter than a new key's pre-publication (oauth/key_rotation.py): a cache that
        # honours it (SMART §13) holds the new key before the key signs.
        response.headers["Cache-Control"] = JWKS_CACHE_CONTROL
        return response

    async def brands(self, request: Request) -> Response:
        headers = {"ETag": self._brands_etag, "Access-Control-Allow-Origin": "*",
                   "Cache-Control": "public, max-age=300"}
        wanted = [t.strip().removeprefix("W/")
                  for t in request.headers.get("if-none-match", "").split(",")]
        # RFC 9110 §13.1.2: If-None-Match uses the weak comparison.
        if "*" in wanted or self._brands_etag.removeprefix("W/") in wanted:
            return Response(status_code=304, headers=headers)
        return Response(self._brands, media_type=FHIR_JSON, headers=headers)

    async def register(self, request: Request) -> Response:
        """RFC 7591 §3. Anonymous requests when the realm opens registration
        (dynamic_registration), with no privileges; a request bearing an operator's initial
        access token (§3) even when it is closed, with the privileges the token allows."""
        try:
            presented = bearer_token(request.headers.get("authorization"))
            authority = self._authority(presented)
            meta = await json_body(request, malformed=InvalidClientMetadata)
            registration = register(meta, self.ctx.now(), self.ctx.realm, authority=authority,
                                    secrets=self.ctx.client_secrets)
            launch_url = launch_url_metadata(meta)  # EHR launch (§6.1): initiate_login_uri
            if presented is not None and self.ctx.stores.initial_tokens.claim(
                    presented, self.ctx.now()) is None:
                raise InvalidToken("the initial access token was used up meanwhile")
        except OAuthError as error:
            return oauth_error(error, endpoint="/register")
        self.ctx.stores.clients.put(registration.client)
        return no_store_json(with_launch_url(self.ctx.stores, registration.client.client_id,
                                             launch_url, registration.response()), status=201)

    def _authority(self, presented: str | None) -> Authority:
        if presented is None:
            if not self.ctx.realm.registration_open():
                raise AccessDenied("dynamic client registration is closed", status=403)
            return ANONYMOUS
        token = self.ctx.stores.initial_tokens.find(presented, self.ctx.now())
        if token is None:
            # RFC 7591 §3 + RFC 6750 §3.1: an invalid initial access token is invalid_token.
            raise InvalidToken("the initial access token is unknown, expired or used up")
        return Authority(token.allows, ANONYMOUS.source)
