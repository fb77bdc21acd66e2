"""What happens to tokens after they are issued: recording, revocation of a whole grant
family, and the two replays that revoke one.

A *grant family* is everything one authorization led to: the access and refresh tokens of
its code exchange and of every refresh since. Ending a family ends all of them:

* a replayed authorization code (RFC 6749 §4.1.2: the AS "SHOULD revoke (when possible) all
  tokens previously issued based on that authorization code");
* a replayed, already rotated refresh token (OAuth 2.1 §4.3.1, SMART §13 "expire the whole
  authorization if a refresh token is reused");
* revocation of a refresh token (RFC 7009 §2.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smartrealm.oauth.store import RefreshStore
from smartrealm.oauth.token_registry import AccessTokenRecord, CodeLink, TokenRegistry

# SMART §7.1: introspection echoes every launch-context parameter of the token response;
# these are the ones an access token need not carry, so the registry keeps them.
LAUNCH_CONTEXT = ("patient", "encounter", "fhirContext", "need_patient_banner",
                  "smart_style_url", "intent", "tenant")


@dataclass(frozen=True)
class TokenLifecycle:
    registry: TokenRegistry
    refresh_tokens: RefreshStore

    def issued(self, body: Mapping[str, Any], claims: Mapping[str, Any], *, family: str,
               code_hash: str | None, refresh_expires_at: int | None) -> None:
        """Record the token response's access token (``claims``: what the minter signed into
        it) before the response is sent; link the code that started the family (kept until
        the family's last token expires)."""
        jti = str(claims["jti"])
        family = family or jti  # client_credentials: every token is its own family
        link = None if code_hash is None else CodeLink(
            code_hash, max(int(claims["exp"]), refresh_expires_at or 0))
        self.registry.record(AccessTokenRecord(
            jti=jti, family=family, client_id=str(claims["client_id"]),
            issued_at=int(claims["iat"]), expires_at=int(claims["exp"]),
            context={k: body[k] for k in LAUNCH_CONTEXT if k in body}), started_by=link)

    def code_refused(self, code_hash: str) -> None:
        """An exchange found the code unusable. If the code had already issued tokens this
        is a replay: the code leaked, so everything it issued is revoked."""
        family = self.registry.family_of_code(code_hash)
        if family is not None:
            self.revoke_family(family)

    def refresh_refused(self, token_hash: str) -> None:
        """A refresh found the token unusable. The refresh store revokes the family's
        refresh tokens on a replay; the family's access tokens end with them."""
        state = self.refresh_tokens.lookup(token_hash)
        if state is not None and state.revoked:
            self.registry.revoke_family(state.token.family)

    def revoke_family(self, family: str) -> None:
        self.refresh_tokens.revoke_family(family)
        self.registry.revoke_family(family)
