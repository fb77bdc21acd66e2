"""Token checking by introspection (RFC 7662) instead of by signature: a resource server
with ``token_check = "introspection"`` asks the AS about every token it has not seen in the
last ``ttl`` seconds, authenticating as its own confidential client ``rs:<server id>``.

What that buys: a revoked token (RFC 7009, a replayed code, a replayed refresh token) stops
working here within ``ttl`` seconds, where a ``jwt`` server accepts it until it expires.
What it costs: one call to the AS per token per ``ttl``. The AS answers with this server's
own view of the token (its scope and patient), which becomes the AccessContext exactly as
verified JWT claims would.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Mapping
from typing import Any, Protocol

import httpx

from smartrealm.core.basic_auth import encode_client_credentials
from smartrealm.core.defaults import INTROSPECTION_CACHE_SIZE as CACHE_SIZE
from smartrealm.core.defaults import INTROSPECTION_CACHE_TTL as CACHE_TTL
from smartrealm.core.rs_clients import rs_client_id
from smartrealm.core.urls import normalize_url
from smartrealm.realm.config import RealmConfig

from .context import AccessContext, access_context
from .errors import KeySetUnavailable, TokenRejected
from .validator import TokenValidator

log = logging.getLogger(__name__)


class _ClientBasic(httpx.Auth):
    def __init__(self, header: str) -> None:
        self._header = header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def basic_auth(client_id: str, secret: str) -> httpx.Auth:
    """How a resource server authenticates to the AS (introspection, patient-index reports):
    HTTP Basic with client_id and secret each form-encoded first (RFC 6749 §2.3.1), exactly
    as ``core.basic_auth`` encodes and the AS decodes them."""
    return _ClientBasic(encode_client_credentials(client_id, secret))


class TokenChecker(Protocol):
    """What a resource server needs from a token check (TokenValidator or this)."""

    async def validate(self, token: str | None) -> AccessContext: ...


class IntrospectionUnavailable(KeySetUnavailable):
    """The AS could not answer (down, or refused our credentials): 503, not 401."""


class IntrospectionValidator:
    def __init__(self, *, endpoint: str, issuer: str, audience: str, client_id: str,
                 secret: str, http: httpx.AsyncClient, ttl: float = CACHE_TTL,
                 cache_size: int = CACHE_SIZE, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.endpoint, self.issuer, self.audience = endpoint, issuer, audience
        self._auth = basic_auth(client_id, secret)
        self._http = http
        self._ttl, self._cache_size = ttl, cache_size
        self._clock, self._monotonic = clock, monotonic
        self._cache: OrderedDict[str, tuple[AccessContext, float]] = OrderedDict()
        self.calls = 0  # introspection requests made (tests check the cache with it)

    async def validate(self, token: str | None) -> AccessContext:
        if not token:
            raise TokenRejected("no access token was sent", token_presented=False)
        digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        cached = self._cached(digest)
        if cached is not None:
            return cached
        answer = await self._introspect(token)
        context = access_context(self._check(answer), self.audience)
        self._remember(digest, context)
        return context

    async def _introspect(self, token: str) -> dict[str, Any]:
        self.calls += 1
        try:
            response = await self._http.post(
                self.endpoint, auth=self._auth, headers={"Accept": "application/json"},
                data={"token": token, "token_type_hint": "access_token"})
            answer = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, RecursionError) as exc:
            raise IntrospectionUnavailable(f"{self.endpoint}: {type(exc).__name__}") from None
        if not isinstance(answer, dict):
            log.warning("introspection at %s answered %s", self.endpoint, response.status_code)
            raise IntrospectionUnavailable(f"{self.endpoint} answered {response.status_code}")
        return answer

    def _check(self, answer: Mapping[str, Any]) -> Mapping[str, Any]:
        """The same claim checks as for a JWT: the AS said active, for us, not expired."""
        if answer.get("active") is not True:
            raise TokenRejected("the token is not active", kind="inactive")
        if answer.get("iss") != self.issuer:
            raise TokenRejected("the token was issued by another server", kind="issuer")
        exp = answer.get("exp")
        if not isinstance(exp, int) or isinstance(exp, bool) or self._clock() >= exp:
            raise TokenRejected("the token has expired", kind="expired")
        audience = answer.get("aud")
        members = [audience] if isinstance(audience, str) else audience
        own = normalize_url(self.audience)
        if not isinstance(members, list) or own not in {normalize_url(str(a)) for a in members}:
            raise TokenRejected("the token is not meant for this server", kind="audience")
        return answer

    def _cached(self, digest: str) -> AccessContext | None:
        hit = self._cache.get(digest)
        if hit is None:
            return None
        context, stored_at = hit
        if self._monotonic() - stored_at >= self._ttl or self._clock() >= context.expires_at:
            del self._cache[digest]
            return None
        return context

    def _remember(self, digest: str, context: AccessContext) -> None:
        self._cache[digest] = (context, self._monotonic())
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    @classmethod
    def for_server(cls, realm: RealmConfig, server_id: str, http: httpx.AsyncClient, *,
                   secret: str, **options: Any) -> IntrospectionValidator:
        """Realm server ``server_id`` as client ``rs:<id>`` with its ``secret`` — given as a
        value: the guard opens no database."""
        return cls(endpoint=realm.auth_server.introspection_endpoint,
                   issuer=realm.auth_server.issuer, audience=realm.server(server_id).base_url,
                   client_id=rs_client_id(server_id), secret=secret, http=http, **options)


def checker_for_server(realm: RealmConfig, server_id: str, http: httpx.AsyncClient,
                       secret: Callable[[], str] | None = None) -> TokenChecker:
    """The check the configuration asks for: ``resource_servers[].token_check``.
    ``secret`` yields the server's ``rs:`` secret; it is asked for only in introspection
    mode, and that mode without it is a configuration error, never an unauthenticated
    introspection."""
    if realm.server(server_id).token_check == "introspection":
        if secret is None:
            raise ValueError(f"{server_id}: token_check = introspection needs the server's "
                             "rs: client secret")
        return IntrospectionValidator.for_server(realm, server_id, http, secret=secret())
    return TokenValidator.for_server(realm, server_id, http)
