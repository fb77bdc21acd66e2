"""``_include`` and ``_revinclude`` (R4 §3.1.1.5.4) under the token's scopes.

An included resource is fetched with the same access restriction as any search of its
type (fhir/access.py: compartment of a ``patient/`` scope, granular ``?category=…``), so
an include can never return what a direct search could not. Decisions:

* the token must allow reading (``r``) or searching (``s``) the included type; a type it
  allows neither is silently left out (the matches are still returned: the include is an
  extra the client asked for, not a reason to fail the search);
* at most ``MAX_INCLUDED`` resources are included per page; when more exist, an
  OperationOutcome entry (``search.mode = outcome``) says so;
* only relative references (``Type/id``) are followed: an absolute one is foreign, also on
  this server's base, exactly as the search index treats it (fhir/search/indexing.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from smartrealm.core.defaults import SEARCH_MAX_INCLUDED as MAX_INCLUDED
from smartrealm.fhir.access import Permit, authorize
from smartrealm.fhir.errors import Forbidden
from smartrealm.fhir.repository import ResourceRepository
from smartrealm.fhir.search.indexing import parse_local_reference, walk
from smartrealm.fhir.search.parse import Include, SearchRequest
from smartrealm.fhir.search.query import (
    AnyOf,
    Clause,
    Criterion,
    IdValue,
    PageQuery,
    ReferenceValue,
)
from smartrealm.guard import AccessContext


class Includer:
    def __init__(self, repository: ResourceRepository, base_url: str,
                 served: tuple[str, ...]) -> None:
        self.repository = repository
        self.base_url = base_url
        self.served = served

    def included(self, ctx: AccessContext, request: SearchRequest,
                 matches: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
        """Resources to include (none of them a match) and whether some were cut off."""
        if not matches:
            return [], False
        found: dict[tuple[str, str], dict[str, Any]] = {}
        truncated = False
        for include in request.includes:
            truncated |= self._forward(ctx, include, matches, found)
        for include in request.revincludes:
            truncated |= self._reverse(ctx, request.resource_type, include, matches, found)
        seen = {(r["resourceType"], r["id"]) for r in matches}
        extra = [r for key, r in found.items() if key not in seen]
        return extra[:MAX_INCLUDED], truncated or len(extra) > MAX_INCLUDED

    def _forward(self, ctx: AccessContext, include: Include, matches: list[dict[str, Any]],
                 found: dict[tuple[str, str], dict[str, Any]]) -> bool:
        by_type: dict[str, set[str]] = {}
        for resource in matches:
            for rtype, rid in self._references(resource, include):
                by_type.setdefault(rtype, set()).add(rid)
        truncated = False
        for rtype, ids in sorted(by_type.items()):
            clause = Clause("_id", "id", tuple(IdValue(i) for i in sorted(ids)))
            truncated |= self._fetch(ctx, rtype, clause, found)
        return truncated

    def _reverse(self, ctx: AccessContext, searched: str, include: Include,
                 matches: list[dict[str, Any]],
                 found: dict[tuple[str, str], dict[str, Any]]) -> bool:
        values = tuple(ReferenceValue(searched, r["id"]) for r in matches)
        clause = Clause(include.param.name, "reference", values)
        return self._fetch(ctx, include.source, clause, found)

    def _fetch(self, ctx: AccessContext, resource_type: str, clause: Clause,
               found: dict[tuple[str, str], dict[str, Any]]) -> bool:
        if resource_type not in self.served:
            return False
        permit = self._permit(ctx, resource_type)
        if permit is None:
            return False
        criteria: tuple[Criterion, ...] = (clause,) if permit.restriction is None \
            else (clause, permit.restriction)
        page = self.repository.page(PageQuery(resource_type, criteria, MAX_INCLUDED,
                                              total=False))
        for resource in page.resources:
            found.setdefault((resource["resourceType"], resource["id"]), resource)
        return page.more

    def _permit(self, ctx: AccessContext, resource_type: str) -> Permit | None:
        """The union of what ``r`` and ``s`` allow; None when neither allows anything."""
        permits = []
        for letter in ("r", "s"):
            try:
                permits.append(authorize(ctx, resource_type, letter, base_url=self.base_url))
            except Forbidden:
                continue
        if not permits:
            return None
        if any(p.restriction is None for p in permits):
            return Permit(resource_type, None, patient_only=False)
        groups = tuple(g for p in permits if p.restriction is not None
                       for g in p.restriction.groups)
        return Permit(resource_type, AnyOf(groups), all(p.patient_only for p in permits))

    def _references(self, resource: dict[str, Any],
                    include: Include) -> Iterable[tuple[str, str]]:
        for path in include.param.paths:
            for element in walk(resource, path):
                reference = element.get("reference") if isinstance(element, dict) else None
                # Only Type/id: absolute references are foreign, as in the index.
                local = parse_local_reference(reference) if isinstance(reference, str) \
                    else None
                if local is not None and include.target in (None, local[0]) \
                        and include.param.target in (None, local[0]):
                    yield local
