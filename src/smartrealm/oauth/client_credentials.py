"""The ``client_credentials`` grant for SMART Backend Services (spec §9).

Access is pre-authorized at registration: the client's registered ``scope`` is its ceiling and
must contain ``system/`` scopes; a request must stay inside it (``invalid_scope``). Repeated
``resource`` parameters (RFC 8707) pick the servers, by default every server the client may
use, and the one token names them all in ``aud`` with one ``authorization_details`` entry per
server carrying that server's share (docs/behaviour.md). Tokens live at most 5 minutes and come with
no refresh token (§9, §13).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from smartrealm.core.defaults import BACKEND_TOKEN_MAX_LIFETIME as MAX_LIFETIME
from smartrealm.oauth.errors import InvalidScope, UnauthorizedClient
from smartrealm.oauth.grants import Grant, ServerGrant
from smartrealm.oauth.negotiate import server_support
from smartrealm.oauth.realm_view import Realm, Server
from smartrealm.oauth.resources import parse_audience
from smartrealm.oauth.scope_algebra import covered_by_any, with_letters
from smartrealm.oauth.scopes import ResourceScope, ScopeSet, ScopeSyntaxError, parse_scopes
from smartrealm.oauth.store import Client
from smartrealm.oauth.tokens import IssuedToken, TokenMinter

GRANT_TYPE = "client_credentials"


def system_ceiling(client: Client) -> ScopeSet:
    """The client's registered system/ scopes; unauthorized_client when it may not use the
    grant at all (RFC 6749 §5.2)."""
    if client.is_public or GRANT_TYPE not in client.grant_types:
        raise UnauthorizedClient("this client is not registered for client_credentials")
    try:
        ceiling = parse_scopes(client.scope)
    except ScopeSyntaxError:
        ceiling = ScopeSet()
    if "system" not in ceiling.contexts():
        raise UnauthorizedClient("this client has no system/ scopes registered")
    return ceiling


def requested_scopes(scope: str | None, ceiling: ScopeSet) -> ScopeSet:
    """§9: scope is required and SHALL lie within the pre-authorized scope. Only system/
    resource scopes can be granted without a user."""
    if not scope or not scope.strip():
        raise InvalidScope("scope is required for client_credentials (SMART §9)")
    try:
        requested = parse_scopes(scope)
    except ScopeSyntaxError as exc:
        raise InvalidScope(str(exc)) from None
    if requested.other:
        raise InvalidScope(f"{' '.join(requested.other)} cannot be granted without a user")
    for item in requested.resource:
        if item.context != "system" or not _within(item, ceiling):
            raise InvalidScope(f"{item.raw} is outside the scope registered for this client")
    return requested


def _within(item: ResourceScope, ceiling: ScopeSet) -> bool:
    """Every permission letter of ``item`` is granted by some ceiling scope (so
    ``system/Patient.r system/Patient.s`` together allow ``system/Patient.rs``)."""
    return all(covered_by_any(single, ceiling.resource)
               for letter in item.permissions
               if (single := with_letters(item, letter)) is not None)


def target_servers(realm: Realm, client: Client,
                   resources: Sequence[str]) -> tuple[Server, ...]:
    """RFC 8707 ``resource`` values, checked like at /authorize (invalid_target); none sent
    means every server the client may use."""
    if resources:
        return parse_audience(realm, (), resources, client.allowed_servers).servers
    allowed = set(client.allowed_servers)
    return tuple(rs for rs in realm.resource_servers if not allowed or rs.id in allowed)


def _server_scopes(requested: ScopeSet, server: Server) -> tuple[str, ...]:
    """What the server can honour: its resource types and interactions (negotiate.py)."""
    support = server_support(server)
    granted: list[str] = []
    for item in requested.resource:
        if item.resource_type != "*" and support.types is not None \
                and item.resource_type not in support.types:
            continue
        narrowed = with_letters(item, support.letters)
        if narrowed is not None and narrowed.raw not in granted:
            granted.append(narrowed.raw)
    return tuple(granted)


def backend_grant(realm: Realm, client: Client, scope: str | None,
                  resources: Sequence[str]) -> Grant:
    """One ServerGrant per selected server that holds any requested type; a server that
    would get nothing is left out of the audience."""
    requested = requested_scopes(scope, system_ceiling(client))
    servers = tuple(
        ServerGrant(rs.id, rs.base_url, rs.fhir_version, _server_scopes(requested, rs))
        for rs in target_servers(realm, client, resources))
    granted = tuple(s for s in servers if s.scopes)
    if not granted:
        raise InvalidScope("none of the selected servers holds the requested resource types")
    return Grant(client_id=client.client_id, subject=client.client_id, servers=granted)


def backend_access_token(grant: Grant, minter: TokenMinter) -> IssuedToken:
    """§9: expires_in ≤ 300."""
    return minter.access_token(grant, lifetime=MAX_LIFETIME)


def backend_response(grant: Grant, issued: IssuedToken) -> dict[str, Any]:
    """§9 response: access_token, token_type, expires_in (≤ 300) and scope; never a
    refresh token. authorization_details carries each server's share (§10.1)."""
    return {"access_token": issued.token, "token_type": "Bearer",
            "expires_in": issued.expires_in, "scope": grant.scope,
            "authorization_details": grant.authorization_details()}
