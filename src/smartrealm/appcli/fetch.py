"""`smartrealm app get`: one FHIR read or search with a stored token, refreshing it once
when it has expired or the server answers 401 (spec §4.3), and saving the new token."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import httpx

from smartrealm.appcli.profile import Connection, Grant, Profile
from smartrealm.client.errors import FhirUnauthorized
from smartrealm.client.fhir import FhirSession
from smartrealm.client.token_endpoint import refresh
from smartrealm.client.tokens import TokenSet


class AppUsageError(RuntimeError):
    """The command cannot run as asked (unknown alias, server, path); says what to do."""


def find_connection(profile: Profile, iss_or_alias: str) -> Connection:
    connection = profile.find(iss_or_alias)
    if connection is None:
        known = ", ".join(sorted(profile.connections())) or "none"
        raise AppUsageError(f"no connection {iss_or_alias!r} (known aliases: {known}); run "
                            "`smartrealm app connect ISS` first")
    return connection


def split_path(path: str) -> tuple[str, str | None, dict[str, str]]:
    """``Patient/p1`` → read; ``Observation?category=x`` (or ``Observation``) → search."""
    resource_path, _, query = path.strip().lstrip("/").partition("?")
    segments = resource_path.split("/")
    if not segments[0] or len(segments) > 2 or (len(segments) == 2 and query):
        raise AppUsageError(f"PATH {path!r} must be TYPE/ID, TYPE or TYPE?QUERY")
    params = dict(parse_qsl(query, keep_blank_values=True))
    return segments[0], segments[1] if len(segments) == 2 else None, params


async def get(profile: Profile, iss_or_alias: str, path: str, server: str | None
              ) -> dict[str, Any]:
    connection = find_connection(profile, iss_or_alias)
    base = server or connection.iss
    grant = connection.grant_for(base)
    if grant is None:
        raise AppUsageError(f"{connection.alias} has no token for {base} (its servers: "
                            f"{', '.join(connection.servers)})")
    tokens = profile.tokens.load(grant.key)
    if tokens is None:
        raise AppUsageError(f"no stored token for {connection.alias}; run `app connect` again")
    resource_type, resource_id, params = split_path(path)
    async with httpx.AsyncClient(timeout=30.0) as http:
        if tokens.expired():
            tokens = await _refresh(http, profile, grant, tokens)
        try:
            return await _call(http, base, tokens, resource_type, resource_id, params)
        except FhirUnauthorized:
            tokens = await _refresh(http, profile, grant, tokens)
            return await _call(http, base, tokens, resource_type, resource_id, params)


async def _call(http: httpx.AsyncClient, base: str, tokens: TokenSet, resource_type: str,
                resource_id: str | None, params: dict[str, str]) -> dict[str, Any]:
    session = FhirSession(http, base, tokens)
    if resource_id is not None:
        return await session.read(resource_type, resource_id)
    return await session.search(resource_type, params)


async def _refresh(http: httpx.AsyncClient, profile: Profile, grant: Grant, tokens: TokenSet
                   ) -> TokenSet:
    if tokens.refresh_token is None:
        raise AppUsageError("the token has expired or was rejected and there is no refresh "
                            "token; run `smartrealm app connect` again")
    fresh = await refresh(http, grant.token_endpoint, tokens, client_id=grant.client_id)
    profile.tokens.save(grant.key, fresh)
    return fresh
