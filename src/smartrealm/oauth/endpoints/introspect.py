"""Token introspection (RFC 7662, SMART §7.1) and the lookups it shares with revocation.

An access token is active while its signature, issuer and ``exp`` hold AND the token
registry knows its ``jti`` and has not revoked it. A refresh token is active while it is
stored, unused (not rotated), unrevoked and unexpired. Anything else is exactly
``{"active": false}`` (§7.1: inactive answers reveal nothing).

When the caller is one of the realm's resource servers the answer is that server's view
(docs/behaviour.md): ``patient``, ``encounter`` and the data scopes of ``scope`` come from
its own ``authorization_details`` entry (identity and refresh scopes stay), and a token
whose ``aud`` does not name the server, or that has no entry for it, is inactive for it
(RFC 7662 §4: the AS may answer differently depending on who asks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from smartrealm.core.urls import normalize_url
from smartrealm.oauth.own_tokens import OwnTokenVerifier
from smartrealm.oauth.passwords import token_hash
from smartrealm.oauth.realm_view import Server
from smartrealm.oauth.store import RefreshStore, RefreshTokenState
from smartrealm.oauth.token_registry import TokenRegistry
from smartrealm.oauth.tokens import SELF_CLIENT_ID

INACTIVE: dict[str, Any] = {"active": False}
# RFC 7662 §2.2 plus SMART §7.1: the access token's claims an answer echoes.
CLAIMS = ("scope", "client_id", "exp", "iat", "sub", "iss", "aud", "fhirUser",
          "authorization_details", "patient", "encounter", "fhirContext",
          "need_patient_banner", "smart_style_url", "intent", "tenant")
HINTS = ("access_token", "refresh_token")


@dataclass(frozen=True)
class TokenLookups:
    issuer: str
    verifier: OwnTokenVerifier
    registry: TokenRegistry
    refresh_tokens: RefreshStore

    def access_claims(self, token: str, now: int) -> dict[str, Any] | None:
        """Claims of an access token that is active right now, else None."""
        claims = self.verifier.claims(token, now)
        if claims is None:
            return None
        if claims["client_id"] == SELF_CLIENT_ID:
            # The AS's own 60-second lookup tokens (CONTRACT "AS self-token") are never
            # registered nor revocable; a resource server in introspection mode must
            # accept them while they are valid.
            return claims
        record = self.registry.get(str(claims["jti"]))
        if record is None or not record.active(now):
            return None
        return {**claims, **record.context}

    def refresh_state(self, token: str) -> RefreshTokenState | None:
        return self.refresh_tokens.lookup(token_hash(token)) if token else None


@dataclass(frozen=True)
class Caller:
    """Who asks: a client (``client_id``), a realm resource server (``server`` set), or the
    client of a Bearer token."""

    client_id: str
    server: Server | None = None


def introspect(lookups: TokenLookups, token: str, hint: str | None, caller: Caller,
               now: int) -> dict[str, Any]:
    """RFC 7662 §2.2. ``hint`` only orders the search (§2.1: the AS may ignore it)."""
    finders: list[Callable[[], dict[str, Any] | None]] = [
        lambda: _access_answer(lookups, token, now),
        lambda: _refresh_answer(lookups, token, now)]
    if hint == "refresh_token":
        finders.reverse()
    for find in finders:
        answer = find()
        if answer is not None:
            return _for_caller(answer, caller)
    return dict(INACTIVE)


def _access_answer(lookups: TokenLookups, token: str, now: int) -> dict[str, Any] | None:
    claims = lookups.access_claims(token, now)
    if claims is None:
        return None
    answer = {"active": True, "token_type": "Bearer"}
    answer.update({k: claims[k] for k in CLAIMS if k in claims})
    return answer


def _refresh_answer(lookups: TokenLookups, token: str, now: int) -> dict[str, Any] | None:
    state = lookups.refresh_state(token)
    if state is None:
        return None
    if not state.active(now):
        return dict(INACTIVE)
    grant = state.token.grant
    answer: dict[str, Any] = {
        "active": True, "client_id": state.token.client_id, "scope": grant.scope,
        "exp": state.token.expires_at, "sub": grant.subject, "iss": lookups.issuer,
        "aud": grant.base_urls, "authorization_details": grant.authorization_details(),
        **grant.context()}
    if grant.fhir_user is not None:
        answer["fhirUser"] = grant.fhir_user
    return answer


def _for_caller(answer: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """A resource server sees its own share of an active token (docs/behaviour.md)."""
    if caller.server is None or not answer.get("active"):
        return answer
    own = normalize_url(caller.server.base_url)
    audience = answer.get("aud")
    if not isinstance(audience, list) or own not in {normalize_url(str(a)) for a in audience}:
        return dict(INACTIVE)
    entry = _own_entry(answer.get("authorization_details"), own)
    if entry is None:
        # Fail closed: every token this AS mints has one entry per audience member, so a
        # token without one for the asking server is inactive for it; its union ``scope``
        # must never stand in for the server's share.
        return dict(INACTIVE)
    answer["scope"] = _own_scope(str(answer.get("scope", "")), entry,
                                 answer["authorization_details"])
    for name in ("patient", "encounter"):
        if name in entry:
            answer[name] = entry[name]
        else:
            answer.pop(name, None)
    return answer


def _own_scope(scope: str, entry: Mapping[str, Any], details: list[Any]) -> str:
    """The server's own data scopes, plus the scopes that belong to no server (``openid``,
    ``fhirUser``, ``offline_access``, ...): SMART §7.1 wants ``scope`` "as included in the
    original access token response", which this is exactly for a one-server token."""
    per_server = {s for d in details if isinstance(d, dict)
                  for s in str(d.get("scope", "")).split()}
    identity = [s for s in scope.split() if s not in per_server]
    return " ".join(dict.fromkeys([*str(entry.get("scope", "")).split(), *identity]))


def _own_entry(details: Any, own: str) -> Mapping[str, Any] | None:
    if not isinstance(details, list):
        return None
    for entry in details:
        locations = entry.get("locations") if isinstance(entry, dict) else None
        if isinstance(locations, list) and own in {normalize_url(str(u)) for u in locations}:
            return dict(entry)
    return None
