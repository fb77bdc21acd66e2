"""Minting JWTs: RFC 9068 access tokens (exactly the CONTRACT's claims), OIDC id_tokens
(SMART §8, RS256) and the AS's short-lived self-token for resolving patients on each server.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jwt

from smartrealm.core.defaults import ID_TOKEN_LIFETIME, SELF_TOKEN_LIFETIME
from smartrealm.core.jose_rules import ACCESS_TOKEN_TYP
from smartrealm.oauth.grants import DETAILS_TYPE, Grant
from smartrealm.oauth.keys import ALGORITHM, KeyRing

SELF_CLIENT_ID = "smartrealm-as"
SELF_SCOPE = "system/Patient.rs"


@dataclass(frozen=True)
class IssuedToken:
    token: str
    claims: dict[str, Any]
    expires_in: int


class TokenMinter:
    def __init__(self, issuer: str, keys: KeyRing, lifetime: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._issuer = issuer
        self._keys = keys
        self._lifetime = lifetime
        self._clock = clock

    def _sign(self, claims: dict[str, Any], typ: str) -> str:
        key = self._keys.active
        header = {"alg": ALGORITHM, "typ": typ, "kid": key.kid}
        return jwt.encode(header, claims, key.key, algorithms=[ALGORITHM])

    def _base_claims(self, sub: str, lifetime: int) -> dict[str, Any]:
        now = int(self._clock())
        return {"iss": self._issuer, "sub": sub, "iat": now, "exp": now + lifetime,
                "jti": secrets.token_urlsafe(16)}

    def access_token(self, grant: Grant, lifetime: int | None = None) -> IssuedToken:
        """RFC 9068 §2: ``typ: at+jwt``; ``aud`` is the LIST of granted base URLs.
        ``lifetime`` can only shorten the configured one (Backend Services: ≤ 300 s)."""
        lifetime = self._lifetime if lifetime is None else min(lifetime, self._lifetime)
        claims = self._base_claims(grant.subject, lifetime)
        claims.update(aud=grant.base_urls, client_id=grant.client_id, scope=grant.scope,
                      authorization_details=grant.authorization_details())
        claims.update(grant.context())
        if grant.fhir_user is not None:
            claims["fhirUser"] = grant.fhir_user
        return IssuedToken(self._sign(claims, ACCESS_TOKEN_TYP), claims, lifetime)

    def id_token(self, grant: Grant) -> str:
        """OIDC Core §2 / SMART §8: aud is the client; fhirUser only when granted."""
        claims = self._base_claims(grant.subject, ID_TOKEN_LIFETIME)
        del claims["jti"]
        claims["aud"] = grant.client_id
        if grant.auth_time:
            claims["auth_time"] = grant.auth_time
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        if grant.fhir_user is not None and grant.has_scope("fhirUser"):
            claims["fhirUser"] = grant.fhir_user
        return self._sign(claims, "JWT")

    def self_token(self, base_url: str, fhir_version: str = "4.0.1",
                   scope: str = SELF_SCOPE) -> str:
        """CONTRACT "AS self-token": system/Patient.rs at one server, 60 s (the encounter
        picker asks for system/Encounter.rs instead)."""
        claims = self._base_claims(SELF_CLIENT_ID, SELF_TOKEN_LIFETIME)
        claims.update(aud=[base_url], client_id=SELF_CLIENT_ID, scope=scope,
                      authorization_details=[{"type": DETAILS_TYPE, "locations": [base_url],
                                              "fhirVersions": [fhir_version],
                                              "scope": scope}])
        return self._sign(claims, ACCESS_TOKEN_TYP)
