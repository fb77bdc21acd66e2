"""Token revocation (RFC 7009, spec §7.2).

* Revoking a refresh token ends its whole grant family: every refresh token and every
  access token of that authorization (RFC 7009 §2.1 "SHOULD also invalidate all access
  tokens based on the same authorization grant").
* Revoking an access token ends that token only.
* Unknown, expired or malformed tokens: nothing to do, and still 200 (§2.2).
* A token issued to another client is refused with ``unauthorized_client`` (§2.1: the AS
  "verifies whether the token was issued to the client making the revocation request").
* ``token_type_hint`` orders the search; a value other than ``access_token`` or
  ``refresh_token`` is refused with ``unsupported_token_type`` (§2.2.1), so a client
  revoking, say, an ``id_token`` learns that nothing was revoked.
"""

from __future__ import annotations

from collections.abc import Callable

from smartrealm.oauth.endpoints.introspect import HINTS, TokenLookups
from smartrealm.oauth.errors import InvalidRequest, UnauthorizedClient, UnsupportedTokenType
from smartrealm.oauth.lifecycle import TokenLifecycle
from smartrealm.oauth.store import Client


def revoke(lookups: TokenLookups, lifecycle: TokenLifecycle, token: str | None,
           hint: str | None, client: Client, now: int) -> None:
    if not token:
        raise InvalidRequest("token is required")
    if hint is not None and hint not in HINTS:
        raise UnsupportedTokenType(f"token_type_hint {hint!r} is not supported; "
                                   "use access_token or refresh_token")
    finders: list[Callable[[], bool]] = [
        lambda: _revoke_access(lookups, token, client, now),
        lambda: _revoke_refresh(lookups, lifecycle, token, client)]
    if hint == "refresh_token":
        finders.reverse()
    for found in finders:
        if found():
            return


def _check_owner(owner: str, client: Client) -> None:
    if owner != client.client_id:
        raise UnauthorizedClient("the token was issued to another client")


def _revoke_access(lookups: TokenLookups, token: str, client: Client, now: int) -> bool:
    claims = lookups.access_claims(token, now)
    if claims is None:
        return False  # unknown, expired or already revoked: nothing left to revoke
    _check_owner(str(claims["client_id"]), client)
    lookups.registry.revoke(str(claims["jti"]))
    return True


def _revoke_refresh(lookups: TokenLookups, lifecycle: TokenLifecycle, token: str,
                    client: Client) -> bool:
    state = lookups.refresh_state(token)
    if state is None:
        return False
    _check_owner(state.token.client_id, client)
    lifecycle.revoke_family(state.token.family)
    return True
