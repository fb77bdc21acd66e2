"""Scope planning: what to ask for, and what each server cannot grant (spec §5, §1.1).

Inputs: the scopes the app wants, either one list for every server or one per server
(keyed by base URL), and for each server its ``scopes_supported`` (smart-configuration) and
the resource types its CapabilityStatement serves (``GET [base]/metadata``).

A wanted scope is refused at a server, with the reason, when
* it names a resource type the server does not serve (``type-not-served``), or
* the server lists ``scopes_supported`` and no listed scope covers it
  (``scope-not-supported``). A resource scope is covered by a listed one of the same
  context whose type is the same or ``*`` and whose permissions include the wanted ones
  (``patient/*.rs`` covers ``patient/Observation.r``); other scopes must be listed exactly.
A server that lists no ``scopes_supported`` (it is only RECOMMENDED, §1.1) is not judged by
it. The request is the union, in first-seen order, of what at least one server can grant:
the AS narrows it per server (seed; spec §3.6). Nothing here contacts a server except
``plan_scopes_for`` which fetches the CapabilityStatements."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from smartrealm.client._http import json_object, normalize_url, strip
from smartrealm.client.discovery import SmartConfiguration
from smartrealm.client.errors import ClientUsageError, DiscoveryError
from smartrealm.core.media_types import FHIR_JSON
from smartrealm.oauth.scopes import ResourceScope, ScopeSyntaxError, parse_scope

TYPE_NOT_SERVED = "type-not-served"
SCOPE_NOT_SUPPORTED = "scope-not-supported"


@dataclass(frozen=True)
class ServerFacts:
    base_url: str
    scopes_supported: tuple[str, ...]
    resource_types: frozenset[str] | None  # None: unknown (no CapabilityStatement)


@dataclass(frozen=True)
class Refusal:
    scope: str
    reason: str  # TYPE_NOT_SERVED or SCOPE_NOT_SUPPORTED


@dataclass(frozen=True)
class ServerPlan:
    base_url: str
    wanted: tuple[str, ...]
    grantable: tuple[str, ...]
    refused: tuple[Refusal, ...]

    @property
    def scope(self) -> str:
        """The request for this server alone (used by sequential launches)."""
        return " ".join(self.grantable)


@dataclass(frozen=True)
class ScopePlan:
    servers: tuple[ServerPlan, ...]

    @property
    def scope(self) -> str:
        """One request for every server: the union of what some server can grant."""
        seen: dict[str, None] = {}
        for server in self.servers:
            seen.update(dict.fromkeys(server.grantable))
        return " ".join(seen)

    def server(self, base_url: str) -> ServerPlan:
        wanted = normalize_url(base_url)
        for plan in self.servers:
            if normalize_url(plan.base_url) == wanted:
                return plan
        raise KeyError(base_url)

    def report(self) -> list[str]:
        """One line per refused scope: ``<base>: <scope>: <reason>``."""
        return [f"{s.base_url}: {r.scope}: {r.reason}" for s in self.servers for r in s.refused]


def plan_scopes(wanted: str | Mapping[str, str], servers: Sequence[ServerFacts]) -> ScopePlan:
    """Pure planning (module docstring). ``wanted`` is one scope string for every server or
    a mapping base URL → scope string; a mapping must name every server."""
    plans = []
    for facts in servers:
        scopes = _wanted_for(wanted, facts.base_url).split()
        refused = [r for r in (_refusal(s, facts) for s in scopes) if r is not None]
        bad = {r.scope for r in refused}
        grantable = tuple(dict.fromkeys(s for s in scopes if s not in bad))
        plans.append(ServerPlan(facts.base_url, tuple(scopes), grantable, tuple(refused)))
    return ScopePlan(tuple(plans))


async def plan_scopes_for(
    http: httpx.AsyncClient,
    wanted: str | Mapping[str, str],
    configs: Sequence[SmartConfiguration],
) -> ScopePlan:
    """Fetch each server's CapabilityStatement, then ``plan_scopes``."""
    types = await asyncio.gather(*(fetch_resource_types(http, c.base_url) for c in configs))
    facts = [
        ServerFacts(c.base_url, c.scopes_supported, t) for c, t in zip(configs, types, strict=True)
    ]
    return plan_scopes(wanted, facts)


async def fetch_resource_types(http: httpx.AsyncClient, base_url: str) -> frozenset[str]:
    """The types of ``rest[mode=server].resource`` in ``GET [base]/metadata``."""
    url = strip(base_url) + "/metadata"
    try:
        response = await http.get(url, headers={"Accept": FHIR_JSON})
    except httpx.HTTPError as exc:
        raise DiscoveryError(f"GET {url} failed: {exc.__class__.__name__}") from exc
    body = json_object(response)
    if response.status_code != 200 or body is None:
        raise DiscoveryError(f"GET {url} returned HTTP {response.status_code}")
    if body.get("resourceType") != "CapabilityStatement":
        raise DiscoveryError(f"{url} is not a CapabilityStatement")
    return frozenset(_types(body))


def _types(statement: dict[str, Any]) -> list[str]:
    found = []
    for rest in _objects(statement.get("rest")):
        if rest.get("mode", "server") == "server":
            found += [
                r["type"] for r in _objects(rest.get("resource")) if isinstance(r.get("type"), str)
            ]
    return found


def _objects(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _wanted_for(wanted: str | Mapping[str, str], base_url: str) -> str:
    if isinstance(wanted, str):
        return wanted
    key = normalize_url(base_url)
    for base, scope in wanted.items():
        if normalize_url(base) == key:
            return scope
    raise ClientUsageError(f"no wanted scopes given for {base_url}")


def _refusal(scope: str, facts: ServerFacts) -> Refusal | None:
    try:
        parsed = parse_scope(scope)
    except ScopeSyntaxError as exc:
        raise ClientUsageError(f"malformed scope {scope!r}: {exc}") from exc
    if parsed is not None and not _served(parsed, facts.resource_types):
        return Refusal(scope, TYPE_NOT_SERVED)
    if facts.scopes_supported and not _supported(scope, parsed, facts.scopes_supported):
        return Refusal(scope, SCOPE_NOT_SUPPORTED)
    return None


def _served(scope: ResourceScope, types: frozenset[str] | None) -> bool:
    return types is None or scope.resource_type == "*" or scope.resource_type in types


def _supported(raw: str, scope: ResourceScope | None, supported: tuple[str, ...]) -> bool:
    if raw in supported:
        return True
    if scope is None:
        return False
    for listed in supported:
        try:
            offer = parse_scope(listed)
        except ScopeSyntaxError:
            continue
        if offer is not None and _covers(offer, scope):
            return True
    return False


def _covers(offer: ResourceScope, scope: ResourceScope) -> bool:
    return (
        offer.context == scope.context
        and offer.resource_type in ("*", scope.resource_type)
        and scope.permissions <= offer.permissions
        and (not offer.params or offer.params == scope.params)
    )
