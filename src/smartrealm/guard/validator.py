"""Validate an RFC 9068 JWT access token issued by the realm's authorization server.

Order follows spec §5.3 "Enforcement at the RS": (1) the token is well formed, signed by the
AS and unexpired, (2) the audience includes this server. Scope checks are the caller's job."""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, RSAKey

from smartrealm.core.defaults import TOKEN_MAX_LEEWAY as MAX_LEEWAY
from smartrealm.core.jose_rules import has_critical_extensions, is_access_token_typ
from smartrealm.core.urls import normalize_url
from smartrealm.realm.config import RealmConfig

from .context import AccessContext, access_context
from .errors import TokenRejected
from .jwks import JwksCache

# Asymmetric algorithms only: "none" and HS* would let anyone holding the (public) JWKS mint
# tokens (the classic alg-confusion attack), so they are never accepted.
ALLOWED_ALGORITHMS = frozenset({"RS256", "RS384", "ES256", "ES384"})
_EC_CURVES = {"ES256": "P-256", "ES384": "P-384"}


class TokenValidator:
    """Verifies bearer tokens for one resource server (``audience`` = its base URL)."""

    def __init__(self, *, issuer: str, audience: str, keys: JwksCache, leeway: int = 30,
                 clock: Callable[[], float] = time.time, cache_size: int = 1024) -> None:
        if not 0 <= leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY} seconds")
        self.issuer = issuer
        self.audience = audience
        self._keys = keys
        self._leeway = leeway
        self._clock = clock
        self._cache: OrderedDict[str, AccessContext] = OrderedDict()
        self._cache_size = cache_size

    @classmethod
    def for_server(cls, realm: RealmConfig, server_id: str, http: httpx.AsyncClient,
                   **options: Any) -> TokenValidator:
        """A validator for realm server ``server_id`` trusting the realm's AS."""
        keys = JwksCache(http, realm.auth_server.jwks_uri)
        return cls(issuer=realm.auth_server.issuer, audience=realm.server(server_id).base_url,
                   keys=keys, **options)

    async def validate(self, token: str | None) -> AccessContext:
        """The access context of ``token``, or TokenRejected. May raise KeySetUnavailable
        when the AS's keys cannot be fetched."""
        if not token:
            raise TokenRejected("no access token was sent", token_presented=False)
        digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        cached = self._cached(digest)
        if cached is not None:
            return cached
        claims = await self._verify_signature(token)
        self._check_claims(claims)
        context = access_context(claims, self.audience)
        self._remember(digest, context)
        return context

    # ------------------------------------------------------------------ signature

    async def _verify_signature(self, token: str) -> dict[str, Any]:
        try:
            obj = jws.extract_compact(token.encode("ascii"))
        except (JoseError, ValueError, UnicodeError):
            raise TokenRejected("the access token is not a compact JWS", kind="malformed") from None
        header = obj.headers()
        alg = _check_header(header)
        key = await self._keys.key_for(header["kid"])
        if key is None:
            raise TokenRejected("the token is signed with an unknown key", kind="signature")
        _check_key(key, alg)
        try:
            valid = jws.validate_compact(obj, key, algorithms=[alg])
        except (JoseError, ValueError):
            valid = False
        if not valid:
            raise TokenRejected("the token signature is invalid", kind="signature")
        return _claims(obj.payload)

    # ------------------------------------------------------------------ claims

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        if claims.get("iss") != self.issuer:
            raise TokenRejected("the token was issued by another server", kind="issuer")
        now = self._clock()
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise TokenRejected("the token has no exp claim", kind="claims")
        if now > exp + self._leeway:
            raise TokenRejected("the token has expired", kind="expired")
        nbf = claims.get("nbf")
        if nbf is not None and (not _is_number(nbf) or now + self._leeway < nbf):
            raise TokenRejected("the token is not valid yet", kind="expired")
        if not self._audience_ok(claims.get("aud")):
            raise TokenRejected("the token is not meant for this server", kind="audience")

    def _audience_ok(self, aud: Any) -> bool:
        """Membership, never equality of the whole claim (docs/behaviour.md): a realm token names
        every server it may be used at."""
        members = [aud] if isinstance(aud, str) else aud
        if not isinstance(members, list):
            return False
        wanted = normalize_url(self.audience)
        return any(isinstance(a, str) and normalize_url(a) == wanted for a in members)

    # ------------------------------------------------------------------ cache

    def _cached(self, digest: str) -> AccessContext | None:
        context = self._cache.get(digest)
        if context is None:
            return None
        # exp is re-checked on every hit: a cached token must not outlive itself.
        if self._clock() > context.expires_at + self._leeway:
            del self._cache[digest]
            raise TokenRejected("the token has expired", kind="expired")
        self._cache.move_to_end(digest)
        return context

    def _remember(self, digest: str, context: AccessContext) -> None:
        self._cache[digest] = context
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def _check_header(header: Mapping[str, Any]) -> str:
    _check_no_critical_extensions(header)
    alg = header.get("alg")
    if alg not in ALLOWED_ALGORITHMS:
        raise TokenRejected(f"signing algorithm {alg!r} is not accepted", kind="signature")
    if not is_access_token_typ(header.get("typ")):
        raise TokenRejected("the token is not an access token (typ must be at+jwt)",
                            kind="malformed")
    if not isinstance(header.get("kid"), str):
        raise TokenRejected("the token header has no kid", kind="malformed")
    return str(alg)


def _check_no_critical_extensions(header: Mapping[str, Any]) -> None:
    """RFC 7515 §4.1.11 (core.jose_rules): any ``crit`` is refused, before the signature."""
    if has_critical_extensions(header):
        raise TokenRejected("the token header lists critical extensions (crit) this server "
                            "does not understand")


def _check_key(key: Key, alg: str) -> None:
    """The header's alg must fit the key: an RSA key verifies only RS*, an EC key only the
    ES* of its curve, and a key that pins an ``alg`` only that one."""
    if key.alg is not None and key.alg != alg:
        raise TokenRejected("the token's alg does not match its key", kind="signature")
    if alg.startswith("RS") and isinstance(key, RSAKey):
        return
    if alg in _EC_CURVES and isinstance(key, ECKey) and key.curve_name == _EC_CURVES[alg]:
        return
    raise TokenRejected("the token's alg does not match its key", kind="signature")


def _claims(payload: bytes | None) -> dict[str, Any]:
    try:
        claims = json.loads(payload or b"")
    except (ValueError, UnicodeError, RecursionError):
        raise TokenRejected("the token payload is not JSON", kind="malformed") from None
    if not isinstance(claims, dict):
        raise TokenRejected("the token payload is not a JSON object", kind="malformed")
    return claims


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
