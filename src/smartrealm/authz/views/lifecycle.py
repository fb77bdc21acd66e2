"""The AS's introspection (RFC 7662, SMART §7.1) and revocation (RFC 7009, §7.2) endpoints.

Who may introspect (RFC 7662 §2.1 requires some authorization):
* a realm resource server, as its confidential client ``rs:<server id>`` (secret in the
  AS's database, see ``storage.rs_credentials``), with HTTP Basic or ``client_secret_post``;
* any confidential registered client (``client_secret_basic`` / ``client_secret_post``);
* anyone holding an active access token of this AS, as ``Authorization: Bearer`` (SMART
  §7.1: "any authorized caller SHALL be able to authenticate with ... a Bearer token").
Public clients and anonymous callers get 401 ``invalid_client``; a Bearer token that is not
active gets 401 ``invalid_token`` (RFC 7662 §2.3).

Revocation authenticates clients exactly as the token endpoint does (public clients by
``client_id``). Both endpoints accept private_key_jwt assertions (SMART §4.5, RFC 7523 §3)
whose ``aud`` is the token endpoint (as SMART clients send it), the endpoint itself or the
issuer; the ``jti`` rule is shared with the token endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartrealm.authz.client_guard import client_auth
from smartrealm.authz.client_keys import ClientJwksCache
from smartrealm.authz.flow import AuthzContext
from smartrealm.authz.views.web import cors_for, form_params, no_store_json, oauth_error
from smartrealm.oauth.assertions import AssertionVerifier, request_assertion
from smartrealm.oauth.client_auth import FailureThrottle, authenticate_request
from smartrealm.oauth.endpoints.introspect import Caller, TokenLookups, introspect
from smartrealm.oauth.endpoints.revoke import revoke
from smartrealm.oauth.errors import (
    NO_STORE,
    InvalidClient,
    InvalidRequest,
    InvalidToken,
    OAuthError,
)
from smartrealm.oauth.lifecycle import TokenLifecycle
from smartrealm.oauth.own_tokens import OwnTokenVerifier
from smartrealm.oauth.server_clients import authenticate_server, presented_server


def _single(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name, [])
    if len(values) > 1:
        raise InvalidRequest(f"{name} must not be repeated")
    return values[0] if values else None


class LifecycleViews:
    def __init__(self, ctx: AuthzContext, client_keys: ClientJwksCache) -> None:
        self.ctx = ctx
        self.client_keys = client_keys
        stores = ctx.stores
        self.lookups = TokenLookups(ctx.issuer, OwnTokenVerifier(ctx.issuer, ctx.keys),
                                    stores.tokens, stores.refresh_tokens)
        self.lifecycle = TokenLifecycle(stores.tokens, stores.refresh_tokens)

    async def _assertions(self, params: Mapping[str, Sequence[str]],
                          endpoint: str) -> AssertionVerifier:
        """private_key_jwt at ``endpoint``: the client's keys (its ``jwks_uri`` document
        fetched if need be, authz/client_keys.py) and the shared jti replay cache."""
        stores, auth = self.ctx.stores, self.ctx.realm.auth_server
        assertion = request_assertion(params)
        keys = await self.client_keys.keys_for_request(assertion, stores.clients)
        return AssertionVerifier(auth.token_endpoint, stores.replays, keys, self.ctx.now(),
                                 other_audiences=(endpoint, auth.issuer), parsed=assertion)

    async def introspect(self, request: Request) -> Response:
        try:
            params = await form_params(request)
            assertions = await self._assertions(
                params, self.ctx.realm.auth_server.introspection_endpoint)
            caller = self._caller(request, params, assertions)
            token = _single(params, "token")
            if not token:
                raise InvalidRequest("token is required")
            hint = _single(params, "token_type_hint")
            body = introspect(self.lookups, token, hint, caller, self.ctx.now())
        except OAuthError as error:
            # RFC 7235 §3.1: a 401 names a scheme the caller can use.
            return oauth_error(error, endpoint="/introspect",
                               basic_auth_used=isinstance(error, InvalidClient))
        return no_store_json(body)

    def _caller(self, request: Request, params: Mapping[str, Sequence[str]],
                assertions: AssertionVerifier) -> Caller:
        authorization = request.headers.get("authorization")
        if authorization and authorization.strip().lower().startswith("bearer "):
            if "client_id" in params or "client_secret" in params:
                raise InvalidRequest("use either a Bearer token or client credentials")
            return self._bearer_caller(authorization.strip()[7:].strip())
        auth = client_auth(self.ctx, request)
        server = self._server_caller(authorization, params, auth.throttle)
        if server is not None:
            return server
        client = authenticate_request(authorization, params, auth, assertions)
        if client.is_public:
            raise InvalidClient("a public client cannot introspect tokens")
        return Caller(client.client_id)

    def _bearer_caller(self, token: str) -> Caller:
        claims = self.lookups.access_claims(token, self.ctx.now())
        if claims is None:
            raise InvalidToken("the Bearer token is not an active access token of this server")
        return Caller(str(claims["client_id"]))

    def _server_caller(self, authorization: str | None, params: Mapping[str, Sequence[str]],
                       throttle: FailureThrottle) -> Caller | None:
        """A realm resource server authenticating as ``rs:<id>`` (oauth/server_clients.py); None
        for anyone else."""
        pair = presented_server(authorization, params)
        if pair is None:
            return None
        return Caller(pair[0], server=authenticate_server(
            self.ctx.realm, self.ctx.stores.rs_credentials.secret, *pair, throttle))

    async def revoke(self, request: Request) -> Response:
        cors = cors_for(request)
        authorization = request.headers.get("authorization")
        try:
            params = await form_params(request)
            assertions = await self._assertions(
                params, self.ctx.realm.auth_server.revocation_endpoint)
            client = authenticate_request(authorization, params,
                                          client_auth(self.ctx, request), assertions)
            revoke(self.lookups, self.lifecycle, _single(params, "token"),
                   _single(params, "token_type_hint"), client, self.ctx.now())
        except OAuthError as error:
            return oauth_error(error, endpoint="/revoke",
                               basic_auth_used=isinstance(error, InvalidClient),
                               extra_headers=cors)
        return Response(status_code=200, headers={**NO_STORE, **cors})

    async def revoke_preflight(self, request: Request) -> Response:
        headers = {**cors_for(request), "Access-Control-Allow-Methods": "POST",
                   "Access-Control-Allow-Headers": "Authorization, Content-Type",
                   "Access-Control-Max-Age": "600"}
        return Response(status_code=204, headers=headers)


def lifecycle_routes(ctx: AuthzContext, path: Callable[[str], str],
                     client_keys: ClientJwksCache) -> list[Route]:
    views = LifecycleViews(ctx, client_keys)
    return [Route(path("/introspect"), views.introspect, methods=["POST"]),
            Route(path("/revoke"), views.revoke, methods=["POST"]),
            Route(path("/revoke"), views.revoke_preflight, methods=["OPTIONS"])]
