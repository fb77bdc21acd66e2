"""The token endpoint (SMART §4): grants ``authorization_code`` (§4.2, RFC 6749 §4.1.3,
RFC 7636 §4.6, RFC 8707 §2.2) and ``refresh_token`` (§4.3, RFC 6749 §6), each an ordered list
of small named checks, then the response (§4.4).

A code or refresh token is consumed (atomically marked used) before the remaining checks
run: any failure after that point leaves it dead, so a stolen one cannot be retried against
the verifier, the redirect URI or another client.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from smartrealm.core.defaults import REFRESH_LIFETIME
from smartrealm.oauth import pkce
from smartrealm.oauth.assertions import AssertionVerifier
from smartrealm.oauth.client_auth import ClientAuth, authenticate_request
from smartrealm.oauth.client_credentials import (
    backend_access_token,
    backend_grant,
    backend_response,
)
from smartrealm.oauth.errors import (
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from smartrealm.oauth.grants import Grant
from smartrealm.oauth.lifecycle import TokenLifecycle
from smartrealm.oauth.negotiate import REFRESH_SCOPES
from smartrealm.oauth.passwords import token_hash
from smartrealm.oauth.realm_view import Realm, SharedAudience
from smartrealm.oauth.resources import narrow
from smartrealm.oauth.store import (
    AuthorizationCode,
    Client,
    CodeStore,
    RefreshStore,
    RefreshToken,
)
from smartrealm.oauth.tokens import IssuedToken, TokenMinter

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
REPEATABLE = frozenset({"resource"})


@dataclass
class TokenContext:
    """One token request. Everything above ``client`` is the request and what it is checked
    against, given whole to ``new_context``; the checks fill in the fields from ``client``
    on as they establish them (who the client is, what the code or refresh token granted,
    the grant the new access token carries)."""

    params: Mapping[str, Sequence[str]]
    authorization: str | None
    realm: Realm
    clients: ClientAuth  # the registered clients, secret hashing, failure throttle
    codes: CodeStore
    refresh_tokens: RefreshStore
    now: int
    assertions: AssertionVerifier | None = None  # private_key_jwt (None: not accepted)
    lifecycle: TokenLifecycle | None = None  # token registry: revocation, replays
    shared_audience: SharedAudience | None = None  # None: no multi-server check
    client: Client | None = None
    code: AuthorizationCode | None = None
    refresh: RefreshToken | None = None
    grant: Grant | None = None  # what the new access token carries
    family: str = ""

    def one(self, name: str) -> str | None:
        values = self.params.get(name, [])
        return values[0] if values else None


def check_no_repeats(c: TokenContext) -> None:
    for name, values in c.params.items():
        if len(values) > 1 and name not in REPEATABLE:
            raise InvalidRequest(f"{name} must not be repeated")


def check_grant_type(c: TokenContext) -> None:
    grant_type = c.one("grant_type")
    if not grant_type:
        raise InvalidRequest("grant_type is required")
    if grant_type not in GRANT_TYPES:
        raise UnsupportedGrantType(f"grant_type {grant_type!r} is not supported")


def authenticate_client(c: TokenContext) -> None:
    c.client = authenticate_request(c.authorization, c.params, c.clients, c.assertions)


def check_client_grant_type(c: TokenContext) -> None:
    # RFC 6749 §5.2 unauthorized_client: a grant the client was not registered for.
    assert c.client is not None
    if c.one("grant_type") not in c.client.grant_types:
        raise UnauthorizedClient(f"this client is not registered for {c.one('grant_type')}")


def client_credentials_grant(c: TokenContext) -> None:
    # SMART §9 Backend Services: scope within the registered system/ ceiling.
    assert c.client is not None
    c.grant = backend_grant(c.realm, c.client, c.one("scope"), c.params.get("resource", []))


async def check_shared_audience(c: TokenContext) -> None:
    """Backend Services pick their servers here: like at /authorize, several servers share
    a token only if each advertises auth-multi-aud-token, else ``invalid_target``. Codes and
    refresh tokens carry an audience already checked at /authorize (narrowing never widens
    it), so their grants need no such check."""
    assert c.grant is not None
    if c.shared_audience is not None:
        await c.shared_audience.check([c.realm.server(s.server_id) for s in c.grant.servers])


# ---------------------------------------------------------------- authorization_code


def consume_code(c: TokenContext) -> None:
    code = c.one("code")
    if not code:
        raise InvalidRequest("code is required")
    c.code = c.codes.consume(token_hash(code), c.now)
    if c.code is None:
        if c.lifecycle is not None:  # RFC 6749 §4.1.2: a replay revokes what the code issued
            c.lifecycle.code_refused(token_hash(code))
        raise InvalidGrant("the code is invalid, expired or was already used")
    c.grant, c.family = c.code.grant, secrets.token_hex(16)


def check_code_client(c: TokenContext) -> None:
    assert c.code is not None and c.client is not None
    if c.code.client_id != c.client.client_id:
        raise InvalidGrant("the code was issued to another client")


def check_redirect_uri(c: TokenContext) -> None:
    assert c.code is not None
    if c.one("redirect_uri") != c.code.redirect_uri:
        raise InvalidGrant("redirect_uri does not match the authorization request")


def check_code_verifier(c: TokenContext) -> None:
    # SMART §3.4: missing, blank, wrong or "plain" verifiers all fail.
    assert c.code is not None
    if not pkce.verify(c.one("code_verifier") or "", c.code.code_challenge):
        raise InvalidGrant("code_verifier is missing or does not match the code_challenge")


# ---------------------------------------------------------------- refresh_token


def rotate_refresh_token(c: TokenContext) -> None:
    value = c.one("refresh_token")
    if not value:
        raise InvalidRequest("refresh_token is required")
    c.refresh = c.refresh_tokens.rotate(token_hash(value), c.now)
    if c.refresh is None:
        if c.lifecycle is not None:  # a replay ends the family's access tokens too
            c.lifecycle.refresh_refused(token_hash(value))
        raise InvalidGrant("the refresh token is invalid, expired or revoked")
    c.grant, c.family = c.refresh.grant, c.refresh.family


def check_refresh_client(c: TokenContext) -> None:
    # §4.3: a refresh token SHALL be bound to the client it was issued to.
    assert c.refresh is not None and c.client is not None
    if c.refresh.client_id != c.client.client_id:
        raise InvalidGrant("the refresh token was issued to another client")


def narrow_scope(c: TokenContext) -> None:
    # §4.3: a refresh ``scope`` may narrow the grant (subset or equal), never widen it; the
    # code exchange likewise (docs/behaviour.md: a token request may narrow, never widen).
    assert c.grant is not None
    scope = c.one("scope")
    if scope is None:
        return
    wanted = set(scope.split())
    if not wanted <= set(c.grant.scope.split()):
        raise InvalidScope("scope exceeds the original grant")
    c.grant = c.grant.with_scopes(wanted)


# ---------------------------------------------------------------- both


def narrow_resources(c: TokenContext) -> None:
    assert c.grant is not None
    urls = narrow(c.realm, c.grant.base_urls, c.params.get("resource", []))
    c.grant = c.grant.narrowed(urls)


# A check raises an OAuthError or returns; one that needs I/O is a coroutine function.
Check = Callable[[TokenContext], Awaitable[None] | None]
COMMON_CHECKS: tuple[Check, ...] = (check_no_repeats, check_grant_type, authenticate_client,
                                     check_client_grant_type)
GRANT_CHECKS: dict[str, tuple[Check, ...]] = {
    "authorization_code": (consume_code, check_code_client, check_redirect_uri,
                           check_code_verifier, narrow_scope, narrow_resources),
    "refresh_token": (rotate_refresh_token, check_refresh_client, narrow_scope,
                      narrow_resources),
    "client_credentials": (client_credentials_grant, check_shared_audience),
}


async def run_token_checks(c: TokenContext) -> Grant:
    await _run(COMMON_CHECKS, c)  # check_grant_type: the grant's checks below exist
    await _run(GRANT_CHECKS[c.one("grant_type") or ""], c)
    assert c.grant is not None
    return c.grant


async def _run(checks: Sequence[Check], c: TokenContext) -> None:
    for check in checks:
        pending = check(c)
        if pending is not None:
            await pending


def issue_refresh_token(c: TokenContext) -> str | None:
    """offline_access/online_access granted → a new refresh token in the same family. It
    keeps the whole original grant (RFC 6749 §6: same scope as the one it replaces)."""
    original = c.code.grant if c.code is not None else c.refresh.grant if c.refresh else None
    if original is None or not any(original.has_scope(s) for s in REFRESH_SCOPES):
        return None
    assert c.client is not None
    if "refresh_token" not in c.client.grant_types:
        return None  # a token the client could not redeem (RFC 7591 §2 grant_types)
    value = secrets.token_urlsafe(32)
    c.refresh_tokens.save(token_hash(value), RefreshToken(
        c.family, c.client.client_id, original, c.now + REFRESH_LIFETIME))
    return value


def token_response(grant: Grant, issued: IssuedToken, minter: TokenMinter) -> dict[str, Any]:
    """SMART §4.4 plus §10.1 ``authorization_details`` and the multi-server context rule
    (oauth/grants.py)."""
    body: dict[str, Any] = {
        "access_token": issued.token, "token_type": "Bearer",
        "expires_in": issued.expires_in, "scope": grant.scope,
        # Every launch of this AS is standalone (§6.2); the app may omit a banner.
        "need_patient_banner": False,
        "authorization_details": grant.authorization_details(),
    }
    body.update(grant.context())
    if grant.has_scope("openid"):
        body["id_token"] = minter.id_token(grant)
    return body


def record_issue(c: TokenContext, body: dict[str, Any],
                 issued: IssuedToken) -> dict[str, Any]:
    """Register the new access token (introspection, revocation) before it is sent."""
    if c.lifecycle is not None:
        code = c.one("code") if c.code is not None else None
        refresh_until = c.now + REFRESH_LIFETIME if "refresh_token" in body else None
        c.lifecycle.issued(body, issued.claims, family=c.family,
                           code_hash=token_hash(code) if code else None,
                           refresh_expires_at=refresh_until)
    return body


def issue_tokens(context: TokenContext, grant: Grant, minter: TokenMinter) -> dict[str, Any]:
    """The response for a request that passed ``run_token_checks``."""
    if context.one("grant_type") == "client_credentials":
        # §9: short-lived, never a refresh token
        issued = backend_access_token(grant, minter)
        return record_issue(context, backend_response(grant, issued), issued)
    issued = minter.access_token(grant)
    body = token_response(grant, issued, minter)
    refresh = issue_refresh_token(context)
    if refresh is not None:
        body["refresh_token"] = refresh
    return record_issue(context, body, issued)


def new_context(params: Mapping[str, Sequence[str]], authorization: str | None,
                realm: Realm, clients: ClientAuth, codes: CodeStore,
                refresh_tokens: RefreshStore, now: int | None = None, *,
                assertions: AssertionVerifier | None = None,
                lifecycle: TokenLifecycle | None = None,
                shared_audience: SharedAudience | None = None) -> TokenContext:
    return TokenContext(params, authorization, realm, clients, codes, refresh_tokens,
                        int(now if now is not None else time.time()), assertions, lifecycle,
                        shared_audience)
