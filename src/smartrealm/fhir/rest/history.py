"""vread and history (R4 http.html#vread, #history) with the same access rules as read and
search: ``r`` for vread and instance history, ``s`` for type and system history (spec §5.1).

History must never show a version the token could not read as current data. Under a
restricted permit (``patient/`` or granular scopes) a version is listed only if

* its resource matches the restriction *now* (an SQL filter, so paging stays cheap), and
* the version itself matches it: each version on the page is checked with the very SQL a
  search uses (``ResourceRepository.versions_matching``), so an Observation moved into the
  patient's compartment by an update does not reveal whom it was about before.

Versions failing the second check are dropped from their page; such a Bundle carries no
``total`` (it would count them). Deleted resources' histories are shown only to
unrestricted permits (a deleted resource is no longer in anyone's compartment) — except the
patient's own record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from smartrealm.fhir.access import authorize
from smartrealm.fhir.bodies import check_id
from smartrealm.fhir.errors import BadRequest, Forbidden, Gone, NotFound
from smartrealm.fhir.http.reply import FhirResponse, status_line
from smartrealm.fhir.repository import HistoryQuery, ResourceRepository, StoredResource
from smartrealm.fhir.search.parse import DEFAULT_COUNT, MAX_COUNT
from smartrealm.fhir.search.query import Criterion
from smartrealm.fhir.settings import FhirSettings
from smartrealm.fhir.versioning import etag, parse_instant, version_headers
from smartrealm.guard import AccessContext

_RESULT_PARAMS = frozenset({"_format", "_pretty"})


@dataclass(frozen=True)
class HistoryParams:
    count: int = DEFAULT_COUNT
    offset: int = 0
    since: str | None = None
    used: tuple[tuple[str, str], ...] = ()


def parse_history_params(params: Sequence[tuple[str, str]], *,
                         strict: bool = False) -> HistoryParams:
    """``_count``, ``_since`` and our paging ``_offset``; ``_at``/``_list`` are not
    supported (400); other unknown parameters are ignored unless ``handling=strict``."""
    count, offset, since, used = DEFAULT_COUNT, 0, None, []
    for name, value in params:
        if name == "_count":
            count = min(_non_negative(name, value), MAX_COUNT)
        elif name == "_offset":
            offset = _non_negative(name, value)
        elif name == "_since":
            since = parse_instant(name, value)
            used.append((name, value))
        elif name in ("_at", "_list"):
            raise BadRequest(f"{name} is not supported in history")
        elif strict and name not in _RESULT_PARAMS:
            raise BadRequest(f"unknown history parameter {name[:40]!r}")
    return HistoryParams(count, offset, since, tuple(used))


def _non_negative(name: str, value: str) -> int:
    if not value.isdigit() or len(value) > 9:
        raise BadRequest(f"{name} must be a non-negative integer")
    return int(value)


class HistoryService:
    def __init__(self, settings: FhirSettings, repository: ResourceRepository) -> None:
        self.settings = settings
        self.repository = repository

    def vread(self, ctx: AccessContext, resource_type: str, resource_id: str,
              version: str) -> FhirResponse:
        self._check_type(resource_type)
        permit = authorize(ctx, resource_type, "r", base_url=self.settings.base_url)
        check_id(resource_id)
        found = self.repository.vread(resource_type, resource_id, int(version)) \
            if version.isdigit() and len(version) <= 9 else None
        if found is None:
            raise NotFound(f"{resource_type}/{resource_id} has no version {version[:20]!r}")
        if permit.restriction is not None and not self._visible([found], permit.restriction)[0]:
            raise Forbidden(f"the token does not allow reading {resource_type}/{resource_id}")
        if found.deleted:
            raise Gone(f"version {found.version_id} of {resource_type}/{resource_id} is its "
                       f"deletion")
        return FhirResponse(found.resource, 200, version_headers(found, self.settings.base_url))

    def instance(self, ctx: AccessContext, resource_type: str, resource_id: str,
                 params: HistoryParams) -> FhirResponse:
        self._check_type(resource_type)
        permit = authorize(ctx, resource_type, "r", base_url=self.settings.base_url)
        check_id(resource_id)
        current = self.repository.get(resource_type, resource_id)
        if current is None:
            raise NotFound(f"{resource_type}/{resource_id} is not known")
        if permit.restriction is not None and \
                not self._visible([current], permit.restriction)[0]:
            raise Forbidden(f"the token does not allow reading {resource_type}/{resource_id}")
        query = HistoryQuery(((resource_type, None),), resource_id, params.since,
                             params.count, params.offset)
        return self._bundle(query, {resource_type: permit.restriction}, params,
                            f"{resource_type}/{resource_id}/_history")

    def type_history(self, ctx: AccessContext, resource_type: str,
                     params: HistoryParams) -> FhirResponse:
        self._check_type(resource_type)
        permit = authorize(ctx, resource_type, "s", base_url=self.settings.base_url)
        restrictions: dict[str, Criterion | None] = {resource_type: permit.restriction}
        query = HistoryQuery(((resource_type, permit.restriction),), None, params.since,
                             params.count, params.offset)
        return self._bundle(query, restrictions, params, f"{resource_type}/_history")

    def system(self, ctx: AccessContext, params: HistoryParams) -> FhirResponse:
        """Every served type the token may search (``s``), each under its own permit."""
        restrictions: dict[str, Criterion | None] = {}
        for resource_type in self.settings.resource_types:
            try:
                permit = authorize(ctx, resource_type, "s", base_url=self.settings.base_url)
            except Forbidden:
                continue
            restrictions[resource_type] = permit.restriction
        if not restrictions:
            raise Forbidden("no granted scope allows searching (or history of) any type")
        query = HistoryQuery(tuple(restrictions.items()), None, params.since,
                             params.count, params.offset)
        return self._bundle(query, restrictions, params, "_history")

    # ------------------------------------------------------------------ helpers

    def _check_type(self, resource_type: str) -> None:
        if resource_type not in self.settings.resource_types:
            raise NotFound(f"this server does not serve {resource_type[:64]!r} resources")

    def _visible(self, versions: Sequence[StoredResource],
                 restriction: Criterion) -> list[bool]:
        return self.repository.versions_matching(versions, (restriction,))

    def _bundle(self, query: HistoryQuery, restrictions: dict[str, Criterion | None],
                params: HistoryParams, path: str) -> FhirResponse:
        page, total = self.repository.history(query)
        shown = self._filter(page, restrictions)
        exact = all(r is None for r in restrictions.values())
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history"}
        if exact:
            bundle["total"] = total
        bundle["link"] = _links(self.settings.base_url, path, params, total)
        if shown:
            bundle["entry"] = [self._entry(v) for v in shown]
        return FhirResponse(bundle)

    def _filter(self, page: list[StoredResource],
                restrictions: dict[str, Criterion | None]) -> list[StoredResource]:
        keep = [True] * len(page)
        for resource_type, restriction in restrictions.items():
            if restriction is None:
                continue
            positions = [i for i, v in enumerate(page)
                         if v.resource.get("resourceType") == resource_type]
            verdicts = self._visible([page[i] for i in positions], restriction)
            for position, visible in zip(positions, verdicts, strict=True):
                keep[position] = visible
        return [v for v, k in zip(page, keep, strict=True) if k]

    def _entry(self, version: StoredResource) -> dict[str, Any]:
        resource = version.resource
        rtype, rid = resource["resourceType"], resource["id"]
        entry: dict[str, Any] = {"fullUrl": f"{self.settings.base_url}/{rtype}/{rid}"}
        # The store keeps no request log: version 1 was a create, a deletion version a
        # DELETE, every other version an update.
        if version.deleted:
            request, status = {"method": "DELETE", "url": f"{rtype}/{rid}"}, 204
        elif version.version_id == 1:
            request, status = {"method": "POST", "url": rtype}, 201
        else:
            request, status = {"method": "PUT", "url": f"{rtype}/{rid}"}, 200
        if not version.deleted:
            entry["resource"] = resource
        entry["request"] = request
        entry["response"] = {"status": status_line(status), "etag": etag(version.version_id),
                             "lastModified": version.last_updated}
        return entry


def _links(base: str, path: str, params: HistoryParams, total: int) -> list[dict[str, str]]:
    def url(offset: int) -> str:
        query = [*params.used, ("_count", str(params.count))]
        if offset:
            query.append(("_offset", str(offset)))
        return f"{base}/{path}?{urlencode(query)}"

    links = [{"relation": "self", "url": url(params.offset)}]
    if params.count and params.offset + params.count < total:
        links.append({"relation": "next", "url": url(params.offset + params.count)})
    if params.count and params.offset > 0:
        links.append({"relation": "previous", "url": url(max(0, params.offset - params.count))})
    return links
