"""Recognising the access tokens this AS signed, for its own endpoints (introspection,
revocation, Bearer callers of introspection). The resource servers use the guard instead."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError

from smartrealm.core.defaults import TOKEN_MAX_LENGTH as MAX_TOKEN_LENGTH
from smartrealm.core.jose_rules import has_critical_extensions, is_access_token_typ
from smartrealm.oauth.keys import ALGORITHM, KeyRing


class OwnTokenVerifier:
    def __init__(self, issuer: str, keys: KeyRing) -> None:
        self._issuer = issuer
        self._keys = keys

    def claims(self, token: str, now: int) -> dict[str, Any] | None:
        """The claims of an unexpired access token this AS signed with a key it still
        publishes; None for anything else (malformed, forged, expired, an id_token)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        try:
            obj = jws.extract_compact(token.encode("ascii"))
        except (JoseError, ValueError, UnicodeError):
            return None
        if not _header_ok(obj.headers()):
            return None
        try:
            key = self._keys.public_key_set().get_by_kid(str(obj.headers()["kid"]))
            if not jws.validate_compact(obj, key, algorithms=[ALGORITHM]):
                return None
            claims = json.loads(obj.payload or b"")
        except (JoseError, ValueError, UnicodeError, RecursionError):
            return None
        return claims if self._claims_ok(claims, now) else None

    def _claims_ok(self, claims: Any, now: int) -> bool:
        if not isinstance(claims, dict) or claims.get("iss") != self._issuer:
            return False
        exp = claims.get("exp")
        if not isinstance(exp, int) or isinstance(exp, bool) or now >= exp:
            return False
        return all(isinstance(claims.get(name), str) for name in ("jti", "client_id", "sub"))


def _header_ok(header: Mapping[str, Any]) -> bool:
    # RFC 7515 §4.1.11: any ``crit`` is refused, as the resource servers' guard refuses it.
    return (header.get("alg") == ALGORITHM and isinstance(header.get("kid"), str)
            and is_access_token_typ(header.get("typ"))
            and not has_critical_extensions(header))
