"""The search interaction (GET ``[type]?…`` and POST ``[type]/_search``): access check,
parse, one page from the repository, includes, and the ``searchset`` Bundle.

No leaks (spec §5.3, docs/behaviour.md): the access restriction (fhir/access.py) is one of the
criteria of the page *and* of its count, so ``total``, ``_summary=count`` and the paging
links (whose ``next``/``last`` derive from that count) only ever reflect resources the
token may see; includes go through the same restriction (fhir/rest/includes.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from smartrealm.fhir.access import authorize, check_named_patients
from smartrealm.fhir.repository import ResourceRepository
from smartrealm.fhir.rest.includes import Includer
from smartrealm.fhir.search.parse import SearchRequest, page_links, parse_search
from smartrealm.fhir.search.query import Criterion, Page, PageQuery
from smartrealm.fhir.settings import FhirSettings
from smartrealm.guard import AccessContext

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
             "code": "SUBSETTED", "display": "subsetted"}


class Searcher:
    def __init__(self, settings: FhirSettings, repository: ResourceRepository) -> None:
        self.settings = settings
        self.repository = repository
        self.includer = Includer(repository, settings.base_url, settings.resource_types)

    def search(self, ctx: AccessContext, resource_type: str,
               params: Sequence[tuple[str, str]], *, strict: bool = False) -> dict[str, Any]:
        """The searchset Bundle; raises FhirError (400, 403) on bad or forbidden input."""
        base = self.settings.base_url
        permit = authorize(ctx, resource_type, "s", base_url=base)
        request = parse_search(resource_type, params, base_url=base, strict=strict,
                               default_count=self.settings.default_count,
                               max_count=self.settings.max_count)
        check_named_patients(permit, ctx, request.criteria)
        criteria: list[Criterion] = list(request.criteria)
        if permit.restriction is not None:
            criteria.append(permit.restriction)
        page = self.repository.page(_page_query(request, tuple(criteria)))
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
        if page.total is not None:
            bundle["total"] = page.total
        bundle["link"] = page_links(base, request, page.total, page.more)
        entries = self._entries(ctx, request, page)
        if entries:  # FHIR JSON forbids empty arrays
            bundle["entry"] = entries
        return bundle

    def _entries(self, ctx: AccessContext, request: SearchRequest,
                 page: Page) -> list[dict[str, Any]]:
        if request.summary == "count":
            return []
        included, truncated = self.includer.included(ctx, request, page.resources)
        entries = [self._entry(r, "match", request) for r in page.resources]
        entries += [self._entry(r, "include", request) for r in included]
        if truncated:
            entries.append({"resource": _truncation_outcome(), "search": {"mode": "outcome"}})
        return entries

    def _entry(self, resource: dict[str, Any], mode: str,
               request: SearchRequest) -> dict[str, Any]:
        if request.summary == "data":
            resource = _without_text(resource)
        return {"fullUrl": f"{self.settings.base_url}/{resource['resourceType']}/"
                           f"{resource['id']}",
                "resource": resource, "search": {"mode": mode}}


def _page_query(request: SearchRequest, criteria: tuple[Criterion, ...]) -> PageQuery:
    if request.summary == "count":  # R4 §3.1.1.5.8: the count only, no entries
        return PageQuery(request.resource_type, criteria, 0, total=True)
    return PageQuery(request.resource_type, criteria, request.count, request.offset,
                     request.sort, total=request.total != "none")


def _without_text(resource: dict[str, Any]) -> dict[str, Any]:
    """``_summary=data``: everything but the narrative, tagged SUBSETTED (R4 §3.1.1.5.8)."""
    if "text" not in resource:
        return resource
    copy = {k: v for k, v in resource.items() if k != "text"}
    meta = dict(copy.get("meta") or {})
    meta["tag"] = [*(meta.get("tag") or []), SUBSETTED]
    copy["meta"] = meta
    return copy


def _truncation_outcome() -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{
        "severity": "information", "code": "too-costly",
        "diagnostics": "more resources matched _include/_revinclude than one page carries; "
                       "search for them directly"}]}
